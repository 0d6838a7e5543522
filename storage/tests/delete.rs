//! Deleting samples and series (`Tsdb::delete_series`) on a real RocksDB in a temp dir:
//! ranges cut out of in-memory and persisted chunks, whole series removed from the index,
//! intervals clamped to what a series holds (later appends stay), out-of-order buffers and
//! native histograms, restarts, and the bytes leaving the disk after `clean_tombstones`.

use std::time::Duration;

use augur_storage::histogram::{Histogram, Span};
use augur_storage::{Appendable, Labels, Matcher, Options, Queryable, Tsdb};
use tempfile::TempDir;

const MIN: i64 = 60_000;

fn open(dir: &TempDir) -> Tsdb {
    Tsdb::open(
        dir.path(),
        Options {
            background: false,
            out_of_order_window: Duration::from_secs(3600),
            retention: Duration::from_secs(100 * 365 * 86_400),
            ..Options::default()
        },
    )
    .unwrap()
}

fn series(name: &str, job: &str) -> Labels {
    Labels::new([("__name__", name), ("job", job)]).unwrap()
}

/// One sample a minute at `from..to` minutes, value = minute.
fn fill(db: &Tsdb, l: &Labels, from: i64, to: i64) {
    let mut app = db.appender();
    for m in from..to {
        app.append(l, m * MIN, m as f64).unwrap();
    }
    let r = app.commit().unwrap();
    assert!(r.rejected.is_empty(), "{r:?}");
}

/// Minutes held by the series matching `job=..` of metric `name`.
fn minutes(db: &Tsdb, name: &str, job: &str) -> Vec<i64> {
    let got = db
        .querier(i64::MIN + 1, i64::MAX)
        .unwrap()
        .select(&[Matcher::equal("__name__", name), Matcher::equal("job", job)])
        .unwrap();
    assert!(got.len() <= 1);
    got.first()
        .map(|s| {
            s.samples
                .iter()
                .map(|x| {
                    assert_eq!(x.v, (x.t / MIN) as f64, "value of {}", x.t);
                    x.t / MIN
                })
                .collect()
        })
        .unwrap_or_default()
}

fn range(from: i64, to: i64) -> Vec<i64> {
    (from..to).collect()
}

fn sel(name: &str) -> Vec<Vec<Matcher>> {
    vec![vec![Matcher::equal("__name__", name)]]
}

#[test]
fn a_range_goes_from_memory_and_disk_and_stays_gone_after_restart() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (series("x", "a"), series("y", "a"));
    {
        let db = open(&dir);
        // 0..600 minutes: five chunks, the first four sealed and written by the checkpoint,
        // then 600..700 in the open chunk.
        fill(&db, &a, 0, 600);
        fill(&db, &b, 0, 600);
        db.checkpoint().unwrap();
        db.seal_all().unwrap();
        fill(&db, &a, 600, 700);
        fill(&db, &b, 600, 700);
        // From inside one persisted chunk to inside the in-memory one.
        let st = db.delete_series(&sel("x"), 100 * MIN, 650 * MIN).unwrap();
        assert_eq!(st.series_matched, 1);
        assert_eq!(st.series_removed, 0);
        assert_eq!(st.samples_deleted, 551);
        let want: Vec<i64> = range(0, 100).into_iter().chain(range(651, 700)).collect();
        assert_eq!(minutes(&db, "x", "a"), want);
        assert_eq!(
            minutes(&db, "y", "a"),
            range(0, 700),
            "other series untouched"
        );
        // Appends go on after the delete.
        fill(&db, &a, 700, 710);
    }
    let db = open(&dir);
    let want: Vec<i64> = range(0, 100).into_iter().chain(range(651, 710)).collect();
    assert_eq!(minutes(&db, "x", "a"), want);
    assert_eq!(minutes(&db, "y", "a"), range(0, 700));
    // Cutting the oldest samples moves the series' start (a range read from there is exact).
    db.delete_series(&sel("x"), i64::MIN, 50 * MIN).unwrap();
    let got = db
        .querier(0, 60 * MIN)
        .unwrap()
        .select(&sel("x")[0])
        .unwrap();
    assert_eq!(got[0].samples.first().unwrap().t, 51 * MIN);
}

