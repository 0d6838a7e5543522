//! Functions of a range vector (`rate`, `increase`, `delta`, `irate`, `idelta`, `deriv`,
//! `predict_linear`, `changes`, `resets`, `*_over_time`, `double_exponential_smoothing`, …).
//!
//! Each function sees one window of one series at a time: the samples in
//! `(ref - range, ref]` (wider for `anchored`/`smoothed`), oldest first, staleness markers
//! removed. Windows slide over samples loaded once (see `eval::selector`).
//!
//! `rate`, `increase`, `irate` and `resets` of a matrix selector also see the samples' start
//! timestamps, as Prometheus 3.12 does with start timestamps on: a start timestamp after the
//! previous sample marks a counter reset, and one inside the window stands for a zero sample
//! there, replacing extrapolation towards the window's start.

use std::cell::Cell;
use std::sync::Arc;

use augur_storage::Sample;
use promql_parser::parser::Expr;

use super::range_hist;
use super::{kahan_inc, quantile};
use crate::error::{exec_err, Result};
use crate::eval::selector::slide_ranges;
use crate::eval::{Ev, HPoint, VSeries, Val};

/// One evaluation window.
pub(crate) struct Win<'a> {
    /// Samples, oldest first.
    pub s: &'a [Sample],
    /// Their start timestamps (ms, 0 = unknown): empty, or one per sample of `s`. Only the
    /// functions that use them get them.
    pub sts: &'a [i64],
    /// Set when a sample's start timestamp overlaps the previous sample (see
    /// [`start_overlaps`]), for one warning per series.
    pub overlap: &'a Cell<bool>,
    /// The window is `(start, end]`.
    pub start: i64,
    pub end: i64,
    /// The range in ms.
    pub range: i64,
    /// The evaluation (step) time.
    pub ts: i64,
    /// Scalar arguments other than the range vector, at this step, in argument order.
    pub params: &'a [f64],
    /// `anchored` or `smoothed`, when given.
    pub mode: Option<&'a str>,
}

