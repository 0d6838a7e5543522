//! The storage crate's errors, sorted by who is at fault.
//!
//! - The caller sent something invalid: [`StorageError::InvalidLabels`],
//!   [`StorageError::InvalidMatcher`]. Retrying the same input fails again.
//! - A single sample was refused by the per-series ordering rules: [`Rejection`]. These are
//!   reported per sample in a [`crate::CommitReport`] and never fail a whole batch.
//! - The store itself failed: [`StorageError::Db`], [`StorageError::Corrupt`], [`StorageError::Io`].
//!   Retrying may help (disk full, transient I/O); the caller's data was not acknowledged.

use std::fmt;

use thiserror::Error;

/// Why a label set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabelError {
    #[error("label set is empty")]
    Empty,
    #[error("label name is empty")]
    EmptyName,
    #[error("invalid label name {0:?}: must be non-empty UTF-8 without NUL")]
    InvalidName(String),
    #[error("invalid label name {0:?}: the legacy scheme allows [a-zA-Z_][a-zA-Z0-9_]*")]
    LegacyName(String),
    #[error("invalid metric name {0:?}: the legacy scheme allows [a-zA-Z_:][a-zA-Z0-9_:]*")]
    LegacyMetricName(String),
    #[error("duplicate label name {0:?}")]
    DuplicateName(String),
    #[error("label {name:?} is not valid UTF-8")]
    InvalidUtf8 { name: String },
    #[error("corrupt label encoding: {0}")]
    Corrupt(String),
}

/// Everything a storage call can fail with.
#[derive(Debug, Error)]
pub enum StorageError {
    // --- the caller's fault ---
    #[error("invalid labels: {0}")]
    InvalidLabels(#[from] LabelError),
    #[error("invalid regular expression {regex:?} in matcher for label {name:?}: {message}")]
    InvalidMatcher {
        name: String,
        regex: String,
        message: String,
    },

    /// This store cannot hold what was sent (e.g. an overlay without histogram support).
    #[error("{0} are not supported by this store")]
    Unsupported(&'static str),

    // --- the caller's limits (`ReadLimits`) ---
    #[error("the read would return more than {limit} samples")]
    TooManySamples { limit: usize },
    #[error("the read was canceled")]
    Canceled,
    #[error("the read ran past its deadline")]
    Timeout,

    // --- the store's fault ---
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt data in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.into(),
        }
    }

    /// True when the caller's input caused the error (so a retry cannot help).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StorageError::InvalidLabels(_) | StorageError::InvalidMatcher { .. }
        )
    }
}

/// Why one sample was refused. The rest of its batch is unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The sample is older than the series' newest sample (out-of-order ingestion is off).
    OutOfOrder,
    /// Out-of-order ingestion is on, and the sample is older than the store's newest sample
    /// minus the out-of-order window.
    TooOld,
    /// Backfilled float history for a series that holds native histograms (not supported).
    HistogramSeries,
    /// The sample has the timestamp of the series' newest sample but a different value.
    Duplicate,
    /// The timestamp is outside what the store accepts (`i64::MIN` is reserved).
    OutOfBounds,
}

impl RejectReason {
    /// A stable lower-case name, used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::HistogramSeries => "histogram_series",
            RejectReason::Duplicate => "duplicate",
            RejectReason::OutOfBounds => "out_of_bounds",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::TooOld => "too old sample",
            RejectReason::HistogramSeries => "float history for a series with native histograms",
            RejectReason::Duplicate => "duplicate sample for timestamp",
            RejectReason::OutOfBounds => "out of bounds",
        })
    }
}

/// One refused sample: its position in the appender's batch, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index of the sample in the order it was appended (0-based).
    pub index: usize,
    pub reason: RejectReason,
    pub t: i64,
    pub v: f64,
    /// The newest timestamp the series held when the sample was refused.
    pub series_max_t: i64,
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
