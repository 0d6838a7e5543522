//! The `augur` binary: `augur serve` runs the server; `augur rules` checks and tests rule
//! files; `augur tsdb import`, `augur backtest` and `augur nab` backfill history and score
//! detectors on it; `augur demo` ingests generated node-exporter/HTTP data and reads it back.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use augur_api::{ServeArgs, Server};
use augur_storage::{Appendable, Matcher, Options, Queryable, Tsdb};
use augur_testdata::{Generator, SCRAPE_INTERVAL_MS};
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: augur_api::GlobalAllocator = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "augur",
    version,
    about = "Prometheus-compatible time-series store and rule engine",
    // A flag given twice takes its last value, so wrapper scripts can set defaults.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: remote-write receiver, Prometheus HTTP API, /metrics.
    Serve(Box<ServeArgs>),
    /// Check rule files or run rule unit tests (promtool's `check rules` / `test rules`).
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Work on a store's data offline (`import`: backfill history from exposition files).
    Tsdb {
        #[command(subcommand)]
        command: TsdbCommand,
    },
    /// Score a detector expression against labelled incidents (NAB score, precision, recall).
    Backtest(Box<augur_api::backtest_cli::BacktestArgs>),
    /// Import the Numenta Anomaly Benchmark files into a fresh store and score an expression.
    Nab(augur_api::backtest_cli::NabArgs),
    /// Ingest an hour of generated data into the store, then query it back.
    Demo {
        /// Where the store lives.
        #[arg(long = "storage.tsdb.path", default_value = "./data")]
        path: PathBuf,
        /// How many series to generate (rounded up to whole targets of 100).
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// How many minutes of 15 s scrapes to write, ending now.
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
}

#[derive(Subcommand, Debug)]
enum TsdbCommand {
    /// Write samples of any age into a store (like promtool tsdb create-blocks-from).
    Import {
        #[command(subcommand)]
        format: ImportFormat,
    },
}

#[derive(Subcommand, Debug)]
enum ImportFormat {
    /// OpenMetrics or Prometheus text exposition with a timestamp on every sample.
    Openmetrics(augur_api::backtest_cli::ImportArgs),
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Validate rule files; warn about rules that can never produce output.
    Check {
        /// Treat lint warnings as errors.
        #[arg(long)]
        strict: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate rule groups over past time as the server would have, and write the results
    /// (promtool tsdb create-blocks-from rules, vmalert -replay).
    Replay(Box<augur_api::backtest_cli::ReplayArgs>),
    /// Run rule unit tests written in promtool's format.
    Test {
        /// Run only test groups whose name matches this regex (repeatable, OR-ed).
        #[arg(long)]
        run: Vec<String>,
        /// Accept unknown keys in the rule files under test.
        #[arg(long = "ignore-unknown-fields")]
        ignore_unknown_fields: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn rules_command(cmd: RulesCommand) -> Result<()> {
    let code = match cmd {
        RulesCommand::Replay(args) => augur_api::backtest_cli::replay(*args),
        RulesCommand::Check { strict, files } => augur_api::rules_cli::check(&files, strict),
        RulesCommand::Test {
            run,
            ignore_unknown_fields,
            files,
        } => {
            let mut regexes = Vec::new();
            for r in run {
                match regex::Regex::new(&r) {
                    Ok(re) => regexes.push(re),
                    Err(e) => {
                        eprintln!("augur rules test: invalid --run regex {r:?}: {e}");
                        std::process::exit(2);
                    }
                }
            }
            let opts = augur_rules::unittest::TestOptions {
                run: regexes,
                ignore_unknown_fields,
            };
            augur_api::rules_cli::test(&files, opts)
        }
    };
    std::process::exit(code);
}

fn init_logging(level: &str) -> Result<()> {
    if !matches!(level, "trace" | "debug" | "info" | "warn" | "error") {
        anyhow::bail!("invalid --log.level {level:?}: use debug, info, warn or error");
    }
    // Logs go to stderr, as Prometheus's do; colours only on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            init_logging(&args.log_level)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(serve(*args))
        }
        Command::Rules { command } => rules_command(command),
        Command::Tsdb {
            command:
                TsdbCommand::Import {
                    format: ImportFormat::Openmetrics(args),
                },
        } => std::process::exit(augur_api::backtest_cli::import(args)),
        Command::Backtest(args) => std::process::exit(augur_api::backtest_cli::backtest(*args)),
        Command::Nab(args) => std::process::exit(augur_api::backtest_cli::nab(args)),
        Command::Demo {
            path,
            series,
            minutes,
        } => {
            init_logging("info")?;
            demo(&path, series, minutes)
        }
    }
}

/// Runs the server until SIGTERM or SIGINT; SIGHUP reloads the configuration.
async fn serve(args: ServeArgs) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut server = Server::start(args).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut opened = false;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => {
                let st = server.state.clone();
                // Errors are logged and counted by reload itself.
                let _ = tokio::task::spawn_blocking(move || st.reload()).await;
            }
            r = server.wait_ready(), if !opened => {
                opened = true;
                if let Err(e) = r {
                    let _ = server.shutdown().await;
                    anyhow::bail!("{e}");
                }
            }
        }
    }
    server.shutdown().await
}

