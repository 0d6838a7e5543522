//! The promqltest script format (`../shared/conformance/FORMAT.md`): the engine-neutral test
//! corpus our own `testdata/promql/*.test` scripts and the upstream corpus are written in.
//!
//! [`script`] parses scripts into commands; [`load`] writes a `load` block through the storage
//! traits; [`compare`] holds the value-equality rules. The part that runs and checks evals comes with the evaluator.

pub mod compare;
pub mod load;
pub mod script;
