//! Aggregation operators (`sum`, `avg`, … `limit_ratio`) with `by`/`without`.
//!
//! Each input series is mapped to its group once; then every grid step folds the series
//! that have a point at that step into their group's accumulator. Float arithmetic follows
//! Prometheus (Kahan sums, overflow-safe means, Welford variance) so results agree to the bit
//! in all but pathological cases.

use std::collections::HashMap;
use std::sync::Arc;

use augur_storage::histogram::{Histogram, ResetHint};
use augur_storage::{Labels, Sample, METRIC_NAME};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::{build_labels, Ev, VSeries, Val};
use crate::error::{exec_err, Error, Result};
use crate::functions::{cmp_nan_last, kahan_inc, quantile, Collector};

/// Per-step iteration over the points of many series: `at(i, t)` is series `i`'s value at
/// grid time `t`, provided times are asked in increasing order.
pub(crate) struct Cursors<'s> {
    series: &'s [VSeries],
    pos: Vec<usize>,
    /// Positions in the histogram points, made on first use.
    hpos: Vec<usize>,
}

impl<'s> Cursors<'s> {
    pub fn new(series: &'s [VSeries]) -> Self {
        Cursors {
            series,
            pos: vec![0; series.len()],
            hpos: Vec::new(),
        }
    }

    /// Series `i`'s native histogram at grid time `t` (times asked in increasing order).
    pub fn at_h(&mut self, i: usize, t: i64) -> Option<&'s Arc<Histogram>> {
        if self.hpos.is_empty() {
            self.hpos = vec![0; self.series.len()];
        }
        let hs = &self.series[i].hists;
        let mut p = self.hpos[i];
        while p < hs.len() && hs[p].t < t {
            p += 1;
        }
        self.hpos[i] = p;
        (p < hs.len() && hs[p].t == t).then(|| &hs[p].h)
    }

    #[inline]
    pub fn at(&mut self, i: usize, t: i64) -> Option<f64> {
        let pts = &self.series[i].points;
        let mut p = self.pos[i];
        while p < pts.len() && pts[p].t < t {
            p += 1;
        }
        self.pos[i] = p;
        (p < pts.len() && pts[p].t == t).then(|| pts[p].v)
    }
}

/// The labels of the group a series belongs to.
pub(crate) fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    build_labels(
        labels
            .iter()
            .filter(|l| in_group(l, grouping, without))
            .map(|l| (l.name, l.value)),
    )
}

/// Whether a label is part of its series' group: named by `by`, or neither named by
/// `without` nor the metric name.
fn in_group(l: &augur_storage::Label<'_>, grouping: &[String], without: bool) -> bool {
    if without {
        l.name != METRIC_NAME && !grouping.iter().any(|g| g == l.name)
    } else {
        grouping.iter().any(|g| g == l.name)
    }
}

/// Assigns label sets to groups: an aggregation's `by`/`without` groups, or a binary
/// operation's match signatures (`on`/`ignoring`). Groups are numbered in order of first
/// sight; each is found by a hash of the set's grouping pairs and confirmed pair by pair, so
/// a group's `Labels` is built once, not once per series.
pub(crate) struct Grouper<'a> {
    grouping: &'a [String],
    without: bool,
    index: HashMap<u64, Vec<usize>>,
    /// Each group's labels (what [`group_labels`] gives for its members), by number.
    pub labels: Vec<Labels>,
}

impl<'a> Grouper<'a> {
    pub fn new(grouping: &'a [String], without: bool) -> Self {
        Grouper {
            grouping,
            without,
            index: HashMap::new(),
            labels: Vec::new(),
        }
    }

    fn keeps(&self, l: &augur_storage::Label<'_>) -> bool {
        in_group(l, self.grouping, self.without)
    }

    /// The group of `labels`, creating it if new.
    pub fn group(&mut self, labels: &Labels) -> usize {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for l in labels.iter().filter(|l| self.keeps(l)) {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        let hash = h.digest();
        if let Some(same) = self.index.get(&hash) {
            let found = same.iter().copied().find(|&g| {
                self.labels[g]
                    .iter()
                    .eq(labels.iter().filter(|l| self.keeps(l)))
            });
            if let Some(g) = found {
                return g;
            }
        }
        let g = self.labels.len();
        self.labels
            .push(group_labels(labels, self.grouping, self.without));
        self.index.entry(hash).or_default().push(g);
        g
    }
}

/// The folding aggregations, decided once per node (not per element).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Agg {
    Sum,
    Avg,
    Max,
    Min,
    Count,
    Group,
    Stddev,
    Stdvar,
    Quantile,
}

