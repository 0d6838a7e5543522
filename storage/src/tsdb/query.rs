//! The querier: matchers → postings → series → samples.
//!
//! Matchers resolve through the inverted index with Prometheus's rules (see `matcher.rs`): a
//! matcher that does not match `""` selects the union of the postings of the values it matches;
//! one that matches `""` selects all series minus the union of the values it rejects. Results
//! are intersected. Equality and plain regex alternations are point lookups; regexes with a
//! literal prefix scan only that prefix of the label's values.
//!
//! Samples come from the head first, then from persisted chunks (one seek per series, none
//! when memory reaches back to the range start, a forward seek to the newest chunk when only
//! it can reach the range); a chunk sealed and written between the two reads shows up twice
//! and is de-duplicated by timestamp. Series are read in batches of 256; a select of many
//! batches is split across up to four threads (one per core), then sorted by labels.

use std::sync::atomic::{AtomicUsize, Ordering};

use croaring::Bitmap;
use rocksdb::DBRawIteratorWithThreadMode;

use super::keys::{self, CF_CHUNKS, CF_POSTINGS};
use super::postings;
use super::Inner;
use crate::chunk;
use crate::error::{Result, StorageError};
use crate::histogram::HistogramSample;
use crate::interface::{Querier, ReadLimits, Sample, Series, SeriesRef};
use crate::labels::Labels;
use crate::matcher::{Matcher, ValueHint};

pub(super) type RawIter<'a> = DBRawIteratorWithThreadMode<'a, rocksdb::DB>;

/// Series read per RocksDB iterator in `select` (see there why iterators are per batch).
const SELECT_BATCH: usize = 256;
/// A select with at least this many batches per thread is split across threads.
const PARALLEL_MIN_BATCHES: usize = 2;
/// At most this many threads read one select.
const MAX_SELECT_THREADS: usize = 4;

pub(super) struct TsdbQuerier<'a> {
    inner: &'a Inner,
    mint: i64,
    maxt: i64,
}

impl<'a> TsdbQuerier<'a> {
    pub(super) fn new(inner: &'a Inner, mint: i64, maxt: i64) -> Self {
        // Samples before the retention cutoff are gone, even if compaction has not dropped
        // their chunks yet.
        let mint = mint.max(inner.cutoff.load(Ordering::Relaxed));
        TsdbQuerier { inner, mint, maxt }
    }

