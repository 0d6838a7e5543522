//! Runs promqltest scripts against the engine: `load`/`clear` go to a fresh store from the
//! caller's factory, each `eval` is checked as FORMAT.md §7 says, and every eval ends up
//! passed, failed (with the reason) or skipped (with the reason: only evals that need native
//! histograms, which Augur does not store yet, are skipped).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use augur_storage::{Appendable, Labels, Queryable, Sample, Series};

use super::compare::float_eq;
use super::load::load;
use super::script::{
    parse_script, Command, Eval, EvalAt, Expect, Expected, Point, SeriesLine, TextMatch,
};
use crate::{Engine, EngineOptions, QueryOptions, Value};

/// A store the runner can load into and query.
pub trait Store: Appendable + Queryable {}
impl<T: Appendable + Queryable> Store for T {}

/// The result of running scripts.
#[derive(Debug, Default)]
pub struct Outcome {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// `file:line: expr: reason` of every failed eval.
    pub failures: Vec<String>,
    /// How many evals were skipped, by reason.
    pub skip_reasons: BTreeMap<String, usize>,
    /// `file:line` of every skipped eval.
    pub skipped_evals: Vec<String>,
}

impl Outcome {
    pub fn merge(&mut self, o: Outcome) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.failures.extend(o.failures);
        for (k, v) in o.skip_reasons {
            *self.skip_reasons.entry(k).or_default() += v;
        }
        self.skipped_evals.extend(o.skipped_evals);
    }

    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The engine settings scripts assume (FORMAT.md §6.1).
pub fn script_engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: 50_000_000,
        ..EngineOptions::default()
    })
}

/// Runs one script. `new_store` is called for a fresh, empty store at the start and after
/// every `clear`.
pub fn run_script<S: Store>(
    file: &str,
    text: &str,
    engine: &Engine,
    new_store: &mut dyn FnMut() -> S,
) -> Outcome {
    let mut out = Outcome::default();
    let cmds = match parse_script(text) {
        Ok(c) => c,
        Err(e) => {
            out.failed += 1;
            out.failures
                .push(format!("{file}: script does not parse: {e}"));
            return out;
        }
    };
    let mut store = new_store();
    // Metric names that hold native histograms in the current store.
    let mut hist_metrics: BTreeSet<String> = BTreeSet::new();
    for cmd in &cmds {
        match cmd {
            Command::Clear => {
                drop(std::mem::replace(&mut store, new_store()));
                hist_metrics.clear();
            }
            Command::Load {
                step,
                series,
                nhcb,
                line,
            } => {
                for s in series {
                    let name = s.labels.metric_name().unwrap_or("").to_owned();
                    if s.points.iter().any(|p| matches!(p, Point::Histogram(_))) {
                        hist_metrics.insert(name.clone());
                    }
                    if *nhcb {
                        if let Some(base) = name.strip_suffix("_bucket") {
                            hist_metrics.insert(base.to_owned());
                        }
                    }
                }
                if let Err(e) = load(&store, *step, series) {
                    out.failed += 1;
                    out.failures
                        .push(format!("{file}:{line}: load failed: {e}"));
                }
            }
            Command::Eval(ev) => {
                if let Some(reason) = skip_reason(ev, &hist_metrics) {
                    out.skipped += 1;
                    *out.skip_reasons.entry(reason).or_default() += 1;
                    out.skipped_evals.push(format!("{file}:{}", ev.line));
                    continue;
                }
                match check_eval(engine, &store, ev) {
                    Ok(()) => out.passed += 1,
                    Err(why) => {
                        out.failed += 1;
                        out.failures
                            .push(format!("{file}:{}: {}: {why}", ev.line, ev.expr));
                    }
                }
            }
        }
    }
    out
}

