//! A static lint over a parsed query: binary operations between two vectors whose series can
//! never match, so the expression (typically an alert) never produces output.
//!
//! Entry point: [`lint`], over the AST [`crate::parse`] returns (after Augur's rewrites).
//! It evaluates nothing and reads no storage; a warning is advice, never an error.
//!
//! # The motivating case
//!
//! `(sum by (service_name) (rate(x[5m])) - avg(sum by (service_name) (rate(x[5m]))))` pairs a
//! side whose series carry exactly `{service_name}` with a side that has no labels at all.
//! Default one-to-one matching compares all labels but `__name__`, so a pair only forms when
//! `service_name` is empty on the left: in Prometheus such a z-score alert never fires.
//!
//! # The abstraction
//!
//! For every vector-valued sub-expression the lint computes a `LabelSet`: the label names its
//! series *certainly* carry (with a non-empty value), and the names they *can possibly* carry,
//! either a closed set (`Only`: an aggregation `by (a, b)`, `vector(1)`, `absent(x{a="1"})`)
//! or everything but some names (`AllBut`: a selector, a function that keeps the labels,
//! `sum without (a)`).
//!
//! "Certain" is a deliberate policy, not a proof. It holds the names that are present unless
//! the input lacks them altogether, because that is what the author of the query expects:
//! - the labels of a `by (...)` clause (a user writing `by (service_name)` expects the label;
//!   strictly, `service_name` is empty when no input series has it), minus names the input
//!   certainly lacks;
//! - labels selected by a matcher that does not match the empty string (`job="a"`,
//!   `service_name=~".+"`), and `__name__` when the selector names a metric;
//! - the target of `label_replace` with a non-empty replacement (without `$` references, or
//!   whose source label is itself certain) and of `label_join` whose value cannot be empty;
//! - the label `count_values` adds, and those `absent` builds from `=` matchers.
//!
//! "Possible" is an over-approximation: the lint only ever removes a name from it when
//! Prometheus certainly removes the label (an aggregation's `by`, `ignoring(...)`/`on(...)`,
//! `histogram_quantile`'s `le`, a matcher `a=""`). Dropping `__name__` (arithmetic, most
//! functions) only makes the name uncertain, because of Prometheus's delayed name removal.
//!
//! # The check
//!
//! For each binary operation between two vectors, except `or` (it keeps unmatched series from
//! both sides), `unless` (it keeps unmatched left-hand series) and operations with `fill`
//! values (unmatched series are filled in), both sides are reduced to their *match
//! signature* — the `on(...)` labels, or all labels but `__name__` and the `ignoring(...)` ones —
//! and the lint warns when a name is certain on one side and impossible on the other: then a
//! pair only forms where that label is empty, contrary to what the author meant. A name is
//! impossible only where Prometheus certainly removes it, so two selectors or two functions of
//! selectors never warn (`rate(a[5m]) / rate(b[5m])`): the lint has no false positives on
//! ordinary expressions and accepts false negatives.
//!
//! The lint does not judge whether one-to-one matching would find duplicates, whether
//! comparisons with scalars can be true, or anything about ranges and functions' arguments.

use std::collections::BTreeSet;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr as PromExpr, LabelModifier, VectorMatchCardinality,
    VectorSelector,
};

use crate::functions::unwrap_parens;
use crate::rewrite::EXT_LABEL;

const METRIC_NAME: &str = "__name__";

/// One finding of [`lint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Full sentences: what never produces output, why, and how to fix it.
    pub message: String,
    /// The offending binary expression, printed by promql-parser (not the original text).
    pub snippet: String,
}

/// Finds the vector-vector binary operations in `expr` whose two sides can never match (see
/// the module documentation), innermost first. An empty result means nothing was found, not
/// that the query produces output.
pub fn lint(expr: &PromExpr) -> Vec<Warning> {
    let mut out = Vec::new();
    labels(expr, &mut out);
    out
}

type Names = BTreeSet<String>;

/// The label names a series can possibly carry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Possible {
    /// No label outside the set.
    Only(Names),
    /// Any label but those in the set.
    AllBut(Names),
}

impl Possible {
    fn contains(&self, name: &str) -> bool {
        match self {
            Possible::Only(s) => s.contains(name),
            Possible::AllBut(s) => !s.contains(name),
        }
    }

