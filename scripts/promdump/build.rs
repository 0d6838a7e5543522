//! Copies the Generator from `testdata/src/lib.rs` into OUT_DIR so it is always the one the
//! benchmarks use, with its one storage dependency (`augur_storage::Labels`) swapped for the
//! small stand-in in `src/labels.rs`. Fails loudly if the file starts needing more than that.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let src = manifest.join("../../testdata/src/lib.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    let text = fs::read_to_string(&src)
        .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let mut out = String::new();
    let (mut uses, mut tools) = (false, false);
    for line in text.lines() {
        match line.trim() {
            // Inner doc comments cannot be include!d.
            l if l.starts_with("//!") => continue,
            // The tools module (finding/installing Prometheus for tests) and the temporary
            // store (augur_storage) are not needed here.
            "pub mod tools;" => tools = true,
            "mod temp;" | "pub use temp::TempTsdb;" => continue,
            "use augur_storage::Labels;" => {
                out.push_str("use crate::labels::Labels;\n");
                uses = true;
            }
            l if l.contains("augur_storage") || l.contains("crate::") => panic!(
                "{} now needs more than augur_storage::Labels; update scripts/promdump: {l}",
                src.display()
            ),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(
        uses && tools,
        "{} changed shape (expected `use augur_storage::Labels;` and `pub mod tools;`); \
         update scripts/promdump/build.rs",
        src.display()
    );
    let dst = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("generator.rs");
    fs::write(&dst, out).unwrap();
}
