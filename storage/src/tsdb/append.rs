//! The appender: stage samples, then apply them to the head and write one RocksDB batch.
//!
//! Commit order matters for crash safety (see `maintenance.rs` for the checkpoint side):
//! 1. apply every staged sample to its head series under the shard lock, deciding accept or
//!    reject; a chunk that fills up is cut into the series' `pending` list (the maintenance
//!    thread seals and writes it later; until the next checkpoint the WAL covers it);
//! 2. write labels and postings of series not yet persisted to RocksDB (in its own log when
//!    `write` returns);
//! 3. append the samples as one record to the WAL (`log.rs`) *after* applying, so a
//!    checkpoint whose rotation comes later always sees these samples in the head; return
//!    only once the record is written.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;

use super::head::{Applied, Head, MemSeries};
use super::keys::{self, CF_POSTINGS, CF_SERIES};
use super::postings::Delta;
use super::wal::{HistRecordBuilder, Logged, RecordBuilder};
use super::Inner;
use crate::error::{LabelError, RejectReason, Rejection, Result};
use crate::histogram::Histogram;
use crate::interface::{Appender, CommitReport, SeriesRef};
use crate::labels::Labels;

#[derive(Debug)]
struct Staged {
    id: SeriesRef,
    t: i64,
    v: f64,
    st: i64,
}

/// A staged histogram sample (kept apart: rare, and far larger than a float).
#[derive(Debug)]
struct StagedHist {
    id: SeriesRef,
    labels: Labels,
    t: i64,
    st: i64,
    h: Histogram,
}

pub(super) struct TsdbAppender<'a> {
    inner: &'a Inner,
    samples: Vec<Staged>,
    hists: Vec<StagedHist>,
    /// Labels of every series staged, by first appearance, to re-resolve a series that
    /// retention removed between `append` and `commit`.
    labels: Vec<(SeriesRef, Labels)>,
}

