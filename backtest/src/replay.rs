//! `augur rules replay`: rule groups evaluated over a past time range, as `serve` would have
//! evaluated them, with their results written back (like `promtool tsdb create-blocks-from
//! rules` and `vmalert -replay`, but with the group semantics of `serve`).
//!
//! Each group runs at its own evaluation slots (`Group::eval_timestamp`: the interval, offset by
//! the hash of file and name) from the first slot at or after the start to the end, through the
//! same [`Group::eval`] the server uses: recording results are visible to later rules and later
//! evaluations, vanished series get staleness markers, alerts go through pending/firing with
//! `for` and `keep_firing_for`, `ALERTS`/`ALERTS_FOR_STATE` are written. Groups run one after
//! another, in file order.
//!
//! **Speed.** Evaluating one instant query per rule per slot is what makes replays slow.
//! When no rule of a group reads what the same rule or a later one writes (its own output,
//! `ALERTS` of a later alerting rule, or a selector without a metric name that might match
//! them), the group runs *rule by rule*: every slot of rule 1, then every slot of rule 2, …
//! which sees exactly what the server's interleaved order would have shown it. Then each
//! rule's query is evaluated with the range engine over a block of slots at once (a range
//! query's point at `t` is the instant query at `t`), unless it uses `start()`, `end()` or
//! `step()`, whose meaning differs between the two. Other groups run slot by slot, with an
//! instant query per rule and slot.
//!
//! Results go to an [`Overlay`] first and are backfilled into the store at the end (a dry run
//! drops them), so replayed history can land below data the store already holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use augur_engine::{Element, Engine, PromExpr, QueryOptions, Value};
use augur_rules::rule::EvalEnv;
use augur_rules::{AlertState, Group, GroupContext, GroupSpec, QueryFunc, Rule, RuleKind};
use augur_storage::Series;

use crate::error::{Error, Result};
use crate::overlay::{Base, FlushReport, Overlay};
use crate::record;

/// Slots evaluated by one range query.
const BLOCK_SLOTS: usize = 720;

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Inclusive range (ms) of evaluation times.
    pub start: i64,
    pub end: i64,
    /// The interval of groups that set none (the config's `global.evaluation_interval`).
    pub default_interval_ms: i64,
    /// Write nothing.
    pub dry_run: bool,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

/// One stretch of time an alert was firing.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub labels: BTreeMap<String, String>,
    /// When it started firing (ms).
    pub start: i64,
    /// The first evaluation that no longer saw it firing; `None` if it still fired at the end.
    pub end: Option<i64>,
}

/// How one rule did over the replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleReport {
    pub file: String,
    pub group: String,
    pub name: String,
    pub alerting: bool,
    pub evaluations: u64,
    pub failures: u64,
    pub first_error: Option<String>,
    /// Firing episodes in order of start (alerting rules).
    pub episodes: Vec<Episode>,
}

impl RuleReport {
    /// Total firing time (ms), counting an episode still open at the end up to `end`.
    pub fn firing_ms(&self, end: i64) -> i64 {
        self.episodes
            .iter()
            .map(|e| e.end.unwrap_or(end) - e.start)
            .sum()
    }
}

/// How a group was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rule by rule; `ranged` rules had their queries evaluated by range queries.
    RuleByRule { ranged: usize },
    /// Slot by slot: a rule reads what it or a later rule writes.
    SlotBySlot,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    pub rules: Vec<RuleReport>,
    pub groups: Vec<(String, usize, Mode)>,
    /// Samples the rules wrote (held in memory until the flush).
    pub samples: usize,
    pub flush: Option<FlushReport>,
    pub seconds: f64,
}

/// Metric names an expression reads; `None` when a selector has no fixed name.
fn names_read(e: &PromExpr, out: &mut BTreeSet<String>) -> Option<()> {
    match e {
        PromExpr::Aggregate(a) => {
            names_read(&a.expr, out)?;
            if let Some(p) = &a.param {
                names_read(p, out)?;
            }
        }
        PromExpr::Unary(u) => names_read(&u.expr, out)?,
        PromExpr::Binary(b) => {
            names_read(&b.lhs, out)?;
            names_read(&b.rhs, out)?;
        }
        PromExpr::Paren(p) => names_read(&p.expr, out)?,
        PromExpr::Subquery(s) => names_read(&s.expr, out)?,
        PromExpr::NumberLiteral(_) | PromExpr::StringLiteral(_) => {}
        PromExpr::VectorSelector(vs) => selector_name(vs, out)?,
        PromExpr::MatrixSelector(ms) => selector_name(&ms.vs, out)?,
        PromExpr::Call(c) => {
            for a in &c.args.args {
                names_read(a, out)?;
            }
        }
        PromExpr::Extension(_) => return None,
    }
    Some(())
}

