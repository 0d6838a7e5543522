//! Rule groups: rules evaluated in order at one timestamp, their output written through the
//! storage traits, their alerts handed to the notifier.
//!
//! Within an evaluation each rule's output is committed before the next rule runs, so later
//! rules see earlier results of the same evaluation. A series a rule wrote last time and not
//! this time gets a staleness marker, so queries stop seeing it at once instead of after the
//! lookback delta. A rule that fails keeps its previous series (no markers) and records the
//! error in its health; the other rules run as usual.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use augur_storage::{Appendable, Labels, Queryable, STALE_NAN};

use crate::alerting::{Alert, AlertingRule};
use crate::file::{GroupSpec, RuleKind};
use crate::rule::{EvalEnv, QueryFunc, RecordingRule, RuleStatus, SeriesOut};

/// Storage as rules need it: they write results and read `ALERTS_FOR_STATE` back.
pub trait Storage: Appendable + Queryable {}
impl<T: Appendable + Queryable + ?Sized> Storage for T {}

/// Hands alerts to whoever sends them to Alertmanager: `(rule expression, alerts)`.
pub type NotifyFunc = Arc<dyn Fn(&str, &[Alert]) + Send + Sync>;

/// A recording or an alerting rule.
#[derive(Debug)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => r.name(),
            Rule::Alerting(a) => a.name(),
        }
    }

    pub fn status(&self) -> &RuleStatus {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(a) => &a.status,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.spec.expr,
            Rule::Alerting(a) => &a.spec.expr,
        }
    }
}

/// What every group of a manager shares.
#[derive(Clone)]
pub struct GroupContext {
    pub query: QueryFunc,
    pub store: Arc<dyn Storage + Send + Sync>,
    pub notify: Option<NotifyFunc>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// Least time between two notifications of the same firing alert (Prometheus 1m).
    pub resend_delay_ms: i64,
    /// How long Augur may have been down for `for` state to be restored (Prometheus 1h).
    pub outage_tolerance_ms: i64,
    /// Least `for` time left to an alert after a restore (Prometheus 10m).
    pub for_grace_period_ms: i64,
}

impl std::fmt::Debug for GroupContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupContext")
            .field("external_labels", &self.external_labels)
            .field("external_url", &self.external_url)
            .finish_non_exhaustive()
    }
}

/// Group-level bookkeeping, behind its own lock.
#[derive(Debug, Default)]
struct GroupState {
    /// Series each rule wrote in its latest successful evaluation, for staleness markers.
    previous: Vec<HashSet<Labels>>,
    last_eval_ms: Option<i64>,
    eval_duration: Duration,
}

/// A group of rules with its schedule.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: usize,
    /// Each rule is locked only while it is evaluated or read.
    pub rules: Vec<Mutex<Rule>>,
    state: Mutex<GroupState>,
    pub iterations_total: AtomicU64,
    pub iterations_missed: AtomicU64,
    pub eval_failures: AtomicU64,
}

impl Group {
    /// Builds a group from its spec; `restored` says whether alerting rules may write `ALERTS`
    /// at once (false at startup, until state has been restored).
    pub fn new(
        spec: &GroupSpec,
        default_interval_ms: i64,
        default_offset_ms: i64,
        restored: bool,
    ) -> Group {
        let rules: Vec<Mutex<Rule>> = spec
            .rules
            .iter()
            .map(|r| {
                Mutex::new(match r.kind {
                    RuleKind::Record(_) => Rule::Recording(RecordingRule::new(r.clone())),
                    RuleKind::Alert(_) => Rule::Alerting(AlertingRule::new(r.clone(), restored)),
                })
            })
            .collect();
        Group {
            name: spec.name.clone(),
            file: spec.file.clone(),
            interval_ms: spec.interval_ms.unwrap_or(default_interval_ms).max(1),
            query_offset_ms: spec.query_offset_ms.unwrap_or(default_offset_ms),
            limit: spec.limit,
            state: Mutex::new(GroupState {
                previous: vec![HashSet::new(); rules.len()],
                ..GroupState::default()
            }),
            rules,
            iterations_total: AtomicU64::new(0),
            iterations_missed: AtomicU64::new(0),
            eval_failures: AtomicU64::new(0),
        }
    }

    /// Timestamp (Unix ms) of the latest evaluation and how long it took.
    pub fn last_evaluation(&self) -> (Option<i64>, Duration) {
        let st = lock(&self.state);
        (st.last_eval_ms, st.eval_duration)
    }