type RangeFn = fn(&Win<'_>) -> Result<Option<f64>>;

fn lookup(name: &str) -> Option<RangeFn> {
    Some(match name {
        "rate" => |w| Ok(extrapolated_rate(w, true, true)),
        "increase" => |w| Ok(extrapolated_rate(w, true, false)),
        "delta" => |w| Ok(extrapolated_rate(w, false, false)),
        "irate" => |w| Ok(instant_value(w.s, w.sts, true)),
        "idelta" => |w| Ok(instant_value(w.s, &[], false)),
        "deriv" => |w| Ok((w.s.len() >= 2).then(|| linear_regression(w.s, w.s[0].t).0)),
        "predict_linear" => |w| {
            Ok((w.s.len() >= 2).then(|| {
                let (slope, intercept) = linear_regression(w.s, w.ts);
                slope * w.params[0] + intercept
            }))
        },
        "changes" => |w| {
            Ok(anchored_first(w).map(|s| {
                s.windows(2)
                    .filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan()))
                    .count() as f64
            }))
        },
        "resets" => |w| {
            Ok(anchored_first(w).map(|s| {
                // `s` is a suffix of the window; its start timestamps are the same suffix.
                let sts = w.sts.get(w.s.len() - s.len()..).unwrap_or(&[]);
                (1..s.len())
                    .filter(|&i| {
                        s[i].v < s[i - 1].v
                            || (!sts.is_empty()
                                && start_reset(sts[i - 1], s[i - 1].t, sts[i], s[i].t))
                    })
                    .count() as f64
            }))
        },
        "avg_over_time" => |w| Ok(some(w).map(avg)),
        "sum_over_time" => |w| {
            Ok(some(w).map(|s| {
                let (sum, c) = s.iter().fold((0.0, 0.0), |(a, c), p| kahan_inc(p.v, a, c));
                sum + c
            }))
        },
        "count_over_time" => |w| Ok(some(w).map(|s| s.len() as f64)),
        "min_over_time" => |w| Ok(some(w).map(|s| compare(s, |c, m| c < m || m.is_nan()).1)),
        "max_over_time" => |w| Ok(some(w).map(|s| compare(s, |c, m| c > m || m.is_nan()).1)),
        // Ties go to the latest sample (`<=`/`>=`), as in Prometheus.
        "ts_of_min_over_time" => {
            |w| Ok(some(w).map(|s| compare(s, |c, m| c <= m || m.is_nan()).0 as f64 / 1000.0))
        }
        "ts_of_max_over_time" => {
            |w| Ok(some(w).map(|s| compare(s, |c, m| c >= m || m.is_nan()).0 as f64 / 1000.0))
        }
        "last_over_time" => |w| Ok(w.s.last().map(|p| p.v)),
        "first_over_time" => |w| Ok(w.s.first().map(|p| p.v)),
        "ts_of_last_over_time" => |w| Ok(w.s.last().map(|p| p.t as f64 / 1000.0)),
        "ts_of_first_over_time" => |w| Ok(w.s.first().map(|p| p.t as f64 / 1000.0)),
        "present_over_time" => |w| Ok(some(w).map(|_| 1.0)),
        "stddev_over_time" => |w| Ok(some(w).map(|s| variance(s).sqrt())),
        "stdvar_over_time" => |w| Ok(some(w).map(variance)),
        "quantile_over_time" => |w| {
            Ok(some(w).map(|s| {
                let mut v: Vec<f64> = s.iter().map(|p| p.v).collect();
                quantile(w.params[0], &mut v)
            }))
        },
        "mad_over_time" => |w| {
            Ok(some(w).map(|s| {
                if s.iter().any(|p| p.v.is_nan()) {
                    return f64::NAN;
                }
                let mut v: Vec<f64> = s.iter().map(|p| p.v).collect();
                let median = quantile(0.5, &mut v);
                v.iter_mut().for_each(|x| *x = (*x - median).abs());
                quantile(0.5, &mut v)
            }))
        },
        "double_exponential_smoothing" => double_exponential_smoothing,
        "zscore" => super::anomaly::zscore,
        "ewma" => super::anomaly::ewma,
        "ewma_deviation" => super::anomaly::ewma_deviation,
        "predict" => super::anomaly::predict,
        "baseline_zscore" => super::anomaly::baseline_zscore,
        "baseline_avg" => super::anomaly::baseline_avg,
        "baseline_stddev" => super::anomaly::baseline_stddev,
        "severity" => super::anomaly::severity,
        "anomaly_score" => super::anomaly_score::anomaly_score,
        _ => return None,
    })
}

fn some<'a>(w: &Win<'a>) -> Option<&'a [Sample]> {
    (!w.s.is_empty()).then_some(w.s)
}

