//! Every script of the upstream promqltest corpus parses (when `../shared/conformance` is
//! present beside the checkout; otherwise the test says it skipped).

use std::path::PathBuf;

use augur_engine::promqltest::script::{parse_script, Command};

fn corpus_dir() -> Option<PathBuf> {
    let dir = manifest_dir().join("../../shared/conformance/promqltest");
    dir.is_dir().then_some(dir)
}

#[test]
fn upstream_corpus_scripts_parse() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "SKIPPED upstream_corpus_scripts_parse: ../shared/conformance/promqltest is absent"
        );
        return;
    };
    let mut evals = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "test") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let cmds = parse_script(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        evals += cmds
            .iter()
            .filter(|c| matches!(c, Command::Eval(_)))
            .count();
        files += 1;
    }
    // SOURCE.md: 21 files, 2214 eval statements.
    assert_eq!((files, evals), (21, 2214));
}

/// Every `load` block of the upstream corpus goes into a real TSDB (a fresh one per file and
/// after each `clear`, as the format says) and reads back bit for bit: stale markers, NaN,
/// ±Inf, negative and huge values, gaps, and the start timestamps of `@st` lines.
#[test]
fn upstream_corpus_data_loads_into_the_tsdb_exactly() {
    /// The stored series with exactly these labels (none or one).
    fn read_back(db: &Tsdb, labels: &augur_storage::Labels) -> Vec<augur_storage::Series> {
        let matchers: Vec<Matcher> = labels
            .iter()
            .map(|l| Matcher::equal(l.name, l.value))
            .collect();
        db.querier(i64::MIN, i64::MAX)
            .unwrap()
            .select(&matchers)
            .unwrap()
            .into_iter()
            .filter(|s| &s.labels == labels)
            .collect()
    }

    use augur_engine::promqltest::load::{histograms_of, load, samples_of, start_timestamps_of};
    use augur_storage::{Matcher, Options, Queryable, Tsdb};

    let Some(dir) = corpus_dir() else {
        eprintln!("SKIPPED upstream_corpus_data_loads_into_the_tsdb_exactly: ../shared/conformance/promqltest is absent");
        return;
    };
    let (mut loads, mut samples, mut histograms, mut with_st) = (0, 0, 0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "test") {
            continue;
        }
        let cmds = parse_script(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut tmp = tempfile::TempDir::new().unwrap();
        let mut db = Tsdb::open(
            tmp.path(),
            Options {
                background: false,
                ..Options::default()
            },
        )
        .unwrap();
        // Everything loaded since the last clear, for the read-back check.
        let mut expected: std::collections::BTreeMap<augur_storage::Labels, Vec<(i64, u64, i64)>> =
            Default::default();
        // Histograms by series: (time, digest of the byte form).
        let mut expected_h: std::collections::BTreeMap<augur_storage::Labels, Vec<(i64, u64)>> =
            Default::default();
        for cmd in &cmds {
            match cmd {
                Command::Clear => {
                    drop(db);
                    tmp = tempfile::TempDir::new().unwrap();
                    db = Tsdb::open(
                        tmp.path(),
                        Options {
                            background: false,
                            ..Options::default()
                        },
                    )
                    .unwrap();
                    expected.clear();
                    expected_h.clear();
                }
                Command::Load {
                    step, series, line, ..
                } => {
                    let got = load(&db, *step, series).unwrap();
                    assert!(
                        got.report.rejected.is_empty(),
                        "{}:{line}: {:?}",
                        path.display(),
                        got.report.rejected
                    );
                    loads += 1;
                    samples += got.samples;
                    histograms += got.histograms;
                    for s in series {
                        let sts = start_timestamps_of(s, *step);
                        let want = samples_of(s, *step)
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (x.t, x.v.to_bits(), sts.get(i).copied().unwrap_or(0)))
                            .collect::<Vec<_>>();
                        with_st += sts.iter().filter(|&&st| st != 0).count();
                        expected.entry(s.labels.clone()).or_default().extend(want);
                        expected_h.entry(s.labels.clone()).or_default().extend(
                            histograms_of(s, *step)
                                .iter()
                                .map(|(t, h)| (*t, h.digest())),
                        );
                    }
                    for (labels, want) in &expected_h {
                        if want.is_empty() {
                            continue;
                        }
                        let have: Vec<(i64, u64)> = read_back(&db, labels)
                            .iter()
                            .flat_map(|s| s.histograms.iter().map(|x| (x.t, x.h.digest())))
                            .collect();
                        assert_eq!(
                            &have,
                            want,
                            "{}:{line}: {labels} histograms",
                            path.display()
                        );
                    }
                    for (labels, want) in &expected {
                        if want.is_empty() {
                            continue;
                        }
                        let found = read_back(&db, labels);
                        let series =
                            found
                                .iter()
                                .find(|s| &s.labels == labels)
                                .unwrap_or_else(|| {
                                    panic!("{}:{line}: {labels} missing after load", path.display())
                                });
                        let st = |i: usize| series.start_timestamps.get(i).copied().unwrap_or(0);
                        let have: Vec<(i64, u64, i64)> = series
                            .samples
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (x.t, x.v.to_bits(), st(i)))
                            .collect();
                        assert_eq!(&have, want, "{}:{line}: {labels}", path.display());
                    }
                }
                Command::Eval(_) => {}
            }
        }
    }
    eprintln!("corpus data: {loads} loads, {samples} float samples ({with_st} with start timestamps) and {histograms} native histograms read back exactly");
    assert!(
        loads > 250 && samples > 10_000 && with_st > 100 && histograms > 1_000,
        "{loads} loads, {samples} samples, {with_st} with start timestamps, {histograms} histograms"
    );
}

/// This crate's directory, read when the test runs: with a target directory shared between
/// checkouts (as `.ci/run` does), a binary built in another checkout must not read its files.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