    fn postings_iter(&self) -> RawIter<'a> {
        self.inner.db.raw_iterator_cf(self.inner.cf(CF_POSTINGS))
    }

    fn read_list(&self, key: &[u8]) -> Result<Bitmap> {
        match self
            .inner
            .db
            .get_pinned_cf(self.inner.cf(CF_POSTINGS), key)?
        {
            Some(v) => postings::decode_list(&v)
                .ok_or_else(|| StorageError::corrupt("postings", "undecodable list")),
            None => Ok(Bitmap::new()),
        }
    }

    /// Calls `f(value, list)` for each value of label `name` starting with `prefix`.
    fn scan_values(
        &self,
        name: &str,
        prefix: &str,
        mut f: impl FnMut(&str, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let start = keys::postings_key(name, prefix);
        let name_len = name.len() + 1;
        let mut it = self.postings_iter();
        it.seek(&start);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&start) {
                break;
            }
            let value = std::str::from_utf8(&k[name_len..])
                .map_err(|_| StorageError::corrupt("postings", "label value is not UTF-8"))?;
            if !f(value, v)? {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// Union of the postings of the values of `m.name` for which `inner(v) == want`.
    fn union_where(&self, m: &Matcher, want: bool, use_hint: bool) -> Result<Bitmap> {
        let mut acc = Bitmap::new();
        let hint = if use_hint {
            m.value_hint()
        } else {
            ValueHint::Any
        };
        match hint {
            ValueHint::Exact(values) => {
                for v in values.iter().filter(|v| !v.is_empty()) {
                    if m.inner_matches(v) == want {
                        acc.or_inplace(&self.read_list(&keys::postings_key(&m.name, v))?);
                    }
                }
            }
            ValueHint::Prefix(p) => self.scan_values(&m.name, &p, |v, bytes| {
                if m.inner_matches(v) == want {
                    acc.or_inplace(&decode(bytes)?);
                }
                Ok(true)
            })?,
            ValueHint::Any => self.scan_values(&m.name, "", |v, bytes| {
                if m.inner_matches(v) == want {
                    acc.or_inplace(&decode(bytes)?);
                }
                Ok(true)
            })?,
        }
        Ok(acc)
    }

    /// Ids of the series matching every matcher (before any time filtering).
    fn postings_for(&self, matchers: &[Matcher]) -> Result<Bitmap> {
        let mut result: Option<Bitmap> = None;
        let mut subtract = Vec::new();
        for m in matchers {
            // The hint describes values where the inner predicate holds, so it applies when
            // we want those values.
            if m.matches("") {
                // All series minus those whose value the matcher rejects.
                let rejected = if m.is_negative() {
                    self.union_where(m, true, true)?
                } else {
                    self.union_where(m, false, false)?
                };
                subtract.push(rejected);
            } else {
                let selected = if m.is_negative() {
                    self.union_where(m, false, false)?
                } else {
                    self.union_where(m, true, true)?
                };
                match &mut result {
                    Some(r) => r.and_inplace(&selected),
                    None => result = Some(selected),
                }
            }
            if result.as_ref().is_some_and(Bitmap::is_empty) {
                return Ok(Bitmap::new());
            }
        }
        let mut r = match result {
            Some(r) => r,
            None => self.read_list(keys::ALL_POSTINGS_KEY)?,
        };
        for s in &subtract {
            r.andnot_inplace(s);
        }
        Ok(r)
    }

    /// Labels of the series among `ids` that may have samples in range.
    fn labels_in_range(&self, ids: &Bitmap) -> Vec<Labels> {
        let mut out = Vec::new();
        for id in ids.iter() {
            if let Some(s) = self.inner.head.shard(id).get(&id) {
                if s.overlaps(self.mint, self.maxt) {
                    out.push(s.labels.clone());
                }
            }
        }
        out
    }

    /// Whether any series in `ids` may have samples in range.
    fn any_in_range(&self, ids: &Bitmap) -> bool {
        ids.iter().any(|id| {
            self.inner
                .head
                .shard(id)
                .get(&id)
                .is_some_and(|s| s.overlaps(self.mint, self.maxt))
        })
    }

    /// Reads one batch of series into `out`: the head first, then a RocksDB iterator. An
    /// iterator sees the data as of its creation, so a chunk the maintenance thread writes
    /// (and drops from the head) after the head read is still visible to it.
    fn read_batch(
        &self,
        batch: &[SeriesRef],
        out: &mut Vec<Series>,
        budget: &Budget<'_>,
    ) -> Result<()> {
        let mut heads = Vec::with_capacity(batch.len());
        for &id in batch {
            let shard = self.inner.head.shard(id);
            let Some(s) = shard.get(&id) else { continue };
            if !s.overlaps(self.mint, self.maxt) {
                continue;
            }
            let (mut head, mut head_sts) = (Vec::new(), Vec::new());
            s.head_samples(self.mint, self.maxt, &mut head, &mut head_sts);
            let mut head_hists = Vec::new();
            s.head_histograms(self.mint, self.maxt, &mut head_hists);
            // The newest sample is a float in memory and in range: when it is all the caller
            // needs, RocksDB has nothing newer (out-of-order samples are older than it).
            let newest_here = budget.limits.newest_only
                && s.max_t <= self.maxt
                && head.iter().rev().any(|p| p.t == s.max_t);
            // Persisted chunks are all older than the in-memory ones (see `backfill.rs`):
            // when memory reaches back to `mint`, RocksDB has nothing in range.
            let read = if newest_here || s.oldest_in_memory().is_some_and(|t| t <= self.mint) {
                Persisted::Skip
            } else if s.newest_persisted != i64::MIN && s.newest_persisted <= self.mint {
                // Every other persisted chunk ends before this one starts.
                Persisted::Newest(s.newest_persisted)
            } else {
                Persisted::Seek
            };
            heads.push((id, s.labels.clone(), head, head_sts, head_hists, read));
        }
        let mut it = None;
        for (id, labels, mut head, mut head_sts, head_hists, read) in heads {
            let (mut samples, mut sts, mut hists) = (Vec::new(), Vec::new(), Vec::new());
            if read != Persisted::Skip {
                let it = it
                    .get_or_insert_with(|| self.inner.db.raw_iterator_cf(self.inner.cf(CF_CHUNKS)));
                let mut into = Decoded {
                    samples: &mut samples,
                    sts: &mut sts,
                    hists: &mut hists,
                };
                match read {
                    Persisted::Newest(start) => self.read_chunk_at(it, id, start, &mut into)?,
                    _ => self.read_chunks(it, id, &mut into)?,
                }
            }
            // Histograms: the persisted first, so a timestamp both hold keeps theirs.
            if !hists.is_empty() || !head_hists.is_empty() {
                hists.extend(head_hists);
                hists.sort_by_key(|h| h.t);
                hists.dedup_by_key(|h| h.t);
                hists.retain(|h| self.mint <= h.t && h.t <= self.maxt);
            }
            // Join the two, keeping `sts` empty or parallel to `samples`.
            let from_chunks = samples.len();
            samples.append(&mut head);
            if !sts.is_empty() || !head_sts.is_empty() {
                sts.resize(from_chunks, 0);
                head_sts.resize(samples.len() - from_chunks, 0);
                sts.append(&mut head_sts);
            }
            normalise(&mut samples, &mut sts);
            clip(&mut samples, &mut sts, self.mint, self.maxt);
            if budget.limits.newest_only {
                keep_newest(&mut samples, &mut sts, &mut hists);
            }
            budget.take(samples.len() + hists.len())?;
            if !samples.is_empty() || !hists.is_empty() {
                out.push(Series {
                    labels,
                    samples,
                    start_timestamps: sts,
                    histograms: hists,
                });
            }
        }
        Ok(())
    }

    /// Reads the one persisted chunk of `id` starting at `start` (which must be the series'
    /// newest, starting at or before the range), if it reaches into the range.
    fn read_chunk_at(
        &self,
        it: &mut RawIter<'_>,
        id: SeriesRef,
        start: i64,
        into: &mut Decoded<'_>,
    ) -> Result<()> {
        let key = keys::chunk_key(id, start);
        it.seek(key);
        if let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k == key && chunk::meta(v)?.max_t >= self.mint {
                into.chunk(v)?;
            }
        }
        it.status()?;
        Ok(())
    }

    /// Reads persisted chunks of `id` overlapping the range, appending samples to `out`.
    fn read_chunks(
        &self,
        it: &mut RawIter<'_>,
        id: SeriesRef,
        into: &mut Decoded<'_>,
    ) -> Result<()> {
        seek_chunks(it, id, self.mint);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some((cid, start)) = keys::parse_chunk_key(k) else {
                return Err(StorageError::corrupt("chunks", "bad key"));
            };
            if cid != id || start > self.maxt {
                break;
            }
            if chunk::meta(v)?.max_t >= self.mint {
                into.chunk(v)?;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }
}

/// Where a series' persisted chunks are decoded to: floats (with start timestamps) and
/// histograms.
struct Decoded<'a> {
    samples: &'a mut Vec<Sample>,
    sts: &'a mut Vec<i64>,
    hists: &'a mut Vec<HistogramSample>,
}

