//! Range functions over windows that hold native histogram samples, with Prometheus's
//! semantics: `rate`/`increase`/`delta` (counter resets detected bucket by bucket,
//! extrapolated like floats), `irate`/`idelta`, `resets`/`changes`, `sum_over_time` and
//! `avg_over_time` of histograms, the counting and picking functions (`count_over_time`,
//! `present_over_time`, `last_over_time`, `first_over_time`, `ts_of_last_over_time`,
//! `ts_of_first_over_time`) over both kinds, and the float-only functions, which read the
//! window's floats and say when they ignored histograms beside them.
//!
//! Augur's anomaly functions read floats only: a window of histograms gives no output and an
//! info annotation (docs/anomaly-functions.md).

use std::sync::Arc;

use augur_storage::histogram::{Histogram, ResetHint};
use augur_storage::Sample;

use super::range::Win;
use crate::eval::HPoint;
use crate::hist;

/// A window's result.
pub(crate) enum Out {
    F(f64),
    H(Histogram),
}

/// Annotations a window raised, as (is_warning, message); the caller adds the position.
#[derive(Default)]
pub(crate) struct Notes {
    pub list: Vec<(bool, String)>,
}

impl Notes {
    fn warn(&mut self, msg: String) {
        self.list.push((true, msg));
    }

    fn info(&mut self, msg: String) {
        self.list.push((false, msg));
    }

    pub(crate) fn mixed_floats(&mut self, metric: &str) {
        self.warn(format!(
            "PromQL warning: encountered a mix of histograms and floats for metric name {metric:?}"
        ));
    }

    pub(crate) fn mixed_schemas(&mut self, metric: &str) {
        self.warn(format!(
            "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?}"
        ));
    }

    fn reconciled(&mut self, op: &str) {
        self.info(format!(
            "PromQL info: mismatched custom buckets were reconciled during {op}"
        ));
    }

    fn not_counter(&mut self, metric: &str) {
        self.warn(format!(
            "PromQL warning: this native histogram metric is not a counter: {metric:?}"
        ));
    }

    fn not_gauge(&mut self, metric: &str) {
        self.warn(format!(
            "PromQL warning: this native histogram metric is not a gauge: {metric:?}"
        ));
    }
}

/// Whether `name` is one of Augur's own functions (they say themselves what they skip).
pub(crate) fn is_augur_function(name: &str) -> bool {
    matches!(
        name,
        "zscore"
            | "ewma"
            | "ewma_deviation"
            | "predict"
            | "baseline_zscore"
            | "baseline_avg"
            | "baseline_stddev"
            | "severity"
            | "anomaly_score"
    )
}