    fn union(self, other: Possible) -> Possible {
        match (self, other) {
            (Possible::Only(a), Possible::Only(b)) => Possible::Only(&a | &b),
            (Possible::Only(a), Possible::AllBut(e)) | (Possible::AllBut(e), Possible::Only(a)) => {
                Possible::AllBut(&e - &a)
            }
            (Possible::AllBut(a), Possible::AllBut(b)) => Possible::AllBut(&a & &b),
        }
    }

    fn keep(&self, names: &Names) -> Possible {
        Possible::Only(names.iter().filter(|n| self.contains(n)).cloned().collect())
    }

    fn remove(self, names: &Names) -> Possible {
        match self {
            Possible::Only(s) => Possible::Only(&s - names),
            Possible::AllBut(e) => Possible::AllBut(&e | names),
        }
    }

    fn insert(self, name: &str) -> Possible {
        match self {
            Possible::Only(mut s) => {
                s.insert(name.to_owned());
                Possible::Only(s)
            }
            Possible::AllBut(mut e) => {
                e.remove(name);
                Possible::AllBut(e)
            }
        }
    }
}

/// What the lint knows about the label names of a vector's series. `certain` is always a
/// subset of `possible`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelSet {
    /// Names every series carries with a non-empty value (under the module's policy).
    certain: Names,
    possible: Possible,
}

impl LabelSet {
    fn new(mut certain: Names, possible: Possible) -> LabelSet {
        certain.retain(|n| possible.contains(n));
        LabelSet { certain, possible }
    }

    /// No labels at all: scalars, `vector(1)`, `sum(x)`.
    fn empty() -> LabelSet {
        LabelSet::new(Names::new(), Possible::Only(Names::new()))
    }

    /// Nothing known.
    fn unknown() -> LabelSet {
        LabelSet::new(Names::new(), Possible::AllBut(Names::new()))
    }

    /// The least that is known of either `self` or `other`.
    fn join(self, other: LabelSet) -> LabelSet {
        LabelSet::new(
            &self.certain & &other.certain,
            self.possible.union(other.possible),
        )
    }

    /// Only the `names` remain (`on(...)`, `by (...)` without the certainty policy).
    fn keep(self, names: &Names) -> LabelSet {
        let possible = self.possible.keep(names);
        LabelSet::new(&self.certain & names, possible)
    }

    /// The `names` are certainly gone.
    fn remove(self, names: &Names) -> LabelSet {
        LabelSet::new(&self.certain - names, self.possible.remove(names))
    }

    /// The label `name` is set (certainly, or only possibly, with the value it had before).
    fn set(mut self, name: &str, certain: bool) -> LabelSet {
        if certain {
            self.certain.insert(name.to_owned());
        } else {
            self.certain.remove(name);
        }
        LabelSet::new(self.certain, self.possible.insert(name))
    }

    /// The metric name may have been dropped (now or, with delayed name removal, later).
    fn forget_name(mut self) -> LabelSet {
        self.certain.remove(METRIC_NAME);
        self
    }
}

fn names<'a>(it: impl IntoIterator<Item = &'a String>) -> Names {
    it.into_iter().cloned().collect()
}

/// The one dispatch over the AST: the label set of `expr`, pushing warnings for the binary
/// operations inside it.
fn labels(expr: &PromExpr, out: &mut Vec<Warning>) -> LabelSet {
    match expr {
        PromExpr::Aggregate(a) => aggregate(a, out),
        PromExpr::Unary(u) => labels(&u.expr, out).forget_name(),
        PromExpr::Binary(b) => binary(b, out),
        PromExpr::Paren(p) => labels(&p.expr, out),
        PromExpr::Subquery(s) => labels(&s.expr, out),
        PromExpr::NumberLiteral(_) | PromExpr::StringLiteral(_) => LabelSet::empty(),
        PromExpr::VectorSelector(vs) => selector(vs),
        PromExpr::MatrixSelector(ms) => selector(&ms.vs),
        PromExpr::Call(c) => call(c, out),
        PromExpr::Extension(_) => LabelSet::unknown(),
    }
}

fn selector(vs: &VectorSelector) -> LabelSet {
    let m = &vs.matchers;
    let mut set = if m.or_matchers.is_empty() {
        conjunction(&m.matchers)
    } else {
        m.or_matchers
            .iter()
            .map(|group| conjunction(m.matchers.iter().chain(group)))
            .reduce(LabelSet::join)
            .unwrap_or_else(LabelSet::unknown)
    };
    if vs.name.is_some() {
        set = set.set(METRIC_NAME, true);
    }
    set
}

