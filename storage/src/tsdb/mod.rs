//! The RocksDB-backed TSDB behind the storage traits.
//!
//! Entry point: [`Tsdb::open`]. Data flow:
//! - **append**: [`Appender`](crate::Appender) stages samples → `commit` applies them to the
//!   in-memory [`head`] (ordering rules, open chunks, cutting full chunks) → new series and
//!   postings go to RocksDB, the samples as one record to Augur's WAL segment files (see
//!   `append.rs`, `log.rs`).
//! - **query**: postings (croaring bitmaps) resolve matchers to ids → the head is read first,
//!   then persisted chunks with one seek per series, merged and de-duplicated (see `query.rs`).
//! - **maintenance**: a background thread checkpoints the head (so restart replays only the WAL
//!   tail, and old WAL segments and RocksDB's own log files are released) and applies
//!   retention (see `maintenance.rs`); recovery is in `recovery.rs`.
//!
//! - **delete**: the samples of matching series in a time range are removed at once from
//!   memory and chunks, made durable by a checkpoint (see `delete.rs`).
//! - **backfill**: history of any age is merged straight into `chunks`, one series at a time
//!   (see `backfill.rs`); appends stay strictly in order.
//!
//! What it does not do: exemplars; out-of-order or backfilled native histograms.

mod append;
mod backfill;
mod delete;
mod head;
pub(crate) mod keys;
mod log;
mod maintenance;
mod postings;
mod query;
mod recovery;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    Options as DbOptions, WriteBatch, WriteOptions, DB,
};

use crate::chunk;
use crate::error::Result;
use crate::interface::{Appendable, Appender, Backfill, CommitReport, Querier, Queryable, Sample};
use crate::labels::Labels;
use head::Head;
use keys::*;

pub use delete::DeleteStats;
pub use maintenance::{CheckpointStats, RetentionStats};
pub use recovery::RecoveryStats;

/// Tunables for a [`Tsdb`]. `Default` gives Prometheus-like behaviour.
#[derive(Debug, Clone)]
pub struct Options {
    /// Samples older than the newest sample minus this are dropped. Default 15 days.
    pub retention: Duration,
    /// fsync the write-ahead log on every commit. Without it (the default), a commit survives
    /// the process being killed but not the machine losing power, as in Prometheus.
    pub sync_wal: bool,
    /// Checkpoint the head at least this often. Default 5 minutes.
    pub checkpoint_interval: Duration,
    /// Also checkpoint when this many WAL bytes accumulate: the WAL's budget (it holds at
    /// most about this much plus what arrives while a checkpoint runs). Default 128 MiB.
    pub checkpoint_wal_bytes: u64,
    /// Also checkpoint once no commit has come for this long and the WAL holds anything, so
    /// the directory shrinks soon after a burst instead of at the next interval. Default
    /// 1 minute.
    pub checkpoint_when_quiet: Duration,
    /// Apply retention this often. Default 10 minutes.
    pub retention_interval: Duration,
    /// At a checkpoint, seal open chunks whose newest sample is older than the head's newest
    /// sample by this much, freeing their memory. Default 1 hour.
    pub idle_seal_after: Duration,
    /// RocksDB block cache size. Default 256 MiB.
    pub block_cache_bytes: usize,
    /// Run checkpoints and retention on a background thread. Default true.
    pub background: bool,
    /// Accept samples older than their series' newest one when they are at most this much
    /// older than the store's newest sample (Prometheus's `out_of_order_time_window`).
    /// Default 0: such samples are refused. [`Tsdb::set_out_of_order_window`] changes it
    /// while running.
    pub out_of_order_window: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retention: Duration::from_secs(15 * 24 * 3600),
            sync_wal: false,
            checkpoint_interval: Duration::from_secs(300),
            checkpoint_wal_bytes: 128 << 20,
            checkpoint_when_quiet: Duration::from_secs(60),
            retention_interval: Duration::from_secs(600),
            idle_seal_after: Duration::from_secs(3600),
            block_cache_bytes: 256 << 20,
            background: true,
            out_of_order_window: Duration::ZERO,
        }
    }
}

/// Counters kept by the store, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub samples_appended: AtomicU64,
    pub samples_out_of_order: AtomicU64,
    /// Refused: older than the out-of-order window allows.
    pub samples_too_old: AtomicU64,
    /// Accepted out of order (also counted in `samples_appended`).
    pub samples_out_of_order_appended: AtomicU64,
    pub samples_duplicate: AtomicU64,
    pub samples_out_of_bounds: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
    pub commits: AtomicU64,
    pub checkpoints: AtomicU64,
    pub chunks_sealed: AtomicU64,
}

