//! The engine's one error type, sorted by who is at fault: the query's author (a parse or
//! type error: `bad_data`), the query's data or parameters at run time (`execution`), the
//! query's budget (timeout, cancellation, too many samples), or storage underneath.

use thiserror::Error;

/// Why a query failed. `Display` gives Prometheus's message for each case.
#[derive(Debug, Error)]
pub enum Error {
    /// The query text does not parse or does not type-check (Prometheus `bad_data`).
    #[error("{0}")]
    Parse(String),
    /// A query parameter is impossible, e.g. a step of zero (Prometheus `bad_data`).
    #[error("{0}")]
    BadParameter(String),
    /// Evaluation failed on this data, e.g. many-to-many matching (Prometheus `execution`).
    #[error("{0}")]
    Execution(String),
    /// More samples would be held in memory than the per-query limit allows.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// The per-query timeout passed (Prometheus `timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The caller went away or cancelled (Prometheus `canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// Storage failed underneath the query.
    #[error("expanding series: {0}")]
    Storage(#[from] augur_storage::StorageError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an execution error with a formatted message.
macro_rules! exec_err {
    ($($arg:tt)*) => { $crate::error::Error::Execution(format!($($arg)*)) };
}
pub(crate) use exec_err;
