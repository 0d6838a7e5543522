//! Out-of-order ingestion on a real RocksDB in a temp dir: the window and its errors,
//! duplicates, reads in time order before and after a checkpoint merges the buffer (into the
//! in-memory chunks and into persisted ones), restarts with and without a checkpoint, and
//! changing the window while running.

use std::time::Duration;

use augur_storage::{Appendable, Labels, Matcher, Options, Queryable, RejectReason, Tsdb};
use tempfile::TempDir;

const MIN: i64 = 60_000;

fn open(dir: &TempDir, window: Duration) -> Tsdb {
    Tsdb::open(
        dir.path(),
        Options {
            background: false,
            out_of_order_window: window,
            retention: Duration::from_secs(100 * 365 * 86_400),
            ..Options::default()
        },
    )
    .unwrap()
}

fn x() -> Labels {
    Labels::new([("__name__", "x"), ("job", "a")]).unwrap()
}

/// Appends `(t, v)` pairs in one commit; returns the rejections as `(index, reason)`.
fn append(db: &Tsdb, samples: &[(i64, f64)]) -> Vec<(usize, RejectReason)> {
    let mut app = db.appender();
    for &(t, v) in samples {
        app.append(&x(), t, v).unwrap();
    }
    let r = app.commit().unwrap();
    r.rejected.iter().map(|r| (r.index, r.reason)).collect()
}

fn read(db: &Tsdb, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    let got = db
        .querier(mint, maxt)
        .unwrap()
        .select(&[Matcher::equal("__name__", "x")])
        .unwrap();
    assert!(got.len() <= 1);
    got.first()
        .map(|s| s.samples.iter().map(|s| (s.t, s.v)).collect())
        .unwrap_or_default()
}

fn all(db: &Tsdb) -> Vec<(i64, f64)> {
    read(db, i64::MIN + 1, i64::MAX)
}

#[test]
fn without_a_window_older_samples_are_refused_as_out_of_order() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, Duration::ZERO);
    assert!(append(&db, &[(10 * MIN, 1.0)]).is_empty());
    assert_eq!(
        append(&db, &[(9 * MIN, 2.0)]),
        [(0, RejectReason::OutOfOrder)]
    );
    assert_eq!(all(&db), [(10 * MIN, 1.0)]);
}

