//! `histogram_quantile`, `histogram_quantiles` and `histogram_fraction` over classic
//! histograms (`_bucket` series with an `le` label) and over native ones (Prometheus's
//! `HistogramQuantile`/`HistogramFraction`: linear interpolation in custom and zero buckets,
//! exponential in the others), and `histogram_count`, `histogram_sum`, `histogram_avg`,
//! `histogram_stddev` and `histogram_stdvar` of native histograms.

use std::collections::{BTreeSet, HashMap};

use augur_storage::histogram::Histogram;
use augur_storage::Labels;
use promql_parser::parser::Expr;

use super::instant::{go_g, rfc3339_seconds};
use crate::error::Result;
use crate::eval::aggregate::Cursors;
use crate::eval::{build_labels, Ev, Val};
use crate::functions::Collector;
use crate::gofmt::format_float;

/// What to compute from each group's buckets.
enum Want {
    /// `histogram_quantile(q, v)`, or `histogram_quantiles(v, label, q…)` with the label.
    Quantiles(Vec<Vec<f64>>, Option<String>),
    /// `histogram_fraction(lower, upper, v)`.
    Fraction(Vec<f64>, Vec<f64>),
}

/// `histogram_quantile`, `histogram_quantiles` and `histogram_fraction` over classic buckets.
pub(crate) fn call(ev: &Ev<'_>, name: &str, args: &[&Expr]) -> Result<Option<Val>> {
    let native: Option<fn(&Histogram) -> f64> = match name {
        "histogram_count" => Some(|h| h.count),
        "histogram_sum" => Some(|h| h.sum),
        "histogram_avg" => Some(|h| h.sum / h.count),
        "histogram_stddev" => Some(|h| variance(h).sqrt()),
        "histogram_stdvar" => Some(variance),
        _ => None,
    };
    if let Some(f) = native {
        return native_values(ev, args[0], f).map(Some);
    }
    let (want, input_arg) = match name {
        "histogram_quantile" => (
            Want::Quantiles(vec![ev.eval_scalar(args[0])?], None),
            args[1],
        ),
        "histogram_quantiles" => {
            let label = super::string_arg(args[1])?;
            let mut qs = Vec::new();
            for a in &args[2..] {
                qs.push(ev.eval_scalar(a)?);
            }
            (Want::Quantiles(qs, Some(label)), args[0])
        }
        "histogram_fraction" => (
            Want::Fraction(ev.eval_scalar(args[0])?, ev.eval_scalar(args[1])?),
            args[2],
        ),
        _ => return Ok(None),
    };
    if let Want::Quantiles(qs, _) = &want {
        // The quantile arguments: the first of histogram_quantile, the third on of
        // histogram_quantiles.
        let q_args = if name == "histogram_quantile" {
            &args[..1]
        } else {
            &args[2..]
        };
        for (values, at) in qs.iter().zip(q_args) {
            if let Some(q) = values
                .iter()
                .copied()
                .find(|q| q.is_nan() || !(0.0..=1.0).contains(q))
            {
                ev.ctx.warn_at(
                    format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        go_g(q)
                    ),
                    *at,
                );
                break;
            }
        }
    }
    let input = match ev.eval(input_arg)? {
        Val::Vector(v) => v,
        other => {
            return Err(crate::error::exec_err!(
                "expected instant vector, got {}",
                other.type_name()
            ))
        }
    };
    let mut out = Collector::new();
    let mixed = classic_beside_native(&input);
    native_quantiles(ev, &want, &input, input_arg, &mixed, &mut out)?;
    let input = crate::eval::floats_only(input);
    // Group the bucket series by their labels without `le`, once.
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut keys: Vec<Labels> = Vec::new();
    let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for s in &input {
        let le = s.labels.get("le").unwrap_or("");
        let Some(bound) = parse_go_float(le) else {
            let name = s.labels.metric_name().unwrap_or("");
            ev.ctx.warn_at(
                format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"
                ),
                input_arg,
            );
            member.push(None);
            continue;
        };
        let key = without_le(&s.labels);
        let next = keys.len();
        let g = *groups.entry(key.clone()).or_insert(next);
        if g == next {
            keys.push(key);
        }
        member.push(Some((g, bound)));
    }
    let mut cur = Cursors::new(&input);
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); keys.len()];
    let mut quantile_labels: HashMap<(usize, u64), Labels> = HashMap::new();
    // Monotonicity fixes, per metric name in order of appearance.
    let mut fixed: Vec<(String, Monotonicity)> = Vec::new();
    for (step, t) in ev.grid.times().enumerate() {
        ev.ctx.check()?;
        buckets.iter_mut().for_each(Vec::clear);
        for (i, m) in member.iter().enumerate() {
            let Some((g, bound)) = *m else { continue };
            if let Some(v) = cur.at(i, t) {
                buckets[g].push((bound, v));
            }
        }
        // A native histogram with the same labels at this step: neither is evaluated (the
        // native side says so).
        for (g, b) in buckets.iter_mut().enumerate() {
            if !b.is_empty() && mixed.get(&keys[g]).is_some_and(|ts| ts.contains(&t)) {
                b.clear();
            }
        }
        match &want {
            Want::Quantiles(qs, label) => {
                for q in qs {
                    let q = q[step];
                    for (g, b) in buckets.iter_mut().enumerate() {
                        if b.is_empty() {
                            continue;
                        }
                        let (v, forced) = bucket_quantile(q, b);
                        if let Some(f) = forced {
                            let name = keys[g].metric_name().unwrap_or("").to_owned();
                            match fixed.iter_mut().find(|(n, _)| *n == name) {
                                Some((_, m)) => m.merge(t, f),
                                None => fixed.push((name, Monotonicity::new(t, f))),
                            }
                        }
                        let labels = match label {
                            None => keys[g].clone(),
                            Some(label) => quantile_labels
                                .entry((g, q.to_bits()))
                                .or_insert_with(|| quantile_labels_of(&keys[g], label, q))
                                .clone(),
                        };
                        out.push(&labels, true, t, v)?;
                    }
                }
            }
            Want::Fraction(lower, upper) => {
                for (g, b) in buckets.iter_mut().enumerate() {
                    if b.is_empty() {
                        continue;
                    }
                    let v = bucket_fraction(lower[step], upper[step], b);
                    out.push(&keys[g], true, t, v)?;
                }
            }
        }
    }
    for (name, m) in fixed {
        ev.ctx.info_at(m.message(&name), input_arg);
    }
    Ok(Some(Val::Vector(out.finish(ev)?)))
}