impl Counters {
    /// Counts what a commit or a backfill did with its samples.
    pub(crate) fn count(&self, report: &CommitReport) {
        self.samples_appended
            .fetch_add(report.accepted as u64, Ordering::Relaxed);
        self.samples_out_of_order_appended
            .fetch_add(report.out_of_order as u64, Ordering::Relaxed);
        for r in &report.rejected {
            match r.reason {
                crate::RejectReason::OutOfOrder => &self.samples_out_of_order,
                crate::RejectReason::TooOld => &self.samples_too_old,
                crate::RejectReason::HistogramSeries => &self.samples_out_of_order,
                crate::RejectReason::OutOfBounds => &self.samples_out_of_bounds,
                crate::RejectReason::Duplicate => &self.samples_duplicate,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Point-in-time statistics of the head and the database.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub series: usize,
    pub open_chunks: usize,
    /// Memory held by the head: map slots, labels and chunks.
    pub head_bytes: usize,
    pub min_t: Option<i64>,
    pub max_t: Option<i64>,
    /// Live SST bytes per column family.
    pub sst_bytes: Vec<(&'static str, u64)>,
    /// Bytes in the WAL's segment files.
    pub wal_bytes: u64,
    /// RocksDB's memory by kind: `memtables` (all column families), `block_cache` (the
    /// shared cache's usage), `table_readers` (index and filter blocks held outside it).
    pub rocksdb_memory: Vec<(&'static str, u64)>,
}

/// Cardinality statistics from the inverted index (for `/api/v1/status/tsdb`). Each list is
/// the top entries by count, largest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Number of distinct `name=value` pairs.
    pub label_pairs: usize,
    pub series_by_metric_name: Vec<(String, u64)>,
    pub value_count_by_label_name: Vec<(String, u64)>,
    /// Approximate bytes of label values by name: value length × series using it.
    pub memory_by_label_name: Vec<(String, u64)>,
    /// Keyed `name=value`.
    pub series_by_label_pair: Vec<(String, u64)>,
}

fn top(map: std::collections::HashMap<String, u64>, limit: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

pub(crate) struct Inner {
    pub(crate) db: DB,
    pub(crate) head: Head,
    pub(crate) opts: Options,
    /// Augur's write-ahead log (the samples of every commit since the last checkpoint).
    pub(crate) log: log::Log,
    /// WAL bytes appended since the last checkpoint.
    pub(crate) wal_bytes: AtomicU64,
    /// Set while the store still has a format-1/2 `wal` column family: the next checkpoint
    /// empties it and marks the store [`keys::FORMAT_VERSION`].
    pub(crate) legacy_wal: AtomicBool,
    /// Chunks cut by appends and not yet sealed and written.
    pub(crate) pending_chunks: AtomicUsize,
    /// Retention cutoff: samples before this time are gone (or going).
    pub(crate) cutoff: Arc<AtomicI64>,
    /// Serialises checkpoints and retention runs.
    pub(crate) maintenance: Mutex<()>,
    /// Set when a checkpoint failed part-way: the next one writes every series.
    pub(crate) full_checkpoint: AtomicBool,
    /// Set when a commit's write failed (its samples stay in the head, unlogged); cleared by
    /// the next checkpoint that succeeds. While set, no-op repeats are logged again.
    pub(crate) relog_noops: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) write_opts: WriteOptions,
    /// The out-of-order window in ms (0 = off), see [`Options::out_of_order_window`].
    pub(crate) ooo_window: AtomicI64,
    /// Held shared by every commit from applying its samples to writing their WAL record,
    /// and exclusively by a delete while it removes samples (see `delete.rs`): no sample
    /// applied before the delete can then be logged after the checkpoint that follows it.
    pub(crate) commit_gate: std::sync::RwLock<()>,
}

impl Inner {
    /// The oldest timestamp a commit starting now accepts out of order: the newest sample
    /// minus the window, as Prometheus measures it; `i64::MAX` when the window is off.
    pub(crate) fn ooo_min(&self) -> i64 {
        match self.ooo_window.load(Ordering::Relaxed) {
            0 => i64::MAX,
            w => self.head.max_t().saturating_sub(w),
        }
    }
}

/// The newest sample time, but never later than the wall clock: a sample dated in the future
/// (seconds sent as milliseconds, say) must not make retention or idle detection treat all
/// other data as old.
pub(crate) fn capped_now(max_t: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(i64::MAX, |d| d.as_millis() as i64);
    max_t.min(now)
}

/// Samples before this time are past retention.
pub(crate) fn retention_cutoff(inner: &Inner, max_t: i64) -> i64 {
    capped_now(max_t).saturating_sub(inner.opts.retention.as_millis() as i64)
}

impl Inner {
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    pub(crate) fn write(&self, batch: WriteBatch) -> Result<()> {
        self.db.write_opt(batch, &self.write_opts)?;
        Ok(())
    }
}

/// The TSDB. Cheap to share: clone the `Arc` you keep it in. Dropping it stops the background
/// thread and writes a final checkpoint.
pub struct Tsdb {
    inner: Arc<Inner>,
    path: PathBuf,
    stop: Arc<(Mutex<bool>, Condvar)>,
    worker: Option<JoinHandle<()>>,
    recovery: RecoveryStats,
    /// Cleared only by tests that close the store as a crash would (no final checkpoint).
    final_checkpoint: bool,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The most RocksDB's own log files may hold between checkpoints (see `db_options`).
pub const ROCKSDB_LOG_BUDGET: u64 = 64 << 20;

fn db_options(opts: &Options, cutoff: &Arc<AtomicI64>) -> (DbOptions, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(opts.block_cache_bytes);
    let table = |block_size: usize, bloom: bool| {
        let mut t = BlockBasedOptions::default();
        t.set_block_cache(&cache);
        t.set_block_size(block_size);
        t.set_format_version(6);
        if bloom {
            t.set_bloom_filter(10.0, false);
        }
        t
    };

    let mut db = DbOptions::default();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_max_background_jobs(2);
    // RocksDB's own log carries only series, postings, chunks and head states (samples go to
    // Augur's WAL); every checkpoint flushes the memtables, which releases its files. This
    // bounds it between checkpoints: past it, RocksDB flushes the column families that pin
    // the oldest file.
    db.set_max_total_wal_size(ROCKSDB_LOG_BUDGET);
    // RocksDB's diagnostic LOG files: warnings and errors only (its info level writes a few
    // hundred KB an hour, more than an hour of a small server's data), small and few.
    db.set_log_level(rocksdb::LogLevel::Warn);
    db.set_max_log_file_size(1 << 20);
    db.set_keep_log_file_num(2);

    let mut series = DbOptions::default();
    series.set_compression_type(DBCompressionType::Lz4);
    series.set_block_based_table_factory(&table(16 << 10, true));

    let mut postings_opts = DbOptions::default();
    postings_opts.set_compression_type(DBCompressionType::Lz4);
    postings_opts.set_merge_operator(
        "augur.postings.v1",
        postings::full_merge,
        postings::partial_merge,
    );
    postings_opts.set_block_based_table_factory(&table(16 << 10, true));

    // Chunks: written once, read by range. zstd everywhere: the write rate is low (one value
    // per 120 samples) and identical timestamp sections of neighbouring series compress away.
    let mut chunks = DbOptions::default();
    chunks.set_compression_type(DBCompressionType::Zstd);
    chunks.set_bottommost_compression_type(DBCompressionType::Zstd);
    chunks.set_block_based_table_factory(&table(64 << 10, false));
    // The bottommost level holds almost everything; spend more CPU there (compaction only).
    chunks.set_bottommost_compression_options(-14, 12, 0, 16 << 10, true);
    chunks.set_bottommost_zstd_max_train_bytes(1 << 20, true);
    chunks.set_write_buffer_size(64 << 20);
    // Flushes (one per checkpoint) are compressed with a trained dictionary too, and two of
    // them already trigger a compaction into the bottommost level: the directory a user
    // measures is close to its compacted size, not a pile of level-0 files.
    chunks.set_compression_options(-14, 3, 0, 16 << 10);
    chunks.set_zstd_max_train_bytes(1 << 20);
    chunks.set_level_zero_file_num_compaction_trigger(2);
    // Every file is recompacted at least daily, so the retention filter sees every chunk.
    chunks.set_periodic_compaction_seconds(24 * 3600);
    let filter_cutoff = Arc::clone(cutoff);
    chunks.set_compaction_filter(
        "augur.retention.v1",
        move |_level: u32, _key: &[u8], value: &[u8]| {
            let cutoff = filter_cutoff.load(Ordering::Relaxed);
            match chunk::meta(value) {
                Ok(m) if m.max_t < cutoff => rocksdb::CompactionDecision::Remove,
                _ => rocksdb::CompactionDecision::Keep,
            }
        },
    );

    let mut head_opts = DbOptions::default();
    head_opts.set_compression_type(DBCompressionType::Lz4);

    // Format 1 and 2 kept WAL records here; only read (and emptied) when such a store opens.
    let mut wal_opts = DbOptions::default();
    wal_opts.set_compression_type(DBCompressionType::None);

    let cfs = vec![
        ColumnFamilyDescriptor::new(CF_SERIES, series),
        ColumnFamilyDescriptor::new(CF_POSTINGS, postings_opts),
        ColumnFamilyDescriptor::new(CF_CHUNKS, chunks),
        ColumnFamilyDescriptor::new(CF_HEAD, head_opts),
        ColumnFamilyDescriptor::new(CF_WAL, wal_opts),
    ];
    (db, cfs)
}

impl Tsdb {
    /// Opens (creating if needed) the store at `path`, recovering the head from the last
    /// checkpoint and the WAL tail. Logs progress while recovery runs.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Tsdb> {
        let ooo_window = opts.out_of_order_window.as_millis() as i64;
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let cutoff = Arc::new(AtomicI64::new(i64::MIN));
        let (db_opts, cfs) = db_options(&opts, &cutoff);
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs)?;
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(opts.sync_wal);
        let found = recovery::read_meta(&db)?;
        let log = log::Log::open(&path.join(WAL_DIR), found.first_segment(), opts.sync_wal)?;
        let inner = Arc::new(Inner {
            db,
            head: Head::default(),
            opts,
            log,
            legacy_wal: AtomicBool::new(found.legacy),
            wal_bytes: AtomicU64::new(0),
            pending_chunks: AtomicUsize::new(0),
            cutoff,
            maintenance: Mutex::new(()),
            full_checkpoint: AtomicBool::new(false),
            relog_noops: AtomicBool::new(false),
            counters: Counters::default(),
            ooo_window: AtomicI64::new(ooo_window),
            commit_gate: std::sync::RwLock::new(()),
            write_opts,
        });
        let recovery = recovery::recover(&inner, &found)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let worker = if inner.opts.background {
            Some(maintenance::spawn(Arc::clone(&inner), Arc::clone(&stop))?)
        } else {
            None
        };
        Ok(Tsdb {
            inner,
            path,
            stop,
            worker,
            recovery,
            final_checkpoint: true,
        })
    }

    /// What the last open recovered.
    pub fn recovery_stats(&self) -> &RecoveryStats {
        &self.recovery
    }

    /// Writes the head's state so a restart replays only what comes after.
    pub fn checkpoint(&self) -> Result<CheckpointStats> {
        maintenance::checkpoint(&self.inner)
    }

    /// Writes a consistent copy of the whole store to `dir`, which must not exist (its parent
    /// must), and which [`Tsdb::open`] opens like any store: a RocksDB checkpoint (which
    /// hard-links the immutable files, so it is cheap) plus a copy of the WAL segments written
    /// since the last head checkpoint, which the copy replays at open. Every write
    /// acknowledged before the call is in it.
    pub fn snapshot(&self, dir: &Path) -> Result<()> {
        maintenance::snapshot(&self.inner, dir)
    }

    /// Deletes the samples in `[start, end]` (inclusive, milliseconds) of every series
    /// matching any of `selectors` (each a list of matchers that must all hold); a series left
    /// with no samples is removed. When it returns, reads no longer see them and a crash
    /// cannot bring them back; a crash while it runs leaves all of them or none. The bytes
    /// leave the disk at RocksDB's next compaction of their range, or at
    /// [`Tsdb::clean_tombstones`].
    pub fn delete_series(
        &self,
        selectors: &[Vec<crate::Matcher>],
        start: i64,
        end: i64,
    ) -> Result<DeleteStats> {
        delete::delete(&self.inner, selectors, start, end)
    }

    /// Compacts the whole store now, so the bytes of deleted samples and series leave the
    /// disk (the admin API's `clean_tombstones`; Augur keeps no tombstones, deletes are
    /// applied at once, but their space comes back only when RocksDB rewrites the files).
    pub fn clean_tombstones(&self) -> Result<()> {
        self.compact()
    }

    /// Applies retention now.
    pub fn apply_retention(&self) -> Result<RetentionStats> {
        maintenance::apply_retention(&self.inner)
    }

    /// Seals every open chunk and writes it out (the head keeps the series). Used by tools
    /// and benchmarks that measure persisted size.
    pub fn seal_all(&self) -> Result<()> {
        maintenance::seal_all(&self.inner)
    }

    /// Flushes memtables and compacts every column family fully.
    pub fn compact(&self) -> Result<()> {
        for name in ALL_CFS {
            let cf = self.inner.cf(name);
            self.inner.db.flush_cf(cf)?;
            let mut co = rocksdb::CompactOptions::default();
            co.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
            self.inner
                .db
                .compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &co);
        }
        Ok(())
    }

    /// Head and database statistics.
    pub fn stats(&self) -> Stats {
        let head = &self.inner.head;
        let mut st = Stats {
            head_bytes: head.table_bytes(),
            wal_bytes: self.inner.log.disk_bytes(),
            ..Stats::default()
        };
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        for i in 0..head::SHARDS {
            let shard = head.shard_at(i);
            st.series += shard.len();
            for s in shard.values() {
                st.open_chunks += usize::from(s.chunk.is_some());
                st.head_bytes += s.heap_size();
                if s.has_samples() {
                    min_t = min_t.min(s.min_t);
                    max_t = max_t.max(s.max_t);
                }
            }
        }
        if max_t != i64::MIN {
            st.min_t = Some(min_t.max(self.inner.cutoff.load(Ordering::Relaxed)));
            st.max_t = Some(max_t);
        }
        for name in ALL_CFS {
            let bytes = self
                .inner
                .db
                .property_int_value_cf(self.inner.cf(name), "rocksdb.total-sst-files-size")
                .ok()
                .flatten()
                .unwrap_or(0);
            st.sst_bytes.push((name, bytes));
        }
        let sum_cfs = |prop: &str| -> u64 {
            let db = &self.inner.db;
            let default = db.property_int_value(prop).ok().flatten().unwrap_or(0);
            ALL_CFS
                .iter()
                .filter_map(|n| {
                    db.property_int_value_cf(self.inner.cf(n), prop)
                        .ok()
                        .flatten()
                })
                .sum::<u64>()
                + default
        };
        st.rocksdb_memory = vec![
            ("memtables", sum_cfs("rocksdb.cur-size-all-mem-tables")),
            (
                "block_cache",
                // The cache shared by every column family but `default`.
                self.inner
                    .db
                    .property_int_value_cf(self.inner.cf(CF_CHUNKS), "rocksdb.block-cache-usage")
                    .ok()
                    .flatten()
                    .unwrap_or(0),
            ),
            (
                "table_readers",
                sum_cfs("rocksdb.estimate-table-readers-mem"),
            ),
        ];
        st
    }

    /// Cardinality statistics: the top `limit` entries of each list.
    pub fn index_stats(&self, limit: usize) -> Result<IndexStats> {
        use std::collections::HashMap;
        let mut stats = IndexStats::default();
        let mut by_metric = HashMap::new();
        let mut values_by_name: HashMap<String, u64> = HashMap::new();
        let mut bytes_by_name: HashMap<String, u64> = HashMap::new();
        let mut pairs = Vec::new();
        let mut it = self.inner.db.raw_iterator_cf(self.inner.cf(CF_POSTINGS));
        it.seek([1u8]);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let (name, value) = keys::parse_postings_key(k)
                .ok_or_else(|| crate::StorageError::corrupt("postings", "bad key"))?;
            let n = postings::decode_list(v)
                .ok_or_else(|| crate::StorageError::corrupt("postings", "undecodable list"))?
                .cardinality();
            if n > 0 {
                stats.label_pairs += 1;
                if name == crate::METRIC_NAME {
                    by_metric.insert(value.to_owned(), n);
                }
                *values_by_name.entry(name.to_owned()).or_default() += 1;
                *bytes_by_name.entry(name.to_owned()).or_default() += value.len() as u64 * n;
                pairs.push((format!("{name}={value}"), n));
            }
            it.next();
        }
        it.status()?;
        stats.series_by_metric_name = top(by_metric, limit);
        stats.value_count_by_label_name = top(values_by_name, limit);
        stats.memory_by_label_name = top(bytes_by_name, limit);
        stats.series_by_label_pair = top(pairs.into_iter().collect(), limit);
        Ok(stats)
    }

    /// The store's counters.
    /// Changes the out-of-order window (a config reload); 0 turns it off.
    pub fn set_out_of_order_window(&self, window: Duration) {
        self.inner
            .ooo_window
            .store(window.as_millis() as i64, Ordering::Relaxed);
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the background thread and writes a final checkpoint.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(worker) = self.worker.take() {
            let (flag, cv) = &*self.stop;
            *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
            let _ = worker.join();
        }
        if self.final_checkpoint {
            maintenance::checkpoint(&self.inner)?;
        }
        self.inner.db.flush_wal(true)?;
        Ok(())
    }

    /// Closes the store without the final checkpoint, as `kill -9` would leave it.
    #[cfg(test)]
    fn close_as_if_killed(mut self) {
        self.final_checkpoint = false;
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "final checkpoint failed; the next start replays the WAL");
        }
    }
}

