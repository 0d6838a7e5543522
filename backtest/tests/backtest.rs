//! Import, evaluation and scoring end to end, on a real RocksDB in a temp dir: exposition files
//! in, history below existing data, rows that match instant queries, a score that matches a
//! literal re-implementation of NAB's rules, and two files of the NAB corpus (when
//! `../shared/nab` is present beside the checkout; otherwise the test says it skipped).

use std::path::{Path, PathBuf};

use augur_backtest::import::{Importer, Skip};
use augur_backtest::score::{probation, scaled_sigmoid, PROFILES};
use augur_backtest::{nab, Incidents, Options, Spec, Step};
use augur_engine::{Engine, QueryOptions, Value};
use augur_storage::{Appendable, Labels, Matcher, Queryable, Sample, Tsdb};
use tempfile::TempDir;

fn open(dir: &Path) -> Tsdb {
    Tsdb::open(
        dir,
        augur_storage::Options {
            background: false,
            retention: std::time::Duration::from_secs(100 * 365 * 86_400),
            ..augur_storage::Options::default()
        },
    )
    .unwrap()
}

fn read(db: &Tsdb, matchers: &[Matcher]) -> Vec<(String, Vec<(i64, f64)>)> {
    db.querier(i64::MIN + 1, i64::MAX)
        .unwrap()
        .select(matchers)
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples.iter().map(|p| (p.t, p.v)).collect(),
            )
        })
        .collect()
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn no_progress() -> impl FnMut(u64, u64, u64) {
    |_, _, _| {}
}

#[test]
fn openmetrics_import_backfills_history_and_reports_bad_lines() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir.path().join("db"));
    // Live data first: the newest samples of one series.
    let x = Labels::new([("__name__", "http_requests_total"), ("code", "200")]).unwrap();
    let mut app = db.appender();
    app.append(&x, 10_000_000, 50.0).unwrap();
    app.commit().unwrap();

    let om = write_file(
        dir.path(),
        "history.om",
        "# HELP http_requests_total Requests.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{code=\"200\"} 3 3000\n\
         http_requests_total{code=\"200\"} 1 1000\n\
         lat_bucket{le=\"0.1\"} 2 1000\n\
         lat_bucket{le=\"+Inf\"} 4 1000.5\n\
         lat_sum 1.5 1000\n\
         lat_count 4 1000\n\
         http_requests_total{code=\"200\"} 2 2000\n\
         http_requests_total{code=\"200\"} 2 2000\n\
         http_requests_total{code=\"200\"} 9 2000\n\
         http_requests_total{code=\"200\"} 50 10000\n\
         http_requests_total{code=\"200\"} 51 10000\n\
         bad{x=\"1\" 1 1\n\
         no_timestamp 1\n\
         # EOF\n",
    );
    let mut imp = Importer::new(&db, false);
    let format = imp.exposition_file(&om, &mut no_progress()).unwrap();
    assert_eq!(format, augur_backtest::exposition::Format::OpenMetrics);
    let s = imp.summary.clone();
    assert_eq!(s.read, 11);
    // 3 history samples + 1 repeat in the file + 1 repeat of the stored sample, and 4 lat_*.
    assert_eq!(s.written, 9);
    assert_eq!(s.skipped[&Skip::Malformed], 2);
    assert_eq!(s.skipped[&Skip::Conflict], 2);
    assert_eq!(s.series, 5);
    let problems = s.problems.join("\n");
    assert!(
        problems.contains("history.om:14:4: label set is not closed"),
        "{problems}"
    );
    assert!(
        problems.contains("history.om:15:15: sample has no timestamp"),
        "{problems}"
    );
    assert!(problems.contains("history.om:11: sample of"), "{problems}");
    assert!(
        s.line()
            .contains("skipped 4: 2 malformed, 2 conflicting value"),
        "{}",
        s.line()
    );
    drop(imp);

    let got = read(&db, &[Matcher::equal("__name__", "http_requests_total")]);
    assert_eq!(
        got[0].1,
        [
            (1_000_000, 1.0),
            (2_000_000, 2.0),
            (3_000_000, 3.0),
            (10_000_000, 50.0)
        ]
    );
    let got = read(&db, &[Matcher::equal("__name__", "lat_bucket")]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, [(1_000_500, 4.0)], "{got:?}");

    // The Prometheus text format has millisecond timestamps.
    let pt = write_file(
        dir.path(),
        "more.prom",
        "up{job=\"a\"} 1 500\nup{job=\"a\"} 0 400\n",
    );
    let mut imp = Importer::new(&db, false);
    let format = imp.exposition_file(&pt, &mut no_progress()).unwrap();
    assert_eq!(format, augur_backtest::exposition::Format::PrometheusText);
    assert_eq!(
        read(&db, &[Matcher::equal("__name__", "up")])[0].1,
        [(400, 0.0), (500, 1.0)]
    );
}

