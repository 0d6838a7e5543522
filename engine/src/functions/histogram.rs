//! `histogram_quantile` over classic histograms (`_bucket` series with an `le` label).
//! Native histograms are not stored by Augur yet, so the other `histogram_*` functions see
//! no histogram samples and return nothing.

use std::collections::HashMap;

use augur_storage::{Labels, Sample};
use promql_parser::parser::Expr;

use super::instant::go_g;
use crate::error::Result;
use crate::eval::aggregate::Cursors;
use crate::eval::{build_labels, Ev, VSeries, Val};

pub(crate) fn histogram_quantile(ev: &Ev<'_>, args: &[&Expr]) -> Result<Val> {
    let q = ev.eval_scalar(args[0])?;
    let input = ev.eval_vector(args[1])?;
    // Group the bucket series by their labels without `le`, once.
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<VSeries> = Vec::new();
    let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for s in &input {
        let le = s.labels.get("le").unwrap_or("");
        let Some(bound) = parse_go_float(le) else {
            let name = s.labels.metric_name().unwrap_or("");
            ev.ctx.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"
            ));
            member.push(None);
            continue;
        };
        let key = build_labels(
            s.labels
                .iter()
                .filter(|l| l.name != "le")
                .map(|l| (l.name, l.value)),
        );
        let next = out.len();
        let g = *groups.entry(key.clone()).or_insert(next);
        if g == next {
            out.push(VSeries {
                labels: key,
                points: Vec::new(),
                drop_name: true,
            });
        }
        member.push(Some((g, bound)));
    }
    let mut cur = Cursors::new(&input);
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); out.len()];
    let mut warned_q = false;
    for (step, t) in ev.grid.times().enumerate() {
        ev.ctx.check()?;
        buckets.iter_mut().for_each(Vec::clear);
        for (i, m) in member.iter().enumerate() {
            let Some((g, bound)) = *m else { continue };
            if let Some(v) = cur.at(i, t) {
                buckets[g].push((bound, v));
            }
        }
        let q = q[step];
        if !warned_q
            && (q.is_nan() || !(0.0..=1.0).contains(&q))
            && buckets.iter().any(|b| !b.is_empty())
        {
            warned_q = true;
            ev.ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                go_g(q)
            ));
        }
        for (g, b) in buckets.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let (v, forced) = bucket_quantile(q, b);
            if forced {
                ev.ctx.info(format!(
                    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                    out[g].labels.metric_name().unwrap_or("")
                ));
            }
            out[g].points.push(Sample::new(t, v));
        }
    }
    out.retain(|s| !s.points.is_empty());
    ev.ctx.hold(out.iter().map(|s| s.points.len()).sum())?;
    Ok(Val::Vector(out))
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
fn bucket_quantile(q: f64, b: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Coalesce equal bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &(u, c) in b.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == u => last.1 += c,
            _ => merged.push((u, c)),
        }
    }
    *b = merged;
    // Monotonicity.
    let mut forced = false;
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
            forced = true;
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
