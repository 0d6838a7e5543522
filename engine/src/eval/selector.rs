//! Selectors and subqueries: the only nodes that read storage.
//!
//! A selector at step `ts` looks at the reference time `r = (@ or ts) - offset`. An instant
//! selector takes each series' newest sample in `(r - lookback, r]` unless it is a staleness
//! marker; a range selector takes the samples in `(r - range, r]`, staleness markers left out.
//! Each selector loads its series once, for the union of all its steps' windows.
//!
//! Samples' start timestamps travel only from a matrix selector straight into the function
//! that reads it (`rate`, `increase`, `irate`, `resets` use them), and from an instant selector
//! straight into `start_timestamp`. Any expression in between (a subquery, arithmetic) cuts
//! them off, as in Prometheus.

use std::time::UNIX_EPOCH;

use std::ops::Range;
use std::sync::Arc;

use augur_storage::histogram::{Histogram, ResetHint};
use augur_storage::{is_stale_nan, MatchOp, Matcher, Sample, Series, StorageError};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use super::{Ev, Grid, HPoint, VSeries, Val};
use crate::error::{exec_err, Error, Result};
use crate::rewrite::EXT_LABEL;

/// A range-vector argument ready for sliding windows: its series and, per step of the
/// evaluator's grid, the end of the window.
pub(crate) struct RangeInput {
    pub series: Vec<VSeries>,
    /// Start timestamps per series (0 = unknown), each empty or parallel to its points;
    /// empty for a subquery.
    pub sts: Vec<Vec<i64>>,
    pub range: i64,
    /// Window end (reference time) per grid step; non-decreasing.
    pub refs: Vec<i64>,
    /// The `anchored`/`smoothed` modifier, if any.
    pub mode: Option<String>,
}

impl RangeInput {
    /// No series: a grid without steps.
    fn empty(range: i64, refs: Vec<i64>) -> RangeInput {
        RangeInput {
            series: Vec::new(),
            sts: Vec::new(),
            range,
            refs,
            mode: None,
        }
    }

    /// The windows `(ref - range, ref]` of every series at the first grid step, empty ones
    /// left out: the value of a range-vector expression in an instant query.
    pub fn raw_windows(self) -> Vec<VSeries> {
        let Some(&r) = self.refs.first() else {
            return Vec::new();
        };
        let lo = r - self.range;
        self.series
            .into_iter()
            .filter_map(|mut s| {
                s.points.retain(|p| p.t > lo && p.t <= r);
                s.hists.retain(|p| p.t > lo && p.t <= r);
                (!s.is_empty()).then_some(s)
            })
            .collect()
    }

    /// Calls `f(step, window)` for each grid step of one series, windows sliding forward.
    pub fn windows<'s>(
        &self,
        points: &'s [Sample],
        f: impl FnMut(usize, &'s [Sample]) -> Result<()>,
    ) -> Result<()> {
        slide(points, &self.refs, self.range, f)
    }
}

/// Calls `f(i, window)` for each reference time `refs[i]` (non-decreasing) with the points in
/// `(refs[i] - range, refs[i]]`; both window edges only move forward.
pub(crate) fn slide<'s>(
    points: &'s [Sample],
    refs: &[i64],
    range: i64,
    mut f: impl FnMut(usize, &'s [Sample]) -> Result<()>,
) -> Result<()> {
    slide_ranges(points, refs, range, |i, w| f(i, &points[w]))
}

/// [`slide`], giving each window as index range into `points`.
pub(crate) fn slide_ranges(
    points: &[Sample],
    refs: &[i64],
    range: i64,
    mut f: impl FnMut(usize, Range<usize>) -> Result<()>,
) -> Result<()> {
    let (mut lo, mut hi) = (0, 0);
    for (i, &r) in refs.iter().enumerate() {
        while hi < points.len() && points[hi].t <= r {
            hi += 1;
        }
        while lo < hi && points[lo].t <= r - range {
            lo += 1;
        }
        f(i, lo..hi)?;
    }
    Ok(())
}

/// The `anchored`/`smoothed`/`info` mode the rewrites put on a selector as a sentinel
/// matcher (the last one, if several).
fn ext_mode(vs: &VectorSelector) -> Option<&str> {
    vs.matchers
        .matchers
        .iter()
        .rev()
        .find(|m| m.name == EXT_LABEL)
        .map(|m| m.value.as_str())
}

