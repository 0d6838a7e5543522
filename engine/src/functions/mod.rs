//! PromQL functions, split by family: [`range`] (functions of a range vector: `rate`,
//! `*_over_time`, …), [`instant`] (per-element math, time and date functions, `sort*`,
//! `scalar`, `vector`, `absent`, `timestamp`), [`labels`] (`label_replace`, `label_join`,
//! `sort_by_label*`) and [`histogram`] (`histogram_quantile` and the other `histogram_*`
//! functions, classic and native); [`range_hist`] holds the range functions' semantics over
//! native histogram samples.
//!
//! This module dispatches a call to its family and holds the numeric helpers the families
//! and the aggregations share (Kahan summation, quantiles, Go-style float formatting).

pub(crate) mod anomaly;
pub(crate) mod anomaly_score;
pub(crate) mod histogram;
pub(crate) mod info;
pub(crate) mod instant;
pub(crate) mod labels;
pub(crate) mod range;
pub(crate) mod range_hist;

use std::collections::HashMap;

use augur_storage::{Labels, Sample};
use promql_parser::parser::{Call, Expr};

use crate::error::{exec_err, Result};
use crate::eval::{Ev, VSeries, Val};

/// Registers Augur's own functions with promql-parser (once per process).
pub(crate) fn register_extensions() {
    anomaly::register();
}

/// Evaluates a function call.
pub(crate) fn call(ev: &Ev<'_>, c: &Call) -> Result<Val> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    if name.starts_with("sort") && ev.grid.len() > 1 {
        // Range results are ordered by labels anyway.
        ev.ctx.warn_at(
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".into(),
            c,
        );
    }
    // seasonal_baseline reads storage itself (a slice per season), not a whole window.
    if name == "seasonal_baseline" {
        return anomaly::seasonal_baseline(ev, &args);
    }
    if let Some(val) = range::call(ev, name, &args)? {
        return Ok(val);
    }
    if let Some(val) = labels::call(ev, name, &args)? {
        return Ok(val);
    }
    if let Some(val) = histogram::call(ev, name, &args)? {
        return Ok(val);
    }
    if name == "info" {
        return info::info(ev, &args);
    }
    if let Some(val) = instant::call(ev, name, &args)? {
        return Ok(val);
    }
    Err(exec_err!("function {name:?} is not supported by Augur"))
}

/// Collects output points into series keyed by labels, keeping first-seen order. Two points
/// for the same labels at the same time are Prometheus's duplicate-labelset error.
pub(crate) struct Collector {
    index: HashMap<Labels, usize>,
    series: Vec<VSeries>,
}

impl Collector {
    pub fn new() -> Collector {
        Collector {
            index: HashMap::new(),
            series: Vec::new(),
        }
    }

    pub fn push(&mut self, labels: &Labels, drop_name: bool, t: i64, v: f64) -> Result<()> {
        let i = self.slot(labels, drop_name);
        self.push_at(i, t, v)
    }

    /// The output series for `labels`, created on first use. Callers that emit the same
    /// labels at many steps keep the slot and use [`Collector::push_at`], saving a hash.
    pub fn slot(&mut self, labels: &Labels, drop_name: bool) -> usize {
        match self.index.get(labels) {
            Some(&i) => i,
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(VSeries {
                    hists: Vec::new(),
                    labels: labels.clone(),
                    points: Vec::new(),
                    drop_name,
                });
                self.series.len() - 1
            }
        }
    }

    /// Adds a point to the output series `i` (from [`Collector::slot`]).
    pub fn push_at(&mut self, i: usize, t: i64, v: f64) -> Result<()> {
        let s = &mut self.series[i];
        if s.points.last().is_some_and(|p| p.t == t) || s.hists.last().is_some_and(|p| p.t == t) {
            return Err(exec_err!(
                "vector cannot contain metrics with the same labelset"
            ));
        }
        s.points.push(Sample::new(t, v));
        Ok(())
    }

    /// Adds a native histogram point to the output series `i`.
    pub fn push_h_at(
        &mut self,
        i: usize,
        t: i64,
        h: std::sync::Arc<augur_storage::histogram::Histogram>,
    ) -> Result<()> {
        let s = &mut self.series[i];
        if s.hists.last().is_some_and(|p| p.t == t) || s.points.last().is_some_and(|p| p.t == t) {
            return Err(exec_err!(
                "vector cannot contain metrics with the same labelset"
            ));
        }
        s.hists.push(crate::eval::HPoint { t, h });
        Ok(())
    }

    pub fn finish(mut self, ev: &Ev<'_>) -> Result<Vec<VSeries>> {
        self.series.retain(|s| !s.is_empty());
        ev.ctx.hold(
            self.series
                .iter()
                .map(|s| s.points.len() + s.hists.len())
                .sum(),
        )?;
        Ok(self.series)
    }
}

/// Kahan–Neumaier summation step, as Prometheus's `kahanSumInc`.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The φ-quantile of `values` (sorted in place, NaN first), Prometheus's `quantile`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Orders values ascending (or descending), NaN last either way, as Prometheus's `sort`,
/// `sort_desc`, `topk` and `bottomk` do.
pub(crate) fn cmp_nan_last(a: f64, b: f64, desc: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if desc => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` prints it (`+Inf`, `-Inf`, `NaN`).
pub(crate) fn go_float(f: f64) -> String {
    crate::GoFloat(f).to_string()
}

/// The string value of a string-literal argument.
pub(crate) fn string_arg(e: &Expr) -> Result<String> {
    match e {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        Expr::Paren(p) => string_arg(&p.expr),
        _ => Err(exec_err!("expected a string literal argument")),
    }
}

/// `e` with any parentheses around it removed.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}