/// Evaluates `name` over a window with floats `w.s` and histograms `hs` (`hs` not empty).
/// `float_fn` computes the function over floats alone.
pub(crate) fn window(
    name: &str,
    w: &Win<'_>,
    hs: &[HPoint],
    metric: &str,
    notes: &mut Notes,
    float_fn: impl Fn(&Win<'_>) -> crate::error::Result<Option<f64>>,
) -> crate::error::Result<Option<Out>> {
    let fs = w.s;
    Ok(match name {
        "rate" | "increase" | "delta" => {
            if !fs.is_empty() {
                notes.mixed_floats(metric);
                return Ok(None);
            }
            if w.mode.is_some() {
                return Ok(
                    extended(w, hs, name != "delta", name == "rate", metric, notes).map(Out::H),
                );
            }
            extrapolated(w, hs, name != "delta", name == "rate", metric, notes).map(Out::H)
        }
        "irate" | "idelta" => instant(fs, hs, name == "irate", metric, notes),
        "resets" | "changes" => {
            let mut seq = merged(fs, hs);
            if w.mode == Some("anchored") {
                // From the last sample at or before the range's start; nothing when no
                // sample is inside the range (as for floats).
                let inside = seq.partition_point(|p| p.0 <= w.start);
                if inside >= seq.len() {
                    return Ok(None);
                }
                seq.drain(..inside.saturating_sub(1));
            }
            if seq.is_empty() {
                return Ok(None);
            }
            let mut n = 0;
            for pair in seq.windows(2) {
                let changed = match (pair[0].1, pair[1].1) {
                    (Pt::F(a), Pt::F(b)) if name == "changes" => {
                        a != b && !(a.is_nan() && b.is_nan())
                    }
                    (Pt::F(a), Pt::F(b)) => b < a,
                    (Pt::H(a), Pt::H(b)) if name == "changes" => !hist::equals(b, a),
                    (Pt::H(a), Pt::H(b)) => hist::detect_reset(b, a),
                    // A float after a histogram or the other way round.
                    _ => true,
                };
                n += usize::from(changed);
            }
            Some(Out::F(n as f64))
        }
        "sum_over_time" | "avg_over_time" => {
            if !fs.is_empty() {
                notes.mixed_floats(metric);
                return Ok(None);
            }
            let (mut reset, mut no_reset) = (false, false);
            for p in hs {
                match p.h.reset_hint {
                    ResetHint::Yes => reset = true,
                    ResetHint::No => no_reset = true,
                    _ => {}
                }
            }
            let mut agg = hist::Aggregate::new(&hs[0].h, name == "avg_over_time");
            let mut reconciled = false;
            for p in &hs[1..] {
                let Some((_, r)) = agg.add(&p.h) else {
                    notes.mixed_schemas(metric);
                    return Ok(None);
                };
                reconciled |= r;
            }
            if reset && no_reset {
                notes.warn(
                    "PromQL warning: conflicting counter resets during histogram aggregation"
                        .into(),
                );
            }
            if reconciled {
                notes.reconciled("aggregation");
            }
            let mut sum = agg.finish();
            hist::compact(&mut sum);
            Some(Out::H(sum))
        }
        "count_over_time" => Some(Out::F((fs.len() + hs.len()) as f64)),
        "present_over_time" => Some(Out::F(1.0)),
        "last_over_time" | "first_over_time" | "ts_of_last_over_time" | "ts_of_first_over_time" => {
            let last = name.contains("last");
            let (f, h) = if last {
                (fs.last(), hs.last())
            } else {
                (fs.first(), hs.first())
            };
            let float_wins = match (f, h) {
                (Some(f), Some(h)) => (f.t > h.t) == last,
                (Some(_), None) => true,
                _ => false,
            };
            let t = if float_wins {
                f.map(|p| p.t)
            } else {
                h.map(|p| p.t)
            };
            match (name.starts_with("ts_of"), float_wins) {
                (true, _) => t.map(|t| Out::F(t as f64 / 1000.0)),
                (false, true) => f.map(|p| Out::F(p.v)),
                (false, false) => h.map(|p| Out::H((*p.h).clone())),
            }
        }
        _ if is_augur_function(name) => float_fn(w)?.map(Out::F),
        _ => {
            // A float-only function: histograms beside floats are ignored, and said so.
            if fs.is_empty() {
                return Ok(None);
            }
            notes.info(format!(
                "PromQL info: ignored histograms in a range containing both floats and histograms for metric name {metric:?}"
            ));
            float_fn(w)?.map(Out::F)
        }
    })
}

#[derive(Clone, Copy)]
enum Pt<'a> {
    F(f64),
    H(&'a Histogram),
}

/// Floats and histograms of a window in time order, with their times.
fn merged<'a>(fs: &'a [Sample], hs: &'a [HPoint]) -> Vec<(i64, Pt<'a>)> {
    let mut out = Vec::with_capacity(fs.len() + hs.len());
    let (mut i, mut j) = (0, 0);
    while i < fs.len() || j < hs.len() {
        if j >= hs.len() || (i < fs.len() && fs[i].t < hs[j].t) {
            out.push((fs[i].t, Pt::F(fs[i].v)));
            i += 1;
        } else {
            out.push((hs[j].t, Pt::H(&hs[j].h)));
            j += 1;
        }
    }
    out
}

