//! Binary operators: arithmetic, comparisons (with and without `bool`), `atan2`, and the
//! set operators, between scalars and vectors, with `on`/`ignoring`,
//! `group_left`/`group_right` and `fill*` vector matching.
//!
//! Match signatures are computed once per series; each grid step then pairs the series that
//! have a point at that step, raising Prometheus's errors for ambiguous matches.

use std::collections::HashMap;

use augur_storage::Labels;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::aggregate::{Cursors, Grouper};
use super::{Ev, VSeries, Val};
use crate::error::{exec_err, Result};
use crate::functions::Collector;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Result<Op> {
        Ok(match s.to_lowercase().as_str() {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => return Err(exec_err!("operator {other:?} is not supported")),
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Arithmetic changes what the value means, so the metric name goes.
    fn changes_schema(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::Pow | Op::Atan2
        )
    }

    /// The value and whether a comparison keeps the element.
    #[inline]
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Op::Add => (l + r, true),
            Op::Sub => (l - r, true),
            Op::Mul => (l * r, true),
            Op::Div => (l / r, true),
            Op::Mod => (go_mod(l, r), true),
            Op::Pow => (go_pow(l, r), true),
            Op::Atan2 => (l.atan2(r), true),
            Op::Eq => (l, l == r),
            Op::Ne => (l, l != r),
            Op::Gt => (l, l > r),
            Op::Lt => (l, l < r),
            Op::Ge => (l, l >= r),
            Op::Le => (l, l <= r),
            Op::And | Op::Or | Op::Unless => (l, true),
        }
    }
}

/// Go's `math.Mod`: the sign of the dividend, NaN for a zero divisor or infinite dividend.
pub(crate) fn go_mod(x: f64, y: f64) -> f64 {
    if y == 0.0 || x.is_infinite() || x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    x % y
}

