//! The head: every known series in memory, with its open chunk.
//!
//! Two sharded maps, each shard behind its own mutex:
//! - `lookup`: hash of the label bytes → series ids with that hash (resolves labels to a series);
//! - `shards`: series id → [`MemSeries`] (shard = id % [`SHARDS`]).
//!
//! Lock order, everywhere: a `lookup` shard before a `shards` shard, and never two of the same
//! kind at once. Ids are allocated in creation order so that series created together (one
//! scrape target) have neighbouring chunk keys on disk.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::chunk::HeadChunk;
use crate::error::RejectReason;
use crate::histogram::{Histogram, HistogramChunk, HistogramSample};
use crate::interface::{Sample, SeriesRef};
use crate::labels::Labels;

/// Number of shards in each map.
pub const SHARDS: usize = 256;

/// Hasher for keys that are already uniformly distributed hashes (the lookup map).
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed with PassThrough")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Hasher for sequential u32 ids: a multiplicative mix so hashbrown's top bits vary.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u32 keys are hashed with IdHasher")
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type LookupMap = HashMap<u64, IdList, BuildHasherDefault<PassThrough>>;
pub type SeriesMap = HashMap<SeriesRef, MemSeries, BuildHasherDefault<IdHasher>>;

/// Ids sharing one label hash; almost always exactly one.
#[derive(Debug, Clone)]
enum IdList {
    One(SeriesRef),
    Many(Box<[SeriesRef]>),
}

impl IdList {
    fn ids(&self) -> &[SeriesRef] {
        match self {
            IdList::One(id) => std::slice::from_ref(id),
            IdList::Many(ids) => ids,
        }
    }
}

/// A full (or idle) chunk cut from the series, waiting for the maintenance thread to seal it
/// and write it to RocksDB. Until then the WAL holds its samples.
#[derive(Debug, Clone)]
pub struct PendingChunk {
    pub start: i64,
    pub chunk: HeadChunk,
}

/// A series' native histograms in memory: the open chunk and chunks cut from it waiting to be
/// written, like the float ones.
#[derive(Debug, Clone, Default)]
pub struct HistHead {
    pub chunk: Option<HistogramChunk>,
    pub pending: Vec<(i64, HistogramChunk)>,
}

impl HistHead {
    /// Moves the open chunk (if any) to `pending`. Returns whether there was one.
    pub fn cut_open(&mut self) -> bool {
        match self.chunk.take() {
            Some(c) => {
                self.pending.push((c.min_t(), c));
                true
            }
            None => false,
        }
    }
}

/// A sample accepted out of order, waiting in its series' buffer for a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OooSample {
    pub t: i64,
    pub v: f64,
    /// Start timestamp, 0 = unknown.
    pub st: i64,
}

/// What appending one sample did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Accepted,
    /// Older than the newest sample, within the out-of-order window: kept in the series'
    /// out-of-order buffer until a checkpoint merges it into the chunks.
    AcceptedOutOfOrder,
    /// Same timestamp and value bits as a sample the series holds: nothing to do.
    NoOp,
    Rejected(RejectReason),
}

/// One series in memory.
#[derive(Debug)]
pub struct MemSeries {
    pub labels: Labels,
    /// Oldest sample time; `i64::MAX` while the series has none.
    pub min_t: i64,
    /// Newest sample time; `i64::MIN` while the series has none.
    pub max_t: i64,
    /// Bits of the newest sample's value; for a histogram, a hash of its byte form.
    pub last_v: u64,
    /// The newest sample is a histogram (for the duplicate rule).
    pub last_is_hist: bool,
    pub chunk: Option<HeadChunk>,
    pub pending: Vec<PendingChunk>,
    /// Start of the newest chunk in `chunks` when known (`i64::MIN` when not: after a
    /// restart or a backfill): lets an instant read fetch that one chunk with a forward seek.
    pub newest_persisted: i64,
    /// Samples accepted out of order since the last checkpoint, sorted by time, none at a
    /// timestamp the in-memory chunks hold (see [`MemSeries::append`]).
    // Boxed: one pointer in every series (most never have such samples) instead of a `Vec`'s
    // three words.
    #[allow(clippy::box_collection)]
    pub ooo: Option<Box<Vec<OooSample>>>,
    /// Native histogram samples held in memory (`None` for a series that never had one).
    pub hist: Option<Box<HistHead>>,
    /// Changed since the last checkpoint.
    pub dirty: bool,
    /// Its labels and postings are known to be in RocksDB.
    pub persisted: bool,
}