#[test]
fn strict_import_stops_at_the_first_problem_and_writes_nothing_of_that_file() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir.path().join("db"));
    let f = write_file(dir.path(), "a.prom", "a 1 1000\nb 2\nc 3 3000\n");
    let mut imp = Importer::new(&db, true);
    let err = imp
        .exposition_file(&f, &mut no_progress())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("a.prom:2:4: sample has no timestamp (a backfill needs one on every sample)"),
        "{err}"
    );
    assert!(read(&db, &[Matcher::equal("__name__", "a")]).is_empty());
}

/// A key's scores at the rows NAB would score, and its windows as row indexes: NAB's rules
/// applied literally, one threshold at a time (the reference the sweep must match).
/// One key for the reference: row times, scores, windows.
type RefKey = (Vec<i64>, Vec<Option<f64>>, Vec<(i64, i64)>);

fn reference_raw(keys: &[RefKey], fp: f64, fn_: f64, t: f64) -> f64 {
    let mut raw = 0.0;
    for (times, scores, windows) in keys {
        let n = times.len();
        let prob = probation(n);
        let rows: Vec<(usize, usize)> = windows
            .iter()
            .filter_map(|&(s, e)| {
                let lo = times.iter().position(|&x| x >= s)?;
                let hi = times.iter().rposition(|&x| x <= e)?;
                (lo <= hi).then_some((lo, hi))
            })
            .collect();
        for &(lo, hi) in &rows {
            if hi < prob {
                continue;
            }
            let first = (lo.max(prob)..=hi).find(|&i| scores[i].is_some_and(|s| s >= t));
            raw += match first {
                Some(i) => {
                    let x = -((hi - i + 1) as f64) / (hi - lo + 1) as f64;
                    scaled_sigmoid(x) / scaled_sigmoid(-1.0)
                }
                None => -fn_,
            };
        }
        for (i, score) in scores.iter().enumerate().skip(prob) {
            if !score.is_some_and(|s| s >= t) || rows.iter().any(|&(lo, hi)| i >= lo && i <= hi) {
                continue;
            }
            let prev = rows.iter().rfind(|&&(_, hi)| hi < i);
            raw += fp
                * match prev {
                    None => -1.0,
                    Some(&(lo, hi)) => scaled_sigmoid((i - hi) as f64 / (hi - lo) as f64),
                };
        }
    }
    raw
}

/// Runs an instant query and returns the score of `key` (or none).
fn instant(
    engine: &Engine,
    db: &Tsdb,
    expr: &str,
    t: i64,
    key_label: &str,
    key: &str,
) -> Option<f64> {
    match engine
        .instant(db, expr, t, &QueryOptions::default())
        .unwrap()
        .value
    {
        Value::Vector(v) => v
            .iter()
            .filter(|e| e.labels.get(key_label) == Some(key))
            .map(|e| e.v)
            .reduce(f64::max),
        other => panic!("{other:?}"),
    }
}

