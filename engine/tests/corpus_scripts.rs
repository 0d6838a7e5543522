//! Every script of the upstream promqltest corpus parses (when `../shared/conformance` is
//! present beside the checkout; otherwise the test says it skipped).

use std::path::PathBuf;

use augur_engine::promqltest::script::{parse_script, Command};

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/promqltest");
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