#[derive(Clone, Default)]
struct Acc {
    seen: bool,
    value: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    values: Vec<f64>,
}

pub(crate) fn eval(ev: &Ev<'_>, a: &AggregateExpr) -> Result<Val> {
    let op = a.op.to_string().to_lowercase();
    let (without, grouping): (bool, Vec<String>) = match &a.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };
    if op == "count_values" {
        let label = match a.param.as_deref().map(crate::functions::unwrap_parens) {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => return Err(exec_err!("count_values requires a string parameter")),
        };
        let Val::Vector(input) = ev.eval(&a.expr)? else {
            return Err(exec_err!("expected instant vector"));
        };
        return count_values(ev, input, &label, &grouping, without);
    }
    let param = match a.param.as_deref() {
        Some(p) => Some(ev.eval_scalar(p)?),
        None => None,
    };
    let input = match ev.eval(&a.expr)? {
        Val::Vector(v) => v,
        other => {
            return Err(exec_err!(
                "expected instant vector, got {}",
                other.type_name()
            ))
        }
    };
    let histograms = input.iter().any(|s| !s.hists.is_empty());
    let input = if !histograms {
        input
    } else {
        match op.as_str() {
            "sum" | "avg" => {
                return with_histograms(ev, op == "avg", input, &grouping, without, &a.expr)
            }
            // Counting reads no value: a histogram counts as any sample.
            "count" | "group" => input
                .into_iter()
                .map(|mut s| {
                    for h in std::mem::take(&mut s.hists) {
                        s.points.push(Sample::new(h.t, 0.0));
                    }
                    s.points.sort_by_key(|p| p.t);
                    s
                })
                .collect(),
            // Picking series reads no value either.
            "limitk" | "limit_ratio" => input,
            _ => {
                ev.ctx.info_at(
                    format!("PromQL info: ignored histogram in {op} aggregation"),
                    &*a.expr,
                );
                super::floats_only(input)
            }
        }
    };
    let (group_of, mut out) = output_groups(&input, &grouping, without);
    match op.as_str() {
        "topk" | "bottomk" | "limitk" | "limit_ratio" => {
            return select_k(
                ev,
                &op,
                a.param.as_deref(),
                &input,
                &group_of,
                out.len(),
                param.unwrap_or_default(),
            )
        }
        "quantile" => {
            let p = param.as_deref().unwrap_or_default();
            let at = a.param.as_deref();
            if p.iter().any(|q| q.is_nan()) {
                ev.ctx.warn_at(
                    "PromQL warning: quantile value should be between 0 and 1, got NaN".into(),
                    at,
                );
            }
            if let Some(q) = p.iter().copied().find(|q| *q < 0.0 || *q > 1.0) {
                ev.ctx.warn_at(
                    format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        crate::functions::go_float(q)
                    ),
                    at,
                );
            }
        }
        _ => {}
    }
    let agg = match op.as_str() {
        "sum" => Agg::Sum,
        "avg" => Agg::Avg,
        "max" => Agg::Max,
        "min" => Agg::Min,
        "count" => Agg::Count,
        "group" => Agg::Group,
        "stddev" => Agg::Stddev,
        "stdvar" => Agg::Stdvar,
        "quantile" => Agg::Quantile,
        other => return Err(exec_err!("unknown aggregation {other}")),
    };
    let mut accs = vec![Acc::default(); out.len()];
    let mut cur = Cursors::new(&input);
    let mut held = 0;
    for (step, t) in ev.grid.times().enumerate() {
        ev.ctx.check()?;
        for acc in accs.iter_mut() {
            acc.seen = false;
            acc.values.clear();
        }
        for (i, s) in input.iter().enumerate() {
            let Some(f) = cur.at(i, t) else { continue };
            let g = group_of[i];
            if s.drop_name {
                out[g].drop_name = true;
            }
            let acc = &mut accs[g];
            if !acc.seen {
                *acc = Acc {
                    seen: true,
                    value: f,
                    mean: f,
                    count: 1.0,
                    values: std::mem::take(&mut acc.values),
                    ..Acc::default()
                };
                match agg {
                    Agg::Stddev | Agg::Stdvar => {
                        acc.value = if f.is_nan() || f.is_infinite() {
                            f64::NAN
                        } else {
                            0.0
                        }
                    }
                    Agg::Quantile => acc.values.push(f),
                    _ => {}
                }
                continue;
            }
            match agg {
                Agg::Sum => (acc.value, acc.c) = kahan_inc(f, acc.value, acc.c),
                Agg::Avg => {
                    acc.count += 1.0;
                    if !acc.incremental {
                        let (nv, nc) = kahan_inc(f, acc.value, acc.c);
                        if nv.is_finite() || nv.is_nan() {
                            (acc.value, acc.c) = (nv, nc);
                            continue;
                        }
                        acc.incremental = true;
                        acc.mean = acc.value / (acc.count - 1.0);
                        acc.c /= acc.count - 1.0;
                    }
                    let q = (acc.count - 1.0) / acc.count;
                    (acc.mean, acc.c) = kahan_inc(f / acc.count, q * acc.mean, q * acc.c);
                }
                Agg::Max => {
                    if acc.value < f || acc.value.is_nan() {
                        acc.value = f
                    }
                }
                Agg::Min => {
                    if acc.value > f || acc.value.is_nan() {
                        acc.value = f
                    }
                }
                Agg::Count => acc.count += 1.0,
                Agg::Group => {}
                Agg::Stddev | Agg::Stdvar => {
                    acc.count += 1.0;
                    let delta = f - acc.mean;
                    acc.mean += delta / acc.count;
                    acc.value += delta * (f - acc.mean);
                }
                Agg::Quantile => acc.values.push(f),
            }
        }
        for (g, acc) in accs.iter_mut().enumerate() {
            if !acc.seen {
                continue;
            }
            let v = match agg {
                Agg::Sum => acc.value + acc.c,
                Agg::Avg if acc.incremental => acc.mean + acc.c,
                Agg::Avg => acc.value / acc.count + acc.c / acc.count,
                Agg::Count => acc.count,
                Agg::Group => 1.0,
                Agg::Stdvar => acc.value / acc.count,
                Agg::Stddev => (acc.value / acc.count).sqrt(),
                Agg::Quantile => quantile(
                    param.as_ref().map_or(f64::NAN, |p| p[step]),
                    &mut acc.values,
                ),
                Agg::Max | Agg::Min => acc.value,
            };
            out[g].points.push(Sample::new(t, v));
            held += 1;
        }
    }
    ev.ctx.hold(held)?;
    out.retain(|s| !s.points.is_empty());
    Ok(Val::Vector(out))
}

