//! Binary operators: arithmetic, comparisons (with and without `bool`), `atan2`, and the
//! set operators, between scalars and vectors, with `on`/`ignoring`,
//! `group_left`/`group_right` and `fill*` vector matching.
//!
//! Match signatures are computed once per series; each grid step then pairs the series that
//! have a point at that step, raising Prometheus's errors for ambiguous matches.

use std::collections::HashMap;

use augur_storage::Labels;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use std::sync::Arc;

use augur_storage::histogram::{Histogram, ResetHint};
use promql_parser::parser::Expr;

use super::aggregate::{Cursors, Grouper};
use super::{Ev, VSeries, Val};
use crate::error::{exec_err, Result};
use crate::functions::Collector;
use crate::hist;

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

    /// The operator as written in PromQL.
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Mod => "%",
            Op::Pow => "^",
            Op::Atan2 => "atan2",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::And => "and",
            Op::Or => "or",
            Op::Unless => "unless",
        }
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
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    let hists = |v: &Val| matches!(v, Val::Vector(s) if s.iter().any(|s| !s.hists.is_empty()));
    if hists(&lhs) || hists(&rhs) {
        return with_histograms(ev, op, b, lhs, rhs);
    }
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

/// A point's value on either side of an operator: a float or a native histogram.
#[derive(Clone, Copy)]
enum Pv<'a> {
    F(f64),
    H(&'a Arc<Histogram>),
}

/// The result of one element's operation.
enum Res {
    F(f64),
    H(Arc<Histogram>),
    /// No element (a comparison that does not hold); the pair still counts as matched.
    None,
    /// No element and no match: the operation failed with an annotation (Prometheus's `err`
    /// of `vectorElemBinop`, which returns before the matching bookkeeping).
    Dropped,
}

/// `l op r` where either may be a histogram (Prometheus's `vectorElemBinop`): `*` scales a
/// histogram, `/` divides one by a float, `+`/`-` add histograms, `==`/`!=` compare them;
/// any other pairing gives nothing and an info annotation.
#[inline]
fn elem_op(ev: &Ev<'_>, op: Op, l: Pv<'_>, r: Pv<'_>, ret_bool: bool) -> Res {
    if let (Pv::F(l), Pv::F(r)) = (l, r) {
        let (v, keep) = op.apply(l, r);
        return if ret_bool {
            Res::F(if keep { 1.0 } else { 0.0 })
        } else if keep {
            Res::F(v)
        } else {
            Res::None
        };
    }
    hist_op(ev, op, l, r, ret_bool)
}