impl MemSeries {
    pub fn new(labels: Labels) -> Self {
        MemSeries {
            labels,
            min_t: i64::MAX,
            max_t: i64::MIN,
            last_v: 0,
            last_is_hist: false,
            chunk: None,
            pending: Vec::new(),
            newest_persisted: i64::MIN,
            ooo: None,
            hist: None,
            dirty: true,
            persisted: false,
        }
    }

    pub fn has_samples(&self) -> bool {
        self.max_t != i64::MIN
    }

    /// Whether the series may have samples in `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.has_samples() && self.min_t <= maxt && self.max_t >= mint
    }

    /// Appends one sample under the ordering rules. A sample older than the newest one is
    /// accepted into the out-of-order buffer when it is not older than `ooo_min` (the store's
    /// newest time minus the out-of-order window; `i64::MAX` when that is off, `i64::MIN` at
    /// replay, which takes back whatever was accepted) and its timestamp is new to the
    /// series' memory; persisted chunks are not consulted, a checkpoint's merge keeps their
    /// value. Returns what happened and whether the open chunk filled up and was cut into
    /// `pending` (sealing and writing it is the maintenance thread's job, so appends stay
    /// cheap).
    pub fn append(&mut self, t: i64, v: f64, st: i64, ooo_min: i64) -> (Applied, bool) {
        if t == i64::MIN {
            // Reserved: `max_t == i64::MIN` means "no samples".
            return (Applied::Rejected(RejectReason::OutOfBounds), false);
        }
        if self.has_samples() {
            if t < self.max_t {
                return (self.append_out_of_order(t, v, st, ooo_min), false);
            }
            if t == self.max_t {
                return if !self.last_is_hist && v.to_bits() == self.last_v {
                    (Applied::NoOp, false)
                } else {
                    (Applied::Rejected(RejectReason::Duplicate), false)
                };
            }
        }
        let mut cut = false;
        if let Some(h) = &mut self.hist {
            // Back to floats: the histogram chunk ends here, so chunks never overlap.
            cut |= h.cut_open();
        }
        match &mut self.chunk {
            Some(c) => c.append(t, v, st),
            None => self.chunk = Some(HeadChunk::new(t, v, st)),
        }
        self.min_t = self.min_t.min(t);
        self.max_t = t;
        self.last_v = v.to_bits();
        self.last_is_hist = false;
        self.dirty = true;
        cut |= self.chunk.as_ref().is_some_and(HeadChunk::is_full) && self.cut_open();
        (Applied::Accepted, cut)
    }

    /// Appends one histogram sample: in order only (out-of-order histograms are refused),
    /// a repeat of the newest sample is a no-op. The open float chunk, if any, is cut first
    /// (a series' chunks never overlap in time). Returns what happened and whether a chunk
    /// was cut into `pending`.
    pub fn append_histogram(&mut self, t: i64, st: i64, h: &Histogram) -> (Applied, bool) {
        if t == i64::MIN {
            return (Applied::Rejected(RejectReason::OutOfBounds), false);
        }
        if self.has_samples() {
            if t < self.max_t {
                return (Applied::Rejected(RejectReason::OutOfOrder), false);
            }
            if t == self.max_t {
                return if self.last_is_hist && self.last_v == h.digest() {
                    (Applied::NoOp, false)
                } else {
                    (Applied::Rejected(RejectReason::Duplicate), false)
                };
            }
        }
        let mut cut = self.cut_open();
        let head = self.hist.get_or_insert_with(Default::default);
        let chunk = head
            .chunk
            .get_or_insert_with(|| HistogramChunk::starting_at(t));
        let digest = chunk.append(t, st, h);
        if chunk.is_full() {
            cut |= head.cut_open();
        }
        self.min_t = self.min_t.min(t);
        self.max_t = t;
        self.last_v = digest;
        self.last_is_hist = true;
        self.dirty = true;
        (Applied::Accepted, cut)
    }

    /// Histogram samples held in memory within `[mint, maxt]`, in time order.
    pub fn head_histograms(&self, mint: i64, maxt: i64, out: &mut Vec<HistogramSample>) {
        let Some(h) = &self.hist else {
            return;
        };
        let mut all = Vec::new();
        for c in h.pending.iter().map(|(_, c)| c).chain(h.chunk.as_ref()) {
            if c.max_t() >= mint && c.min_t() <= maxt {
                c.decode_into(&mut all);
            }
        }
        out.extend(all.into_iter().filter(|s| mint <= s.t && s.t <= maxt));
    }

    fn append_out_of_order(&mut self, t: i64, v: f64, st: i64, ooo_min: i64) -> Applied {
        // A late float for a series that has held histograms could land among their chunks:
        // not taken (see FORMAT.md). Replay (`ooo_min == i64::MIN`) takes back what was
        // accepted, which predates the series' histograms.
        let refused_here = self.hist.is_some() && ooo_min != i64::MIN;
        if t < ooo_min || refused_here {
            return Applied::Rejected(if ooo_min == i64::MAX || refused_here {
                RejectReason::OutOfOrder
            } else {
                RejectReason::TooOld
            });
        }
        let same = |held: u64| {
            if held == v.to_bits() {
                Applied::NoOp
            } else {
                Applied::Rejected(RejectReason::Duplicate)
            }
        };
        // A timestamp the in-memory chunks hold.
        let mut chunks = self
            .pending
            .iter()
            .map(|p| &p.chunk)
            .chain(self.chunk.as_ref());
        if let Some(c) = chunks.find(|c| c.min_t() <= t && t <= c.max_t()) {
            let (samples, _) = c.samples();
            if let Ok(i) = samples.binary_search_by_key(&t, |s| s.t) {
                return same(samples[i].v.to_bits());
            }
        }
        let buf = self.ooo.get_or_insert_with(Default::default);
        match buf.binary_search_by_key(&t, |s| s.t) {
            Ok(i) => same(buf[i].v.to_bits()),
            Err(i) => {
                buf.insert(i, OooSample { t, v, st });
                self.min_t = self.min_t.min(t);
                self.dirty = true;
                Applied::AcceptedOutOfOrder
            }
        }
    }

    /// Moves the open chunk (if any) to `pending`. Returns whether there was one.
    pub fn cut_open(&mut self) -> bool {
        match self.chunk.take() {
            Some(chunk) => {
                self.pending.push(PendingChunk {
                    start: chunk.min_t(),
                    chunk,
                });
                true
            }
            None => false,
        }
    }

    /// Start of the oldest chunk held in memory (pending or open, float or histogram), if any.
    pub fn oldest_in_memory(&self) -> Option<i64> {
        let float = match self.pending.first() {
            Some(p) => Some(p.start),
            None => self.chunk.as_ref().map(HeadChunk::min_t),
        };
        let hist = self.hist.as_ref().and_then(|h| match h.pending.first() {
            Some((start, _)) => Some(*start),
            None => h.chunk.as_ref().map(HistogramChunk::min_t),
        });
        match (float, hist) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets a pending chunk once RocksDB has it.
    pub fn chunk_written(&mut self, start: i64) {
        self.pending.retain(|p| p.start != start);
        if let Some(h) = &mut self.hist {
            h.pending.retain(|(s, _)| *s != start);
        }
        // Appends are in order, so a chunk cut from memory is newer than every persisted one.
        self.newest_persisted = self.newest_persisted.max(start);
    }

    /// Samples held in memory (pending chunks, then the open chunk) within `[mint, maxt]`,
    /// with their start timestamps (`sts` stays empty or parallel to `out`).
    pub fn head_samples(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>, sts: &mut Vec<i64>) {
        let chunks = self
            .pending
            .iter()
            .map(|p| &p.chunk)
            .chain(self.chunk.as_ref());
        for c in chunks.filter(|c| c.max_t() >= mint && c.min_t() <= maxt) {
            c.decode_into(out, sts);
        }
        // Out-of-order samples go last: the reader sorts (keeping the first of a timestamp).
        let buf = self.ooo.as_deref().map_or(&[][..], Vec::as_slice);
        let lo = buf.partition_point(|s| s.t < mint);
        let hi = buf.partition_point(|s| s.t <= maxt);
        let with_sts = buf[lo..hi].iter().any(|s| s.st != 0);
        if with_sts || !sts.is_empty() {
            sts.resize(out.len(), 0);
        }
        for s in &buf[lo..hi] {
            out.push(Sample::new(s.t, s.v));
            if with_sts || !sts.is_empty() {
                sts.push(s.st);
            }
        }
    }

    /// Approximate heap bytes held by this series (labels, chunks, out-of-order samples).
    pub fn heap_size(&self) -> usize {
        self.ooo.as_ref().map_or(0, |b| {
            std::mem::size_of::<Vec<OooSample>>() + b.capacity() * std::mem::size_of::<OooSample>()
        }) + self.hist.as_ref().map_or(0, |h| {
            std::mem::size_of::<HistHead>()
                + h.chunk.as_ref().map_or(0, HistogramChunk::heap_size)
                + h.pending.iter().map(|(_, c)| c.heap_size()).sum::<usize>()
        }) + self.labels.heap_size()
            + self.chunk.as_ref().map_or(0, HeadChunk::heap_size)
            + self
                .pending
                .iter()
                .map(|p| p.chunk.heap_size())
                .sum::<usize>()
    }
}

