//! Deleting samples and series (the admin API's `delete_series`).
//!
//! Prometheus records tombstones and hides what they cover at read time until a compaction
//! rewrites the blocks. Augur removes the samples for real at once, so reads need no
//! tombstone check: under the maintenance lock, and with commits held off (the commit gate:
//! a commit holds it from applying its samples to logging them),
//! 1. every matching series' interval is clamped to the samples it holds now (`[max(start,
//!    min_t), min(end, max_t)]`, as Prometheus clamps its tombstones, so samples appended
//!    after the delete are kept whatever `end` says), and the list is written as one key,
//!    `delete_pending`, in the default column family: the commit point;
//! 2. a series whose interval covers all it holds is removed as retention removes one
//!    (memory, `series`, `head`, postings, chunks); any other is written out as a backfill
//!    does (its in-memory chunks sealed to `chunks`), then each chunk the interval touches is
//!    rewritten without the samples in it, its out-of-order buffer filtered, and its head
//!    state written with its new oldest and newest samples (so deleting samples dated in
//!    the future lets appends go on from the newest one left); a series left with nothing
//!    is removed too;
//! 3. commits resume; a checkpoint rotates the WAL and deletes the segments that hold the
//!    deleted samples (every commit that applied one had logged it before step 1), and only
//!    then is `delete_pending` deleted.
//!
//! A crash at any point after 1 leaves `delete_pending` behind; recovery replays the WAL
//! (which may bring deleted samples back into memory) and then applies the list again, which
//! is idempotent. Before 1 nothing changed. So a `kill -9` during a delete leaves the old
//! state or the new one, never a mix. A delete that fails (a full disk) leaves its list too;
//! the next delete, or the next start, finishes it first. The bytes leave the disk when
//! RocksDB compacts the ranges ([`super::Tsdb::clean_tombstones`] forces it).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use croaring::Bitmap;
use rocksdb::WriteBatch;

use super::head::OooSample;
use super::keys::{self, CF_CHUNKS, CF_HEAD, META_DELETE};
use super::maintenance::{self, encode_state, lock_maintenance, stage_removal, stage_series};
use super::Inner;
use crate::chunk;
use crate::error::{Result, StorageError};
use crate::histogram::{self, HistogramChunk, HistogramSample};
use crate::interface::{Sample, SeriesRef};
use crate::matcher::Matcher;

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteStats {
    /// Series with samples in the interval.
    pub series_matched: usize,
    /// Series that held nothing else and are gone.
    pub series_removed: usize,
    /// Samples deleted, float and histogram.
    pub samples_deleted: u64,
}

/// One series' part of a delete: its samples in `[t0, t1]` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Doomed {
    id: SeriesRef,
    t0: i64,
    t1: i64,
}

const DOOMED_BYTES: usize = 20;

/// `delete_pending` value: per series `u32be id, time64 t0, time64 t1` (see
/// `storage/FORMAT.md`).
fn encode(list: &[Doomed]) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len() * DOOMED_BYTES);
    for d in list {
        out.extend_from_slice(&keys::chunk_key(d.id, d.t0));
        out.extend_from_slice(&keys::chunk_key(0, d.t1)[4..]);
    }
    out
}

fn decode(bytes: &[u8]) -> Result<Vec<Doomed>> {
    if !bytes.len().is_multiple_of(DOOMED_BYTES) {
        return Err(StorageError::corrupt(
            "meta",
            "delete_pending has a partial entry",
        ));
    }
    bytes
        .chunks_exact(DOOMED_BYTES)
        .map(|e| {
            let (id, t0) = keys::parse_chunk_key(&e[..12]).expect("12 bytes");
            let mut k = [0u8; 12];
            k[4..].copy_from_slice(&e[12..]);
            let (_, t1) = keys::parse_chunk_key(&k).expect("12 bytes");
            Ok(Doomed { id, t0, t1 })
        })
        .collect()
}