/// Each input series' group, and an empty output series per group (its labels), in order of
/// first sight.
fn output_groups(
    input: &[VSeries],
    grouping: &[String],
    without: bool,
) -> (Vec<usize>, Vec<VSeries>) {
    let mut groups = Grouper::new(grouping, without);
    let mut group_of = Vec::with_capacity(input.len());
    let mut out: Vec<VSeries> = Vec::new();
    for s in input {
        let g = groups.group(&s.labels);
        if g == out.len() {
            out.push(VSeries::new(groups.labels[g].clone(), Vec::new()));
        }
        group_of.push(g);
    }
    (group_of, out)
}

/// `sum` or `avg` of an input holding native histograms: per group and step, the sum or mean
/// of its floats or of its histograms; a group with both, or with exponential and
/// custom-bucket histograms, gives nothing at that step and a warning.
fn with_histograms(
    ev: &Ev<'_>,
    avg: bool,
    input: Vec<VSeries>,
    grouping: &[String],
    without: bool,
    at: &Expr,
) -> Result<Val> {
    #[derive(Default)]
    struct G {
        seen: bool,
        floats: bool,
        bad: bool,
        sum: f64,
        c: f64,
        count: f64,
        h: Option<crate::hist::Aggregate>,
        reset: bool,
        no_reset: bool,
        /// The float mean, once a sum overflowed (as in [`Agg::Avg`]).
        mean: Option<f64>,
    }
    let (group_of, mut out) = output_groups(&input, grouping, without);
    let mut acc: Vec<G> = (0..out.len()).map(|_| G::default()).collect();
    let mut cur = Cursors::new(&input);
    let mut held = 0;
    for t in ev.grid.times() {
        ev.ctx.check()?;
        acc.iter_mut().for_each(|g| *g = G::default());
        for (i, s) in input.iter().enumerate() {
            let f = cur.at(i, t);
            let h = cur.at_h(i, t);
            if f.is_none() && h.is_none() {
                continue;
            }
            let g = &mut acc[group_of[i]];
            if s.drop_name {
                out[group_of[i]].drop_name = true;
            }
            g.seen = true;
            g.count += 1.0;
            if let Some(f) = f {
                g.floats = true;
                if let Some(mean) = g.mean.as_mut() {
                    let q = (g.count - 1.0) / g.count;
                    (*mean, g.c) = kahan_inc(f / g.count, q * *mean, q * g.c);
                    continue;
                }
                let (sum, c) = kahan_inc(f, g.sum, g.c);
                if avg && sum.is_infinite() && g.count > 1.0 {
                    // Overflow: go on with an incremental mean.
                    let n = g.count - 1.0;
                    let (mean, c) = (g.sum / n, g.c / n);
                    let q = n / g.count;
                    let (mean, c) = kahan_inc(f / g.count, q * mean, q * c);
                    (g.mean, g.c) = (Some(mean), c);
                    continue;
                }
                (g.sum, g.c) = (sum, c);
                continue;
            }
            let h = h.expect("a histogram");
            match h.reset_hint {
                ResetHint::Yes => g.reset = true,
                ResetHint::No => g.no_reset = true,
                _ => {}
            }
            if g.bad {
                continue;
            }
            g.h = match g.h.take() {
                None => Some(crate::hist::Aggregate::new(h, avg)),
                Some(mut agg) => match agg.add(h) {
                    Some((_, reconciled)) => {
                        if reconciled {
                            ev.ctx.info_at(
                                "PromQL info: mismatched custom buckets were reconciled during aggregation"
                                    .into(),
                                at,
                            );
                        }
                        Some(agg)
                    }
                    None => {
                        ev.ctx.warn_at(
                            format!(
                                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {:?}",
                                s.labels.metric_name().unwrap_or_default()
                            ),
                            at,
                        );
                        g.bad = true;
                        None
                    }
                },
            };
        }
        for (gi, g) in acc.iter_mut().enumerate() {
            if !g.seen {
                continue;
            }
            if g.floats && (g.h.is_some() || g.bad) {
                ev.ctx.warn_at(
                    "PromQL warning: encountered a mix of histograms and floats for aggregation"
                        .into(),
                    at,
                );
                continue;
            }
            if g.bad {
                continue;
            }
            if g.reset && g.no_reset {
                ev.ctx.warn_at(
                    "PromQL warning: conflicting counter resets during histogram aggregation"
                        .into(),
                    at,
                );
            }
            held += 1;
            match g.h.take() {
                Some(agg) => {
                    let mut h = agg.finish();
                    crate::hist::compact(&mut h);
                    out[gi].hists.push(super::HPoint { t, h: Arc::new(h) });
                }
                None => {
                    let v = match g.mean {
                        Some(mean) => mean + g.c,
                        None if avg => g.sum / g.count + g.c / g.count,
                        None => g.sum + g.c,
                    };
                    out[gi].points.push(Sample::new(t, v));
                }
            }
        }
    }
    ev.ctx.hold(held)?;
    out.retain(|s| !s.is_empty());
    Ok(Val::Vector(out))
}

