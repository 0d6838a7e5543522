//! Runs the promqltest scripts: ours in `testdata/promql/*.test` (must all pass) and, when
//! `../shared/conformance/promqltest/` is present, the upstream corpus (every eval that does
//! not need native histograms must pass; those are skipped and counted).

use std::path::{Path, PathBuf};

use augur_engine::promqltest::run::{run_script, script_engine, Outcome};
use augur_testdata::TempTsdb;

/// A fresh TSDB in its own temp dir.
fn fresh() -> TempTsdb {
    TempTsdb::new().unwrap()
}

/// Upstream evals Augur knowingly differs on, with the reason. They are counted as skipped.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

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
    o.failures.retain(|f| {
        let known = KNOWN_DIFFERENCES
            .iter()
            .find(|(at, _)| f.starts_with(&format!("{at}:")));
        if let Some((at, why)) = known {
            eprintln!("known difference {at}: {why}");
        }
        known.is_none()
    });
    let known = o.failed - o.failures.len();
    o.failed -= known;
    o.skipped += known;
    report("upstream corpus", &o);
    // Every eval that EVAL_INDEX.tsv marks float-only must have run (not been skipped).
    let index = std::fs::read_to_string(dir.join("EVAL_INDEX.tsv")).unwrap();
    let float_only: Vec<String> = index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(6) == Some(&"y")).then(|| format!("{}:{}", cols[0], cols[1]))
        })
        .collect();
    let skipped_float: Vec<&String> = float_only
        .iter()
        .filter(|k| o.skipped_evals.contains(k))
        .collect();
    eprintln!(
        "float-only evals: {}, of which skipped: {} {:?}",
        float_only.len(),
        skipped_float.len(),
        skipped_float
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
