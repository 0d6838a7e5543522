//! PromQL evaluation (issue "Engine"): evaluates promql-parser ASTs against the storage
//! traits (`augur_storage::Queryable`), never against the TSDB type.
//!
//! Nothing is implemented here yet; the crate exists so the workspace has its final shape and
//! dependency direction (`engine` → `storage` traits only).
