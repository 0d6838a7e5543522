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

use super::head::{MemSeries, OooSample, PendingChunk};
use super::keys::{self, CF_CHUNKS, CF_HEAD};
use super::maintenance::{encode_state, lock_maintenance, stage_series};
use super::{retention_cutoff, Inner};
use crate::chunk::{self, HeadChunk};
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
    if series.hist.is_some() {
        // Float history merged among histogram chunks could overlap them: refused.
        let max_t = series.max_t;
        drop(shard);
        report.rejected.extend(incoming.iter().map(|x| Rejection {
            index: x.index,
            reason: RejectReason::HistogramSeries,
            t: x.s.t,
            v: x.s.v,
            series_max_t: max_t,
        }));
        finish(inner, &mut report);
        return Ok(report);
    }

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
    let (old_keys, old, old_sts) = read_overlapping_from(inner, id, first, last, false)?;
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
    write_runs(inner, &mut batch, id, &old_keys, &merged, &merged_sts);
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

/// The persisted chunks of `id` that overlap `[first, last]` (with `with_prev`, also the one
/// starting at or before `first` when it does not reach it but is not full): their start keys, and their
/// samples and start timestamps (empty or parallel) in time order.
fn read_overlapping_from(
    inner: &Inner,
    id: SeriesRef,
    first: i64,
    last: i64,
    with_prev: bool,
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
        let meta = chunk::meta(v)?;
        // Histogram chunks are left as they are: backfill and late samples are floats.
        let floats = !crate::histogram::is_histogram_chunk(v);
        if floats && (meta.max_t >= first || (with_prev && meta.count < CHUNK_SAMPLES)) {
            starts.push(start);
            chunk::decode_into(v, &mut samples, &mut sts)?;
        }
        it.next();
    }
    it.status()?;
    Ok((starts, samples, sts))
}

/// Merges every series' out-of-order buffer into its chunks. A checkpoint does this first,
/// under the maintenance lock and after rotating the WAL, so every buffered sample whose
/// record is in a segment the checkpoint deletes is merged before the deletion (a commit
/// applies before it logs).
///
/// Per series, under its shard lock, samples at or after the oldest in-memory chunk's start
/// are merged into the in-memory chunks, which are cut again into runs of [`CHUNK_SAMPLES`]
/// (all but the newest run pending, the newest open). Older samples are merged into the
/// persisted chunks they overlap (and the chunk just before them, so small chunks coalesce),
/// one write batch per shard; they stay in the buffer, visible to reads, until that batch is
/// durable. Both keep the invariant reads rely on: persisted chunks never overlap and all end
/// before the in-memory ones start. Samples past retention are dropped. A timestamp already
/// stored keeps its stored value.
///
/// Returns the number of samples merged.
pub(super) fn merge_out_of_order(inner: &Inner) -> Result<usize> {
    let cutoff = inner.cutoff.load(Ordering::Relaxed);
    let mut total = 0usize;
    for i in 0..super::head::SHARDS {
        let mut older: Vec<(SeriesRef, Vec<OooSample>)> = Vec::new();
        {
            let mut shard = inner.head.shard_at(i);
            for (&id, s) in shard.iter_mut() {
                let Some(mut buf) = s.ooo.take() else {
                    continue;
                };
                buf.retain(|x| x.t >= cutoff);
                let split = s
                    .oldest_in_memory()
                    .map_or(buf.len(), |t| buf.partition_point(|x| x.t < t));
                if split < buf.len() {
                    total += buf.len() - split;
                    merge_into_memory(s, &buf[split..]);
                    buf.truncate(split);
                }
                if !buf.is_empty() {
                    older.push((id, buf.to_vec()));
                    s.ooo = Some(buf);
                    // The merge below may rewrite the newest persisted chunk: a read must not
                    // seek it by its old start from now on.
                    s.newest_persisted = i64::MIN;
                }
                s.dirty = true;
            }
        }
        if older.is_empty() {
            continue;
        }
        let mut batch = WriteBatch::default();
        for (id, samples) in &older {
            stage_merge(inner, &mut batch, *id, samples)?;
            total += samples.len();
        }
        inner.write(batch)?;
        let mut shard = inner.head.shard_at(i);
        for (id, merged) in older {
            let Some(s) = shard.get_mut(&id) else {
                continue;
            };
            if let Some(buf) = s.ooo.as_mut() {
                buf.retain(|x| merged.binary_search_by_key(&x.t, |m| m.t).is_err());
                if buf.is_empty() {
                    s.ooo = None;
                }
            }
            // Chunks the maintenance thread wrote meanwhile (none: it is this thread) would
            // have set it again; keep it unknown.
            s.newest_persisted = i64::MIN;
        }
    }
    Ok(total)
}