/// Evaluates `name` if it is a range-vector function; `None` otherwise.
pub(crate) fn call(ev: &Ev<'_>, name: &str, args: &[&Expr]) -> Result<Option<Val>> {
    let Some(matrix_at) = args
        .iter()
        .position(|a| a.value_type() == promql_parser::parser::value::ValueType::Matrix)
    else {
        return Ok(None);
    };
    if name == "absent_over_time" {
        return absent_over_time(ev, args[0]).map(Some);
    }
    let Some(f) = lookup(name) else {
        return Ok(None);
    };
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != matrix_at {
            params.push(ev.eval_scalar(a)?);
        }
    }
    if name == "ewma" || name == "ewma_deviation" {
        // A bad alpha fails the query even where there is no data to smooth.
        params[0]
            .iter()
            .try_for_each(|a| super::anomaly::check_alpha(name, *a))?;
    }
    if name == "ewma_deviation" {
        super::anomaly::check_same_at_every_step(name, "alpha", &params[0])?;
    }
    if name.starts_with("baseline_") {
        super::anomaly::check_baseline_params(name, &params)?;
    }
    if name == "quantile_over_time" {
        if let Some(q) = params[0]
            .iter()
            .copied()
            .find(|q| q.is_nan() || *q < 0.0 || *q > 1.0)
        {
            ev.ctx.warn_at(
                format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    super::instant::go_g(q)
                ),
                args[0],
            );
        }
    }
    let input = ev.matrix_input(args[matrix_at])?;
    if let Some(mode) = &input.mode {
        let allowed: &[&str] = if mode == "anchored" {
            &["changes", "delta", "increase", "rate", "resets"]
        } else {
            &["delta", "increase", "rate"]
        };
        if !allowed.contains(&name) {
            return Err(exec_err!(
                "{mode} modifier can only be used with: {} - not with {name}",
                allowed.join(", ")
            ));
        }
    }
    let keep_name = name == "last_over_time" || name == "first_over_time";
    let uses_sts = matches!(name, "rate" | "increase" | "irate" | "resets");
    let overlap = Cell::new(false);
    let lookback = ev.ctx.settings.lookback;
    let mut out = Vec::with_capacity(input.series.len());
    let mut step_params = vec![0.0; params.len()];
    let mut held = 0;
    let smoothed = input.mode.as_deref() == Some("smoothed");
    // Anchored windows reach one lookback back; smoothed ones one lookback either side.
    let widened = match input.mode {
        None => input.range,
        Some(_) if smoothed => input.range + 2 * lookback,
        Some(_) => input.range + lookback,
    };
    let shifted: Vec<i64>;
    let wide_refs: &[i64] = if smoothed {
        shifted = input.refs.iter().map(|r| r + lookback).collect();
        &shifted
    } else {
        &input.refs
    };
    for (si, s) in input.series.iter().enumerate() {
        ev.ctx.check()?;
        let sts: &[i64] = match input.sts.get(si) {
            Some(sts) if uses_sts => sts,
            _ => &[],
        };
        overlap.set(false);
        let (points, hists) = if s.hists.is_empty() {
            let mut points = Vec::new();
            slide_ranges(&s.points, wide_refs, widened, |i, range| {
                if range.is_empty() {
                    return Ok(());
                }
                for (p, v) in step_params.iter_mut().zip(&params) {
                    *p = v[i];
                }
                let end = input.refs[i];
                let w = Win {
                    sts: sts.get(range.clone()).unwrap_or(&[]),
                    s: &s.points[range],
                    overlap: &overlap,
                    start: end - input.range,
                    end,
                    range: input.range,
                    ts: ev.grid.ts(i),
                    params: &step_params,
                    mode: input.mode.as_deref(),
                };
                if let Some(v) = f(&w)? {
                    points.push(Sample::new(w.ts, v));
                }
                Ok(())
            })?;
            (points, Vec::new())
        } else {
            with_histograms(
                ev,
                name,
                f,
                (s, sts, &overlap),
                (wide_refs, widened, &input.refs),
                (input.range, input.mode.as_deref()),
                &params,
                args[matrix_at],
            )?
        };
        if overlap.get() {
            ev.ctx.warn_at(
                format!(
                    "PromQL warning: sample has start time that overlaps with previous sample timestamp for metric {:?}",
                    s.labels.metric_name().unwrap_or_default()
                ),
                args[matrix_at],
            );
        }
        if points.is_empty() && hists.is_empty() {
            continue;
        }
        if (name == "rate" || name == "increase") && !points.is_empty() {
            if let Some(metric) = s.labels.metric_name() {
                if !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|suffix| metric.ends_with(suffix))
                {
                    ev.ctx.info_at(
                        format!(
                            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"
                        ),
                        args[matrix_at],
                    );
                }
            }
        }
        held += points.len() + hists.len();
        out.push(VSeries {
            hists,
            labels: s.labels.clone(),
            points,
            drop_name: s.drop_name || !keep_name,
        });
    }
    ev.ctx.hold(held)?;
    Ok(Some(Val::Vector(out)))
}

