//! Backtest benchmarks: `augur tsdb import` throughput on generated OpenMetrics (parse,
//! buffer, backfill into a fresh store), and `augur rules replay` of a 1-minute group over many
//! series (a recording rule and an alert reading it).
//!
//! Run: `cargo bench --workspace --bench backtest` (figures in `docs/backtest.md` and the
//! session notes). Under `cargo test --benches` each runs once on small data.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_backtest::import::Importer;
use augur_backtest::replay::{replay, ReplayOptions};
use augur_benches::measuring;
use augur_engine::Engine;
use augur_storage::{Backfill, Labels, Options, Sample, Tsdb};
use augur_testdata::{Generator, SCRAPE_INTERVAL_MS};
use criterion::{criterion_group, Criterion, Throughput};
use tempfile::TempDir;

// As in the `augur` binary.
#[global_allocator]
static ALLOC: augur_api::GlobalAllocator = mimalloc::MiMalloc;

const T0: i64 = 1_700_000_000_000;

fn open(dir: &std::path::Path) -> Tsdb {
    Tsdb::open(
        dir,
        Options {
            background: false,
            retention: Duration::from_secs(10 * 365 * 86_400),
            ..Options::default()
        },
    )
    .unwrap()
}

/// One series' exposition text: `name{a="x",…}`.
fn series_text(l: &Labels) -> String {
    let mut s = l.get("__name__").unwrap_or("x").to_owned();
    let rest: Vec<String> = l
        .iter()
        .filter(|l| l.name != "__name__")
        .map(|l| format!("{}=\"{}\"", l.name, l.value))
        .collect();
    if !rest.is_empty() {
        let _ = write!(s, "{{{}}}", rest.join(","));
    }
    s
}

/// Generated scrapes as OpenMetrics text, grouped by series as exporters' dumps are.
fn openmetrics(series: usize, scrapes: usize) -> (String, usize) {
    let mut gen = Generator::new(series, T0, 7);
    let mut by_series: Vec<(String, String)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut n = 0;
    for _ in 0..scrapes {
        gen.scrape_each(|l, t, v| {
            let i = *index.entry(l.clone()).or_insert_with(|| {
                by_series.push((series_text(l), String::new()));
                by_series.len() - 1
            });
            let (name, lines) = &mut by_series[i];
            let _ = writeln!(lines, "{name} {v} {}.{:03}", t / 1000, t % 1000);
            n += 1;
        });
    }
    let mut text = String::new();
    for (_, lines) in by_series {
        text.push_str(&lines);
    }
    text.push_str("# EOF\n");
    (text, n)
}

fn import(c: &mut Criterion) {
    let (series, scrapes) = if measuring() { (1000, 1000) } else { (100, 20) };
    let dir = TempDir::new().unwrap();
    let (text, samples) = openmetrics(series, scrapes);
    let file = dir.path().join("gen.om");
    std::fs::write(&file, &text).unwrap();
    let file = file.display().to_string();
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function(format!("openmetrics_{series}_series_x_{scrapes}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let store = dir.path().join(format!("db{i}"));
                let db = open(&store);
                let started = Instant::now();
                let mut imp = Importer::new(&db, true);
                imp.exposition_file(&file, &mut |_, _, _| {}).unwrap();
                total += started.elapsed();
                assert_eq!(imp.summary.written as usize, samples);
                drop(imp);
                drop(db);
                let _ = std::fs::remove_dir_all(&store);
            }
            total
        })
    });
    group.finish();
}

const RULES: &str = r#"
groups:
  - name: bench
    interval: 1m
    rules:
      - record: job:x:avg5m
        expr: avg_over_time(x[5m])
      - alert: XHigh
        expr: job:x:avg5m > 0.99
        for: 5m
"#;

fn replay_day(c: &mut Criterion) {
    let (series, minutes) = if measuring() {
        (10_000, 1440)
    } else {
        (50, 60)
    };
    let dir = TempDir::new().unwrap();
    let db = Arc::new(open(&dir.path().join("db")));
    let mut rng = augur_testdata::Rng::new(9);
    let started = Instant::now();
    for s in 0..series {
        let l = Labels::new([
            ("__name__", "x".to_string()),
            ("instance", format!("host-{s}")),
        ])
        .unwrap();
        let samples: Vec<Sample> = (0..minutes as i64 * 4)
            .map(|i| Sample::new(T0 + i * SCRAPE_INTERVAL_MS, rng.f64()))
            .collect();
        db.backfill(&l, &samples).unwrap();
    }
    if measuring() {
        eprintln!(
            "replay: loaded {series} series x {minutes} min at 15 s in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = vec![rules.display().to_string()];
    let engine = Arc::new(Engine::default());
    let opts = ReplayOptions {
        start: T0 + 5 * 60_000,
        end: T0 + minutes as i64 * 60_000,
        default_interval_ms: 60_000,
        dry_run: true,
        external_labels: Default::default(),
        external_url: String::new(),
    };
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.bench_function(
        format!("one_minute_group_{series}_series_{minutes}_min_dry_run"),
        |b| {
            b.iter(|| {
                let base: Arc<dyn augur_backtest::overlay::Base> = db.clone();
                let r = replay(base, engine.clone(), &rules, &opts, &mut |_, _, _| {}).unwrap();
                assert!(r.samples > 0);
                r
            })
        },
    );
    group.finish();
}

criterion_group!(benches, import, replay_day);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
