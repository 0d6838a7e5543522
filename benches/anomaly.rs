//! Anomaly-function benchmarks: each function as an instant query over 10,000 series with a
//! 1 h window at 15 s resolution, against `avg_over_time` on the same window; and
//! `seasonal_baseline(x[4w], 1w)` against `avg_over_time(x[4w])` over 4 weeks of 200
//! series.
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

criterion_group!(benches, one_hour, four_weeks);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
