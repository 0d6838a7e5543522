//! Rule unit tests in promtool's format (`promtool test rules`), described in
//! `../shared/conformance/RULES_TEST_FORMAT.md`.
//!
//! For each test group: a fresh store from the [`Backend`]; input series are appended lazily,
//! only up to each evaluation step (so `offset -5m` cannot see data the step has not reached);
//! every rule group is evaluated at `start, start+E, …` up to the latest `eval_time` (groups in
//! `group_eval_order` first); firing alerts are compared after the step each `eval_time`
//! falls in; `promql_expr_test` queries run after the loop. Output and exit status follow
//! promtool: `SUCCESS`, or `FAILED:` with expected against got.
//!
//! Native histograms are input and expected in the series notation
//! (`{{schema:… sum:… count:… buckets:[…]}}`), compared field by field. `--diff`, `--debug`
//! and `--junit` are not implemented.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use augur_engine::duration::{format_duration, parse_duration};
use augur_engine::promqltest::load::tsdb_hint;
use augur_engine::promqltest::script::{parse_histogram, parse_labels, parse_series_line, Point};
use augur_engine::GoExp;
use augur_storage::histogram::Histogram;
use augur_storage::{Labels, Sample};
use serde::Deserialize;

use crate::file::{self, scalar_string, ParseOptions};
use crate::group::{Group, GroupContext, Rule, Storage};
use crate::rule::QueryFunc;
use crate::Alert;

/// A fresh store and a query function over it, for one test group. The argument is the test
/// file's evaluation interval: subqueries without a step must use it, as in promtool.
pub type Backend<'a> =
    dyn Fn(i64) -> Result<(Arc<dyn Storage + Send + Sync>, QueryFunc), String> + 'a;

/// An alert as tests compare it: (labels with `alertname`, annotations).
type LabeledAlert = (BTreeMap<String, String>, BTreeMap<String, String>);

/// promtool's flags.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Run only test groups whose name matches one of these (unanchored).
    pub run: Vec<regex::Regex>,
    /// Accept unknown keys in rule files (never in the test file).
    pub ignore_unknown_fields: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<serde_yaml::Value>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    fuzzy_compare: bool,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    name: Option<String>,
    interval: Option<serde_yaml::Value>,
    start_timestamp: Option<serde_yaml::Value>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: serde_yaml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: serde_yaml::Value,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    #[serde(default)]
    eval_time: serde_yaml::Value,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
    histogram: Option<String>,
}

/// Runs one test file; returns promtool's report text and whether every group passed.
pub fn run_file(path: &Path, opts: &TestOptions, backend: &Backend<'_>) -> (String, bool) {
    let mut out = format!("Unit Testing:  {}\n", path.display());
    let errs = run_file_errors(path, opts, backend);
    if errs.is_empty() {
        out.push_str("  SUCCESS\n");
        (out, true)
    } else {
        out.push_str("  FAILED:\n");
        for e in &errs {
            out.push_str(e);
            out.push('\n');
        }
        (out, false)
    }
}

fn run_file_errors(path: &Path, opts: &TestOptions, backend: &Backend<'_>) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("    cannot read {}: {e}", path.display())],
    };
    let tf: TestFile = match serde_yaml::from_str(&text) {
        Ok(t) => t,
        Err(e) => return vec![format!("    {}: {e}", path.display())],
    };
    let eval_interval = match tf.evaluation_interval.as_ref() {
        None => 60_000,
        Some(v) => match duration_of(v) {
            Ok(d) if d > 0 => d,
            _ => {
                return vec![format!(
                    "    evaluation_interval: not a valid duration: {}",
                    scalar_string(v).unwrap_or_default()
                )]
            }
        },
    };
    let mut seen = std::collections::BTreeSet::new();
    for g in &tf.group_eval_order {
        if !seen.insert(g) {
            return vec![format!("    group name repeated in evaluation order: {g}")];
        }
    }
    // Rule files, relative to the test file, with globs.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in &tf.rule_files {
        let full = dir.join(pattern);
        match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                let found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                if found.is_empty() {
                    eprintln!("  WARNING: no file match pattern {}", full.display());
                }
                files.extend(found);
            }
            Err(e) => return vec![format!("    invalid rule file pattern {pattern:?}: {e}")],
        }
    }
    let parse_opts = ParseOptions {
        ignore_unknown_fields: opts.ignore_unknown_fields,
        ..ParseOptions::default()
    };
    let mut specs = Vec::new();
    let mut errs = Vec::new();
    for f in &files {
        match file::load(&f.to_string_lossy(), parse_opts) {
            Ok(rf) => specs.extend(rf.groups),
            Err(e) => errs.extend(e.iter().map(|e| format!("    {e}"))),
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    // Groups listed in group_eval_order run first, in that order.
    if !tf.group_eval_order.is_empty() {
        for name in &tf.group_eval_order {
            if !specs.iter().any(|s| &s.name == name) {
                return vec![format!(
                    "    group {name:?} in group_eval_order not found in the rule files"
                )];
            }
        }
        specs.sort_by_key(|s| {
            tf.group_eval_order
                .iter()
                .position(|n| n == &s.name)
                .unwrap_or(usize::MAX)
        });
    }
    for (i, tg) in tf.tests.iter().enumerate() {
        let name = tg.name.clone().unwrap_or_else(|| format!("unnamed#{i}"));
        if !opts.run.is_empty() && !opts.run.iter().any(|r| r.is_match(&name)) {
            continue;
        }
        let cx = TestCx {
            eval_interval,
            fuzzy: tf.fuzzy_compare,
            specs: &specs,
        };
        errs.extend(cx.run_group(tg, backend));
    }
    errs
}

struct TestCx<'a> {
    eval_interval: i64,
    fuzzy: bool,
    specs: &'a [crate::file::GroupSpec],
}