impl Decoded<'_> {
    fn chunk(&mut self, bytes: &[u8]) -> Result<()> {
        if crate::histogram::is_histogram_chunk(bytes) {
            crate::histogram::decode_sealed(bytes, self.hists)
        } else {
            chunk::decode_into(bytes, self.samples, self.sts)
        }
    }
}

/// What one select may still read: its limits and the samples all its workers have read.
struct Budget<'a> {
    limits: &'a ReadLimits,
    read: &'a AtomicUsize,
}

impl Budget<'_> {
    /// Counts `n` more samples read, failing past the limit, the deadline or a cancellation
    /// (the clock is read each time another 4096 samples have been read).
    fn take(&self, n: usize) -> Result<()> {
        let before = self.read.fetch_add(n, Ordering::Relaxed);
        self.limits.check_samples(before + n)?;
        if before >> 12 != (before + n) >> 12 {
            self.limits.check_time()?;
        }
        Ok(())
    }
}

/// Ids of the series matching every matcher, whatever their samples' times.
pub(super) fn matching_ids(inner: &Inner, matchers: &[Matcher]) -> Result<Bitmap> {
    TsdbQuerier::new(inner, i64::MIN, i64::MAX).postings_for(matchers)
}

/// Positions `it` (over `chunks`) at the first chunk of series `id` that may hold samples at
/// or after `t`: the one starting at or before `t` (the only earlier chunk that can reach it,
/// since a series' chunks never overlap), else the first starting after it.
pub(super) fn seek_chunks(it: &mut RawIter<'_>, id: SeriesRef, t: i64) {
    let target = keys::chunk_key(id, t);
    it.seek_for_prev(target);
    if !it.valid() {
        it.seek(target);
    } else if it
        .key()
        .and_then(keys::parse_chunk_key)
        .is_none_or(|(cid, _)| cid != id)
    {
        it.next();
    }
}

