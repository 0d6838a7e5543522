//! Black-box tests of the TSDB through the storage traits, on a real RocksDB in a temp dir.

use augur_storage::{
    Appendable, Labels, MatchOp, Matcher, Options, Queryable, ReadLimits, RejectReason, Sample,
    StorageError, Tsdb, STALE_NAN,
};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Tsdb {
    Tsdb::open(
        dir.path(),
        Options {
            background: false,
            ..Options::default()
        },
    )
    .unwrap()
}

/// A store with background work off and the given retention.
fn open_with_retention(dir: &TempDir, secs: u64) -> Tsdb {
    let opts = Options {
        background: false,
        retention: std::time::Duration::from_secs(secs),
        ..Options::default()
    };
    Tsdb::open(dir.path(), opts).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

/// Appends `(labels, t, v)` triples in one commit and returns the report.
fn write(db: &Tsdb, samples: &[(&Labels, i64, f64)]) -> augur_storage::CommitReport {
    let mut app = db.appender();
    for (l, t, v) in samples {
        app.append(l, *t, *v).unwrap();
    }
    app.commit().unwrap()
}

fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
    samples.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

fn select(db: &Tsdb, mint: i64, maxt: i64, matchers: &[Matcher]) -> Vec<(String, Vec<(i64, u64)>)> {
    db.querier(mint, maxt)
        .unwrap()
        .select(matchers)
        .unwrap()
        .into_iter()
        .map(|s| (s.labels.to_string(), bits(&s.samples)))
        .collect()
}

#[test]
fn ordering_rules_reject_per_sample_without_poisoning_the_batch() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let a = labels(&[("__name__", "a")]);
    let b = labels(&[("__name__", "b")]);
    write(&db, &[(&a, 100, 1.0), (&b, 100, 1.0)]);
    let report = write(
        &db,
        &[
            (&a, 50, 9.0),  // older than newest: out of order
            (&b, 200, 2.0), // fine
            (&a, 100, 1.0), // same time, same value: no-op, accepted
            (&a, 100, 7.0), // same time, other value: duplicate
            (&b, 300, 3.0), // fine
            (&b, 250, 3.0), // out of order within the batch
        ],
    );
    assert_eq!(report.accepted, 3);
    let got: Vec<_> = report
        .rejected
        .iter()
        .map(|r| (r.index, r.reason, r.series_max_t))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, RejectReason::OutOfOrder, 100),
            (3, RejectReason::Duplicate, 100),
            (5, RejectReason::OutOfOrder, 300),
        ]
    );
    assert_eq!(
        select(&db, 0, 1000, &[Matcher::equal("__name__", "a")]),
        vec![("a{}".to_string(), vec![(100, 1f64.to_bits())])]
    );
    assert_eq!(
        select(&db, 0, 1000, &[Matcher::equal("__name__", "b")])[0].1,
        vec![
            (100, 1f64.to_bits()),
            (200, 2f64.to_bits()),
            (300, 3f64.to_bits())
        ]
    );
    let report = write(&db, &[(&a, i64::MIN, 1.0)]);
    assert_eq!(report.rejected[0].reason, RejectReason::OutOfBounds);
    let c = db.counters();
    assert_eq!(
        c.samples_out_of_order
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        c.samples_out_of_bounds
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        c.samples_duplicate
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn stale_markers_and_special_values_round_trip_through_head_chunks_and_restart() {
    let dir = TempDir::new().unwrap();
    let l = labels(&[("__name__", "x")]);
    let specials = [
        STALE_NAN,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.1,
        1e-300,
    ];
    let samples: Vec<(i64, f64)> = (0..300)
        .map(|i| (i * 15_000, specials[i as usize % specials.len()]))
        .collect();
    let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    {
        let db = open(&dir);
        let mut app = db.appender();
        for &(t, v) in &samples {
            app.append(&l, t, v).unwrap();
        }
        app.commit().unwrap();
        // 300 samples: two sealed chunks on disk, one open chunk in the head.
        assert_eq!(
            select(&db, i64::MIN, i64::MAX, &[Matcher::equal("__name__", "x")])[0].1,
            want
        );
        assert_ne!(
            want[0].1,
            f64::NAN.to_bits(),
            "the stale marker is not an ordinary NaN"
        );
    }
    let db = open(&dir);
    assert_eq!(
        select(&db, i64::MIN, i64::MAX, &[Matcher::equal("__name__", "x")])[0].1,
        want
    );
    // Sub-ranges are inclusive at both ends and cut across chunk boundaries.
    assert_eq!(
        select(
            &db,
            15_000 * 100,
            15_000 * 200,
            &[Matcher::equal("__name__", "x")]
        )[0]
        .1,
        want[100..=200].to_vec()
    );
    assert_eq!(
        select(
            &db,
            15_000 * 119 + 1,
            15_000 * 121 - 1,
            &[Matcher::equal("__name__", "x")]
        )[0]
        .1,
        want[120..=120].to_vec()
    );
}

fn matcher_fixture(db: &Tsdb) {
    let series = [
        labels(&[("__name__", "up"), ("job", "api"), ("env", "prod")]),
        labels(&[("__name__", "up"), ("job", "api-canary"), ("env", "prod")]),
        labels(&[("__name__", "up"), ("job", "db")]),
        labels(&[("__name__", "up"), ("job", "web"), ("env", "")]),
        labels(&[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("code", "200"),
        ]),
        labels(&[
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("code", "500"),
        ]),
    ];
    let batch: Vec<_> = series.iter().map(|l| (l, 1000, 1.0)).collect();
    write(db, &batch);
}

#[test]
fn matchers_follow_prometheus_semantics_through_the_index() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    matcher_fixture(&db);
    let check = |matchers: &[Matcher], want: &[&str]| {
        let got: Vec<String> = db
            .querier(0, 2000)
            .unwrap()
            .series(matchers)
            .unwrap()
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(got, want, "matchers {matchers:?}");
    };
    use MatchOp::*;
    let up_api = r#"up{env="prod", job="api"}"#;
    let up_canary = r#"up{env="prod", job="api-canary"}"#;
    let up_db = r#"up{job="db"}"#;
    let up_web = r#"up{job="web"}"#;
    let http200 = r#"http_requests_total{code="200", job="api"}"#;
    let http500 = r#"http_requests_total{code="500", job="api"}"#;
    check(&[m(Equal, "job", "api")], &[http200, http500, up_api]);
    check(
        &[m(Equal, "__name__", "up"), m(Equal, "env", "")],
        &[up_db, up_web],
    );
    check(
        &[m(Equal, "__name__", "up"), m(RegexMatch, "env", "prod|")],
        &[up_api, up_canary, up_db, up_web],
    );
    check(
        &[m(Equal, "__name__", "up"), m(NotEqual, "env", "prod")],
        &[up_db, up_web],
    );
    check(
        &[m(Equal, "__name__", "up"), m(NotEqual, "env", "")],
        &[up_api, up_canary],
    );
    check(&[m(RegexMatch, "job", "api-.*")], &[up_canary]);
    check(
        &[m(RegexMatch, "job", "api.*")],
        &[http200, http500, up_api, up_canary],
    );
    check(&[m(RegexMatch, "job", "db|web")], &[up_db, up_web]);
    check(&[m(RegexMatch, "job", "(?i)DB")], &[up_db]);
    check(&[m(RegexMatch, "job", "pi")], &[]);
    check(
        &[m(Equal, "__name__", "up"), m(RegexNoMatch, "job", "api.*")],
        &[up_db, up_web],
    );
    check(
        &[
            m(Equal, "__name__", "http_requests_total"),
            m(RegexNoMatch, "code", "5.."),
        ],
        &[http200],
    );
    check(&[m(RegexMatch, "code", ".+")], &[http200, http500]);
    check(
        &[m(RegexMatch, "code", ".*"), m(Equal, "job", "db")],
        &[up_db],
    );
    check(
        &[m(Equal, "nonexistent", "")],
        &[http200, http500, up_api, up_canary, up_db, up_web],
    );
    check(&[m(Equal, "job", "nope")], &[]);
    check(&[], &[]);
}