/// One series of a range function whose input holds native histograms: each window's floats
/// and histograms go to [`range_hist::window`]; its annotations are added at the argument.
#[allow(clippy::too_many_arguments)]
fn with_histograms(
    ev: &Ev<'_>,
    name: &str,
    f: RangeFn,
    (s, sts, overlap): (&VSeries, &[i64], &Cell<bool>),
    (refs, widened, ends): (&[i64], i64, &[i64]),
    (range, mode): (i64, Option<&str>),
    params: &[Vec<f64>],
    at: &Expr,
) -> Result<(Vec<Sample>, Vec<HPoint>)> {
    let (mut points, mut hists) = (Vec::new(), Vec::new());
    let metric = s.labels.metric_name().unwrap_or_default();
    let mut step_params = vec![0.0; params.len()];
    let mut notes = range_hist::Notes::default();
    let (mut lo, mut hi) = (0, 0);
    let mut anomaly_info = false;
    slide_ranges(&s.points, refs, widened, |i, range_f| {
        let r = refs[i];
        while hi < s.hists.len() && s.hists[hi].t <= r {
            hi += 1;
        }
        while lo < hi && s.hists[lo].t <= r - widened {
            lo += 1;
        }
        for (p, v) in step_params.iter_mut().zip(params) {
            *p = v[i];
        }
        let end = ends[i];
        let w = Win {
            sts: sts.get(range_f.clone()).unwrap_or(&[]),
            s: &s.points[range_f],
            overlap,
            start: end - range,
            end,
            range,
            ts: ev.grid.ts(i),
            params: &step_params,
            mode,
        };
        let hs = &s.hists[lo..hi];
        let out = if hs.is_empty() {
            if w.s.is_empty() {
                return Ok(());
            }
            f(&w)?.map(range_hist::Out::F)
        } else {
            anomaly_info |= range_hist::is_augur_function(name);
            range_hist::window(name, &w, hs, metric, &mut notes, f)?
        };
        match out {
            Some(range_hist::Out::F(v)) => points.push(Sample::new(w.ts, v)),
            Some(range_hist::Out::H(h)) => hists.push(HPoint {
                t: w.ts,
                h: Arc::new(h),
            }),
            None => {}
        }
        Ok(())
    })?;
    if anomaly_info {
        notes.list.push((
            false,
            format!(
                "PromQL info: ignored native histograms in {name}(), which reads float samples only, for metric name {metric:?}"
            ),
        ));
    }
    for (warn, msg) in notes.list {
        if warn {
            ev.ctx.warn_at(msg, at);
        } else {
            ev.ctx.info_at(msg, at);
        }
    }
    Ok((points, hists))
}

/// `absent_over_time`: one series (labels from the selector's equality matchers) with 1 at
/// every step where no series had a sample in the window.
fn absent_over_time(ev: &Ev<'_>, arg: &Expr) -> Result<Val> {
    let input = ev.matrix_input(arg)?;
    let mut present = vec![false; ev.grid.len()];
    for s in &input.series {
        let hist_times: Vec<Sample> = s.hists.iter().map(|h| Sample::new(h.t, 0.0)).collect();
        for points in [&s.points, &hist_times] {
            input.windows(points, |i, w| {
                if !w.is_empty() {
                    present[i] = true;
                }
                Ok(())
            })?;
        }
    }
    let points: Vec<Sample> = present
        .iter()
        .enumerate()
        .filter(|(_, p)| !**p)
        .map(|(i, _)| Sample::new(ev.grid.ts(i), 1.0))
        .collect();
    if points.is_empty() {
        return Ok(Val::Vector(Vec::new()));
    }
    let labels = super::instant::absent_labels(arg);
    Ok(Val::Vector(vec![VSeries {
        hists: Vec::new(),
        labels,
        points,
        drop_name: true,
    }]))
}