/// Where `bucket_quantile` had to force bucket counts to be monotonic: the lowest and highest
/// upper bound it changed and the largest decrease it removed.
#[derive(Debug, Clone, Copy)]
struct Forced {
    min_bucket: f64,
    max_bucket: f64,
    max_diff: f64,
}

/// Prometheus's monotonicity info for one metric name, merged over steps and series.
struct Monotonicity {
    min_t: i64,
    max_t: i64,
    forced: Forced,
    samples: usize,
}

impl Monotonicity {
    fn new(t: i64, forced: Forced) -> Self {
        Monotonicity {
            min_t: t,
            max_t: t,
            forced,
            samples: 1,
        }
    }

    fn merge(&mut self, t: i64, f: Forced) {
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        self.forced.min_bucket = self.forced.min_bucket.min(f.min_bucket);
        self.forced.max_bucket = self.forced.max_bucket.max(f.max_bucket);
        self.forced.max_diff = self.forced.max_diff.max(f.max_diff);
        self.samples += 1;
    }

    fn message(&self, name: &str) -> String {
        let mut msg = "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_owned();
        if !name.is_empty() {
            msg.push_str(&format!(" for metric name {name:?}"));
        }
        msg.push_str(&format!(
            ", from buckets {} to {}, with a max diff of {}, over {} samples from {} to {}",
            go_g(self.forced.min_bucket),
            go_g(self.forced.max_bucket),
            format_float(self.forced.max_diff, 'g', 2),
            self.samples,
            rfc3339_seconds(self.min_t),
            rfc3339_seconds(self.max_t),
        ));
        msg
    }
}

/// Sorts buckets by bound and merges equal bounds; false when there is no `+Inf` bucket.
fn sort_and_coalesce(b: &mut Vec<(f64, f64)>) -> bool {
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return false;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &(u, c) in b.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == u => last.1 += c,
            _ => merged.push((u, c)),
        }
    }
    *b = merged;
    true
}

