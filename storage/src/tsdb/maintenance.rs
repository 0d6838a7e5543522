//! Background maintenance: head checkpoints and retention.
//!
//! **Sealing.** Appends cut full chunks into each series' `pending` list; this thread seals them
//! (picks the smallest encoding) and writes them to `chunks` whenever enough are waiting, and
//! at every checkpoint. Until then their samples are covered by the WAL.
//!
//! **Checkpoint.** Read the WAL sequence counter `S` first, then walk every shard writing the
//! state of each changed series (newest time, last value, open chunk sealed) to the `head`
//! column family, along with any chunk still pending and labels not yet persisted. Open chunks
//! idle for longer than `idle_seal_after` are sealed into `chunks` and dropped from memory.
//! Then flush RocksDB's memtables (so its own log files are released), store `S` as the
//! checkpoint and delete the WAL segments below it.
//!
//! Why this is safe without stopping ingestion: a commit writes its record only after
//! applying to the head, so every record in a segment below `S` was applied before the walk
//! began and the walk saw it. Records in `S` and later are replayed at recovery; replay skips
//! samples the checkpointed state already holds in memory and a merge keeps a stored
//! timestamp's value, so seeing a sample twice is harmless. Per series, state and sealed
//! chunks go in one batch. Before the walk, every series' out-of-order buffer is merged into
//! its chunks (`backfill::merge_out_of_order`): a buffered sample was applied before its record
//! was written, so one logged below `S` is in a buffer by the time the merge runs.
//!
//! **What is on disk, and its bound** (see `storage/FORMAT.md`): WAL segments hold what
//! arrived since the last checkpoint, which comes at least every `checkpoint_interval` and
//! as soon as `checkpoint_wal_bytes` accumulate; RocksDB's own log holds what RocksDB was
//! given since then (never samples, only series, postings, sealed chunks and head states),
//! at most [`super::ROCKSDB_LOG_BUDGET`].
//!
//! **Retention.** The cutoff is the head's newest sample time minus the retention period (as
//! Prometheus measures it from the newest block). Reads hide older samples at once; a RocksDB
//! compaction filter drops chunks whose newest sample is older, and periodic compaction makes
//! sure every file is visited within a day. Series whose newest sample is older are removed
//! from memory, `series`, `head`, the postings and `chunks`. Each shard is locked only while it
//! is scanned, so ingestion continues throughout.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rocksdb::WriteBatch;

use super::append::persist_series;
use super::head::{self, MemSeries, PendingChunk};
use super::keys::{self, CF_CHUNKS, CF_HEAD, CF_POSTINGS, CF_SERIES, CF_WAL, META_CHECKPOINT};
use super::postings::Delta;
use super::Inner;
use crate::error::Result;
use crate::interface::SeriesRef;
use crate::varint::{self, Reader};

/// Flush a maintenance batch once it holds this many bytes.
const BATCH_BYTES: usize = 4 << 20;

/// Seal and write cut chunks once this many are waiting (about 10 MiB of head chunks).
const PENDING_FLUSH_CHUNKS: usize = 32_768;

/// What a checkpoint did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    pub series_written: usize,
    pub chunks_sealed: usize,
    pub wal_seq: u64,
}

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionStats {
    pub cutoff: i64,
    pub series_removed: usize,
}

/// Version 1: no histograms (read). Version 2: the open float chunk is length-prefixed and
/// the open histogram chunk follows it.
const HEAD_STATE_V1: u8 = 1;
const HEAD_STATE_VERSION: u8 = 2;

/// `head` value: `u8 version (2), varint min_t, varint max_t, u64 LE last value bits, u8 flags
/// (bit 0: the series has held histograms; bit 1: the newest sample is one), uvarint len +
/// sealed open float chunk (len 0: none), [sealed open histogram chunk]` (see
/// `storage/FORMAT.md`, "Head state").
pub(super) fn encode_state(s: &MemSeries) -> Vec<u8> {
    let chunk = s.chunk.as_ref().map(|c| c.seal());
    let hist = s
        .hist
        .as_ref()
        .and_then(|h| h.chunk.as_ref())
        .map(|c| c.seal());
    let mut out = Vec::with_capacity(
        28 + chunk.as_ref().map_or(0, Vec::len) + hist.as_ref().map_or(0, Vec::len),
    );
    out.push(HEAD_STATE_VERSION);
    varint::put_varint(&mut out, s.min_t);
    varint::put_varint(&mut out, s.max_t);
    out.extend_from_slice(&s.last_v.to_le_bytes());
    out.push(u8::from(s.hist.is_some()) | (u8::from(s.last_is_hist) << 1));
    let chunk = chunk.unwrap_or_default();
    varint::put_uvarint(&mut out, chunk.len() as u64);
    out.extend_from_slice(&chunk);
    if let Some(h) = hist {
        out.extend_from_slice(&h);
    }
    out
}

