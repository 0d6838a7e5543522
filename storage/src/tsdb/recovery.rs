//! Recovery at open: series labels, then the checkpointed head states, then the WAL tail (the
//! segments from the checkpoint on; in a format-1/2 store, the `wal` column family).
//!
//! Nothing scans chunks: restart cost is proportional to the number of series plus the WAL
//! written since the last checkpoint. Progress is logged every two seconds while it runs.
//! Replay applies samples with the append rules and silently skips those the state already
//! holds (see `maintenance.rs` for why records may overlap the checkpoint).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rocksdb::IteratorMode;

use super::head::{Applied, HistHead};
use super::keys::{
    self, CF_HEAD, CF_SERIES, CF_WAL, FORMAT_VERSION, META_CHECKPOINT, META_FORMAT,
    READABLE_FORMAT_VERSIONS,
};
use super::log;
use super::maintenance::decode_state;
use super::wal::{self, Logged};
use super::Inner;
use crate::chunk::{self, HeadChunk};
use crate::error::{Result, StorageError};
use crate::histogram::{HistogramChunk, HistogramSample};
use crate::interface::SeriesRef;
use crate::labels::Labels;

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    pub series: usize,
    pub wal_records: u64,
    pub samples_replayed: u64,
    pub duration: Duration,
}

struct Progress {
    started: Instant,
    last: Instant,
}

impl Progress {
    fn tick(&mut self, what: &str, done: u64, total: Option<u64>) {
        if self.last.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        match total {
            Some(total) if total > 0 => tracing::info!(
                "recovery: {what} {done}/{total} ({:.0}%), {elapsed:.1}s elapsed",
                100.0 * done as f64 / total as f64
            ),
            _ => tracing::info!("recovery: {what} {done}, {elapsed:.1}s elapsed"),
        }
    }
}

/// What the store's meta keys say, read before anything else opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    /// A format-1/2 store: its WAL is the `wal` column family.
    pub legacy: bool,
    /// The checkpoint (see [`META_CHECKPOINT`]); 0 when none was taken.
    pub checkpoint: u64,
}

/// Reads the format and checkpoint; marks a new store with the current format; refuses a
/// format this build cannot read.
pub(super) fn read_meta(db: &rocksdb::DB) -> Result<Meta> {
    let legacy = match db.get(META_FORMAT)? {
        None => {
            db.put(META_FORMAT, FORMAT_VERSION.to_be_bytes())?;
            false
        }
        Some(v) if v.as_slice() == FORMAT_VERSION.to_be_bytes() => false,
        // Format 4 only adds histogram chunks, head state version 2 and histogram WAL
        // records, none of which a format-3 store holds: mark it and go on.
        Some(v) if v.as_slice() == 3u32.to_be_bytes() => {
            db.put(META_FORMAT, FORMAT_VERSION.to_be_bytes())?;
            tracing::info!(
                "data directory marked storage format {FORMAT_VERSION}; older augur versions cannot open it any more"
            );
            false
        }
        Some(v)
            if READABLE_FORMAT_VERSIONS
                .iter()
                .any(|old| v.as_slice() == old.to_be_bytes()) =>
        {
            true
        }
        Some(v) => {
            return Err(StorageError::corrupt(
                "meta",
                format!("data directory has format {v:?}, this build reads format {FORMAT_VERSION}; use a matching augur version"),
            ))
        }
    };
    let checkpoint = match db.get(META_CHECKPOINT)? {
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| StorageError::corrupt("meta", "bad checkpoint sequence"))?,
        ),
        None => 0,
    };
    Ok(Meta { legacy, checkpoint })
}

impl Meta {
    /// The first WAL segment the checkpoint does not cover. A legacy store's checkpoint counts
    /// `wal` records, not segments, so every segment is after it.
    pub fn first_segment(&self) -> u64 {
        if self.legacy {
            0
        } else {
            self.checkpoint
        }
    }
}

