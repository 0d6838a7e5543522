//! The evaluator. Every node is evaluated over the whole step grid of its query at once (an
//! instant query is a grid of one step), as Prometheus's engine does: an instant-vector node
//! yields series with at most one point per step, a scalar node one value per step.
//!
//! Invariants:
//! - storage is read once per selector for the whole query range (plus window and lookback),
//!   and windows slide over the loaded samples; nothing re-reads storage per step;
//! - points of a [`VSeries`] are sorted by time and lie on the grid of the node's evaluator;
//! - `__name__` is removed late (Prometheus's delayed name removal): nodes set
//!   [`VSeries::drop_name`] and [`run`] drops the label once at the end;
//! - a selector's matchers never include the rewrite sentinel [`crate::rewrite::EXT_LABEL`].
//!
//! Sub-modules: [`selector`] (vector/matrix selectors and subqueries), [`aggregate`],
//! [`binary`] (operators and vector matching).

pub(crate) mod aggregate;
pub(crate) mod binary;
pub(crate) mod selector;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use augur_storage::histogram::Histogram;
use augur_storage::{Labels, Queryable, Sample, Series, METRIC_NAME};
use promql_parser::parser::Expr;

use crate::error::{exec_err, Error, Result};
use crate::positions::{self, Positions};
use crate::value::{Element, QueryResult, Value};

/// Limits and defaults of one query.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub lookback: i64,
    pub max_samples: usize,
    pub deadline: Option<Instant>,
    pub cancel: Option<Arc<AtomicBool>>,
    pub default_subquery_step: i64,
}

/// State shared by every evaluator of one query (subqueries get their own grid).
pub(crate) struct Ctx<'a> {
    pub db: &'a dyn Queryable,
    pub settings: Settings,
    /// Samples currently held for this query (Prometheus's `currentSamples`, approximated:
    /// every node's output counts until the query ends).
    samples: Cell<usize>,
    /// `@ start()` and `@ end()` are the outermost query's start and end.
    pub query_start: i64,
    pub query_end: i64,
    /// The outermost query's step (0 for instant queries), for `step()`.
    pub step: i64,
    /// Annotations: (message, ` (line:col)` or empty), one per message.
    warnings: RefCell<Vec<(String, String)>>,
    infos: RefCell<Vec<(String, String)>>,
    ticks: Cell<u32>,
    /// The query text and its tree, when annotations can point into it.
    source: Option<(&'a str, &'a Expr)>,
    positions: OnceCell<Positions>,
}