/// Threads one select may use: the cores, at most [`MAX_SELECT_THREADS`]. Asked once, since
/// `available_parallelism` reads cgroup files on Linux.
fn select_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SELECT_THREADS)
    })
}

/// Which persisted chunks a series' read needs, decided from its in-memory state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persisted {
    /// None: memory reaches back to the range start.
    Skip,
    /// Only the newest, which starts at this time (at or before the range start).
    Newest(i64),
    /// Unknown: seek to the chunk starting at or before the range start.
    Seek,
}

fn decode(bytes: &[u8]) -> Result<Bitmap> {
    postings::decode_list(bytes)
        .ok_or_else(|| StorageError::corrupt("postings", "undecodable list"))
}

/// Sorts by time and drops repeated timestamps (keeping the first), if needed, keeping the
/// start timestamps (empty or parallel) with their samples.
fn normalise(samples: &mut Vec<Sample>, sts: &mut Vec<i64>) {
    if samples.windows(2).all(|w| w[0].t < w[1].t) {
        return;
    }
    if sts.is_empty() {
        samples.sort_by_key(|s| s.t);
        samples.dedup_by_key(|s| s.t);
        return;
    }
    let mut pairs: Vec<(Sample, i64)> = samples.drain(..).zip(sts.drain(..)).collect();
    pairs.sort_by_key(|(s, _)| s.t);
    pairs.dedup_by_key(|(s, _)| s.t);
    (*samples, *sts) = pairs.into_iter().unzip();
}

/// When the newest sample (both lists sorted) is a float, keeps only it, with its start
/// timestamp. A newest histogram keeps everything: the reset hint a reader derives for it
/// depends on the sample before it (see `engine`'s `hist::chunk_hint`).
fn keep_newest(samples: &mut Vec<Sample>, sts: &mut Vec<i64>, hists: &mut Vec<HistogramSample>) {
    let float_t = samples.last().map(|s| s.t);
    let hist_t = hists.last().map(|h| h.t);
    if hist_t > float_t {
        return;
    }
    hists.clear();
    let n = samples.len();
    if n > 1 {
        samples.drain(..n - 1);
        if !sts.is_empty() {
            sts.drain(..n - 1);
            if sts[0] == 0 {
                sts.clear();
            }
        }
    }
}

