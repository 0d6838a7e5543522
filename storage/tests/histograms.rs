//! Native histogram samples on a real RocksDB in a temp dir: exact round trips through the
//! head, sealed chunks, checkpoints and restarts; the ordering and duplicate rules; a series
//! switching between floats and histograms; retention.

use std::time::Duration;

use augur_storage::histogram::{Histogram, HistogramSample, ResetHint, Span};
use augur_storage::{
    Appendable, Labels, Matcher, Options, Queryable, RejectReason, Series, Tsdb, STALE_NAN,
};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Tsdb {
    Tsdb::open(
        dir.path(),
        Options {
            background: false,
            retention: Duration::from_secs(100 * 365 * 86_400),
            ..Options::default()
        },
    )
    .unwrap()
}

fn labels() -> Labels {
    Labels::new([("__name__", "rpc_duration_seconds"), ("job", "api")]).unwrap()
}

/// A cumulative histogram after `n` scrapes: counts grow, a bucket appears at n = 3.
fn hist(n: i64) -> Histogram {
    let n = n as f64;
    let mut h = Histogram {
        schema: 3,
        zero_threshold: 2f64.powi(-128),
        zero_count: n,
        count: 0.0,
        sum: 1.5 * n,
        positive_spans: vec![
            Span {
                offset: -2,
                length: 2,
            },
            Span {
                offset: 3,
                length: 1,
            },
        ],
        positive_buckets: vec![n, 2.0 * n, 3.0 * n],
        negative_spans: vec![],
        negative_buckets: vec![],
        custom_values: vec![],
        reset_hint: ResetHint::No,
        integer: true,
    };
    if n >= 3.0 {
        h.negative_spans = vec![Span {
            offset: 0,
            length: 1,
        }];
        h.negative_buckets = vec![n - 2.0];
    }
    h.count = h.zero_count
        + h.positive_buckets.iter().sum::<f64>()
        + h.negative_buckets.iter().sum::<f64>();
    h
}

fn custom(n: i64) -> Histogram {
    let n = n as f64;
    Histogram {
        schema: -53,
        count: 6.0 * n,
        sum: n,
        positive_spans: vec![Span {
            offset: 0,
            length: 3,
        }],
        positive_buckets: vec![n, 2.0 * n, 3.0 * n],
        custom_values: vec![0.1, 0.5],
        integer: false,
        ..Histogram::default()
    }
}

fn append(db: &Tsdb, samples: &[(i64, Histogram)]) -> Vec<(usize, RejectReason)> {
    let mut app = db.appender();
    for (t, h) in samples {
        app.append_histogram(0, &labels(), *t, h, 0).unwrap();
    }
    let r = app.commit().unwrap();
    r.rejected.iter().map(|r| (r.index, r.reason)).collect()
}

fn read(db: &Tsdb, mint: i64, maxt: i64) -> Option<Series> {
    let got = db
        .querier(mint, maxt)
        .unwrap()
        .select(&[Matcher::equal("job", "api")])
        .unwrap();
    assert!(got.len() <= 1);
    got.into_iter().next()
}

fn hists(db: &Tsdb) -> Vec<(i64, Histogram)> {
    read(db, i64::MIN + 1, i64::MAX)
        .map(|s| s.histograms.into_iter().map(|x| (x.t, x.h)).collect())
        .unwrap_or_default()
}

#[test]
fn histograms_round_trip_through_head_chunks_checkpoints_and_restarts() {
    let dir = TempDir::new().unwrap();
    // 300 samples: two chunks cut, one open; every third a custom-bucket float histogram.
    let want: Vec<(i64, Histogram)> = (0..300)
        .map(|i| (i * 15_000, if i % 3 == 2 { custom(i) } else { hist(i) }))
        .collect();
    {
        let db = open(&dir);
        for batch in want.chunks(7) {
            assert!(append(&db, batch).is_empty());
        }
        assert_eq!(hists(&db), want, "from the head");
        db.checkpoint().unwrap();
        assert_eq!(hists(&db), want, "after a checkpoint wrote the cut chunks");
        // Ranges within and across chunks, and an instant's worth.
        for (lo, hi) in [(0, 0), (1_785_000, 1_800_000), (100_000, 3_000_000)] {
            let expect: Vec<_> = want
                .iter()
                .filter(|(t, _)| lo <= *t && *t <= hi)
                .cloned()
                .collect();
            let got: Vec<_> = read(&db, lo, hi)
                .map(|s| s.histograms.into_iter().map(|x| (x.t, x.h)).collect())
                .unwrap_or_default();
            assert_eq!(got, expect, "[{lo}, {hi}]");
        }
    }
    let db = open(&dir);
    assert_eq!(hists(&db), want, "after a restart");
    db.seal_all().unwrap();
    drop(db);
    let db = open(&dir);
    assert_eq!(hists(&db), want, "after sealing everything");
}

#[test]
fn order_duplicates_and_stale_markers_follow_the_float_rules() {
    let dir = TempDir::new().unwrap();
    let db = open(&dir);
    assert!(append(&db, &[(1000, hist(1)), (2000, hist(2))]).is_empty());
    let stale = Histogram {
        sum: STALE_NAN,
        ..Histogram::default()
    };
    assert_eq!(
        append(
            &db,
            &[
                (2000, hist(2)), // the newest again: a no-op
                (2000, hist(3)), // the same time, another value
                (1500, hist(9)), // older
                (3000, stale.clone()),
            ]
        ),
        [(1, RejectReason::Duplicate), (2, RejectReason::OutOfOrder)]
    );
    let got = hists(&db);
    assert_eq!(got.len(), 3);
    assert!(got[2].1.is_stale(), "the stale marker keeps its NaN bits");
}

#[test]
fn a_series_may_switch_between_floats_and_histograms() {
    let dir = TempDir::new().unwrap();
    {
        let db = open(&dir);
        let mut app = db.appender();
        for i in 0..10 {
            app.append(&labels(), i * 1000, i as f64).unwrap();
        }
        app.commit().unwrap();
        assert!(append(&db, &[(10_000, hist(1)), (11_000, hist(2))]).is_empty());
        let mut app = db.appender();
        app.append(&labels(), 12_000, 12.0).unwrap();
        // A float at a histogram's timestamp is a duplicate, not a no-op.
        app.append(&labels(), 11_000, 0.0).unwrap();
        let r = app.commit().unwrap();
        assert_eq!(r.rejected.len(), 1);
        db.checkpoint().unwrap();
    }
    let db = open(&dir);
    let s = read(&db, 0, 20_000).unwrap();
    let floats: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
    let mut want: Vec<i64> = (0..10).map(|i| i * 1000).collect();
    want.push(12_000);
    assert_eq!(floats, want);
    assert_eq!(
        s.histograms.iter().map(|x| x.t).collect::<Vec<_>>(),
        [10_000, 11_000]
    );
    // An instant read inside the histogram run sees exactly it.
    let s = read(&db, 10_500, 11_500).unwrap();
    assert!(s.samples.is_empty());
    assert_eq!(
        s.histograms,
        [HistogramSample {
            t: 11_000,
            st: 0,
            h: hist(2)
        }]
    );
}
