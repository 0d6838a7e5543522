//! Storage benchmarks: append throughput, `select` latency, and (under `cargo bench`) the
//! on-disk bytes per sample and head memory per series on generated node-exporter/HTTP data.
//!
//! Run: `cargo bench --bench storage` (targets are in `storage/FORMAT.md` and the README).

use std::time::{Duration, Instant};

use augur_benches::{ingest, measuring, prometheus_xor_chunk_bytes, rss_bytes};
use augur_storage::{Appendable, MatchOp, Matcher, Options, Queryable, ReadLimits, Tsdb};
use augur_testdata::{Generator, SCRAPE_INTERVAL_MS};
use criterion::{criterion_group, Criterion, Throughput};
use tempfile::TempDir;

const T0: i64 = 1_700_000_000_000;

fn open(dir: &TempDir) -> Tsdb {
    Tsdb::open(dir.path(), Options::default()).expect("open tsdb")
}

fn append(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let mut gen = Generator::new(1000, T0, 1);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(gen.series_count() as u64));
    group.bench_function("commit_one_scrape_of_1000_series", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let scrape = gen.scrape();
                let start = Instant::now();
                let mut app = db.appender();
                for s in &scrape {
                    app.append(&s.labels, s.t, s.v).unwrap();
                }
                let report = app.commit().unwrap();
                total += start.elapsed();
                assert_eq!(report.accepted, scrape.len());
            }
            total
        })
    });
    group.finish();
}

fn select(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let mut gen = Generator::new(10_000, T0, 2);
    let scrapes = if measuring() { 240 } else { 5 };
    ingest(&db, &mut gen, scrapes);
    let matchers = [Matcher::new(MatchOp::RegexMatch, "instance", "host-.*").unwrap()];
    let maxt = T0 + scrapes as i64 * SCRAPE_INTERVAL_MS;
    let mut group = c.benchmark_group("select");
    group.sample_size(10);
    group.bench_function("regex_10000_series_1h", |b| {
        b.iter(|| {
            let got = db.querier(T0, maxt).unwrap().select(&matchers).unwrap();
            assert_eq!(got.len(), 10_000);
            got
        })
    });
    lookback_reads(&mut group, &db, maxt, "15s_scrapes");
    drop(db);
    // Scraped every second for 10 minutes: the 5-minute lookback reaches past the samples
    // in memory (120 per series) into persisted chunks.
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let mut gen = Generator::with_interval(10_000, T0, 2, 1000);
    let scrapes = if measuring() { 600 } else { 5 };
    ingest(&db, &mut gen, scrapes);
    db.checkpoint().unwrap();
    lookback_reads(&mut group, &db, T0 + scrapes as i64 * 1000, "1s_scrapes");
    group.finish();
}

/// An instant selector's read: the 5-minute lookback window before `maxt`, all of it, or
/// with the hint that only each series' newest sample is needed.
fn lookback_reads(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    db: &Tsdb,
    maxt: i64,
    data: &str,
) {
    let matchers = [Matcher::new(MatchOp::RegexMatch, "instance", "host-.*").unwrap()];
    let newest = ReadLimits {
        newest_only: true,
        ..ReadLimits::default()
    };
    for (name, limits) in [("all", ReadLimits::default()), ("newest_only", newest)] {
        group.bench_function(format!("lookback_5m_10000_series_{data}_{name}"), |b| {
            b.iter(|| {
                let q = db.querier(maxt - 300_000 + 1, maxt).unwrap();
                let got = q.select_limited(&matchers, &limits).unwrap();
                assert_eq!(got.len(), 10_000);
                got
            })
        });
    }
}

/// One day of data for 1,000 series, sealed and fully compacted: bytes on disk per sample, next
/// to what Prometheus's own chunk encoding takes for the same samples.
fn bytes_per_sample(jitter: bool) {
    let variant = if jitter { "jittered" } else { "aligned" };
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let mut gen = Generator::new(1000, T0, 3);
    if !jitter {
        gen = gen.without_jitter();
    }
    let scrapes = 24 * 3600 * 1000 / SCRAPE_INTERVAL_MS as usize;
    eprintln!(
        "bytes/sample ({variant} timestamps): ingesting one day ({scrapes} scrapes of {} series)",
        gen.series_count()
    );
    let samples = ingest(&db, &mut gen, scrapes);
    db.seal_all().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    let stats = db.stats();
    let chunks = stats
        .sst_bytes
        .iter()
        .find(|(n, _)| *n == "chunks")
        .unwrap()
        .1;
    let total: u64 = stats.sst_bytes.iter().map(|(_, b)| b).sum();

    let prometheus: usize = db
        .querier(i64::MIN, i64::MAX)
        .unwrap()
        .select(&[Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()])
        .unwrap()
        .iter()
        .flat_map(|s| {
            s.samples
                .chunks(120)
                .map(|c| c.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>())
        })
        .map(|c| prometheus_xor_chunk_bytes(&c))
        .sum();
    println!(
        "footprint/bytes_per_sample/{variant}: {:.3} bytes/sample in chunks ({:.3} with index, labels and head state); \
         Prometheus's XOR chunks for the same samples: {:.3} bytes/sample ({samples} samples)",
        chunks as f64 / samples as f64,
        total as f64 / samples as f64,
        prometheus as f64 / samples as f64,
    );
}

/// Head memory per active series: 20,000 series, 45 minutes in (one sealed chunk each, the
/// open chunk half full).
fn memory_per_series() {
    let dir = TempDir::new().unwrap();
    let rss_before = rss_bytes();
    let db = Tsdb::open(
        dir.path(),
        Options {
            block_cache_bytes: 8 << 20,
            ..Options::default()
        },
    )
    .unwrap();
    let mut gen = Generator::new(20_000, T0, 4);
    let rss_open = rss_bytes();
    ingest(&db, &mut gen, 180);
    db.checkpoint().unwrap();
    let stats = db.stats();
    let rss_after = rss_bytes();
    println!(
        "footprint/head_memory: {:.0} bytes/series accounted ({} series, {} open chunks)",
        stats.head_bytes as f64 / stats.series as f64,
        stats.series,
        stats.open_chunks
    );
    if let (Some(a), Some(b), Some(c)) = (rss_before, rss_open, rss_after) {
        println!(
            "footprint/head_memory_rss: {:.0} bytes/series of RSS growth after open (RocksDB memtables included; {:.0} MiB at open)",
            c.saturating_sub(b) as f64 / stats.series as f64,
            b.saturating_sub(a) as f64 / (1 << 20) as f64
        );
    }
}

criterion_group!(benches, append, select);

fn main() {
    if measuring() {
        bytes_per_sample(true);
        bytes_per_sample(false);
        memory_per_series();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