/// `topk`, `bottomk`, `limitk`, `limit_ratio`: series of the input, not new ones.
fn select_k(
    ev: &Ev<'_>,
    op: &str,
    param_expr: Option<&Expr>,
    input: &[VSeries],
    group_of: &[usize],
    ngroups: usize,
    param: Vec<f64>,
) -> Result<Val> {
    let mut out = Collector::new();
    if op == "limit_ratio" {
        if param.iter().any(|r| r.is_nan()) {
            return Err(exec_err!("Ratio value is NaN"));
        }
        if param.iter().all(|r| *r == 0.0) {
            return Ok(Val::Vector(Vec::new()));
        }
        let max = param.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = param.iter().copied().fold(f64::INFINITY, f64::min);
        if max > 1.0 {
            ev.ctx.warn_at(
                format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1",
                    crate::functions::go_float(max)
                ),
                param_expr,
            );
        }
        if min < -1.0 {
            ev.ctx.warn_at(
                format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1",
                    crate::functions::go_float(min)
                ),
                param_expr,
            );
        }
    } else {
        if param.iter().any(|k| k.is_nan()) {
            return Err(exec_err!("Parameter value is NaN"));
        }
        if param.iter().copied().fold(f64::NEG_INFINITY, f64::max) < 1.0 {
            return Ok(Val::Vector(Vec::new()));
        }
        if let Some(k) = param.iter().find(|k| **k <= i64::MIN as f64) {
            return Err(exec_err!(
                "Scalar value {} underflows int64",
                crate::functions::go_float(*k)
            ));
        }
        if let Some(k) = param.iter().find(|k| **k >= i64::MAX as f64) {
            return Err(exec_err!(
                "Scalar value {} overflows int64",
                crate::functions::go_float(*k)
            ));
        }
    }
    let offsets: Vec<f64> = if op == "limit_ratio" {
        input.iter().map(|s| ratio_offset(&s.labels)).collect()
    } else {
        Vec::new()
    };
    let mut cur = Cursors::new(input);
    let mut members: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ngroups];
    for (step, t) in ev.grid.times().enumerate() {
        ev.ctx.check()?;
        let p = param[step];
        members.iter_mut().for_each(Vec::clear);
        let mut order = Vec::new();
        for (i, _) in input.iter().enumerate() {
            // A histogram (`limitk`/`limit_ratio` keep them) takes part with no value.
            let v = match cur.at(i, t) {
                Some(v) => v,
                None if cur.at_h(i, t).is_some() => f64::NAN,
                None => continue,
            };
            let g = group_of[i];
            if members[g].is_empty() {
                order.push(g);
            }
            members[g].push((i, v));
        }
        let k = if op == "limit_ratio" {
            0
        } else {
            (p as i64).min(input.len() as i64)
        };
        if op != "limit_ratio" && k < 1 {
            continue;
        }
        for g in order {
            let m = &mut members[g];
            let chosen: Vec<(usize, f64)> = match op {
                "topk" => {
                    // Descending, NaN last; the earliest of equal values wins.
                    m.sort_by(|a, b| cmp_nan_last(a.1, b.1, true));
                    m.iter().take(k as usize).copied().collect()
                }
                "bottomk" => {
                    m.sort_by(|a, b| cmp_nan_last(a.1, b.1, false));
                    m.iter().take(k as usize).copied().collect()
                }
                "limitk" => m.iter().take(k as usize).copied().collect(),
                _ => {
                    let r = p.clamp(-1.0, 1.0);
                    m.iter()
                        .filter(|(i, _)| {
                            let o = offsets[*i];
                            (r >= 0.0 && o < r) || (r < 0.0 && o >= 1.0 + r)
                        })
                        .copied()
                        .collect()
                }
            };
            for (i, v) in chosen {
                match (cur.at(i, t), cur.at_h(i, t)) {
                    (None, Some(h)) => {
                        let k = out.slot(&input[i].labels, input[i].drop_name);
                        out.push_h_at(k, t, Arc::clone(h))?;
                    }
                    _ => out.push(&input[i].labels, input[i].drop_name, t, v)?,
                }
            }
        }
    }
    Ok(Val::Vector(out.finish(ev)?))
}