/// Prometheus's `extrapolatedRate` (and `extendedRate` for `anchored`/`smoothed`).
fn extrapolated_rate(w: &Win<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    if w.mode.is_some() {
        return extended_rate(w, is_counter, is_rate);
    }
    let s = w.s;
    let (first, last) = (*s.first()?, s[s.len() - 1]);
    let sts = if is_counter { w.sts } else { &[] };
    let mut result = last.v - first.v;
    if is_counter {
        for i in 1..s.len() {
            let reset_by_start = !sts.is_empty() && {
                if start_overlaps(sts[i - 1], s[i - 1].t, sts[i]) {
                    w.overlap.set(true);
                }
                start_reset(sts[i - 1], s[i - 1].t, sts[i], s[i].t)
            };
            if s[i].v < s[i - 1].v || reset_by_start {
                result += s[i - 1].v;
            }
        }
    }
    let mut to_start = (first.t - w.start) as f64 / 1000.0;
    let to_end = (w.end - last.t) as f64 / 1000.0;
    let mut sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_between = if s.len() > 1 {
        sampled / (s.len() - 1) as f64
    } else {
        0.0
    };
    let threshold = avg_between * 1.1;
    match sts.first() {
        // The first sample's start lies inside the window: a zero sample stands there, in
        // place of extrapolating to the left (the window's start itself is outside it).
        Some(&st) if st != 0 && st > w.start && st < first.t => {
            to_start = 0.0;
            sampled = (last.t - st) as f64 / 1000.0;
            result += first.v;
        }
        // One sample and no usable start: no rate.
        _ if s.len() == 1 => return None,
        _ => {
            if to_start >= threshold {
                to_start = avg_between / 2.0;
            }
            if is_counter {
                let mut to_zero = to_start;
                if result > 0.0 && first.v >= 0.0 {
                    to_zero = sampled * (first.v / result);
                }
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
        }
    }
    Some(result * extrapolation(to_start, to_end, sampled, avg_between, w.range, is_rate))
}

/// The factor that extends an increase seen over `sampled` seconds to the window: to its end
/// unless the last sample is further from it than 1.1 average intervals (then half an
/// interval), to its start by `to_start` (already decided), per second of `range_ms` for a
/// rate (the end of Prometheus's `extrapolatedRate`).
pub(crate) fn extrapolation(
    to_start: f64,
    mut to_end: f64,
    sampled: f64,
    avg_between: f64,
    range_ms: i64,
    is_rate: bool,
) -> f64 {
    if to_end >= avg_between * 1.1 {
        to_end = avg_between / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    factor
}

/// Whether a sample's start timestamp says its counter restarted since the previous sample
/// (Prometheus's `isStartTimestampReset`). A start after the previous sample is a reset; one
/// equal to it is a reset only for delta samples (the previous sample's own start known and
/// before it), not for a cumulative series with an unknown start (OpenTelemetry then sets the
/// start to the first sample's time). Unknown (0), invalid (after the sample) and earlier
/// starts are not.
fn start_reset(prev_st: i64, prev_t: i64, st: i64, t: i64) -> bool {
    if st == 0 || st >= t || st < prev_t {
        return false;
    }
    if st > prev_t {
        return true;
    }
    prev_st <= prev_t && prev_st != 0 && prev_st != prev_t
}

/// Whether a sample's start timestamp overlaps the previous sample: set, before the previous
/// sample, and not the same start (Prometheus's `checkStartTimeOverlap`).
fn start_overlaps(prev_st: i64, prev_t: i64, st: i64) -> bool {
    st != 0 && st < prev_t && st != prev_st
}

fn interpolate(p1: Sample, p2: Sample, t: i64, is_counter: bool) -> f64 {
    let mut y1 = p1.v;
    let y2 = p2.v;
    if is_counter && y2 < y1 {
        y1 = 0.0;
    }
    y1 + (y2 - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

/// `rate`/`increase`/`delta` over an `anchored` or `smoothed` window.
fn extended_rate(w: &Win<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let f = w.s;
    if f.is_empty() {
        return None;
    }
    let smoothed = w.mode == Some("smoothed");
    let mut last = f.len() - 1;
    let mut first = f[..last]
        .partition_point(|p| p.t <= w.start)
        .saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.t < w.end);
    }
    if f[last].t <= w.start {
        return None;
    }
    if smoothed && f[first].t > w.end {
        return None;
    }
    let left = if smoothed && f[first].t < w.start {
        interpolate(f[first], f[first + 1], w.start, is_counter)
    } else {
        f[first].v
    };
    let right = if smoothed && last > 0 && f[last].t > w.end {
        interpolate(f[last - 1], f[last], w.end, is_counter)
    } else {
        f[last].v
    };
    let mut result = right - left;
    if is_counter {
        if f[first].t <= w.start {
            first += 1;
        }
        let last_in = if f[last].t >= w.end {
            last as isize - 1
        } else {
            last as isize
        };
        let mut prev = left;
        let mut correction = 0.0;
        if first as isize <= last_in {
            for p in &f[first..=last_in as usize] {
                if p.v < prev {
                    correction += prev;
                }
                prev = p.v;
            }
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if is_rate {
        result /= w.range as f64 / 1000.0;
    }
    Some(result)
}

/// For `changes`/`resets`: the samples to look at. With `anchored`, the window starts at the
/// last sample at or before the range start; nothing when no sample is inside the range.
fn anchored_first<'a>(w: &Win<'a>) -> Option<&'a [Sample]> {
    if w.s.is_empty() {
        return None;
    }
    if w.mode != Some("anchored") {
        return Some(w.s);
    }
    let le = w.s.partition_point(|p| p.t <= w.start);
    if le >= w.s.len() {
        return None;
    }
    Some(&w.s[le.saturating_sub(1)..])
}

/// `irate` / `idelta`: from the last two samples (and their start timestamps, if given).
fn instant_value(s: &[Sample], sts: &[i64], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let n = s.len();
    let (a, b) = (s[n - 2], s[n - 1]);
    let interval = b.t - a.t;
    if interval == 0 {
        return None;
    }
    let reset_by_start = sts.len() == n && start_reset(sts[n - 2], a.t, sts[n - 1], b.t);
    let mut v = b.v;
    if !is_rate || !(b.v < a.v || reset_by_start) {
        v = b.v - a.v;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares slope (per second) and intercept at `intercept_t`, with Kahan sums.
pub(crate) fn linear_regression(s: &[Sample], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init = s[0].v;
    let mut const_y = true;
    for (i, p) in s.iter().enumerate() {
        if const_y && i > 0 && p.v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Prometheus's overflow-safe mean of a window.
fn avg(s: &[Sample]) -> f64 {
    let (mut sum, mut count) = (s[0].v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in s[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Population variance (Welford with Kahan sums).
fn variance(s: &[Sample]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in s {
        count += 1.0;
        let delta = p.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// The (timestamp, value) chosen by `better(candidate, current)` scanning oldest first.
fn compare(s: &[Sample], better: impl Fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut t, mut v) = (s[0].t, s[0].v);
    for p in s {
        if better(p.v, v) {
            (t, v) = (p.t, p.v);
        }
    }
    (t, v)
}

fn double_exponential_smoothing(w: &Win<'_>) -> Result<Option<f64>> {
    let (sf, tf) = (w.params[0], w.params[1]);
    if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
        return Err(exec_err!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        ));
    }
    if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
        return Err(exec_err!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        ));
    }
    let s = w.s;
    if s.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, s[0].v);
    let mut b = s[1].v - s[0].v;
    for (i, p) in s.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}
