//! Augur's anomaly-detection functions (issue "Anomaly functions"), registered with
//! promql-parser so they parse and type-check like built-ins. Documented with example rules
//! in `docs/anomaly-functions.md`.
//!
//! `zscore(v range-vector)`, `ewma(v range-vector, alpha scalar)`,
//! `ewma_deviation(v range-vector, alpha scalar)`, `seasonal_baseline(v range-vector, period
//! scalar)`, `predict(v range-vector, horizon scalar)`, the time-aware baselines
//! `baseline_zscore`/`baseline_avg`/`baseline_stddev(v range-vector, min_samples scalar[,
//! tz_offset scalar])`, `severity(v range-vector)` and `anomaly_score(v range-vector)` (in
//! `anomaly_score.rs`; issue "Detectors").
//! Like the other range functions they see one window of one series at a time (staleness
//! markers already removed) and drop the metric name.
//!
//! NaN and ±Inf samples are values like any other and propagate through the arithmetic
//! (a NaN in a window makes `zscore` and `ewma` NaN); irregular spacing is ignored (both
//! weigh samples by order, not by time).

use std::collections::HashMap;
use std::sync::Once;

use augur_storage::{Labels, Sample};
use promql_parser::parser::Expr;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{register_extra_functions, Function};

use super::range::Win;
use super::unwrap_parens;
use crate::error::{exec_err, Result};
use crate::eval::{Ev, VSeries, Val};