/// Prometheus's `BucketFraction`: the share of observations between `lower` and `upper`,
/// interpolating linearly inside buckets.
fn bucket_fraction(lower: f64, upper: f64, b: &mut Vec<(f64, f64)>) -> f64 {
    if !sort_and_coalesce(b) {
        return f64::NAN;
    }
    let count = b[b.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if b[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for i in 0..b.len() {
        if i > 0 {
            lower_bound = b[i - 1].0;
        }
        let (upper_bound, c) = b[i];
        let interpolate = |v: f64, rank: f64| {
            if lower_bound == f64::NEG_INFINITY {
                c
            } else {
                rank + (c - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower, rank);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper, rank);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = c;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// A float as OpenMetrics writes label values (`FormatOpenMetricsFloat`): integers keep a
/// `.0`, infinities are `+Inf`/`-Inf`.
fn openmetrics_float(f: f64) -> String {
    let s = super::go_float(f);
    if f.is_finite() && !s.contains(['.', 'e', 'E']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// Parses a bucket bound as Go's `strconv.ParseFloat` (accepting `+Inf`, `Inf`, `NaN`, …).
fn parse_go_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        "" => None,
        _ => s.parse().ok(),
    }
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Prometheus's `BucketQuantile`; also says whether monotonicity had to be forced.
fn bucket_quantile(q: f64, b: &mut Vec<(f64, f64)>) -> (f64, Option<Forced>) {
    if q.is_nan() {
        return (f64::NAN, None);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, None);
    }
    if q > 1.0 {
        return (f64::INFINITY, None);
    }
    if !sort_and_coalesce(b) {
        return (f64::NAN, None);
    }
    // Monotonicity.
    let mut forced: Option<Forced> = None;
    let mut prev = b[0].1;
    for x in b.iter_mut().skip(1) {
        let curr = x.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            x.1 = prev;
            continue;
        }
        if curr < prev {
            x.1 = prev;
            let f = forced.get_or_insert(Forced {
                min_bucket: f64::INFINITY,
                max_bucket: f64::NEG_INFINITY,
                max_diff: 0.0,
            });
            f.min_bucket = f.min_bucket.min(x.0);
            f.max_bucket = f.max_bucket.max(x.0);
            f.max_diff = f.max_diff.max(prev - curr);
            continue;
        }
        prev = curr;
    }
    if b.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = b.len();
    let i = b[..n - 1].partition_point(|x| x.1 < rank);
    let v = if i == n - 1 {
        b[n - 2].0
    } else if i == 0 && b[0].0 <= 0.0 {
        b[0].0
    } else {
        let (mut start, end, mut count) = (0.0, b[i].0, b[i].1);
        if i > 0 {
            start = b[i - 1].0;
            count -= b[i - 1].1;
            rank -= b[i - 1].1;
        }
        start + (end - start) * (rank / count)
    };
    (v, forced)
}

/// For each native histogram series that classic buckets (`le` series with the same other
/// labels) stand beside, the times the buckets have values: there Prometheus evaluates
/// neither.
fn classic_beside_native(input: &[crate::eval::VSeries]) -> HashMap<Labels, BTreeSet<i64>> {
    let natives: std::collections::HashSet<&Labels> = input
        .iter()
        .filter(|s| !s.hists.is_empty())
        .map(|s| &s.labels)
        .collect();
    let mut out: HashMap<Labels, BTreeSet<i64>> = HashMap::new();
    if natives.is_empty() {
        return out;
    }
    for s in input.iter().filter(|s| !s.points.is_empty()) {
        if s.labels.get("le").and_then(parse_go_float).is_none() {
            continue;
        }
        let key = without_le(&s.labels);
        if natives.contains(&key) {
            out.entry(key)
                .or_default()
                .extend(s.points.iter().map(|p| p.t));
        }
    }
    out
}

/// A bucket series' labels without `le`: its classic histogram's.
fn without_le(labels: &Labels) -> Labels {
    build_labels(
        labels
            .iter()
            .filter(|l| l.name != "le")
            .map(|l| (l.name, l.value)),
    )
}

/// ` for metric name "x"` ending an annotation, or nothing without a name (Prometheus's
/// `maybeAddMetricName`).
fn for_metric(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" for metric name {name:?}")
    }
}

/// `labels` with `label` set to the quantile `q` (`histogram_quantiles`' output labels).
fn quantile_labels_of(labels: &Labels, label: &str, q: f64) -> Labels {
    let text = openmetrics_float(q);
    build_labels(
        labels
            .iter()
            .filter(|l| l.name != label)
            .map(|l| (l.name, l.value))
            .chain(std::iter::once((label, text.as_str()))),
    )
}

/// `histogram_quantile`, `histogram_quantiles` and `histogram_fraction` of the native
/// histogram points of `input` (float points are left to the classic path).
fn native_quantiles(
    ev: &Ev<'_>,
    want: &Want,
    input: &[crate::eval::VSeries],
    at: &Expr,
    mixed: &HashMap<Labels, BTreeSet<i64>>,
    out: &mut Collector,
) -> Result<()> {
    let mut infos: Vec<String> = Vec::new();
    let mut note = |msg: String| {
        if !infos.contains(&msg) {
            infos.push(msg);
        }
    };
    for s in input.iter().filter(|s| !s.hists.is_empty()) {
        let metric = s.labels.metric_name().unwrap_or_default();
        let mut label_cache: HashMap<u64, Labels> = HashMap::new();
        let classic = mixed.get(&s.labels);
        for p in &s.hists {
            if classic.is_some_and(|ts| ts.contains(&p.t)) {
                ev.ctx.warn_at(
                    format!(
                        "PromQL warning: vector contains a mix of classic and native histograms{}",
                        for_metric(metric)
                    ),
                    at,
                );
                continue;
            }
            let step = ev.grid.index(p.t);
            match want {
                Want::Quantiles(qs, label) => {
                    for q in qs {
                        let q = q[step];
                        let (v, info) = native_quantile(q, &p.h);
                        if let Some(info) = info {
                            note(format!(
                                "PromQL info: input to histogram_quantile has NaN observations, result is {info}{}",
                                for_metric(metric)
                            ));
                        }
                        let labels = match label {
                            None => s.labels.clone(),
                            Some(label) => label_cache
                                .entry(q.to_bits())
                                .or_insert_with(|| quantile_labels_of(&s.labels, label, q))
                                .clone(),
                        };
                        out.push(&labels, true, p.t, v)?;
                    }
                }
                Want::Fraction(lower, upper) => {
                    let (v, nans) = native_fraction(lower[step], upper[step], &p.h);
                    if nans {
                        note(format!(
                            "PromQL info: input to histogram_fraction has NaN observations, which are excluded from all fractions{}",
                            for_metric(metric)
                        ));
                    }
                    out.push(&s.labels, true, p.t, v)?;
                }
            }
        }
    }
    for msg in infos {
        ev.ctx.info_at(msg, at);
    }
    Ok(())
}

/// The φ-quantile of a native histogram, interpolated within its bucket (linearly for custom
/// buckets and the zero bucket, exponentially otherwise), and, when NaN observations made
/// the result NaN or skewed it, which (Prometheus's `HistogramQuantile`).
fn native_quantile(q: f64, h: &Histogram) -> (f64, Option<&'static str>) {
    if q < 0.0 {
        return (f64::NEG_INFINITY, None);
    }
    if q > 1.0 {
        return (f64::INFINITY, None);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, None);
    }
    let all = h.buckets();
    let forward = h.sum.is_nan() || q < 0.5;
    let order: Vec<&augur_storage::histogram::Bucket> = if forward {
        all.iter().collect()
    } else {
        all.iter().rev().collect()
    };
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut at = 0;
    let mut bucket = augur_storage::histogram::Bucket {
        lower: 0.0,
        upper: 0.0,
        lower_inclusive: false,
        upper_inclusive: false,
        count: 0.0,
    };
    // As Prometheus: `bucket` is the last bucket looked at, an empty one included.
    while at < order.len() {
        bucket = *order[at];
        at += 1;
        if bucket.count == 0.0 {
            continue;
        }
        count += bucket.count;
        if count >= rank {
            break;
        }
    }
    let custom = h.uses_custom_buckets();
    if !custom && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            bucket.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            bucket.upper = 0.0;
        }
    } else if custom {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return (bucket.upper, None);
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return (bucket.lower, None);
        }
    }
    count = count.min(h.count);
    if count < rank {
        if h.sum.is_nan() {
            return (f64::NAN, Some("NaN"));
        }
        return (bucket.upper, None);
    }
    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    let mut info = None;
    if h.sum.is_nan() {
        // Prometheus counts the rest of the buckets moving `bucket` along with them, so the
        // interpolation below happens in the last bucket; that is kept here.
        for b in &order[at..] {
            bucket = **b;
            count += b.count;
        }
        if count < h.count {
            info = Some("skewed higher");
        }
    }
    let fraction = rank / bucket.count;
    if custom || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return (
            bucket.lower + (bucket.upper - bucket.lower) * fraction,
            info,
        );
    }
    let (ll, lu) = (bucket.lower.abs().log2(), bucket.upper.abs().log2());
    if bucket.lower > 0.0 {
        return ((ll + (lu - ll) * fraction).exp2(), info);
    }
    (-(lu + (ll - lu) * (1.0 - fraction)).exp2(), info)
}