    /// The group's evaluation slot at or before `now_ms`: groups are spread over their
    /// interval by a stable hash of file and name (Prometheus's `EvalTimestamp`), so many
    /// groups with one interval do not all run at the same instant.
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let interval_ns = i128::from(self.interval_ms) * 1_000_000;
        let offset_ns = i128::from(self.hash()) % interval_ns;
        let adj = i128::from(now_ms) * 1_000_000 - offset_ns;
        let base = adj - adj.rem_euclid(interval_ns);
        ((base + offset_ns) / 1_000_000) as i64
    }

    /// xxhash64 of the label set `{file, name}` as Prometheus hashes labels.
    fn hash(&self) -> u64 {
        let mut b = Vec::with_capacity(self.file.len() + self.name.len() + 12);
        for (n, v) in [("file", &self.file), ("name", &self.name)] {
            b.extend_from_slice(n.as_bytes());
            b.push(0xff);
            b.extend_from_slice(v.as_bytes());
            b.push(0xff);
        }
        xxhash_rust::xxh64::xxh64(&b, 0)
    }

    /// Evaluates every rule at `ts` (Unix ms), in order.
    pub fn eval(&self, ts: i64, cx: &GroupContext) {
        let started = Instant::now();
        let env = EvalEnv {
            query: &cx.query,
            query_offset_ms: self.query_offset_ms,
            interval_ms: self.interval_ms,
            limit: self.limit,
            external_labels: &cx.external_labels,
            external_url: &cx.external_url,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let mut rule = lock(rule);
            let t0 = Instant::now();
            let result = match &mut *rule {
                Rule::Recording(r) => r.eval(ts, &env),
                Rule::Alerting(a) => a.eval(ts, &env),
            };
            // As in Prometheus, alerts are sent when the evaluation succeeded, even if writing
            // its output then fails (a full disk must not silence the alert about it).
            let evaluated = result.is_ok();
            let err = match result {
                Ok(out) => self
                    .write(i, ts - self.query_offset_ms, out, &*cx.store)
                    .err(),
                Err(e) => Some(e),
            };
            if err.is_some() {
                self.eval_failures.fetch_add(1, Ordering::Relaxed);
            }
            match &mut *rule {
                Rule::Recording(r) => r.status.record(ts, t0.elapsed(), err),
                Rule::Alerting(a) => {
                    a.set_status(ts, t0.elapsed(), err);
                    if evaluated {
                        let alerts = a.alerts_to_send(ts, cx.resend_delay_ms, self.interval_ms);
                        if let (Some(notify), false) = (&cx.notify, alerts.is_empty()) {
                            notify(a.spec.expr.trim(), &alerts);
                        }
                    }
                }
            }
        }
        self.iterations_total.fetch_add(1, Ordering::Relaxed);
        let mut st = lock(&self.state);
        st.last_eval_ms = Some(ts);
        st.eval_duration = started.elapsed();
    }

    /// Writes one rule's output at `t`, with staleness markers for series it no longer has.
    fn write(
        &self,
        rule: usize,
        t: i64,
        out: Vec<SeriesOut>,
        store: &dyn Storage,
    ) -> Result<(), String> {
        let mut now: HashSet<Labels> = HashSet::with_capacity(out.len());
        let mut app = store.appender();
        for s in out {
            let labels = Labels::new(s.labels.iter())
                .map_err(|e| format!("invalid labels in rule output: {e}"))?;
            match &s.h {
                Some(h) => app.append_histogram(0, &labels, t, h, 0),
                None => app.append(&labels, t, s.v),
            }
            .map_err(|e| e.to_string())?;
            now.insert(labels);
        }
        let mut st = lock(&self.state);
        for gone in st.previous[rule].difference(&now) {
            app.append(gone, t, STALE_NAN).map_err(|e| e.to_string())?;
        }
        // Rejections (an out-of-order or duplicate sample, e.g. after a clock step) affect
        // only those samples, as in Prometheus; the rule is not failed for them.
        app.commit().map_err(|e| e.to_string())?;
        st.previous[rule] = now;
        Ok(())
    }

    /// Writes staleness markers at `t` for everything this group wrote last (the group is
    /// going away on a reload).
    pub fn mark_stale(&self, t: i64, store: &dyn Storage) {
        let st = lock(&self.state);
        let mut app = store.appender();
        for set in &st.previous {
            for l in set {
                let _ = app.append(l, t, STALE_NAN);
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(group = %self.name, error = %e, "writing staleness markers failed");
        }
    }

    /// Restores alert `for` state from `ALERTS_FOR_STATE` (see [`AlertingRule::restore`]).
    pub fn restore(&self, ts: i64, cx: &GroupContext) {
        for rule in &self.rules {
            if let Rule::Alerting(a) = &mut *lock(rule) {
                if let Err(e) = a.restore(
                    ts,
                    &*cx.store,
                    cx.outage_tolerance_ms,
                    cx.for_grace_period_ms,
                ) {
                    tracing::warn!(group = %self.name, rule = %a.name(), error = %e,
                        "restoring alert state failed");
                }
            }
        }
    }

    /// Takes over rule state (alerts, health, series for staleness) from the group of the
    /// same file and name before a reload, matching rules by name and expression.
    pub fn take_state(&self, old: &Group) {
        let mut old_st = lock(&old.state);
        let mut st = lock(&self.state);
        let mut used = vec![false; old.rules.len()];
        for (i, rule) in self.rules.iter().enumerate() {
            let mut rule = lock(rule);
            let found = old.rules.iter().enumerate().position(|(j, o)| {
                !used[j] && {
                    let o = lock(o);
                    o.name() == rule.name() && o.expr() == rule.expr()
                }
            });
            let Some(j) = found else { continue };
            used[j] = true;
            st.previous[i] = std::mem::take(&mut old_st.previous[j]);
            let mut o = lock(&old.rules[j]);
            match (&mut *rule, &mut *o) {
                (Rule::Alerting(new), Rule::Alerting(prev)) => {
                    let prev = std::mem::replace(prev, AlertingRule::new(prev.spec.clone(), true));
                    new.take_state(prev);
                }
                (Rule::Recording(new), Rule::Recording(prev)) => {
                    new.status = prev.status.clone();
                }
                _ => {}
            }
        }
        st.last_eval_ms = old_st.last_eval_ms;
        st.eval_duration = old_st.eval_duration;
        // Series of rules that did not survive the reload must go stale.
        for (j, u) in used.iter().enumerate() {
            if *u {
                old_st.previous[j].clear();
            }
        }
    }
}

/// Locks a mutex, recovering from a panic in another evaluation (its data is still usable:
/// every update leaves it consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
