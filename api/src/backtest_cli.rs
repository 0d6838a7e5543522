//! `augur tsdb import`, `augur backtest` and `augur nab`: the command-line side of the
//! backtest crate (flags, opening the store, progress, exit codes).
//!
//! Exit codes: 0 done, 1 the work failed or (import) skipped samples under `--strict`,
//! 2 bad usage or input (clap's own errors included).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use augur_backtest::import::Importer;
use augur_backtest::score::PROFILES;
use augur_backtest::{nab, Incidents, Spec, Step};
use augur_engine::{Engine, EngineOptions};
use augur_storage::{Options, Tsdb};

use crate::flags::{duration, retention};
use crate::params::parse_time;
use crate::rules_cli::on_big_stack;

fn time(s: &str) -> Result<i64, String> {
    parse_time(s).map_err(|e| format!("{e} (use RFC 3339 or unix seconds)"))
}

fn step(s: &str) -> Result<Step, String> {
    if s == "auto" {
        return Ok(Step::Auto);
    }
    match duration(s)? {
        0 => Err("the step must be positive (or auto)".into()),
        ms => Ok(Step::Fixed(ms)),
    }
}

fn profile(s: &str) -> Result<usize, String> {
    PROFILES
        .iter()
        .position(|p| p.name == s || p.nab_name == s)
        .ok_or_else(|| format!("unknown profile {s:?}: use standard, low_fp or low_fn"))
}

/// The store flags `import`, `backtest` and `nab` share with `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory of the TSDB (must not be in use by a running server).
    #[arg(long = "storage.tsdb.path", default_value = "./data")]
    pub path: PathBuf,
    /// How long to keep samples, counted back from the newest one (as `serve` does): older
    /// samples are refused on import and hidden from queries.
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d", value_parser = retention)]
    pub retention_ms: i64,
}

/// `augur tsdb import openmetrics`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Stop at the first malformed line or skipped sample (exit code 1).
    #[arg(long)]
    pub strict: bool,
    /// OpenMetrics files (ending in `# EOF`; timestamps in seconds) or Prometheus text
    /// format files (timestamps in milliseconds); every sample needs a timestamp.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `augur backtest`.
#[derive(clap::Args, Debug, Clone)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The detector: a PromQL expression whose output series are anomaly scores over time
    /// (higher = more anomalous), one per key.
    #[arg(long)]
    pub expr: String,
    /// Start of the range (RFC 3339 or unix seconds); default: the oldest stored sample.
    #[arg(long, value_parser = time)]
    pub start: Option<i64>,
    /// End of the range; default: the newest stored sample.
    #[arg(long, value_parser = time)]
    pub end: Option<i64>,
    /// Evaluation step (e.g. 1m), or `auto`: the timestamps of each key's raw samples.
    #[arg(long, default_value = "auto", value_parser = step)]
    pub step: Step,
    /// Labelled anomaly windows per key (YAML or JSON; see docs/backtest.md).
    #[arg(long)]
    pub incidents: PathBuf,
    /// The label whose value keys a score series to its incidents.
    #[arg(long = "key-label", default_value = "job")]
    pub key_label: String,
    /// The cost profile whose threshold the metrics and per-key lines use.
    #[arg(long, default_value = "standard", value_parser = profile)]
    pub profile: usize,
    /// Use this threshold instead of sweeping for NAB's best.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Also report the threshold with the best recall among those with at least this
    /// row-level precision (the seed's calibration rule).
    #[arg(long = "target-precision")]
    pub target_precision: Option<f64>,
    /// Write `key,timestamp,score` for every row with a score.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `augur nab`.