/// [`elem_op`] with a histogram on either side.
fn hist_op(ev: &Ev<'_>, op: Op, l: Pv<'_>, r: Pv<'_>, ret_bool: bool) -> Res {
    let kind = |p: &Pv<'_>| match p {
        Pv::F(_) => "float",
        Pv::H(_) => "histogram",
    };
    let res = match (l, r) {
        (Pv::F(f), Pv::H(h)) | (Pv::H(h), Pv::F(f)) if op == Op::Mul => {
            Some((Res::H(Arc::new(hist::mul(h, f))), true))
        }
        (Pv::H(h), Pv::F(f)) if op == Op::Div => Some((Res::H(Arc::new(hist::div(h, f))), true)),
        (Pv::H(a), Pv::H(b)) if matches!(op, Op::Add | Op::Sub) => {
            match hist::add(a, b, op == Op::Sub) {
                Some(mut s) => {
                    let what = if op == Op::Add {
                        "addition"
                    } else {
                        "subtraction"
                    };
                    if op == Op::Sub {
                        s.h.reset_hint = ResetHint::Gauge;
                    }
                    if s.collision {
                        ev.ctx.warn_at::<Expr>(
                        format!("PromQL warning: conflicting counter resets during histogram {what}"),
                        None,
                    );
                        return Res::Dropped;
                    }
                    if s.reconciled {
                        ev.ctx.info_at::<Expr>(
                        format!("PromQL info: mismatched custom buckets were reconciled during {what}"),
                        None,
                    );
                    }
                    Some((Res::H(Arc::new(s.h)), true))
                }
                None => {
                    ev.ctx.warn_at::<Expr>(
                    format!(
                        "PromQL warning: incompatible bucket layout encountered for binary operator {}",
                        op.symbol()
                    ),
                    None,
                );
                    return Res::Dropped;
                }
            }
        }
        (Pv::H(a), Pv::H(b)) if matches!(op, Op::Eq | Op::Ne) => {
            let same = hist::equals(a, b);
            Some((Res::H(Arc::clone(a)), same == (op == Op::Eq)))
        }
        _ => None,
    };
    match res {
        Some((v, keep)) => {
            if ret_bool {
                Res::F(if keep { 1.0 } else { 0.0 })
            } else if keep {
                v
            } else {
                Res::None
            }
        }
        None => {
            ev.ctx.info_at::<Expr>(
                format!(
                    "PromQL info: incompatible sample types encountered for binary operator {:?}: {} {} {}",
                    op.symbol(),
                    kind(&l),
                    op.symbol(),
                    kind(&r)
                ),
                None,
            );
            // Prometheus returns this info as its error: the element is dropped, `bool` or
            // not, before matching.
            Res::Dropped
        }
    }
}

/// A point taken from a series: its float, or its histogram.
type Picked = (f64, Option<Arc<Histogram>>);

/// A picked point as an operand.
fn as_pv(v: &Picked) -> Pv<'_> {
    match &v.1 {
        Some(h) => Pv::H(h),
        None => Pv::F(v.0),
    }
}

