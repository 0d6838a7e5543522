//! Runs promqltest scripts against the engine: `load`/`clear` go to a fresh store from the
//! caller's factory (`load_with_nhcb` also loads each classic histogram as a custom-bucket
//! native histogram, as Prometheus's runner does), each `eval` is checked as FORMAT.md §7
//! says (histograms compared as promqltest compares them, see [`super::compare`]), and every
//! eval ends up passed or failed with the reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use augur_storage::histogram::Histogram;
use augur_storage::{Appendable, Labels, Queryable, Sample, Series};

use super::compare::{float_eq, histogram_eq};
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
    for cmd in &cmds {
        match cmd {
            Command::Clear => {
                drop(std::mem::replace(&mut store, new_store()));
            }
            Command::Load {
                step,
                series,
                nhcb,
                line,
            } => {
                let converted;
                let series = if *nhcb {
                    converted = [series.clone(), super::load::nhcb_lines(series)].concat();
                    &converted
                } else {
                    series
                };
                if let Err(e) = load(&store, *step, series) {
                    out.failed += 1;
                    out.failures
                        .push(format!("{file}:{line}: load failed: {e}"));
                }
            }
            Command::Eval(ev) => match check_eval(engine, &store, ev) {
                Ok(()) => out.passed += 1,
                Err(why) => {
                    out.failed += 1;
                    out.failures
                        .push(format!("{file}:{}: {}: {why}", ev.line, ev.expr));
                }
            },
        }
    }
    out
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
                elems
                    .iter()
                    .map(|e| (&e.labels, e.v, e.h.as_deref()))
                    .collect(),
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

/// One element of an instant result: labels, float value, histogram value.
type Got<'a> = (&'a Labels, f64, Option<&'a Histogram>);

fn compare_vector(lines: &[SeriesLine], got: Vec<Got<'_>>, ordered: bool) -> Result<(), String> {
    if lines.len() != got.len() {
        return Err(format!(
            "expected {} series, got {}: {}",
            lines.len(),
            got.len(),
            show_vector(&got)
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        let found = if ordered {
            (got[i].0 == &line.labels).then_some(got[i])
        } else {
            got.iter().find(|g| g.0 == &line.labels).copied()
        };
        let Some((_, v, h)) = found else {
            return Err(format!(
                "expected {}{}, got {}",
                line.labels,
                if ordered {
                    format!(" at position {i}")
                } else {
                    String::new()
                },
                show_vector(&got)
            ));
        };
        match (line.points.as_slice(), h) {
            ([Point::Value(want)], None) => {
                if !float_eq(*want, v) {
                    return Err(format!("{}: expected {want}, got {v}", line.labels));
                }
            }
            ([Point::Histogram(want, hint_set)], Some(h)) => {
                if !histogram_eq(want, h, *hint_set) {
                    return Err(format!(
                        "{}: expected {}, got {}",
                        line.labels,
                        show_histogram(want),
                        show_histogram(h)
                    ));
                }
            }
            ([Point::Value(want)], Some(h)) => {
                return Err(format!(
                    "{}: expected float {want}, got histogram {}",
                    line.labels,
                    show_histogram(h)
                ))
            }
            ([Point::Histogram(want, _)], None) => {
                return Err(format!(
                    "{}: expected histogram {}, got float {v}",
                    line.labels,
                    show_histogram(want)
                ))
            }
            _ => return Err(format!("line {}: expected one value", line.line)),
        }
    }
    Ok(())
}

/// A histogram in the `{{…}}` notation of the scripts (every bucket with its index).
fn show_histogram(h: &Histogram) -> String {
    let side = |spans, counts| {
        crate::hist::side(spans, counts)
            .iter()
            .map(|(i, c)| format!("{i}:{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "{{{{schema:{} count:{} sum:{} z_bucket:{} z_bucket_w:{} buckets:[{}] n_buckets:[{}]",
        h.schema,
        h.count,
        h.sum,
        h.zero_count,
        h.zero_threshold,
        side(&h.positive_spans, &h.positive_buckets),
        side(&h.negative_spans, &h.negative_buckets)
    );
    if !h.custom_values.is_empty() {
        let _ = write!(s, " custom_values:{:?}", h.custom_values);
    }
    let _ = write!(s, " hint:{:?}}}}}", h.reset_hint);
    s
}

fn show_vector(got: &[Got<'_>]) -> String {
    let mut s = String::from("[");
    for (i, (l, v, h)) in got.iter().enumerate().take(10) {
        if i > 0 {
            s.push_str(", ");
        }
        match h {
            Some(h) => {
                let _ = write!(s, "{l} {}", show_histogram(h));
            }
            None => {
                let _ = write!(s, "{l} {v}");
            }
        }
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
        let want_h: Vec<(i64, &Histogram, bool)> = line
            .points
            .iter()
            .enumerate()
            .filter_map(|(k, p)| match p {
                Point::Histogram(h, hint_set) => Some((start + k as i64 * step, &**h, *hint_set)),
                _ => None,
            })
            .collect();
        if want_h.len() != s.histograms.len() {
            return Err(format!(
                "{}: expected {} histograms, got {} (at {:?})",
                line.labels,
                want_h.len(),
                s.histograms.len(),
                s.histograms.iter().map(|h| h.t).collect::<Vec<_>>()
            ));
        }
        for ((t, w, hint_set), g) in want_h.iter().zip(&s.histograms) {
            if *t != g.t || !histogram_eq(w, &g.h, *hint_set) {
                return Err(format!(
                    "{}: expected {}@{t}, got {}@{}",
                    line.labels,
                    show_histogram(w),
                    show_histogram(&g.h),
                    g.t
                ));
            }
        }
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