impl TestCx<'_> {
    fn run_group(&self, tg: &TestGroup, backend: &Backend<'_>) -> Vec<String> {
        match self.try_run_group(tg, backend) {
            Ok(errs) => errs,
            Err(e) => vec![format!("    {e}")],
        }
    }

    fn try_run_group(&self, tg: &TestGroup, backend: &Backend<'_>) -> Result<Vec<String>, String> {
        let interval = match &tg.interval {
            Some(v) => duration_of(v)?,
            None => self.eval_interval,
        };
        let start = match &tg.start_timestamp {
            None => 0,
            Some(v) => start_timestamp(v)?,
        };
        // Input samples (floats or native histograms), sorted by time, appended lazily.
        let mut input: Vec<(i64, Labels, InputValue)> = Vec::new();
        for s in &tg.input_series {
            let line = format!(
                "{} {}",
                s.series,
                scalar_string(&s.values).unwrap_or_default()
            );
            let parsed = parse_series_line(&line, 0)
                .map_err(|e| format!("series {:?}: {}", s.series, e.message))?;
            // Hints as Prometheus's TSDB reads them back (a histogram after another is no
            // reset unless it is one).
            let mut prev: Option<&Histogram> = None;
            for (k, p) in parsed.points.iter().enumerate() {
                match p {
                    Point::Value(v) => {
                        prev = None;
                        input.push((
                            start + k as i64 * interval,
                            parsed.labels.clone(),
                            InputValue::Float(*v),
                        ))
                    }
                    Point::Empty => {}
                    Point::Histogram(h, _) => {
                        let read = tsdb_hint(h, prev).map_or_else(|| h.clone(), Box::new);
                        prev = Some(h);
                        input.push((
                            start + k as i64 * interval,
                            parsed.labels.clone(),
                            InputValue::Histogram(read),
                        ))
                    }
                }
            }
        }
        input.sort_by_key(|s| s.0);

        let mut alert_tests: Vec<(i64, &AlertTest)> = Vec::new();
        for t in &tg.alert_rule_test {
            if t.alertname.is_empty() {
                return Err("an alert_rule_test item has no alertname".into());
            }
            alert_tests.push((duration_of(&t.eval_time)?, t));
        }
        let mut expr_tests: Vec<(i64, &ExprTest)> = Vec::new();
        for t in &tg.promql_expr_test {
            expr_tests.push((duration_of(&t.eval_time)?, t));
        }
        let max_eval = alert_tests
            .iter()
            .map(|t| t.0)
            .chain(expr_tests.iter().map(|t| t.0))
            .max()
            .unwrap_or(0);

        let e = self.eval_interval;
        let (store, query) = backend(e)?;
        let cx = GroupContext {
            query: query.clone(),
            store: store.clone(),
            notify: None,
            external_labels: tg.external_labels.clone(),
            external_url: tg.external_url.clone(),
            resend_delay_ms: 60_000,
            outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
        };
        let groups: Vec<Group> = self
            .specs
            .iter()
            .map(|s| Group::new(s, e, 0, true))
            .collect();

        // Firing alerts by (eval_time index) collected as the loop passes each test's step.
        let mut got_alerts: Vec<Option<Vec<LabeledAlert>>> = vec![None; alert_tests.len()];
        let mut errs = Vec::new();
        let mut next_input = 0;
        let mut ts = start;
        while ts <= start + max_eval {
            let mut app = store.appender();
            while next_input < input.len() && input[next_input].0 <= ts {
                let (t, l, v) = &input[next_input];
                match v {
                    InputValue::Float(v) => app.append(l, *t, *v),
                    InputValue::Histogram(h) => app.append_histogram(0, l, *t, h, 0),
                }
                .map_err(|e| e.to_string())?;
                next_input += 1;
            }
            app.commit().map_err(|e| e.to_string())?;
            for g in &groups {
                g.eval(ts, &cx);
                for r in &g.rules {
                    let r = crate::group::lock(r);
                    if let Some(err) = &r.status().last_error {
                        errs.push(format!(
                            "    rule: {}, time: {}, err: {err}",
                            r.name(),
                            go_duration(ts)
                        ));
                    }
                }
            }
            if !errs.is_empty() {
                return Ok(errs);
            }
            for (i, (at, t)) in alert_tests.iter().enumerate() {
                // The state after the step the eval_time falls in.
                if ts <= start + at && start + at < ts + e {
                    got_alerts[i] = Some(firing(&groups, &t.alertname));
                }
            }
            ts += e;
        }

        for (i, (at, t)) in alert_tests.iter().enumerate() {
            let mut got = got_alerts[i].take().unwrap_or_default();
            let mut exp: Vec<LabeledAlert> = t
                .exp_alerts
                .iter()
                .map(|a| {
                    let mut l = a.exp_labels.clone();
                    l.insert("alertname".into(), t.alertname.clone());
                    (l, a.exp_annotations.clone())
                })
                .collect();
            got.sort();
            exp.sort();
            if got != exp {
                errs.push(format!(
                    "    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    t.alertname,
                    format_duration(*at),
                    show_alerts(&exp),
                    show_alerts(&got)
                ));
            }
        }

        for (at, t) in &expr_tests {
            let got = match query_samples(&query, &t.expr, start + at) {
                Ok(g) => g,
                Err(err) => {
                    errs.push(format!(
                        "    expr: {:?}, time: {}, err: {err}",
                        t.expr,
                        format_duration(*at)
                    ));
                    continue;
                }
            };
            let mut exp = Vec::new();
            for s in &t.exp_samples {
                let labels = if s.labels.trim().is_empty() {
                    Labels::default()
                } else {
                    parse_labels(s.labels.trim())
                        .map_err(|e| format!("expr {:?}: labels {:?}: {e}", t.expr, s.labels))?
                };
                let h = match &s.histogram {
                    Some(text) => {
                        Some(std::sync::Arc::new(parse_histogram(text).map_err(|e| {
                            format!("expr {:?}: histogram {text:?}: {e}", t.expr)
                        })?))
                    }
                    None => None,
                };
                exp.push((labels, s.value, h));
            }
            let mut got = got;
            got.sort_by(|a, b| a.0.cmp(&b.0));
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            let same = got.len() == exp.len()
                && got.iter().zip(&exp).all(|(g, x)| {
                    g.0 == x.0
                        && match (&x.2, &g.2) {
                            (None, None) => self.float_eq(x.1, g.1),
                            (Some(e), Some(h)) => self.histogram_eq(e, h),
                            _ => false,
                        }
                });
            if !same {
                errs.push(format!(
                    "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                    t.expr,
                    format_duration(*at),
                    show_samples(&exp),
                    show_samples(&got)
                ));
            }
        }
        Ok(errs)
    }

    /// Histograms equal field by field: layout exactly, counts and sum by [`Self::float_eq`]
    /// (or both NaN), and the counter reset hint.
    fn histogram_eq(&self, exp: &Histogram, got: &Histogram) -> bool {
        let f = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || self.float_eq(a, b);
        let all =
            |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| f(*x, *y));
        exp.schema == got.schema
            && exp.zero_threshold == got.zero_threshold
            && f(exp.zero_count, got.zero_count)
            && f(exp.count, got.count)
            && f(exp.sum, got.sum)
            && exp.positive_spans == got.positive_spans
            && exp.negative_spans == got.negative_spans
            && all(&exp.positive_buckets, &got.positive_buckets)
            && all(&exp.negative_buckets, &got.negative_buckets)
            && exp.custom_values == got.custom_values
            && exp.reset_hint == got.reset_hint
    }

    /// Exact equality, or one ULP apart with `fuzzy_compare`; NaN never equals NaN.
    fn float_eq(&self, exp: f64, got: f64) -> bool {
        if exp == got {
            return true;
        }
        self.fuzzy
            && exp.is_finite()
            && got.is_finite()
            && exp.signum() == got.signum()
            && exp.to_bits().abs_diff(got.to_bits()) <= 1
    }
}