#[test]
fn a_series_deleted_whole_leaves_the_index_and_can_be_written_again() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let (gone, kept) = (series("secret", "a"), series("secret", "b"));
    fill(&db, &gone, 0, 300);
    fill(&db, &kept, 0, 300);
    db.checkpoint().unwrap();
    let st = db
        .delete_series(
            &[vec![
                Matcher::equal("__name__", "secret"),
                Matcher::equal("job", "a"),
            ]],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    assert_eq!((st.series_matched, st.series_removed), (1, 1));
    assert_eq!(st.samples_deleted, 300);
    let q = db.querier(i64::MIN + 1, i64::MAX).unwrap();
    assert_eq!(
        q.series(&sel("secret")[0]).unwrap(),
        std::slice::from_ref(&kept)
    );
    assert_eq!(q.label_values("job", &[]).unwrap(), ["b"]);
    drop(q);
    assert_eq!(minutes(&db, "secret", "a"), Vec::<i64>::new());
    // The same labels again: a new series with only the new samples.
    fill(&db, &gone, 400, 410);
    assert_eq!(minutes(&db, "secret", "a"), range(400, 410));
    drop(db);
    let db = open(&dir);
    assert_eq!(minutes(&db, "secret", "a"), range(400, 410));
    assert_eq!(minutes(&db, "secret", "b"), range(0, 300));
}

#[test]
fn the_interval_is_clamped_to_what_the_series_holds_when_deleting() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let a = series("x", "a");
    fill(&db, &a, 0, 100);
    // `end` far in the future, as the API's default: the series is removed, and samples
    // written afterwards, even inside the interval, are kept.
    db.delete_series(&sel("x"), 50 * MIN, i64::MAX).unwrap();
    assert_eq!(minutes(&db, "x", "a"), range(0, 50));
    fill(&db, &a, 100, 120);
    assert_eq!(
        minutes(&db, "x", "a"),
        range(0, 50)
            .into_iter()
            .chain(range(100, 120))
            .collect::<Vec<_>>()
    );
    // Nothing matches: nothing happens.
    let st = db
        .delete_series(&sel("nothing"), i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(st.series_matched, 0);
    // A range with no samples of the series.
    let st = db.delete_series(&sel("x"), 60 * MIN, 90 * MIN).unwrap();
    assert_eq!(st.samples_deleted, 0);
}

#[test]
fn out_of_order_samples_waiting_in_the_buffer_are_deleted_too() {
    let dir = TempDir::new().unwrap();
    let a = series("x", "a");
    {
        let db = open(&dir);
        let mut app = db.appender();
        for m in (0..60).step_by(2) {
            app.append(&a, m * MIN, m as f64).unwrap();
        }
        app.commit().unwrap();
        // The odd minutes arrive late, into the out-of-order buffer.
        let mut app = db.appender();
        for m in (1..60).step_by(2) {
            app.append(&a, m * MIN, m as f64).unwrap();
        }
        // (59 is newer than 58: in order.)
        assert_eq!(app.commit().unwrap().out_of_order, 29);
        db.delete_series(&sel("x"), 10 * MIN, 19 * MIN).unwrap();
        let want: Vec<i64> = range(0, 10).into_iter().chain(range(20, 60)).collect();
        assert_eq!(minutes(&db, "x", "a"), want);
        db.checkpoint().unwrap();
        assert_eq!(minutes(&db, "x", "a"), want);
    }
    let db = open(&dir);
    let want: Vec<i64> = range(0, 10).into_iter().chain(range(20, 60)).collect();
    assert_eq!(minutes(&db, "x", "a"), want);
}

fn hist(n: i64) -> Histogram {
    let n = n as f64;
    Histogram {
        schema: 0,
        count: 3.0 * n,
        sum: n,
        zero_count: n,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![n, n],
        integer: true,
        ..Histogram::default()
    }
}