/// `irate`/`idelta` of the window's last two samples, histograms or floats.
fn instant(
    fs: &[Sample],
    hs: &[HPoint],
    is_rate: bool,
    metric: &str,
    notes: &mut Notes,
) -> Option<Out> {
    let mut last: Vec<(i64, Pt<'_>)> = fs
        .iter()
        .rev()
        .take(2)
        .map(|p| (p.t, Pt::F(p.v)))
        .chain(hs.iter().rev().take(2).map(|p| (p.t, Pt::H(&p.h))))
        .collect();
    if last.len() < 2 {
        return None;
    }
    last.sort_by_key(|p| std::cmp::Reverse(p.0));
    let ((t1, b), (t0, a)) = (last[0], last[1]);
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    let out = match (a, b) {
        (Pt::F(a), Pt::F(b)) => {
            let mut v = b;
            if !is_rate || b >= a {
                v = b - a;
            }
            Out::F(v)
        }
        (Pt::H(a), Pt::H(b)) => {
            if is_rate && (b.reset_hint == ResetHint::Gauge || a.reset_hint == ResetHint::Gauge) {
                notes.not_counter(metric);
            }
            if !is_rate && (b.reset_hint != ResetHint::Gauge || a.reset_hint != ResetHint::Gauge) {
                notes.not_gauge(metric);
            }
            let mut h = b.clone();
            if !is_rate || !hist::detect_reset(b, a) {
                let Some(s) = hist::add(b, a, true) else {
                    notes.mixed_schemas(metric);
                    return None;
                };
                if s.reconciled {
                    notes.reconciled("subtraction");
                }
                h = s.h;
            }
            h.reset_hint = ResetHint::Gauge;
            hist::compact(&mut h);
            Out::H(h)
        }
        _ => {
            notes.mixed_floats(metric);
            return None;
        }
    };
    Some(match out {
        Out::F(v) if is_rate => Out::F(v / (interval as f64 / 1000.0)),
        Out::H(h) if is_rate => Out::H(hist::div(&h, interval as f64 / 1000.0)),
        other => other,
    })
}

/// Prometheus's `histogramRate`: the increase (counters, resets added back) or difference
/// between the window's first and last histograms, at the window's coarsest schema.
fn histogram_increase(
    hs: &[HPoint],
    is_counter: bool,
    metric: &str,
    notes: &mut Notes,
) -> Option<Histogram> {
    let last = &*hs[hs.len() - 1].h;
    let mut prev: Arc<Histogram> = Arc::clone(&hs[0].h);
    if is_counter && (prev.reset_hint == ResetHint::Gauge || last.reset_hint == ResetHint::Gauge) {
        notes.not_counter(metric);
    }
    if is_counter && hist::detect_reset(&hs[1].h, &prev) {
        // The first sample does not count: only its layout would matter.
        prev = Arc::new(Histogram {
            schema: hs[1].h.schema,
            custom_values: hs[1].h.custom_values.clone(),
            ..Histogram::default()
        });
    }
    let custom = prev.uses_custom_buckets();
    if last.uses_custom_buckets() != custom {
        notes.mixed_schemas(metric);
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    for p in &hs[1..hs.len() - 1] {
        if !is_counter {
            continue;
        }
        if p.h.reset_hint == ResetHint::Gauge {
            notes.not_counter(metric);
        }
        min_schema = min_schema.min(p.h.schema);
        if p.h.uses_custom_buckets() != custom {
            notes.mixed_schemas(metric);
            return None;
        }
    }
    let Some(s) = hist::add(&hist::to_schema(last, min_schema), &prev, true) else {
        notes.mixed_schemas(metric);
        return None;
    };
    if s.reconciled {
        notes.reconciled("subtraction");
    }
    let mut h = s.h;
    if is_counter {
        let mut prev: &Histogram = &prev;
        for p in &hs[1..] {
            if hist::detect_reset(&p.h, prev) {
                let Some(s) = hist::add(&h, prev, false) else {
                    notes.mixed_schemas(metric);
                    return None;
                };
                if s.reconciled {
                    notes.reconciled("addition");
                }
                h = s.h;
            }
            prev = &p.h;
        }
    } else if hs[0].h.reset_hint != ResetHint::Gauge || last.reset_hint != ResetHint::Gauge {
        notes.not_gauge(metric);
    }
    h.reset_hint = ResetHint::Gauge;
    hist::compact(&mut h);
    Some(h)
}

/// `rate`/`increase`/`delta` of histograms, extrapolated as Prometheus's `extrapolatedRate`.
fn extrapolated(
    w: &Win<'_>,
    hs: &[HPoint],
    is_counter: bool,
    is_rate: bool,
    metric: &str,
    notes: &mut Notes,
) -> Option<Histogram> {
    if hs.len() < 2 {
        return None;
    }
    let result = histogram_increase(hs, is_counter, metric, notes)?;
    let (first, last) = (&hs[0], &hs[hs.len() - 1]);
    let mut to_start = (first.t - w.start) as f64 / 1000.0;
    let to_end = (w.end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_between = sampled / (hs.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter && result.count > 0.0 && first.h.count >= 0.0 {
        let to_zero = sampled * (first.h.count / result.count);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let factor =
        super::range::extrapolation(to_start, to_end, sampled, avg_between, w.range, is_rate);
    Some(hist::mul(&result, factor))
}

/// `h1` at `t1` and `h2` at `t2` interpolated linearly to `t`; a counter reset between them
/// counts from zero (Prometheus's `interpolateHistograms`).
pub(crate) fn interpolate(
    (t1, h1): (i64, &Histogram),
    (t2, h2): (i64, &Histogram),
    t: i64,
    is_counter: bool,
    notes: &mut Notes,
) -> Option<Histogram> {
    if t == t1 {
        return Some(h1.clone());
    }
    if t == t2 {
        return Some(h2.clone());
    }
    let fraction = (t - t1) as f64 / (t2 - t1) as f64;
    if is_counter && hist::detect_reset(h2, h1) {
        return Some(hist::mul(h2, fraction));
    }
    let d = hist::add(h2, h1, true)?;
    if d.reconciled {
        notes.reconciled("subtraction");
    }
    let s = hist::add(&hist::mul(&d.h, fraction), h1, false)?;
    if s.reconciled {
        notes.reconciled("addition");
    }
    Some(s.h)
}

/// `rate`/`increase`/`delta` of histograms over an `anchored` or `smoothed` window
/// (Prometheus's `extendedHistogramRate`): from the last sample at or before the window's
/// start (smoothed: interpolated at the start and end) to the last one, counter resets
/// added back.
fn extended(
    w: &Win<'_>,
    hs: &[HPoint],
    is_counter: bool,
    is_rate: bool,
    metric: &str,
    notes: &mut Notes,
) -> Option<Histogram> {
    let smoothed = w.mode == Some("smoothed");
    let mut last = hs.len() - 1;
    let first = hs[..last]
        .partition_point(|p| p.t <= w.start)
        .saturating_sub(1);
    if smoothed {
        last = hs[..last].partition_point(|p| p.t < w.end);
    }
    if hs[last].t <= w.start || (smoothed && hs[first].t > w.end) {
        return None;
    }
    let custom = hs[first].h.uses_custom_buckets();
    for p in &hs[first..=last] {
        if p.h.uses_custom_buckets() != custom {
            notes.mixed_schemas(metric);
            return None;
        }
        if is_counter && p.h.reset_hint == ResetHint::Gauge {
            notes.not_counter(metric);
        }
    }
    let mixed = |notes: &mut Notes| notes.mixed_schemas(metric);
    // The sample at an end, or the two around it interpolated (smoothed).
    let end_at = |a: usize, b: usize, t: i64, notes: &mut Notes| -> Option<Histogram> {
        let h = interpolate(
            (hs[a].t, &hs[a].h),
            (hs[b].t, &hs[b].h),
            t,
            is_counter,
            notes,
        );
        if h.is_none() {
            mixed(notes);
        }
        h
    };
    let left = if smoothed && hs[first].t < w.start {
        end_at(first, first + 1, w.start, notes)?
    } else {
        (*hs[first].h).clone()
    };
    let right = if smoothed && last > 0 && hs[last].t > w.end {
        end_at(last - 1, last, w.end, notes)?
    } else {
        (*hs[last].h).clone()
    };
    if !is_counter && (left.reset_hint != ResetHint::Gauge || right.reset_hint != ResetHint::Gauge)
    {
        notes.not_gauge(metric);
    }
    let Some(d) = hist::add(&right, &left, true) else {
        mixed(notes);
        return None;
    };
    if d.reconciled {
        notes.reconciled("subtraction");
    }
    let mut result = d.h;
    if is_counter {
        // Counter resets between the two ends: what the counter held before each is added
        // back (Prometheus's `correctForCounterResetsHistogram`).
        let mut from = first + 1;
        let mut prev: &Histogram = &left;
        if smoothed && hs[first].t < w.start && hist::detect_reset(&hs[first + 1].h, &hs[first].h) {
            prev = &hs[first + 1].h;
            from += 1;
        }
        let mut correction: Option<Histogram> = None;
        let mut add = |c: &Histogram, notes: &mut Notes| -> bool {
            correction = match correction.take() {
                None => Some(c.clone()),
                Some(sum) => match hist::add(&sum, c, false) {
                    Some(s) => {
                        if s.reconciled {
                            notes.reconciled("addition");
                        }
                        Some(s.h)
                    }
                    None => {
                        notes.mixed_schemas(metric);
                        return false;
                    }
                },
            };
            true
        };
        if from <= last {
            for p in &hs[from..last] {
                if hist::detect_reset(&p.h, prev) && !add(prev, notes) {
                    return None;
                }
                prev = &p.h;
            }
            if hist::detect_reset(&right, prev) && !add(prev, notes) {
                return None;
            }
        }
        if let Some(c) = correction {
            let Some(s) = hist::add(&result, &c, false) else {
                mixed(notes);
                return None;
            };
            if s.reconciled {
                notes.reconciled("addition");
            }
            result = s.h;
        }
    }
    if is_rate {
        result = hist::div(&result, w.range as f64 / 1000.0);
    }
    result.reset_hint = ResetHint::Gauge;
    hist::compact(&mut result);
    Some(result)
}
