//! Group evaluation against a real TSDB and the real engine: alert state restored after a
//! restart, limits, staleness markers, query offsets and template errors.

use std::sync::Arc;

use augur_engine::{Engine, EngineOptions, QueryOptions};
use augur_rules::file::{parse, ParseOptions};
use augur_rules::{AlertState, Group, GroupContext, QueryFunc, Rule};
use augur_storage::{is_stale_nan, Labels, MatchOp, Matcher, Queryable};
use augur_testdata::TempTsdb;

const MIN: i64 = 60_000;

struct Fixture {
    db: Arc<TempTsdb>,
    cx: GroupContext,
}

fn fixture() -> Fixture {
    let db = Arc::new(TempTsdb::new().unwrap());
    let engine = Engine::new(EngineOptions::default());
    let qdb = db.clone();
    let query: QueryFunc = Arc::new(move |q: &str, t: i64, step: i64| {
        let opts = QueryOptions {
            implicit_subquery_step_ms: Some(step),
            ..QueryOptions::default()
        };
        engine.instant(&*qdb, q, t, &opts).map(|r| r.value)
    });
    let cx = GroupContext {
        query,
        store: db.clone(),
        notify: None,
        external_labels: Default::default(),
        external_url: "http://augur:9090".into(),
        resend_delay_ms: MIN,
        outage_tolerance_ms: 60 * MIN,
        for_grace_period_ms: 10 * MIN,
    };
    Fixture { db, cx }
}

fn group(text: &str, restored: bool) -> Group {
    let f = parse("t.yml", text, ParseOptions::default()).unwrap();
    Group::new(&f.groups[0], MIN, 0, restored)
}

fn write(db: &TempTsdb, labels: &[(&str, &str)], t: i64, v: f64) {
    use augur_storage::Appendable;
    let mut app = db.appender();
    app.append(&Labels::new(labels.iter().copied()).unwrap(), t, v)
        .unwrap();
    app.commit().unwrap();
}

/// (state, active_at) of the only alert of the group's first rule.
fn alert(g: &Group) -> Option<(AlertState, i64)> {
    match &*g.rules[0].lock().unwrap() {
        Rule::Alerting(a) => a.active_alerts().first().map(|a| (a.state, a.active_at)),
        Rule::Recording(_) => panic!("not an alerting rule"),
    }
}

fn last_error(g: &Group, i: usize) -> Option<String> {
    g.rules[i].lock().unwrap().status().last_error.clone()
}

fn samples(db: &TempTsdb, name: &str) -> Vec<(i64, f64)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let m = Matcher::new(MatchOp::Equal, "__name__", name).unwrap();
    q.select(&[m])
        .unwrap()
        .into_iter()
        .flat_map(|s| s.samples.into_iter().map(|p| (p.t, p.v)))
        .collect()
}

const SLOW: &str =
    "groups:\n- name: g\n  rules:\n  - alert: Slow\n    expr: down == 1\n    for: 30m\n";

/// Runs `Slow` from 0 to `until` (every minute, `down` = 1 throughout), then "restarts" at
/// `restart`: a new group evaluates once and restores. Returns the new group.
fn restart(f: &Fixture, until: i64, restart: i64) -> Group {
    let before = group(SLOW, true);
    let mut t = 0;
    while t <= restart + 40 * MIN {
        write(&f.db, &[("__name__", "down")], t, 1.0);
        t += MIN;
    }
    let mut t = 0;
    while t <= until {
        before.eval(t, &f.cx);
        t += MIN;
    }
    assert_eq!(alert(&before), Some((AlertState::Pending, 0)));
    let after = group(SLOW, false);
    after.eval(restart, &f.cx);
    after.restore(restart, &f.cx);
    after
}

#[test]
fn for_clock_moves_on_by_the_downtime() {
    let f = fixture();
    // Pending for 20m when we went down at 20m; back at 25m: 10m left (not less than the
    // 10m grace period), so the clock moves on by the 5m down: active since 5m.
    let g = restart(&f, 20 * MIN, 25 * MIN);
    assert_eq!(alert(&g), Some((AlertState::Pending, 5 * MIN)));
    g.eval(34 * MIN, &f.cx);
    assert_eq!(alert(&g).unwrap().0, AlertState::Pending);
    g.eval(35 * MIN, &f.cx);
    assert_eq!(alert(&g).unwrap().0, AlertState::Firing);
}

#[test]
fn restored_alert_gets_at_least_the_grace_period() {
    let f = fixture();
    // Pending 25m when down; back at 27m: 5m left < 10m grace, so it fires 10m after the
    // restart: active_at = 27m + 10m - 30m = 7m.
    let g = restart(&f, 25 * MIN, 27 * MIN);
    assert_eq!(alert(&g), Some((AlertState::Pending, 7 * MIN)));
}

#[test]
fn state_older_than_the_outage_tolerance_is_not_restored() {
    let f = fixture();
    let g = restart(&f, 20 * MIN, 90 * MIN);
    assert_eq!(alert(&g), Some((AlertState::Pending, 90 * MIN)));
}

