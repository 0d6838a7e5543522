//! Anomaly-function benchmarks: each function as an instant query over 10,000 series with a
//! 1 h window at 15 s resolution, against `avg_over_time` on the same window;
//! `seasonal_baseline(x[4w], 1w)` against `avg_over_time(x[4w])` over 4 weeks of 200
//! series; and `baseline_zscore(x[30d], 5)` against `avg_over_time(x[30d])` over 30 days of
//! 1,000 series at 1-minute resolution; `anomaly_score(x[3d])` and `(x[14d])` against
//! `avg_over_time` over 14 days of 1,000 series at 5-minute resolution.
//!
//! Every query is wrapped in `count(…)`: the functions drop metric names, and without names
//! the generator's series collide; the count costs the same for every function.
//!
//! Run: `cargo bench --workspace --bench anomaly`. Under `cargo test --benches` the data is
//! a few minutes only and each query runs once as a smoke test.

use augur_benches::{ingest, measuring};
use augur_engine::{Engine, QueryOptions, Value};
use augur_storage::{Options, Tsdb};
use augur_testdata::{Generator, SCRAPE_INTERVAL_MS};
use criterion::{criterion_group, Criterion};
use tempfile::TempDir;

const T0: i64 = 1_700_000_000_000;
const WEEK_SCRAPES: usize = 7 * 24 * 3600 * 1000 / SCRAPE_INTERVAL_MS as usize;

fn run(c: &mut Criterion, group: &str, db: &Tsdb, t: i64, queries: &[(&str, &str)]) {
    let engine = Engine::default();
    let opts = QueryOptions::default();
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for (name, q) in queries {
        let n = match engine.instant(db, q, t, &opts).expect("query runs").value {
            Value::Vector(v) => v.first().map_or(0.0, |e| e.v),
            other => panic!("{name}: unexpected {}", other.type_name()),
        };
        eprintln!("{group}/{name}: {n} series");
        assert!(n > 0.0, "{name} returned nothing");
        g.bench_function(*name, |b| {
            b.iter(|| engine.instant(db, q, t, &opts).unwrap())
        });
    }
    g.finish();
}

fn one_hour(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).expect("open tsdb");
    let mut gen = Generator::new(10_000, T0, 11);
    let scrapes = if measuring() { 240 } else { 12 };
    ingest(&db, &mut gen, scrapes);
    let t = T0 + (scrapes as i64 - 1) * SCRAPE_INTERVAL_MS;
    let sel = r#"{job=~".+"}"#;
    let queries = [
        ("avg_over_time", format!("count(avg_over_time({sel}[1h]))")),
        ("zscore", format!("count(zscore({sel}[1h]))")),
        ("ewma", format!("count(ewma({sel}[1h], 0.1))")),
        ("predict", format!("count(predict({sel}[1h], 3600))")),
    ];
    let queries: Vec<(&str, &str)> = queries.iter().map(|(n, q)| (*n, q.as_str())).collect();
    run(c, "instant_10000_series_1h", &db, t, &queries);
}

fn four_weeks(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).expect("open tsdb");
    // 4 weeks of 200 series at 15 s is 32 M samples, inside the default 50 M sample limit
    // for avg_over_time (which holds every window at once).
    let mut gen = Generator::new(200, T0, 12);
    let scrapes = if measuring() { 4 * WEEK_SCRAPES } else { 40 };
    ingest(&db, &mut gen, scrapes);
    let t = T0 + (scrapes as i64 - 1) * SCRAPE_INTERVAL_MS;
    let (range, period) = if measuring() {
        ("4w", "1w")
    } else {
        ("10m", "2m")
    };
    let sel = r#"{job=~".+"}"#;
    let queries = [
        (
            "avg_over_time",
            format!("count(avg_over_time({sel}[{range}]))"),
        ),
        (
            "seasonal_baseline",
            format!("count(seasonal_baseline({sel}[{range}], {period}))"),
        ),
    ];
    let queries: Vec<(&str, &str)> = queries.iter().map(|(n, q)| (*n, q.as_str())).collect();
    run(c, "instant_200_series_4w", &db, t, &queries);
}

/// A store holding `series` series `x{job="j<n>"}` of `points` samples `step_ms` apart: a
/// daily cycle around 100 with normal noise, written by backfill.
fn daily_cycles(dir: &TempDir, series: usize, points: i64, step_ms: i64) -> Tsdb {
    use augur_storage::{Backfill, Labels, Sample};
    let db = Tsdb::open(
        dir.path(),
        Options {
            background: false,
            retention: std::time::Duration::from_secs(365 * 86_400),
            ..Options::default()
        },
    )
    .expect("open tsdb");
    let mut rng = augur_testdata::Rng::new(13);
    for s in 0..series {
        let l = Labels::new([("__name__", "x".to_string()), ("job", format!("j{s}"))]).unwrap();
        let samples: Vec<Sample> = (0..points)
            .map(|i| {
                let day = (i * step_ms) % 86_400_000;
                let daily = (day as f64 / 86_400_000.0 * std::f64::consts::TAU).sin();
                Sample::new(T0 + i * step_ms, 100.0 + 20.0 * daily + 5.0 * rng.normal())
            })
            .collect();
        db.backfill(&l, &samples).unwrap();
    }
    db
}

/// The time-aware baselines' target: `baseline_zscore(x[30d], 5)` over 1,000 series at
/// 1-minute resolution within 3× of `avg_over_time(x[30d])` (43.2 M samples, inside the
/// default 50 M sample limit).
fn thirty_days(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let (series, minutes, range) = if measuring() {
        (1000, 30 * 1440, "30d")
    } else {
        (10, 180, "3h")
    };
    let db = daily_cycles(&dir, series, minutes, 60_000);
    let t = T0 + (minutes - 1) * 60_000;
    let sel = r#"{job=~".+"}"#;
    let queries = [
        (
            "avg_over_time",
            format!("count(avg_over_time({sel}[{range}]))"),
        ),
        (
            "baseline_zscore",
            format!("count(baseline_zscore({sel}[{range}], 5))"),
        ),
    ];
    let queries: Vec<(&str, &str)> = queries.iter().map(|(n, q)| (*n, q.as_str())).collect();
    run(c, "instant_1000_series_30d_1m", &db, t, &queries);
}

/// `anomaly_score`'s target: `anomaly_score(x[3d])` over 1,000 series at 5-minute
/// resolution as an instant query in under 1 s; and the 14-day window the NAB figures use.
fn anomaly_score(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let (series, points, ranges) = if measuring() {
        (1000, 14 * 288, ["3d", "14d"])
    } else {
        (10, 120, ["5h", "10h"])
    };
    let db = daily_cycles(&dir, series, points, 300_000);
    let t = T0 + (points - 1) * 300_000;
    let sel = r#"{job=~".+"}"#;
    let queries: Vec<(String, String)> = ranges
        .iter()
        .flat_map(|r| {
            [
                (
                    format!("avg_over_time_{r}"),
                    format!("count(avg_over_time({sel}[{r}]))"),
                ),
                (
                    format!("anomaly_score_{r}"),
                    format!("count(anomaly_score({sel}[{r}]))"),
                ),
            ]
        })
        .collect();
    let queries: Vec<(&str, &str)> = queries
        .iter()
        .map(|(n, q)| (n.as_str(), q.as_str()))
        .collect();
    run(c, "instant_1000_series_5m", &db, t, &queries);
}

criterion_group!(benches, one_hour, four_weeks, thirty_days, anomaly_score);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
