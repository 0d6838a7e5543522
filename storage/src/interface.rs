//! The storage interfaces: everything `engine` and `rules` may know about storage.
//!
//! Shaped after Prometheus's `storage/interface.go`: an [`Appendable`] hands out [`Appender`]s
//! that stage samples and commit them atomically-per-sample; a [`Queryable`] hands out a
//! [`Querier`] bound to a time range that selects series by label matchers.
//!
//! Contracts that hold for every implementation:
//! - Timestamps are milliseconds since the Unix epoch (`i64`); ranges `[mint, maxt]` are
//!   inclusive at both ends.
//! - Values are `f64` and every bit pattern round-trips, including Prometheus's staleness
//!   marker ([`STALE_NAN`]), which is distinct from an ordinary NaN.
//! - A sample may carry a start timestamp (ms; 0 = unknown): when a cumulative counter started
//!   counting, or where a delta sample's interval begins (OpenTelemetry's start time, remote
//!   write 2.0's `start_timestamp`). It is stored and returned with the sample, and is not part
//!   of its identity: a re-send that differs only in its start timestamp is a no-op.
//! - Everything here is thread-safe: many appenders and queriers may be used at once from
//!   different threads. A single appender is used by one thread at a time.

use crate::error::{Rejection, Result, StorageError};
use crate::labels::Labels;
use crate::matcher::Matcher;

/// The bit pattern Prometheus uses to mark a series stale (a signalling-style NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// The staleness marker as an `f64`. Compare with [`is_stale_nan`], never with `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is exactly the staleness marker (not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample: a timestamp in milliseconds and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub const fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }
}

/// A series returned by a query: its labels and its samples in time order within the
/// querier's range.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    /// The samples' start timestamps (ms, 0 = unknown), one per sample; empty when none of
    /// the samples returned has one.
    pub start_timestamps: Vec<i64>,
    /// Native histogram samples in the range, in time order (a series may switch between
    /// floats and histograms; a timestamp holds one or the other).
    pub histograms: Vec<crate::histogram::HistogramSample>,
}

/// An opaque handle for a series, valid for the life of the store. Never zero.
pub type SeriesRef = u32;

/// What a commit did with each staged sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitReport {
    /// Samples written (including exact re-sends, which are accepted as no-ops).
    pub accepted: usize,
    /// Samples refused by the ordering rules, in the order they were appended.
    pub rejected: Vec<Rejection>,
    /// Of `accepted`, samples taken out of order (older than their series' newest, within
    /// the out-of-order window).
    pub out_of_order: usize,
    /// Of `accepted`, native histogram samples (repeats of a stored one included).
    pub histograms: usize,
}

/// Hands out appenders.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender + Send + '_>;
}

/// Stages samples and writes them in one durable batch.
///
/// Per-series rules, applied at commit in append order: a sample older than the series' newest
/// sample is rejected as out-of-order; the same timestamp with the same value (bit for bit) is a
/// no-op; the same timestamp with a different value is rejected as a duplicate. A rejection
/// affects only that sample.
pub trait Appender {
    /// Stages a sample for the series with these labels. The series is created if it is new.
    /// An empty label set is refused ([`crate::LabelError::Empty`]).
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef>;