impl Ctx<'_> {
    /// Fails when the query ran out of time or was cancelled. Cheap enough for inner loops:
    /// the clock is read every 64 calls.
    pub fn check(&self) -> Result<()> {
        let n = self.ticks.get().wrapping_add(1);
        self.ticks.set(n);
        if !n.is_multiple_of(64) {
            return Ok(());
        }
        self.check_now()
    }

    pub fn check_now(&self) -> Result<()> {
        if let Some(c) = &self.settings.cancel {
            if c.load(Ordering::Relaxed) {
                return Err(Error::Canceled("expression evaluation"));
            }
        }
        if let Some(d) = self.settings.deadline {
            if Instant::now() >= d {
                return Err(Error::Timeout("expression evaluation"));
            }
        }
        Ok(())
    }

    /// Counts `n` more samples held in memory, failing past the query's limit.
    pub fn hold(&self, n: usize) -> Result<()> {
        let total = self.samples.get() + n;
        self.samples.set(total);
        if total > self.settings.max_samples {
            return Err(Error::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// The bounds of a storage read made now: the samples the query may still hold, its
    /// deadline and cancellation.
    pub fn read_limits(&self) -> augur_storage::ReadLimits {
        augur_storage::ReadLimits {
            max_samples: Some(self.settings.max_samples.saturating_sub(self.samples.get())),
            deadline: self.settings.deadline,
            cancel: self.settings.cancel.clone(),
            newest_only: false,
        }
    }

    /// Gives back `n` samples no longer held.
    pub fn release(&self, n: usize) {
        self.samples.set(self.samples.get().saturating_sub(n));
    }

    /// Adds a warning about `node`, ending with its position in the query text if known.
    pub fn warn_at<'n, T: 'n>(&self, msg: String, node: impl Into<Option<&'n T>>) {
        note(&self.warnings, msg, self.pos(node));
    }

    /// Adds an info about `node`, ending with its position in the query text if known.
    pub fn info_at<'n, T: 'n>(&self, msg: String, node: impl Into<Option<&'n T>>) {
        note(&self.infos, msg, self.pos(node));
    }

    /// Whether `name` is a valid label name for a function to create: any UTF-8 but empty or
    /// NUL, and not written in the query as a literal Go would read as invalid UTF-8.
    pub fn label_name_ok(&self, name: &str) -> bool {
        augur_storage::labels::is_valid_label_name(name)
            && !self
                .source
                .is_some_and(|(text, _)| positions::invalid_utf8_literal(text, name))
    }

    /// ` (line:col)` of `node` in the query text, as Prometheus ends an annotation about that
    /// node; empty when the position is unknown.
    pub fn pos<'n, T: 'n>(&self, node: impl Into<Option<&'n T>>) -> String {
        let (Some((text, root)), Some(node)) = (self.source, node.into()) else {
            return String::new();
        };
        let positions = self.positions.get_or_init(|| Positions::new(text, root));
        positions
            .offset(positions::key(node))
            .map_or_else(String::new, |o| {
                format!(" ({})", positions::line_col(text, o))
            })
    }
}

/// Records an annotation once per message, as Prometheus keys annotations by their text
/// without the position (the first position seen is kept).
fn note(list: &RefCell<Vec<(String, String)>>, msg: String, pos: String) {
    let mut list = list.borrow_mut();
    if !list.iter().any(|(m, _)| *m == msg) {
        list.push((msg, pos));
    }
}

/// Annotations as the API shows them: the message, then the position if any.
fn annotations(list: RefCell<Vec<(String, String)>>) -> Vec<String> {
    list.into_inner()
        .into_iter()
        .map(|(mut msg, pos)| {
            msg.push_str(&pos);
            msg
        })
        .collect()
}

/// The evaluation steps of one evaluator: `start, start + interval, … ≤ end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

impl Grid {
    /// A grid whose `end` is the last step actually on it.
    pub fn new(start: i64, end: i64, interval: i64) -> Grid {
        let interval = interval.max(1);
        let end = if end < start {
            end
        } else {
            start + (end - start) / interval * interval
        };
        Grid {
            start,
            end,
            interval,
        }
    }

    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.interval + 1) as usize
        }
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    pub fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.interval) as usize
    }

    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.ts(i))
    }
}

/// A native histogram point: a sample's time (raw data) or a grid step (instant vectors).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HPoint {
    pub t: i64,
    pub h: Arc<Histogram>,
}

/// A series flowing between nodes.
#[derive(Debug, Clone)]
pub(crate) struct VSeries {
    pub labels: Labels,
    pub points: Vec<Sample>,
    /// Native histogram points, in time order, at times `points` does not hold. Only
    /// selectors fill them so far; operators and functions read `points` alone.
    pub hists: Vec<HPoint>,
    /// Drop `__name__` at the end of evaluation (delayed name removal).
    pub drop_name: bool,
}

impl VSeries {
    pub fn new(labels: Labels, points: Vec<Sample>) -> VSeries {
        VSeries {
            labels,
            points,
            hists: Vec::new(),
            drop_name: false,
        }
    }

    /// Whether it has no point of either kind.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.hists.is_empty()
    }
}

/// What a node evaluates to over its grid.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per grid step.
    Scalar(Vec<f64>),
    String(String),
    /// Instant-vector series, points on the grid.
    Vector(Vec<VSeries>),
    /// Raw range-vector series (instant evaluation of `x[5m]` or a subquery only).
    Matrix(Vec<VSeries>),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::String(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// One evaluator: the shared query context and this node's grid.
#[derive(Clone, Copy)]
pub(crate) struct Ev<'a> {
    pub ctx: &'a Ctx<'a>,
    pub grid: Grid,
}

