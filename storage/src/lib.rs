//! Augur's storage: the interfaces every other crate programs against, and the RocksDB-backed
//! TSDB that implements them.
//!
//! Start with [`interface`]: [`Appendable`]/[`Appender`] to write, [`Queryable`]/[`Querier`] to
//! read. [`Tsdb`] is the implementation; `engine` and `rules` never name it, only `api` wires it
//! in. The on-disk format is documented in `storage/FORMAT.md`.
//!
//! This crate knows nothing about PromQL, HTTP or JSON.

pub mod chunk;
pub mod error;
pub mod histogram;
mod histogram_bounds;
pub mod interface;
pub mod labels;
pub mod matcher;
pub mod tsdb;
mod varint;

pub use error::{LabelError, RejectReason, Rejection, Result, StorageError};
pub use interface::{
    is_stale_nan, Appendable, Appender, Backfill, CommitReport, Querier, Queryable, ReadLimits,
    Sample, Series, SeriesRef, STALE_NAN, STALE_NAN_BITS,
};
pub use labels::{Label, Labels, NameScheme, METRIC_NAME};
pub use matcher::{anchored_go_regex, go_regex, MatchOp, Matcher};
pub use tsdb::{Options, Tsdb};
