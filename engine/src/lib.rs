//! PromQL evaluation (issue "Engine"): parses queries with promql-parser and evaluates the
//! AST against the storage traits (`augur_storage::Queryable`), never against the TSDB type.
//!
//! - [`Engine`] runs instant and range queries with per-query limits (timeout, cancellation,
//!   samples in memory, lookback delta).
//! - [`parse`] turns query text into an AST after our pre-rewrites ([`rewrite`]): Prometheus 3
//!   syntax promql-parser lacks, and implicit subqueries (`f(sum(x)[1h])` = `f(sum(x)[1h:])`).
//! - `eval` holds the evaluator, split by AST node kind; `functions` holds the functions,
//!   split by family.
//! - [`lint()`] warns about binary operations whose two sides can never match, so the query
//!   never produces output (a hand-written z-score against a label-less `avg(...)`).
//! - [`duration`] is Prometheus's duration syntax; [`promqltest`] runs the script format the
//!   upstream test corpus is written in.

pub mod duration;
mod error;
mod eval;
mod functions;
pub mod gofmt;
mod hist;
pub mod lint;
mod positions;
pub mod promqltest;
pub mod rewrite;
mod value;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_storage::Queryable;
pub use error::{Error, Result};
pub use lint::{lint, Warning};
pub use promql_parser::parser::Expr as PromExpr;
pub use value::{Element, GoExp, GoFloat, QueryResult, Value};

/// Engine-wide settings; every query may narrow them with [`QueryOptions`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus default 5m).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (Prometheus default 50 million).
    pub max_samples: usize,
    /// Default per-query timeout (Prometheus default 2m).
    pub timeout: Duration,
    /// Step of subqueries written without one (`x[1h:]`): the global evaluation interval.
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60 * 1000,
        }
    }
}

/// Per-query overrides.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Overrides the engine's lookback delta when set and positive.
    pub lookback_delta_ms: Option<i64>,
    /// Overrides the engine's timeout (the smaller one wins).
    pub timeout: Option<Duration>,
    /// Set to `true` from another thread to stop the query (e.g. the client went away).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Step for subqueries without one (Prometheus: the global evaluation interval).
    pub default_subquery_step_ms: Option<i64>,
    /// Step of implicit subqueries (`f(sum(x)[1h])`): the rule group's interval when rules
    /// evaluate; unset, a range query's step, else the default subquery step.
    pub implicit_subquery_step_ms: Option<i64>,
}

/// The largest number of points per series a range query may return (Prometheus's limit).
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Parses query text for an instant (`step_ms` = `range_ms` = 0) or range query, with our
/// pre-rewrites applied. Errors read like Prometheus's: `parse error: …`.
pub fn parse(query: &str, step_ms: i64, range_ms: i64) -> Result<PromExpr> {
    parse_with(query, step_ms, range_ms, (step_ms > 0).then_some(step_ms))
}

/// [`parse`] with the step of implicit subqueries (`f(sum(x)[1h])`): `None` leaves them to
/// the engine's default subquery step, as explicit `[1h:]` subqueries.
pub fn parse_with(
    query: &str,
    step_ms: i64,
    range_ms: i64,
    implicit_step_ms: Option<i64>,
) -> Result<PromExpr> {
    parse_text(query, step_ms, range_ms, implicit_step_ms).map(|(expr, _)| expr)
}

/// [`parse_with`], also saying whether the pre-rewrites changed the text.
fn parse_text(
    query: &str,
    step_ms: i64,
    range_ms: i64,
    implicit_step_ms: Option<i64>,
) -> Result<(PromExpr, bool)> {
    functions::register_extensions();
    let text = rewrite::rewrite_with(query, step_ms, range_ms, implicit_step_ms)
        .map_err(|e| Error::Parse(format!("parse error: {e}")))?;
    let expr = parse_raw(&text).map_err(|e| Error::Parse(format!("parse error: {e}")))?;
    eval::check(&expr)?;
    Ok((expr, text != query))
}

/// promql-parser's `parse`, without our rewrites. Its panics become errors: it converts a
/// numeric duration with `Duration::from_secs_f64`, which panics when the number is too big
/// for a `Duration` (`x[1e400]`); Prometheus answers "duration out of range".
pub fn parse_raw(text: &str) -> std::result::Result<PromExpr, String> {
    match std::panic::catch_unwind(|| promql_parser::parser::parse(text)) {
        Ok(parsed) => parsed,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("");
            Err(if msg.contains("Duration") {
                "duration out of range".to_owned()
            } else {
                format!("the query parser failed on this query ({msg})")
            })
        }
    }
}

/// Evaluates PromQL against any [`Queryable`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Engine {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `t` (ms).
    pub fn instant(
        &self,
        db: &dyn Queryable,
        query: &str,
        t: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        let (expr, rewritten) = parse_text(query, 0, 0, opts.implicit_subquery_step_ms)?;
        let source = (!rewritten).then_some(query);
        self.eval_source(db, &expr, source, (t, t, 0), opts)
    }

    /// Evaluates `query` at every `step` from `start` to `end` (ms, inclusive).
    pub fn range(
        &self,
        db: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        if step <= 0 {
            return Err(Error::BadParameter(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(Error::BadParameter(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end - start) / step > MAX_POINTS_PER_SERIES {
            return Err(Error::BadParameter(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let implicit = opts.implicit_subquery_step_ms.or(Some(step));
        let (expr, rewritten) = parse_text(query, step, end - start, implicit)?;
        let source = (!rewritten).then_some(query);
        self.eval_source(db, &expr, source, (start, end, step), opts)
    }

    /// Evaluates an already parsed expression; `step` 0 means an instant query at `start`.
    /// Its annotations carry no source positions (there is no text to point into).
    pub fn eval_expr(
        &self,
        db: &dyn Queryable,
        expr: &PromExpr,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        self.eval_source(db, expr, None, (start, end, step), opts)
    }

    /// Evaluates `expr`, parsed from `source` when given (for annotation positions), over
    /// `(start, end, step)`.
    fn eval_source(
        &self,
        db: &dyn Queryable,
        expr: &PromExpr,
        source: Option<&str>,
        (start, end, step): (i64, i64, i64),
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        let timeout = opts
            .timeout
            .map_or(self.opts.timeout, |t| t.min(self.opts.timeout));
        let settings = eval::Settings {
            lookback: opts
                .lookback_delta_ms
                .filter(|l| *l > 0)
                .unwrap_or(self.opts.lookback_delta_ms),
            max_samples: self.opts.max_samples,
            deadline: Instant::now().checked_add(timeout),
            cancel: opts.cancel.clone(),
            default_subquery_step: opts
                .default_subquery_step_ms
                .unwrap_or(self.opts.default_subquery_step_ms),
        };
        eval::run(db, expr, source, (start, end, step), settings)
    }
}

#[cfg(test)]
mod tests {
    /// promql-parser panics on a numeric duration too big for a `Duration` (found by fuzzing).
    #[test]
    fn a_numeric_duration_out_of_range_is_a_parse_error() {
        for q in [
            "x[1e400]",
            "x[11e308]",
            "x offset 1e309",
            "rate(x[5m:1e400])",
        ] {
            match super::parse(q, 0, 0) {
                Err(super::Error::Parse(m)) => {
                    assert_eq!(m, "parse error: duration out of range", "{q}")
                }
                other => panic!("{q}: {other:?}"),
            }
        }
    }
}