pub(super) fn recover(inner: &Inner, meta: &Meta) -> Result<RecoveryStats> {
    let db = &inner.db;
    let started = Instant::now();
    let mut progress = Progress {
        started,
        last: started,
    };
    let checkpoint = meta.checkpoint;

    let mut stats = RecoveryStats::default();
    for item in db.iterator_cf(inner.cf(CF_SERIES), IteratorMode::Start) {
        let (k, v) = item?;
        let id =
            keys::parse_series_key(&k).ok_or_else(|| StorageError::corrupt("series", "bad key"))?;
        let labels =
            Labels::decode(&v).map_err(|e| StorageError::corrupt("series", e.to_string()))?;
        inner.head.insert_recovered(id, labels);
        stats.series += 1;
        progress.tick("series loaded", stats.series as u64, None);
    }

    let mut max_t = i64::MIN;
    for item in db.iterator_cf(inner.cf(CF_HEAD), IteratorMode::Start) {
        let (k, v) = item?;
        let id =
            keys::parse_series_key(&k).ok_or_else(|| StorageError::corrupt("head", "bad key"))?;
        let state =
            decode_state(&v).ok_or_else(|| StorageError::corrupt("head", "undecodable state"))?;
        let mut shard = inner.head.shard(id);
        let Some(s) = shard.get_mut(&id) else {
            continue;
        };
        s.min_t = state.min_t;
        s.max_t = state.max_t;
        s.last_v = state.last_v;
        s.last_is_hist = state.last_is_hist;
        if !state.chunk.is_empty() {
            let (samples, sts) = chunk::decode(state.chunk)?;
            s.chunk = HeadChunk::from_samples(&samples, &sts);
        }
        if state.had_hist || !state.hist.is_empty() {
            s.hist = Some(Box::new(HistHead {
                chunk: if state.hist.is_empty() {
                    None
                } else {
                    Some(HistogramChunk::from_sealed(state.hist)?)
                },
                pending: Vec::new(),
            }));
        }
        if s.has_samples() {
            max_t = max_t.max(s.max_t);
        }
    }

    // Gather the WAL tail. A commit writes its record after applying its samples, and one
    // commit applies shard by shard, so two commits to the same series can be logged in the
    // opposite order to their applies. Per series, applied samples strictly increase in
    // time; so the tail is gathered per series and replayed in time order, which is exactly
    // apply order.
    let mut tail: HashMap<SeriesRef, Vec<Logged>> = HashMap::new();
    let mut hist_tail: HashMap<SeriesRef, Vec<HistogramSample>> = HashMap::new();
    let mut gather = |record: &[u8], stats: &mut RecoveryStats| -> Result<()> {
        if wal::is_histogram_record(record) {
            wal::decode_histograms(record, |id, samples| {
                hist_tail.entry(id).or_default().extend(samples);
            })?;
        } else {
            wal::decode(record, |id, samples| {
                tail.entry(id).or_default().extend_from_slice(samples);
            })?;
        }
        stats.wal_records += 1;
        Ok(())
    };
    if meta.legacy {
        let wal_cf = inner.cf(CF_WAL);
        let last_seq = {
            let mut it = db.raw_iterator_cf(wal_cf);
            it.seek_to_last();
            it.key().and_then(keys::parse_wal_key)
        };
        let total = last_seq.map_or(0, |l| l.saturating_sub(checkpoint) + 1);
        for item in db.iterator_cf(
            wal_cf,
            IteratorMode::From(&keys::wal_key(checkpoint), rocksdb::Direction::Forward),
        ) {
            let (_, v) = item?;
            gather(&v, &mut stats)?;
            progress.tick("WAL records read", stats.wal_records, Some(total));
        }
    } else {
        let dir = inner.log.dir();
        let segments = log::segments(dir)?;
        // Segments below the checkpoint are left over from a crash between a checkpoint and
        // their deletion: the head already reflects them.
        inner.log.remove_below(checkpoint)?;
        let replay: Vec<u64> = segments.into_iter().filter(|&n| n >= checkpoint).collect();
        let total = replay.len() as u64;
        for (done, n) in replay.into_iter().enumerate() {
            let read = log::read_segment(dir, n, |record| gather(record, &mut stats))?;
            if let Some((offset, why, dropped)) = read.torn {
                tracing::warn!(
                    segment = n,
                    offset,
                    dropped_bytes = dropped,
                    "WAL segment ends in a damaged record ({why}); the {} records before it were replayed, the rest of the segment was skipped (a commit cut short by a crash was never acknowledged)",
                    read.frames
                );
            }
            progress.tick("WAL segments read", done as u64 + 1, Some(total));
        }
    }
    let mut cut_chunks = 0usize;
    let mut unknown_series = 0u64;
    let mut ids: Vec<SeriesRef> = tail.keys().chain(hist_tail.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let series_total = ids.len() as u64;
    for (done, id) in ids.into_iter().enumerate() {
        let mut floats = tail.remove(&id).unwrap_or_default();
        let mut hists = hist_tail.remove(&id).unwrap_or_default();
        let mut shard = inner.head.shard(id);
        let Some(s) = shard.get_mut(&id) else {
            unknown_series += 1;
            continue;
        };
        // One stream in time order, floats and histograms interleaved as they were applied
        // (per series, in-order appends strictly increase in time).
        floats.sort_by_key(|x| x.t);
        hists.sort_by_key(|x| x.t);
        let (mut i, mut j) = (0, 0);
        while i < floats.len() || j < hists.len() {
            let float_next = match (floats.get(i), hists.get(j)) {
                (Some(f), Some(h)) => f.t <= h.t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let (applied, cut, t) = if float_next {
                let x = floats[i];
                i += 1;
                // Whatever a commit accepted is taken back, out of order or not (`i64::MIN`).
                let (a, c) = s.append(x.t, x.v, x.st, i64::MIN);
                (a, c, x.t)
            } else {
                let x = &hists[j];
                j += 1;
                if s.has_samples() && x.t <= s.max_t {
                    // In the checkpointed state or chunks already.
                    continue;
                }
                let (a, c) = s.append_histogram(x.t, x.st, &x.h);
                (a, c, x.t)
            };
            if matches!(applied, Applied::Accepted | Applied::AcceptedOutOfOrder) {
                stats.samples_replayed += 1;
                max_t = max_t.max(t);
            }
            cut_chunks += usize::from(cut);
        }
        drop(shard);
        progress.tick("series replayed", done as u64 + 1, Some(series_total));
    }
    inner
        .pending_chunks
        .fetch_add(cut_chunks, Ordering::Relaxed);
    if unknown_series > 0 {
        tracing::warn!(
            unknown_series,
            "WAL named series with no stored labels; their samples were skipped"
        );
    }
    inner.head.note_time(max_t);
    if max_t != i64::MIN {
        // Hide samples past retention at once; the maintenance thread removes them.
        inner
            .cutoff
            .fetch_max(super::retention_cutoff(inner, max_t), Ordering::SeqCst);
    }
    stats.duration = started.elapsed();
    if stats.series > 0 {
        tracing::info!(
            series = stats.series,
            wal_records = stats.wal_records,
            samples = stats.samples_replayed,
            "recovery done in {:.2}s",
            stats.duration.as_secs_f64()
        );
    }
    // A delete a crash interrupted is finished now, after the WAL replay that may have
    // brought its samples back (its own checkpoint then covers the replay).
    if let Some(done) = super::delete::resume(inner)? {
        tracing::info!(
            series = done.series_matched,
            removed = done.series_removed,
            samples = done.samples_deleted,
            "finished a delete interrupted by the last shutdown"
        );
    } else if stats.wal_records > 0 || meta.legacy {
        // A checkpoint now keeps the next restart short (and completes a legacy store's
        // upgrade).
        super::maintenance::checkpoint(inner)?;
    }
    Ok(stats)
}