#[derive(clap::Args, Debug, Clone)]
pub struct NabArgs {
    /// The NAB folder (`data/`, `labels/combined_windows.json`).
    #[arg(long, default_value = "../shared/nab")]
    pub data: PathBuf,
    /// The detector, over series `nab_value{file="<category>/<name>"}`.
    #[arg(long, default_value = "abs(zscore(nab_value[7d]))")]
    pub expr: String,
    /// A fresh (absent or empty) directory to import into, kept afterwards; default: a
    /// temporary directory, removed at the end.
    #[arg(long = "storage.tsdb.path")]
    pub path: Option<PathBuf>,
    /// Write `key,timestamp,score` for every row with a score.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// The exit code of a failed command: 1 when the store failed, 2 when the input was bad.
fn exit_code(e: &augur_backtest::Error) -> i32 {
    match e {
        augur_backtest::Error::Storage(_) => 1,
        augur_backtest::Error::Input { .. } | augur_backtest::Error::Query(_) => 2,
    }
}

/// Opens a store for a tool, explaining a lock held by a running server.
fn open_store(path: &Path, retention_ms: i64) -> Result<Tsdb, String> {
    let opts = Options {
        retention: Duration::from_millis(retention_ms.max(0) as u64),
        background: false,
        ..Options::default()
    };
    Tsdb::open(path, opts).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("LOCK") || msg.contains("lock") {
            format!(
                "cannot open the store at {}: it is locked ({}) by another process, most likely a running `augur serve`; stop it first, or work on a copy of the directory ({msg})",
                path.display(),
                path.join("LOCK").display()
            )
        } else {
            format!("cannot open the store at {}: {msg}", path.display())
        }
    })
}

/// A progress line on stderr, only on a terminal, at most every 200 ms.
struct ProgressLine {
    on: bool,
    last: Instant,
    started: Instant,
}

impl ProgressLine {
    fn new() -> Self {
        ProgressLine {
            on: std::io::stderr().is_terminal(),
            last: Instant::now(),
            started: Instant::now(),
        }
    }

    fn show(&mut self, what: &str, done: u64, total: u64, samples: u64) {
        if !self.on || (self.last.elapsed() < Duration::from_millis(200) && done < total) {
            return;
        }
        self.last = Instant::now();
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let rate = samples as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!("\r\x1b[K{what}: {pct:>3}%  {samples} samples  {rate:.0} samples/s");
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

fn print_problems(problems: &[String], skipped: u64) {
    for p in problems {
        eprintln!("{p}");
    }
    if skipped as usize > problems.len() {
        eprintln!(
            "... and {} more problems (the first 10 of each kind are shown)",
            skipped as usize - problems.len()
        );
    }
}

/// `augur tsdb import openmetrics FILE…`: returns the exit code.
pub fn import(args: ImportArgs) -> i32 {
    let db = match open_store(&args.store.path, args.store.retention_ms) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("augur tsdb import: {e}");
            return 1;
        }
    };
    let mut importer = Importer::new(&db, args.strict);
    let mut progress = ProgressLine::new();
    let mut failed = None;
    for f in &args.files {
        let name = f.display().to_string();
        let mut cb =
            |done: u64, total: u64, samples: u64| progress.show(&name, done, total, samples);
        match importer.exposition_file(&name, &mut cb) {
            Ok(format) => {
                progress.clear();
                eprintln!("{name}: read as {}", format.name());
            }
            Err(e) => {
                progress.clear();
                failed = Some(e);
                break;
            }
        }
    }
    let summary = importer.summary.clone();
    drop(importer);
    let skipped: u64 = summary.skipped.values().sum();
    print_problems(&summary.problems, skipped);
    if let Err(e) = db.close() {
        eprintln!("augur tsdb import: writing the final checkpoint failed: {e}");
        return 1;
    }
    println!("{}", summary.line());
    match failed {
        Some(e @ augur_backtest::Error::Input { .. }) if args.strict => {
            eprintln!("augur tsdb import: stopped (--strict): {e}");
            1
        }
        Some(e) => {
            eprintln!("augur tsdb import: {e}");
            exit_code(&e)
        }
        None => 0,
    }
}

/// `augur backtest`: returns the exit code.
pub fn backtest(args: BacktestArgs) -> i32 {
    let incidents = match Incidents::load(&args.incidents.display().to_string()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("augur backtest: {e}");
            return 2;
        }
    };
    let db = match open_store(&args.store.path, args.store.retention_ms) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("augur backtest: {e}");
            return 1;
        }
    };
    let stats = db.stats();
    let (Some(start), Some(end)) = (args.start.or(stats.min_t), args.end.or(stats.max_t)) else {
        eprintln!(
            "augur backtest: the store at {} holds no samples; import some first (augur tsdb import)",
            args.store.path.display()
        );
        return 2;
    };
    let spec = Spec {
        expr: &args.expr,
        start,
        end,
        step: args.step,
        key_label: &args.key_label,
    };
    let opts = augur_backtest::Options {
        threshold: args.threshold,
        profile: PROFILES[args.profile],
        target_precision: args.target_precision,
    };
    run_backtest(&db, &spec, &incidents, &opts, args.output.as_deref())
}

