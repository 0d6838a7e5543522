//! `augur rules check` and `augur rules test`: promtool's `check rules` and `test rules`,
//! with the output and exit codes promtool has (0 = every file good, 1 = a file failed,
//! 2 = bad usage), plus Augur's lint for rules that can never produce output.

use std::path::PathBuf;
use std::sync::Arc;

use augur_engine::{Engine, EngineOptions, QueryOptions};
use augur_rules::file::{self, ParseOptions, RuleKind};
use augur_rules::unittest::{self, TestOptions};
use augur_rules::{QueryFunc, Storage};
use augur_testdata::TempTsdb;

/// Stack size for evaluating rules and tests (deep expressions recurse).
const STACK_BYTES: usize = 64 << 20;

/// One warning from the lint, located at its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    pub file: String,
    pub line: usize,
    pub group: String,
    pub rule: String,
    pub message: String,
}

impl std::fmt::Display for LintWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: group {:?}, rule {:?}: {}",
            self.file, self.line, self.group, self.rule, self.message
        )
    }
}

/// Lints every rule of a parsed file.
pub fn lint_file(rf: &file::RuleFile) -> Vec<LintWarning> {
    let mut out = Vec::new();
    for g in &rf.groups {
        for r in &g.rules {
            let Ok(expr) = augur_engine::parse(&r.expr, 0, 0) else {
                continue;
            };
            for w in augur_engine::lint::lint(&expr) {
                out.push(LintWarning {
                    file: rf.path.clone(),
                    line: r.line,
                    group: g.name.clone(),
                    rule: r.name().to_string(),
                    message: w.message,
                });
            }
        }
    }
    out
}

/// `augur rules check FILE…`: returns the exit code; the report goes to stdout/stderr.
pub fn check(files: &[PathBuf], strict: bool) -> i32 {
    let mut failed = false;
    for path in files {
        let name = path.to_string_lossy().to_string();
        println!("Checking {name}");
        match file::load(&name, ParseOptions::default()) {
            Ok(rf) => {
                let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                let warnings = lint_file(&rf);
                let dups = duplicate_rules(&rf);
                if strict && !warnings.is_empty() {
                    println!("  FAILED:");
                    for w in &warnings {
                        eprintln!("{w}");
                    }
                    failed = true;
                } else {
                    println!("  SUCCESS: {n} rules found");
                    for w in &warnings {
                        println!("  WARNING: {w}");
                    }
                }
                if !dups.is_empty() {
                    println!("  WARNING: {} duplicate rule(s) found.", dups.len());
                    for d in dups {
                        println!("Metric: {d}");
                    }
                    println!("Might cause inconsistency while recording expressions.");
                }
            }
            Err(errs) => {
                println!("  FAILED:");
                for e in errs {
                    eprintln!("{e}");
                }
                failed = true;
            }
        }
        println!();
    }
    i32::from(failed)
}

/// Recording rules with the same name and labels (promtool's duplicate-rules lint).
fn duplicate_rules(rf: &file::RuleFile) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::new();
    let mut dups = Vec::new();
    for g in &rf.groups {
        for r in &g.rules {
            if let RuleKind::Record(name) = &r.kind {
                let key = (name.clone(), r.labels.clone());
                if seen.insert(key, ()).is_some() {
                    dups.push(name.clone());
                }
            }
        }
    }
    dups
}

/// `augur rules test FILE…`: returns the exit code.
pub fn test(files: &[PathBuf], opts: TestOptions) -> i32 {
    let files = files.to_vec();
    let run = move || {
        let mut failed = false;
        for f in &files {
            let (report, ok) = unittest::run_file(f, &opts, &backend);
            print!("{report}");
            println!();
            failed |= !ok;
        }
        i32::from(failed)
    };
    on_big_stack(run).unwrap_or_else(|| {
        eprintln!("augur rules test: the test runner crashed");
        1
    })
}

/// Runs `f` on a thread with a big stack (deep expressions recurse) and returns its result;
/// `None` when the thread could not start or panicked.
pub fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(STACK_BYTES)
            .spawn_scoped(s, f)
            .ok()?
            .join()
            .ok()
    })
}

/// A fresh store and an engine over it, for one test group.
pub fn backend(
    default_step_ms: i64,
) -> Result<(Arc<dyn Storage + Send + Sync>, QueryFunc), String> {
    let store = Arc::new(TempTsdb::new()?);
    let engine = Arc::new(Engine::new(EngineOptions {
        default_subquery_step_ms: default_step_ms,
        ..EngineOptions::default()
    }));
    Ok((store.clone(), engine_query(engine, store)))
}

/// The query function the server's rule manager uses.
pub fn engine_query(
    engine: Arc<Engine>,
    store: Arc<dyn augur_storage::Queryable + Send + Sync>,
) -> QueryFunc {
    Arc::new(move |q: &str, t: i64, group_interval_ms: i64| {
        let opts = QueryOptions {
            implicit_subquery_step_ms: Some(group_interval_ms).filter(|&s| s > 0),
            ..QueryOptions::default()
        };
        engine.instant(&*store, q, t, &opts).map(|r| r.value)
    })
}