/// The fraction of a native histogram's observations between `lower` and `upper`, and
/// whether NaN observations were left out (Prometheus's `HistogramFraction`).
fn native_fraction(lower: f64, upper: f64, h: &Histogram) -> (f64, bool) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, false);
    }
    if lower >= upper {
        return (0.0, false);
    }
    let custom = h.uses_custom_buckets();
    let only_positive = h.negative_buckets.is_empty() && !h.positive_buckets.is_empty();
    let only_negative = h.positive_buckets.is_empty() && !h.negative_buckets.is_empty();
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut count = 0.0;
    let all = h.buckets();
    let mut at = 0;
    while at < all.len() {
        let mut b = all[at];
        at += 1;
        count += b.count;
        let mut zero = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero = true;
            if only_positive {
                b.lower = 0.0;
            } else if only_negative {
                b.upper = 0.0;
            }
        }
        let below = |v: f64| -> f64 {
            if custom || zero {
                if b.lower == f64::NEG_INFINITY {
                    return b.count;
                }
                return rank + b.count * (v - b.lower) / (b.upper - b.lower);
            }
            let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
            let f = if v > 0.0 {
                (lv - ll) / (lu - ll)
            } else {
                1.0 - (lv - lu) / (ll - lu)
            };
            rank + b.count * f
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = below(lower);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = below(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    let mut nans = false;
    if h.sum.is_nan() {
        count += all[at..].iter().map(|b| b.count).sum::<f64>();
        nans = count < h.count;
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / h.count, nans)
}

/// The variance of a native histogram's observations, each bucket's observations taken at
/// its middle (geometric for exponential buckets, arithmetic for custom ones, 0 in the zero
/// bucket).
fn variance(h: &Histogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut c) = (0.0, 0.0);
    for b in h.buckets() {
        if b.count == 0.0 {
            continue;
        }
        let v = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let g = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 {
                -g
            } else {
                g
            }
        };
        let d = v - mean;
        (var, c) = super::kahan_inc(b.count * d * d, var, c);
    }
    (var + c) / h.count
}

/// `f` of each native histogram point of `arg`'s series; float points are ignored (they do
/// not show up in the result), and the metric name is dropped.
fn native_values(ev: &Ev<'_>, arg: &Expr, f: fn(&Histogram) -> f64) -> Result<Val> {
    let series = match ev.eval(arg)? {
        Val::Vector(v) => v,
        other => {
            return Err(crate::error::exec_err!(
                "expected instant vector, got {}",
                other.type_name()
            ))
        }
    };
    let out = series
        .into_iter()
        .filter_map(|mut s| {
            s.points = s
                .hists
                .iter()
                .map(|p| augur_storage::Sample::new(p.t, f(&p.h)))
                .collect();
            s.hists.clear();
            s.drop_name = true;
            (!s.points.is_empty()).then_some(s)
        })
        .collect();
    Ok(Val::Vector(out))
}