/// Runs a backtest on a big stack (deep expressions recurse) and prints the report.
fn run_backtest(
    db: &Tsdb,
    spec: &Spec<'_>,
    incidents: &Incidents,
    opts: &augur_backtest::Options,
    output: Option<&Path>,
) -> i32 {
    let mut file = match output.map(std::fs::File::create).transpose() {
        Ok(f) => f.map(std::io::BufWriter::new),
        Err(e) => {
            eprintln!("augur backtest: cannot write --output: {e}");
            return 2;
        }
    };
    let engine = Engine::new(EngineOptions {
        // A backtest is a batch job over long history: no wall-clock limit.
        timeout: Duration::from_secs(24 * 3600),
        ..EngineOptions::default()
    });
    let result = on_big_stack(|| {
        let csv = file.as_mut().map(|f| f as &mut dyn Write);
        augur_backtest::backtest(&engine, db, spec, incidents, opts, csv)
    });
    match result {
        Some(Ok((text, _))) => {
            print!("{text}");
            if let Some(Err(e)) = file.as_mut().map(Write::flush) {
                eprintln!("augur backtest: cannot write --output: {e}");
                return 1;
            }
            0
        }
        Some(Err(e)) => {
            eprintln!("augur backtest: {e}");
            exit_code(&e)
        }
        None => {
            eprintln!("augur backtest: the evaluation crashed");
            1
        }
    }
}

/// `augur nab`: imports the NAB corpus into a fresh store and scores an expression on it.
pub fn nab(args: NabArgs) -> i32 {
    let started = Instant::now();
    let (files, incidents) = match nab::read_corpus(&args.data) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("augur nab: {e}");
            return 2;
        }
    };
    let temp;
    let path = match &args.path {
        Some(p) => {
            if std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some()) {
                eprintln!(
                    "augur nab: {} is not empty; give a fresh directory (or none, for a temporary one)",
                    p.display()
                );
                return 2;
            }
            p.clone()
        }
        None => match tempfile::TempDir::new() {
            Ok(t) => {
                temp = t;
                temp.path().to_path_buf()
            }
            Err(e) => {
                eprintln!("augur nab: cannot create a temporary directory: {e}");
                return 1;
            }
        },
    };
    // NAB spans 2011-2015: keep everything.
    let db = match open_store(&path, 100 * 365 * 86_400_000) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("augur nab: {e}");
            return 1;
        }
    };
    let mut importer = Importer::new(&db, true);
    let nudged: usize = files.iter().map(|f| f.nudged).sum();
    for f in &files {
        if let Err(e) = importer.series(&f.path, f.labels.clone(), &f.rows) {
            eprintln!("augur nab: {e}");
            return 1;
        }
    }
    let (start, end) = files
        .iter()
        .flat_map(|f| [f.rows.first(), f.rows.last()])
        .flatten()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (_, s)| {
            (lo.min(s.t), hi.max(s.t))
        });
    eprintln!(
        "{}; {nudged} rows moved 1 ms after a repeated or earlier timestamp",
        importer.summary.line()
    );
    drop(importer);
    let spec = Spec {
        expr: &args.expr,
        start,
        end,
        step: Step::Auto,
        key_label: nab::KEY_LABEL,
    };
    let opts = augur_backtest::Options {
        threshold: None,
        profile: PROFILES[0],
        target_precision: None,
    };
    let code = run_backtest(&db, &spec, &incidents, &opts, args.output.as_deref());
    eprintln!("augur nab: {:.1}s in all", started.elapsed().as_secs_f64());
    code
}

