//! PromQL evaluation (issue "Engine"): evaluates promql-parser ASTs against the storage
//! traits (`augur_storage::Queryable`), never against the TSDB type.
//!
//! So far it holds [`duration`] (Prometheus's duration syntax, shared with `api`) and the
//! [`promqltest`] script parser. Query evaluation itself is not implemented yet.

pub mod duration;
pub mod promqltest;