/// The in-memory series table.
#[derive(Debug)]
pub struct Head {
    lookup: Box<[Mutex<LookupMap>]>,
    shards: Box<[Mutex<SeriesMap>]>,
    next_id: AtomicU32,
    /// Newest sample time across all series (`i64::MIN` when empty).
    max_t: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a head lock leaves the data structurally valid (every mutation is
    // a single assignment or push), so poisoning is ignored rather than propagated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn label_hash(labels: &Labels) -> u64 {
    xxhash_rust::xxh3::xxh3_64(labels.as_bytes())
}

impl Default for Head {
    fn default() -> Self {
        Head {
            lookup: (0..SHARDS)
                .map(|_| Mutex::new(LookupMap::default()))
                .collect(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(SeriesMap::default()))
                .collect(),
            next_id: AtomicU32::new(1),
            max_t: AtomicI64::new(i64::MIN),
        }
    }
}

impl Head {
    pub fn shard_of(id: SeriesRef) -> usize {
        id as usize % SHARDS
    }

    /// Locks the shard holding `id`.
    pub fn shard(&self, id: SeriesRef) -> MutexGuard<'_, SeriesMap> {
        lock(&self.shards[Self::shard_of(id)])
    }

    /// Locks shard number `i`.
    pub fn shard_at(&self, i: usize) -> MutexGuard<'_, SeriesMap> {
        lock(&self.shards[i])
    }

    pub fn max_t(&self) -> i64 {
        self.max_t.load(Ordering::Relaxed)
    }

    pub fn note_time(&self, t: i64) {
        self.max_t.fetch_max(t, Ordering::Relaxed);
    }

    /// The id of the series with these labels, creating it if needed. Returns `(id, created)`.
    pub fn get_or_create(&self, labels: &Labels) -> (SeriesRef, bool) {
        let h = label_hash(labels);
        let mut lookup = lock(&self.lookup[h as usize % SHARDS]);
        if let Some(ids) = lookup.get(&h) {
            for &id in ids.ids() {
                if self.shard(id).get(&id).is_some_and(|s| &s.labels == labels) {
                    return (id, false);
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.shard(id).insert(id, MemSeries::new(labels.clone()));
        Self::add_to_lookup(&mut lookup, h, id);
        (id, true)
    }

    fn add_to_lookup(lookup: &mut LookupMap, h: u64, id: SeriesRef) {
        match lookup.get_mut(&h) {
            None => {
                lookup.insert(h, IdList::One(id));
            }
            Some(list) => {
                let mut ids = list.ids().to_vec();
                ids.push(id);
                *list = IdList::Many(ids.into_boxed_slice());
            }
        }
    }

    /// Registers a series read back from disk at recovery.
    pub fn insert_recovered(&self, id: SeriesRef, labels: Labels) {
        let h = label_hash(&labels);
        let mut lookup = lock(&self.lookup[h as usize % SHARDS]);
        let mut s = MemSeries::new(labels);
        s.persisted = true;
        s.dirty = false;
        self.shard(id).insert(id, s);
        Self::add_to_lookup(&mut lookup, h, id);
        self.next_id
            .fetch_max(id.saturating_add(1), Ordering::Relaxed);
    }

    /// Removes a series if `still_removable` holds for it under both locks. Returns it.
    pub fn remove_if(
        &self,
        id: SeriesRef,
        labels: &Labels,
        still_removable: impl FnOnce(&MemSeries) -> bool,
    ) -> Option<MemSeries> {
        let h = label_hash(labels);
        let mut lookup = lock(&self.lookup[h as usize % SHARDS]);
        let mut shard = self.shard(id);
        if !shard.get(&id).is_some_and(still_removable) {
            return None;
        }
        let removed = shard.remove(&id);
        let rest: Vec<SeriesRef> = lookup
            .get(&h)
            .map(|l| l.ids().iter().copied().filter(|&x| x != id).collect())
            .unwrap_or_default();
        match rest.len() {
            0 => lookup.remove(&h),
            1 => lookup.insert(h, IdList::One(rest[0])),
            _ => lookup.insert(h, IdList::Many(rest.into_boxed_slice())),
        };
        removed
    }

    /// Bytes the two maps themselves take (slots, control bytes), not counting what entries
    /// point to on the heap.
    pub fn table_bytes(&self) -> usize {
        let series_slot = std::mem::size_of::<(SeriesRef, MemSeries)>() + 1;
        let lookup_slot = std::mem::size_of::<(u64, IdList)>() + 1;
        let series: usize = self
            .shards
            .iter()
            .map(|s| lock(s).capacity() * series_slot)
            .sum();
        let lookup: usize = self
            .lookup
            .iter()
            .map(|s| lock(s).capacity() * lookup_slot)
            .sum();
        series + lookup
    }
}