#[test]
fn label_names_and_values_respect_matchers_and_time() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    matcher_fixture(&db);
    let late = labels(&[("__name__", "late"), ("zone", "b")]);
    write(&db, &[(&late, 5000, 1.0)]);
    let q = db.querier(0, 2000).unwrap();
    assert_eq!(
        q.label_names(&[]).unwrap(),
        ["__name__", "code", "env", "job"]
    );
    assert_eq!(
        q.label_names(&[Matcher::equal("job", "db")]).unwrap(),
        ["__name__", "job"]
    );
    assert_eq!(
        q.label_values("job", &[]).unwrap(),
        ["api", "api-canary", "db", "web"]
    );
    assert_eq!(
        q.label_values("__name__", &[]).unwrap(),
        ["http_requests_total", "up"]
    );
    assert_eq!(
        q.label_values("code", &[m(MatchOp::RegexMatch, "code", "2..")])
            .unwrap(),
        ["200"]
    );
    assert_eq!(
        q.label_values("env", &[Matcher::equal("job", "db")])
            .unwrap(),
        Vec::<String>::new()
    );
    let all = db.querier(0, 6000).unwrap();
    assert_eq!(
        all.label_names(&[]).unwrap(),
        ["__name__", "code", "env", "job", "zone"]
    );
    assert_eq!(
        all.label_values("__name__", &[]).unwrap(),
        ["http_requests_total", "late", "up"]
    );
    let only_late = db.querier(3000, 6000).unwrap();
    assert_eq!(only_late.label_names(&[]).unwrap(), ["__name__", "zone"]);
    assert_eq!(
        only_late.select(&[Matcher::equal("job", "api")]).unwrap(),
        vec![]
    );
}