/// Why an eval cannot run on Augur, if it cannot: it needs native histograms.
fn skip_reason(ev: &Eval, hist_metrics: &BTreeSet<String>) -> Option<String> {
    let hist_expected = |lines: &[SeriesLine]| {
        lines
            .iter()
            .any(|l| l.points.iter().any(|p| matches!(p, Point::Histogram(_))))
    };
    let expected_hist = match &ev.expected {
        Expected::Series(l) => hist_expected(l),
        Expected::RangeVector { series, .. } => hist_expected(series),
        _ => false,
    };
    if expected_hist || ev.expr.contains("{{") {
        return Some("native histogram in the expected result".into());
    }
    if hist_metrics.is_empty() {
        return None;
    }
    // A selector without a metric name may select histogram series too.
    let bytes = ev.expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            names.push(&ev.expr[start..i]);
        } else if c == b'"' || c == b'\'' || c == b'`' {
            // Skip string literals (label values may mention metric names).
            let q = c;
            i += 1;
            while i < bytes.len() && bytes[i] != q {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    if names.iter().any(|n| hist_metrics.contains(*n))
        || (has_nameless_selector(&ev.expr) && name_regexes_may_match(&ev.expr, hist_metrics))
    {
        return Some("reads native histogram series".into());
    }
    None
}

/// Whether the `__name__` matchers in the query could select one of `names`: true unless
/// every `__name__=~"…"`/`__name__="…"` matcher is known to match none of them.
fn name_regexes_may_match(q: &str, names: &BTreeSet<String>) -> bool {
    let mut found = false;
    for (i, _) in q.match_indices("__name__") {
        let rest = &q[i + "__name__".len()..];
        let (op_len, anchored) = if rest.starts_with("=~\"") {
            (3, true)
        } else if rest.starts_with("=\"") {
            (2, false)
        } else {
            return true;
        };
        let body = &rest[op_len..];
        let Some(end) = body.find('"') else {
            return true;
        };
        let text = body[..end].replace("\\\\", "\\");
        found = true;
        let pattern = if anchored {
            format!("^(?:{text})$")
        } else {
            format!("^{}$", regex::escape(&text))
        };
        match regex::Regex::new(&pattern) {
            Ok(re) if names.iter().any(|n| re.is_match(n)) => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    !found
}

/// Whether the query has a `{…}` selector with no metric name before it.
fn has_nameless_selector(q: &str) -> bool {
    let b = q.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'{' && {
            let prev = b[..i].iter().rev().find(|c| !c.is_ascii_whitespace());
            !prev.is_some_and(|p| p.is_ascii_alphanumeric() || *p == b'_' || *p == b':')
        }
    })
}

fn text_matches(m: &TextMatch, actual: &str) -> bool {
    match m {
        TextMatch::Exact(s) => s == actual,
        TextMatch::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(actual)),
    }
}

fn check_eval<S: Store>(engine: &Engine, store: &S, ev: &Eval) -> Result<(), String> {
    let opts = QueryOptions::default();
    let result = match (ev.at, &ev.expected) {
        (EvalAt::Instant(_), Expected::RangeVector { end, .. }) => {
            engine.instant(store, &ev.expr, *end, &opts)
        }
        (EvalAt::Instant(t), _) => engine.instant(store, &ev.expr, t, &opts),
        (EvalAt::Range { start, end, step }, _) => {
            engine.range(store, &ev.expr, start, end, step, &opts)
        }
    };
    let fail = ev.expects.iter().find_map(|e| match e {
        Expect::Fail(m) => Some(m),
        _ => None,
    });
    let result = match (result, fail) {
        (Err(e), Some(m)) => {
            let msg = e.to_string();
            return match m {
                Some(m) if !text_matches(m, &msg) => Err(format!(
                    "failed as expected but with {msg:?}, expected {m:?}"
                )),
                _ => Ok(()),
            };
        }
        (Err(e), None) => return Err(format!("unexpected error: {e}")),
        (Ok(_), Some(_)) => return Err("expected the query to fail, it succeeded".into()),
        (Ok(r), None) => r,
    };
    for e in &ev.expects {
        match e {
            Expect::Warn(m) => check_annotations("warning", &result.warnings, m.as_ref())?,
            Expect::Info(m) => check_annotations("info", &result.infos, m.as_ref())?,
            Expect::NoWarn if !result.warnings.is_empty() => {
                return Err(format!("expected no warnings, got {:?}", result.warnings))
            }
            Expect::NoInfo if !result.infos.is_empty() => {
                return Err(format!("expected no infos, got {:?}", result.infos))
            }
            _ => {}
        }
    }
    let ordered = ev.expects.contains(&Expect::Ordered);
    compare_value(ev, &result.value, ordered)
}

fn check_annotations(kind: &str, got: &[String], m: Option<&TextMatch>) -> Result<(), String> {
    match m {
        None if got.is_empty() => Err(format!("expected a {kind} annotation, got none")),
        Some(m) if !got.iter().any(|a| text_matches(m, a)) => {
            Err(format!("expected {kind} {m:?}, got {got:?}"))
        }
        _ => Ok(()),
    }
}