/// An operator with native histograms on either side: every element goes through
/// [`elem_op`]; vector matching is as for floats.
fn with_histograms(ev: &Ev<'_>, op: Op, b: &BinaryExpr, lhs: Val, rhs: Val) -> Result<Val> {
    let ret_bool = b.return_bool();
    match (lhs, rhs) {
        (Val::Vector(series), Val::Scalar(sc)) | (Val::Scalar(sc), Val::Vector(series))
            if !matches!(op, Op::And | Op::Or | Op::Unless) =>
        {
            let swap = matches!(
                b.lhs.value_type(),
                promql_parser::parser::value::ValueType::Scalar
            );
            let mut out = Collector::new();
            let mut cur = Cursors::new(&series);
            for t in ev.grid.times() {
                ev.ctx.check()?;
                let s_v = sc[ev.grid.index(t)];
                for (i, s) in series.iter().enumerate() {
                    let v = match (cur.at(i, t), cur.at_h(i, t)) {
                        (Some(f), _) => Pv::F(f),
                        (None, Some(h)) => Pv::H(h),
                        (None, None) => continue,
                    };
                    let (l, r) = if swap {
                        (Pv::F(s_v), v)
                    } else {
                        (v, Pv::F(s_v))
                    };
                    let mut res = elem_op(ev, op, l, r, ret_bool);
                    if let (Res::F(x), Pv::F(own), false) = (&mut res, v, ret_bool) {
                        if op.is_comparison() {
                            *x = own;
                        }
                    }
                    let drop = op.changes_schema() || ret_bool || s.drop_name;
                    match res {
                        Res::F(x) => {
                            let k = out.slot(&s.labels, drop);
                            out.push_at(k, t, x)?;
                        }
                        Res::H(h) => {
                            let k = out.slot(&s.labels, drop);
                            out.push_h_at(k, t, h)?;
                        }
                        Res::None | Res::Dropped => {}
                    }
                }
            }
            Ok(Val::Vector(out.finish(ev)?))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let matching = Matching::of(b);
            if matches!(op, Op::And | Op::Or | Op::Unless) {
                return set_op(ev, op, l, r, &matching).map(Val::Vector);
            }
            vector_vector(ev, op, l, r, &matching, ret_bool).map(Val::Vector)
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
    let hists = lhs.iter().chain(&rhs).any(|s| !s.hists.is_empty());
    let point = |c: &mut Cursors<'_>, i: usize, t: i64| -> Option<(f64, Option<Arc<Histogram>>)> {
        match c.at(i, t) {
            Some(f) => Some((f, None)),
            None if hists => c.at_h(i, t).map(|h| (0.0, Some(Arc::clone(h)))),
            None => None,
        }
    };
    let push = |out: &mut Collector, k: usize, t: i64, v: (f64, Option<Arc<Histogram>>)| match v.1 {
        Some(h) => out.push_h_at(k, t, h),
        None => out.push_at(k, t, v.0),
    };
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
                    if rc.at(i, t).is_some() || (hists && rc.at_h(i, t).is_some()) {
                        present[sig] = true;
                    }
                }
                for (i, s) in lhs.iter().enumerate() {
                    let Some(v) = point(&mut lc, i, t) else {
                        continue;
                    };
                    if present[lsig[i]] == (op == Op::And) {
                        let k = slot(&mut lslot, i, s, &mut out);
                        push(&mut out, k, t, v)?;
                    }
                }
            }
            _ => {
                for (i, s) in lhs.iter().enumerate() {
                    let Some(v) = point(&mut lc, i, t) else {
                        continue;
                    };
                    present[lsig[i]] = true;
                    let k = slot(&mut lslot, i, s, &mut out);
                    push(&mut out, k, t, v)?;
                }
                for (i, s) in rhs.iter().enumerate() {
                    let Some(v) = point(&mut rc, i, t) else {
                        continue;
                    };
                    if !present[rsig[i]] {
                        let k = slot(&mut rslot, i, s, &mut out);
                        push(&mut out, k, t, v)?;
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
    let mut one_at: Vec<Option<(usize, Picked)>> = vec![None; sig_labels.len()];
    // Histograms are looked for only when there are any.
    let hists = many.iter().chain(&one).any(|s| !s.hists.is_empty());
    let pick = |c: &mut Cursors<'_>, i: usize, t: i64| -> Option<Picked> {
        match c.at(i, t) {
            Some(f) => Some((f, None)),
            None if hists => c.at_h(i, t).map(|h| (0.0, Some(Arc::clone(h)))),
            None => None,
        }
    };
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
            let Some(v) = pick(&mut oc, j, t) else {
                continue;
            };
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
                    lv: &Picked,
                    j: usize,
                    rv: &Picked,
                    sig: usize,
                    st: &mut PairState,
                    out: &mut Collector|
         -> Result<()> {
            let (l, r) = if swapped { (rv, lv) } else { (lv, rv) };
            let res = elem_op(ev, op, as_pv(l), as_pv(r), ret_bool);
            if matches!(res, Res::Dropped) {
                return Ok(());
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
            match res {
                Res::F(v) => out.push_at(slot, t, v),
                Res::H(h) => out.push_h_at(slot, t, h),
                Res::None | Res::Dropped => Ok(()),
            }
        };
        for (i, _) in many.iter().enumerate() {
            let Some(lv) = pick(&mut mc, i, t) else {
                continue;
            };
            let sig = msig[i];
            match &one_at[sig] {
                Some((j, rv)) => emit(i, &lv, *j, rv, sig, &mut st, &mut out)?,
                None => {
                    if let Some(f) = fill_one {
                        emit(i, &lv, FILL, &(f, None), sig, &mut st, &mut out)?;
                    }
                }
            }
        }
        if let Some(f) = fill_many {
            for (j, _) in one.iter().enumerate() {
                let sig = osig[j];
                let Some((jj, rv)) = &one_at[sig] else {
                    continue;
                };
                if *jj != j || st.matched[sig] {
                    continue;
                }
                emit(FILL, &(f, None), j, rv, sig, &mut st, &mut out)?;
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