#[test]
fn range_reads_merge_persisted_and_head_chunks_across_restart() {
    let dir = TempDir::new().unwrap();
    let series: Vec<Labels> = (0..50)
        .map(|i| labels(&[("__name__", "m"), ("i", &i.to_string())]))
        .collect();
    let value = |s: usize, n: i64| (s as f64) * 1000.0 + n as f64 * 0.5;
    {
        let db = open(&dir);
        for n in 0..500i64 {
            let batch: Vec<_> = series
                .iter()
                .enumerate()
                .map(|(s, l)| (l, n * 15_000, value(s, n)))
                .collect();
            assert_eq!(write(&db, &batch).accepted, 50);
        }
        db.checkpoint().unwrap();
        for n in 500..530i64 {
            let batch: Vec<_> = series
                .iter()
                .enumerate()
                .map(|(s, l)| (l, n * 15_000, value(s, n)))
                .collect();
            write(&db, &batch);
        }
    }
    let db = open(&dir);
    let got = db
        .querier(100 * 15_000, 520 * 15_000)
        .unwrap()
        .select(&[Matcher::equal("__name__", "m")])
        .unwrap();
    assert_eq!(got.len(), 50);
    for s in &got {
        let i: usize = s.labels.get("i").unwrap().parse().unwrap();
        let want: Vec<Sample> = (100..=520)
            .map(|n| Sample::new(n * 15_000, value(i, n)))
            .collect();
        assert_eq!(s.samples, want, "series {i}");
    }
}

