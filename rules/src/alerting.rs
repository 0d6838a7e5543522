//! Alerting rules: Prometheus's alert state machine.
//!
//! Each evaluation at `ts` runs the rule's query at `ts - query_offset`. Every result sample
//! becomes an alert identified by its labels (the sample's labels without `__name__`, then
//! the rule's labels rendered as templates, then `alertname`):
//!
//! - new → **pending** with `active_at = ts`; pending → **firing** once `ts - active_at >=
//!   for` (at once when `for` is 0);
//! - an alert missing from the result: a firing alert with `keep_firing_for` keeps firing
//!   until that long after it was last seen; otherwise it becomes **inactive** with
//!   `resolved_at = ts`. Pending alerts are forgotten at once; resolved ones are kept 15
//!   minutes so Alertmanager hears about the resolution;
//! - annotations are rendered at every evaluation with `$labels`, `$value`,
//!   `$externalLabels` and `$externalURL`; a template error renders as
//!   `<error expanding template: …>` into the annotation, as Prometheus does.
//!
//! Every active alert yields an `ALERTS{alertstate="pending"|"firing"}` sample (value 1) and
//! an `ALERTS_FOR_STATE` sample whose value is `active_at` in Unix seconds, which is what
//! [`AlertingRule::restore`] reads back after a restart. Both are written only once the
//! rule's state has been restored (or restoring was not needed), as in Prometheus.

use std::collections::{BTreeMap, HashMap};

use augur_storage::{MatchOp, Matcher, Queryable};

use crate::file::RuleSpec;
use crate::rule::{label_map, EvalEnv, Health, RuleStatus, SeriesOut};
use crate::template;

/// How long a resolved alert is kept (and re-sent) after it resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    /// Prometheus's name for the state, as in the `alertstate` label and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The sample value of the latest evaluation that returned this alert.
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    /// When Alertmanager should consider the alert resolved if it hears nothing more.
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Whether the notifier should be told about this alert at `ts` (Prometheus's rule: never
    /// while pending; at once after a resolution; otherwise every `resend_delay`).
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        self.last_sent_at
            .is_none_or(|l| l.saturating_add(resend_delay_ms) < ts)
    }
}

/// An alerting rule and its alerts.
#[derive(Debug)]
pub struct AlertingRule {
    pub spec: RuleSpec,
    /// Alerts by their label set.
    active: HashMap<BTreeMap<String, String>, Alert>,
    /// Whether state was restored (or needed no restoring); until then no `ALERTS` series
    /// are written, so a restart does not write a false "pending" history.
    restored: bool,
    pub status: RuleStatus,
}