/// A decoded `head` value.
pub(super) struct State<'a> {
    pub min_t: i64,
    pub max_t: i64,
    pub last_v: u64,
    /// The series has held histograms.
    pub had_hist: bool,
    /// The newest sample is a histogram.
    pub last_is_hist: bool,
    /// The sealed open float chunk (empty: none).
    pub chunk: &'a [u8],
    /// The sealed open histogram chunk (empty: none).
    pub hist: &'a [u8],
}

/// Decodes a `head` value of either version.
pub(super) fn decode_state(bytes: &[u8]) -> Option<State<'_>> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    let min_t = r.varint()?;
    let max_t = r.varint()?;
    let last_v = r.u64_le()?;
    let (flags, chunk, hist) = match version {
        HEAD_STATE_V1 => (0, r.rest(), &[][..]),
        HEAD_STATE_VERSION => {
            let flags = r.u8()?;
            let n = usize::try_from(r.uvarint()?).ok()?;
            let chunk = r.bytes(n)?;
            (flags, chunk, r.rest())
        }
        _ => return None,
    };
    Some(State {
        min_t,
        max_t,
        last_v,
        had_hist: flags & 1 != 0,
        last_is_hist: flags & 2 != 0,
        chunk,
        hist,
    })
}

pub(super) fn lock_maintenance(inner: &Inner) -> std::sync::MutexGuard<'_, ()> {
    inner.maintenance.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn checkpoint(inner: &Inner) -> Result<CheckpointStats> {
    let _guard = lock_maintenance(inner);
    checkpoint_locked(inner)
}