/// Registers the functions with promql-parser, once per process.
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_extra_functions(vec![
            Function::new(
                "zscore",
                vec![ValueType::Matrix],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "ewma",
                vec![ValueType::Matrix, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "predict",
                vec![ValueType::Matrix, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "baseline_zscore",
                vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
                1,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "baseline_avg",
                vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
                1,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "baseline_stddev",
                vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
                1,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "ewma_deviation",
                vec![ValueType::Matrix, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "severity",
                vec![ValueType::Matrix],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "anomaly_score",
                vec![ValueType::Matrix],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "seasonal_baseline",
                vec![ValueType::Matrix, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
        ])
        .expect("Augur's function names do not clash with PromQL's");
    });
}

/// `zscore`: how unusual the newest sample is against the others in the window:
/// `(x - mean) / stddev` over the other samples (population standard deviation). At least
/// three samples; a zero deviation gives 0 when `x` equals the mean, else ±Inf.
pub(crate) fn zscore(w: &Win<'_>) -> Result<Option<f64>> {
    let s = w.s;
    if s.len() < 3 {
        return Ok(None);
    }
    let (others, x) = (&s[..s.len() - 1], s[s.len() - 1].v);
    let n = others.len() as f64;
    // Equal samples are a constant series: its mean is that value and its deviation exactly 0.
    // Summing them would drift by an ulp for values not exact in binary (0.1 × 3 / 3 ≠ 0.1),
    // turning "0" into ±1 and "±Inf" into ±1e15.
    let first = others[0].v;
    if others.iter().all(|p| p.v.to_bits() == first.to_bits()) {
        return Ok(Some(standardise(x, first, 0.0)));
    }
    let mean = others.iter().map(|p| p.v).sum::<f64>() / n;
    let var = others
        .iter()
        .map(|p| (p.v - mean) * (p.v - mean))
        .sum::<f64>()
        / n;
    Ok(Some(standardise(x, mean, var.sqrt())))
}

/// `(x - m) / s`, and for `s = 0`: 0 when `x == m`, else +Inf or -Inf.
fn standardise(x: f64, m: f64, s: f64) -> f64 {
    if s != 0.0 {
        (x - m) / s
    } else if x == m {
        0.0
    } else if x > m {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    }
}

/// The largest `tz_offset` the baselines accept: 14 hours, as far as time zones go.
pub const MAX_TZ_OFFSET_S: f64 = 14.0 * 3600.0;

/// Checks the baselines' parameters (`min_samples`, optional `tz_offset`), given per step:
/// each must be the same at every step, `min_samples` at least 1, `tz_offset` within ±14 h.
pub(crate) fn check_baseline_params(name: &str, params: &[Vec<f64>]) -> Result<()> {
    for (i, what) in ["min_samples", "tz_offset"].iter().enumerate() {
        let Some(steps) = params.get(i) else { continue };
        let Some(&v) = steps.first() else { continue };
        check_same_at_every_step(name, what, steps)?;
        let ok = match i {
            0 => v >= 1.0,
            _ => v.abs() <= MAX_TZ_OFFSET_S,
        };
        if !ok {
            let want = match i {
                0 => "at least 1",
                _ => "between -50400 and 50400 seconds (±14h)",
            };
            return Err(exec_err!(
                "{name}: {what} must be {want}, got {}",
                super::go_float(v)
            ));
        }
    }
    Ok(())
}

/// The hour (since the epoch, shifted by `tz` seconds) a timestamp falls in.
fn hour_of(t_ms: i64, tz: i64) -> i64 {
    (t_ms.div_euclid(1000) + tz).div_euclid(3600)
}

/// The time-aware baseline of a window for its newest sample `x`: `(x, m, s)` with `m` and `s`
/// the mean and sample standard deviation (n − 1) of the other samples in the hour-of-week
/// bucket of the evaluation time (day of week × hour of day, shifted by `tz_offset`), or, when
/// that bucket holds fewer than `max(min_samples, 2)` of them, the hour-of-day bucket, or
/// else the whole window. `None` when the window has fewer than 2 other samples.
///
/// Three passes: count each level, then the chosen level's mean (exactly its value when all
/// its samples are equal, as `zscore` does), then the squared deviations from it.
fn baseline(w: &Win<'_>) -> Option<(f64, f64, f64)> {
    let s = w.s;
    if s.len() < 3 {
        return None;
    }
    let (others, x) = (&s[..s.len() - 1], s[s.len() - 1].v);
    let need = w.params[0].max(2.0);
    let tz = w.params.get(1).copied().unwrap_or(0.0) as i64;
    let h = hour_of(w.ts, tz);
    let (week, day) = (h.rem_euclid(168), h.rem_euclid(24));
    // 0: in the hour-of-week bucket (so also the hour-of-day one), 1: in the hour-of-day
    // bucket only, 2: elsewhere in the window.
    let level_of = |t: i64| {
        let hp = hour_of(t, tz);
        if hp.rem_euclid(24) != day {
            2
        } else if hp.rem_euclid(168) != week {
            1
        } else {
            0
        }
    };
    let mut counts = [0usize; 3];
    for p in others {
        counts[level_of(p.t)] += 1;
    }
    let (in_week, in_day) = (counts[0], counts[0] + counts[1]);
    let level = if in_week as f64 >= need {
        0
    } else if in_day as f64 >= need {
        1
    } else {
        2
    };
    let members = || others.iter().filter(move |p| level_of(p.t) <= level);
    let first = members().next()?.v;
    let (mut n, mut sum, mut equal) = (0.0, 0.0, true);
    for p in members() {
        n += 1.0;
        sum += p.v;
        equal &= p.v.to_bits() == first.to_bits();
    }
    if equal {
        return Some((x, first, 0.0));
    }
    let mean = sum / n;
    let sq: f64 = members().map(|p| (p.v - mean) * (p.v - mean)).sum();
    Some((x, mean, (sq / (n - 1.0)).sqrt()))
}

/// `baseline_zscore(v, min_samples[, tz_offset])`: `(x - m) / s` of [`baseline`]; a zero `s`
/// gives 0 when `x == m`, else ±Inf, as `zscore` does.
pub(crate) fn baseline_zscore(w: &Win<'_>) -> Result<Option<f64>> {
    Ok(baseline(w).map(|(x, m, s)| standardise(x, m, s)))
}

/// `baseline_avg(v, min_samples[, tz_offset])`: `m` of [`baseline`].
pub(crate) fn baseline_avg(w: &Win<'_>) -> Result<Option<f64>> {
    Ok(baseline(w).map(|(_, m, _)| m))
}

/// `baseline_stddev(v, min_samples[, tz_offset])`: `s` of [`baseline`].
pub(crate) fn baseline_stddev(w: &Win<'_>) -> Result<Option<f64>> {
    Ok(baseline(w).map(|(_, _, s)| s))
}

/// The percentiles `severity` maps to SEV1..SEV5, most severe first.
pub const SEVERITY_QUANTILES: [f64; 5] = [0.999, 0.99, 0.95, 0.9, 0.8];

/// `severity(v range-vector)`: how high the newest sample ranks against the window's samples
/// before it: 1 when it is above their 99.9th percentile, 2 above the 99th, 3 above the 95th,
/// 4 above the 90th, 5 above the 80th, otherwise no output. Percentiles are
/// `quantile_over_time`'s (linear interpolation between the closest ranks). Needs at least
/// 10 earlier samples.
pub(crate) fn severity(w: &Win<'_>) -> Result<Option<f64>> {
    let s = w.s;
    if s.len() < 11 {
        return Ok(None);
    }
    let x = s[s.len() - 1].v;
    let mut earlier: Vec<f64> = s[..s.len() - 1].iter().map(|p| p.v).collect();
    for (level, q) in SEVERITY_QUANTILES.iter().enumerate() {
        if x > super::quantile(*q, &mut earlier) {
            return Ok(Some((level + 1) as f64));
        }
    }
    Ok(None)
}

/// Checks `ewma`'s smoothing factor: it must be in (0, 1].
pub(crate) fn check_alpha(name: &str, alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha <= 1.0 {
        Ok(())
    } else {
        Err(exec_err!(
            "{name}: alpha must be in (0, 1], got {}",
            super::go_float(alpha)
        ))
    }
}

/// The floor of the deviation, as the seed's EMA detector applies it (`max(dev, 1e-10)`).
pub const EWMA_DEVIATION_FLOOR: f64 = 1e-10;

/// `ewma_deviation(v range-vector, alpha scalar)`: the exponentially weighted mean absolute
/// deviation of the window's samples from their EMA, oldest first: `e = x1`, `d = 0`; then for
/// each later `x`: `e = alpha*x + (1-alpha)*e` (as `ewma`), `d = alpha*|x - e| + (1-alpha)*d`;
/// the result is `max(d, (1-alpha) * 1e-10)`.
///
/// This is the seed's detector's deviation `D` (updated with `|x - e_before|`, before the EMA
/// moves, floored at 1e-10) times `1 - alpha`, because `|x - e_after| = (1-alpha)|x - e_before|`:
/// so `abs(x - ewma(x[w], a)) > 3 * ewma_deviation(x[w], a)` is exactly the seed's
/// `|x - e_before| > 3 * max(D, 1e-10)`. The newest sample widens its own band, as in the seed.
pub(crate) fn ewma_deviation(w: &Win<'_>) -> Result<Option<f64>> {
    let alpha = w.params[0];
    let mut it = w.s.iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    let (mut e, mut d) = (first.v, 0.0);
    for p in it {
        e = ewma_step(e, p.v, alpha);
        d = alpha * (p.v - e).abs() + (1.0 - alpha) * d;
    }
    let floor = (1.0 - alpha) * EWMA_DEVIATION_FLOOR;
    Ok(Some(if d.is_nan() { d } else { d.max(floor) }))
}

/// `ewma`: exponentially weighted moving average of the window, oldest first:
/// `e = x1`, then `e = alpha*x + (1-alpha)*e`. The caller has checked `alpha` at every step
/// ([`check_alpha`]) before any window.
pub(crate) fn ewma(w: &Win<'_>) -> Result<Option<f64>> {
    let alpha = w.params[0];
    let mut it = w.s.iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    Ok(Some(it.fold(first.v, |e, p| ewma_step(e, p.v, alpha))))
}

/// One EMA update: `alpha*x + (1-alpha)*e`. A sample equal to the average leaves it as it is;
/// the formula would drift by an ulp for most alphas, so a constant series would not average
/// to itself.
fn ewma_step(e: f64, x: f64, alpha: f64) -> f64 {
    if x == e {
        e
    } else {
        alpha * x + (1.0 - alpha) * e
    }
}

/// Checks that a parameter given per step of a range query has one value throughout.
pub(crate) fn check_same_at_every_step(name: &str, what: &str, steps: &[f64]) -> Result<()> {
    if steps.windows(2).any(|w| w[0].to_bits() != w[1].to_bits()) {
        return Err(exec_err!("{name}: {what} must be the same at every step"));
    }
    Ok(())
}

/// `seasonal_baseline(v range-vector, period scalar)`: the mean of the series' values at
/// `t - k*period` for k = 1, 2, … while that instant is inside the window, each value being the
/// newest sample at or before the instant within the lookback delta. Over a plain selector it
/// reads only those instants (one lookback-wide slice per season), never the whole window.
pub(crate) fn seasonal_baseline(ev: &Ev<'_>, args: &[&Expr]) -> Result<Val> {
    let periods = ev.eval_scalar(args[1])?;
    let arg = unwrap_parens(args[0]);
    let (range, offset, at) = match arg {
        Expr::MatrixSelector(ms) => (ms.range.as_millis() as i64, &ms.vs.offset, &ms.vs.at),
        Expr::Subquery(sq) => (sq.range.as_millis() as i64, &sq.offset, &sq.at),
        _ => return Err(exec_err!("seasonal_baseline: expected a range vector")),
    };
    let Some(&period_s) = periods.first() else {
        return Ok(Val::Vector(Vec::new()));
    };
    check_same_at_every_step("seasonal_baseline", "period", &periods)?;
    let period = (period_s * 1000.0).round();
    if !(period >= 1.0 && period <= range as f64) {
        return Err(exec_err!(
            "seasonal_baseline: period must be positive and not larger than the range ({}), got {}",
            crate::duration::format_duration(range),
            super::go_float(period_s)
        ));
    }
    let period = period as i64;
    let refs = ev.ref_times(offset, at);
    let lookback = ev.ctx.settings.lookback;
    // Over a subquery the whole window has to be evaluated anyway.
    let subquery_points = match arg {
        Expr::Subquery(_) => Some(ev.matrix_input(arg)?.series),
        _ => None,
    };
    let n = ev.grid.len();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut acc: Vec<(Labels, Vec<f64>, Vec<u32>)> = Vec::new();
    let mut k = 1;
    while k * period < range {
        let refs_k: Vec<i64> = refs.iter().map(|r| r - k * period).collect();
        let (lo, hi) = (refs_k[0].min(refs_k[n - 1]), refs_k[0].max(refs_k[n - 1]));
        let series = match (&subquery_points, arg) {
            (Some(points), _) => points.clone(),
            (None, Expr::MatrixSelector(ms)) => ev.select(&ms.vs, lo - lookback + 1, hi)?,
            _ => Vec::new(),
        };
        for s in ev.instant_points(series, &refs_k, |_, p| p.v)? {
            let i = *index.entry(s.labels.clone()).or_insert_with(|| {
                acc.push((s.labels.clone(), vec![0.0; n], vec![0; n]));
                acc.len() - 1
            });
            for p in &s.points {
                let step = ev.grid.index(p.t);
                acc[i].1[step] += p.v;
                acc[i].2[step] += 1;
            }
        }
        k += 1;
    }
    let out = acc
        .into_iter()
        .map(|(labels, sum, count)| VSeries {
            hists: Vec::new(),
            labels,
            points: (0..n)
                .filter(|i| count[*i] > 0)
                .map(|i| Sample::new(ev.grid.ts(i), sum[i] / f64::from(count[i])))
                .collect(),
            drop_name: true,
        })
        .filter(|s| !s.points.is_empty())
        .collect::<Vec<_>>();
    ev.ctx.hold(out.iter().map(|s| s.points.len()).sum())?;
    Ok(Val::Vector(out))
}

/// The smoothing factors `predict` tries: every (level α, trend β) pair from this grid.
pub const PREDICT_GRID: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];

/// `predict(v range-vector, horizon scalar)`: Holt's linear (double exponential) smoothing
/// over the window, with α and β chosen per series and step from [`PREDICT_GRID`] by the
/// smallest sum of squared one-step-ahead errors (the first pair in grid order wins ties).
/// The trend, per sample, becomes per second through the window's mean sample spacing; the
/// forecast is for `horizon` seconds after the evaluation time (counted from the last
/// sample). Needs at least 3 samples.
pub(crate) fn predict(w: &Win<'_>) -> Result<Option<f64>> {
    let s = w.s;
    if s.len() < 3 {
        return Ok(None);
    }
    // All 25 (α, β) pairs advance together, one sample at a time: the inner loops have no
    // dependencies between lanes, so they vectorise.
    const N: usize = PREDICT_GRID.len() * PREDICT_GRID.len();
    let mut alpha = [0.0; N];
    let mut beta = [0.0; N];
    for (k, (a, b)) in PREDICT_GRID
        .iter()
        .flat_map(|a| PREDICT_GRID.iter().map(move |b| (*a, *b)))
        .enumerate()
    {
        alpha[k] = a;
        beta[k] = b;
    }
    let mut level = [s[0].v; N];
    let mut trend = [s[1].v - s[0].v; N];
    let mut sse = [0.0; N];
    for p in &s[1..] {
        let x = p.v;
        for k in 0..N {
            let forecast = level[k] + trend[k];
            let e = x - forecast;
            sse[k] += e * e;
            let next = alpha[k] * x + (1.0 - alpha[k]) * forecast;
            trend[k] = beta[k] * (next - level[k]) + (1.0 - beta[k]) * trend[k];
            level[k] = next;
        }
    }
    // The smallest error; the first pair wins ties and a NaN never beats a number.
    let mut best = 0;
    for k in 1..N {
        if sse[k] < sse[best] || (sse[best].is_nan() && !sse[k].is_nan()) {
            best = k;
        }
    }
    let (level, trend) = (level[best], trend[best]);
    let spacing = (s[s.len() - 1].t - s[0].t) as f64 / 1000.0 / (s.len() - 1) as f64;
    let ahead = w.params[0] + (w.ts - s[s.len() - 1].t) as f64 / 1000.0;
    Ok(Some(level + trend / spacing * ahead))
}
