//! `/api/v1/query` and `/api/v1/query_range` over real HTTP, with data loaded by real
//! remote-write requests: parameters, errors and the exact JSON Prometheus writes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const T0_S: i64 = T0 / 1000;
/// Seeded series have a sample every 15 s from T0 to T0 + 10 m.
const LAST: i64 = T0 + 600_000;

fn every_15s(v: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..=40).map(|i| (T0 + i * 15_000, v(i))).collect()
}

async fn seeded() -> TestServer {
    let srv = TestServer::start().await;
    let s = |labels: &[(&str, &str)], v: fn(i64) -> f64| series(labels, &every_15s(v));
    let req = request(vec![
        s(
            &[("__name__", "up"), ("job", "api"), ("instance", "a")],
            |_| 1.0,
        ),
        s(
            &[("__name__", "up"), ("job", "db"), ("instance", "b")],
            |_| 0.0,
        ),
        s(
            &[("__name__", "up"), ("job", "web"), ("instance", "c")],
            |_| 1.0,
        ),
        s(&[("__name__", "some_gauge"), ("job", "g")], |i| i as f64),
        s(&[("__name__", "tiny")], |_| 1e-7),
        s(&[("__name__", "huge")], |_| 1.5e21),
        s(&[("__name__", "m2m_a"), ("job", "x"), ("i", "1")], |_| 1.0),
        s(&[("__name__", "m2m_a"), ("job", "x"), ("i", "2")], |_| 1.0),
        s(&[("__name__", "m2m_b"), ("job", "x"), ("i", "1")], |_| 1.0),
        s(&[("__name__", "m2m_b"), ("job", "x"), ("i", "2")], |_| 1.0),
    ]);
    assert_eq!(srv.write_v1(&req).await.0, 204);
    srv
}

/// `path?k=v&…`, form-encoded.
fn url(path: &str, params: &[(&str, &str)]) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{q}")
}

/// Status and the body exactly as sent.
async fn get_text(srv: &TestServer, path: &str) -> (u16, String) {
    let resp = srv.client.get(srv.url(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn query(srv: &TestServer, params: &[(&str, &str)]) -> (u16, Value) {
    srv.get(&url("/api/v1/query", params)).await
}

async fn query_range(srv: &TestServer, params: &[(&str, &str)]) -> (u16, Value) {
    srv.get(&url("/api/v1/query_range", params)).await
}

/// The whole success body; fails on anything else.
fn ok(resp: (u16, Value)) -> Value {
    assert_eq!(resp.0, 200, "{}", resp.1);
    assert_eq!(resp.1["status"], "success", "{}", resp.1);
    resp.1
}

fn err(resp: (u16, Value), status: u16, kind: &str, msg: &str) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["status"], "error", "{}", resp.1);
    assert_eq!(resp.1["errorType"], kind, "{}", resp.1);
    assert_eq!(resp.1["error"], msg, "{}", resp.1);
    assert!(resp.1.get("data").is_none() && resp.1.get("warnings").is_none());
}

/// An error whose message starts with `prefix` (for messages worded by the PromQL parser).
fn err_prefix(resp: (u16, Value), status: u16, kind: &str, prefix: &str) -> String {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["errorType"], kind, "{}", resp.1);
    let msg = resp.1["error"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with(prefix),
        "{msg:?} should start with {prefix:?}"
    );
    msg
}

fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_vector_by_get_and_post() {
    let srv = seeded().await;
    let t = format!("{T0_S}.781");
    let (status, body) = get_text(
        &srv,
        &url(
            "/api/v1/query",
            &[("query", r#"up{job="api"}"#), ("time", &t)],
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a","job":"api"},"value":[1700000000.781,"1"]}]}}"#
    );
    // Milliseconds are written with three digits, as Prometheus writes them.
    let (_, body) = get_text(
        &srv,
        &url(
            "/api/v1/query",
            &[("query", r#"up{job="api"}"#), ("time", "1700000000.78")],
        ),
    )
    .await;
    assert!(body.contains(r#""value":[1700000000.780,"1"]"#), "{body}");

    // Three series; a form POST gives the same answer as GET.
    let t = secs(LAST);
    let got = ok(query(&srv, &[("query", "up"), ("time", &t)]).await);
    let mut result = got["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|r| r["metric"]["instance"].as_str().unwrap().to_owned());
    assert_eq!(
        result,
        [
            json!({"metric": {"__name__": "up", "instance": "a", "job": "api"}, "value": [1700000600, "1"]}),
            json!({"metric": {"__name__": "up", "instance": "b", "job": "db"}, "value": [1700000600, "0"]}),
            json!({"metric": {"__name__": "up", "instance": "c", "job": "web"}, "value": [1700000600, "1"]}),
        ]
    );
    assert_eq!(got["data"]["resultType"], "vector");
    let posted = ok(srv
        .post_form("/api/v1/query", &[("query", "up"), ("time", &t)])
        .await);
    assert_eq!(posted, got);
    // Body values win over the query string, as in Go's r.Form.
    let path = url("/api/v1/query", &[("query", "nonexistent"), ("time", &t)]);
    let posted = ok(srv.post_form(&path, &[("query", "up")]).await);
    assert_eq!(posted, got);

    // Functions and aggregations drop the metric name.
    let got = ok(query(&srv, &[("query", "sum by (job) (up)"), ("time", &t)]).await);
    assert_eq!(got["data"]["result"].as_array().unwrap().len(), 3);
    assert!(got["data"]["result"][0]["metric"].get("__name__").is_none());
    // No match: an empty vector, not null.
    let (_, body) = get_text(
        &srv,
        &url("/api/v1/query", &[("query", "nonexistent"), ("time", &t)]),
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn range_query_matrix_by_get_and_post_with_duration_or_float_step() {
    let srv = seeded().await;
    let (start, end) = (secs(T0), secs(T0 + 60_000));
    let params = |step: &'static str| {
        url(
            "/api/v1/query_range",
            &[
                ("query", r#"up{job="api"}"#),
                ("start", &start),
                ("end", &end),
                ("step", step),
            ],
        )
    };
    let (status, body) = get_text(&srv, &params("15s")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"a","job":"api"},"values":[[1700000000,"1"],[1700000015,"1"],[1700000030,"1"],[1700000045,"1"],[1700000060,"1"]]}]}}"#
    );
    for step in ["15", "15.0", "15000ms"] {
        assert_eq!(
            get_text(&srv, &params(step)).await,
            (200, body.clone()),
            "{step}"
        );
    }
    let posted = ok(srv
        .post_form(
            "/api/v1/query_range",
            &[
                ("query", r#"up{job="api"}"#),
                ("start", &start),
                ("end", &end),
                ("step", "15s"),
            ],
        )
        .await);
    assert_eq!(posted, serde_json::from_str::<Value>(&body).unwrap());

    // Steps off the sample grid, and RFC 3339 bounds.
    let got = ok(query_range(
        &srv,
        &[
            ("query", "sum(up)"),
            ("start", "2023-11-14T22:13:20.5Z"),
            ("end", "2023-11-14T22:14:20.5Z"),
            ("step", "30s"),
        ],
    )
    .await);
    assert_eq!(
        got["data"]["result"],
        json!([{"metric": {}, "values": [[1700000000.5, "2"], [1700000030.5, "2"], [1700000060.5, "2"]]}])
    );
    // Range queries of several series come sorted by labels.
    let got = ok(query_range(
        &srv,
        &[
            ("query", "up"),
            ("start", &start),
            ("end", &end),
            ("step", "1m"),
        ],
    )
    .await);
    let instances: Vec<&str> = got["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn scalar_string_and_range_vector_results() {
    let srv = seeded().await;
    let t = format!("{T0_S}.5");
    let (_, body) = get_text(
        &srv,
        &url("/api/v1/query", &[("query", "1 + 1"), ("time", &t)]),
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"2"]}}"#
    );
    let (_, body) = get_text(
        &srv,
        &url("/api/v1/query", &[("query", r#""foo""#), ("time", &t)]),
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[1700000000.5,"foo"]}}"#
    );
    // Scalar timestamps are plain floats: no trailing zeros.
    let got = ok(query(&srv, &[("query", "time()"), ("time", "1700000000.780")]).await);
    assert_eq!(
        got["data"],
        json!({"resultType": "scalar", "result": [1700000000.78, "1700000000.78"]})
    );

    // An instant query of a range selector is a matrix of the raw samples in (t - 1m, t].
    let t = secs(T0 + 60_000);
    let (_, body) = get_text(
        &srv,
        &url(
            "/api/v1/query",
            &[("query", r#"up{job="api"}[1m]"#), ("time", &t)],
        ),
    )
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"a","job":"api"},"values":[[1700000015,"1"],[1700000030,"1"],[1700000045,"1"],[1700000060,"1"]]}]}}"#
    );

    // A range query of a scalar is a matrix with one series without labels.
    let got = ok(query_range(
        &srv,
        &[
            ("query", "2 * 3"),
            ("start", &secs(T0)),
            ("end", &secs(T0 + 30_000)),
            ("step", "15s"),
        ],
    )
    .await);
    assert_eq!(
        got["data"],
        json!({"resultType": "matrix", "result": [{"metric": {}, "values": [
            [1700000000, "6"], [1700000015, "6"], [1700000030, "6"]]}]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn special_values_are_formatted_like_go() {
    let srv = seeded().await;
    let t = secs(LAST);
    let value = |q: &'static str| {
        let srv = &srv;
        let t = t.clone();
        async move {
            let got = ok(query(srv, &[("query", q), ("time", &t)]).await);
            match got["data"]["resultType"].as_str().unwrap() {
                "scalar" => got["data"]["result"][1].clone(),
                _ => got["data"]["result"][0]["value"][1].clone(),
            }
        }
    };
    assert_eq!(value(r#"up{job="api"} / 0"#).await, "+Inf");
    assert_eq!(value(r#"-up{job="api"} / 0"#).await, "-Inf");
    assert_eq!(value(r#"up{job="db"} / 0"#).await, "NaN");
    assert_eq!(value("0 / 0").await, "NaN");
    assert_eq!(value("1 / 0").await, "+Inf");
    assert_eq!(value("-1 / 0").await, "-Inf");
    assert_eq!(value("some_gauge / 3").await, "13.333333333333334");
    // Vector values switch to an exponent below 1e-6 and from 1e21; scalars never do.
    assert_eq!(value("tiny").await, "1e-07");
    assert_eq!(value("huge").await, "1.5e+21");
    assert_eq!(value("scalar(tiny)").await, "0.0000001");
    assert_eq!(value("scalar(huge)").await, "1500000000000000000000");
    // The same in a matrix.
    let got = ok(query_range(
        &srv,
        &[
            ("query", "tiny / 0 - tiny / 0"),
            ("start", &secs(T0)),
            ("end", &secs(T0)),
            ("step", "1"),
        ],
    )
    .await);
    assert_eq!(
        got["data"]["result"][0]["values"],
        json!([[1700000000, "NaN"]])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn time_as_rfc3339_float_or_now() {
    let srv = seeded().await;
    let q = r#"up{job="api"}"#;
    let float = ok(query(&srv, &[("query", q), ("time", "1700000600.781")]).await);
    for t in [
        "2023-11-14T22:23:20.781Z",
        "2023-11-14T23:23:20.781+01:00",
        "1700000600.7814",
    ] {
        assert_eq!(
            ok(query(&srv, &[("query", q), ("time", t)]).await),
            float,
            "{t}"
        );
    }
    assert_eq!(
        float["data"]["result"][0]["value"],
        json!([1700000600.781, "1"])
    );
    err(
        query(&srv, &[("query", q), ("time", "yesterday")]).await,
        400,
        "bad_data",
        r#"invalid parameter "time": invalid time value for 'time': cannot parse "yesterday" to a valid timestamp"#,
    );

    // Without `time`, the query runs now.
    let now_srv = TestServer::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let req = request(vec![series(
        &[("__name__", "recent")],
        &[(now - 10_000, 7.0)],
    )]);
    assert_eq!(now_srv.write_v1(&req).await.0, 204);
    let got = ok(query(&now_srv, &[("query", "recent")]).await);
    let at = got["data"]["result"][0]["value"][0].as_f64().unwrap();
    assert!(
        (at * 1000.0 - now as f64).abs() < 60_000.0,
        "evaluated at {at}, now is {now}"
    );
    assert_eq!(got["data"]["result"][0]["value"][1], "7");
    let got = ok(query(&now_srv, &[("query", "recent"), ("time", "")]).await);
    assert_eq!(got["data"]["result"][0]["value"][1], "7", "empty means now");
}

#[tokio::test(flavor = "multi_thread")]
async fn lookback_delta_parameter() {
    let srv = seeded().await;
    // Two minutes after the last sample.
    let t = secs(LAST + 120_000);
    let found = |lookback: Option<&'static str>| {
        let srv = &srv;
        let t = t.clone();
        async move {
            let mut params = vec![("query", r#"up{job="api"}"#), ("time", t.as_str())];
            if let Some(l) = lookback {
                params.push(("lookback_delta", l));
            }
            let got = ok(query(srv, &params).await);
            got["data"]["result"].as_array().unwrap().len()
        }
    };
    assert_eq!(found(None).await, 1, "default 5m");
    assert_eq!(found(Some("1m")).await, 0);
    assert_eq!(found(Some("90")).await, 0, "float seconds");
    assert_eq!(found(Some("3m")).await, 1);
    assert_eq!(found(Some("0")).await, 1, "zero means the default");
    assert_eq!(found(Some("")).await, 1);
    // Range queries take it too.
    let got = ok(query_range(
        &srv,
        &[
            ("query", r#"up{job="api"}"#),
            ("start", &secs(LAST)),
            ("end", &secs(LAST + 120_000)),
            ("step", "1m"),
            ("lookback_delta", "61s"),
        ],
    )
    .await);
    assert_eq!(
        got["data"]["result"][0]["values"],
        json!([[1700000600, "1"], [1700000660, "1"]])
    );
    err(
        query(&srv, &[("query", "up"), ("lookback_delta", "abc")]).await,
        400,
        "bad_data",
        r#"error parsing lookback delta duration: cannot parse "abc" to a valid duration"#,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limit_truncates_with_a_warning() {
    let srv = seeded().await;
    let t = secs(LAST);
    let got = ok(query(&srv, &[("query", "up"), ("time", &t), ("limit", "2")]).await);
    assert_eq!(got["data"]["result"].as_array().unwrap().len(), 2);
    assert_eq!(got["warnings"], json!(["results truncated due to limit"]));
    for limit in ["3", "0", ""] {
        let got = ok(query(&srv, &[("query", "up"), ("time", &t), ("limit", limit)]).await);
        assert_eq!(got["data"]["result"].as_array().unwrap().len(), 3);
        assert!(got.get("warnings").is_none(), "limit {limit:?}: {got}");
    }
    let range = |limit: &'static str| {
        let srv = &srv;
        async move {
            ok(query_range(
                srv,
                &[
                    ("query", "up"),
                    ("start", &secs(T0)),
                    ("end", &secs(LAST)),
                    ("step", "1m"),
                    ("limit", limit),
                ],
            )
            .await)
        }
    };
    let got = range("1").await;
    assert_eq!(got["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(got["data"]["result"][0]["metric"]["instance"], "a");
    assert_eq!(got["warnings"], json!(["results truncated due to limit"]));
    assert!(range("3").await.get("warnings").is_none());
    // Scalars are never truncated.
    let got = ok(query(&srv, &[("query", "1"), ("limit", "1")]).await);
    assert!(got.get("warnings").is_none());
    err(
        query(&srv, &[("query", "up"), ("limit", "-1")]).await,
        400,
        "bad_data",
        r#"invalid parameter "limit": limit must be non-negative"#,
    );
    err(
        query_range(&srv, &[("query", "up"), ("limit", "x")]).await,
        400,
        "bad_data",
        r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_errors_are_bad_data_or_execution() {
    let srv = seeded().await;
    let t = secs(LAST);
    let no_expr =
        r#"invalid parameter "query": unknown position: parse error: no expression found in input"#;
    err(srv.get("/api/v1/query").await, 400, "bad_data", no_expr);
    err(
        query(&srv, &[("query", "  ")]).await,
        400,
        "bad_data",
        no_expr,
    );
    err(
        query_range(&srv, &[("start", "0"), ("end", "60"), ("step", "15s")]).await,
        400,
        "bad_data",
        no_expr,
    );
    let msg = err_prefix(
        query(&srv, &[("query", "sum(")]).await,
        400,
        "bad_data",
        r#"invalid parameter "query": "#,
    );
    assert!(msg.contains("parse error"), "{msg}");
    err_prefix(
        srv.post_form("/api/v1/query", &[("query", "up{")]).await,
        400,
        "bad_data",
        r#"invalid parameter "query": "#,
    );
    err_prefix(
        query_range(
            &srv,
            &[
                ("query", "rate(up)"),
                ("start", "0"),
                ("end", "60"),
                ("step", "15"),
            ],
        )
        .await,
        400,
        "bad_data",
        r#"invalid parameter "query": "#,
    );
    // Only instant vectors and scalars can be range-queried.
    err(
        query_range(
            &srv,
            &[
                ("query", r#""foo""#),
                ("start", "0"),
                ("end", "60"),
                ("step", "15"),
            ],
        )
        .await,
        400,
        "bad_data",
        r#"invalid parameter "query": invalid expression type "string" for range query, must be Scalar or instant Vector"#,
    );
    err(
        query_range(
            &srv,
            &[
                ("query", "up[5m]"),
                ("start", "0"),
                ("end", "60"),
                ("step", "15"),
            ],
        )
        .await,
        400,
        "bad_data",
        r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
    );

    // Failing on the data is `execution`, 422.
    let m2m = "m2m_a + on(job) m2m_b";
    let msg = err_prefix(
        query(&srv, &[("query", m2m), ("time", &t)]).await,
        422,
        "execution",
        "found duplicate series for the match group",
    );
    assert!(msg.contains("many-to-many matching not allowed"), "{msg}");
    err_prefix(
        query_range(
            &srv,
            &[
                ("query", m2m),
                ("start", &secs(T0)),
                ("end", &t),
                ("step", "1m"),
            ],
        )
        .await,
        422,
        "execution",
        "found duplicate series for the match group",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn range_parameters_are_checked_in_prometheus_order() {
    let srv = seeded().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("query", "up")],
            r#"invalid parameter "start": cannot parse "" to a valid timestamp"#,
        ),
        (
            &[("query", "up"), ("start", "foo"), ("end", "bar")],
            r#"invalid parameter "start": cannot parse "foo" to a valid timestamp"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "bar")],
            r#"invalid parameter "end": cannot parse "bar" to a valid timestamp"#,
        ),
        (
            &[("query", "up"), ("start", "60"), ("end", "0"), ("step", "0")],
            r#"invalid parameter "end": end timestamp must not be before start time"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "60")],
            r#"invalid parameter "step": cannot parse "" to a valid duration"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "60"), ("step", "x")],
            r#"invalid parameter "step": cannot parse "x" to a valid duration"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "60"), ("step", "-15s")],
            r#"invalid parameter "step": cannot parse "-15s" to a valid duration"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "60"), ("step", "0")],
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "60"), ("step", "-1.5")],
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            &[("query", "up"), ("start", "0"), ("end", "11001"), ("step", "1")],
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            &[
                ("query", "up"),
                ("start", "-292273086-05-16T16:47:06Z"),
                ("end", "292277025-08-18T07:12:54.999999999Z"),
                ("step", "1d"),
            ],
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "60"),
                ("step", "15"),
                ("timeout", "soon"),
            ],
            r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#,
        ),
        (
            // Parameters are checked before the query is parsed.
            &[("query", "sum("), ("start", "0"), ("end", "60"), ("step", "0")],
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
    ];
    for (params, msg) in cases {
        err(query_range(&srv, params).await, 400, "bad_data", msg);
    }
    err(
        query(&srv, &[("query", "up"), ("timeout", "1e300")]).await,
        400,
        "bad_data",
        r#"invalid parameter "timeout": cannot parse "1e300" to a valid duration. It overflows int64"#,
    );
    // 11,000 points per series are allowed.
    let got = ok(query_range(
        &srv,
        &[
            ("query", "1"),
            ("start", "0"),
            ("end", "10999"),
            ("step", "1"),
        ],
    )
    .await);
    assert_eq!(
        got["data"]["result"][0]["values"].as_array().unwrap().len(),
        11_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warnings_and_infos_come_from_the_engine() {
    let srv = seeded().await;
    let t = secs(LAST);
    let got = ok(query(&srv, &[("query", "rate(some_gauge[5m])"), ("time", &t)]).await);
    let rate: f64 = got["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((rate - 1.0 / 15.0).abs() < 1e-9, "{rate}");
    let infos = got["infos"].as_array().expect("infos");
    assert_eq!(infos.len(), 1, "{got}");
    // Annotations end with the position of the expression they are about, as in Prometheus.
    assert_eq!(
        infos[0],
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"some_gauge\" (1:6)"
    );
    assert!(got.get("warnings").is_none(), "{got}");
    let got = ok(query(
        &srv,
        &[("query", "sum(\n  rate(some_gauge[5m])\n)"), ("time", &t)],
    )
    .await);
    let info = got["infos"][0].as_str().unwrap();
    assert!(info.ends_with("\"some_gauge\" (2:8)"), "{info}");
    let got = ok(query(&srv, &[("query", "rate(up[5m])"), ("time", &t)]).await);
    assert!(
        got.get("infos").is_some(),
        "up does not end in _total either"
    );
    let got = ok(query(&srv, &[("query", "sum(up)"), ("time", &t)]).await);
    assert!(got.get("infos").is_none() && got.get("warnings").is_none());

    // Warnings go to their own array, beside the limit's.
    let got = ok(query_range(
        &srv,
        &[
            ("query", "sort(up)"),
            ("start", &secs(T0)),
            ("end", &t),
            ("step", "1m"),
            ("limit", "1"),
        ],
    )
    .await);
    let mut warnings: Vec<&str> = got["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels (1:1)",
            "results truncated due to limit",
        ]
    );
}

/// `n` series `heavy{i="<k>"}` with a sample every 15 s for an hour from T0.
async fn load_heavy(srv: &TestServer, n: usize) {
    let samples: Vec<(i64, f64)> = (0..=240).map(|i| (T0 + i * 15_000, i as f64)).collect();
    let names: Vec<String> = (0..n).map(|k| k.to_string()).collect();
    for chunk in names.chunks(250) {
        let req = request(
            chunk
                .iter()
                .map(|k| series(&[("__name__", "heavy"), ("i", k)], &samples))
                .collect(),
        );
        assert_eq!(srv.write_v1(&req).await.0, 204);
    }
}

/// The value of an unlabelled sample line in `/metrics`, 0 when absent.
fn metric_value(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Starts a range query over `heavy` (see [`load_heavy`]) that runs for seconds (about 6 s
/// for 3000 series on a 2-core VM) and returns once the server is evaluating it.
async fn start_slow_query(
    srv: &TestServer,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let slow = srv.url(&url(
        "/api/v1/query_range",
        &[
            (
                "query",
                "quantile_over_time(0.5, heavy[1h]) + quantile_over_time(0.5, heavy[1h])",
            ),
            ("start", &secs(T0)),
            ("end", &secs(T0 + 3_600_000)),
            ("step", "1s"),
        ],
    ));
    let client = srv.client.clone();
    let request = tokio::spawn(async move { client.get(slow).send().await });
    let waited = Instant::now();
    while metric_value(&srv.metrics().await, "augur_engine_queries") < 1.0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30) && !request.is_finished(),
            "the query never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_queries_time_out_or_stop_when_the_client_leaves() {
    let srv = TestServer::start().await;
    load_heavy(&srv, 3000).await;
    let (start, end) = (secs(T0), secs(T0 + 3_600_000));

    // A deadline already passed: the engine stops at its first check.
    for timeout in ["0", "0s", "-1"] {
        let msg = err_prefix(
            query(
                &srv,
                &[
                    ("query", "count(heavy)"),
                    ("time", &end),
                    ("timeout", timeout),
                ],
            )
            .await,
            503,
            "timeout",
            "query timed out in ",
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
    // 1 ms for a query that reads 3000 × 241 samples on each side of the `+`: the check when
    // the right-hand side starts finds the deadline passed.
    let heavy = "sum(rate(heavy[5m])) + sum(rate(heavy[5m]))";
    for timeout in ["1ms", "0.001", "0.000001"] {
        err_prefix(
            query_range(
                &srv,
                &[
                    ("query", heavy),
                    ("start", &start),
                    ("end", &end),
                    ("step", "15s"),
                    ("timeout", timeout),
                ],
            )
            .await,
            503,
            "timeout",
            "query timed out in ",
        );
    }
    // The same query finishes with the default timeout.
    let got = ok(query_range(
        &srv,
        &[
            ("query", heavy),
            ("start", &start),
            ("end", &end),
            ("step", "15s"),
        ],
    )
    .await);
    let v: f64 = got["data"]["result"][0]["values"][20][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((v - 400.0).abs() < 1e-6, "{v}");

    // A client that gives up once its query is running: the request future is dropped, and
    // the query is cancelled long before its evaluation would end.
    let request = start_slow_query(&srv).await;
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    let left = Instant::now();
    let (canceled, succeeded) = loop {
        let m = srv.metrics().await;
        let canceled = metric_value(
            &m,
            r#"augur_engine_query_outcomes_total{outcome="canceled"}"#,
        );
        let succeeded = metric_value(
            &m,
            r#"augur_engine_query_outcomes_total{outcome="success"}"#,
        );
        if canceled + succeeded > 1.0 || left.elapsed() > Duration::from_secs(120) {
            break (canceled, succeeded);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (canceled, succeeded),
        (1.0, 1.0),
        "the abandoned query was cancelled, not run to the end"
    );
    let m = srv.metrics().await;
    assert_eq!(metric_value(&m, "augur_engine_queries"), 0.0, "{m}");
    assert_eq!(
        metric_value(
            &m,
            r#"augur_engine_query_outcomes_total{outcome="timeout"}"#
        ),
        6.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_query_slot_counts_against_the_timeout() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(config_path(dir.path()), CONFIG).unwrap();
    let srv = TestServer::start_in(dir, &["--query.max-concurrency=1"]).await;
    load_heavy(&srv, 3000).await;
    let slow = start_slow_query(&srv).await;
    // The only slot is taken: this query waits, and its 200 ms run out in the queue. Prometheus
    // reports the bare context error there, as `execution`.
    err(
        query(&srv, &[("query", "1"), ("timeout", "200ms")]).await,
        422,
        "execution",
        "context deadline exceeded",
    );
    slow.abort();
    // Once the abandoned query is cancelled, the slot is free again.
    let waited = Instant::now();
    loop {
        let (status, _) = query(&srv, &[("query", "1"), ("timeout", "1s")]).await;
        if status == 200 {
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(30), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_keeps_serving_after_errors() {
    let srv = seeded().await;
    let t = secs(LAST);
    for _ in 0..3 {
        assert_eq!(query(&srv, &[("query", "sum(")]).await.0, 400);
        assert_eq!(
            query(&srv, &[("query", "m2m_a + on(job) m2m_b"), ("time", &t)])
                .await
                .0,
            422
        );
        assert_eq!(
            query(&srv, &[("query", "up"), ("timeout", "0")]).await.0,
            503
        );
        assert_eq!(query_range(&srv, &[("query", "up")]).await.0, 400);
        let deep = format!("{}up{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            srv.post_form("/api/v1/query", &[("query", &deep)]).await.0,
            400,
            "a query nested too deep is refused, not a stack overflow"
        );
        let long = ["1"; 6000].join("+");
        err(
            srv.post_form("/api/v1/query", &[("query", &long)]).await,
            400,
            "bad_data",
            r#"invalid parameter "query": parse error: expression has 5999 operators; at most 5000 are allowed"#,
        );
    }
    // The longest chain allowed is 5,000 levels deep for the engine, and evaluates.
    let long = ["up"; 5001].join(" + on(job, instance) ");
    let got = ok(srv
        .post_form("/api/v1/query", &[("query", &long), ("time", &t)])
        .await);
    let mut values: Vec<&str> = got["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"][1].as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["0", "5001", "5001"]);
    // More queries at once than --query.max-concurrency (20): they queue and all succeed.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let client = srv.client.clone();
        let u = srv.url(&url("/api/v1/query", &[("query", "sum(up)"), ("time", &t)]));
        set.spawn(async move { client.get(u).send().await.unwrap().status().as_u16() });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let got = ok(query(&srv, &[("query", "sum(up)"), ("time", &t)]).await);
    assert_eq!(got["data"]["result"][0]["value"][1], "2");
    let (status, _) = get_text(&srv, "/-/healthy").await;
    assert_eq!(status, 200);
    let m = srv.metrics().await;
    assert!(
        m.contains(r#"augur_http_requests_total{handler="/api/v1/query",code="422"} 3"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_flags_configure_the_engine() {
    let srv = TestServer::start().await;
    let flags = ok(srv.get("/api/v1/status/flags").await);
    assert_eq!(flags["data"]["query.timeout"], "2m");
    assert_eq!(flags["data"]["query.lookback-delta"], "5m");
    assert_eq!(flags["data"]["query.max-samples"], "50000000");
    assert_eq!(flags["data"]["query.max-concurrency"], "20");
    assert!(srv
        .metrics()
        .await
        .contains("augur_engine_queries_concurrent_max 20"));
    let dir = srv.stop().await;

    let srv = TestServer::start_in(
        dir,
        &[
            "--query.lookback-delta=1m",
            "--query.max-samples=5",
            "--query.timeout=30s",
            "--query.max-concurrency=2",
        ],
    )
    .await;
    let flags = ok(srv.get("/api/v1/status/flags").await);
    assert_eq!(flags["data"]["query.timeout"], "30s");
    assert_eq!(flags["data"]["query.lookback-delta"], "1m");
    assert_eq!(flags["data"]["query.max-samples"], "5");
    assert_eq!(flags["data"]["query.max-concurrency"], "2");
    let req = request(vec![series(&[("__name__", "x")], &every_15s(|i| i as f64))]);
    assert_eq!(srv.write_v1(&req).await.0, 204);
    let t = secs(LAST + 120_000);
    let got = ok(query(&srv, &[("query", "x"), ("time", &t)]).await);
    assert_eq!(got["data"]["result"], json!([]), "lookback 1m");
    let got = ok(query(
        &srv,
        &[("query", "x"), ("time", &t), ("lookback_delta", "3m")],
    )
    .await);
    assert_eq!(
        got["data"]["result"][0]["value"][1], "40",
        "the parameter wins"
    );
    err(
        query(&srv, &[("query", "x[10m]"), ("time", &secs(LAST))]).await,
        422,
        "execution",
        "query processing would load too many samples into memory in query execution",
    );
}

/// Matcher and `label_replace` regexes read a `{` that opens no repetition as a literal, as
/// Go's RE2 does: Prometheus answers these queries, so must we (they were 500s).
#[tokio::test]
async fn regex_braces_follow_re2() {
    let srv = TestServer::start().await;
    let req = request(vec![
        series(
            &[("__name__", "brace"), ("re", "a{2,")],
            &every_15s(|_| 1.0),
        ),
        series(&[("__name__", "brace"), ("re", "aa")], &every_15s(|_| 2.0)),
    ]);
    assert_eq!(srv.write_v1(&req).await.0, 204);
    let t = secs(LAST);
    let data = ok(query(&srv, &[("query", r#"brace{re=~"a{2,"}"#), ("time", &t)]).await);
    assert_eq!(
        data["data"]["result"],
        json!([{"metric": {"__name__": "brace", "re": "a{2,"}, "value": [T0_S + 600, "1"]}])
    );
    let data = ok(query(&srv, &[("query", r#"brace{re=~"a{2}"}"#), ("time", &t)]).await);
    assert_eq!(data["data"]["result"][0]["metric"]["re"], "aa");
    let data = ok(query(
        &srv,
        &[
            (
                "query",
                r#"label_replace(brace, "x", "$1", "re", "(a{2,)")"#,
            ),
            ("time", &t),
        ],
    )
    .await);
    let xs: Vec<&Value> = data["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["metric"]["x"])
        .collect();
    assert!(xs.contains(&&json!("a{2,")), "{data}");
    let (status, body) = srv
        .get(&url(
            "/api/v1/series",
            &[("match[]", r#"brace{re=~"a{,3}"}"#)],
        ))
        .await;
    assert_eq!((status, &body["data"]), (200, &json!([])), "{body}");
}
