//! Runs the promqltest scripts: ours in `testdata/promql/*.test` (must all pass) and, when
//! `../shared/conformance/promqltest/` is present, the upstream corpus (every eval must pass
//! but those listed in `promqltest_gaps.tsv`, each with its reason).

use std::path::{Path, PathBuf};

use augur_engine::promqltest::run::{run_script, script_engine, Outcome};
use augur_testdata::TempTsdb;

/// A fresh TSDB in its own temp dir.
fn fresh() -> TempTsdb {
    TempTsdb::new().unwrap()
}

/// Upstream evals Augur does not pass yet, one per line: `file:line<TAB>reason`
/// (`promqltest_gaps.tsv` beside this file). They run; a listed eval that fails is counted
/// and reported as a known gap, a listed eval that passes fails the test until its line is
/// removed, so the list only shrinks.
fn known_gaps() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(manifest_dir().join("tests/promqltest_gaps.tsv"))
        .expect("engine/tests/promqltest_gaps.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (at, why) = l.split_once('\t').unwrap_or((l, ""));
            (at.to_owned(), why.to_owned())
        })
        .collect()
}

fn run_dir(dir: &Path) -> Outcome {
    let engine = script_engine();
    let mut total = Outcome::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let o = run_script(&name, &text, &engine, &mut fresh);
        eprintln!("{name}: {}", o.summary());
        total.merge(o);
    }
    total
}

fn report(what: &str, o: &Outcome) {
    for f in &o.failures {
        eprintln!("FAIL {f}");
    }
    for (reason, n) in &o.skip_reasons {
        eprintln!("skipped {n}: {reason}");
    }
    eprintln!("{what}: {}", o.summary());
}

/// Our own scripts: every eval must pass, none may be skipped.
#[test]
fn augur_promql_scripts() {
    let dir = manifest_dir().join("../testdata/promql");
    let o = run_dir(&dir);
    report("testdata/promql", &o);
    assert!(o.passed > 0, "no evals ran in {}", dir.display());
    assert_eq!(
        (o.failed, o.skipped),
        (0, 0),
        "testdata/promql: {}",
        o.summary()
    );
}

#[test]
fn upstream_promql_corpus() {
    let dir = manifest_dir().join("../../shared/conformance/promqltest");
    if !dir.is_dir() {
        eprintln!("SKIPPED upstream_promql_corpus: ../shared/conformance/promqltest is absent");
        return;
    }
    let mut o = run_dir(&dir);
    let gaps = known_gaps();
    let mut by_reason: std::collections::BTreeMap<&str, usize> = Default::default();
    let failed_at: Vec<String> = o
        .failures
        .iter()
        .map(|f| f.splitn(3, ':').take(2).collect::<Vec<_>>().join(":"))
        .collect();
    let now_passing: Vec<&str> = gaps
        .iter()
        .filter(|(at, _)| !failed_at.contains(at))
        .map(|(at, _)| at.as_str())
        .collect();
    o.failures.retain(|f| {
        let known = gaps.iter().find(|(at, _)| f.starts_with(&format!("{at}:")));
        if let Some((_, why)) = known {
            *by_reason.entry(why.as_str()).or_default() += 1;
        }
        known.is_none()
    });
    let known = o.failed - o.failures.len();
    o.failed -= known;
    report("upstream corpus", &o);
    eprintln!("KNOWN GAPS (engine/tests/promqltest_gaps.tsv): {known} evals fail as listed");
    for (why, n) in &by_reason {
        eprintln!("  {n:4}  {why}");
    }
    assert!(
        now_passing.is_empty(),
        "evals listed in promqltest_gaps.tsv now pass, remove them: {now_passing:?}"
    );
    // Every eval of the corpus ran: EVAL_INDEX.tsv lists them all.
    let index = std::fs::read_to_string(dir.join("EVAL_INDEX.tsv")).unwrap();
    let listed = index.lines().skip(1).count();
    assert_eq!(
        o.passed + o.failed + known,
        listed,
        "evals run vs EVAL_INDEX.tsv"
    );
    assert_eq!(o.failed, 0, "upstream corpus: {}", o.summary());
}

/// This crate's directory, read when the test runs: with a target directory shared between
/// checkouts (as `.ci/run` does), a binary built in another checkout must not read its files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