/// The labels of series that satisfy all of `matchers`.
fn conjunction<'a>(matchers: impl IntoIterator<Item = &'a Matcher>) -> LabelSet {
    let mut certain = Names::new();
    let mut absent = Names::new();
    for m in matchers.into_iter().filter(|m| m.name != EXT_LABEL) {
        if !m.is_match("") {
            certain.insert(m.name.clone());
        } else if matches!(m.op, MatchOp::Equal) {
            // `a=""` selects series without the label.
            absent.insert(m.name.clone());
        }
    }
    LabelSet::new(certain, Possible::AllBut(absent))
}

fn aggregate(a: &AggregateExpr, out: &mut Vec<Warning>) -> LabelSet {
    if let Some(p) = &a.param {
        labels(p, out);
    }
    let input = labels(&a.expr, out);
    let op = a.op.to_string().to_lowercase();
    if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
        // These select input series; `by` only groups them.
        return input;
    }
    let set = match &a.modifier {
        Some(LabelModifier::Include(by)) => {
            let by = names(&by.labels);
            let possible = input.possible.keep(&by);
            // The policy: a `by` label is present unless the input certainly lacks it.
            LabelSet::new(by, possible)
        }
        Some(LabelModifier::Exclude(without)) => {
            let mut gone = names(&without.labels);
            gone.insert(METRIC_NAME.to_owned());
            input.remove(&gone)
        }
        None => LabelSet::empty(),
    };
    if op == "count_values" {
        // The sample value, as a string, is never empty.
        return match a.param.as_deref().and_then(string_arg) {
            Some(label) => set.set(label, true),
            None => LabelSet::unknown(),
        };
    }
    set
}

fn string_arg(e: &PromExpr) -> Option<&str> {
    match unwrap_parens(e) {
        PromExpr::StringLiteral(s) => Some(&s.val),
        _ => None,
    }
}

fn call(c: &Call, out: &mut Vec<Warning>) -> LabelSet {
    let args: Vec<&PromExpr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let sets: Vec<LabelSet> = args.iter().map(|a| labels(a, out)).collect();
    // The series flow from the first vector or range argument (`histogram_quantile(0.9, v)`,
    // `label_replace(v, ...)`, `predict_linear(m, t)`); without one (`vector(1)`, `time()`,
    // `day_of_week()`), the result has no labels.
    let Some(input) = args
        .iter()
        .zip(sets)
        .find(|(a, _)| matches!(a.value_type(), ValueType::Vector | ValueType::Matrix))
        .map(|(_, s)| s)
    else {
        return LabelSet::empty();
    };
    let str_at = |i: usize| args.get(i).and_then(|a| string_arg(a));
    match c.func.name {
        "absent" | "absent_over_time" => absent(args[0]),
        "histogram_quantile" => input.remove(&names(&["le".to_owned(), METRIC_NAME.to_owned()])),
        // Adds the labels of matching info series: anything may appear.
        "info" => LabelSet::new(input.certain, Possible::AllBut(Names::new())),
        "label_replace" => match (str_at(1), str_at(2), str_at(3)) {
            (Some(dst), Some(repl), Some(src)) => {
                let certain =
                    !repl.is_empty() && (!repl.contains('$') || input.certain.contains(src));
                input.set(dst, certain)
            }
            _ => LabelSet::unknown(),
        },
        "label_join" => match (str_at(1), str_at(2)) {
            (Some(dst), Some(sep)) => {
                let srcs: Vec<&str> = (3..args.len()).filter_map(str_at).collect();
                let certain = srcs.iter().any(|s| input.certain.contains(*s))
                    || (!sep.is_empty() && srcs.len() >= 2);
                input.set(dst, certain)
            }
            _ => LabelSet::unknown(),
        },
        _ => input.forget_name(),
    }
}