#[test]
fn backtest_rows_are_instant_query_results_and_the_score_is_nabs() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir.path().join("db"));
    // Two keys: "a" every 60 s with a nudged repeat and a gap; "b" every 90 s from another
    // offset. A spike in "a" inside its incident window, a false alarm in "b".
    let la = Labels::new([("__name__", "x"), ("job", "a")]).unwrap();
    let lb = Labels::new([("__name__", "x"), ("job", "b")]).unwrap();
    let mut a: Vec<Sample> = (0..400)
        .filter(|i| !(200..210).contains(i))
        .map(|i| Sample::new(i * 60_000, ((i * 7919) % 13) as f64))
        .collect();
    a.push(Sample::new(100 * 60_000 + 1, 5.0));
    a.iter_mut()
        .filter(|s| s.t == 300 * 60_000)
        .for_each(|s| s.v = 100.0);
    let b: Vec<Sample> = (0..300)
        .map(|i| {
            Sample::new(
                7_000 + i * 90_000,
                if i == 250 {
                    80.0
                } else {
                    ((i * 31) % 7) as f64
                },
            )
        })
        .collect();
    use augur_storage::Backfill;
    db.backfill(&la, &a).unwrap();
    db.backfill(&lb, &b).unwrap();
    let inc = Incidents::parse(
        "inc.yml",
        "a: [[17400, 18300]]\nb: []\nc: [[0, 1]]\n", // minutes 290..305 of "a"; "c" is unknown
    )
    .unwrap();
    let engine = Engine::default();
    let expr = "abs(zscore(x[1h]))";
    let spec = Spec {
        expr,
        start: 0,
        end: 400 * 60_000,
        step: Step::Auto,
        key_label: "job",
    };
    let opts = Options {
        threshold: None,
        profile: PROFILES[0],
        target_precision: Some(0.5),
    };
    let mut csv = Vec::new();
    let (text, outcome) =
        augur_backtest::backtest(&engine, &db, &spec, &inc, &opts, Some(&mut csv)).unwrap();
    assert!(
        text.contains("warning: the incidents file names key \"c\""),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("backtest standard="),
        "{text}"
    );

    // Every CSV row is the instant query at its time, and every raw sample time is a row.
    let csv = String::from_utf8(csv).unwrap();
    let mut rows: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let t = (f[1].parse::<f64>().unwrap() * 1000.0).round() as i64;
        rows.entry(f[0].into())
            .or_default()
            .push((t, f[2].parse().unwrap()));
    }
    for (key, samples) in [("a", &a), ("b", &b)] {
        let mut times: Vec<i64> = samples
            .iter()
            .map(|s| s.t)
            .filter(|&t| t <= spec.end)
            .collect();
        times.sort_unstable();
        let got: std::collections::HashMap<i64, f64> = rows[key].iter().copied().collect();
        for &t in &times {
            let want = instant(&engine, &db, expr, t, "job", key);
            let have = got.get(&t).copied();
            match (want, have) {
                (Some(w), Some(h)) => assert!(
                    w == h || (w.is_nan() && h.is_nan()),
                    "{key} at {t}: {w} vs {h}"
                ),
                (None, None) => {}
                _ => panic!("{key} at {t}: instant {want:?}, backtest {have:?}"),
            }
        }
        assert!(rows[key].iter().all(|(t, _)| times.contains(t)));
    }

    // The sweep's best score is the best of NAB's rules applied literally at every threshold.
    let keys: Vec<RefKey> = [("a", &a), ("b", &b)]
        .iter()
        .map(|(key, samples)| {
            let mut times: Vec<i64> = samples
                .iter()
                .map(|s| s.t)
                .filter(|&t| t <= spec.end)
                .collect();
            times.sort_unstable();
            let got: std::collections::HashMap<i64, f64> = rows[*key].iter().copied().collect();
            let scores = times
                .iter()
                .map(|t| got.get(t).copied().filter(|s| !s.is_nan()))
                .collect();
            (
                times,
                scores,
                inc.windows.get(*key).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let mut thresholds: Vec<f64> = keys
        .iter()
        .flat_map(|k| k.1.iter().flatten().copied())
        .collect();
    thresholds.sort_by(|x, y| y.total_cmp(x));
    thresholds.dedup();
    for (pi, p) in PROFILES.iter().enumerate() {
        let null = -p.fn_; // one window past probation
        let best = thresholds
            .iter()
            .map(|&t| reference_raw(&keys, p.fp, p.fn_, t))
            .fold(null, f64::max);
        let got = outcome.profiles[pi];
        assert!(
            (got.raw - best).abs() < 1e-9,
            "{}: sweep {} vs reference {best}",
            p.name,
            got.raw
        );
        let want = 100.0 * (best - null) / (1.0 - null);
        assert!((got.score - want).abs() < 1e-9);
    }
    // The spike is caught at the window's first row with a positive score.
    assert_eq!(outcome.totals.windows_detected, 1);
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir.path().join("db"));
    let engine = Engine::default();
    let inc = Incidents::parse("inc.yml", "a: [[0, 1]]").unwrap();
    let opts = Options {
        threshold: None,
        profile: PROFILES[0],
        target_precision: None,
    };
    let run = |expr: &str, start: i64, end: i64, step: Step| {
        let spec = Spec {
            expr,
            start,
            end,
            step,
            key_label: "job",
        };
        augur_backtest::backtest(&engine, &db, &spec, &inc, &opts, None)
            .unwrap_err()
            .to_string()
    };
    assert!(run("sum(", 0, 10, Step::Auto).starts_with("parse error"));
    assert_eq!(
        run("x", 10, 0, Step::Auto),
        "--end: the end of the time range is before its start"
    );
    assert_eq!(
        run("x", 0, 10, Step::Fixed(0)),
        "--step: the step must be positive (or auto)"
    );
    assert!(run("x", 0, 10, Step::Auto)
        .contains("the incidents file names no key the expression scores"));
}

fn nab_dir() -> Option<PathBuf> {
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let dir = base.join("../../shared/nab");
    dir.join("data").is_dir().then_some(dir)
}

#[test]
fn two_nab_files_end_to_end() {
    let Some(dir) = nab_dir() else {
        eprintln!("SKIPPED two_nab_files_end_to_end: ../shared/nab is absent");
        return;
    };
    let (files, mut incidents) = nab::read_corpus(&dir).unwrap();
    let wanted = [
        "artificialWithAnomaly/art_daily_jumpsdown",
        "realKnownCause/ambient_temperature_system_failure",
    ];
    let files: Vec<_> = files
        .into_iter()
        .filter(|f| wanted.contains(&f.key.as_str()))
        .collect();
    assert_eq!(files.len(), 2, "both files are in the corpus");
    incidents
        .windows
        .retain(|k, _| wanted.contains(&k.as_str()));
    let tmp = TempDir::new().unwrap();
    let db = open(tmp.path());
    let mut imp = Importer::new(&db, true);
    for f in &files {
        imp.series(&f.path, f.labels.clone(), &f.rows).unwrap();
    }
    let rows: usize = files.iter().map(|f| f.rows.len()).sum();
    assert_eq!(imp.summary.written as usize, rows);
    drop(imp);
    let (start, end) = (
        files.iter().map(|f| f.rows[0].1.t).min().unwrap(),
        files
            .iter()
            .map(|f| f.rows.last().unwrap().1.t)
            .max()
            .unwrap(),
    );
    let spec = Spec {
        expr: "abs(zscore(nab_value[1d]))",
        start,
        end,
        step: Step::Auto,
        key_label: nab::KEY_LABEL,
    };
    let opts = Options {
        threshold: None,
        profile: PROFILES[0],
        target_precision: None,
    };
    let engine = Engine::default();
    let (text, outcome) =
        augur_backtest::backtest(&engine, &db, &spec, &incidents, &opts, None).unwrap();
    eprintln!("{text}");
    let total_rows: usize = outcome
        .by_key
        .iter()
        .map(|c| c.tp + c.fp + c.fn_ + c.tn)
        .sum();
    let scored: usize = files
        .iter()
        .map(|f| f.rows.len() - probation(f.rows.len()))
        .sum();
    assert_eq!(total_rows, scored, "every row past probation is scored");
    let windows: usize = incidents.windows.values().map(Vec::len).sum();
    assert_eq!(outcome.totals.windows, windows);
    // A z-score over a day catches the jump in the artificial file.
    assert!(outcome.profiles[0].score > 0.0, "{text}");
}

#[test]
fn with_a_fixed_step_an_unscored_key_with_series_misses_its_windows() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir.path().join("db"));
    use augur_storage::Backfill;
    for job in ["a", "b"] {
        let l = Labels::new([("__name__", "x"), ("job", job)]).unwrap();
        let s: Vec<Sample> = (0..200)
            .map(|i| Sample::new(i * 60_000, (i % 3) as f64))
            .collect();
        db.backfill(&l, &s).unwrap();
    }
    let inc = Incidents::parse(
        "inc.yml",
        "a: [[6000, 6600]]\nb: [[6000, 6600]]\nc: [[0, 1]]\n",
    )
    .unwrap();
    let spec = Spec {
        expr: "abs(zscore(x{job=\"a\"}[1h]))",
        start: 0,
        end: 199 * 60_000,
        step: Step::Fixed(60_000),
        key_label: "job",
    };
    let opts = Options {
        threshold: None,
        profile: PROFILES[0],
        target_precision: None,
    };
    let (text, outcome) =
        augur_backtest::backtest(&Engine::default(), &db, &spec, &inc, &opts, None).unwrap();
    assert!(
        text.contains("note: the expression never scored key \"b\", which has series"),
        "{text}"
    );
    assert!(
        text.contains("warning: the incidents file names key \"c\""),
        "{text}"
    );
    assert_eq!(outcome.by_key.len(), 2);
    assert_eq!(outcome.by_key[1].windows, 1);
    assert_eq!(outcome.by_key[1].windows_detected, 0);
}