impl<'a> TsdbAppender<'a> {
    pub(super) fn new(inner: &'a Inner) -> Self {
        TsdbAppender {
            inner,
            samples: Vec::new(),
            hists: Vec::new(),
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

/// Applies one staged sample to its series, recording the outcome. Returns whether the
/// series' open chunk was cut.
/// What every `apply` of one commit shares.
#[derive(Debug, Clone, Copy)]
struct ApplyCtx {
    /// Log no-op repeats again (see `apply`).
    relog: bool,
    /// The retention cutoff: older samples are refused as out of bounds.
    cutoff: i64,
    /// The oldest time accepted out of order (see `Inner::ooo_min`).
    ooo_min: i64,
}

/// Applies one staged sample to its series, recording the outcome; samples to log go to
/// `logged`. A repeat of the newest sample is a no-op, but while `relog` is set (a WAL write
/// failed since the last checkpoint, so the head may hold samples no log has) it is logged
/// again, so acknowledging it never depends on a write that did not happen. Returns whether
/// the series' open chunk was cut.
fn apply(
    series: &mut MemSeries,
    index: usize,
    s: &Staged,
    ctx: ApplyCtx,
    report: &mut CommitReport,
    logged: &mut Vec<Logged>,
) -> bool {
    let series_max_t = series.max_t;
    let (applied, cut) = if s.t < ctx.cutoff {
        // Past retention: it would be hidden at once and dropped soon.
        (Applied::Rejected(RejectReason::OutOfBounds), false)
    } else {
        series.append(s.t, s.v, s.st, ctx.ooo_min)
    };
    let relog = ctx.relog;
    match applied {
        Applied::Accepted => {
            logged.push(Logged::new(s.t, s.v, s.st));
            report.accepted += 1;
        }
        Applied::AcceptedOutOfOrder => {
            logged.push(Logged::new(s.t, s.v, s.st));
            report.accepted += 1;
            report.out_of_order += 1;
        }
        Applied::NoOp => {
            if relog {
                logged.push(Logged::new(s.t, s.v, s.st));
            }
            report.accepted += 1;
        }
        Applied::Rejected(reason) => report.rejected.push(Rejection {
            index,
            reason,
            t: s.t,
            v: s.v,
            series_max_t,
        }),
    }
    cut
}

impl TsdbAppender<'_> {
    /// The series with these labels, created if new (an empty set is refused).
    fn resolve(&self, labels: &Labels) -> Result<SeriesRef> {
        if labels.is_empty() {
            return Err(LabelError::Empty.into());
        }
        let (id, created) = self.inner.head.get_or_create(labels);
        if created {
            self.inner
                .counters
                .series_created
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(id)
    }

    fn stage(&mut self, id: SeriesRef, labels: &Labels, t: i64, v: f64, st: i64) {
        if self.labels.last().is_none_or(|(last, _)| *last != id) {
            self.labels.push((id, labels.clone()));
        }
        self.samples.push(Staged { id, t, v, st });
    }
}

impl Appender for TsdbAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        self.append_st(0, labels, t, v, 0)
    }

    fn append_st(
        &mut self,
        hint: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
        st: i64,
    ) -> Result<SeriesRef> {
        // Ids are never reused while the process runs, so the hint names these labels'
        // series or one that retention removed, which commit resolves again by labels.
        if hint != 0 {
            self.stage(hint, labels, t, v, st);
            return Ok(hint);
        }
        let id = self.resolve(labels)?;
        self.stage(id, labels, t, v, st);
        Ok(id)
    }

    fn append_histogram(
        &mut self,
        hint: SeriesRef,
        labels: &Labels,
        t: i64,
        h: &Histogram,
        st: i64,
    ) -> Result<SeriesRef> {
        let id = match hint {
            0 => self.resolve(labels)?,
            hint => hint,
        };
        self.hists.push(StagedHist {
            id,
            labels: labels.clone(),
            t,
            st,
            h: h.clone(),
        });
        Ok(id)
    }

    fn len(&self) -> usize {
        self.samples.len() + self.hists.len()
    }

    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let TsdbAppender {
            inner,
            samples,
            hists,
            labels,
        } = *self;
        if samples.is_empty() && hists.is_empty() {
            return Ok(CommitReport::default());
        }
        // Until the record is written (see `Inner::commit_gate`).
        let _gate = inner.commit_gate.read().unwrap_or_else(|e| e.into_inner());
        // Group by shard, then series, keeping append order within a series.
        let mut order: Vec<u32> = (0..samples.len() as u32).collect();
        order.sort_unstable_by_key(|&i| {
            let id = samples[i as usize].id;
            (Head::shard_of(id), id, i)
        });
        let ctx = ApplyCtx {
            relog: inner.relog_noops.load(Ordering::SeqCst),
            cutoff: inner.cutoff.load(Ordering::Relaxed),
            ooo_min: inner.ooo_min(),
        };
        let mut report = CommitReport::default();
        let mut record = RecordBuilder::new();
        let mut cut = 0usize;
        let mut new_series: Vec<(SeriesRef, Labels)> = Vec::new();
        let mut missing: Vec<usize> = Vec::new();
        let mut accepted: Vec<Logged> = Vec::new();
        let mut max_t = i64::MIN;

        let mut pos = 0;
        while pos < order.len() {
            let shard_no = Head::shard_of(samples[order[pos] as usize].id);
            let mut shard = inner.head.shard_at(shard_no);
            while pos < order.len() && Head::shard_of(samples[order[pos] as usize].id) == shard_no {
                let id = samples[order[pos] as usize].id;
                let run = pos..pos
                    + order[pos..]
                        .iter()
                        .take_while(|&&i| samples[i as usize].id == id)
                        .count();
                pos = run.end;
                let Some(series) = shard.get_mut(&id) else {
                    // Removed by retention after `append`: handled below, outside the lock.
                    missing.extend(order[run].iter().map(|&i| i as usize));
                    continue;
                };
                accepted.clear();
                for &idx in &order[run] {
                    let (s, idx) = (&samples[idx as usize], idx as usize);
                    cut += usize::from(apply(series, idx, s, ctx, &mut report, &mut accepted));
                }
                max_t = max_t.max(accepted.iter().map(|s| s.t).max().unwrap_or(i64::MIN));
                record.add_series(id, &accepted);
                // Labels go with every commit until one that carried them is durable (an
                // earlier commit that creates the series may still be in flight).
                if !series.persisted && series.has_samples() {
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
            accepted.clear();
            cut += usize::from(apply(series, idx, s, ctx, &mut report, &mut accepted));
            max_t = max_t.max(accepted.iter().map(|s| s.t).max().unwrap_or(i64::MIN));
            record.add_series(id, &accepted);
            if !series.persisted {
                new_series.push((id, series.labels.clone()));
            }
        }
        // Histograms, one by one (rare). A series removed since `append_histogram` is created
        // again from the staged labels.
        let mut hist_record = HistRecordBuilder::default();
        for (k, x) in hists.iter().enumerate() {
            let index = samples.len() + k;
            let mut id = x.id;
            let mut shard = inner.head.shard(id);
            if shard.get(&id).is_none() {
                drop(shard);
                id = inner.head.get_or_create(&x.labels).0;
                shard = inner.head.shard(id);
            }
            let Some(series) = shard.get_mut(&id) else {
                // Removed again by retention in between: refused, never dropped silently.
                report.rejected.push(Rejection {
                    index,
                    reason: RejectReason::OutOfBounds,
                    t: x.t,
                    v: f64::NAN,
                    series_max_t: i64::MIN,
                });
                continue;
            };
            let series_max_t = series.max_t;
            let (applied, was_cut) = if x.t < ctx.cutoff {
                (Applied::Rejected(RejectReason::OutOfBounds), false)
            } else {
                series.append_histogram(x.t, x.st, &x.h)
            };
            cut += usize::from(was_cut);
            let log = |record: &mut HistRecordBuilder| record.add(id, x.t, x.st, &x.h);
            match applied {
                Applied::Accepted | Applied::AcceptedOutOfOrder => {
                    log(&mut hist_record);
                    max_t = max_t.max(x.t);
                    report.accepted += 1;
                    report.histograms += 1;
                }
                Applied::NoOp => {
                    // As for floats: logged again while a failed write may have lost it.
                    if ctx.relog {
                        log(&mut hist_record);
                    }
                    report.accepted += 1;
                    report.histograms += 1;
                }
                Applied::Rejected(reason) => report.rejected.push(Rejection {
                    index,
                    reason,
                    t: x.t,
                    v: f64::NAN,
                    series_max_t,
                }),
            }
            if !series.persisted
                && series.has_samples()
                && !new_series.iter().any(|(n, _)| *n == id)
            {
                new_series.push((id, series.labels.clone()));
            }
        }
        report.rejected.sort_by_key(|r| r.index);

        // New series first: a record never names a series whose labels are not durable.
        if !new_series.is_empty() {
            let mut batch = WriteBatch::default();
            for (id, labels) in &new_series {
                persist_series(inner, &mut batch, *id, labels);
            }
            if let Err(e) = inner.write(batch) {
                // The samples are in the head but in no log: until a checkpoint has written
                // the head, repeats of them must be logged again (see `apply`).
                inner.relog_noops.store(true, Ordering::SeqCst);
                return Err(e);
            }
            for (id, _) in &new_series {
                if let Some(s) = inner.head.shard(*id).get_mut(id) {
                    s.persisted = true;
                }
            }
        }
        for record in [
            (!record.is_empty()).then(|| record.finish()),
            (!hist_record.is_empty()).then(|| hist_record.finish()),
        ]
        .into_iter()
        .flatten()
        {
            if let Err(e) = inner.log.append(&record) {
                inner.relog_noops.store(true, Ordering::SeqCst);
                return Err(e);
            }
            inner
                .wal_bytes
                .fetch_add(record.len() as u64, Ordering::Relaxed);
        }
        inner.pending_chunks.fetch_add(cut, Ordering::Relaxed);
        inner.head.note_time(max_t);
        inner.counters.commits.fetch_add(1, Ordering::Relaxed);
        inner.counters.count(&report);
        Ok(report)
    }

    fn rollback(self: Box<Self>) {}
}
