//! A store in layers: a base store read as it is, and the samples a replay writes, held in
//! memory until [`Overlay::flush`] backfills them into the base (or a dry run drops them).
//!
//! Reads see both layers: series are merged by labels, and where both hold a timestamp the
//! base's sample wins (the one a backfill would keep). Writes follow the appender's rules within
//! the overlay (per series strictly increasing; the same timestamp is a no-op with the same
//! value bits and a duplicate otherwise); conflicts with the base surface at `flush`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use augur_storage::{
    Appendable, Appender, Backfill, CommitReport, Labels, Matcher, Querier, Queryable, ReadLimits,
    RejectReason, Rejection, Result, Sample, Series, SeriesRef,
};

/// What an overlay sits on: a store it can read and, at the end, backfill.
pub trait Base: Queryable + Backfill + Send + Sync {}
impl<T: Queryable + Backfill + Send + Sync + ?Sized> Base for T {}

/// Written series by labels. xxh3 rather than SipHash: every rule output sample is looked up
/// here once, and label sets are long keys.
type Writes = HashMap<Labels, Vec<Sample>, xxhash_rust::xxh3::Xxh3DefaultBuilder>;

/// The base store plus in-memory writes.
pub struct Overlay {
    base: Arc<dyn Base>,
    writes: RwLock<Writes>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay").finish_non_exhaustive()
    }
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub series: usize,
    pub written: usize,
    /// Samples the base already held with another value (the base's stays).
    pub conflicts: usize,
    /// Samples older than the base's retention allows.
    pub out_of_bounds: usize,
}

impl Overlay {
    pub fn new(base: Arc<dyn Base>) -> Overlay {
        Overlay {
            base,
            writes: RwLock::new(Writes::default()),
        }
    }

    /// Samples held in memory.
    pub fn len(&self) -> usize {
        self.read().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Writes> {
        self.writes.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds samples to a series, as a commit of them would: those not newer than the series'
    /// newest are dropped (a repeat of it is a no-op).
    pub fn append_series(&self, labels: &Labels, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        let mut writes = self.writes.write().unwrap_or_else(|e| e.into_inner());
        let series = match writes.get_mut(labels) {
            Some(s) => s,
            None => writes.entry(labels.clone()).or_default(),
        };
        for &s in samples {
            if series.last().is_none_or(|last| s.t > last.t) {
                series.push(s);
            }
        }
    }

    /// Backfills every written series into the base, then forgets them.
    pub fn flush(&self) -> Result<FlushReport> {
        let writes = std::mem::take(&mut *self.writes.write().unwrap_or_else(|e| e.into_inner()));
        let mut report = FlushReport::default();
        let mut series: Vec<(Labels, Vec<Sample>)> = writes.into_iter().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for (labels, samples) in series {
            let r = self.base.backfill(&labels, &samples)?;
            report.series += 1;
            report.written += r.accepted;
            for rej in r.rejected {
                match rej.reason {
                    RejectReason::OutOfBounds => report.out_of_bounds += 1,
                    _ => report.conflicts += 1,
                }
            }
        }
        Ok(report)
    }
}

impl Appendable for Overlay {
    fn appender(&self) -> Box<dyn Appender + Send + '_> {
        Box::new(OverlayAppender {
            overlay: self,
            staged: Vec::new(),
        })
    }
}

struct OverlayAppender<'a> {
    overlay: &'a Overlay,
    staged: Vec<(Labels, Sample)>,
}