fn compare_value(ev: &Eval, value: &Value, ordered: bool) -> Result<(), String> {
    match (&ev.expected, value) {
        (Expected::Scalar(want), Value::Scalar(s)) => {
            if float_eq(*want, s.v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want}, got {}", s.v))
            }
        }
        (Expected::String(want), Value::String(_, got)) => {
            if want == got {
                Ok(())
            } else {
                Err(format!("expected string {want:?}, got {got:?}"))
            }
        }
        (Expected::Series(lines), Value::Vector(elems)) => {
            if let EvalAt::Range { .. } = ev.at {
                return Err("range eval returned a vector".into());
            }
            compare_vector(
                lines,
                elems.iter().map(|e| (&e.labels, e.v)).collect(),
                ordered,
            )
        }
        (Expected::Series(lines), Value::Matrix(series)) => match ev.at {
            EvalAt::Range { start, step, .. } => compare_matrix(lines, series, start, step),
            EvalAt::Instant(_) => Err(format!(
                "expected an instant vector, got a range vector of {} series",
                series.len()
            )),
        },
        (Expected::Series(lines), Value::Scalar(s)) => match ev.at {
            EvalAt::Range { .. } => Err("range eval returned a scalar".into()),
            EvalAt::Instant(_) => {
                if lines.is_empty() {
                    return Err(format!("expected empty vector, got scalar {}", s.v));
                }
                Err(format!("expected a vector, got scalar {}", s.v))
            }
        },
        (
            Expected::RangeVector {
                start,
                step,
                series: lines,
                ..
            },
            Value::Matrix(series),
        ) => compare_matrix(lines, series, *start, *step),
        (want, got) => Err(format!(
            "result type {} does not match the expectation {:?}",
            got.type_name(),
            match want {
                Expected::Series(_) => "series",
                Expected::Scalar(_) => "scalar",
                Expected::String(_) => "string",
                Expected::RangeVector { .. } => "range vector",
            }
        )),
    }
}

fn compare_vector(
    lines: &[SeriesLine],
    got: Vec<(&Labels, f64)>,
    ordered: bool,
) -> Result<(), String> {
    if lines.len() != got.len() {
        return Err(format!(
            "expected {} series, got {}: {}",
            lines.len(),
            got.len(),
            show_vector(&got)
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        let want = match line.points.as_slice() {
            [Point::Value(v)] => *v,
            _ => return Err(format!("line {}: expected one value", line.line)),
        };
        let found = if ordered {
            (got[i].0 == &line.labels).then_some(got[i])
        } else {
            got.iter().find(|g| g.0 == &line.labels).copied()
        };
        match found {
            None => {
                return Err(format!(
                    "expected {} {want}{}, got {}",
                    line.labels,
                    if ordered {
                        format!(" at position {i}")
                    } else {
                        String::new()
                    },
                    show_vector(&got)
                ))
            }
            Some((_, v)) if !float_eq(want, v) => {
                return Err(format!("{}: expected {want}, got {v}", line.labels))
            }
            _ => {}
        }
    }
    Ok(())
}

fn show_vector(got: &[(&Labels, f64)]) -> String {
    let mut s = String::from("[");
    for (i, (l, v)) in got.iter().enumerate().take(10) {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{l} {v}");
    }
    if got.len() > 10 {
        let _ = write!(s, ", … {} more", got.len() - 10);
    }
    s.push(']');
    s
}

fn compare_matrix(
    lines: &[SeriesLine],
    got: &[Series],
    start: i64,
    step: i64,
) -> Result<(), String> {
    if got.windows(2).any(|w| w[0].labels >= w[1].labels) {
        return Err("range result is not sorted by labels".into());
    }
    if lines.len() != got.len() {
        let names: Vec<String> = got.iter().take(10).map(|s| s.labels.to_string()).collect();
        return Err(format!(
            "expected {} series, got {}: {names:?}",
            lines.len(),
            got.len()
        ));
    }
    for line in lines {
        let Some(s) = got.iter().find(|s| s.labels == line.labels) else {
            let names: Vec<String> = got.iter().take(10).map(|s| s.labels.to_string()).collect();
            return Err(format!(
                "expected series {} not returned; got {names:?}",
                line.labels
            ));
        };
        let want: Vec<Sample> = line
            .points
            .iter()
            .enumerate()
            .filter_map(|(k, p)| match p {
                Point::Value(v) => Some(Sample::new(start + k as i64 * step, *v)),
                _ => None,
            })
            .collect();
        let same = want.len() == s.samples.len()
            && want
                .iter()
                .zip(&s.samples)
                .all(|(w, g)| w.t == g.t && float_eq(w.v, g.v));
        if !same {
            let show = |v: &[Sample]| -> String {
                v.iter()
                    .take(12)
                    .map(|p| format!("{}@{}", p.v, p.t))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Err(format!(
                "{}: expected [{}], got [{}]",
                line.labels,
                show(&want),
                show(&s.samples)
            ));
        }
    }
    Ok(())
}
