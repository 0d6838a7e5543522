//! The promqltest script format (`../shared/conformance/FORMAT.md`): the engine-neutral test
//! corpus our own `testdata/promql/*.test` scripts and the upstream corpus are written in.
//!
//! [`script`] parses scripts into commands; [`load`] writes a `load` block through the storage
//! traits; [`compare`] holds the value-equality rules. [`run`] runs scripts against the engine and checks every eval.

pub mod compare;
pub mod load;
pub mod run;
pub mod script;