/// `absent(x{a="1"})`: one label per `=` matcher but the name; a name matched twice is
/// dropped (Prometheus's `createLabelsForAbsentFunction`).
fn absent(arg: &PromExpr) -> LabelSet {
    let vs = match unwrap_parens(arg) {
        PromExpr::VectorSelector(vs) => vs,
        PromExpr::MatrixSelector(ms) => &ms.vs,
        _ => return LabelSet::empty(),
    };
    let equal: Vec<&Matcher> = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten())
        .filter(|m| matches!(m.op, MatchOp::Equal))
        .filter(|m| m.name != METRIC_NAME && m.name != EXT_LABEL)
        .collect();
    let possible = names(equal.iter().map(|m| &m.name));
    let certain = if vs.matchers.or_matchers.is_empty() {
        equal
            .iter()
            .filter(|m| !m.value.is_empty())
            .filter(|m| equal.iter().filter(|o| o.name == m.name).count() == 1)
            .map(|m| m.name.clone())
            .collect()
    } else {
        Names::new()
    };
    LabelSet::new(certain, Possible::Only(possible))
}

fn binary(b: &BinaryExpr, out: &mut Vec<Warning>) -> LabelSet {
    let l = labels(&b.lhs, out);
    let r = labels(&b.rhs, out);
    let is_vector = |e: &PromExpr| e.value_type() == ValueType::Vector;
    let keeps_name = b.op.is_comparison_operator() && !b.return_bool();
    let result = |s: LabelSet| if keeps_name { s } else { s.forget_name() };
    match (is_vector(&b.lhs), is_vector(&b.rhs)) {
        (false, false) => LabelSet::empty(),
        (true, false) => result(l),
        (false, true) => result(r),
        (true, true) => {
            let op = b.op.to_string().to_lowercase();
            let modifier = b.modifier.as_ref();
            let matching = modifier.and_then(|m| m.matching.as_ref());
            let filled = modifier
                .is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some());
            if op != "or" && op != "unless" && !filled {
                check(b, &op, &l, &r, out);
            }
            match op.as_str() {
                "and" | "unless" => l,
                "or" => l.join(r),
                _ if filled => LabelSet::unknown(),
                _ => match modifier.map(|m| &m.card) {
                    None | Some(VectorMatchCardinality::OneToOne) => result(match matching {
                        Some(LabelModifier::Include(on)) => l.keep(&names(&on.labels)),
                        Some(LabelModifier::Exclude(ign)) => l.remove(&names(&ign.labels)),
                        None => l,
                    }),
                    Some(VectorMatchCardinality::ManyToOne(include)) => {
                        grouped(result(l), &r, &include.labels)
                    }
                    Some(VectorMatchCardinality::OneToMany(include)) => {
                        grouped(result(r), &l, &include.labels)
                    }
                    Some(VectorMatchCardinality::ManyToMany) => LabelSet::unknown(),
                },
            }
        }
    }
}

/// The result of `group_left(include)`/`group_right(include)`: the many side's labels, with
/// the `include` labels taken from the one side (removed where it lacks them).
fn grouped(many: LabelSet, one: &LabelSet, include: &[String]) -> LabelSet {
    include.iter().fold(many, |set, name| {
        if one.possible.contains(name) {
            set.set(name, one.certain.contains(name))
        } else {
            set.remove(&names([name]))
        }
    })
}

/// The labels that decide which series of one side match: Prometheus's match signature.
fn signature(set: &LabelSet, matching: Option<&LabelModifier>) -> LabelSet {
    match matching {
        Some(LabelModifier::Include(on)) => set.clone().keep(&names(&on.labels)),
        Some(LabelModifier::Exclude(ign)) => {
            let mut gone = names(&ign.labels);
            gone.insert(METRIC_NAME.to_owned());
            set.clone().remove(&gone)
        }
        None => set.clone().remove(&names(&[METRIC_NAME.to_owned()])),
    }
}