/// Keeps the samples (and their start timestamps) within `[mint, maxt]`; `samples` is sorted.
fn clip(samples: &mut Vec<Sample>, sts: &mut Vec<i64>, mint: i64, maxt: i64) {
    let hi = samples.partition_point(|s| s.t <= maxt);
    let lo = samples[..hi].partition_point(|s| s.t < mint);
    samples.truncate(hi);
    samples.drain(..lo);
    if !sts.is_empty() {
        sts.truncate(hi);
        sts.drain(..lo);
        if sts.iter().all(|&st| st == 0) {
            sts.clear();
        }
    }
}

impl Querier for TsdbQuerier<'_> {
    fn select_limited(&self, matchers: &[Matcher], limits: &ReadLimits) -> Result<Vec<Series>> {
        if matchers.is_empty() || self.mint > self.maxt {
            return Ok(Vec::new());
        }
        limits.check_time()?;
        // Samples read so far by every worker: each checks it (and the clock) after every
        // series, so a read past the limit stops having decoded at most about the limit.
        let read = AtomicUsize::new(0);
        let budget = Budget {
            limits,
            read: &read,
        };
        let ids: Vec<SeriesRef> = self.postings_for(matchers)?.iter().collect();
        let batches: Vec<&[SeriesRef]> = ids.chunks(SELECT_BATCH).collect();
        // Large selects (decoding dominates) are split across the cores, a contiguous run of
        // batches per thread; small ones stay on the caller's thread.
        let workers = select_threads()
            .min(batches.len() / PARALLEL_MIN_BATCHES)
            .max(1);
        let mut out = Vec::new();
        if workers == 1 {
            for batch in &batches {
                self.read_batch(batch, &mut out, &budget)?;
            }
        } else {
            let per = batches.len().div_ceil(workers);
            let parts: Vec<Result<Vec<Series>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = batches
                    .chunks(per)
                    .map(|run| {
                        let budget = &budget;
                        scope.spawn(move || {
                            let mut part = Vec::new();
                            for batch in run {
                                self.read_batch(batch, &mut part, budget)?;
                            }
                            Ok(part)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            for part in parts {
                out.extend(part?);
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        if matchers.is_empty() || self.mint > self.maxt {
            return Ok(Vec::new());
        }
        let mut out = self.labels_in_range(&self.postings_for(matchers)?);
        out.sort();
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        if self.mint > self.maxt {
            return Ok(Vec::new());
        }
        if !matchers.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for l in self.labels_in_range(&self.postings_for(matchers)?) {
                names.extend(l.iter().map(|l| l.name.to_owned()));
            }
            names.sort();
            names.dedup();
            return Ok(names);
        }
        // Walk the index one name at a time, skipping to the next name once one value has a
        // series in range.
        let mut names = Vec::new();
        let mut it = self.postings_iter();
        it.seek([1u8]);
        while let Some(k) = it.key() {
            let Some((name, _)) = keys::parse_postings_key(k) else {
                return Err(StorageError::corrupt("postings", "bad key"));
            };
            let name = name.to_owned();
            let mut found = false;
            self.scan_values(&name, "", |_, bytes| {
                found = self.any_in_range(&decode(bytes)?);
                Ok(!found)
            })?;
            if found {
                names.push(name.clone());
            }
            let mut next = name.into_bytes();
            next.push(1);
            it.seek(&next);
        }
        it.status()?;
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        if self.mint > self.maxt || name.is_empty() {
            return Ok(Vec::new());
        }
        let mut values = Vec::new();
        if matchers.is_empty() {
            self.scan_values(name, "", |v, bytes| {
                if self.any_in_range(&decode(bytes)?) {
                    values.push(v.to_owned());
                }
                Ok(true)
            })?;
            return Ok(values);
        }
        for l in self.labels_in_range(&self.postings_for(matchers)?) {
            if let Some(v) = l.get(name) {
                values.push(v.to_owned());
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }
}
