//! Backfill: writing history into a series, at any age, beside or below what it holds.
//!
//! Appends go through the head and the WAL and must be newer than the series' newest sample.
//! History (an import of old data, a rule replay) is written straight into `chunks` instead,
//! one series at a time, under the maintenance lock and the series' shard lock:
//! 1. the series' in-memory chunks (open and pending) are sealed and written with its head
//!    state, exactly as a checkpoint would write them, so everything it holds is on disk;
//! 2. the persisted chunks overlapping the new samples' time range are read, merged with them
//!    (a timestamp already held keeps its stored value: the same bits are a no-op, other bits
//!    are rejected as a duplicate), cut into chunks of at most [`CHUNK_SAMPLES`], and written
//!    in place of the chunks read, together with the series' new head state (`min_t`,
//!    `max_t`, newest value), in one batch.
//!
//! This keeps the invariant reads rely on: a series' persisted chunks never overlap in time,
//! so the chunk starting at or before a query's start is the only earlier one that can reach
//! into it. In-memory chunks may overlap persisted ones only by being newer (appends after a
//! backfill start above the series' newest sample).
//!
//! Recovery needs nothing new: the head state written in step 2 has no open chunk, and replay
//! skips WAL samples not newer than its newest sample, which are all in `chunks` by then.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;

use super::keys::{self, CF_CHUNKS, CF_HEAD};
use super::maintenance::{encode_state, lock_maintenance, stage_series};
use super::{retention_cutoff, Inner};
use crate::chunk;
use crate::error::{LabelError, RejectReason, Rejection, Result, StorageError};
use crate::interface::{CommitReport, Sample, SeriesRef};
use crate::labels::Labels;

/// Samples per chunk written by a backfill (the same limit as the head's chunks).
pub const CHUNK_SAMPLES: usize = 120;

/// One sample to write, with its index in the caller's slice.
#[derive(Debug, Clone, Copy)]
struct Incoming {
    s: Sample,
    index: usize,
}

/// Sorts `samples` by time, drops those past retention and repeats of a timestamp within the
/// batch (the first one wins; a repeat with other value bits is a duplicate).
fn prepare(samples: &[Sample], cutoff: i64, report: &mut CommitReport) -> Vec<Incoming> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| (samples[i].t, i));
    let mut out: Vec<Incoming> = Vec::with_capacity(samples.len());
    for i in order {
        let s = samples[i];
        let reject = |reason| Rejection {
            index: i,
            reason,
            t: s.t,
            v: s.v,
            series_max_t: i64::MIN,
        };
        if s.t < cutoff || s.t == i64::MIN {
            report.rejected.push(reject(RejectReason::OutOfBounds));
            continue;
        }
        match out.last() {
            Some(prev) if prev.s.t == s.t => {
                if prev.s.v.to_bits() == s.v.to_bits() {
                    report.accepted += 1;
                } else {
                    report.rejected.push(reject(RejectReason::Duplicate));
                }
            }
            _ => out.push(Incoming { s, index: i }),
        }
    }
    out
}