/// Warns when a label is certain in one side's match signature and impossible in the other's.
fn check(b: &BinaryExpr, op: &str, l: &LabelSet, r: &LabelSet, out: &mut Vec<Warning>) {
    let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
    let (ls, rs) = (signature(l, matching), signature(r, matching));
    let only_in = |side: &LabelSet, other: &LabelSet| -> Names {
        names(side.certain.iter().filter(|n| !other.possible.contains(n)))
    };
    let (left, right) = (only_in(&ls, &rs), only_in(&rs, &ls));
    if left.is_empty() && right.is_empty() {
        return;
    }
    // When only one side has extra labels, the other one, if it has no labels at all, can be
    // matched with `on()` or turned into a scalar.
    let labelless = match (left.is_empty(), right.is_empty()) {
        (false, true) if rs.possible == Possible::Only(Names::new()) => Some(("right", &*b.rhs)),
        (true, false) if ls.possible == Possible::Only(Names::new()) => Some(("left", &*b.lhs)),
        _ => None,
    };

    let how = match matching {
        Some(LabelModifier::Include(on)) => format!("`on({})` matching", on.labels.join(", ")),
        Some(LabelModifier::Exclude(ign)) if !ign.labels.is_empty() => format!(
            "`ignoring({0})` matching (on all labels but __name__ and {0})",
            ign.labels.join(", ")
        ),
        _ => "default matching (on all labels but __name__)".to_owned(),
    };
    let mut why = Vec::new();
    for (extra, side, other) in [(&left, "left", "right"), (&right, "right", "left")] {
        if !extra.is_empty() {
            let noun = if extra.len() == 1 { "label" } else { "labels" };
            why.push(format!(
                "every {side}-hand series has the {noun} {} and no {other}-hand series can",
                join(extra)
            ));
        }
    }
    let all = &left | &right;
    let whose = if all.len() == 1 {
        format!("{} label is", join(&all))
    } else {
        format!("{} labels are", join(&all))
    };
    let mut message = format!(
        "The `{op}` operation produces no output: with {how}, {}, so it only matches series \
         whose {whose} empty.",
        why.join(", and "),
    );

    // The fix: match on what both sides share, grouping from the side with the extra labels.
    let fixed = match matching {
        Some(LabelModifier::Include(on)) => format!("on({})", join(&(&names(&on.labels) - &all))),
        Some(LabelModifier::Exclude(ign)) => {
            format!("ignoring({})", join(&(&names(&ign.labels) | &all)))
        }
        None => format!("ignoring({})", join(&all)),
    };
    let group = match b.modifier.as_ref().map(|m| &m.card) {
        _ if b.op.is_set_operator() => String::new(),
        Some(VectorMatchCardinality::ManyToOne(inc)) => group_clause("group_left", inc),
        Some(VectorMatchCardinality::OneToMany(inc)) => group_clause("group_right", inc),
        _ if right.is_empty() => " group_left".to_owned(),
        _ if left.is_empty() => " group_right".to_owned(),
        _ => String::new(),
    };
    let mut fixes = Vec::new();
    if labelless.is_some() {
        fixes.push(format!("`{op} on(){group}`"));
    }
    let fix = format!("`{op} {fixed}{group}`");
    if !fixes.contains(&fix) {
        fixes.push(fix);
    }
    message.push_str(" To fix it, match only on the labels both sides share, e.g. ");
    message.push_str(&fixes.join(" or "));
    if let Some((side, expr)) = labelless.filter(|_| !b.op.is_set_operator()) {
        message.push_str(&format!(
            ", or make the {side}-hand side a scalar with `scalar(...)`"
        ));
        if is_spread_aggregate(expr) {
            message.push_str(
                "; for a z-score, Augur's `zscore(v[range])` computes it per series in one call",
            );
        }
    }
    message.push('.');
    out.push(Warning {
        message,
        snippet: b.to_string(),
    });
}

fn join(names: &Names) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn group_clause(kind: &str, include: &promql_parser::label::Labels) -> String {
    if include.labels.is_empty() {
        format!(" {kind}")
    } else {
        format!(" {kind}({})", include.labels.join(", "))
    }
}

