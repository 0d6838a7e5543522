//! The remote-write receiver over real HTTP with real snappy + protobuf bodies.

mod common;

use augur_api::proto::{v1, v2};
use augur_storage::{Matcher, Queryable, STALE_NAN};
use common::*;
use prost::Message;

const T0: i64 = 1_700_000_000_000;

async fn stored(srv: &TestServer, name: &str) -> Vec<(String, Vec<(i64, u64)>)> {
    let db = srv.server.as_ref().unwrap().state.db().unwrap().clone();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_samples_land_exactly_including_stale_markers() {
    let srv = TestServer::start().await;
    let req = request(vec![
        series(
            &[("__name__", "up"), ("job", "api")],
            &[(T0, 1.0), (T0 + 15_000, STALE_NAN)],
        ),
        series(&[("job", "api"), ("__name__", "rps")], &[(T0, 0.25)]),
    ]);
    let (status, body) = srv.write_v1(&req).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(
        stored(&srv, "up").await,
        vec![(
            r#"up{job="api"}"#.to_string(),
            vec![(T0, 1f64.to_bits()), (T0 + 15_000, STALE_NAN.to_bits())]
        )]
    );
    assert_eq!(stored(&srv, "rps").await.len(), 1);
    // Re-sending the newest sample unchanged is a no-op, as in Prometheus; re-sending older
    // ones is out of order (400), and either way the stored data is unchanged.
    let newest = request(vec![series(
        &[("__name__", "up"), ("job", "api")],
        &[(T0 + 15_000, STALE_NAN)],
    )]);
    assert_eq!(srv.write_v1(&newest).await.0, 204);
    let (status, body) = srv.write_v1(&req).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("out of order sample for series up{job=\"api\"}"),
        "{body}"
    );
    assert_eq!(stored(&srv, "up").await[0].1.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_are_refused_with_the_right_status_and_lose_nothing() {
    let srv = TestServer::start().await;
    let good = request(vec![series(
        &[("__name__", "kept"), ("i", "0")],
        &[(T0, 1.0)],
    )]);
    assert_eq!(srv.write_v1(&good).await.0, 204);

    let raw = good.encode_to_vec();
    let framed = {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut w, &raw).unwrap();
        w.into_inner().unwrap()
    };
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "not snappy",
            b"\xff\xff\xff\xff\xff\xff".to_vec(),
            V1_HEADERS.to_vec(),
            400,
            "snappy",
        ),
        (
            "framed snappy",
            framed,
            V1_HEADERS.to_vec(),
            400,
            "block format",
        ),
        (
            "not protobuf",
            snappy(b"\x0a\xff\xff\xff\xff\x0f garbage"),
            V1_HEADERS.to_vec(),
            400,
            "protobuf",
        ),
        (
            "json",
            raw.clone(),
            vec![
                ("Content-Type", "application/json"),
                ("Content-Encoding", "snappy"),
            ],
            415,
            "expected application/x-protobuf",
        ),
        (
            "unknown proto",
            snappy(&raw),
            vec![
                ("Content-Type", "application/x-protobuf;proto=foo.Bar"),
                ("Content-Encoding", "snappy"),
            ],
            415,
            "unknown type for remote write protobuf message foo.Bar",
        ),
        (
            "gzip",
            snappy(&raw),
            vec![
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            415,
            "only snappy is acceptable",
        ),
    ];
    for (what, body, headers, want_status, want_msg) in cases {
        let (status, _, text) = srv.write_raw(body, &headers).await;
        assert_eq!(status, want_status, "{what}: {text}");
        assert!(
            text.contains(want_msg),
            "{what}: {text:?} should mention {want_msg:?}"
        );
    }
    let (status, _) = srv.get("/-/healthy").await;
    assert_eq!(status, 200);
    assert_eq!(
        stored(&srv, "kept").await.len(),
        1,
        "accepted data is intact"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(config_path(dir.path()), CONFIG).unwrap();
    let srv = TestServer::start_in(dir, &["--web.remote-write.max-body-bytes=1024"]).await;
    let many: Vec<_> = (0..200)
        .map(|i| {
            series(
                &[("__name__", "big"), ("i", &format!("{i:0>40}"))],
                &[(T0, i as f64)],
            )
        })
        .collect();
    let (status, _, text) = srv
        .write_raw(snappy(&request(many).encode_to_vec()), V1_HEADERS)
        .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("exceeds the 1024 bytes limit"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_samples_name_the_first_series_count_the_rest_and_keep_the_valid_ones() {
    let srv = TestServer::start().await;
    let a = [("__name__", "m"), ("s", "a")];
    let b = [("__name__", "m"), ("s", "b")];
    assert_eq!(
        srv.write_v1(&request(vec![
            series(&a, &[(T0 + 100, 1.0)]),
            series(&b, &[(T0 + 100, 1.0)])
        ]))
        .await
        .0,
        204
    );
    let req = request(vec![
        series(&a, &[(T0 + 50, 1.0), (T0 + 200, 2.0)]), // one out of order, one fine
        series(&b, &[(T0 + 100, 9.0), (T0 + 60, 1.0)]), // duplicate, out of order
        series(&[("__name__", "m"), ("", "x")], &[(T0, 1.0)]),
        series(&[("s", "nameless")], &[(T0, 1.0)]),
        series(&[("__name__", "ok")], &[(T0, 5.0)]),
    ]);
    let (status, body) = srv.write_v1(&req).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with(r#"out of order sample for series m{s="a"}: timestamp 1700000000050 is older than the newest sample 1700000000100"#), "{body}");
    assert!(
        body.contains("5 samples rejected in all (1 duplicate, 2 invalid_labels, 2 out_of_order)"),
        "{body}"
    );
    assert!(body.contains("2 samples written"), "{body}");
    let m = stored(&srv, "m").await;
    assert_eq!(m[0].1.len(), 2, "series a kept its valid new sample");
    assert_eq!(
        stored(&srv, "ok").await.len(),
        1,
        "valid series in the same request are kept"
    );

    // Invalid labels alone: 400 naming the series.
    let (status, body) = srv
        .write_v1(&request(vec![series(
            &[("__name__", "m"), ("a\0b", "v")],
            &[(T0, 1.0)],
        )]))
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains(
            r#"invalid labels for series {__name__="m", "a\0b"="v"}: invalid label name "a\0b": must be non-empty UTF-8 without NUL"#
        ),
        "{body}"
    );

    let metrics = srv.metrics().await;
    assert!(
        metrics.contains(r#"augur_remote_write_samples_rejected_total{reason="out_of_order"} 2"#),
        "{metrics}"
    );
}

/// The native histograms stored for metric `name`, as (t, st, count, sum, positive buckets).
async fn stored_histograms(srv: &TestServer, name: &str) -> Vec<(i64, i64, f64, f64, Vec<f64>)> {
    let db = srv.server.as_ref().unwrap().state.db().unwrap().clone();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .flat_map(|s| s.histograms)
        .map(|x| (x.t, x.st, x.h.count, x.h.sum, x.h.positive_buckets))
        .collect()
}

fn int_histogram(t: i64, deltas: Vec<i64>, count: u64) -> v1::Histogram {
    use augur_api::proto::v1::histogram::{Count, ZeroCount};
    v1::Histogram {
        timestamp: t,
        schema: 3,
        zero_threshold: 1e-128,
        count: Some(Count::CountInt(count)),
        zero_count: Some(ZeroCount::ZeroCountInt(0)),
        sum: 12.5,
        positive_spans: vec![v1::BucketSpan {
            offset: 0,
            length: deltas.len() as u32,
        }],
        positive_deltas: deltas,
        reset_hint: 2,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn native_histograms_are_stored_and_invalid_ones_named() {
    use augur_api::proto::v1::histogram::Count;
    let srv = TestServer::start().await;
    // Integer buckets as deltas (1, 3, 2 absolute), a float histogram, and a float sample.
    let mut ts = series(&[("__name__", "h")], &[]);
    ts.histograms.push(int_histogram(T0, vec![1, 2, -1], 6));
    ts.histograms.push(v1::Histogram {
        timestamp: T0 + 15_000,
        schema: 0,
        count: Some(Count::CountFloat(2.5)),
        sum: 1.0,
        positive_spans: vec![v1::BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_counts: vec![0.5, 2.0],
        ..Default::default()
    });
    let (status, body) = srv
        .write_v1(&request(vec![
            ts,
            series(&[("__name__", "f")], &[(T0, 1.0)]),
        ]))
        .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let want = vec![
        (T0, 0, 6.0, 12.5, vec![1.0, 3.0, 2.0]),
        (T0 + 15_000, 0, 2.5, 1.0, vec![0.5, 2.0]),
    ];
    assert_eq!(stored_histograms(&srv, "h").await, want);

    // Remote write 2.0: custom buckets (schema -53) with a start timestamp.
    let custom = v2::Histogram {
        timestamp: T0 + 30_000,
        start_timestamp: T0 - 60_000,
        schema: -53,
        count: Some(augur_api::proto::v2::histogram::Count::CountInt(3)),
        sum: 0.75,
        positive_spans: vec![v2::BucketSpan {
            offset: 0,
            length: 2,
        }],
        positive_deltas: vec![1, 1],
        custom_values: vec![0.25, 1.0],
        ..Default::default()
    };
    let req = v2::Request {
        symbols: ["", "__name__", "h"]
            .iter()
            .map(|s| prost::bytes::Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2],
            histograms: vec![custom],
            ..Default::default()
        }],
    };
    let (status, headers, body) = srv.write_v2(&req).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(headers["x-prometheus-remote-write-histograms-written"], "1");

    // Bad histograms: 400 naming series and problem; the good one beside them is kept.
    let mut bad = series(&[("__name__", "h")], &[]);
    bad.histograms
        .push(int_histogram(T0 + 45_000, vec![1, 2], 9)); // count mismatch
    bad.histograms.push(v1::Histogram {
        schema: 9,
        ..int_histogram(T0 + 50_000, vec![1], 1)
    });
    let mut spans = int_histogram(T0 + 55_000, vec![1, 1], 3);
    spans.positive_spans[0].length = 3;
    bad.histograms.push(spans);
    bad.histograms
        .push(int_histogram(T0 + 60_000, vec![2, 2], 6)); // fine
    let (status, body) = srv.write_v1(&request(vec![bad])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with(
            "invalid histogram for series h{} at timestamp 1700000045000: 4 observations found in buckets, but the Count field is 9: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"
        ),
        "{body}"
    );
    assert!(
        body.contains("3 samples rejected in all (3 invalid_histogram)"),
        "{body}"
    );
    let got = stored_histograms(&srv, "h").await;
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[2],
        (T0 + 30_000, T0 - 60_000, 3.0, 0.75, vec![1.0, 2.0])
    );
    assert_eq!(got[3].0, T0 + 60_000);

    // An older histogram is out of order, as a float would be.
    let mut old = series(&[("__name__", "h")], &[]);
    old.histograms.push(int_histogram(T0, vec![1], 1));
    let (status, body) = srv.write_v1(&request(vec![old])).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("out of order sample for series h{}"),
        "{body}"
    );

    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &[]).await;
    assert_eq!(stored_histograms(&srv, "h").await, got, "after a restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_symbols_metadata_and_written_headers() {
    let srv = TestServer::start().await;
    let symbols: Vec<prost::bytes::Bytes> = [
        "",
        "__name__",
        "http_requests_total",
        "job",
        "api",
        "Requests served.",
        "code",
        "200",
    ]
    .iter()
    .map(|s| prost::bytes::Bytes::copy_from_slice(s.as_bytes()))
    .collect();
    let req = v2::Request {
        symbols,
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4, 6, 7],
                samples: vec![
                    v2::Sample {
                        value: 3.0,
                        timestamp: T0,
                        start_timestamp: 0,
                    },
                    v2::Sample {
                        value: 4.0,
                        timestamp: T0 + 1,
                        start_timestamp: 0,
                    },
                ],
                metadata: Some(v2::Metadata {
                    r#type: 1,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 99],
                samples: vec![v2::Sample {
                    value: 1.0,
                    timestamp: T0,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
        ],
    };
    let (status, headers, body) = srv.write_v2(&req).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("labelRefs 1 (name) = 99 (value) outside of symbols table (size 8)"),
        "{body}"
    );
    assert_eq!(headers["x-prometheus-remote-write-samples-written"], "2");
    assert_eq!(headers["x-prometheus-remote-write-histograms-written"], "0");
    assert_eq!(headers["x-prometheus-remote-write-exemplars-written"], "0");
    assert_eq!(
        stored(&srv, "http_requests_total").await[0].0,
        r#"http_requests_total{code="200", job="api"}"#
    );

    let (_, md) = srv.get("/api/v1/metadata?metric=http_requests_total").await;
    assert_eq!(
        md["data"]["http_requests_total"][0],
        serde_json::json!({"type": "counter", "unit": "", "help": "Requests served."})
    );

    // Histogram series are filed under their family; a bad help_ref refuses the series.
    let hist = v2::Request {
        symbols: ["", "__name__", "lat_seconds_bucket", "le", "1"]
            .iter()
            .map(|s| prost::bytes::Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![v2::Sample {
                    value: 1.0,
                    timestamp: T0,
                    start_timestamp: 0,
                }],
                metadata: Some(v2::Metadata {
                    r#type: 3,
                    help_ref: 0,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![v2::Sample {
                    value: 1.0,
                    timestamp: T0,
                    start_timestamp: 0,
                }],
                metadata: Some(v2::Metadata {
                    r#type: 1,
                    help_ref: 77,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
        ],
    };
    let (status, _, body) = srv.write_v2(&hist).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("metadata help_ref 77 outside of symbols table (size 5)"),
        "{body}"
    );
    let (_, md) = srv.get("/api/v1/metadata?metric=lat_seconds").await;
    assert_eq!(md["data"]["lat_seconds"][0]["type"], "histogram", "{md}");

    // A clean v2 request gets 204 and the headers too.
    let ok = v2::Request {
        symbols: req.symbols.clone(),
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4, 6, 7],
            samples: vec![v2::Sample {
                value: 5.0,
                timestamp: T0 + 2,
                start_timestamp: 0,
            }],
            ..Default::default()
        }],
    };
    let (status, headers, _) = srv.write_v2(&ok).await;
    assert_eq!(status, 204);
    assert_eq!(headers["x-prometheus-remote-write-samples-written"], "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_a_restart() {
    let srv = TestServer::start().await;
    let req = request(
        (0..50)
            .map(|i| {
                series(
                    &[("__name__", "r"), ("i", &i.to_string())],
                    &[(T0, i as f64), (T0 + 15_000, 1.5)],
                )
            })
            .collect(),
    );
    assert_eq!(srv.write_v1(&req).await.0, 204);
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &[]).await;
    let got = stored(&srv, "r").await;
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|(_, s)| s.len() == 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn far_future_samples_are_out_of_bounds_and_do_not_block_the_series() {
    let srv = TestServer::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let l = [("__name__", "clock"), ("job", "skewed")];
    let year = 365 * 86_400_000;
    let (status, body) = srv
        .write_v1(&request(vec![series(
            &l,
            &[(now - 60_000, 1.0), (now + year, 2.0)],
        )]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("out of bounds") && body.contains("more than 10m ahead"),
        "{body}"
    );
    // The series was not pushed into the future: an on-time sample still lands.
    assert_eq!(
        srv.write_v1(&request(vec![series(&l, &[(now, 3.0)])]))
            .await
            .0,
        204
    );
    assert_eq!(stored(&srv, "clock").await[0].1.len(), 2);
}

/// Remote write 2.0's per-sample `start_timestamp` is stored and reaches PromQL: a counter
/// restart that only the start timestamps show is counted by `increase`, and
/// `start_timestamp()` returns it, before and after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn v2_start_timestamps_reach_queries_and_survive_a_restart() {
    let srv = TestServer::start().await;
    let symbols = ["", "__name__", "req_total", "job", "api"]
        .iter()
        .map(|s| prost::bytes::Bytes::copy_from_slice(s.as_bytes()))
        .collect();
    // Values never go down, but the counter restarted at T0 + 210s.
    let samples = (1..=6)
        .map(|k| v2::Sample {
            value: 10.0 * k as f64,
            timestamp: T0 + k * 60_000,
            start_timestamp: T0 + if k <= 3 { 30_000 } else { 210_000 },
        })
        .collect();
    let req = v2::Request {
        symbols,
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples,
            ..Default::default()
        }],
    };
    let (status, _, body) = srv.write_v2(&req).await;
    assert_eq!(status, 204, "{body}");
    check_start_timestamps(&srv).await;
    let srv = TestServer::start_in(srv.stop().await, &[]).await;
    check_start_timestamps(&srv).await;
}

async fn check_start_timestamps(srv: &TestServer) {
    let value = |resp: &serde_json::Value| -> String {
        resp["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or_else(|| panic!("no result: {resp}"))
            .to_owned()
    };
    let at = |k: i64| (T0 + k * 60_000) as f64 / 1000.0;
    // (20 → 60, plus 30 before the restart) = 70 over 240s, extrapolated to 300s.
    let (status, resp) = srv
        .get(&format!(
            "/api/v1/query?query=increase(req_total[5m])&time={}",
            at(6)
        ))
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(value(&resp), "87.5");
    let (_, resp) = srv
        .get(&format!(
            "/api/v1/query?query=start_timestamp(req_total)&time={}",
            at(4)
        ))
        .await;
    assert_eq!(value(&resp), format!("{}", (T0 + 210_000) / 1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_samples_within_the_configured_window_are_kept_across_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config_path(dir.path()),
        "storage:\n  tsdb:\n    out_of_order_time_window: 10m\n",
    )
    .unwrap();
    let srv = TestServer::start_in(dir, &[]).await;
    let a = [("__name__", "m"), ("replica", "a")];
    let (status, body) = srv
        .write_v1(&request(vec![series(&a, &[(T0 + 600_000, 2.0)])]))
        .await;
    assert_eq!((status, body.as_str()), (204, ""));
    // An HA partner's older samples: within the window they are kept.
    let (status, body) = srv
        .write_v1(&request(vec![series(
            &a,
            &[(T0 + 300_000, 1.0), (T0 + 450_000, 1.5)],
        )]))
        .await;
    assert_eq!((status, body.as_str()), (204, ""));
    // Beyond it: Prometheus's "too old sample", the rest kept.
    let (status, body) = srv
        .write_v1(&request(vec![series(
            &a,
            &[(T0 - 1, 0.0), (T0 + 500_000, 1.75)],
        )]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with(r#"too old sample for series m{replica="a"}: timestamp 1699999999999 is outside the out-of-order window"#),
        "{body}"
    );
    let want: Vec<(i64, u64)> = [
        (T0 + 300_000, 1.0),
        (T0 + 450_000, 1.5),
        (T0 + 500_000, 1.75),
        (T0 + 600_000, 2.0),
    ]
    .iter()
    .map(|&(t, v): &(i64, f64)| (t, v.to_bits()))
    .collect();
    assert_eq!(stored(&srv, "m").await[0].1, want);
    let metrics = srv.metrics().await;
    for line in [
        "augur_tsdb_out_of_order_samples_appended_total 3",
        "augur_tsdb_too_old_samples_total 1",
        r#"augur_remote_write_samples_rejected_total{reason="too_old"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &[]).await;
    assert_eq!(stored(&srv, "m").await[0].1, want, "after a restart");
}

/// Stored histograms come back through the query API in Prometheus's JSON: `histogram` in
/// instant vectors, `histograms` in range vectors and range queries.
#[tokio::test(flavor = "multi_thread")]
async fn native_histograms_are_served_by_the_query_api() {
    let srv = TestServer::start().await;
    let mut ts = series(&[("__name__", "h"), ("job", "a")], &[]);
    ts.histograms.push(int_histogram(T0, vec![1, 2, -1], 6));
    ts.histograms
        .push(int_histogram(T0 + 15_000, vec![2, 0, 0], 6));
    let (status, body) = srv.write_v1(&request(vec![ts])).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let t = (T0 + 20_000) as f64 / 1000.0;
    let (_, body) = srv.get(&format!("/api/v1/query?query=h&time={t}")).await;
    // Schema 3, buckets 0..2: (2^-1/8, 1], (1, 2^1/8], (2^1/8, 2^2/8]; counts 2, 2, 2.
    assert_eq!(
        body["data"]["result"][0]["histogram"],
        serde_json::json!([
            1700000020,
            {"count": "6", "sum": "12.5", "buckets": [
                [0, "0.9170040432046711", "1", "2"],
                [0, "1", "1.0905077326652577", "2"],
                [0, "1.0905077326652577", "1.189207115002721", "2"]
            ]}
        ]),
        "{body}"
    );
    assert!(body["data"]["result"][0].get("value").is_none(), "{body}");
    let (_, body) = srv
        .get(&format!("/api/v1/query?query=h[1m]&time={t}"))
        .await;
    let hs = &body["data"]["result"][0]["histograms"];
    assert_eq!(hs.as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(hs[0][0], serde_json::json!(1700000000));
    assert_eq!(hs[0][1]["buckets"][1][3], "3", "{body}");
    assert!(body["data"]["result"][0].get("values").is_none(), "{body}");
    let (_, body) = srv
        .get(&format!(
            "/api/v1/query_range?query=h&start={}&end={t}&step=10",
            T0 / 1000
        ))
        .await;
    let hs = &body["data"]["result"][0]["histograms"];
    assert_eq!(hs.as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(hs[2][0], serde_json::json!(1700000020), "{body}");
}

/// Anomaly functions (and every range function, for now) read floats only: over a histogram
/// series they give nothing and say so in an info annotation.
#[tokio::test(flavor = "multi_thread")]
async fn anomaly_functions_ignore_native_histograms_with_an_info() {
    let srv = TestServer::start().await;
    let mut ts = series(&[("__name__", "h"), ("job", "a")], &[]);
    for i in 0..10 {
        ts.histograms.push(int_histogram(
            T0 + i * 15_000,
            vec![i, 1, 1],
            3 * i as u64 + 3,
        ));
    }
    let (status, body) = srv.write_v1(&request(vec![ts])).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let t = (T0 + 150_000) as f64 / 1000.0;
    for q in ["zscore(h[5m])", "ewma(h[5m], 0.5)", "anomaly_score(h[5m])"] {
        let (_, body) = srv
            .get(&format!(
                "/api/v1/query?query={}&time={t}",
                form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(body["data"]["result"], serde_json::json!([]), "{q}: {body}");
        let name = q.split('(').next().unwrap();
        assert_eq!(
            body["infos"][0],
            format!("PromQL info: ignored native histograms in {name}(), which reads float samples only, for metric name \"h\" (1:{})", name.len() + 2),
            "{q}: {body}"
        );
    }
}

/// `histogram_count`, `histogram_sum` and `histogram_avg` read native histograms; operators
/// scale them; nodes that read floats only drop them rather than fail (no 500 from `sort` of
/// a histogram).
#[tokio::test(flavor = "multi_thread")]
async fn histogram_count_sum_avg_and_nodes_that_skip_histograms() {
    let srv = TestServer::start().await;
    let mut ts = series(&[("__name__", "h"), ("job", "a")], &[]);
    ts.histograms.push(int_histogram(T0, vec![1, 2, -1], 6));
    let f = series(&[("__name__", "h"), ("job", "f")], &[(T0, 3.0)]);
    let (status, body) = srv.write_v1(&request(vec![ts, f])).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let t = (T0 + 10_000) as f64 / 1000.0;
    let q = |q: &'static str| {
        let srv = &srv;
        async move { instant_query(srv, q, t).await["data"]["result"].clone() }
    };
    for (expr, want) in [
        ("histogram_count(h)", "6"),
        ("histogram_sum(h)", "12.5"),
        ("histogram_avg(h)", "2.0833333333333335"),
    ] {
        assert_eq!(
            q(expr).await,
            serde_json::json!([{"metric": {"job": "a"}, "value": [1700000010, want]}]),
            "{expr}"
        );
    }
    // `sort` reads floats only: the float series alone passes.
    let got = q("sort(h)").await;
    assert_eq!(got.as_array().map(Vec::len), Some(1), "sort(h): {got}");
    assert!(got[0].get("histogram").is_none(), "sort(h): {got}");
    // Scaling and negation apply to both kinds.
    for (expr, count) in [("h * 2", "12"), ("-h", "-6")] {
        let got = q(expr).await;
        assert_eq!(got.as_array().map(Vec::len), Some(2), "{expr}: {got}");
        let hist = got
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["metric"]["job"] == "a")
            .unwrap();
        assert_eq!(hist["histogram"][1]["count"], count, "{expr}: {got}");
    }
    // A sum of a float and a histogram is no sum, and says so.
    let (status, body) = srv
        .get(&format!("/api/v1/query?query=sum(h)&time={t}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"], serde_json::json!([]), "{body}");
    assert!(
        body["warnings"][0].as_str().is_some_and(|w| w.starts_with(
            "PromQL warning: encountered a mix of histograms and floats for aggregation"
        )),
        "{body}"
    );
}

/// A sender's "no reset" hint on a histogram whose counts went down is not trusted: queries
/// see the reset, as Prometheus's TSDB (which re-detects resets on append) shows it.
#[tokio::test(flavor = "multi_thread")]
async fn histogram_resets_are_detected_whatever_the_sender_hints() {
    let srv = TestServer::start().await;
    let mut ts = series(&[("__name__", "h_total")], &[]);
    // Buckets 1 3 2, then 2 4 3, then 1 1 1 (a reset), every one hinted "no reset".
    ts.histograms.push(int_histogram(T0, vec![1, 2, -1], 6));
    ts.histograms
        .push(int_histogram(T0 + 15_000, vec![2, 2, -1], 9));
    ts.histograms
        .push(int_histogram(T0 + 30_000, vec![1, 0, 0], 3));
    let (status, body) = srv.write_v1(&request(vec![ts])).await;
    assert_eq!((status, body.as_str()), (204, ""));
    let t = (T0 + 30_000) as f64 / 1000.0;
    let value = |q: &'static str| {
        let srv = &srv;
        async move {
            let body = instant_query(srv, q, t).await;
            let v = &body["data"]["result"][0]["value"][1];
            v.as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{q}: {body}"))
        }
    };
    assert_eq!(value("resets(h_total[1m])").await, 1.0);
    // 3 observations before the reset and 3 after it (from zero), extrapolated: more than 6.
    // Trusting the hint would give 3 − 6 = −3.
    let increase = value("histogram_count(increase(h_total[1m]))").await;
    assert!(increase > 6.0, "{increase}");
}

/// The body of a successful instant query at `t` (seconds).
async fn instant_query(srv: &TestServer, q: &str, t: f64) -> serde_json::Value {
    let (status, body) = srv
        .get(&format!(
            "/api/v1/query?query={}&time={t}",
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(status, 200, "{q}: {body}");
    body
}
