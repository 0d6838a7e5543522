//! The promqltest script format (`../shared/conformance/FORMAT.md`): the engine-neutral test
//! corpus our own `testdata/promql/*.test` scripts and the upstream corpus are written in.
//!
//! [`script`] parses scripts into commands. The runner that loads data into a TSDB and checks
//! evals comes with the evaluator.

pub mod script;