pub(super) fn backfill(inner: &Inner, labels: &Labels, samples: &[Sample]) -> Result<CommitReport> {
    if labels.is_empty() {
        return Err(LabelError::Empty.into());
    }
    let mut report = CommitReport::default();
    let newest = samples.iter().map(|s| s.t).max().unwrap_or(i64::MIN);
    let cutoff = retention_cutoff(inner, inner.head.max_t().max(newest))
        .max(inner.cutoff.load(Ordering::Relaxed));
    let incoming = prepare(samples, cutoff, &mut report);
    if incoming.is_empty() {
        finish(inner, &mut report);
        return Ok(report);
    }

    // Retention and checkpoints take this lock too, so the series cannot vanish and no other
    // writer moves its chunks while we work.
    let _guard = lock_maintenance(inner);
    let (id, created) = inner.head.get_or_create(labels);
    if created {
        inner
            .counters
            .series_created
            .fetch_add(1, Ordering::Relaxed);
    }
    let mut shard = inner.head.shard(id);
    let series = shard.get_mut(&id).ok_or_else(|| {
        StorageError::corrupt("head", "series vanished under the maintenance lock")
    })?;

    // 1. Everything the series holds in memory goes to disk first, as a checkpoint that seals
    // every open chunk writes it.
    if series.chunk.is_some() || !series.pending.is_empty() || !series.persisted {
        let mut batch = WriteBatch::default();
        let starts = stage_series(inner, &mut batch, id, series, true);
        inner.write(batch)?;
        let sealed = starts.len();
        for start in starts {
            series.chunk_written(start);
        }
        series.persisted = true;
        let _ = inner
            .pending_chunks
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(sealed))
            });
    }

    // 2. Merge with the persisted chunks the new samples overlap.
    let (first, last) = (incoming[0].s.t, incoming[incoming.len() - 1].s.t);
    let (old_keys, old, old_sts) = read_overlapping(inner, id, first, last)?;
    let mut merged: Vec<Sample> = Vec::with_capacity(old.len() + incoming.len());
    let mut merged_sts: Vec<i64> = Vec::with_capacity(old.len() + incoming.len());
    let mut written = 0usize;
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < incoming.len() {
        let take_old = match (old.get(i), incoming.get(j)) {
            (Some(o), Some(n)) if o.t == n.s.t => {
                if o.v.to_bits() == n.s.v.to_bits() {
                    report.accepted += 1;
                } else {
                    report.rejected.push(Rejection {
                        index: n.index,
                        reason: RejectReason::Duplicate,
                        t: n.s.t,
                        v: n.s.v,
                        series_max_t: series.max_t,
                    });
                }
                j += 1;
                true
            }
            (Some(o), Some(n)) => o.t < n.s.t,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_old {
            merged.push(old[i]);
            merged_sts.push(old_sts.get(i).copied().unwrap_or(0));
            i += 1;
        } else {
            merged.push(incoming[j].s);
            merged_sts.push(0);
            written += 1;
            j += 1;
        }
    }
    if written == 0 {
        drop(shard);
        finish(inner, &mut report);
        return Ok(report);
    }

    let mut batch = WriteBatch::default();
    let chunks_cf = inner.cf(CF_CHUNKS);
    for k in &old_keys {
        batch.delete_cf(chunks_cf, keys::chunk_key(id, *k));
    }
    for (run, sts) in merged
        .chunks(CHUNK_SAMPLES)
        .zip(merged_sts.chunks(CHUNK_SAMPLES))
    {
        let sts: &[i64] = if sts.iter().all(|&st| st == 0) {
            &[]
        } else {
            sts
        };
        batch.put_cf(
            chunks_cf,
            keys::chunk_key(id, run[0].t),
            chunk::seal(run, sts),
        );
    }
    let newest = merged[merged.len() - 1];
    series.min_t = series.min_t.min(merged[0].t);
    if newest.t > series.max_t {
        series.max_t = newest.t;
        series.last_v = newest.v.to_bits();
    }
    batch.put_cf(
        inner.cf(CF_HEAD),
        keys::series_key(id),
        encode_state(series),
    );
    series.dirty = false;
    // The rewrite may have replaced the newest chunk: forget which one it was.
    series.newest_persisted = i64::MIN;
    let max_t = series.max_t;
    inner.write(batch)?;
    drop(shard);
    inner.head.note_time(max_t);
    report.accepted += written;
    finish(inner, &mut report);
    Ok(report)
}

/// Sorts the rejections by input position and counts the outcome.
fn finish(inner: &Inner, report: &mut CommitReport) {
    report.rejected.sort_by_key(|r| r.index);
    inner.counters.count(report);
}

/// The persisted chunks of `id` that overlap `[first, last]`: their start keys, and their
/// samples and start timestamps (empty or parallel) in time order.
fn read_overlapping(
    inner: &Inner,
    id: SeriesRef,
    first: i64,
    last: i64,
) -> Result<(Vec<i64>, Vec<Sample>, Vec<i64>)> {
    let (mut starts, mut samples, mut sts) = (Vec::new(), Vec::new(), Vec::new());
    let mut it = inner.db.raw_iterator_cf(inner.cf(CF_CHUNKS));
    super::query::seek_chunks(&mut it, id, first);
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let (cid, start) =
            keys::parse_chunk_key(k).ok_or_else(|| StorageError::corrupt("chunks", "bad key"))?;
        if cid != id || start > last {
            break;
        }
        // Only the chunk found by `seek_for_prev` can start before `first`; it overlaps only if
        // it reaches it.
        if chunk::meta(v)?.max_t >= first {
            starts.push(start);
            chunk::decode_into(v, &mut samples, &mut sts)?;
        }
        it.next();
    }
    it.status()?;
    Ok((starts, samples, sts))
}