/// Reads of short windows take shortcuts (memory alone; the newest persisted chunk alone);
/// every window at every position must still return exactly its samples, before and after a
/// restart (which forgets the newest chunk's position) and after a backfill rewrote chunks.
#[test]
fn short_windows_read_exactly_their_samples_whichever_chunks_hold_them() {
    let dir = TempDir::new().unwrap();
    let x = labels(&[("__name__", "x")]);
    let value = |n: i64| n as f64 * 0.25;
    let check = |db: &Tsdb, stage: &str, last: i64| {
        for end in (0..=last).step_by(7) {
            for width in [0, 1, 5, 20, 119, 121, 300] {
                let (lo, hi) = ((end - width).max(0), end);
                let want: Vec<(i64, u64)> = (lo..=hi)
                    .map(|n| (n * 15_000, value(n).to_bits()))
                    .collect();
                let got = select(
                    db,
                    lo * 15_000,
                    hi * 15_000,
                    &[Matcher::equal("__name__", "x")],
                );
                assert_eq!(got.len(), 1, "{stage}: window {lo}..={hi}");
                assert_eq!(got[0].1, want, "{stage}: window {lo}..={hi}");
            }
        }
    };
    {
        let db = open(&dir);
        for n in 0..700i64 {
            write(&db, &[(&x, n * 15_000, value(n))]);
            if n % 150 == 149 {
                // Writes the cut chunks: the series now knows its newest persisted chunk.
                db.checkpoint().unwrap();
            }
        }
        check(&db, "live", 699);
    }
    let db = open(&dir);
    check(&db, "after restart", 699);
    for n in 700..760i64 {
        write(&db, &[(&x, n * 15_000, value(n))]);
    }
    db.checkpoint().unwrap();
    check(&db, "after restart and more appends", 759);
    use augur_storage::Backfill;
    // History before everything: outside every window checked, but it rewrites chunks.
    let report = db.backfill(&x, &[Sample::new(-15_000, -1.0)]).unwrap();
    assert_eq!(report.accepted, 1);
    for n in 760..800i64 {
        write(&db, &[(&x, n * 15_000, value(n))]);
    }
    db.checkpoint().unwrap();
    check(&db, "after a backfill", 799);
}

/// A select over thousands of series is read by several threads (on a machine with more
/// than one core); the result is every series once, in label order, with its samples.
#[test]
fn large_selects_return_every_series_once_in_label_order() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let n = 3000;
    let series: Vec<Labels> = (0..n)
        .map(|i| labels(&[("__name__", "big"), ("i", &format!("{}", (i * 7919) % n))]))
        .collect();
    for t in 0..3i64 {
        let batch: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(i, l)| (l, t * 15_000, (i as i64 * 10 + t) as f64))
            .collect();
        assert_eq!(write(&db, &batch).accepted, n);
    }
    db.checkpoint().unwrap();
    let got = select(&db, 0, 30_000, &[Matcher::equal("__name__", "big")]);
    assert_eq!(got.len(), n);
    let mut want: Vec<(String, Vec<(i64, u64)>)> = series
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let samples = (0..3i64)
                .map(|t| (t * 15_000, ((i as i64 * 10 + t) as f64).to_bits()))
                .collect();
            (l.to_string(), samples)
        })
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    want.sort();
    assert_eq!(got_sorted, want);
    // Label order here is the order of the "i" values as strings, which is also the order
    // of the rendered series names.
    let order: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "series come back in label order");

    // Limits are checked while reading, across the worker threads too.
    let q = db.querier(0, 30_000).unwrap();
    let m = [Matcher::equal("__name__", "big")];
    let limited = |limits: ReadLimits| q.select_limited(&m, &limits).map(|s| s.len());
    let at_most = |n: usize| ReadLimits {
        max_samples: Some(n),
        ..ReadLimits::default()
    };
    assert_eq!(
        limited(at_most(3 * n)).unwrap(),
        n,
        "exactly the limit is fine"
    );
    for small in [0, 1, 3 * n - 1] {
        match limited(at_most(small)) {
            Err(StorageError::TooManySamples { limit }) => assert_eq!(limit, small),
            other => panic!("{small}: {other:?}"),
        }
    }
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    assert!(matches!(
        limited(ReadLimits {
            cancel: Some(cancel),
            ..ReadLimits::default()
        }),
        Err(StorageError::Canceled)
    ));
    assert!(matches!(
        limited(ReadLimits {
            deadline: Some(std::time::Instant::now()),
            ..ReadLimits::default()
        }),
        Err(StorageError::Timeout)
    ));
    assert_eq!(limited(ReadLimits::default()).unwrap(), n);
}