/// Where a series falls in `[0, 1)` for `limit_ratio`: its Prometheus label hash (xxhash64
/// of `name 0xff value 0xff …`) over the largest u64, so the same series are picked as in
/// Prometheus.
fn ratio_offset(labels: &Labels) -> f64 {
    let mut b = Vec::with_capacity(labels.as_bytes().len() + 2 * labels.len());
    for l in labels.iter() {
        b.extend_from_slice(l.name.as_bytes());
        b.push(0xff);
        b.extend_from_slice(l.value.as_bytes());
        b.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&b, 0) as f64 / u64::MAX as f64
}

fn count_values(
    ev: &Ev<'_>,
    input: Vec<VSeries>,
    label: &str,
    grouping: &[String],
    without: bool,
) -> Result<Val> {
    if !ev.ctx.label_name_ok(label) {
        return Err(Error::Execution(format!("invalid label name {label:?}")));
    }
    let mut grouping = grouping.to_vec();
    if !without {
        grouping.push(label.to_owned());
    }
    let mut out = Collector::new();
    let mut cur = Cursors::new(&input);
    for t in ev.grid.times() {
        ev.ctx.check()?;
        let mut counts: Vec<(Labels, f64)> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for (i, s) in input.iter().enumerate() {
            // A histogram counts under its text, as Prometheus writes it.
            let text = match (cur.at(i, t), cur.at_h(i, t)) {
                (Some(v), _) => crate::functions::go_float(v),
                (None, Some(h)) => crate::hist::go_string(h),
                (None, None) => continue,
            };
            let with_value = build_labels(
                s.labels
                    .iter()
                    .filter(|l| l.name != label)
                    .map(|l| (l.name, l.value))
                    .chain(std::iter::once((label, text.as_str()))),
            );
            let key = group_labels(&with_value, &grouping, without);
            match index.get(&key) {
                Some(&j) => counts[j].1 += 1.0,
                None => {
                    index.insert(key.clone(), counts.len());
                    counts.push((key, 1.0));
                }
            }
        }
        for (l, c) in counts {
            out.push(&l, false, t, c)?;
        }
    }
    Ok(Val::Vector(out.finish(ev)?))
}