#[test]
fn the_window_accepts_older_samples_refuses_too_old_ones_and_keeps_duplicates_no_ops() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, Duration::from_secs(600));
    // One sample a minute from 0 to 30m.
    let live: Vec<(i64, f64)> = (0..=30).map(|i| (i * MIN, i as f64)).collect();
    assert!(append(&db, &live).is_empty());
    // Newest is 30m, window 10m: 20m is the oldest accepted.
    let rejected = append(
        &db,
        &[
            (29 * MIN + 30_000, 29.5), // between two samples: accepted
            (20 * MIN + 30_000, 20.5), // at the edge of the window: accepted
            (20 * MIN - 1, 19.9),      // just past it: too old
            (25 * MIN, 25.0),          // the same sample again: a no-op
            (25 * MIN, 99.0),          // the same timestamp, another value
            (29 * MIN + 30_000, 29.5), // a repeat of an out-of-order sample: a no-op
            (29 * MIN + 30_000, 0.0),  // ... with another value
        ],
    );
    assert_eq!(
        rejected,
        [
            (2, RejectReason::TooOld),
            (4, RejectReason::Duplicate),
            (6, RejectReason::Duplicate),
        ]
    );
    let mut want = live.clone();
    want.extend([(29 * MIN + 30_000, 29.5), (20 * MIN + 30_000, 20.5)]);
    want.sort_by_key(|s| s.0);
    assert_eq!(
        all(&db),
        want,
        "reads merge the out-of-order samples in time order"
    );
    assert_eq!(
        read(&db, 20 * MIN + 1, 21 * MIN),
        [(20 * MIN + 30_000, 20.5), (21 * MIN, 21.0)],
        "and clip them to the range"
    );
    let c = db.counters();
    assert_eq!(
        c.samples_out_of_order_appended
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        c.samples_too_old.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn checkpoints_merge_the_buffer_into_memory_and_into_persisted_chunks_and_restarts_keep_it() {
    let dir = TempDir::new().unwrap();
    let mut want: Vec<(i64, f64)>;
    {
        let db = open(&dir, Duration::from_secs(3 * 3600));
        // 300 samples every 30 s: two chunks cut (and written by the checkpoint), one open.
        want = (0..300).map(|i| (i * 30_000, i as f64)).collect();
        assert!(append(&db, &want).is_empty());
        db.checkpoint().unwrap();
        // Out-of-order samples into the persisted range, into the gap before the open chunk
        // and into the open chunk, in one commit and in reverse order.
        let late: Vec<(i64, f64)> = [10, 1000, 3570, 7500, 4000]
            .iter()
            .rev()
            .map(|&s| (s * 1000 + 15_000, -(s as f64)))
            .collect();
        assert!(append(&db, &late).is_empty());
        want.extend(&late);
        want.sort_by_key(|s| s.0);
        assert_eq!(all(&db), want, "before the checkpoint");
        db.checkpoint().unwrap();
        assert_eq!(all(&db), want, "after the checkpoint merged them");
        // Appends go on above the newest sample; more late samples after the merge.
        assert!(append(&db, &[(300 * 30_000, 300.0), (7_000_015, -7.0)]).is_empty());
        want.extend([(300 * 30_000, 300.0), (7_000_015, -7.0)]);
        want.sort_by_key(|s| s.0);
        assert_eq!(all(&db), want);
        // No checkpoint now: the last late sample is only in the WAL and the buffer.
    }
    let db = open(&dir, Duration::ZERO);
    assert_eq!(
        all(&db),
        want,
        "a restart replays the buffer, window or not"
    );
    db.checkpoint().unwrap();
    drop(db);
    let db = open(&dir, Duration::ZERO);
    assert_eq!(all(&db), want, "and after its merge");
    // Short windows read exactly their samples whichever chunk holds them.
    for (lo, hi) in [(0, 60_000), (3_570_000, 3_600_000), (8_985_000, 9_000_000)] {
        let expect: Vec<(i64, f64)> = want
            .iter()
            .copied()
            .filter(|&(t, _)| lo <= t && t <= hi)
            .collect();
        assert_eq!(read(&db, lo, hi), expect, "[{lo}, {hi}]");
    }
}

#[test]
fn many_late_samples_into_one_chunk_are_cut_into_chunks_of_the_usual_size() {
    let dir = TempDir::new().unwrap();
    {
        let db = open(&dir, Duration::from_secs(3600));
        // An open chunk of 100 samples every 20 s, then 1900 samples into its gaps.
        let mut want: Vec<(i64, f64)> = (0..100).map(|i| (i * 20_000, i as f64)).collect();
        assert!(append(&db, &want).is_empty());
        let late: Vec<(i64, f64)> = (0..99 * 20)
            .filter(|k| k % 20 != 0)
            .map(|k| (k * 1000, k as f64 / 1000.0))
            .collect();
        for batch in late.chunks(97) {
            assert!(append(&db, batch).is_empty());
        }
        want.extend(&late);
        want.sort_by_key(|s| s.0);
        db.checkpoint().unwrap();
        assert_eq!(all(&db), want);
        let stats = db.stats();
        assert!(stats.open_chunks <= 1, "{stats:?}");
        db.seal_all().unwrap();
        assert_eq!(all(&db), want);
    }
    let db = open(&dir, Duration::ZERO);
    assert_eq!(all(&db).len(), 100 + 99 * 19);
}

#[test]
fn the_window_can_change_while_running() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, Duration::ZERO);
    assert!(append(&db, &[(10 * MIN, 1.0)]).is_empty());
    assert_eq!(
        append(&db, &[(9 * MIN, 2.0)]),
        [(0, RejectReason::OutOfOrder)]
    );
    db.set_out_of_order_window(Duration::from_secs(120));
    assert_eq!(
        append(&db, &[(9 * MIN, 2.0), (7 * MIN, 3.0)]),
        [(1, RejectReason::TooOld)]
    );
    db.set_out_of_order_window(Duration::ZERO);
    assert_eq!(
        append(&db, &[(8 * MIN, 2.0)]),
        [(0, RejectReason::OutOfOrder)]
    );
    assert_eq!(all(&db), [(9 * MIN, 2.0), (10 * MIN, 1.0)]);
}