/// `avg(...)`, `stddev(...)` or `stdvar(...)`: the statistics of a hand-written z-score.
fn is_spread_aggregate(e: &PromExpr) -> bool {
    matches!(
        unwrap_parens(e),
        PromExpr::Aggregate(a) if matches!(a.op.to_string().to_lowercase().as_str(), "avg" | "stddev" | "stdvar")
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Lints `query` and checks one warning per entry of `expect`, each message containing it.
    fn check(query: &str, expect: &[&str]) {
        let expr = crate::parse(query, 0, 0).unwrap_or_else(|e| panic!("{query}: {e}"));
        let got = lint(&expr);
        assert_eq!(got.len(), expect.len(), "{query}: {got:#?}");
        for (w, want) in got.iter().zip(expect) {
            assert!(w.message.contains(want), "{query}: {w:#?} lacks {want:?}");
        }
    }

    #[test]
    fn ordinary_expressions_pass() {
        check("rate(a[5m]) / rate(b[5m])", &[]);
        check("sum by (job) (a) / sum by (job) (b)", &[]);
        check("a / on(job) group_left sum by (job) (b)", &[]);
        check("up == 0", &[]);
        check("sum(a) / sum(b)", &[]);
        check("x > bool 3", &[]);
        check("sum by (a) (x) / ignoring(a) group_left sum(x)", &[]);
        check("sum by (a) (x) / on() group_left sum(x)", &[]);
        check("sum by (a) (x) - on() group_left avg(sum by (a) (x))", &[]);
        check("sum by (a) (x) / scalar(sum(x))", &[]);
        check("x{job=\"a\"} / y{job=\"a\"}", &[]);
        check("x{job=\"a\"} / y", &[]);
        check(
            "sum by (job, instance) (x) / on(job) group_left sum by (job) (y)",
            &[],
        );
        check("sum by (job) (x) or vector(0)", &[]);
        check("sum by (job) (x) unless vector(0)", &[]);
        check("sum by (job) (x) + fill(0) vector(0)", &[]);
        check("1 - sum by (job) (a) / sum by (job) (b)", &[]);
        check(
            "histogram_quantile(0.9, sum by (le, job) (rate(h[5m]))) > on(job) sum by (job) (x)",
            &[],
        );
        check("up{job=\"a\"} and on() vector(1)", &[]);
        check(
            "count_values(\"v\", x) / on(v) count_values by (v) (\"v\", y)",
            &[],
        );
        check(
            "rate(x[5m]) / ignoring(code) group_left sum without (code) (rate(x[5m]))",
            &[],
        );
        check(
            "label_replace(sum(x), \"job\", \"a\", \"\", \"\") / sum by (job) (y)",
            &[],
        );
        check(
            "abs(sum by (s) (rate(x[5m])) - avg_over_time(sum by (s) (rate(x[5m]))[1h:])) > 3",
            &[],
        );
        check("zscore(sum by (s) (rate(x[5m]))[1h]) > 3", &[]);
        check(
            "ewma(sum by (s) (rate(x[5m]))[1h], 0.3) < sum by (s) (rate(x[5m]))",
            &[],
        );
        check(
            "seasonal_baseline(sum by (s) (x)[1w], 86400) * 2 < sum by (s) (x)",
            &[],
        );
        check("predict(sum by (s) (x)[1h], 3600) > sum by (s) (x)", &[]);
        check(
            "predict_linear(sum by (s) (x)[1h], 3600) > sum by (s) (x)",
            &[],
        );
        check(
            "topk by (s) (3, sum by (s, i) (x)) / on(s, i) sum by (s, i) (y)",
            &[],
        );
        check("sum by (a) (x) / sum by (a) (x{a=\"1\"})", &[]);
        check(
            "info(rate(x[5m]), {k=~\".+\"}) / on(k) group_left sum by (k) (y)",
            &[],
        );
        check(
            "absent(x{job=\"a\"}) * on(job) group_left sum by (job) (y)",
            &[],
        );
        check("x{a=~\".*\"} / sum(y)", &[]);
        check("x{s=~\".+\"} > on() group_left sum(y) and x", &[]);
        check("label_join(x, \"dst\", \"\", \"a\") / sum(y)", &[]);
        check(
            "label_replace(x, \"dst\", \"$1\", \"src\", \"(.*)\") / sum(y)",
            &[],
        );
        check(
            "sum by (job) (x) / sum by (job) (y) > bool on(job) sum by (job) (z)",
            &[],
        );
    }

    #[test]
    fn never_matching_sides_warn() {
        // The seed rules' hand-written z-score.
        check(
            "(sum(rate(x[5m])) by (service_name) - avg(sum(rate(x[5m])) by (service_name))) \
             / stddev(sum(rate(x[5m])) by (service_name)) > 3",
            &[
                "only matches series whose service_name label is empty",
                "every left-hand series has the label service_name and no right-hand series can",
            ],
        );
        check(
            "sum by (s) (x) - avg(sum by (s) (x))",
            &[
                "`- on() group_left` or `- ignoring(s) group_left`, or make the right-hand side a \
               scalar with `scalar(...)`; for a z-score, Augur's `zscore(v[range])`",
            ],
        );
        check(
            "sum(x) / sum by (s) (x)",
            &["`/ on() group_right` or `/ ignoring(s) group_right`"],
        );
        check("sum by (job) (x) + vector(1)", &["job label is empty"]);
        check(
            "rate(x{job=\"a\"}[5m]) / sum(rate(x[5m]))",
            &["left-hand series has the label job"],
        );
        check(
            "up{job=\"a\"} and vector(1)",
            &["`and on()` or `and ignoring(job)`."],
        );
        check(
            "sum by (a) (x) / sum by (b) (y)",
            &["series whose a, b labels are empty"],
        );
        check(
            "sum by (job) (x) / on(job) sum(y)",
            &["with `on(job)` matching, every left-hand"],
        );
        check(
            "sum by (a, b) (x) / ignoring(a) sum by (a) (y)",
            &["`ignoring(a)` matching (on all labels but __name__ and a), every left-hand series has the label b"],
        );
        check(
            "sum without (job) (x) / on(job) y{job=\"a\"}",
            &["right-hand series has the label job"],
        );
        check("x{a=\"\"} * on(a) y{a=\"1\"}", &["label a"]);
        check(
            "label_replace(x, \"dst\", \"v\", \"\", \"\") / sum(y)",
            &["label dst"],
        );
        check("count_values(\"v\", x) / sum(y)", &["label v"]);
        check("absent(x{job=\"a\"}) * sum(y)", &["label job"]);
        check(
            "histogram_quantile(0.9, sum by (le, s) (rate(h[5m]))) / sum(rate(c[5m]))",
            &["label s"],
        );
        check(
            "label_join(x, \"dst\", \"-\", \"a\", \"b\") / sum(y)",
            &["label dst"],
        );
        check(
            "label_replace(x{src=\"v\"}, \"dst\", \"$1\", \"src\", \"(.*)\") / sum(y)",
            &["labels dst, src and"],
        );
        check("-sum by (a) (x) / sum(y)", &["label a and"]);
        check("sum by (a) (x) atan2 sum(y)", &["`atan2 on() group_left`"]);
        // Label sets propagate through binary operations.
        check("(sum by (s) (x) / sum by (s) (y)) - sum(z)", &["label s"]);
        check(
            "(sum by (s) (x) > 1) * on(t) group_left sum by (t) (y)",
            &["label t"],
        );
        check(
            "sum by (a) (x) * on(a) group_left(b) sum by (a, b) (y) / sum by (a) (z)",
            &["label b"],
        );
    }

    /// Runs the lint over every rule in `../../shared/seeds/rules` (a sibling of the checkout)
    /// and checks which rules it flags.
    #[test]
    fn seed_rules() {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let dir = PathBuf::from(manifest).join("../../shared/seeds/rules");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!("skipping: no seed rules at {}", dir.display());
            return;
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        let mut flagged = Vec::new();
        let mut rules = 0;
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            let groups = doc["groups"].as_sequence().cloned().unwrap_or_default();
            for rule in groups
                .iter()
                .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
            {
                let name = rule["alert"]
                    .as_str()
                    .or(rule["record"].as_str())
                    .unwrap()
                    .to_owned();
                let expr = match &rule["expr"] {
                    serde_yaml::Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).unwrap(),
                };
                let parsed =
                    crate::parse(&expr, 0, 0).unwrap_or_else(|e| panic!("{file} {name}: {e}"));
                rules += 1;
                let warnings = lint(&parsed);
                if !warnings.is_empty() {
                    assert!(
                        warnings
                            .iter()
                            .all(|w| w.message.contains("service_name label is empty")),
                        "{warnings:#?}"
                    );
                    flagged.push((file.clone(), name, warnings.len()));
                }
            }
        }
        assert!(rules > 30, "only {rules} rules read from {}", dir.display());
        // Each hand-written z-score `abs(A - avg(A')) / stddev(A'')` has two operations whose
        // left side is `by (service_name)` and whose right side is a label-less aggregate:
        // the `-` and the `/`. Every other rule passes: the exponential-smoothing, predictive
        // and moving-average rules compare `by (service_name)` with `*_over_time` or
        // `predict_linear` of a `by (service_name)` subquery (same labels on both sides), and
        // prometheus_rules.yaml's hand-written z-score divides a selector-derived series by
        // recorded series whose labels the lint cannot know.
        let stat = "statistical-anomaly-detection.yml".to_owned();
        assert_eq!(
            flagged,
            vec![
                (stat.clone(), "LatencyZScoreAnomaly".to_owned(), 2),
                (stat.clone(), "ThroughputZScoreAnomaly".to_owned(), 2),
                (stat, "ErrorRateZScoreAnomaly".to_owned(), 2),
            ]
        );
    }
}