#[test]
fn alerts_series_wait_for_the_restore() {
    let f = fixture();
    write(&f.db, &[("__name__", "down")], 0, 1.0);
    let g = group(SLOW, false);
    g.eval(0, &f.cx);
    assert!(samples(&f.db, "ALERTS").is_empty());
    g.restore(0, &f.cx);
    g.eval(30_000, &f.cx);
    assert_eq!(samples(&f.db, "ALERTS"), [(30_000, 1.0)]);
    assert_eq!(samples(&f.db, "ALERTS_FOR_STATE"), [(30_000, 0.0)]);
}

#[test]
fn limits_fail_the_rule_with_prometheus_message() {
    let f = fixture();
    for i in ["a", "b"] {
        write(&f.db, &[("__name__", "x"), ("i", i)], 0, 1.0);
    }
    let g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: A\n    expr: x\n  - record: r\n    expr: x\n",
        true,
    );
    g.eval(0, &f.cx);
    assert_eq!(
        last_error(&g, 0).as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert_eq!(
        last_error(&g, 1).as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
    assert!(samples(&f.db, "r").is_empty());
}

#[test]
fn vanished_series_get_staleness_markers() {
    let f = fixture();
    write(&f.db, &[("__name__", "x"), ("i", "a")], 0, 1.0);
    write(&f.db, &[("__name__", "x"), ("i", "b")], 0, 2.0);
    write(&f.db, &[("__name__", "x"), ("i", "a")], MIN, 3.0);
    write(
        &f.db,
        &[("__name__", "x"), ("i", "b")],
        30_000,
        f64::from_bits(augur_storage::STALE_NAN_BITS),
    );
    let g = group(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: x\n",
        true,
    );
    g.eval(0, &f.cx);
    g.eval(MIN, &f.cx);
    let q = f.db.querier(0, MIN).unwrap();
    let m = Matcher::new(MatchOp::Equal, "__name__", "r").unwrap();
    // (label i, [(t, stale, value)]) per series.
    type Points = Vec<(i64, bool, f64)>;
    let got: Vec<(String, Points)> = q
        .select(&[m])
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels.get("i").unwrap().to_string(),
                s.samples
                    .iter()
                    .map(|p| {
                        (
                            p.t,
                            is_stale_nan(p.v),
                            if is_stale_nan(p.v) { 0.0 } else { p.v },
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a".into(), vec![(0, false, 1.0), (MIN, false, 3.0)]),
            ("b".into(), vec![(0, false, 2.0), (MIN, true, 0.0)]),
        ]
    );
}

#[test]
fn query_offset_shifts_queries_and_output() {
    let f = fixture();
    write(&f.db, &[("__name__", "x")], 0, 1.0);
    write(&f.db, &[("__name__", "x")], MIN, 2.0);
    let g = group(
        "groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: r\n    expr: x\n",
        true,
    );
    g.eval(MIN, &f.cx);
    assert_eq!(samples(&f.db, "r"), [(0, 1.0)]);
}

#[test]
fn group_slots_are_stable_and_spread() {
    let a = group("groups:\n- name: a\n  interval: 1m\n  rules: []\n", true);
    let b = group("groups:\n- name: b\n  interval: 1m\n  rules: []\n", true);
    let now = 1_700_000_012_345;
    for g in [&a, &b] {
        let slot = g.eval_timestamp(now);
        assert!(slot <= now && now - slot < MIN);
        assert_eq!(
            slot.rem_euclid(MIN),
            g.eval_timestamp(now + 7 * MIN).rem_euclid(MIN)
        );
    }
    assert_ne!(a.eval_timestamp(now), b.eval_timestamp(now));
}

/// A recording rule over native histograms records histograms (not zeros), and a series it
/// no longer produces gets a staleness marker.
#[test]
fn recording_rules_record_native_histograms() {
    use augur_storage::histogram::{Histogram, Span};
    use augur_storage::Appendable;
    let f = fixture();
    let h = Histogram {
        schema: 0,
        count: 3.0,
        sum: 4.5,
        positive_spans: vec![Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![3.0],
        integer: true,
        ..Histogram::default()
    };
    let src = Labels::new([("__name__", "lat"), ("job", "a")]).unwrap();
    let mut app = f.db.appender();
    app.append_histogram(0, &src, 0, &h, 0).unwrap();
    app.commit().unwrap();
    let g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:lat\n    expr: lat\n",
        true,
    );
    g.eval(MIN, &f.cx);
    let got =
        f.db.querier(0, 10 * MIN)
            .unwrap()
            .select(&[Matcher::new(MatchOp::Equal, "__name__", "job:lat").unwrap()])
            .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].samples.is_empty(), "{got:?}");
    assert_eq!(got[0].histograms.len(), 1);
    assert_eq!(got[0].histograms[0].t, MIN);
    assert_eq!(got[0].histograms[0].h, h);
    // Six minutes on, the source is past the lookback: the recorded series goes stale.
    g.eval(7 * MIN, &f.cx);
    let got =
        f.db.querier(0, 10 * MIN)
            .unwrap()
            .select(&[Matcher::new(MatchOp::Equal, "__name__", "job:lat").unwrap()])
            .unwrap();
    assert!(is_stale_nan(got[0].samples[0].v), "{got:?}");
}