#[test]
fn retention_drops_old_samples_and_forgets_dead_series() {
    let dir = TempDir::new().unwrap();
    let hour = 3_600_000;
    let db = open_with_retention(&dir, 2 * 3600);
    let dead = labels(&[("__name__", "dead"), ("pod", "gone")]);
    let live = labels(&[("__name__", "live")]);
    for n in 0..=(4 * 60) {
        let t = n * 60_000;
        let mut app = db.appender();
        app.append(&live, t, n as f64).unwrap();
        if t < hour {
            app.append(&dead, t, 1.0).unwrap();
        }
        app.commit().unwrap();
    }
    db.seal_all().unwrap();
    let stats = db.apply_retention().unwrap();
    assert_eq!(stats.series_removed, 1);
    assert_eq!(stats.cutoff, 2 * hour);
    db.compact().unwrap();
    let q = db.querier(0, 10 * hour).unwrap();
    assert_eq!(q.label_values("__name__", &[]).unwrap(), ["live"]);
    assert_eq!(q.label_names(&[]).unwrap(), ["__name__"]);
    assert!(q
        .select(&[Matcher::equal("pod", "gone")])
        .unwrap()
        .is_empty());
    let live_samples = &q.select(&[Matcher::equal("__name__", "live")]).unwrap()[0].samples;
    assert_eq!(live_samples.first().unwrap().t, 2 * hour);
    assert_eq!(live_samples.len(), 2 * 60 + 1);
    drop(q);
    // The dead series stays forgotten after a restart; a new sample recreates it cleanly.
    drop(db);
    let db = open(&dir);
    assert_eq!(
        db.querier(0, 10 * hour)
            .unwrap()
            .label_values("pod", &[])
            .unwrap(),
        Vec::<String>::new()
    );
    write(&db, &[(&dead, 5 * hour, 2.0)]);
    assert_eq!(
        select(&db, 0, 10 * hour, &[Matcher::equal("pod", "gone")]).len(),
        1
    );
}

#[test]
fn concurrent_appenders_lose_nothing() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let db = &db;
            scope.spawn(move || {
                let series: Vec<Labels> = (0..100)
                    .map(|i| {
                        labels(&[
                            ("__name__", "c"),
                            ("i", &i.to_string()),
                            ("w", &w.to_string()),
                        ])
                    })
                    .collect();
                for n in 0..300i64 {
                    let mut app = db.appender();
                    for l in &series {
                        app.append(l, n, n as f64).unwrap();
                    }
                    assert!(app.commit().unwrap().rejected.is_empty());
                }
            });
        }
    });
    let got = db
        .querier(0, 1000)
        .unwrap()
        .select(&[Matcher::equal("__name__", "c")])
        .unwrap();
    assert_eq!(got.len(), 400);
    assert!(got.iter().all(|s| s.samples.len() == 300));
}

#[test]
fn an_empty_label_set_is_refused_on_append() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let mut app = db.appender();
    let err = app.append(&Labels::default(), 1, 1.0).unwrap_err();
    assert_eq!(err.to_string(), "invalid labels: label set is empty");
    assert!(err.is_bad_input());
}