impl Appendable for Tsdb {
    fn appender(&self) -> Box<dyn Appender + Send + '_> {
        Box::new(append::TsdbAppender::new(&self.inner))
    }
}

impl Backfill for Tsdb {
    fn backfill(&self, labels: &Labels, samples: &[Sample]) -> Result<CommitReport> {
        backfill::backfill(&self.inner, labels, samples)
    }
}

impl Queryable for Tsdb {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(query::TsdbQuerier::new(&self.inner, mint, maxt)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backfill, Labels, Matcher, RejectReason, Sample};

    fn select_x(db: &Tsdb) -> Vec<Sample> {
        let mut got = db
            .querier(0, 100_000_000)
            .unwrap()
            .select(&[Matcher::equal("__name__", "x")])
            .unwrap();
        got.pop().map(|s| s.samples).unwrap_or_default()
    }

    /// Two commits to one series can write their records in the opposite order to their
    /// applies (a commit applies shard by shard before it logs). Replay must keep both.
    #[test]
    fn replay_keeps_samples_whose_records_are_logged_out_of_time_order() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = || Options {
            background: false,
            ..Options::default()
        };
        let x = Labels::new([("__name__", "x")]).unwrap();
        let id = {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let mut app = db.appender();
            app.append(&x, 100, 1.0).unwrap();
            app.commit().unwrap();
            db.inner.head.get_or_create(&x).0
        };
        // Records written after the closing checkpoint, as if the process had died before
        // checkpointing them.
        let log = log::Log::open(&dir.path().join(WAL_DIR), 0, false).unwrap();
        for t in [300, 200] {
            let mut rec = wal::RecordBuilder::new();
            rec.add_series(id, &[wal::Logged::new(t, t as f64, 0)]);
            log.append(&rec.finish()).unwrap();
        }
        drop(log);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let ts: Vec<i64> = select_x(&db).iter().map(|s| s.t).collect();
        assert_eq!(ts, [100, 200, 300]);
        assert_eq!(db.recovery_stats().wal_records, 2);
    }

    /// A checkpoint leaves one WAL segment (the new, empty one) and releases RocksDB's own
    /// log files: after it, the data directory holds the data and little else.
    #[test]
    fn a_checkpoint_releases_wal_segments_and_rocksdb_logs() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Tsdb::open(
            dir.path(),
            Options {
                background: false,
                ..Options::default()
            },
        )
        .unwrap();
        let labels: Vec<Labels> = (0..200)
            .map(|i| Labels::new([("__name__", "x"), ("i", &i.to_string())]).unwrap())
            .collect();
        for t in 0..500 {
            let mut app = db.appender();
            for (i, l) in labels.iter().enumerate() {
                app.append(l, t * 15_000, (t * i as i64) as f64).unwrap();
            }
            app.commit().unwrap();
        }
        let bytes_of = |ext: &str| -> u64 {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_name().to_string_lossy().ends_with(ext))
                .map(|e| e.metadata().unwrap().len())
                .sum()
        };
        let wal_before = db.inner.log.disk_bytes();
        assert!(
            wal_before > 100_000 * 8,
            "100,000 samples logged: {wal_before} B"
        );
        assert!(
            bytes_of(".log") < 200_000,
            "samples never reach RocksDB's log: {} B",
            bytes_of(".log")
        );
        db.checkpoint().unwrap();
        assert_eq!(log::segments(db.inner.log.dir()).unwrap().len(), 1);
        assert!(
            db.inner.log.disk_bytes() < 64,
            "only the new segment's header is left: {} B",
            db.inner.log.disk_bytes()
        );
        let listing: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| format!("{:?} {}", e.file_name(), e.metadata().unwrap().len()))
            .collect();
        assert!(
            bytes_of(".log") < 4096,
            "RocksDB's logs were released: {} B left: {listing:?}",
            bytes_of(".log")
        );
    }

    /// Past `checkpoint_wal_bytes` the maintenance thread checkpoints without waiting for the
    /// interval, and the old segments go.
    #[test]
    fn a_wal_over_its_budget_triggers_a_checkpoint() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Tsdb::open(
            dir.path(),
            Options {
                checkpoint_interval: Duration::from_secs(3600),
                checkpoint_wal_bytes: 64 << 10,
                ..Options::default()
            },
        )
        .unwrap();
        let x = Labels::new([("__name__", "x")]).unwrap();
        let mut app = db.appender();
        for t in 0..20_000 {
            app.append(&x, t, t as f64).unwrap();
        }
        app.commit().unwrap();
        // The thread wakes every second; allow it a generous while (this bounds the wait,
        // it times nothing).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while db.counters().checkpoints.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 60 s of the WAL passing its budget"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(db.inner.log.disk_bytes() < 64 << 10);
        assert_eq!(select_x(&db).len(), 20_000);
    }

    /// Once commits stop, the WAL is checkpointed after `checkpoint_when_quiet`, long before
    /// the interval, and then not again while nothing new arrives.
    #[test]
    fn a_quiet_wal_is_checkpointed_soon() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Tsdb::open(
            dir.path(),
            Options {
                checkpoint_interval: Duration::from_secs(3600),
                checkpoint_when_quiet: Duration::from_secs(1),
                ..Options::default()
            },
        )
        .unwrap();
        let x = Labels::new([("__name__", "x")]).unwrap();
        let mut app = db.appender();
        for t in 0..1000 {
            app.append(&x, t, t as f64).unwrap();
        }
        app.commit().unwrap();
        let checkpoints = || db.counters().checkpoints.load(Ordering::Relaxed);
        // Bounds the wait (it times nothing): the thread wakes every second.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while checkpoints() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 60 s of the last commit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(db.inner.log.disk_bytes() < 64, "the segments were released");
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            checkpoints(),
            1,
            "nothing new arrived: no further checkpoint"
        );
    }

    /// A format-2 store (WAL records in the `wal` column family) replays them at open; the
    /// first checkpoint empties the column family and marks the store format 3, atomically.
    #[test]
    fn a_format_2_store_replays_its_wal_column_family_and_is_upgraded() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = || Options {
            background: false,
            ..Options::default()
        };
        let x = Labels::new([("__name__", "x")]).unwrap();
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let mut app = db.appender();
            app.append(&x, 100, 1.0).unwrap();
            app.commit().unwrap();
            db.checkpoint().unwrap();
            let id = db.inner.head.get_or_create(&x).0;
            // What format 2 left behind: records numbered from the checkpoint sequence.
            let mut batch = WriteBatch::default();
            batch.put(keys::META_FORMAT, 2u32.to_be_bytes());
            batch.put(keys::META_CHECKPOINT, 7u64.to_be_bytes());
            for (seq, t) in [(6, 150), (7, 200), (8, 300)] {
                let mut rec = wal::RecordBuilder::new();
                rec.add_series(id, &[wal::Logged::new(t, t as f64, 0)]);
                batch.put_cf(db.inner.cf(CF_WAL), keys::wal_key(seq), rec.finish());
            }
            db.inner.write(batch).unwrap();
            // Closing must not checkpoint the records away: close without the final one.
            db.close_as_if_killed();
        }
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        // Record 6 is below the checkpoint: already reflected, not replayed.
        let ts: Vec<i64> = select_x(&db).iter().map(|s| s.t).collect();
        assert_eq!(ts, [100, 200, 300]);
        assert_eq!(db.recovery_stats().wal_records, 2);
        let stored = db.inner.db.get(keys::META_FORMAT).unwrap().unwrap();
        assert_eq!(stored, FORMAT_VERSION.to_be_bytes());
        let left = db
            .inner
            .db
            .iterator_cf(db.inner.cf(CF_WAL), rocksdb::IteratorMode::Start)
            .count();
        assert_eq!(left, 0, "the wal column family is empty after the upgrade");
        drop(db);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(select_x(&db).len(), 3);
    }

    fn wal_records(db: &Tsdb) -> usize {
        let dir = db.inner.log.dir();
        log::segments(dir)
            .unwrap()
            .into_iter()
            .map(|n| log::read_segment(dir, n, |_| Ok(())).unwrap().frames as usize)
            .sum()
    }

    /// After a failed WAL write the head holds samples no log has; a sender's retry of them
    /// is a no-op for the head but must be logged again before it is acknowledged.
    #[test]
    fn after_a_failed_write_no_op_repeats_are_logged_until_a_checkpoint() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = Options {
            background: false,
            ..Options::default()
        };
        let db = Tsdb::open(dir.path(), opts).unwrap();
        let x = Labels::new([("__name__", "x")]).unwrap();
        let commit = |t: i64| {
            let mut app = db.appender();
            app.append(&x, t, 1.0).unwrap();
            app.commit().unwrap()
        };
        commit(100);
        let before = wal_records(&db);
        commit(100);
        assert_eq!(
            wal_records(&db),
            before,
            "an ordinary repeat writes nothing"
        );
        db.inner.relog_noops.store(true, Ordering::SeqCst); // as a failed write leaves it
        assert_eq!(commit(100).accepted, 1);
        assert_eq!(wal_records(&db), before + 1, "the repeat is logged again");
        db.checkpoint().unwrap();
        assert!(
            !db.inner.relog_noops.load(Ordering::SeqCst),
            "a checkpoint persisted the head"
        );
    }

    /// A format-1 directory opens (its data has no start timestamps, which later formats read
    /// as unknown) and is marked the current format; an unknown format is refused with a
    /// clear message.
    #[test]
    fn format_1_directories_are_upgraded_and_unknown_formats_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = || Options {
            background: false,
            ..Options::default()
        };
        let x = Labels::new([("__name__", "x")]).unwrap();
        let set_format = |db: &Tsdb, v: u32| {
            db.inner.db.put(keys::META_FORMAT, v.to_be_bytes()).unwrap();
        };
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let mut app = db.appender();
            app.append(&x, 100, 1.0).unwrap();
            app.commit().unwrap();
            set_format(&db, 1);
        }
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let got = db
                .querier(0, 1000)
                .unwrap()
                .select(&[Matcher::equal("__name__", "x")])
                .unwrap();
            assert_eq!(got[0].samples, vec![Sample::new(100, 1.0)]);
            let stored = db.inner.db.get(keys::META_FORMAT).unwrap().unwrap();
            assert_eq!(stored, keys::FORMAT_VERSION.to_be_bytes());
            set_format(&db, 3);
        }
        {
            // Format 3 (before native histograms) is marked 4 at open and read as is.
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            let got = db
                .querier(0, 1000)
                .unwrap()
                .select(&[Matcher::equal("__name__", "x")])
                .unwrap();
            assert_eq!(got[0].samples, vec![Sample::new(100, 1.0)]);
            let stored = db.inner.db.get(keys::META_FORMAT).unwrap().unwrap();
            assert_eq!(stored, 4u32.to_be_bytes());
            set_format(&db, 99);
        }
        let err = Tsdb::open(dir.path(), opts()).err().unwrap().to_string();
        assert!(err.contains("this build reads format 4"), "{err}");
    }

    fn hist(n: f64) -> crate::histogram::Histogram {
        crate::histogram::Histogram {
            schema: 1,
            count: 3.0 * n,
            zero_count: n,
            sum: n,
            positive_spans: vec![crate::histogram::Span {
                offset: 0,
                length: 1,
            }],
            positive_buckets: vec![2.0 * n],
            integer: true,
            ..Default::default()
        }
    }

    fn append_h(db: &Tsdb, x: &Labels, t: i64, h: &crate::histogram::Histogram) -> CommitReport {
        let mut app = db.appender();
        app.append_histogram(0, x, t, h, 0).unwrap();
        app.commit().unwrap()
    }

    fn append_f(db: &Tsdb, x: &Labels, t: i64, v: f64) -> CommitReport {
        let mut app = db.appender();
        app.append(x, t, v).unwrap();
        app.commit().unwrap()
    }

    /// After a kill, a series' floats and histograms are replayed in their time order, out
    /// of order floats included (they were accepted), and the series still refuses late
    /// floats once it holds histograms.
    #[test]
    fn a_kill_loses_neither_histograms_before_floats_nor_late_floats() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = || Options {
            background: false,
            out_of_order_window: std::time::Duration::from_secs(3600),
            ..Options::default()
        };
        let x = Labels::new([("__name__", "x")]).unwrap();
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            assert!(append_f(&db, &x, 1_000, 1.0).rejected.is_empty());
            assert!(append_f(&db, &x, 3_000, 3.0).rejected.is_empty());
            db.checkpoint().unwrap();
            // Logged after the checkpoint: a late float, a histogram, then a float after it.
            assert_eq!(append_f(&db, &x, 2_000, 2.0).out_of_order, 1);
            assert!(append_h(&db, &x, 10_000, &hist(1.0)).rejected.is_empty());
            assert!(append_f(&db, &x, 20_000, 20.0).rejected.is_empty());
            db.close_as_if_killed();
        }
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let s = db
            .querier(0, 100_000)
            .unwrap()
            .select(&[Matcher::equal("__name__", "x")])
            .unwrap()
            .pop()
            .unwrap();
        let floats: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
        assert_eq!(floats, [1_000, 2_000, 3_000, 20_000]);
        assert_eq!(s.histograms.len(), 1);
        assert_eq!(s.histograms[0].t, 10_000);
        // The series has held histograms: a late float is refused now, and after a restart.
        let late = append_f(&db, &x, 15_000, 1.0);
        assert_eq!(late.rejected[0].reason, RejectReason::OutOfOrder);
        drop(db);
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let late = append_f(&db, &x, 15_000, 1.0);
        assert_eq!(late.rejected[0].reason, RejectReason::OutOfOrder);
        // Backfilled float history is refused for such a series.
        let r = db.backfill(&x, &[Sample::new(500, 0.5)]).unwrap();
        assert_eq!(r.rejected[0].reason, RejectReason::HistogramSeries);
    }

    /// The duplicate rule knows the newest sample's kind and value after its chunk was cut,
    /// written and the store restarted.
    #[test]
    fn repeats_of_the_newest_histogram_are_no_ops_whatever_its_chunk_became() {
        let dir = tempfile::TempDir::new().unwrap();
        let opts = || Options {
            background: false,
            ..Options::default()
        };
        let x = Labels::new([("__name__", "x")]).unwrap();
        let n = crate::histogram::HISTOGRAM_CHUNK_SAMPLES as i64;
        {
            let db = Tsdb::open(dir.path(), opts()).unwrap();
            for i in 0..n {
                assert!(append_h(&db, &x, i * 1000, &hist(i as f64))
                    .rejected
                    .is_empty());
            }
            // The chunk filled and was cut: the newest is no longer in an open chunk.
            let again = append_h(&db, &x, (n - 1) * 1000, &hist((n - 1) as f64));
            assert!(again.rejected.is_empty(), "{again:?}");
            db.checkpoint().unwrap();
        }
        let db = Tsdb::open(dir.path(), opts()).unwrap();
        let t = (n - 1) * 1000;
        assert!(append_h(&db, &x, t, &hist((n - 1) as f64))
            .rejected
            .is_empty());
        let other = append_h(&db, &x, t, &hist(0.0));
        assert_eq!(other.rejected[0].reason, RejectReason::Duplicate);
        // A float at the newest histogram's time is a duplicate, whatever its bits.
        let f = append_f(&db, &x, t, 0.0);
        assert_eq!(f.rejected[0].reason, RejectReason::Duplicate);
    }
}