/// A selector's storage matchers: its metric name and its matchers, less the rewrite
/// sentinel.
fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>> {
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        matchers.push(Matcher::equal(augur_storage::METRIC_NAME, name.clone()));
    }
    for m in vs.matchers.matchers.iter().filter(|m| m.name != EXT_LABEL) {
        matchers.push(to_matcher(m)?);
    }
    Ok(matchers)
}

/// A promql-parser matcher as a storage matcher.
pub(crate) fn to_matcher(m: &promql_parser::label::Matcher) -> Result<Matcher> {
    let op = match m.op {
        PMatchOp::Equal => MatchOp::Equal,
        PMatchOp::NotEqual => MatchOp::NotEqual,
        PMatchOp::Re(_) => MatchOp::RegexMatch,
        PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    // A pattern the parser took but Rust's `regex` cannot compile (after the RE2 brace
    // rule) is the query's fault: `bad_data`, as Prometheus answers an invalid regex.
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| match e {
        e @ augur_storage::StorageError::InvalidMatcher { .. } => Error::Parse(e.to_string()),
        e => e.into(),
    })
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

impl Ev<'_> {
    pub fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.ctx.query_start),
            Some(AtModifier::End) => Some(self.ctx.query_end),
            Some(AtModifier::At(t)) => Some(match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_millis() as i64,
                Err(e) => -(e.duration().as_millis() as i64),
            }),
        }
    }

    /// The reference time of every grid step for a node with these modifiers.
    pub fn ref_times(&self, offset: &Option<Offset>, at: &Option<AtModifier>) -> Vec<i64> {
        let off = offset_ms(offset);
        match self.at_ms(at) {
            Some(t) => vec![t - off; self.grid.len()],
            None => self.grid.times().map(|t| t - off).collect(),
        }
    }

    /// Loads the series of a selector over `[mint, maxt]` (the rewrite sentinel is not a
    /// storage matcher).
    pub fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<VSeries>> {
        self.select_matchers(&selector_matchers(vs)?, mint, maxt)
    }

    /// [`Ev::select`], with each series' start timestamps (empty or parallel to its points).
    fn select_with_sts(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(VSeries, Vec<i64>)>> {
        Ok(self
            .load(&selector_matchers(vs)?, mint, maxt)?
            .into_iter()
            .map(|mut s| {
                let sts = std::mem::take(&mut s.start_timestamps);
                (vseries(s), sts)
            })
            .collect())
    }

    /// Loads the series matching storage matchers over `[mint, maxt]`.
    pub fn select_matchers(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<VSeries>> {
        Ok(self
            .load(matchers, mint, maxt)?
            .into_iter()
            .map(vseries)
            .collect())
    }

    /// Reads storage within the query's budget: the samples it may still hold, its deadline
    /// and cancellation are checked while reading, so a select past the limit fails before it
    /// has decoded much more than the limit.
    fn load(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        self.load_hinted(matchers, mint, maxt, false)
    }

    /// [`Ev::load`]; with `newest_only`, storage may return only each series' newest sample
    /// (see [`augur_storage::ReadLimits::newest_only`]).
    fn load_hinted(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        newest_only: bool,
    ) -> Result<Vec<Series>> {
        if mint > maxt {
            return Ok(Vec::new());
        }
        let querier = self.ctx.db.querier(mint, maxt)?;
        let limits = augur_storage::ReadLimits {
            newest_only,
            ..self.ctx.read_limits()
        };
        let series = querier
            .select_limited(matchers, &limits)
            .map_err(|e| match e {
                StorageError::TooManySamples { .. } => Error::TooManySamples("query execution"),
                StorageError::Timeout => Error::Timeout("query execution"),
                StorageError::Canceled => Error::Canceled("query execution"),
                e => Error::Storage(e),
            })?;
        let total: usize = series.iter().map(|s| s.samples.len()).sum();
        self.ctx.hold(total)?;
        self.ctx.release(total);
        Ok(series)
    }

    /// An instant selector over the grid. With `sample_times`, each point's value is the
    /// timestamp (seconds) of the sample it came from (for `timestamp()`).
    pub fn vector_selector(&self, vs: &VectorSelector, sample_times: bool) -> Result<Vec<VSeries>> {
        let refs = self.ref_times(&vs.offset, &vs.at);
        let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
            return Ok(Vec::new());
        };
        let lookback = self.ctx.settings.lookback;
        let smoothed = ext_mode(vs) == Some("smoothed");
        let maxt = first.max(last) + if smoothed { lookback } else { 0 };
        let mint = first.min(last) - lookback + 1;
        // At one time (an instant query, a rule) only each series' newest sample in the
        // lookback window counts: storage need not decode or return the others.
        let series = if refs.len() == 1 && !smoothed {
            self.load_hinted(&selector_matchers(vs)?, mint, maxt, true)?
                .into_iter()
                .map(vseries)
                .collect()
        } else {
            self.select(vs, mint, maxt)?
        };
        if smoothed {
            return self.smoothed_vector(series, &refs);
        }
        let hists = if sample_times {
            Hists::AsTimes
        } else {
            Hists::Points
        };
        self.pick_points(series, &refs, hists, |_, p| {
            if sample_times {
                p.t as f64 / 1000.0
            } else {
                p.v
            }
        })
    }

    /// `start_timestamp(selector)`: per step, the start timestamp (seconds; 0 when unknown)
    /// of the sample the selector picks. A `smoothed` selector picks no sample.
    pub fn start_timestamps(&self, vs: &VectorSelector) -> Result<Vec<VSeries>> {
        let refs = self.ref_times(&vs.offset, &vs.at);
        let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
            return Ok(Vec::new());
        };
        if ext_mode(vs) == Some("smoothed") {
            return Ok(Vec::new());
        }
        let lookback = self.ctx.settings.lookback;
        let (series, sts): (Vec<VSeries>, Vec<Vec<i64>>) = self
            .select_with_sts(vs, first.min(last) - lookback + 1, first.max(last))?
            .into_iter()
            .unzip();
        self.instant_points(series, &refs, |(s, i), _| {
            sts[s].get(i).map_or(0.0, |&st| st as f64 / 1000.0)
        })
    }

    /// Each series' newest sample in `(r - lookback, r]` for every reference time `r`,
    /// placed at the grid step; staleness markers end a series. The point's value is
    /// `value((series index, sample index), sample)`.
    pub fn instant_points(
        &self,
        series: Vec<VSeries>,
        refs: &[i64],
        value: impl Fn((usize, usize), Sample) -> f64,
    ) -> Result<Vec<VSeries>> {
        self.pick_points(series, refs, Hists::Ignore, value)
    }

    /// [`Ev::instant_points`], with what to do when a series' newest sample is a native
    /// histogram: ignore histograms (the float before it may be picked), keep it as a
    /// histogram point, or take the float `value` of its time (`Sample { t, v: NaN }`,
    /// sample index `usize::MAX`).
    fn pick_points(
        &self,
        series: Vec<VSeries>,
        refs: &[i64],
        hists: Hists,
        value: impl Fn((usize, usize), Sample) -> f64,
    ) -> Result<Vec<VSeries>> {
        let lookback = self.ctx.settings.lookback;
        let mut out = Vec::with_capacity(series.len());
        let mut held = 0;
        for (si, mut s) in series.into_iter().enumerate() {
            self.ctx.check()?;
            let mut points = Vec::with_capacity(refs.len().min(s.points.len() + 1));
            let mut hpoints = Vec::new();
            let raw_hists = if hists == Hists::Ignore {
                Vec::new()
            } else {
                std::mem::take(&mut s.hists)
            };
            let (mut hi, mut hh) = (0, 0);
            for (i, &r) in refs.iter().enumerate() {
                while hi < s.points.len() && s.points[hi].t <= r {
                    hi += 1;
                }
                while hh < raw_hists.len() && raw_hists[hh].t <= r {
                    hh += 1;
                }
                let float = (hi > 0).then(|| s.points[hi - 1]);
                let hist = (hh > 0).then(|| &raw_hists[hh - 1]);
                match (float, hist) {
                    (f, Some(h)) if f.is_none_or(|f| h.t > f.t) => {
                        if h.t <= r - lookback || h.h.is_stale() {
                            continue;
                        }
                        if hists == Hists::Points {
                            hpoints.push(HPoint {
                                t: self.grid.ts(i),
                                h: Arc::clone(&h.h),
                            });
                        } else {
                            let p = Sample::new(h.t, f64::NAN);
                            points.push(Sample::new(self.grid.ts(i), value((si, usize::MAX), p)));
                        }
                    }
                    (Some(p), _) => {
                        if p.t <= r - lookback || is_stale_nan(p.v) {
                            continue;
                        }
                        points.push(Sample::new(self.grid.ts(i), value((si, hi - 1), p)));
                    }
                    (None, _) => {}
                }
            }
            if !points.is_empty() || !hpoints.is_empty() {
                held += points.len() + hpoints.len();
                s.points = points;
                s.hists = hpoints;
                out.push(s);
            }
        }
        self.ctx.hold(held)?;
        Ok(out)
    }

    /// `x smoothed`: the value linearly interpolated at each reference time between the
    /// samples around it (within the lookback delta on either side).
    fn smoothed_vector(&self, series: Vec<VSeries>, refs: &[i64]) -> Result<Vec<VSeries>> {
        let lookback = self.ctx.settings.lookback;
        let mut out = Vec::new();
        let mut notes = crate::functions::range_hist::Notes::default();
        for mut s in series {
            s.points.retain(|p| !is_stale_nan(p.v));
            let mut points = Vec::new();
            let mut hi = 0;
            for (i, &r) in refs.iter().enumerate() {
                while hi < s.points.len() && s.points[hi].t <= r {
                    hi += 1;
                }
                let before = (hi > 0)
                    .then(|| s.points[hi - 1])
                    .filter(|p| p.t > r - lookback);
                let after = s.points.get(hi).copied().filter(|p| p.t < r + lookback);
                let v = match (before, after) {
                    (Some(b), _) if b.t == r => b.v,
                    (Some(b), Some(a)) => b.v + (a.v - b.v) * (r - b.t) as f64 / (a.t - b.t) as f64,
                    (Some(b), None) => b.v,
                    // Only later samples: nothing to interpolate from.
                    (None, _) => continue,
                };
                points.push(Sample::new(self.grid.ts(i), v));
            }
            let hists = self.smoothed_histograms(&s, refs, &mut notes);
            if !points.is_empty() || !hists.is_empty() {
                s.points = points;
                s.hists = hists;
                out.push(s);
            }
        }
        for (warn, msg) in notes.list {
            if warn {
                self.ctx.warn_at::<Expr>(msg, None);
            } else {
                self.ctx.info_at::<Expr>(msg, None);
            }
        }
        Ok(out)
    }

    /// `x smoothed` over native histograms: at each reference time the sample there, or the
    /// two around it interpolated (counter resets counted from zero), or the last one before
    /// it; a step with floats and histograms around it gives nothing and a warning.
    fn smoothed_histograms(
        &self,
        s: &VSeries,
        refs: &[i64],
        notes: &mut crate::functions::range_hist::Notes,
    ) -> Vec<HPoint> {
        let lookback = self.ctx.settings.lookback;
        let metric = s.labels.metric_name().unwrap_or_default();
        let mut out = Vec::new();
        if s.hists.is_empty() {
            return out;
        }
        for (i, &r) in refs.iter().enumerate() {
            let within = |t: i64| t > r - lookback && t < r + lookback;
            let lo = s.hists.partition_point(|p| p.t <= r - lookback);
            let hi = s.hists.partition_point(|p| p.t < r + lookback);
            if lo >= hi {
                continue;
            }
            if s.points.iter().any(|p| within(p.t)) {
                notes.mixed_floats(metric);
                continue;
            }
            let hs = &s.hists[lo..hi];
            let at = hs.partition_point(|p| p.t < r);
            let h = match (hs.get(at), at.checked_sub(1).map(|k| &hs[k])) {
                (Some(next), _) if next.t == r => Some((*next.h).clone()),
                (Some(next), Some(prev)) => {
                    if prev.h.uses_custom_buckets() != next.h.uses_custom_buckets() {
                        notes.mixed_schemas(metric);
                        continue;
                    }
                    let counter = prev.h.reset_hint != ResetHint::Gauge
                        || next.h.reset_hint != ResetHint::Gauge;
                    let h = crate::functions::range_hist::interpolate(
                        (prev.t, &prev.h),
                        (next.t, &next.h),
                        r,
                        counter,
                        notes,
                    );
                    if h.is_none() {
                        notes.mixed_schemas(metric);
                    }
                    h
                }
                (None, Some(prev)) => Some(Histogram {
                    reset_hint: ResetHint::Unknown,
                    ..(*prev.h).clone()
                }),
                _ => None,
            };
            if let Some(h) = h {
                out.push(HPoint {
                    t: self.grid.ts(i),
                    h: Arc::new(h),
                });
            }
        }
        out
    }

    /// A range-vector argument (`x[5m]` or a subquery) prepared for sliding windows.
    pub fn matrix_input(&self, expr: &Expr) -> Result<RangeInput> {
        match expr {
            Expr::Paren(p) => self.matrix_input(&p.expr),
            Expr::MatrixSelector(ms) => {
                let range = ms.range.as_millis() as i64;
                let refs = self.ref_times(&ms.vs.offset, &ms.vs.at);
                let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
                    return Ok(RangeInput::empty(range, refs));
                };
                let lookback = self.ctx.settings.lookback;
                // Anchored and smoothed windows also need the samples just outside.
                let mut mint = first.min(last) - range + 1;
                let mut maxt = first.max(last);
                let mode = ext_mode(&ms.vs).map(str::to_owned);
                if mode.is_some() {
                    mint -= lookback;
                    maxt += lookback;
                }
                let mut series = Vec::new();
                let mut sts = Vec::new();
                for (mut s, mut st) in self.select_with_sts(&ms.vs, mint, maxt)? {
                    if s.points.iter().any(|p| is_stale_nan(p.v)) {
                        if !st.is_empty() {
                            let mut keep = s.points.iter().map(|p| !is_stale_nan(p.v));
                            st.retain(|_| keep.next().unwrap_or(false));
                        }
                        s.points.retain(|p| !is_stale_nan(p.v));
                    }
                    s.hists.retain(|h| !h.h.is_stale());
                    if !s.is_empty() {
                        series.push(s);
                        sts.push(st);
                    }
                }
                Ok(RangeInput {
                    series,
                    sts,
                    range,
                    refs,
                    mode,
                })
            }
            Expr::Subquery(sq) => self.subquery_input(sq),
            other => Err(exec_err!(
                "expected range vector, got {}",
                other.value_type()
            )),
        }
    }

    fn subquery_input(&self, sq: &SubqueryExpr) -> Result<RangeInput> {
        let range = sq.range.as_millis() as i64;
        let step = match sq.step {
            Some(s) if !s.is_zero() => s.as_millis() as i64,
            _ => self.ctx.settings.default_subquery_step,
        }
        .max(1);
        let refs = self.ref_times(&sq.offset, &sq.at);
        let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
            return Ok(RangeInput::empty(range, refs));
        };
        let lo = first.min(last) - range;
        // The first step-aligned time strictly after the start of the earliest window.
        let mut start = lo.div_euclid(step) * step;
        if start <= lo {
            start += step;
        }
        let inner = Ev {
            ctx: self.ctx,
            grid: Grid::new(start, first.max(last), step),
        };
        let series = match inner.eval(&sq.expr)? {
            Val::Vector(mut v) => {
                // A subquery's steps are not consecutive samples: their reset hints would miss
                // resets between steps or see one many times, so resets are detected again.
                for p in v.iter_mut().flat_map(|s| s.hists.iter_mut()) {
                    if matches!(p.h.reset_hint, ResetHint::Yes | ResetHint::No) {
                        Arc::make_mut(&mut p.h).reset_hint = ResetHint::Unknown;
                    }
                }
                v
            }
            Val::Scalar(v) => vec![VSeries::new(
                Default::default(),
                inner
                    .grid
                    .times()
                    .zip(v)
                    .map(|(t, v)| Sample::new(t, v))
                    .collect(),
            )],
            other => {
                return Err(exec_err!(
                    "subquery is only allowed on instant vector, got {}",
                    other.type_name()
                ))
            }
        };
        Ok(RangeInput {
            series,
            sts: Vec::new(),
            range,
            refs,
            mode: None,
        })
    }
}