impl<'a> Ev<'a> {
    pub fn eval(&self, expr: &Expr) -> Result<Val> {
        self.ctx.check_now()?;
        match expr {
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; self.grid.len()])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.drop_name = true;
                        s.points.iter_mut().for_each(|p| p.v = -p.v);
                        for p in &mut s.hists {
                            p.h = Arc::new(crate::hist::mul(&p.h, -1.0));
                        }
                    }
                    Ok(Val::Vector(series))
                }
                other => Err(exec_err!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                )),
            },
            Expr::VectorSelector(vs) => self.vector_selector(vs, false).map(Val::Vector),
            Expr::MatrixSelector(ms) => {
                let input = self.matrix_input(&Expr::MatrixSelector(ms.clone()))?;
                Ok(Val::Matrix(input.raw_windows()))
            }
            Expr::Subquery(_) => {
                let input = self.matrix_input(expr)?;
                Ok(Val::Matrix(input.raw_windows()))
            }
            Expr::Aggregate(a) => aggregate::eval(self, a),
            Expr::Binary(b) => binary::eval(self, b),
            Expr::Call(c) => crate::functions::call(self, c),
            Expr::Extension(_) => Err(exec_err!("unsupported expression extension")),
        }
    }

    /// Evaluates an expression that must be an instant vector, for a node that reads float
    /// points only (every function and aggregation so far): native histogram points are
    /// dropped, and series left without points with them.
    pub fn eval_vector(&self, expr: &Expr) -> Result<Vec<VSeries>> {
        match self.eval(expr)? {
            Val::Vector(v) => Ok(floats_only(v)),
            other => Err(exec_err!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }

    /// Evaluates an expression that must be a scalar: one value per step.
    pub fn eval_scalar(&self, expr: &Expr) -> Result<Vec<f64>> {
        match self.eval(expr)? {
            Val::Scalar(v) => Ok(v),
            other => Err(exec_err!("expected scalar, got {}", other.type_name())),
        }
    }
}

/// Post-parse checks for what promql-parser accepts but Prometheus does not.
pub(crate) fn check(expr: &Expr) -> Result<()> {
    let bad = |m: &str| Err(Error::Parse(format!("parse error: {m}")));
    match expr {
        Expr::VectorSelector(vs) => {
            if !vs.matchers.or_matchers.is_empty() {
                return bad("unexpected \"or\" inside braces");
            }
            Ok(())
        }
        Expr::MatrixSelector(ms) => check(&Expr::VectorSelector(ms.vs.clone())),
        Expr::Paren(p) => check(&p.expr),
        Expr::Unary(u) => check(&u.expr),
        Expr::Subquery(s) => check(&s.expr),
        Expr::Binary(b) => {
            check(&b.lhs)?;
            check(&b.rhs)
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if op == "limitk" || op == "limit_ratio" {
                if let Some(p) = &a.param {
                    if p.value_type() != promql_parser::parser::value::ValueType::Scalar {
                        return bad(&format!(
                            "expected type scalar in aggregation parameter, got {}",
                            p.value_type()
                        ));
                    }
                }
            }
            if let Some(p) = &a.param {
                check(p)?;
            }
            check(&a.expr)
        }
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| check(a)),
        _ => Ok(()),
    }
}

/// Runs a parsed query over the grid `start..=end` by `step` (0: instant at `start`).
pub(crate) fn run(
    db: &dyn Queryable,
    expr: &Expr,
    source: Option<&str>,
    (start, end, step): (i64, i64, i64),
    settings: Settings,
) -> Result<QueryResult> {
    let ctx = Ctx {
        db,
        settings,
        samples: Cell::new(0),
        query_start: start,
        query_end: end,
        step,
        warnings: RefCell::new(Vec::new()),
        infos: RefCell::new(Vec::new()),
        ticks: Cell::new(0),
        source: source.map(|text| (text, expr)),
        positions: OnceCell::new(),
    };
    let instant = step == 0;
    let grid = Grid::new(start, end, step);
    let ev = Ev { ctx: &ctx, grid };
    if !instant {
        match expr.value_type() {
            promql_parser::parser::value::ValueType::Vector
            | promql_parser::parser::value::ValueType::Scalar => {}
            // A type error of the query, as in Prometheus (`invalid parameter "query"`).
            t => {
                return Err(Error::Parse(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                match t {
                    promql_parser::parser::value::ValueType::Matrix => "range vector",
                    _ => "string",
                }
            )))
            }
        }
    }
    let val = ev.eval(expr)?;
    let value = match val {
        Val::Scalar(v) if instant => Value::Scalar(Sample::new(start, v[0])),
        Val::Scalar(v) => Value::Matrix(vec![Series {
            labels: Labels::default(),
            samples: grid
                .times()
                .zip(v)
                .map(|(t, v)| Sample::new(t, v))
                .collect(),
            start_timestamps: Vec::new(),
            histograms: Vec::new(),
        }]),
        Val::String(s) => Value::String(start, s),
        Val::Vector(series) if instant => {
            let series = drop_names(series);
            let mut seen = std::collections::HashSet::with_capacity(series.len());
            for s in &series {
                if !seen.insert(&s.labels) {
                    return Err(exec_err!(
                        "vector cannot contain metrics with the same labelset"
                    ));
                }
            }
            Value::Vector(
                series
                    .into_iter()
                    .filter_map(|s| match (s.points.first(), s.hists.first()) {
                        (Some(p), _) => Some(Element {
                            labels: s.labels,
                            t: p.t,
                            v: p.v,
                            h: None,
                        }),
                        (None, Some(h)) => Some(Element {
                            labels: s.labels,
                            t: h.t,
                            v: 0.0,
                            h: Some(Arc::clone(&h.h)),
                        }),
                        (None, None) => None,
                    })
                    .collect(),
            )
        }
        Val::Vector(series) | Val::Matrix(series) => {
            let mut out: Vec<Series> = merge_same_labels(drop_names(series))?
                .into_iter()
                .map(|s| Series {
                    labels: s.labels,
                    samples: s.points,
                    start_timestamps: Vec::new(),
                    histograms: s
                        .hists
                        .into_iter()
                        .map(|p| augur_storage::histogram::HistogramSample {
                            t: p.t,
                            st: 0,
                            h: Arc::unwrap_or_clone(p.h),
                        })
                        .collect(),
                })
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
    };
    Ok(QueryResult {
        value,
        warnings: annotations(ctx.warnings),
        infos: annotations(ctx.infos),
    })
}

