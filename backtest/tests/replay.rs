//! `replay` against the server's own evaluation path: the same rule files run slot by slot
//! through `Group::eval` with instant queries on a copy of the data (what `serve` would have
//! done) must leave exactly the same recorded series, `ALERTS` and `ALERTS_FOR_STATE`.

use std::sync::Arc;

use augur_backtest::replay::{replay, Mode, ReplayOptions};
use augur_engine::{Engine, QueryOptions};
use augur_rules::{Group, GroupContext, QueryFunc};
use augur_storage::{Backfill, Labels, Matcher, Queryable, Sample, Tsdb};
use tempfile::TempDir;

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

fn open(dir: &std::path::Path) -> Tsdb {
    Tsdb::open(
        dir,
        augur_storage::Options {
            background: false,
            retention: std::time::Duration::from_secs(10 * 365 * 86_400),
            ..augur_storage::Options::default()
        },
    )
    .unwrap()
}

/// Two hours of `x` for jobs a and b every 15 s; job a runs high from minute 60 to 75.
fn load(db: &Tsdb) {
    for job in ["a", "b"] {
        let l = Labels::new([("__name__", "x"), ("job", job)]).unwrap();
        let samples: Vec<Sample> = (0..480)
            .map(|i| {
                let t = T0 + i * 15_000;
                let high = job == "a" && (240..300).contains(&i);
                Sample::new(t, if high { 100.0 } else { (i % 5) as f64 })
            })
            .collect();
        db.backfill(&l, &samples).unwrap();
    }
}

const RULES: &str = r#"
groups:
  - name: chained
    interval: 1m
    rules:
      - record: job:x:avg5m
        expr: avg_over_time(x[5m])
      - alert: XHigh
        expr: job:x:avg5m > 50
        for: 3m
        keep_firing_for: 2m
        labels:
          severity: page
  - name: failing-and-vanishing
    interval: 1m
    limit: 1
    rules:
      - record: job:x:high
        expr: x > 50
      - record: job:x:avg2m
        expr: avg_over_time(x{job="b"}[2m])
        labels:
          team: sre
      - record: dup
        expr: x
        labels:
          job: ""
      - record: engine_error
        expr: label_replace(x, "job", "same", "", "")
      - record: limited
        expr: x
  - name: self-reading
    interval: 2m
    rules:
      - record: job:x:max
        expr: max by (job) (x) or job:x:max
"#;

fn dump(db: &dyn Queryable, name: &str) -> Vec<(String, Vec<(i64, u64)>)> {
    db.querier(T0 - 3_600_000, T0 + 10 * 3_600_000)
        .unwrap()
        .select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples.iter().map(|p| (p.t, p.v.to_bits())).collect(),
            )
        })
        .collect()
}