#[test]
fn histogram_samples_are_deleted_from_their_chunks() {
    let dir = TempDir::new().unwrap();
    let h = series("rpc_seconds", "a");
    let db = open(&dir);
    for (from, to) in [(0, 150), (150, 300)] {
        let mut app = db.appender();
        for m in from..to {
            app.append_histogram(0, &h, m * MIN, &hist(m), 0).unwrap();
        }
        assert!(app.commit().unwrap().rejected.is_empty());
        if from == 0 {
            db.checkpoint().unwrap();
            db.seal_all().unwrap();
        }
    }
    let st = db
        .delete_series(&sel("rpc_seconds"), 100 * MIN, 200 * MIN)
        .unwrap();
    assert_eq!(st.samples_deleted, 101);
    let got = db
        .querier(i64::MIN + 1, i64::MAX)
        .unwrap()
        .select(&sel("rpc_seconds")[0])
        .unwrap();
    let ts: Vec<i64> = got[0].histograms.iter().map(|x| x.t / MIN).collect();
    assert_eq!(
        ts,
        range(0, 100)
            .into_iter()
            .chain(range(201, 300))
            .collect::<Vec<_>>()
    );
    for x in &got[0].histograms {
        assert_eq!(x.h, hist(x.t / MIN));
    }
    // Appends continue in order.
    let mut app = db.appender();
    app.append_histogram(0, &h, 300 * MIN, &hist(300), 0)
        .unwrap();
    assert!(app.commit().unwrap().rejected.is_empty());
}

#[test]
fn clean_tombstones_gives_the_space_back() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    // Noise-like values so the chunks do not compress to nothing.
    let mut app = db.appender();
    for i in 0..200 {
        let l = series("big", &format!("j{i}"));
        for m in 0..600i64 {
            let v = ((m * 7919 + i * 104_729) % 1_000_003) as f64 / 7.0;
            app.append(&l, m * MIN, v).unwrap();
        }
    }
    app.commit().unwrap();
    db.checkpoint().unwrap();
    db.seal_all().unwrap();
    db.compact().unwrap();
    let size = |db: &Tsdb| -> u64 { db.stats().sst_bytes.iter().map(|(_, b)| b).sum() };
    let before = size(&db);
    db.delete_series(&sel("big"), i64::MIN, i64::MAX).unwrap();
    db.clean_tombstones().unwrap();
    let after = size(&db);
    assert!(
        after * 10 < before,
        "SST bytes {before} before the delete, {after} after clean_tombstones"
    );
    assert!(db
        .querier(i64::MIN + 1, i64::MAX)
        .unwrap()
        .series(&[])
        .unwrap()
        .is_empty());
}

#[test]
fn deleting_the_newest_samples_moves_the_series_end_and_emptying_it_removes_it() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    let a = series("x", "a");
    // Minutes 0..200, then a sample dated far ahead (a sender's clock gone wrong).
    fill(&db, &a, 0, 200);
    fill(&db, &a, 100_000, 100_001);
    db.checkpoint().unwrap();
    // Minute 500 is refused: the series' newest sample is at 100,000.
    let mut app = db.appender();
    app.append(&a, 500 * MIN, 500.0).unwrap();
    assert_eq!(app.commit().unwrap().rejected.len(), 1);
    db.delete_series(&sel("x"), 150 * MIN, i64::MAX).unwrap();
    // Not listed after its new end; appends go on from minute 149.
    let q = db.querier(160 * MIN, i64::MAX).unwrap();
    assert!(q.series(&sel("x")[0]).unwrap().is_empty());
    drop(q);
    fill(&db, &a, 500, 501);
    assert_eq!(
        minutes(&db, "x", "a"),
        range(0, 150).into_iter().chain([500]).collect::<Vec<_>>()
    );
    // Two deletes that together cover everything remove the series.
    db.delete_series(&sel("x"), 400 * MIN, 600 * MIN).unwrap();
    let st = db.delete_series(&sel("x"), 0, 149 * MIN).unwrap();
    assert_eq!((st.series_removed, st.samples_deleted), (1, 150));
    let q = db.querier(i64::MIN + 1, i64::MAX).unwrap();
    assert!(q.label_values("job", &[]).unwrap().is_empty());
}