fn selector_name(
    vs: &promql_parser::parser::VectorSelector,
    out: &mut BTreeSet<String>,
) -> Option<()> {
    if !vs.matchers.or_matchers.is_empty() {
        return None;
    }
    let name = vs.name.clone().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, promql_parser::label::MatchOp::Equal))
            .map(|m| m.value.clone())
    })?;
    out.insert(name);
    Some(())
}

/// Names a rule writes.
fn names_written(kind: &RuleKind) -> Vec<String> {
    match kind {
        RuleKind::Record(n) => vec![n.clone()],
        RuleKind::Alert(_) => vec!["ALERTS".into(), "ALERTS_FOR_STATE".into()],
    }
}

/// Whether the group may run rule by rule: no rule reads what it or a later rule writes,
/// and no template runs queries (they could read anything).
fn rule_by_rule(spec: &GroupSpec) -> bool {
    for (i, r) in spec.rules.iter().enumerate() {
        let templates = r.labels.values().chain(r.annotations.values());
        if templates.into_iter().any(|t| t.contains("query")) {
            return false;
        }
        let Ok(expr) = augur_engine::parse(&r.expr, 0, 0) else {
            return false;
        };
        let mut reads = BTreeSet::new();
        if names_read(&expr, &mut reads).is_none() {
            return false;
        }
        let later: BTreeSet<String> = spec.rules[i..]
            .iter()
            .flat_map(|r| names_written(&r.kind))
            .collect();
        if !reads.is_disjoint(&later) {
            return false;
        }
    }
    true
}

/// Whether a range query gives the same points as instant queries for this expression.
fn range_safe(expr: &str) -> bool {
    let flat: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    !["start()", "end()", "step()"]
        .iter()
        .any(|f| flat.contains(f))
}

/// A block of precomputed points of one expression: the instant vector of each slot, handed
/// out once (a second ask at the same time runs an instant query).
#[derive(Debug, Default)]
struct Block {
    expr: String,
    lo: i64,
    step: i64,
    points: Vec<Option<Vec<Element>>>,
}

impl Block {
    /// Splits a range query's series into one instant vector per slot time of `qts` (evenly
    /// spaced by `step`).
    fn new(expr: &str, qts: &[i64], step: i64, series: Vec<Series>) -> Block {
        let (lo, n) = (qts[0], qts.len());
        let mut points: Vec<Option<Vec<Element>>> = vec![Some(Vec::new()); n];
        for s in series {
            for p in &s.samples {
                let i = (p.t - lo) / step;
                if (p.t - lo) % step == 0 && (0..n as i64).contains(&i) {
                    if let Some(v) = &mut points[i as usize] {
                        v.push(Element {
                            labels: s.labels.clone(),
                            t: p.t,
                            v: p.v,
                            h: None,
                        });
                    }
                }
            }
        }
        Block {
            expr: expr.to_owned(),
            lo,
            step,
            points,
        }
    }

    /// The instant vector at `t`, when `t` is one of the block's points not yet handed out.
    fn take(&mut self, expr: &str, t: i64) -> Option<Vec<Element>> {
        if expr != self.expr || t < self.lo || (t - self.lo) % self.step != 0 {
            return None;
        }
        self.points
            .get_mut(((t - self.lo) / self.step) as usize)
            .and_then(Option::take)
    }
}

/// The slots of a group within `[start, end]`.
fn slots(g: &Group, start: i64, end: i64) -> Vec<i64> {
    let mut t = g.eval_timestamp(start);
    if t < start {
        t += g.interval_ms;
    }
    let mut out = Vec::new();
    while t <= end {
        out.push(t);
        t += g.interval_ms;
    }
    out
}

/// Remembers which alerts fire, evaluation after evaluation.
#[derive(Default)]
struct Tracker {
    firing: HashMap<BTreeMap<String, String>, usize>,
}