    /// Like [`Appender::append`], with the ref an earlier append returned for these labels
    /// as a hint, which saves looking the series up. A stale hint (the series was removed
    /// since) is harmless: the labels decide. Never pass a ref returned for other labels.
    fn append_hinted(
        &mut self,
        hint: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef> {
        self.append_st(hint, labels, t, v, 0)
    }

    /// Like [`Appender::append_hinted`] (a `hint` of 0 means none), for a sample whose start
    /// timestamp `st` is known (ms; 0 = unknown).
    fn append_st(
        &mut self,
        hint: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
        st: i64,
    ) -> Result<SeriesRef>;

    /// Stages a native histogram sample (validated by the caller, see
    /// [`crate::histogram::Histogram::validate`]). Rejections of staged histograms are
    /// reported after those of floats: a histogram's index in [`Rejection`] is the number of
    /// floats staged plus its position among the histograms.
    fn append_histogram(
        &mut self,
        hint: SeriesRef,
        labels: &Labels,
        t: i64,
        h: &crate::histogram::Histogram,
        st: i64,
    ) -> Result<SeriesRef> {
        let _ = (hint, labels, t, h, st);
        Err(StorageError::Unsupported("native histograms"))
    }

    /// Number of samples staged so far.
    fn len(&self) -> usize;

    /// Whether nothing is staged.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every acceptable staged sample. Returns only once they are in the write-ahead log,
    /// so a crash after this returns loses none of them. An `Err` means nothing was
    /// acknowledged (some samples may still appear after a restart, none are guaranteed).
    fn commit(self: Box<Self>) -> Result<CommitReport>;

    /// Discards everything staged.
    fn rollback(self: Box<Self>);
}

/// Writes history: samples of any age, into series that may already hold newer ones.
///
/// An [`Appender`] refuses a sample older than its series' newest; a backfill (an import of
/// old data, a replay of rules over the past) is how such samples are written. Per sample, in
/// any order: a timestamp the series already holds (or that appears earlier in `samples`)
/// keeps its first value, so the same value bits are a no-op and other bits are rejected as a
/// duplicate; a sample before the retention cutoff is rejected as out of bounds.
pub trait Backfill: Send + Sync {
    /// Writes `samples` into the series with these labels (created if new). Returns once they
    /// are durable, as [`Appender::commit`] does; rejections carry indexes into `samples`.
    /// An empty label set is refused ([`crate::LabelError::Empty`]).
    fn backfill(&self, labels: &Labels, samples: &[Sample]) -> Result<CommitReport>;
}

/// Hands out queriers over a time range.
pub trait Queryable: Send + Sync {
    /// A querier over `[mint, maxt]` (inclusive, milliseconds).
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>>;
}

/// Bounds on one read: the samples it may return (a query's `--query.max-samples` budget),
/// and when to give up (the query's timeout and cancellation); and one hint on what the
/// caller needs.
#[derive(Debug, Clone, Default)]
pub struct ReadLimits {
    /// Most samples the read may return; `None` for no limit.
    pub max_samples: Option<usize>,
    pub deadline: Option<std::time::Instant>,
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// A hint: the caller needs only each series' newest sample in the range (an instant
    /// vector selector at one time). A querier may then return just that one, with its start
    /// timestamp, and skip reading older data; returning more is also correct. (The TSDB
    /// trims only series whose newest sample is a float.)
    pub newest_only: bool,
}

impl ReadLimits {
    /// Fails once `total` samples are past the limit.
    pub fn check_samples(&self, total: usize) -> Result<()> {
        match self.max_samples {
            Some(limit) if total > limit => Err(StorageError::TooManySamples { limit }),
            _ => Ok(()),
        }
    }

    /// Fails when the read was cancelled or its deadline passed.
    pub fn check_time(&self) -> Result<()> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(StorageError::Canceled);
        }
        if self
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(StorageError::Timeout);
        }
        Ok(())
    }
}

/// Reads series, label names and label values within one time range.
///
/// Series with no sample inside the range are not returned, and do not contribute label names
/// or values. Results are sorted: series by labels, names and values lexicographically.
pub trait Querier {
    /// Series matching every matcher, with their samples in the range. With no matchers, no
    /// series are returned.
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>> {
        self.select_limited(matchers, &ReadLimits::default())
    }

    /// [`Querier::select`] within `limits`, checked while reading: past the sample limit,
    /// the deadline or a cancellation it fails (`TooManySamples`, `Timeout`, `Canceled`)
    /// having read at most about the limit.
    fn select_limited(&self, matchers: &[Matcher], limits: &ReadLimits) -> Result<Vec<Series>>;

    /// Label sets of the series matching every matcher (no samples are decoded).
    fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>>;

    /// Label names of the series matching the matchers (all series when `matchers` is empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>>;

    /// Values of label `name` among the series matching the matchers (all series when empty).
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>>;
}