impl AlertingRule {
    pub fn new(spec: RuleSpec, restored: bool) -> AlertingRule {
        AlertingRule {
            spec,
            active: HashMap::new(),
            restored,
            status: RuleStatus::default(),
        }
    }

    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// The alerts that are pending or firing (resolved ones kept for re-sending are not).
    pub fn active_alerts(&self) -> Vec<&Alert> {
        let mut out: Vec<&Alert> = self
            .active
            .values()
            .filter(|a| a.state != AlertState::Inactive)
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// The rule's overall state: firing if any alert fires, else pending if any is pending.
    pub fn state(&self) -> AlertState {
        let mut state = AlertState::Inactive;
        for a in self.active.values() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => state = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        state
    }

    /// Takes over the alerts of the same rule from before a reload.
    pub fn take_state(&mut self, old: AlertingRule) {
        self.active = old.active;
        self.restored = old.restored;
        self.status = old.status;
    }

    /// Evaluates at `ts`; returns the `ALERTS`/`ALERTS_FOR_STATE` samples to write (at
    /// `ts - query_offset`).
    pub fn eval(&mut self, ts: i64, env: &EvalEnv<'_>) -> Result<Vec<SeriesOut>, String> {
        let qt = ts - env.query_offset_ms;
        let samples = env.query_vector(&self.spec.expr, qt)?;
        let name = self.spec.name().to_string();
        let tmpl_name = format!("__alert_{name}");
        let host = env.template_host(qt);
        let tenv = host.env();

        let mut seen: HashMap<BTreeMap<String, String>, Alert> = HashMap::new();
        for s in samples {
            let mut sample_labels = label_map(&s.labels);
            sample_labels.remove("__name__");
            let expand = |text: &str| {
                template::expand(
                    &tmpl_name,
                    text,
                    &sample_labels,
                    env.external_labels,
                    env.external_url,
                    s.v,
                    &tenv,
                )
                .unwrap_or_else(|e| expansion_error(&tmpl_name, &e))
            };
            let mut labels = sample_labels.clone();
            for (k, v) in &self.spec.labels {
                let rendered = expand(v);
                if rendered.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.clone(), rendered);
                }
            }
            labels.insert("alertname".into(), name.clone());
            let annotations: BTreeMap<String, String> = self
                .spec
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), expand(v)))
                .collect();
            if seen.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            seen.insert(
                labels.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value: s.v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }

        for (key, fresh) in seen.iter() {
            match self.active.get_mut(key) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = fresh.value;
                    a.annotations = fresh.annotations.clone();
                }
                _ => {
                    self.active.insert(key.clone(), fresh.clone());
                }
            }
        }

        let mut out = Vec::new();
        let mut active_count = 0usize;
        let mut forget = Vec::new();
        let mut keys: Vec<_> = self.active.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let a = self.active.get_mut(&key).expect("key taken from map");
            if seen.contains_key(&key) {
                a.keep_firing_since = None;
            } else {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.spec.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.spec.keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    forget.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            }
            active_count += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.spec.for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push(alert_series(a, "ALERTS", Some(a.state), 1.0));
                out.push(alert_series(
                    a,
                    "ALERTS_FOR_STATE",
                    None,
                    (a.active_at.div_euclid(1000)) as f64,
                ));
            }
        }
        for key in forget {
            self.active.remove(&key);
        }
        if env.limit > 0 && active_count > env.limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {} with {} alerts",
                env.limit, active_count
            ));
        }
        Ok(out)
    }

    /// The alerts to hand to the notifier after an evaluation at `ts`, marking them sent.
    /// `ValidUntil` is four resend periods ahead (the period is the larger of the resend delay
    /// and the group interval), as in Prometheus.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let delta = resend_delay_ms.max(interval_ms);
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                a.valid_until = ts + 4 * delta;
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Restores `active_at` of pending and firing alerts from `ALERTS_FOR_STATE` after a
    /// restart, with Prometheus's rules: rules whose `for` is shorter than the grace period
    /// are not restored; an alert that had been firing stays as it was; one that had less
    /// than the grace period left gets exactly the grace period; otherwise its clock is moved
    /// on by the downtime, so time spent down does not count towards `for`.
    pub fn restore(
        &mut self,
        ts: i64,
        store: &dyn Queryable,
        outage_tolerance_ms: i64,
        grace_period_ms: i64,
    ) -> Result<(), String> {
        let hold = self.spec.for_ms;
        if hold < grace_period_ms {
            self.restored = true;
            return Ok(());
        }
        let querier = store
            .querier(ts - outage_tolerance_ms, ts)
            .map_err(|e| e.to_string())?;
        for a in self.active.values_mut() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let mut matchers = vec![Matcher::new(MatchOp::Equal, "__name__", "ALERTS_FOR_STATE")
                .map_err(|e| e.to_string())?];
            for (k, v) in &a.labels {
                matchers.push(Matcher::new(MatchOp::Equal, k, v).map_err(|e| e.to_string())?);
            }
            let series = querier.select(&matchers).map_err(|e| e.to_string())?;
            // The series must carry exactly the alert's labels (plus the name).
            let Some(s) = series.iter().find(|s| s.labels.len() == a.labels.len() + 1) else {
                continue;
            };
            let Some(last) = s
                .samples
                .iter()
                .rev()
                .find(|p| !augur_storage::is_stale_nan(p.v))
            else {
                continue;
            };
            let down_at = last.t.div_euclid(1000) * 1000;
            let mut restored_active_at = (last.v as i64) * 1000;
            let spent_pending = down_at - restored_active_at;
            let remaining = hold - spent_pending;
            if remaining <= 0 {
                // It was firing when we went down; the next evaluation decides.
            } else if remaining < grace_period_ms {
                restored_active_at = ts + grace_period_ms - hold;
            } else {
                restored_active_at += ts - down_at;
            }
            a.active_at = restored_active_at;
        }
        self.restored = true;
        Ok(())
    }

    /// Records how the latest evaluation went.
    pub fn set_status(&mut self, ts: i64, took: std::time::Duration, err: Option<String>) {
        self.status.record(ts, took, err);
    }

    pub fn health(&self) -> Health {
        self.status.health
    }
}

/// What an annotation or label shows when its template fails, worded as Prometheus's
/// expander words it.
fn expansion_error(name: &str, e: &template::TemplateError) -> String {
    let stage = match e {
        template::TemplateError::Parse { .. } => "parsing",
        template::TemplateError::Exec { .. } => "executing",
    };
    format!("<error expanding template: error {stage} template {name}: {e}>")
}

/// An `ALERTS`-style sample for `a`.
fn alert_series(a: &Alert, name: &str, state: Option<AlertState>, v: f64) -> SeriesOut {
    let mut labels = a.labels.clone();
    labels.insert("__name__".into(), name.into());
    if let Some(s) = state {
        labels.insert("alertstate".into(), s.as_str().into());
    }
    SeriesOut { labels, v, h: None }
}