/// Deletes the samples in `[start, end]` of every series matching any of `selectors` (each a
/// list of matchers that must all hold). Returns once they are gone from reads and a
/// checkpoint has made that durable.
pub(super) fn delete(
    inner: &Inner,
    selectors: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> Result<DeleteStats> {
    let _guard = lock_maintenance(inner);
    // A delete that failed part-way (a full disk, say) left its list: finish it first, so
    // this one's list does not replace it.
    if let Some(bytes) = inner.db.get(META_DELETE)? {
        finish(inner, decode(&bytes)?)?;
    }
    // No commit runs from here until the samples are gone: each either applied and logged
    // before (its record is then in a segment the checkpoint below deletes), or applies
    // after the delete, as new data.
    let gate = inner.commit_gate.write().unwrap_or_else(|e| e.into_inner());
    let mut ids = Bitmap::new();
    for matchers in selectors {
        ids.or_inplace(&super::query::matching_ids(inner, matchers)?);
    }
    let mut list = Vec::new();
    for id in ids.iter() {
        let shard = inner.head.shard(id);
        let Some(s) = shard.get(&id) else {
            continue;
        };
        if !s.has_samples() {
            continue;
        }
        let (t0, t1) = (start.max(s.min_t), end.min(s.max_t));
        if t0 <= t1 {
            list.push(Doomed { id, t0, t1 });
        }
    }
    if list.is_empty() {
        return Ok(DeleteStats::default());
    }
    let mut batch = WriteBatch::default();
    batch.put(META_DELETE, encode(&list));
    inner.write(batch)?;
    let stats = apply(inner, &list)?;
    drop(gate);
    durable(inner)?;
    Ok(stats)
}

/// Completes a delete a crash interrupted (recovery calls it after replaying the WAL).
/// Returns what it did, or `None` when no delete was pending.
pub(super) fn resume(inner: &Inner) -> Result<Option<DeleteStats>> {
    let _guard = lock_maintenance(inner);
    let Some(bytes) = inner.db.get(META_DELETE)? else {
        return Ok(None);
    };
    finish(inner, decode(&bytes)?).map(Some)
}

/// Steps 2 and 3 of the module comment for a list already written, under the maintenance
/// lock.
fn finish(inner: &Inner, list: Vec<Doomed>) -> Result<DeleteStats> {
    let stats = {
        let _gate = inner.commit_gate.write().unwrap_or_else(|e| e.into_inner());
        apply(inner, &list)?
    };
    durable(inner)?;
    Ok(stats)
}

/// Step 3: a checkpoint drops the WAL segments that still hold deleted samples, then the
/// list goes.
fn durable(inner: &Inner) -> Result<()> {
    maintenance::checkpoint_locked(inner)?;
    let mut batch = WriteBatch::default();
    batch.delete(META_DELETE);
    inner.write(batch)
}

/// Step 2: removes the samples, under the maintenance lock and the commit gate.
fn apply(inner: &Inner, list: &[Doomed]) -> Result<DeleteStats> {
    let mut stats = DeleteStats {
        series_matched: list.len(),
        ..DeleteStats::default()
    };
    let mut gone = Vec::new();
    for d in list {
        match trim(inner, d)? {
            Trimmed::Whole => gone.push(*d),
            Trimmed::Emptied(n) => {
                stats.samples_deleted += n;
                gone.push(*d);
            }
            Trimmed::Samples(n) => stats.samples_deleted += n,
        }
    }
    let mut batch = WriteBatch::default();
    let mut postings: HashMap<Vec<u8>, Vec<SeriesRef>> = HashMap::new();
    for d in gone {
        let labels = match inner.head.shard(d.id).get(&d.id) {
            Some(s) => s.labels.clone(),
            None => continue,
        };
        // No commit can change the series meanwhile (the gate is held).
        let Some(s) = inner.head.remove_if(d.id, &labels, |_| true) else {
            continue;
        };
        stats.samples_deleted += held_samples(inner, d.id, &s)?;
        stats.series_removed += 1;
        stage_removal(inner, &mut batch, d.id, &s.labels, &mut postings);
    }
    maintenance::stage_postings_removal(inner, &mut batch, postings);
    inner.write(batch)?;
    inner
        .counters
        .series_removed
        .fetch_add(stats.series_removed as u64, Ordering::Relaxed);
    Ok(stats)
}

enum Trimmed {
    /// The interval covers everything the series holds: remove it.
    Whole,
    /// This many samples were deleted, and the series holds nothing else: remove it.
    Emptied(u64),
    /// This many samples were deleted.
    Samples(u64),
}

/// Deletes a series' samples in `[t0, t1]`, unless that is all it holds.
fn trim(inner: &Inner, d: &Doomed) -> Result<Trimmed> {
    let mut shard = inner.head.shard(d.id);
    let Some(s) = shard.get_mut(&d.id) else {
        return Ok(Trimmed::Samples(0));
    };
    if !s.has_samples() || d.t1 < s.min_t || d.t0 > s.max_t {
        return Ok(Trimmed::Samples(0));
    }
    if d.t0 <= s.min_t && d.t1 >= s.max_t {
        return Ok(Trimmed::Whole);
    }
    // Everything in memory goes to disk first, so the rewrite below sees all of it.
    if s.chunk.is_some()
        || !s.pending.is_empty()
        || s.hist
            .as_ref()
            .is_some_and(|h| h.chunk.is_some() || !h.pending.is_empty())
        || !s.persisted
    {
        let mut batch = WriteBatch::default();
        let starts = stage_series(inner, &mut batch, d.id, s, true);
        inner.write(batch)?;
        let sealed = starts.len();
        for start in starts {
            s.chunk_written(start);
        }
        s.persisted = true;
        let _ = inner
            .pending_chunks
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(sealed))
            });
    }
    let mut deleted = 0u64;
    if let Some(buf) = s.ooo.as_mut() {
        let before = buf.len();
        buf.retain(|x: &OooSample| x.t < d.t0 || x.t > d.t1);
        deleted += (before - buf.len()) as u64;
        if buf.is_empty() {
            s.ooo = None;
        }
    }
    let mut batch = WriteBatch::default();
    deleted += rewrite_chunks(inner, &mut batch, d)?;
    inner.write(batch)?;
    let first_ooo = s.ooo.as_ref().and_then(|b| b.first()).map(|x| x.t);
    let last_ooo = s.ooo.as_ref().and_then(|b| b.last()).copied();
    let newest_chunk = newest_persisted_sample(inner, d.id)?;
    if newest_chunk.is_none() && last_ooo.is_none() {
        // Earlier deletes took the rest: nothing is left.
        return Ok(Trimmed::Emptied(deleted));
    }
    if d.t0 <= s.min_t {
        let first_chunk = first_chunk_start(inner, d.id)?;
        if let Some(t) = first_chunk.into_iter().chain(first_ooo).min() {
            s.min_t = t;
        }
    }
    if d.t1 >= s.max_t {
        // The newest sample went: the newest left takes its place (for the ordering and
        // duplicate rules and for time filtering).
        let (t, bits, is_hist) = match (newest_chunk, last_ooo) {
            (Some(c), Some(o)) if o.t > c.0 => (o.t, o.v.to_bits(), false),
            (Some(c), _) => c,
            (None, Some(o)) => (o.t, o.v.to_bits(), false),
            (None, None) => unreachable!("handled above"),
        };
        s.max_t = t;
        s.last_v = bits;
        s.last_is_hist = is_hist;
    }
    // The rewrite may have replaced the newest chunk: forget which one it was.
    s.newest_persisted = i64::MIN;
    let mut batch = WriteBatch::default();
    batch.put_cf(inner.cf(CF_HEAD), keys::series_key(d.id), encode_state(s));
    s.dirty = false;
    inner.write(batch)?;
    Ok(Trimmed::Samples(deleted))
}

