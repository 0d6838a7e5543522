//! Every fuzz target on its seeds and on every input under `fuzz/regressions/<target>/` (each
//! a crash found and fixed), then a short fuzzing run of each with a fixed seed: nothing may
//! panic. `scripts/fuzz` runs them for longer.

use std::path::Path;

use augur_fuzz::{fuzz, quiet_panics, run_one, Budget, TARGETS};

/// Inputs per target in the short run (a few seconds each).
const SHORT_RUN: u64 = 1500;

#[test]
fn seeds_and_regressions_run_clean_and_some_seeds_are_accepted() {
    quiet_panics();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut regressions = 0;
    for t in TARGETS {
        let seeds = (t.seeds)();
        let mut accepted = 0;
        for s in &seeds {
            match run_one(t, s) {
                Ok(ok) => accepted += usize::from(ok),
                Err(m) => panic!(
                    "{}: seed {:?} panicked: {m}",
                    t.name,
                    String::from_utf8_lossy(s)
                ),
            }
        }
        // A target that accepts none of its own seeds tests nothing past the first error.
        assert!(
            accepted > 0,
            "{}: none of {} seeds accepted",
            t.name,
            seeds.len()
        );
        if let Ok(dir) = std::fs::read_dir(root.join(t.name)) {
            for e in dir {
                let path = e.unwrap().path();
                if path.extension().is_some_and(|x| x == "txt") {
                    continue;
                }
                let input = std::fs::read(&path).unwrap();
                if let Err(m) = run_one(t, &input) {
                    panic!(
                        "{}: regression {} panics again: {m}",
                        t.name,
                        path.display()
                    );
                }
                regressions += 1;
            }
        }
    }
    println!("{regressions} regression inputs replayed");
}

#[test]
fn a_short_fuzzing_run_of_every_target_finds_nothing() {
    quiet_panics();
    let mut failures = Vec::new();
    for t in TARGETS {
        let sum = fuzz(t, Budget::Inputs(SHORT_RUN), 7, &[], |_| {});
        println!(
            "{}: {} inputs, {} accepted, {} crashes",
            t.name,
            sum.inputs,
            sum.accepted,
            sum.crashes.len()
        );
        assert_eq!(sum.inputs, SHORT_RUN);
        for c in sum.crashes {
            failures.push(format!(
                "{}: {:?}: {}",
                t.name,
                String::from_utf8_lossy(&c.input),
                c.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