/// Firing alerts (labels, annotations) of every alerting rule named `name`.
fn firing(groups: &[Group], name: &str) -> Vec<LabeledAlert> {
    let mut out = Vec::new();
    for g in groups {
        for r in &g.rules {
            if let Rule::Alerting(a) = &*crate::group::lock(r) {
                if a.name() != name {
                    continue;
                }
                out.extend(
                    a.active_alerts()
                        .into_iter()
                        .filter(|x| x.state == crate::AlertState::Firing)
                        .map(|x: &Alert| (x.labels.clone(), x.annotations.clone())),
                );
            }
        }
    }
    out
}

/// A query's samples: labels, float value, and the native histogram when it is one.
type GotSample = (Labels, f64, Option<std::sync::Arc<Histogram>>);

fn query_samples(query: &QueryFunc, expr: &str, t: i64) -> Result<Vec<GotSample>, String> {
    match query(expr, t, 0).map_err(|e| e.to_string())? {
        augur_engine::Value::Vector(v) => Ok(v.into_iter().map(|e| (e.labels, e.v, e.h)).collect()),
        augur_engine::Value::Scalar(Sample { v, .. }) => Ok(vec![(Labels::default(), v, None)]),
        other => Err(format!(
            "expression evaluated to {}, want a vector or scalar",
            other.type_name()
        )),
    }
}