/// `augur rules replay`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Start of the range of evaluation times (RFC 3339 or unix seconds).
    #[arg(long, value_parser = time)]
    pub start: i64,
    /// End of the range (inclusive); default: the newest stored sample.
    #[arg(long, value_parser = time)]
    pub end: Option<i64>,
    /// Interval of groups that set none (the config's global.evaluation_interval).
    #[arg(long = "evaluation-interval", default_value = "1m", value_parser = duration)]
    pub interval_ms: i64,
    /// Evaluate and report, but write nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// How many firing alerts to list per rule.
    #[arg(long = "show-alerts", default_value_t = 5)]
    pub show: usize,
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

fn human_duration(ms: i64) -> String {
    crate::config::format_duration(ms.max(0))
}

/// `augur rules replay FILE…`: returns the exit code.
pub fn replay(args: ReplayArgs) -> i32 {
    let db = match open_store(&args.store.path, args.store.retention_ms) {
        Ok(db) => std::sync::Arc::new(db),
        Err(e) => {
            eprintln!("augur rules replay: {e}");
            return 1;
        }
    };
    let Some(end) = args.end.or(db.stats().max_t) else {
        eprintln!("augur rules replay: the store holds no samples; give --end");
        return 2;
    };
    let files: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let opts = augur_backtest::replay::ReplayOptions {
        start: args.start,
        end,
        default_interval_ms: args.interval_ms.max(1),
        dry_run: args.dry_run,
        external_labels: Default::default(),
        external_url: String::new(),
    };
    let engine = std::sync::Arc::new(Engine::new(EngineOptions {
        default_subquery_step_ms: args.interval_ms.max(1),
        ..EngineOptions::default()
    }));
    let base: std::sync::Arc<dyn augur_backtest::overlay::Base> = db.clone();
    let mut line = ProgressLine::new();
    let result = on_big_stack(|| {
        let mut cb = |what: &str, done: usize, total: usize| {
            line.show(what, done as u64, total as u64, done as u64)
        };
        augur_backtest::replay::replay(base, engine, &files, &opts, &mut cb)
    });
    line.clear();
    let report = match result {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("augur rules replay: {e}");
            return exit_code(&e);
        }
        None => {
            eprintln!("augur rules replay: the evaluation crashed");
            return 1;
        }
    };
    println!(
        "replayed {} group(s) from {} to {}:",
        report.groups.len(),
        rfc3339(args.start),
        rfc3339(end)
    );
    for (g, slots, mode) in &report.groups {
        let how = match mode {
            augur_backtest::replay::Mode::RuleByRule { ranged } => {
                format!("rule by rule, {ranged} rule(s) by range queries")
            }
            augur_backtest::replay::Mode::SlotBySlot => {
                "slot by slot (a rule reads what it or a later rule writes)".into()
            }
        };
        println!("  group {g}: {slots} evaluations, {how}");
    }
    for r in &report.rules {
        let fails = match (&r.first_error, r.failures) {
            (Some(e), n) => format!(", {n} failed evaluations (first: {e})"),
            _ => String::new(),
        };
        if !r.alerting {
            println!("record {}: {} evaluations{fails}", r.name, r.evaluations);
            continue;
        }
        println!(
            "alert {}: {} alert(s) would have fired, firing {} in all, over {} evaluations{fails}",
            r.name,
            r.episodes.len(),
            human_duration(r.firing_ms(end)),
            r.evaluations
        );
        for e in r.episodes.iter().take(args.show) {
            let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            println!(
                "    {{{}}} from {} to {}",
                labels.join(", "),
                rfc3339(e.start),
                e.end
                    .map_or_else(|| "the end (still firing)".to_owned(), rfc3339)
            );
        }
        if r.episodes.len() > args.show {
            println!("    ... and {} more", r.episodes.len() - args.show);
        }
    }
    match &report.flush {
        Some(f) => println!(
            "wrote {} samples of {} series in {:.2}s{}",
            f.written,
            f.series,
            report.seconds,
            if f.conflicts + f.out_of_bounds > 0 {
                format!(
                    "; skipped {} that conflict with stored samples and {} past retention",
                    f.conflicts, f.out_of_bounds
                )
            } else {
                String::new()
            }
        ),
        None => println!(
            "dry run: {} samples evaluated in {:.2}s, nothing written",
            report.samples, report.seconds
        ),
    }
    drop(db);
    0
}
