//! `GET /api/v1/rules` and `GET /api/v1/alerts`, in Prometheus's JSON shapes
//! (prometheus `web/api/v1/api.go`: `rules()`, `alerts()`, `RuleGroup`, `AlertingRule`,
//! `RecordingRule`, `Alert`).
//!
//! Times are RFC 3339 in UTC with nanosecond precision trimmed as Go prints them; a rule
//! never evaluated reports Go's zero time `0001-01-01T00:00:00Z`. Alert values are Go's
//! `%e`-style shortest form (`1e+00`, [`GoExp`]), as Prometheus sends them.

use std::sync::Arc;

use augur_engine::GoExp;
use augur_rules::{Alert, Group, Rule};
use axum::extract::State;
use serde_json::{json, Map, Value};

use crate::api_v1::Params;
use crate::error::{ApiError, ApiResponse, ApiResult};
use crate::server::AppState;

/// Go's zero `time.Time` as JSON.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Which rules a `/api/v1/rules` request wants.
#[derive(Debug, Default)]
struct Filter {
    alerts: bool,
    records: bool,
    names: Vec<String>,
    groups: Vec<String>,
    files: Vec<String>,
    exclude_alerts: bool,
}

impl Filter {
    fn from_params(p: &Params) -> Result<Filter, ApiError> {
        let (alerts, records) = match p.get("type").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => (true, true),
            Some("alert") => (true, false),
            Some("record") => (false, true),
            Some(other) => {
                return Err(ApiError::BadData(format!(
                    "invalid query parameter type='{other}'"
                )))
            }
        };
        let exclude_alerts = match p.get("exclude_alerts") {
            None | Some("") => false,
            Some(v) => v.parse::<bool>().map_err(|_| {
                ApiError::BadData(format!(
                    "parsing exclude_alerts param: invalid boolean {v:?}"
                ))
            })?,
        };
        let own = |k: &str| p.all(k).into_iter().map(str::to_string).collect();
        Ok(Filter {
            alerts,
            records,
            names: own("rule_name[]"),
            groups: own("rule_group[]"),
            files: own("file[]"),
            exclude_alerts,
        })
    }

    fn narrows_groups(&self) -> bool {
        !self.names.is_empty() || !self.groups.is_empty() || !self.files.is_empty()
    }
}

/// `GET /api/v1/rules`.
pub async fn rules(State(st): State<Arc<AppState>>, p: Params) -> ApiResult {
    let filter = Filter::from_params(&p)?;
    let groups = st.rule_groups();
    let mut out = Vec::new();
    for g in &groups {
        if !filter.groups.is_empty() && !filter.groups.contains(&g.name) {
            continue;
        }
        if !filter.files.is_empty() && !filter.files.contains(&g.file) {
            continue;
        }
        let mut rules = Vec::new();
        for r in &g.rules {
            let r = r.lock().unwrap_or_else(|e| e.into_inner());
            if !filter.names.is_empty() && !filter.names.iter().any(|n| n == r.name()) {
                continue;
            }
            match &*r {
                Rule::Alerting(a) if filter.alerts => {
                    let alerts: Vec<Value> = if filter.exclude_alerts {
                        Vec::new()
                    } else {
                        a.active_alerts().into_iter().map(alert_json).collect()
                    };
                    let mut m = Map::new();
                    m.insert("state".into(), json!(a.state().as_str()));
                    m.insert("name".into(), json!(a.name()));
                    m.insert("query".into(), json!(a.spec.expr));
                    m.insert("duration".into(), json!(a.spec.for_ms as f64 / 1000.0));
                    m.insert(
                        "keepFiringFor".into(),
                        json!(a.spec.keep_firing_for_ms as f64 / 1000.0),
                    );
                    m.insert("labels".into(), json!(a.spec.labels));
                    m.insert("annotations".into(), json!(a.spec.annotations));
                    m.insert("alerts".into(), json!(alerts));
                    status_fields(&mut m, r.status());
                    m.insert("type".into(), json!("alerting"));
                    rules.push(Value::Object(m));
                }
                Rule::Recording(rec) if filter.records => {
                    let mut m = Map::new();
                    m.insert("name".into(), json!(rec.name()));
                    m.insert("query".into(), json!(rec.spec.expr));
                    if !rec.spec.labels.is_empty() {
                        m.insert("labels".into(), json!(rec.spec.labels));
                    }
                    status_fields(&mut m, r.status());
                    m.insert("type".into(), json!("recording"));
                    rules.push(Value::Object(m));
                }
                _ => {}
            }
        }
        let filtered = filter.narrows_groups() || !(filter.alerts && filter.records);
        if filtered && rules.is_empty() {
            continue;
        }
        out.push(group_json(g, rules));
    }
    Ok(ApiResponse::new(json!({ "groups": out })))
}

/// `GET /api/v1/alerts`: every pending and firing alert.
pub async fn alerts(State(st): State<Arc<AppState>>) -> ApiResult {
    let mut out = Vec::new();
    for g in st.rule_groups() {
        for r in &g.rules {
            if let Rule::Alerting(a) = &*r.lock().unwrap_or_else(|e| e.into_inner()) {
                out.extend(a.active_alerts().into_iter().map(alert_json));
            }
        }
    }
    Ok(ApiResponse::new(json!({ "alerts": out })))
}

fn group_json(g: &Group, rules: Vec<Value>) -> Value {
    let (last, took) = g.last_evaluation();
    json!({
        "name": g.name,
        "file": g.file,
        "rules": rules,
        "interval": g.interval_ms as f64 / 1000.0,
        "limit": g.limit,
        "evaluationTime": took.as_secs_f64(),
        "lastEvaluation": last.map_or_else(|| ZERO_TIME.to_string(), rfc3339),
    })
}

fn status_fields(m: &mut Map<String, Value>, s: &augur_rules::RuleStatus) {
    m.insert("health".into(), json!(s.health.as_str()));
    if let Some(e) = &s.last_error {
        m.insert("lastError".into(), json!(e));
    }
    m.insert(
        "evaluationTime".into(),
        json!(s.eval_duration.as_secs_f64()),
    );
    m.insert(
        "lastEvaluation".into(),
        json!(s
            .last_eval_ms
            .map_or_else(|| ZERO_TIME.to_string(), rfc3339)),
    );
}

fn alert_json(a: &Alert) -> Value {
    let mut m = Map::new();
    m.insert("labels".into(), json!(a.labels));
    m.insert("annotations".into(), json!(a.annotations));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("activeAt".into(), json!(rfc3339(a.active_at)));
    if let Some(k) = a.keep_firing_since {
        m.insert("keepFiringSince".into(), json!(rfc3339(k)));
    }
    m.insert("value".into(), json!(GoExp::lower(a.value).to_string()));
    Value::Object(m)
}

/// RFC 3339 in UTC as Go's `time.RFC3339Nano` prints it (trailing zeros of the fraction cut).
pub fn rfc3339(ms: i64) -> String {
    let Some(d) = chrono::DateTime::from_timestamp_millis(ms) else {
        return ZERO_TIME.to_string();
    };
    let mut s = d.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let f = format!(".{frac:03}");
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}
