//! PromQL engine benchmarks: the five range queries (60 s step) over 6 hours of
//! generated node-exporter/HTTP data for 10,000 series, at 15 s resolution.
//!
//! Run: `cargo bench --workspace --bench engine`. Under `cargo test --benches` the data is a
//! few minutes only, so the queries just run once each as a smoke test.
//!
//! Prometheus comparison: `scripts/bench-prometheus` (see the README) loads the same data
//! into Debian's `prometheus` and times the same queries over its HTTP API.

use augur_benches::{ingest, measuring};
use augur_engine::{Engine, QueryOptions, Value};
use augur_storage::{Options, Tsdb};
use augur_testdata::{Generator, SCRAPE_INTERVAL_MS};
use criterion::{criterion_group, Criterion};
use tempfile::TempDir;

const T0: i64 = 1_700_000_000_000;

/// The queries the engine issue names.
pub const QUERIES: &[(&str, &str)] = &[
    ("sum_rate_by_job", "sum by (job) (rate(http_requests_total[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    ("avg_over_time_1h", "avg_over_time(node_load1[1h])"),
    ("topk", "topk(5, rate(node_network_receive_bytes_total[5m]))"),
    (
        "group_left_join",
        "rate(node_cpu_seconds_total[5m]) * on(instance) group_left(version) node_exporter_build_info",
    ),
];

fn queries(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).expect("open tsdb");
    let mut gen = Generator::new(10_000, T0, 7);
    // 6 h at 15 s = 1440 scrapes.
    let scrapes = if measuring() { 1440 } else { 40 };
    let n = ingest(&db, &mut gen, scrapes);
    eprintln!(
        "engine bench data: {} series, {n} samples",
        gen.series_count()
    );
    let end = T0 + (scrapes as i64 - 1) * SCRAPE_INTERVAL_MS;
    let engine = Engine::default();
    let opts = QueryOptions::default();
    // What each query returns, to compare with Prometheus's answer on the same data
    // (scripts/bench-prometheus prints its series and point counts).
    for (name, q) in QUERIES {
        if let Ok(r) = engine.range(&db, q, T0, end, 60_000, &opts) {
            if let Value::Matrix(m) = r.value {
                let points: usize = m.iter().map(|s| s.samples.len()).sum();
                eprintln!("{name}: {} series, {points} points", m.len());
            }
        }
    }
    let mut group = c.benchmark_group("range_query_6h_step_60s");
    group.sample_size(10);
    for (name, q) in QUERIES {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let r = engine
                    .range(&db, q, T0, end, 60_000, &opts)
                    .expect("query runs");
                match r.value {
                    Value::Matrix(m) => {
                        assert!(!m.is_empty(), "{name} returned no series");
                        m
                    }
                    other => panic!("{name}: unexpected {}", other.type_name()),
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, queries);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