fn drop_names(mut series: Vec<VSeries>) -> Vec<VSeries> {
    for s in &mut series {
        if s.drop_name {
            s.labels = without_name(&s.labels);
            s.drop_name = false;
        }
    }
    series
}

/// Merges series with equal labels (once names were dropped, or after relabelling), as
/// Prometheus does; points at the same time are the duplicate-labelset error. The first
/// series' `drop_name` is kept.
pub(crate) fn merge_same_labels(series: Vec<VSeries>) -> Result<Vec<VSeries>> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<VSeries> = Vec::with_capacity(series.len());
    let mut merged = Vec::new();
    for s in series {
        match index.get(&s.labels) {
            Some(&i) => {
                merged.push(i);
                out[i].points.extend(s.points);
                out[i].hists.extend(s.hists);
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    for i in merged {
        let VSeries { points, hists, .. } = &mut out[i];
        points.sort_by_key(|p| p.t);
        hists.sort_by_key(|p| p.t);
        let clash = hists
            .iter()
            .any(|h| points.binary_search_by_key(&h.t, |p| p.t).is_ok());
        if clash
            || points.windows(2).any(|w| w[0].t == w[1].t)
            || hists.windows(2).any(|w| w[0].t == w[1].t)
        {
            return Err(exec_err!(
                "vector cannot contain metrics with the same labelset"
            ));
        }
    }
    Ok(out)
}

/// The series' float points alone: histogram points dropped, and series left empty with them
/// (see [`Ev::eval_vector`]).
pub(crate) fn floats_only(mut series: Vec<VSeries>) -> Vec<VSeries> {
    if series.iter().any(|s| !s.hists.is_empty()) {
        series.retain_mut(|s| {
            s.hists.clear();
            !s.points.is_empty()
        });
    }
    series
}

/// Whether a label is series metadata that goes with the name: `__name__`, `__type__`,
/// `__unit__` (Prometheus's `schema.IsMetadataLabel`).
pub(crate) fn is_metadata_label(name: &str) -> bool {
    name == METRIC_NAME || name == "__type__" || name == "__unit__"
}

/// `labels` without `__name__` (and the `__type__`/`__unit__` metadata that goes with it).
pub(crate) fn without_name(labels: &Labels) -> Labels {
    if !labels.iter().any(|l| is_metadata_label(l.name)) {
        return labels.clone();
    }
    build_labels(
        labels
            .iter()
            .filter(|l| !is_metadata_label(l.name))
            .map(|l| (l.name, l.value)),
    )
}

/// A label set as Prometheus 3 prints it in error messages: `{__name__="x", a="b"}`.
pub(crate) fn labels_string(labels: &Labels) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Builds labels from pairs already valid (taken from other label sets).
pub(crate) fn build_labels<'s>(pairs: impl Iterator<Item = (&'s str, &'s str)>) -> Labels {
    Labels::new(pairs).unwrap_or_default()
}