/// Go's `math.Pow` where it differs from `powf`: `Pow(-1, ±Inf)` is 1, and `Pow(1, NaN)` 1.
pub(crate) fn go_pow(x: f64, y: f64) -> f64 {
    if x == -1.0 && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

pub(crate) fn eval(ev: &Ev<'_>, b: &BinaryExpr) -> Result<Val> {
    let op = Op::parse(&b.op.to_string())?;
    let ret_bool = b.return_bool();
    // Operators read float points only (for now): histogram points are dropped.
    let floats = |v: Val| match v {
        Val::Vector(s) => Val::Vector(super::floats_only(s)),
        other => other,
    };
    let lhs = floats(ev.eval(&b.lhs)?);
    let rhs = floats(ev.eval(&b.rhs)?);
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.into_iter()
                .zip(r)
                .map(|(l, r)| {
                    let (v, keep) = op.apply(l, r);
                    if op.is_comparison() {
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Val::Vector(l), Val::Scalar(r)) => {
            Ok(Val::Vector(vector_scalar(ev, op, l, &r, false, ret_bool)))
        }
        (Val::Scalar(l), Val::Vector(r)) => {
            Ok(Val::Vector(vector_scalar(ev, op, r, &l, true, ret_bool)))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let matching = Matching::of(b);
            if matches!(op, Op::And | Op::Or | Op::Unless) {
                set_op(ev, op, l, r, &matching).map(Val::Vector)
            } else {
                vector_vector(ev, op, l, r, &matching, ret_bool).map(Val::Vector)
            }
        }
        (l, r) => Err(exec_err!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        )),
    }
}

fn vector_scalar(
    ev: &Ev<'_>,
    op: Op,
    mut series: Vec<VSeries>,
    scalar: &[f64],
    swap: bool,
    ret_bool: bool,
) -> Vec<VSeries> {
    for s in &mut series {
        s.points.retain_mut(|p| {
            let sv = scalar[ev.grid.index(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut v, keep) = op.apply(l, r);
            if op.is_comparison() && swap {
                v = r;
            }
            if ret_bool {
                p.v = if keep { 1.0 } else { 0.0 };
                return true;
            }
            p.v = v;
            keep
        });
        if op.changes_schema() || ret_bool {
            s.drop_name = true;
        }
    }
    series.retain(|s| !s.points.is_empty());
    series
}

/// The vector-matching modifiers of one binary expression.
struct Matching {
    card: VectorMatchCardinality,
    /// `on(...)` when true, `ignoring(...)` (or nothing) when false.
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
    fill_lhs: Option<f64>,
    fill_rhs: Option<f64>,
}

impl Matching {
    fn of(b: &BinaryExpr) -> Matching {
        let Some(m) = &b.modifier else {
            return Matching {
                card: VectorMatchCardinality::OneToOne,
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
                fill_lhs: None,
                fill_rhs: None,
            };
        };
        let (on, labels) = match &m.matching {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        let include = m
            .card
            .labels()
            .map(|l| l.labels.clone())
            .unwrap_or_default();
        Matching {
            card: m.card.clone(),
            on,
            labels,
            include,
            fill_lhs: m.fill_values.lhs,
            fill_rhs: m.fill_values.rhs,
        }
    }

    /// Groups series by the labels two series must share to match: the `on` labels, or all
    /// but the `ignoring` ones and the name. This is exactly an aggregation's group for
    /// `by`/`without` (Prometheus's `MatchLabels`).
    fn grouper(&self) -> Grouper<'_> {
        Grouper::new(&self.labels, !self.on)
    }

    /// The labels of a result element: Prometheus's `resultMetric`.
    fn result_labels(&self, l: &Labels, r: &Labels, op: Op) -> Labels {
        let one_to_one = matches!(self.card, VectorMatchCardinality::OneToOne);
        let mut pairs: Vec<(&str, &str)> = l
            .iter()
            .filter(|p| !(op.changes_schema() && super::is_metadata_label(p.name)))
            .filter(|p| {
                !one_to_one
                    || if self.on {
                        self.labels.iter().any(|n| n == p.name)
                    } else {
                        !self.labels.iter().any(|n| n == p.name)
                    }
            })
            .map(|p| (p.name, p.value))
            .collect();
        for name in &self.include {
            pairs.retain(|(n, _)| n != name);
            if let Some(v) = r.get(name) {
                pairs.push((name.as_str(), v));
            }
        }
        Labels::new(pairs).unwrap_or_default()
    }
}

fn signatures(series: &[VSeries], groups: &mut Grouper<'_>) -> Vec<usize> {
    series.iter().map(|s| groups.group(&s.labels)).collect()
}

fn set_op(
    ev: &Ev<'_>,
    op: Op,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    m: &Matching,
) -> Result<Vec<VSeries>> {
    let mut groups = m.grouper();
    let lsig = signatures(&lhs, &mut groups);
    let rsig = signatures(&rhs, &mut groups);
    let mut present = vec![false; groups.labels.len()];
    let mut lc = Cursors::new(&lhs);
    let mut rc = Cursors::new(&rhs);
    let mut out = Collector::new();
    // Output slot per input series, found once.
    let mut lslot = vec![usize::MAX; lhs.len()];
    let mut rslot = vec![usize::MAX; rhs.len()];
    let slot = |slots: &mut [usize], i: usize, s: &VSeries, out: &mut Collector| {
        if slots[i] == usize::MAX {
            slots[i] = out.slot(&s.labels, s.drop_name);
        }
        slots[i]
    };
    for t in ev.grid.times() {
        ev.ctx.check()?;
        present.iter_mut().for_each(|p| *p = false);
        match op {
            Op::And | Op::Unless => {
                for (i, &sig) in rsig.iter().enumerate() {
                    if rc.at(i, t).is_some() {
                        present[sig] = true;
                    }
                }
                for (i, s) in lhs.iter().enumerate() {
                    let Some(v) = lc.at(i, t) else { continue };
                    if present[lsig[i]] == (op == Op::And) {
                        let k = slot(&mut lslot, i, s, &mut out);
                        out.push_at(k, t, v)?;
                    }
                }
            }
            _ => {
                for (i, s) in lhs.iter().enumerate() {
                    let Some(v) = lc.at(i, t) else { continue };
                    present[lsig[i]] = true;
                    let k = slot(&mut lslot, i, s, &mut out);
                    out.push_at(k, t, v)?;
                }
                for (i, s) in rhs.iter().enumerate() {
                    let Some(v) = rc.at(i, t) else { continue };
                    if !present[rsig[i]] {
                        let k = slot(&mut rslot, i, s, &mut out);
                        out.push_at(k, t, v)?;
                    }
                }
            }
        }
    }
    out.finish(ev)
}

fn vector_vector(
    ev: &Ev<'_>,
    op: Op,
    lhs: Vec<VSeries>,
    rhs: Vec<VSeries>,
    m: &Matching,
    ret_bool: bool,
) -> Result<Vec<VSeries>> {
    // One-to-many is many-to-one with the sides swapped.
    let swapped = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    // Prometheus keeps `fill_left`/`fill_right` tied to the sides after the swap.
    let (fill_many, fill_one) = (m.fill_lhs, m.fill_rhs);
    let mut groups = m.grouper();
    let msig = signatures(&many, &mut groups);
    let osig = signatures(&one, &mut groups);
    // The labels of each signature: the stand-in labels of fill values, and the match
    // group named in errors.
    let sig_labels: Vec<Labels> = groups.labels;
    let mut mc = Cursors::new(&many);
    let mut oc = Cursors::new(&one);
    let mut out = Collector::new();
    let mut one_at: Vec<Option<(usize, f64)>> = vec![None; sig_labels.len()];
    let mut st = PairState {
        result_cache: HashMap::new(),
        last_pair: vec![None; many.len()],
        matched: vec![false; sig_labels.len()],
        inserted: vec![Vec::new(); sig_labels.len()],
    };
    const FILL: usize = usize::MAX;
    for t in ev.grid.times() {
        ev.ctx.check()?;
        one_at.iter_mut().for_each(|x| *x = None);
        st.matched.iter_mut().for_each(|x| *x = false);
        st.inserted.iter_mut().for_each(Vec::clear);
        for (j, s) in one.iter().enumerate() {
            let Some(v) = oc.at(j, t) else { continue };
            let sig = osig[j];
            if let Some((prev, _)) = one_at[sig] {
                let side = if swapped { "left" } else { "right" };
                let (mut a, mut b) = (
                    super::labels_string(&s.labels),
                    super::labels_string(&one[prev].labels),
                );
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                return Err(exec_err!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{a}, {b}];many-to-many matching not allowed: matching labels must be unique on one side",
                    sig_labels[sig]
                ));
            }
            one_at[sig] = Some((j, v));
        }
        let emit = |i: usize,
                    lv: f64,
                    j: usize,
                    rv: f64,
                    sig: usize,
                    st: &mut PairState,
                    out: &mut Collector|
         -> Result<()> {
            let (l, r) = if swapped { (rv, lv) } else { (lv, rv) };
            let (mut v, keep) = op.apply(l, r);
            if ret_bool {
                v = if keep { 1.0 } else { 0.0 };
            }
            let many_labels = if i == FILL {
                &sig_labels[sig]
            } else {
                &many[i].labels
            };
            let one_labels = if j == FILL {
                &sig_labels[sig]
            } else {
                &one[j].labels
            };
            let drop = ret_bool || (i != FILL && many[i].drop_name && !op.changes_schema());
            // A series usually meets the same partner at every step: check that first.
            let slot = match st.last_pair.get(i) {
                Some(&Some((pj, ps))) if pj == j => ps,
                _ => {
                    let slot = *st.result_cache.entry((i, j)).or_insert_with(|| {
                        let labels = m.result_labels(many_labels, one_labels, op);
                        out.slot(&labels, drop)
                    });
                    if let Some(lp) = st.last_pair.get_mut(i) {
                        *lp = Some((j, slot));
                    }
                    slot
                }
            };
            if one_to_one {
                if st.matched[sig] {
                    return Err(exec_err!(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                    ));
                }
                st.matched[sig] = true;
            } else {
                if st.inserted[sig].contains(&slot) {
                    return Err(exec_err!(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                    ));
                }
                st.inserted[sig].push(slot);
                st.matched[sig] = true;
            }
            if !keep && !ret_bool {
                return Ok(());
            }
            out.push_at(slot, t, v)
        };
        for (i, _) in many.iter().enumerate() {
            let Some(lv) = mc.at(i, t) else { continue };
            let sig = msig[i];
            match one_at[sig] {
                Some((j, rv)) => emit(i, lv, j, rv, sig, &mut st, &mut out)?,
                None => {
                    if let Some(f) = fill_one {
                        emit(i, lv, FILL, f, sig, &mut st, &mut out)?;
                    }
                }
            }
        }
        if let Some(f) = fill_many {
            for (j, _) in one.iter().enumerate() {
                let sig = osig[j];
                let Some((jj, rv)) = one_at[sig] else {
                    continue;
                };
                if jj != j || st.matched[sig] {
                    continue;
                }
                emit(FILL, f, j, rv, sig, &mut st, &mut out)?;
            }
        }
    }
    out.finish(ev)
}

/// Per-step bookkeeping of [`vector_vector`].
struct PairState {
    /// Output slot per (many, one) pair.
    result_cache: HashMap<(usize, usize), usize>,
    /// The last (one-side index, slot) each many-side series was paired with.
    last_pair: Vec<Option<(usize, usize)>>,
    matched: Vec<bool>,
    /// Output slots already produced per match group at this step (slots stand for labels).
    inserted: Vec<Vec<usize>>,
}
