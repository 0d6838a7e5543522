//! Backfill through the `Backfill` trait on a real RocksDB in a temp dir: history below and
//! among what a series holds, duplicates, retention, restarts, and reads across the merged
//! chunks.

use augur_storage::{
    Appendable, Backfill, Labels, Matcher, Options, Queryable, RejectReason, Sample, Tsdb,
};
use tempfile::TempDir;

fn open(dir: &TempDir, retention_secs: u64) -> Tsdb {
    Tsdb::open(
        dir.path(),
        Options {
            background: false,
            retention: std::time::Duration::from_secs(retention_secs),
            ..Options::default()
        },
    )
    .unwrap()
}

const YEAR: u64 = 365 * 86_400;

fn x() -> Labels {
    Labels::new([("__name__", "x"), ("job", "a")]).unwrap()
}

fn samples(ts: impl IntoIterator<Item = i64>) -> Vec<Sample> {
    ts.into_iter().map(|t| Sample::new(t, t as f64)).collect()
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

fn append(db: &Tsdb, ts: impl IntoIterator<Item = i64>) -> usize {
    let mut app = db.appender();
    for t in ts {
        app.append(&x(), t, t as f64).unwrap();
    }
    let r = app.commit().unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    r.accepted
}

fn expect_all(db: &Tsdb, ts: &[i64]) {
    let want: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
    assert_eq!(read(db, i64::MIN + 1, i64::MAX), want);
}

#[test]
fn history_goes_below_and_among_appended_samples_and_survives_restart() {
    let dir = TempDir::new().unwrap();
    let mut all: Vec<i64>;
    {
        let db = open(&dir, 10 * YEAR);
        // Live data: 300 samples (two cut chunks in memory, one open), every 10 s.
        append(&db, (0..300).map(|i| 1_000_000 + i * 10_000));
        // History before it, in reverse order, and samples in the gaps of the live data.
        let mut history: Vec<i64> = (0..500).map(|i| i * 1_000).rev().collect();
        history.extend((0..299).map(|i| 1_000_000 + i * 10_000 + 5_000));
        let r = db.backfill(&x(), &samples(history.clone())).unwrap();
        assert_eq!(r.accepted, history.len());
        assert!(r.rejected.is_empty());
        all = (0..300).map(|i| 1_000_000 + i * 10_000).collect();
        all.extend(history);
        all.sort_unstable();
        expect_all(&db, &all);
        // Appends continue above the newest sample.
        append(&db, [5_000_000, 5_010_000]);
        all.extend([5_000_000, 5_010_000]);
        expect_all(&db, &all);
    }
    let db = open(&dir, 10 * YEAR);
    expect_all(&db, &all);
    // Reads that start inside a merged chunk see every sample after it.
    let mid: Vec<(i64, f64)> = all
        .iter()
        .filter(|&&t| (1_500_000..=2_000_000).contains(&t))
        .map(|&t| (t, t as f64))
        .collect();
    assert_eq!(read(&db, 1_500_000, 2_000_000), mid);
}

#[test]
fn repeated_timestamps_keep_the_stored_value() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, 10 * YEAR);
    db.backfill(&x(), &samples(0..200)).unwrap();
    // 10 repeats with the same value, 1 with another value, 2 new; one new sample twice in the
    // batch with two values (the first wins).
    let mut batch = samples(100..110);
    batch.push(Sample::new(150, -1.0));
    batch.push(Sample::new(1_000, 1_000.0));
    batch.push(Sample::new(-5, -5.0));
    batch.push(Sample::new(1_000, 7.0));
    let r = db.backfill(&x(), &batch).unwrap();
    assert_eq!(r.accepted, 12);
    let reasons: Vec<(usize, RejectReason)> =
        r.rejected.iter().map(|r| (r.index, r.reason)).collect();
    assert_eq!(
        reasons,
        [(10, RejectReason::Duplicate), (13, RejectReason::Duplicate)]
    );
    let mut want: Vec<i64> = (0..200).collect();
    want.insert(0, -5);
    want.push(1_000);
    expect_all(&db, &want);
}

#[test]
fn overlapping_backfills_leave_chunks_that_reads_can_seek() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, 10 * YEAR);
    // A sparse series: few samples spanning a long time, so one chunk covers a wide range.
    db.backfill(&x(), &samples((0..100).map(|i| i * 1_000_000)))
        .unwrap();
    // A dense burst inside that range; then reads that start inside the sparse chunk.
    db.backfill(&x(), &samples((0..1000).map(|i| 50_000_000 + i)))
        .unwrap();
    let mut want: Vec<i64> = (0..100).map(|i| i * 1_000_000).collect();
    want.extend((0..1000).map(|i| 50_000_000 + i));
    want.sort_unstable();
    want.dedup();
    expect_all(&db, &want);
    for (lo, hi) in [(60_000_000, 99_000_000), (49_999_999, 50_000_500)] {
        let w: Vec<(i64, f64)> = want
            .iter()
            .filter(|&&t| t >= lo && t <= hi)
            .map(|&t| (t, t as f64))
            .collect();
        assert_eq!(read(&db, lo, hi), w, "range [{lo}, {hi}]");
    }
}

#[test]
fn samples_past_retention_are_out_of_bounds_and_appends_stay_in_order() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, 3600);
    let hour = 3_600_000;
    append(&db, [10 * hour]);
    let r = db
        .backfill(&x(), &samples([8 * hour, 9 * hour + 1, 10 * hour - 1]))
        .unwrap();
    assert_eq!(r.accepted, 2);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].reason, RejectReason::OutOfBounds);
    expect_all(&db, &[9 * hour + 1, 10 * hour - 1, 10 * hour]);
    // The appender still refuses what is older than the newest sample.
    let mut app = db.appender();
    app.append(&x(), 10 * hour - 2, 0.0).unwrap();
    let r = app.commit().unwrap();
    assert_eq!(r.rejected[0].reason, RejectReason::OutOfOrder);
}

#[test]
fn an_empty_label_set_is_refused() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir, YEAR);
    let err = db.backfill(&Labels::default(), &samples([1])).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}