fn observe(rule: &Rule, ts: i64, report: &mut RuleReport, tracker: &mut Tracker) {
    report.evaluations += 1;
    let status = rule.status();
    if let Some(e) = &status.last_error {
        report.failures += 1;
        if report.first_error.is_none() {
            report.first_error = Some(e.clone());
        }
    }
    let Rule::Alerting(a) = rule else { return };
    let now: Vec<_> = a
        .active_alerts()
        .into_iter()
        .filter(|al| al.state == AlertState::Firing)
        .collect();
    let mut seen = BTreeSet::new();
    for al in now {
        seen.insert(al.labels.clone());
        if !tracker.firing.contains_key(&al.labels) {
            tracker
                .firing
                .insert(al.labels.clone(), report.episodes.len());
            report.episodes.push(Episode {
                labels: al.labels.clone(),
                start: al.fired_at.unwrap_or(ts),
                end: None,
            });
        }
    }
    tracker.firing.retain(|labels, &mut i| {
        let keep = seen.contains(labels);
        if !keep {
            report.episodes[i].end = Some(ts);
        }
        keep
    });
}

/// Replays every group of `files` over the options' range into `base`.
pub fn replay(
    base: Arc<dyn Base>,
    engine: Arc<Engine>,
    files: &[String],
    opts: &ReplayOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<ReplayReport> {
    if opts.end < opts.start {
        return Err(Error::Input {
            what: "--end".into(),
            message: "the end of the time range is before its start".into(),
        });
    }
    let mut specs = Vec::new();
    for f in files {
        let rf =
            augur_rules::file::load(f, augur_rules::ParseOptions::default()).map_err(|errs| {
                Error::Input {
                    what: f.clone(),
                    message: errs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })?;
        specs.extend(rf.groups);
    }
    let started = Instant::now();
    let overlay = Arc::new(Overlay::new(base));
    let block: Arc<Mutex<Block>> = Arc::default();
    let query: QueryFunc = {
        let (engine, overlay, block) = (engine.clone(), overlay.clone(), block.clone());
        Arc::new(move |q: &str, t: i64, interval: i64| {
            if let Some(v) = block.lock().unwrap_or_else(|e| e.into_inner()).take(q, t) {
                return Ok(Value::Vector(v));
            }
            let qo = QueryOptions {
                implicit_subquery_step_ms: Some(interval).filter(|&s| s > 0),
                ..QueryOptions::default()
            };
            engine.instant(&*overlay, q, t, &qo).map(|r| r.value)
        })
    };
    let cx = GroupContext {
        query,
        store: overlay.clone(),
        notify: None,
        external_labels: opts.external_labels.clone(),
        external_url: opts.external_url.clone(),
        resend_delay_ms: 60_000,
        outage_tolerance_ms: 3_600_000,
        for_grace_period_ms: 600_000,
    };
    let mut report = ReplayReport::default();
    for spec in &specs {
        let whole = Group::new(spec, opts.default_interval_ms, 0, true);
        let times = slots(&whole, opts.start, opts.end);
        let label = format!("{} / {}", spec.file, spec.name);
        if rule_by_rule(spec) {
            let mut ranged = 0;
            for (i, rule) in spec.rules.iter().enumerate() {
                let one = GroupSpec {
                    rules: vec![rule.clone()],
                    ..spec.clone()
                };
                let g = Group::new(&one, opts.default_interval_ms, 0, true);
                let mut rr = new_report(spec, &rule.kind);
                let mut tracker = Tracker::default();
                let use_range = range_safe(&rule.expr);
                ranged += usize::from(use_range);
                // Recording rules without label templates are written straight from the
                // block's series (record.rs); the others go through Group::eval.
                let fast = match &rule.kind {
                    RuleKind::Record(name) if use_range && record::eligible(&rule.labels) => {
                        Some(name)
                    }
                    _ => None,
                };
                let mut st = record::RecordState::default();
                let mut done = 0;
                for chunk in times.chunks(BLOCK_SLOTS) {
                    let qts: Vec<i64> = chunk.iter().map(|ts| ts - g.query_offset_ms).collect();
                    if let Some(name) = fast {
                        let env = EvalEnv {
                            query: &cx.query,
                            query_offset_ms: g.query_offset_ms,
                            interval_ms: g.interval_ms,
                            limit: g.limit,
                            external_labels: &cx.external_labels,
                            external_url: &cx.external_url,
                        };
                        let input = record_input(&engine, &overlay, &env, &rule.expr, qts);
                        record::write_block(
                            &overlay,
                            name,
                            &rule.labels,
                            g.limit,
                            input,
                            &mut st,
                            &mut rr,
                        );
                    } else {
                        if use_range {
                            // A failing range query leaves the block empty: the slots then run
                            // instant queries, which fail (or not) one by one, as in serve.
                            *block.lock().unwrap_or_else(|e| e.into_inner()) = match range_block(
                                &engine,
                                &overlay,
                                &rule.expr,
                                &qts,
                                g.interval_ms,
                            ) {
                                Some(series) => Block::new(&rule.expr, &qts, g.interval_ms, series),
                                None => Block::default(),
                            };
                        }
                        for &ts in chunk {
                            g.eval(ts, &cx);
                            let r = g.rules[0].lock().unwrap_or_else(|e| e.into_inner());
                            observe(&r, ts, &mut rr, &mut tracker);
                        }
                    }
                    done += chunk.len();
                    progress(
                        &format!("{label}, rule {}/{}", i + 1, spec.rules.len()),
                        done,
                        times.len(),
                    );
                }
                *block.lock().unwrap_or_else(|e| e.into_inner()) = Block::default();
                report.rules.push(rr);
            }
            report
                .groups
                .push((label, times.len(), Mode::RuleByRule { ranged }));
        } else {
            let mut rrs: Vec<RuleReport> = spec
                .rules
                .iter()
                .map(|r| new_report(spec, &r.kind))
                .collect();
            let mut trackers: Vec<Tracker> =
                spec.rules.iter().map(|_| Tracker::default()).collect();
            for (n, &ts) in times.iter().enumerate() {
                whole.eval(ts, &cx);
                for (i, rule) in whole.rules.iter().enumerate() {
                    let r = rule.lock().unwrap_or_else(|e| e.into_inner());
                    observe(&r, ts, &mut rrs[i], &mut trackers[i]);
                }
                if n % 64 == 0 || n + 1 == times.len() {
                    progress(&label, n + 1, times.len());
                }
            }
            report.rules.extend(rrs);
            report.groups.push((label, times.len(), Mode::SlotBySlot));
        }
    }
    report.samples = overlay.len();
    if !opts.dry_run {
        report.flush = Some(overlay.flush().map_err(|e| Error::Storage(e.to_string()))?);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// `expr` by one range query over the slot times `qts` (evenly spaced by `step`), as the
/// group's instant queries would see it (implicit subqueries at the group's interval); `None`
/// when it fails or is not a range vector.
fn range_block(
    engine: &Engine,
    overlay: &Overlay,
    expr: &str,
    qts: &[i64],
    step: i64,
) -> Option<Vec<Series>> {
    let qo = QueryOptions {
        implicit_subquery_step_ms: Some(step),
        ..QueryOptions::default()
    };
    let (lo, hi) = (qts[0], qts[qts.len() - 1]);
    match engine.range(overlay, expr, lo, hi, step, &qo).ok()?.value {
        Value::Matrix(m) => Some(m),
        _ => None,
    }
}

/// A recording rule's results over a block of slot times: one range query, or, when it fails,
/// the rule's own query of each slot (whose errors then fail only their slots, as in `serve`).
fn record_input(
    engine: &Engine,
    overlay: &Overlay,
    env: &EvalEnv<'_>,
    expr: &str,
    qts: Vec<i64>,
) -> record::BlockInput {
    if let Some(series) = range_block(engine, overlay, expr, &qts, env.interval_ms) {
        let errors = vec![None; qts.len()];
        return record::BlockInput {
            qts,
            series,
            errors,
        };
    }
    let mut series = Vec::new();
    let mut errors = Vec::with_capacity(qts.len());
    for &t in &qts {
        match env.query_vector(expr, t) {
            Ok(v) => {
                series.extend(v.into_iter().map(|e| Series {
                    labels: e.labels,
                    samples: vec![augur_storage::Sample::new(t, e.v)],
                    start_timestamps: Vec::new(),
                    histograms: Vec::new(),
                }));
                errors.push(None);
            }
            Err(e) => errors.push(Some(e)),
        }
    }
    record::BlockInput {
        qts,
        series,
        errors,
    }
}

fn new_report(spec: &GroupSpec, kind: &RuleKind) -> RuleReport {
    let (name, alerting) = match kind {
        RuleKind::Record(n) => (n.clone(), false),
        RuleKind::Alert(n) => (n.clone(), true),
    };
    RuleReport {
        file: spec.file.clone(),
        group: spec.name.clone(),
        name,
        alerting,
        ..RuleReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(e: &str) -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        names_read(&augur_engine::parse(e, 0, 0).unwrap(), &mut out).map(|_| out)
    }

    #[test]
    fn names_an_expression_reads() {
        assert_eq!(
            reads("sum(rate(a[5m])) / on() group_left b + {__name__=\"c\"}").unwrap(),
            ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
        );
        assert_eq!(reads("{job=\"x\"}"), None);
        assert_eq!(reads("time()").unwrap().len(), 0);
        assert!(range_safe("rate(x[5m])"));
        assert!(!range_safe("x @ start ( )"));
    }
}