/// The newest sample in the series' persisted chunks: time, value bits (for a histogram,
/// [`histogram::Histogram::digest`]) and whether it is a histogram.
fn newest_persisted_sample(inner: &Inner, id: SeriesRef) -> Result<Option<(i64, u64, bool)>> {
    let mut it = inner.db.raw_iterator_cf(inner.cf(CF_CHUNKS));
    it.seek_for_prev(keys::chunk_key(id, i64::MAX));
    let found = match (it.key(), it.value()) {
        (Some(k), Some(v)) if keys::parse_chunk_key(k).is_some_and(|(cid, _)| cid == id) => {
            if histogram::is_histogram_chunk(v) {
                let mut all = Vec::new();
                histogram::decode_sealed(v, &mut all)?;
                all.last().map(|x| (x.t, x.h.digest(), true))
            } else {
                let (samples, _) = chunk::decode(v)?;
                samples.last().map(|x| (x.t, x.v.to_bits(), false))
            }
        }
        _ => None,
    };
    it.status()?;
    Ok(found)
}

/// Stages the rewrite of every persisted chunk of `d.id` that reaches into `[t0, t1]`,
/// without the samples in it. Returns how many samples that deletes.
fn rewrite_chunks(inner: &Inner, batch: &mut WriteBatch, d: &Doomed) -> Result<u64> {
    let chunks_cf = inner.cf(CF_CHUNKS);
    let mut deleted = 0u64;
    let mut it = inner.db.raw_iterator_cf(chunks_cf);
    super::query::seek_chunks(&mut it, d.id, d.t0);
    let keep = |t: i64| t < d.t0 || t > d.t1;
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let (cid, start) =
            keys::parse_chunk_key(k).ok_or_else(|| StorageError::corrupt("chunks", "bad key"))?;
        if cid != d.id || start > d.t1 {
            break;
        }
        let meta = chunk::meta(v)?;
        if meta.max_t < d.t0 {
            it.next();
            continue;
        }
        batch.delete_cf(chunks_cf, keys::chunk_key(d.id, start));
        if histogram::is_histogram_chunk(v) {
            let mut all: Vec<HistogramSample> = Vec::new();
            histogram::decode_sealed(v, &mut all)?;
            let before = all.len();
            all.retain(|x| keep(x.t));
            deleted += (before - all.len()) as u64;
            if let Some((first, rest)) = all.split_first() {
                let mut c = HistogramChunk::new(first.t, first.st, &first.h);
                for x in rest {
                    c.append(x.t, x.st, &x.h);
                }
                batch.put_cf(chunks_cf, keys::chunk_key(d.id, first.t), c.seal());
            }
        } else {
            let (samples, sts) = chunk::decode(v)?;
            let (mut kept, mut kept_sts): (Vec<Sample>, Vec<i64>) = (Vec::new(), Vec::new());
            for (i, x) in samples.iter().enumerate() {
                if keep(x.t) {
                    kept.push(*x);
                    kept_sts.push(sts.get(i).copied().unwrap_or(0));
                }
            }
            deleted += (samples.len() - kept.len()) as u64;
            if !kept.is_empty() {
                if kept_sts.iter().all(|&st| st == 0) {
                    kept_sts.clear();
                }
                batch.put_cf(
                    chunks_cf,
                    keys::chunk_key(d.id, kept[0].t),
                    chunk::seal(&kept, &kept_sts),
                );
            }
        }
        it.next();
    }
    it.status()?;
    Ok(deleted)
}