fn show_labels<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let inner: Vec<String> = pairs.map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn show_alerts(list: &[LabeledAlert]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (l, a)) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\n          {i}:\n            Labels:{}\n            Annotations:{}",
            show_labels(l.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            show_labels(a.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        ));
    }
    s.push_str("\n        ]");
    s
}

fn show_samples(list: &[GotSample]) -> String {
    if list.is_empty() {
        return "nil".into();
    }
    list.iter()
        .map(|(l, v, h)| {
            let value = match h {
                Some(h) => show_histogram(h),
                None => GoExp::upper(*v).to_string(),
            };
            format!(
                "{} {value}",
                show_labels(l.iter().map(|x| (x.name, x.value)))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A histogram in the series notation (`{{schema:0 count:2 sum:3 buckets:[2]}}`).
fn show_histogram(h: &Histogram) -> String {
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| GoExp::upper(*x).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "{{{{schema:{} count:{} sum:{}",
        h.schema,
        GoExp::upper(h.count),
        GoExp::upper(h.sum)
    );
    if h.zero_count != 0.0 || h.zero_threshold != 0.0 {
        s.push_str(&format!(
            " z_bucket:{} z_bucket_w:{}",
            GoExp::upper(h.zero_count),
            GoExp::upper(h.zero_threshold)
        ));
    }
    if let Some(span) = h.positive_spans.first() {
        s.push_str(&format!(
            " offset:{} buckets:[{}]",
            span.offset,
            list(&h.positive_buckets)
        ));
    }
    if let Some(span) = h.negative_spans.first() {
        s.push_str(&format!(
            " n_offset:{} n_buckets:[{}]",
            span.offset,
            list(&h.negative_buckets)
        ));
    }
    s.push_str("}}");
    s
}

/// Go's `time.Duration.String()` of `ms` milliseconds since the epoch, as promtool prints
/// eval times (`1m0s`, `2h30m0s`, `500ms`).
fn go_duration(ms: i64) -> String {
    crate::template::duration_string(ms.saturating_mul(1_000_000))
}

fn duration_of(v: &serde_yaml::Value) -> Result<i64, String> {
    if v.is_null() {
        return Ok(0);
    }
    let s = scalar_string(v).unwrap_or_default();
    parse_duration(&s).ok_or_else(|| format!("not a valid duration string: {s:?}"))
}

/// `start_timestamp`: Unix seconds (fractions allowed) or RFC 3339.
fn start_timestamp(v: &serde_yaml::Value) -> Result<i64, String> {
    if let Some(f) = v.as_f64() {
        return Ok((f * 1000.0).round() as i64);
    }
    let s = scalar_string(v).unwrap_or_default();
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1000.0).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(&s)
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("start_timestamp {s:?}: {e}"))
}

/// One input sample's value.
enum InputValue {
    Float(f64),
    Histogram(Box<Histogram>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_format() {
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(9_000_000), "2h30m0s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(500), "500ms");
    }
}
