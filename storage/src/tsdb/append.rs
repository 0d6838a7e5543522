//! The appender: stage samples, then apply them to the head and write one RocksDB batch.
//!
//! Commit order matters for crash safety (see `maintenance.rs` for the checkpoint side):
//! 1. apply every staged sample to its head series under the shard lock, deciding accept or
//!    reject, sealing chunks that fill up (kept in `pending` until written);
//! 2. take a WAL sequence number *after* applying, so a checkpoint that starts later than the
//!    number was taken always sees these samples in the head;
//! 3. write one batch: the WAL record, labels and postings of series not yet persisted, and
//!    every sealed chunk; return only once RocksDB has it in its write-ahead log;
//! 4. drop the written chunks from `pending`.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;

use super::head::{Applied, Head, PendingChunk};
use super::keys::{self, CF_CHUNKS, CF_POSTINGS, CF_SERIES, CF_WAL};
use super::postings::Delta;
use super::wal::RecordBuilder;
use super::Inner;
use crate::error::{RejectReason, Rejection, Result};
use crate::interface::{Appender, CommitReport, Sample, SeriesRef};
use crate::labels::Labels;

#[derive(Debug)]
struct Staged {
    id: SeriesRef,
    t: i64,
    v: f64,
}

pub(super) struct TsdbAppender<'a> {
    inner: &'a Inner,
    samples: Vec<Staged>,
    /// Labels of every series staged, by first appearance, to re-resolve a series that
    /// retention removed between `append` and `commit`.
    labels: Vec<(SeriesRef, Labels)>,
}

impl<'a> TsdbAppender<'a> {
    pub(super) fn new(inner: &'a Inner) -> Self {
        TsdbAppender {
            inner,
            samples: Vec::new(),
            labels: Vec::new(),
        }
    }
}

/// Adds a new series' labels and postings to a batch. Idempotent, so it may be repeated.
pub(super) fn persist_series(
    inner: &Inner,
    batch: &mut WriteBatch,
    id: SeriesRef,
    labels: &Labels,
) {
    batch.put_cf(inner.cf(CF_SERIES), keys::series_key(id), labels.as_bytes());
    let postings = inner.cf(CF_POSTINGS);
    let add = Delta::add(&[id]).encode();
    batch.merge_cf(postings, keys::ALL_POSTINGS_KEY, &add);
    for l in labels {
        batch.merge_cf(postings, keys::postings_key(l.name, l.value), &add);
    }
}