pub(super) fn checkpoint_locked(inner: &Inner) -> Result<CheckpointStats> {
    // Every record in a segment below `seq` was written after its samples were applied, so
    // before this rotation: the walk below sees them.
    let seq = inner.log.rotate()?;
    let wal_bytes = inner.wal_bytes.swap(0, Ordering::Relaxed);
    let full = inner.full_checkpoint.swap(false, Ordering::SeqCst);
    // Samples a failed commit left in the head are written by this checkpoint's walk; a
    // failure after this point sets the flag again.
    let relog = inner.relog_noops.swap(false, Ordering::SeqCst);
    // Most pending chunks are sealed outside the shard locks first; write_states takes the
    // rest under the locks, consistently with each series' state. The maintenance lock is
    // held throughout, so no other checkpoint or flush interleaves.
    let result = super::backfill::merge_out_of_order(inner)
        .and_then(|_| flush_pending_locked(inner))
        .and_then(|_| write_states(inner, full, false))
        .and_then(|mut stats| {
            // The memtables go to SSTs, so RocksDB can delete its own log files: everything a
            // checkpoint wrote is then in SSTs, and the log holds only what comes after.
            flush_memtables(inner)?;
            let mut batch = WriteBatch::default();
            batch.put(META_CHECKPOINT, seq.to_be_bytes());
            let legacy = inner.legacy_wal.load(Ordering::SeqCst);
            if legacy {
                // Completes a format-1/2 store's upgrade: its `wal` records were replayed
                // into the head this checkpoint wrote.
                batch.delete_range_cf(inner.cf(CF_WAL), keys::wal_key(0), keys::wal_key(u64::MAX));
                batch.delete_cf(inner.cf(CF_WAL), keys::wal_key(u64::MAX));
                batch.put(keys::META_FORMAT, keys::FORMAT_VERSION.to_be_bytes());
            }
            inner.write(batch)?;
            if legacy {
                inner.legacy_wal.store(false, Ordering::SeqCst);
                tracing::info!(
                    "data directory upgraded to storage format {}; older augur versions cannot open it any more",
                    keys::FORMAT_VERSION
                );
            }
            inner.log.remove_below(seq)?;
            stats.wal_seq = seq;
            Ok(stats)
        });
    if result.is_err() {
        inner.full_checkpoint.store(true, Ordering::SeqCst);
        if relog {
            inner.relog_noops.store(true, Ordering::SeqCst);
        }
        inner.wal_bytes.fetch_add(wal_bytes, Ordering::Relaxed);
    } else {
        inner.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Flushes every column family's memtable to SSTs and waits for it.
fn flush_memtables(inner: &Inner) -> Result<()> {
    let mut fo = rocksdb::FlushOptions::default();
    fo.set_wait(true);
    for name in keys::ALL_CFS {
        inner.db.flush_cf_opt(inner.cf(name), &fo)?;
    }
    // The default column family (format and checkpoint keys) pins log files too.
    inner.db.flush_opt(&fo)?;
    Ok(())
}

/// Writes a copy of the store to `dir` (see [`super::Tsdb::snapshot`]). The WAL is rotated
/// first, so every frame acknowledged before the call is in a closed segment; the RocksDB
/// checkpoint holds the head as of the last checkpoint `c` (the maintenance lock keeps it so),
/// and the segments from `c` to the rotation are copied beside it.
pub(super) fn snapshot(inner: &Inner, dir: &std::path::Path) -> Result<()> {
    let _guard = lock_maintenance(inner);
    let until = inner.log.rotate()?;
    rocksdb::checkpoint::Checkpoint::new(&inner.db)?.create_checkpoint(dir)?;
    let since = super::recovery::read_meta(&inner.db)?.first_segment();
    inner
        .log
        .copy_segments(since, until, &dir.join(keys::WAL_DIR))
}

/// Seals every open chunk (not only idle ones) and writes the states.
pub(super) fn seal_all(inner: &Inner) -> Result<()> {
    let _guard = lock_maintenance(inner);
    let result = write_states(inner, true, true).map(|_| ());
    if result.is_err() {
        inner.full_checkpoint.store(true, Ordering::SeqCst);
    }
    result
}

/// Adds one series to a checkpoint batch: its labels and postings if they are not durable
/// yet, the open chunk cut into `pending` when `seal_open`, every pending chunk sealed, and
/// its head state. Returns the starts of the chunks staged; the caller forgets them from
/// `pending` (and marks the labels persisted) once the batch is durable.
pub(super) fn stage_series(
    inner: &Inner,
    batch: &mut WriteBatch,
    id: SeriesRef,
    s: &mut MemSeries,
    seal_open: bool,
) -> Vec<i64> {
    if !s.persisted {
        persist_series(inner, batch, id, &s.labels);
    }
    if seal_open {
        s.cut_open();
        if let Some(h) = &mut s.hist {
            h.cut_open();
        }
    }
    let chunks_cf = inner.cf(CF_CHUNKS);
    let mut starts: Vec<i64> = s.pending.iter().map(|p| p.start).collect();
    for p in &s.pending {
        batch.put_cf(chunks_cf, keys::chunk_key(id, p.start), p.chunk.seal());
    }
    if let Some(h) = &s.hist {
        for (start, c) in &h.pending {
            batch.put_cf(chunks_cf, keys::chunk_key(id, *start), c.seal());
            starts.push(*start);
        }
    }
    batch.put_cf(inner.cf(CF_HEAD), keys::series_key(id), encode_state(s));
    s.dirty = false;
    starts
}

fn write_states(inner: &Inner, all: bool, seal_everything: bool) -> Result<CheckpointStats> {
    let idle_before = super::capped_now(inner.head.max_t())
        .saturating_sub(inner.opts.idle_seal_after.as_millis() as i64);
    let mut stats = CheckpointStats::default();
    let mut batch = WriteBatch::default();
    // Bookkeeping to apply once the batch is durable: chunks written, labels persisted.
    let mut written: Vec<(SeriesRef, Vec<i64>)> = Vec::new();
    let mut labelled: Vec<SeriesRef> = Vec::new();
    for i in 0..head::SHARDS {
        {
            let mut shard = inner.head.shard_at(i);
            for (&id, s) in shard.iter_mut() {
                let changed = s.dirty
                    || !s.persisted
                    || !s.pending.is_empty()
                    || s.hist.as_ref().is_some_and(|h| !h.pending.is_empty());
                if !all && !changed {
                    continue;
                }
                if !s.persisted {
                    labelled.push(id);
                }
                let idle = s.chunk.as_ref().is_some_and(|c| c.max_t() < idle_before)
                    || s.hist
                        .as_ref()
                        .and_then(|h| h.chunk.as_ref())
                        .is_some_and(|c| c.max_t() < idle_before);
                let starts = stage_series(inner, &mut batch, id, s, seal_everything || idle);
                stats.chunks_sealed += starts.len();
                stats.series_written += 1;
                if !starts.is_empty() {
                    written.push((id, starts));
                }
            }
        }
        if batch.size_in_bytes() >= BATCH_BYTES || i == head::SHARDS - 1 {
            inner.write(std::mem::take(&mut batch))?;
            forget_written(inner, &mut written);
            for id in labelled.drain(..) {
                if let Some(s) = inner.head.shard(id).get_mut(&id) {
                    s.persisted = true;
                }
            }
        }
    }
    recount_pending(inner);
    Ok(stats)
}

/// Drops chunks from the series' pending lists once a write batch holding them is durable.
fn forget_written(inner: &Inner, written: &mut Vec<(SeriesRef, Vec<i64>)>) {
    let mut n = 0;
    for (id, starts) in written.drain(..) {
        if let Some(s) = inner.head.shard(id).get_mut(&id) {
            n += starts.len();
            for start in starts {
                s.chunk_written(start);
            }
        }
    }
    inner
        .counters
        .chunks_sealed
        .fetch_add(n as u64, Ordering::Relaxed);
}

/// Sets the pending-chunk counter from the head (commits add to it as they cut; this keeps
/// it from drifting).
fn recount_pending(inner: &Inner) {
    let n: usize = (0..head::SHARDS)
        .map(|i| {
            inner
                .head
                .shard_at(i)
                .values()
                .map(|s| s.pending.len() + s.hist.as_ref().map_or(0, |h| h.pending.len()))
                .sum::<usize>()
        })
        .sum();
    inner.pending_chunks.store(n, Ordering::Relaxed);
}

/// Seals and writes the chunks that appends have cut, without a full checkpoint. Chunks are
/// copied out under the shard lock and sealed outside it, so appends are not held up; a query
/// running meanwhile may see a chunk both in memory and on disk, which reads de-duplicate.
pub(super) fn flush_pending(inner: &Inner) -> Result<usize> {
    let _guard = lock_maintenance(inner);
    flush_pending_locked(inner)
}

/// A pending chunk copied out of the head to be sealed outside its lock.
enum Pending {
    Float(PendingChunk),
    Hist(crate::histogram::HistogramChunk),
}

/// [`flush_pending`] for a caller that holds the maintenance lock.
fn flush_pending_locked(inner: &Inner) -> Result<usize> {
    let chunks_cf = inner.cf(CF_CHUNKS);
    let mut total = 0;
    let mut batch = WriteBatch::default();
    let mut written: Vec<(SeriesRef, Vec<i64>)> = Vec::new();
    for i in 0..head::SHARDS {
        // Sealed bytes of each pending chunk, float or histogram.
        let copies: Vec<(SeriesRef, i64, Pending)> = {
            let shard = inner.head.shard_at(i);
            shard
                .iter()
                // Chunks of a series whose labels are not durable yet wait for the checkpoint,
                // which writes them together with the labels.
                .filter(|(_, s)| s.persisted)
                .flat_map(|(&id, s)| {
                    let floats = s
                        .pending
                        .iter()
                        .map(move |p| (id, p.start, Pending::Float(p.clone())));
                    let hists = s.hist.iter().flat_map(move |h| {
                        h.pending
                            .iter()
                            .map(move |(start, c)| (id, *start, Pending::Hist(c.clone())))
                    });
                    floats.chain(hists)
                })
                .collect()
        };
        for (id, start, p) in copies {
            let sealed = match p {
                Pending::Float(p) => p.chunk.seal(),
                Pending::Hist(c) => c.seal(),
            };
            batch.put_cf(chunks_cf, keys::chunk_key(id, start), sealed);
            match written.last_mut() {
                Some((last, starts)) if *last == id => starts.push(start),
                _ => written.push((id, vec![start])),
            }
            total += 1;
        }
        if batch.size_in_bytes() >= BATCH_BYTES || i == head::SHARDS - 1 {
            inner.write(std::mem::take(&mut batch))?;
            forget_written(inner, &mut written);
        }
    }
    recount_pending(inner);
    Ok(total)
}

pub(super) fn apply_retention(inner: &Inner) -> Result<RetentionStats> {
    let _guard = lock_maintenance(inner);
    let max_t = inner.head.max_t();
    if max_t == i64::MIN {
        return Ok(RetentionStats::default());
    }
    let cutoff = super::retention_cutoff(inner, max_t);
    inner.cutoff.fetch_max(cutoff, Ordering::SeqCst);

    let mut stale = Vec::new();
    for i in 0..head::SHARDS {
        let shard = inner.head.shard_at(i);
        stale.extend(
            shard
                .iter()
                .filter(|(_, s)| s.max_t < cutoff)
                .map(|(&id, s)| (id, s.labels.clone())),
        );
    }
    let mut removed_postings: HashMap<Vec<u8>, Vec<SeriesRef>> = HashMap::new();
    let mut batch = WriteBatch::default();
    let mut removed = 0;
    for (id, labels) in stale {
        let Some(s) = inner.head.remove_if(id, &labels, |s| s.max_t < cutoff) else {
            continue;
        };
        removed += 1;
        stage_removal(inner, &mut batch, id, &s.labels, &mut removed_postings);
    }
    stage_postings_removal(inner, &mut batch, removed_postings);
    inner.write(batch)?;
    inner
        .counters
        .series_removed
        .fetch_add(removed as u64, Ordering::Relaxed);
    Ok(RetentionStats {
        cutoff,
        series_removed: removed,
    })
}

/// Stages the removal of a series already taken out of the head: its labels, head state and
/// chunks; its ids are added to `postings` (by postings key) for [`stage_postings_removal`].
pub(super) fn stage_removal(
    inner: &Inner,
    batch: &mut WriteBatch,
    id: SeriesRef,
    labels: &crate::Labels,
    postings: &mut HashMap<Vec<u8>, Vec<SeriesRef>>,
) {
    batch.delete_cf(inner.cf(CF_SERIES), keys::series_key(id));
    batch.delete_cf(inner.cf(CF_HEAD), keys::series_key(id));
    batch.delete_range_cf(
        inner.cf(CF_CHUNKS),
        keys::chunk_key(id, i64::MIN),
        keys::chunk_key(id, i64::MAX),
    );
    batch.delete_cf(inner.cf(CF_CHUNKS), keys::chunk_key(id, i64::MAX));
    postings
        .entry(keys::ALL_POSTINGS_KEY.to_vec())
        .or_default()
        .push(id);
    for l in labels {
        postings
            .entry(keys::postings_key(l.name, l.value))
            .or_default()
            .push(id);
    }
}

/// Stages one postings delta per list, removing the ids gathered by [`stage_removal`].
pub(super) fn stage_postings_removal(
    inner: &Inner,
    batch: &mut WriteBatch,
    postings: HashMap<Vec<u8>, Vec<SeriesRef>>,
) {
    for (key, mut ids) in postings {
        ids.sort_unstable();
        batch.merge_cf(inner.cf(CF_POSTINGS), key, Delta::remove(&ids).encode());
    }
}

/// Starts the maintenance thread. It wakes every second, checkpoints when the interval has
/// passed, the WAL has grown past its budget, or commits have been quiet for
/// `checkpoint_when_quiet` since the last one, and applies retention on its own interval.
pub(super) fn spawn(
    inner: Arc<Inner>,
    stop: Arc<(Mutex<bool>, Condvar)>,
) -> Result<JoinHandle<()>> {
    let handle = std::thread::Builder::new()
        .name("augur-tsdb-maintenance".into())
        .spawn(move || {
            let mut last_checkpoint = Instant::now();
            let mut last_retention = Instant::now();
            // When the commit counter last moved.
            let (mut commits, mut last_commit) = (0u64, Instant::now());
            loop {
                {
                    let (flag, cv) = &*stop;
                    let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
                    let (guard, _) = cv
                        .wait_timeout_while(guard, Duration::from_secs(1), |stopped| !*stopped)
                        .unwrap_or_else(|e| e.into_inner());
                    if *guard {
                        return;
                    }
                }
                if inner.pending_chunks.load(Ordering::Relaxed) >= PENDING_FLUSH_CHUNKS {
                    if let Err(e) = flush_pending(&inner) {
                        tracing::error!(error = %e, "writing sealed chunks failed; will retry");
                    }
                }
                let now_commits = inner.counters.commits.load(Ordering::Relaxed);
                if now_commits != commits {
                    (commits, last_commit) = (now_commits, Instant::now());
                }
                let wal_bytes = inner.wal_bytes.load(Ordering::Relaxed);
                let wal_full = wal_bytes >= inner.opts.checkpoint_wal_bytes;
                let quiet = wal_bytes > 0
                    && last_commit.elapsed() >= inner.opts.checkpoint_when_quiet
                    && last_checkpoint < last_commit;
                if wal_full || quiet || last_checkpoint.elapsed() >= inner.opts.checkpoint_interval
                {
                    last_checkpoint = Instant::now();
                    match checkpoint(&inner) {
                        Ok(s) => tracing::debug!(
                            series = s.series_written,
                            sealed = s.chunks_sealed,
                            "head checkpoint written"
                        ),
                        Err(e) => tracing::error!(error = %e, "head checkpoint failed; will retry"),
                    }
                }
                if last_retention.elapsed() >= inner.opts.retention_interval {
                    last_retention = Instant::now();
                    match apply_retention(&inner) {
                        Ok(s) if s.series_removed > 0 => tracing::info!(
                            removed = s.series_removed,
                            cutoff = s.cutoff,
                            "retention removed series"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "retention failed; will retry"),
                    }
                }
            }
        })?;
    Ok(handle)
}