impl Appender for OverlayAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        self.append_st(0, labels, t, v, 0)
    }

    fn append_st(
        &mut self,
        _hint: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
        _st: i64,
    ) -> Result<SeriesRef> {
        if labels.is_empty() {
            return Err(augur_storage::LabelError::Empty.into());
        }
        self.staged.push((labels.clone(), Sample::new(t, v)));
        Ok(1)
    }

    fn len(&self) -> usize {
        self.staged.len()
    }

    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let mut report = CommitReport::default();
        let mut writes = self
            .overlay
            .writes
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for (index, (labels, s)) in self.staged.into_iter().enumerate() {
            let series = writes.entry(labels).or_default();
            let reject = |reason, max_t| Rejection {
                index,
                reason,
                t: s.t,
                v: s.v,
                series_max_t: max_t,
            };
            match series.last() {
                Some(last) if s.t < last.t => report
                    .rejected
                    .push(reject(RejectReason::OutOfOrder, last.t)),
                Some(last) if s.t == last.t => {
                    if last.v.to_bits() == s.v.to_bits() {
                        report.accepted += 1;
                    } else {
                        report
                            .rejected
                            .push(reject(RejectReason::Duplicate, last.t));
                    }
                }
                _ => {
                    series.push(s);
                    report.accepted += 1;
                }
            }
        }
        Ok(report)
    }

    fn rollback(self: Box<Self>) {}
}

impl Queryable for Overlay {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(OverlayQuerier {
            base: self.base.querier(mint, maxt)?,
            overlay: self,
            mint,
            maxt,
        }))
    }
}

struct OverlayQuerier<'a> {
    base: Box<dyn Querier + 'a>,
    overlay: &'a Overlay,
    mint: i64,
    maxt: i64,
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl OverlayQuerier<'_> {
    /// Overlay series matching `matchers` with samples in range, as (labels, samples).
    fn own(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        let writes = self.overlay.read();
        let mut out: Vec<(Labels, Vec<Sample>)> = writes
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, s)| {
                let lo = s.partition_point(|p| p.t < self.mint);
                let hi = s.partition_point(|p| p.t <= self.maxt);
                (lo < hi).then(|| (l.clone(), s[lo..hi].to_vec()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Querier for OverlayQuerier<'_> {
    fn select_limited(&self, matchers: &[Matcher], limits: &ReadLimits) -> Result<Vec<Series>> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        let base = self.base.select_limited(matchers, limits)?;
        let own = self.own(matchers);
        if own.is_empty() {
            return Ok(base);
        }
        let mut by_labels: std::collections::BTreeMap<Labels, Series> =
            base.into_iter().map(|s| (s.labels.clone(), s)).collect();
        for (labels, samples) in own {
            match by_labels.get_mut(&labels) {
                None => {
                    by_labels.insert(
                        labels.clone(),
                        Series {
                            labels,
                            samples,
                            start_timestamps: Vec::new(),
                            histograms: Vec::new(),
                        },
                    );
                }
                Some(s) => {
                    let had = s.samples.len();
                    s.samples.extend(samples);
                    if !s.start_timestamps.is_empty() {
                        s.start_timestamps.resize(s.samples.len(), 0);
                    }
                    if s.samples[..had].last().map(|p| p.t) >= s.samples.get(had).map(|p| p.t) {
                        // Interleaved: sort, the base's sample first at a shared timestamp.
                        let mut pairs: Vec<(usize, Sample, i64)> = s
                            .samples
                            .iter()
                            .enumerate()
                            .map(|(i, p)| (i, *p, s.start_timestamps.get(i).copied().unwrap_or(0)))
                            .collect();
                        pairs.sort_by_key(|(i, p, _)| (p.t, *i));
                        pairs.dedup_by_key(|(_, p, _)| p.t);
                        let with_st = !s.start_timestamps.is_empty();
                        s.samples = pairs.iter().map(|(_, p, _)| *p).collect();
                        if with_st {
                            s.start_timestamps = pairs.iter().map(|(_, _, st)| *st).collect();
                        }
                    }
                }
            }
        }
        let out: Vec<Series> = by_labels.into_values().collect();
        limits.check_samples(out.iter().map(|s| s.samples.len()).sum())?;
        Ok(out)
    }

    fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        let mut out = self.base.series(matchers)?;
        if !matchers.is_empty() {
            out.extend(self.own(matchers).into_iter().map(|(l, _)| l));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut out = self.base.label_names(matchers)?;
        for (l, _) in self.own(matchers) {
            out.extend(l.iter().map(|l| l.name.to_owned()));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut out = self.base.label_values(name, matchers)?;
        for (l, _) in self.own(matchers) {
            if let Some(v) = l.get(name) {
                out.push(v.to_owned());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