impl Appender for TsdbAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        let (id, created) = self.inner.head.get_or_create(labels);
        if created {
            self.inner
                .counters
                .series_created
                .fetch_add(1, Ordering::Relaxed);
        }
        if self.labels.last().is_none_or(|(last, _)| *last != id) {
            self.labels.push((id, labels.clone()));
        }
        self.samples.push(Staged { id, t, v });
        Ok(id)
    }

    fn len(&self) -> usize {
        self.samples.len()
    }

    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let TsdbAppender {
            inner,
            samples,
            labels,
        } = *self;
        if samples.is_empty() {
            return Ok(CommitReport::default());
        }
        // Group by shard, then series, keeping append order within a series.
        let mut order: Vec<u32> = (0..samples.len() as u32).collect();
        order.sort_by_key(|&i| {
            let id = samples[i as usize].id;
            (Head::shard_of(id), id)
        });

        let mut report = CommitReport::default();
        let mut record = RecordBuilder::new();
        let mut sealed: Vec<(SeriesRef, PendingChunk)> = Vec::new();
        let mut new_series: Vec<(SeriesRef, Labels)> = Vec::new();
        let mut missing: Vec<usize> = Vec::new();
        let mut accepted: Vec<Sample> = Vec::new();
        let mut max_t = i64::MIN;

        let mut pos = 0;
        while pos < order.len() {
            let shard_no = Head::shard_of(samples[order[pos] as usize].id);
            let mut shard = inner.head.shard_at(shard_no);
            while pos < order.len() && Head::shard_of(samples[order[pos] as usize].id) == shard_no {
                let id = samples[order[pos] as usize].id;
                let Some(series) = shard.get_mut(&id) else {
                    // Removed by retention after `append`: handled below, outside the lock.
                    while pos < order.len() && samples[order[pos] as usize].id == id {
                        missing.push(order[pos] as usize);
                        pos += 1;
                    }
                    continue;
                };
                accepted.clear();
                while pos < order.len() && samples[order[pos] as usize].id == id {
                    let idx = order[pos] as usize;
                    let s = &samples[idx];
                    let series_max_t = series.max_t;
                    let (applied, chunk) = series.append(s.t, s.v);
                    match applied {
                        Applied::Accepted => {
                            accepted.push(Sample::new(s.t, s.v));
                            max_t = max_t.max(s.t);
                        }
                        Applied::NoOp => report.accepted += 1,
                        Applied::Rejected(reason) => report.rejected.push(Rejection {
                            index: idx,
                            reason,
                            t: s.t,
                            v: s.v,
                            series_max_t,
                        }),
                    }
                    if let Some(c) = chunk {
                        sealed.push((id, c));
                    }
                    pos += 1;
                }
                report.accepted += accepted.len();
                record.add_series(id, &accepted);
                if !series.persisted && series.has_samples() {
                    series.persisted = true;
                    new_series.push((id, series.labels.clone()));
                }
            }
        }

        // Series that vanished between append and commit: resolve again and apply one by one.
        for idx in missing {
            let s = &samples[idx];
            let Some(l) = labels.iter().find(|(id, _)| *id == s.id).map(|(_, l)| l) else {
                continue;
            };
            let (id, _) = inner.head.get_or_create(l);
            let mut shard = inner.head.shard(id);
            let series = shard.get_mut(&id).expect("just created");
            let series_max_t = series.max_t;
            match series.append(s.t, s.v) {
                (Applied::Accepted, chunk) => {
                    report.accepted += 1;
                    max_t = max_t.max(s.t);
                    record.add_series(id, &[Sample::new(s.t, s.v)]);
                    if let Some(c) = chunk {
                        sealed.push((id, c));
                    }
                }
                (Applied::NoOp, _) => report.accepted += 1,
                (Applied::Rejected(reason), _) => report.rejected.push(Rejection {
                    index: idx,
                    reason,
                    t: s.t,
                    v: s.v,
                    series_max_t,
                }),
            }
            if !series.persisted {
                series.persisted = true;
                new_series.push((id, series.labels.clone()));
            }
        }
        report.rejected.sort_by_key(|r| r.index);

        if !record.is_empty() || !new_series.is_empty() {
            let mut batch = WriteBatch::default();
            let record = record.finish();
            let seq = inner.next_seq.fetch_add(1, Ordering::SeqCst);
            inner
                .wal_bytes
                .fetch_add(record.len() as u64, Ordering::Relaxed);
            batch.put_cf(inner.cf(CF_WAL), keys::wal_key(seq), &record);
            for (id, labels) in &new_series {
                persist_series(inner, &mut batch, *id, labels);
            }
            let chunks = inner.cf(CF_CHUNKS);
            for (id, c) in &sealed {
                batch.put_cf(chunks, keys::chunk_key(*id, c.start), &c.bytes);
            }
            if let Err(e) = inner.write(batch) {
                // Not persisted after all: let a later commit or checkpoint write them.
                for (id, _) in &new_series {
                    if let Some(s) = inner.head.shard(*id).get_mut(id) {
                        s.persisted = false;
                    }
                }
                return Err(e);
            }
            for (id, c) in &sealed {
                if let Some(s) = inner.head.shard(*id).get_mut(id) {
                    s.chunk_written(c.start);
                }
            }
        }
        inner.head.note_time(max_t);
        let c = &inner.counters;
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.samples_appended
            .fetch_add(report.accepted as u64, Ordering::Relaxed);
        c.chunks_sealed
            .fetch_add(sealed.len() as u64, Ordering::Relaxed);
        for r in &report.rejected {
            match r.reason {
                RejectReason::OutOfOrder => &c.samples_out_of_order,
                RejectReason::Duplicate => &c.samples_duplicate,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
        Ok(report)
    }

    fn rollback(self: Box<Self>) {}
}
