//! What every rule shares: the query function it evaluates through, the environment of one
//! evaluation, its health, and recording rules (alerting rules are in [`crate::alerting`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use augur_engine::{Element, Value};

use crate::file::RuleSpec;
use crate::template;

/// Runs an instant query: `(expr, t_ms, group_interval_ms)`. Rules see the engine only through
/// this function, so they can be tested against any evaluator. Explicit subqueries without a
/// step (`x[1h:]`) use the global evaluation interval, as in Prometheus; Augur's implicit
/// subqueries (`f(sum(x)[1h])`) use the group's interval, which is the third argument.
pub type QueryFunc =
    Arc<dyn Fn(&str, i64, i64) -> Result<Value, augur_engine::Error> + Send + Sync>;

/// A label set as the owned map rules build alert and output labels in.
pub(crate) fn label_map(labels: &augur_storage::Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// One output sample of a rule, before it is written at the evaluation's timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesOut {
    pub labels: BTreeMap<String, String>,
    pub v: f64,
    /// A native histogram instead of `v` (a recording rule over histograms records them).
    pub h: Option<std::sync::Arc<augur_storage::histogram::Histogram>>,
}

/// Prometheus's rule health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Ok,
    Err,
}

impl Health {
    /// The name the rules API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// How a rule's latest evaluation went.
#[derive(Debug, Clone, Default)]
pub struct RuleStatus {
    pub health: Health,
    pub last_error: Option<String>,
    /// Evaluation timestamp (Unix ms) of the latest evaluation.
    pub last_eval_ms: Option<i64>,
    pub eval_duration: Duration,
}

impl RuleStatus {
    pub fn record(&mut self, ts: i64, took: Duration, err: Option<String>) {
        self.health = if err.is_some() {
            Health::Err
        } else {
            Health::Ok
        };
        self.last_error = err;
        self.last_eval_ms = Some(ts);
        self.eval_duration = took;
    }
}

/// Everything one group evaluation gives its rules.
pub struct EvalEnv<'a> {
    pub query: &'a QueryFunc,
    pub query_offset_ms: i64,
    /// The group's interval: the step of implicit subqueries.
    pub interval_ms: i64,
    /// Most series (recording) or alerts (alerting) per rule; 0 = no limit.
    pub limit: usize,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
}

impl std::fmt::Debug for EvalEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalEnv")
            .field("query_offset_ms", &self.query_offset_ms)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl EvalEnv<'_> {
    /// Runs `expr` at `t` and returns its samples: a scalar counts as one sample without
    /// labels, as in Prometheus; strings and range vectors are errors.
    pub fn query_vector(&self, expr: &str, t: i64) -> Result<Vec<Element>, String> {
        match (self.query)(expr, t, self.interval_ms).map_err(|e| e.to_string())? {
            Value::Vector(v) => Ok(v),
            Value::Scalar(s) => Ok(vec![Element {
                labels: augur_storage::Labels::default(),
                t: s.t,
                v: s.v,
                h: None,
            }]),
            other => Err(format!(
                "rule result is not a vector or scalar: got {}",
                other.type_name()
            )),
        }
    }

    /// What templates evaluated at `t` may call (`query` runs at `t`).
    pub fn template_host(&self, t: i64) -> TemplateHost<'_> {
        TemplateHost { env: self, t }
    }
}

/// The template functions' view of the engine and the evaluation time.
#[derive(Debug)]
pub struct TemplateHost<'a> {
    env: &'a EvalEnv<'a>,
    t: i64,
}

impl TemplateHost<'_> {
    pub fn env(&self) -> template::Env<'_> {
        template::Env {
            host: Some(self),
            external_url: self.env.external_url.to_string(),
            now_ms: self.t,
        }
    }
}

impl template::Host for TemplateHost<'_> {
    fn query(&self, q: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        Ok(self
            .env
            .query_vector(q, self.t)?
            .into_iter()
            .map(|e| (label_map(&e.labels), e.v))
            .collect())
    }
}

/// A recording rule.
#[derive(Debug)]
pub struct RecordingRule {
    pub spec: RuleSpec,
    pub status: RuleStatus,
}

impl RecordingRule {
    pub fn new(spec: RuleSpec) -> RecordingRule {
        RecordingRule {
            spec,
            status: RuleStatus::default(),
        }
    }

    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// Evaluates at `ts`: the query's samples renamed to the rule's name with its labels set.
    ///
    /// Augur extension: label values are rendered as templates (with `$labels`, `$value`,
    /// `now` and `date`), so `hour: '{{ printf "%02d" (now | date "15") }}'` records the hour
    /// of the evaluation. Prometheus writes recording-rule label values verbatim.
    pub fn eval(&self, ts: i64, env: &EvalEnv<'_>) -> Result<Vec<SeriesOut>, String> {
        let qt = ts - env.query_offset_ms;
        let samples = env.query_vector(&self.spec.expr, qt)?;
        let host = env.template_host(qt);
        let tenv = host.env();
        let tmpl_name = format!("__record_{}", self.name());
        let mut out: Vec<SeriesOut> = Vec::with_capacity(samples.len());
        for s in samples {
            let mut labels = label_map(&s.labels);
            let sample_labels = labels.clone();
            labels.insert("__name__".into(), self.name().to_string());
            for (k, v) in &self.spec.labels {
                let value = if v.contains("{{") {
                    template::expand(
                        &tmpl_name,
                        v,
                        &sample_labels,
                        env.external_labels,
                        env.external_url,
                        s.v,
                        &tenv,
                    )
                    .map_err(|e| format!("expanding label {k:?}: {e}"))?
                } else {
                    v.clone()
                };
                if value.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.clone(), value);
                }
            }
            out.push(SeriesOut {
                labels,
                v: s.v,
                h: s.h,
            });
        }
        let mut keys: Vec<&BTreeMap<String, String>> = out.iter().map(|s| &s.labels).collect();
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        if env.limit > 0 && out.len() > env.limit {
            return Err(format!(
                "exceeded limit of {} with {} series",
                env.limit,
                out.len()
            ));
        }
        Ok(out)
    }
}