/// The start of the series' oldest persisted chunk, if it has one.
fn first_chunk_start(inner: &Inner, id: SeriesRef) -> Result<Option<i64>> {
    let mut it = inner.db.raw_iterator_cf(inner.cf(CF_CHUNKS));
    it.seek(keys::chunk_key(id, i64::MIN));
    let found = it
        .key()
        .and_then(keys::parse_chunk_key)
        .filter(|(cid, _)| *cid == id)
        .map(|(_, t)| t);
    it.status()?;
    Ok(found)
}

/// How many samples a removed series held, in memory and in its persisted chunks.
fn held_samples(inner: &Inner, id: SeriesRef, s: &super::head::MemSeries) -> Result<u64> {
    let mut n = s.chunk.as_ref().map_or(0, |c| c.len())
        + s.pending.iter().map(|p| p.chunk.len()).sum::<usize>()
        + s.ooo.as_ref().map_or(0, |b| b.len());
    if let Some(h) = &s.hist {
        n += h.chunk.as_ref().map_or(0, |c| c.len())
            + h.pending.iter().map(|(_, c)| c.len()).sum::<usize>();
    }
    let mut it = inner.db.raw_iterator_cf(inner.cf(CF_CHUNKS));
    it.seek(keys::chunk_key(id, i64::MIN));
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        if keys::parse_chunk_key(k).is_none_or(|(cid, _)| cid != id) {
            break;
        }
        n += chunk::meta(v)?.count;
        it.next();
    }
    it.status()?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::{Options, Tsdb};
    use crate::{Appendable, Labels, Queryable};

    /// A crash right after the commit point (the list written, nothing applied, the WAL
    /// holding every sample): the next open replays the WAL, then finishes the delete.
    #[test]
    fn an_interrupted_delete_is_finished_at_the_next_open() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = || Options {
            background: false,
            ..Options::default()
        };
        let x = Labels::new([("__name__", "x")]).unwrap();
        let y = Labels::new([("__name__", "y")]).unwrap();
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let mut app = db.appender();
            for t in 0..300 {
                app.append(&x, t * 1000, t as f64).unwrap();
                app.append(&y, t * 1000, t as f64).unwrap();
            }
            app.commit().unwrap();
            let id = |l: &Labels| db.inner.head.get_or_create(l).0;
            let list = [
                Doomed {
                    id: id(&x),
                    t0: 100_000,
                    t1: 199_000,
                },
                Doomed {
                    id: id(&y),
                    t0: 0,
                    t1: 299_000,
                },
            ];
            db.inner.db.put(META_DELETE, encode(&list)).unwrap();
            db.close_as_if_killed();
        }
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert!(db.inner.db.get(META_DELETE).unwrap().is_none());
        let q = db.querier(i64::MIN + 1, i64::MAX).unwrap();
        let got = q.select(&[Matcher::equal("__name__", "x")]).unwrap();
        let ts: Vec<i64> = got[0].samples.iter().map(|s| s.t / 1000).collect();
        assert_eq!(ts, (0..100).chain(200..300).collect::<Vec<_>>());
        assert!(q
            .series(&[Matcher::equal("__name__", "y")])
            .unwrap()
            .is_empty());
    }

    /// A list a failed delete left behind is finished before the next delete writes its own.
    #[test]
    fn a_left_over_list_is_finished_before_the_next_delete() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Tsdb::open(
            dir.path(),
            Options {
                background: false,
                ..Options::default()
            },
        )
        .unwrap();
        let x = Labels::new([("__name__", "x")]).unwrap();
        let y = Labels::new([("__name__", "y")]).unwrap();
        let mut app = db.appender();
        for t in 0..10 {
            app.append(&x, t * 1000, 1.0).unwrap();
            app.append(&y, t * 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let left = [Doomed {
            id: db.inner.head.get_or_create(&x).0,
            t0: 0,
            t1: 9000,
        }];
        db.inner.db.put(META_DELETE, encode(&left)).unwrap();
        db.delete_series(&[vec![Matcher::equal("__name__", "y")]], 0, 4000)
            .unwrap();
        assert!(db.inner.db.get(META_DELETE).unwrap().is_none());
        let q = db.querier(i64::MIN + 1, i64::MAX).unwrap();
        assert!(q
            .select(&[Matcher::equal("__name__", "x")])
            .unwrap()
            .is_empty());
        let got = q.select(&[Matcher::equal("__name__", "y")]).unwrap();
        assert_eq!(got[0].samples.len(), 5);
    }

    #[test]
    fn pending_list_round_trips() {
        let list = vec![
            Doomed {
                id: 1,
                t0: i64::MIN + 1,
                t1: -5,
            },
            Doomed {
                id: u32::MAX,
                t0: 0,
                t1: i64::MAX,
            },
        ];
        assert_eq!(decode(&encode(&list)).unwrap(), list);
        assert!(decode(&[0; 19]).is_err());
    }
}