#[test]
fn invalid_matcher_regex_is_a_clear_error() {
    let err = Matcher::new(MatchOp::RegexMatch, "job", "(").unwrap_err();
    assert!(err.is_bad_input());
    assert!(
        err.to_string().contains(r#"in matcher for label "job""#),
        "{err}"
    );
}

#[test]
fn a_stale_series_hint_after_retention_still_lands_the_sample() {
    let dir = TempDir::new().unwrap();
    let hour = 3_600_000;
    let db = open_with_retention(&dir, 3600);
    let old = labels(&[("__name__", "old")]);
    let live = labels(&[("__name__", "live")]);
    let mut app = db.appender();
    let old_ref = app.append(&old, 0, 1.0).unwrap();
    app.append(&live, 0, 1.0).unwrap();
    app.commit().unwrap();
    write(&db, &[(&live, 3 * hour, 2.0)]);
    assert_eq!(db.apply_retention().unwrap().series_removed, 1);

    // The hint names a series that no longer exists; the labels decide.
    let mut app = db.appender();
    let new_ref = app.append_hinted(old_ref, &old, 3 * hour, 5.0).unwrap();
    assert_eq!(new_ref, old_ref, "the hint is taken as given until commit");
    assert_eq!(app.commit().unwrap().accepted, 1);
    assert_eq!(
        select(&db, 0, 10 * hour, &[Matcher::equal("__name__", "old")]),
        vec![("old{}".to_string(), vec![(3 * hour, 5f64.to_bits())])]
    );
    // And a hinted append with a live ref goes straight to its series.
    let mut app = db.appender();
    let r = app.append(&live, 4 * hour, 3.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert_eq!(app.append_hinted(r, &live, 5 * hour, 4.0).unwrap(), r);
    app.commit().unwrap();
    assert_eq!(
        select(&db, 0, 10 * hour, &[Matcher::equal("__name__", "live")])[0]
            .1
            .len(),
        3
    );
}

/// Start timestamps (one series with a counter's constant start, one delta-style series, one
/// with none, one whose start timestamps appear part-way) survive the open chunk, cut and
/// sealed chunks, a checkpoint, and a restart; a repeat with another start timestamp is a
/// no-op that keeps the first.
#[test]
fn start_timestamps_round_trip_through_every_stage() {
    let dir = TempDir::new().unwrap();
    let names = ["counter", "delta", "none", "late"];
    let series: Vec<Labels> = names
        .iter()
        .map(|n| labels(&[("__name__", "st"), ("kind", n)]))
        .collect();
    let st_of = |kind: usize, n: i64| match kind {
        0 => -1_000,
        1 => (n - 1) * 15_000,
        3 if n >= 150 => 1_000_000 + n,
        _ => 0,
    };
    let write_range = |db: &Tsdb, ns: std::ops::Range<i64>| {
        for n in ns {
            let mut app = db.appender();
            for (k, l) in series.iter().enumerate() {
                app.append_st(0, l, n * 15_000, n as f64, st_of(k, n))
                    .unwrap();
            }
            assert_eq!(app.commit().unwrap().accepted, series.len());
        }
    };
    let check = |db: &Tsdb, mint_n: i64, maxt_n: i64, stage: &str| {
        let got = db
            .querier(mint_n * 15_000, maxt_n * 15_000)
            .unwrap()
            .select(&[Matcher::equal("__name__", "st")])
            .unwrap();
        assert_eq!(got.len(), 4, "{stage}");
        for s in got {
            let kind = names
                .iter()
                .position(|n| Some(*n) == s.labels.get("kind"))
                .unwrap();
            let want: Vec<i64> = (mint_n..=maxt_n).map(|n| st_of(kind, n)).collect();
            let want = if want.iter().all(|&st| st == 0) {
                Vec::new()
            } else {
                want
            };
            assert_eq!(s.samples.len() as i64, maxt_n - mint_n + 1, "{stage}");
            assert_eq!(s.start_timestamps, want, "{stage}: {}", names[kind]);
        }
    };
    {
        let db = open(&dir);
        write_range(&db, 0..100);
        check(&db, 0, 99, "open chunk");
        write_range(&db, 100..200);
        check(&db, 90, 199, "cut chunk and open chunk");
        check(&db, 0, 140, "range ending before the late start timestamps");
        db.checkpoint().unwrap();
        check(&db, 0, 199, "sealed chunk after a checkpoint");
        write_range(&db, 200..260);
        // A repeat that differs only in its start timestamp changes nothing.
        let mut app = db.appender();
        app.append_st(0, &series[0], 259 * 15_000, 259.0, 5)
            .unwrap();
        assert_eq!(app.commit().unwrap().accepted, 1);
    }
    let db = open(&dir);
    check(&db, 0, 259, "after restart");
    check(&db, 255, 259, "tail after restart");
}

/// `ReadLimits::newest_only`: each series whose newest sample in range is a float comes back
/// with that sample alone (from memory, from disk, with its start timestamp, a staleness
/// marker included); a series whose newest is a histogram comes back whole.
#[test]
fn newest_only_reads_return_each_series_newest_float() {
    use augur_storage::histogram::{Histogram, Span};
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let mem = labels(&[("__name__", "m"), ("k", "memory")]);
    let disk = labels(&[("__name__", "m"), ("k", "disk")]);
    let stale = labels(&[("__name__", "m"), ("k", "stale")]);
    let hist = labels(&[("__name__", "m"), ("k", "hist")]);
    let mut app = db.appender();
    for i in 0..300i64 {
        app.append_st(0, &mem, i * 1000, i as f64, 7).unwrap();
        app.append(&disk, i * 1000, i as f64).unwrap();
        let v = if i == 299 {
            augur_storage::STALE_NAN
        } else {
            1.0
        };
        app.append(&stale, i * 1000, v).unwrap();
        if i < 290 {
            app.append(&hist, i * 1000, 2.0).unwrap();
        } else {
            let h = Histogram {
                count: i as f64,
                sum: 1.0,
                positive_spans: vec![Span {
                    offset: 0,
                    length: 1,
                }],
                positive_buckets: vec![i as f64],
                integer: true,
                ..Histogram::default()
            };
            app.append_histogram(0, &hist, i * 1000, &h, 0).unwrap();
        }
    }
    assert!(app.commit().unwrap().rejected.is_empty());
    // `disk` is written out and dropped from memory: its newest sample is on disk only.
    db.checkpoint().unwrap();
    db.seal_all().unwrap();
    let mut app = db.appender();
    app.append_st(0, &mem, 300_000, 300.0, 7).unwrap();
    assert!(app.commit().unwrap().rejected.is_empty());

    let q = db.querier(100_000, 299_500).unwrap();
    let limits = ReadLimits {
        newest_only: true,
        ..ReadLimits::default()
    };
    let got = q
        .select_limited(&[Matcher::equal("__name__", "m")], &limits)
        .unwrap();
    let by_k = |k: &str| {
        got.iter()
            .find(|s| s.labels.get("k") == Some(k))
            .unwrap_or_else(|| panic!("no series {k}"))
    };
    // 300 s is past the range: 299 s is the newest in it.
    let m = by_k("memory");
    assert_eq!(bits(&m.samples), [(299_000, 299f64.to_bits())]);
    assert_eq!(m.start_timestamps, [7]);
    assert_eq!(bits(&by_k("disk").samples), [(299_000, 299f64.to_bits())]);
    assert_eq!(
        bits(&by_k("stale").samples),
        [(299_000, augur_storage::STALE_NAN.to_bits())]
    );
    let h = by_k("hist");
    assert_eq!(
        h.histograms.len(),
        10,
        "a newest histogram keeps its series whole"
    );
    assert_eq!(h.samples.len(), 190);
    // With 300 s in range, the newest is in memory: RocksDB is not read for it.
    let q2 = db.querier(100_000, 300_000).unwrap();
    let got = q2
        .select_limited(&[Matcher::equal("k", "memory")], &limits)
        .unwrap();
    assert_eq!(bits(&got[0].samples), [(300_000, 300f64.to_bits())]);
    assert_eq!(got[0].start_timestamps, [7]);
    // Without the hint, everything in range.
    let all = q.select(&[Matcher::equal("__name__", "m")]).unwrap();
    assert!(all
        .iter()
        .all(|s| s.samples.len() + s.histograms.len() == 200));
}