fn demo(path: &PathBuf, series: usize, minutes: i64) -> Result<()> {
    let started = Instant::now();
    let db = Tsdb::open(path, Options::default())
        .with_context(|| format!("cannot open the store at {}", path.display()))?;
    let rec = db.recovery_stats();
    println!(
        "opened {} in {:.2}s: {} series recovered, {} WAL records replayed",
        path.display(),
        started.elapsed().as_secs_f64(),
        rec.series,
        rec.wal_records
    );

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let scrapes = (minutes * 60_000 / SCRAPE_INTERVAL_MS).max(1);
    let start = now - scrapes * SCRAPE_INTERVAL_MS;
    let mut gen = Generator::new(series, start, now as u64);
    println!(
        "ingesting {scrapes} scrapes of {} series ...",
        gen.series_count()
    );
    let t = Instant::now();
    let (mut accepted, mut rejected) = (0usize, 0usize);
    let mut last_report = Instant::now();
    for i in 0..scrapes {
        let mut app = db.appender();
        gen.scrape_each(|l, t, v| {
            // Generated labels are always valid.
            let _ = app.append(l, t, v);
        });
        let report = app.commit()?;
        accepted += report.accepted;
        rejected += report.rejected.len();
        if last_report.elapsed() > Duration::from_secs(2) {
            println!("  {}/{scrapes} scrapes", i + 1);
            last_report = Instant::now();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "wrote {accepted} samples in {secs:.2}s ({:.0} samples/s), {rejected} rejected (older than data already stored)",
        accepted as f64 / secs
    );

    let q = db.querier(start, now)?;
    let names = q.label_values("__name__", &[])?;
    println!(
        "{} metric names, e.g. {}",
        names.len(),
        names.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
    );
    let t = Instant::now();
    let up = q.select(&[Matcher::equal("__name__", "up")])?;
    let points: usize = up.iter().map(|s| s.samples.len()).sum();
    println!(
        "select up: {} series, {points} samples in {:.1} ms",
        up.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    if let Some(s) = up.first() {
        println!(
            "  first: {} with {} samples, last value {}",
            s.labels,
            s.samples.len(),
            s.samples.last().map_or(f64::NAN, |s| s.v)
        );
    }
    drop(q);
    let stats = db.stats();
    println!(
        "head: {} series, {} open chunks, {:.1} MiB; on disk: {}",
        stats.series,
        stats.open_chunks,
        stats.head_bytes as f64 / (1 << 20) as f64,
        stats
            .sst_bytes
            .iter()
            .map(|(n, b)| format!("{n} {:.1} MiB", *b as f64 / (1 << 20) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    db.close()?;
    println!("closed cleanly; run again to see recovery and more data appended");
    Ok(())
}