#[test]
fn replay_writes_what_the_server_would_have_written() {
    let dir = TempDir::new().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.display().to_string();
    let (start, end) = (T0 + 10 * MIN, T0 + 110 * MIN);

    // The server's way, slot by slot with instant queries, on a copy of the data.
    let reference = Arc::new(open(&dir.path().join("ref")));
    load(&reference);
    let engine = Arc::new(Engine::default());
    let query: QueryFunc = {
        let (engine, db) = (engine.clone(), reference.clone());
        Arc::new(move |q: &str, t: i64, interval: i64| {
            let qo = QueryOptions {
                implicit_subquery_step_ms: Some(interval),
                ..QueryOptions::default()
            };
            engine.instant(&*db, q, t, &qo).map(|r| r.value)
        })
    };
    let cx = GroupContext {
        query,
        store: reference.clone(),
        notify: None,
        external_labels: Default::default(),
        external_url: String::new(),
        resend_delay_ms: 60_000,
        outage_tolerance_ms: 3_600_000,
        for_grace_period_ms: 600_000,
    };
    let file = augur_rules::file::load(&rules, Default::default()).unwrap();
    for spec in &file.groups {
        let g = Group::new(spec, MIN, 0, true);
        let mut t = g.eval_timestamp(start);
        if t < start {
            t += g.interval_ms;
        }
        while t <= end {
            g.eval(t, &cx);
            t += g.interval_ms;
        }
    }

    // The replay.
    let db = Arc::new(open(&dir.path().join("db")));
    load(&db);
    let opts = ReplayOptions {
        start,
        end,
        default_interval_ms: MIN,
        dry_run: false,
        external_labels: Default::default(),
        external_url: String::new(),
    };
    let report = replay(
        db.clone(),
        engine.clone(),
        std::slice::from_ref(&rules),
        &opts,
        &mut |_, _, _| {},
    )
    .unwrap();
    assert_eq!(report.groups[0].2, Mode::RuleByRule { ranged: 2 });
    assert_eq!(report.groups[1].2, Mode::RuleByRule { ranged: 5 });
    assert_eq!(report.groups[2].2, Mode::SlotBySlot);
    for name in [
        "job:x:avg5m",
        "ALERTS",
        "ALERTS_FOR_STATE",
        "job:x:high",
        "job:x:avg2m",
        "job:x:max",
    ] {
        let want = dump(&*reference, name);
        assert!(!want.is_empty(), "{name} was written by the reference");
        assert_eq!(dump(&*db, name), want, "{name}");
    }
    // The series that vanishes after the spike ends with a staleness marker.
    let high = dump(&*db, "job:x:high");
    assert!(augur_storage::is_stale_nan(f64::from_bits(
        high[0].1.last().unwrap().1
    )));
    for (name, error) in [
        (
            "dup",
            "vector contains metrics with the same labelset after applying rule labels",
        ),
        ("limited", "exceeded limit of 1 with 2 series"),
        (
            "engine_error",
            "vector cannot contain metrics with the same labelset",
        ),
    ] {
        assert!(dump(&*reference, name).is_empty() && dump(&*db, name).is_empty());
        let r = report.rules.iter().find(|r| r.name == name).unwrap();
        assert_eq!(r.failures, r.evaluations, "{name}");
        assert_eq!(r.first_error.as_deref(), Some(error));
    }
    let flush = report.flush.as_ref().unwrap();
    assert_eq!((flush.conflicts, flush.out_of_bounds), (0, 0));

    // One alert for job a: pending at the first slot whose 5m average exceeds 50, firing
    // three minutes later, kept two minutes after it last matched.
    let alert = report.rules.iter().find(|r| r.name == "XHigh").unwrap();
    assert_eq!(alert.episodes.len(), 1, "{:?}", alert.episodes);
    let e = &alert.episodes[0];
    assert_eq!(e.labels.get("job").map(String::as_str), Some("a"));
    assert_eq!(e.labels.get("severity").map(String::as_str), Some("page"));
    assert!(e.start > T0 + 60 * MIN && e.start < T0 + 70 * MIN, "{e:?}");
    assert!(
        e.end.unwrap() > T0 + 75 * MIN && e.end.unwrap() < T0 + 85 * MIN,
        "{e:?}"
    );
    assert_eq!(alert.failures, 0);

    // A dry run evaluates the same and writes nothing.
    let dry = Arc::new(open(&dir.path().join("dry")));
    load(&dry);
    let report = replay(
        dry.clone(),
        engine,
        &[rules],
        &ReplayOptions {
            dry_run: true,
            ..opts
        },
        &mut |_, _, _| {},
    )
    .unwrap();
    assert!(report.flush.is_none() && report.samples > 0);
    assert!(dump(&*dry, "job:x:avg5m").is_empty());
}

#[test]
fn bad_rule_files_and_ranges_are_clear_errors() {
    let dir = TempDir::new().unwrap();
    let db = Arc::new(open(&dir.path().join("db")));
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n",
    )
    .unwrap();
    let opts = ReplayOptions {
        start: 0,
        end: 1,
        default_interval_ms: MIN,
        dry_run: false,
        external_labels: Default::default(),
        external_url: String::new(),
    };
    let engine = Arc::new(Engine::default());
    let err = replay(
        db.clone(),
        engine.clone(),
        &[bad.display().to_string()],
        &opts,
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("bad.yml") && err.contains("parse error"),
        "{err}"
    );
    let err = replay(
        db,
        engine,
        &[],
        &ReplayOptions {
            start: 5,
            end: 1,
            ..opts
        },
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert_eq!(err, "--end: the end of the time range is before its start");
}