/// What an instant selection does with native histogram samples (see [`Ev::pick_points`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hists {
    Ignore,
    Points,
    AsTimes,
}

/// A storage series as the evaluator holds it: floats in `points`, histograms in `hists`,
/// their reset hints as Prometheus's TSDB reads them back (a sender's hints are not trusted:
/// each histogram after another, with no float between, is a reset only if its counts say so;
/// see [`crate::hist::chunk_hint`]).
fn vseries(s: Series) -> VSeries {
    let mut v = VSeries::new(s.labels, s.samples);
    let mut prev: Option<(i64, Arc<Histogram>)> = None;
    v.hists = s
        .histograms
        .into_iter()
        .map(|mut x| {
            let after = prev.as_ref().filter(|(pt, _)| {
                // A float between the two starts a new chunk.
                let i = v.points.partition_point(|p| p.t <= *pt);
                v.points.get(i).is_none_or(|p| p.t >= x.t)
            });
            let hint = crate::hist::chunk_hint(&x.h, after.map(|(_, h)| &**h));
            if hint != x.h.reset_hint {
                x.h.reset_hint = hint;
            }
            let h = Arc::new(x.h);
            prev = Some((x.t, Arc::clone(&h)));
            HPoint { t: x.t, h }
        })
        .collect();
    v
}