/// Merges `extra` (sorted, none before the oldest in-memory chunk) into a series' in-memory
/// chunks and cuts them again.
fn merge_into_memory(s: &mut MemSeries, extra: &[OooSample]) {
    let (mut held, mut held_sts) = (Vec::new(), Vec::new());
    for p in &s.pending {
        p.chunk.decode_into(&mut held, &mut held_sts);
    }
    if let Some(c) = &s.chunk {
        c.decode_into(&mut held, &mut held_sts);
    }
    let (merged, merged_sts) = merge_keeping_held(&held, &held_sts, extra);
    s.pending.clear();
    s.chunk = None;
    let runs = merged.len().div_ceil(CHUNK_SAMPLES);
    for (k, (run, sts)) in merged
        .chunks(CHUNK_SAMPLES)
        .zip(merged_sts.chunks(CHUNK_SAMPLES))
        .enumerate()
    {
        let sts: &[i64] = if sts.iter().all(|&st| st == 0) {
            &[]
        } else {
            sts
        };
        let Some(chunk) = HeadChunk::from_samples(run, sts) else {
            continue;
        };
        // The newest run is the open chunk again, unless the series has moved on to
        // histograms (an open float chunk would then grow across theirs).
        if k + 1 == runs && s.hist.is_none() {
            s.chunk = Some(chunk);
        } else {
            s.pending.push(PendingChunk {
                start: chunk.min_t(),
                chunk,
            });
        }
    }
}

/// Stages the merge of `extra` (sorted) into the persisted chunks of `id` it overlaps, and
/// the chunk just before them.
fn stage_merge(
    inner: &Inner,
    batch: &mut WriteBatch,
    id: SeriesRef,
    extra: &[OooSample],
) -> Result<()> {
    let (first, last) = (extra[0].t, extra[extra.len() - 1].t);
    let (old_keys, old, old_sts) = read_overlapping_from(inner, id, first, last, true)?;
    let (merged, merged_sts) = merge_keeping_held(&old, &old_sts, extra);
    write_runs(inner, batch, id, &old_keys, &merged, &merged_sts);
    Ok(())
}

/// Stages the replacement of the chunks at `old_keys` by `merged` cut into runs of
/// [`CHUNK_SAMPLES`].
fn write_runs(
    inner: &Inner,
    batch: &mut WriteBatch,
    id: SeriesRef,
    old_keys: &[i64],
    merged: &[Sample],
    merged_sts: &[i64],
) {
    let chunks_cf = inner.cf(CF_CHUNKS);
    for k in old_keys {
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
}

/// Merges `extra` (sorted) into `held` (sorted, with start timestamps empty or parallel): a
/// timestamp `held` has keeps its value. Returns samples and parallel start timestamps.
fn merge_keeping_held(
    held: &[Sample],
    held_sts: &[i64],
    extra: &[OooSample],
) -> (Vec<Sample>, Vec<i64>) {
    let mut out = Vec::with_capacity(held.len() + extra.len());
    let mut sts = Vec::with_capacity(held.len() + extra.len());
    let (mut i, mut j) = (0, 0);
    while i < held.len() || j < extra.len() {
        let take_held = match (held.get(i), extra.get(j)) {
            (Some(h), Some(x)) if h.t == x.t => {
                j += 1;
                true
            }
            (Some(h), Some(x)) => h.t < x.t,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_held {
            out.push(held[i]);
            sts.push(held_sts.get(i).copied().unwrap_or(0));
            i += 1;
        } else {
            out.push(Sample::new(extra[j].t, extra[j].v));
            sts.push(extra[j].st);
            j += 1;
        }
    }
    (out, sts)
}
