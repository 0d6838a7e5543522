//! UTF-8 metric and label names (Prometheus 3's default) end to end over real HTTP: remote
//! write 1.0 and 2.0, storage across a restart, PromQL's quoted-name syntax, the label-values
//! path with `U__` escaping, and the `legacy` validation scheme that refuses them.

mod common;

use augur_api::proto::v2;
use common::*;
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000_000;

/// `GET /api/v1/query` at `T0 + 60 s` for `q`.
async fn query(srv: &TestServer, q: &str) -> (u16, Value) {
    let qs: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", q)
        .append_pair("time", &((T0 + 60_000) / 1000).to_string())
        .finish();
    srv.get(&format!("/api/v1/query?{qs}")).await
}

/// The `result` of a successful query as `(metric, value)` pairs, sorted.
fn vector(body: &Value) -> Vec<(Value, String)> {
    assert_eq!(body["status"], "success", "{body}");
    let mut out: Vec<(Value, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort_by_key(|(m, _)| m.to_string());
    out
}

fn v2_request(symbols: &[&str], series: Vec<(Vec<u32>, f64)>) -> v2::Request {
    v2::Request {
        symbols: symbols
            .iter()
            .map(|s| prost::bytes::Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
        timeseries: series
            .into_iter()
            .map(|(labels_refs, value)| v2::TimeSeries {
                labels_refs,
                samples: vec![v2::Sample {
                    value,
                    timestamp: T0,
                    start_timestamp: 0,
                }],
                ..Default::default()
            })
            .collect(),
    }
}

async fn write_dotted(srv: &TestServer) {
    let (status, body) = srv
        .write_v1(&request(vec![
            series(
                &[
                    ("__name__", "http.server.duration"),
                    ("service.name", "api"),
                    ("http.route", "/users/{id}"),
                ],
                &[(T0, 1.5)],
            ),
            series(
                &[
                    ("__name__", "http.server.duration"),
                    ("service.name", "web"),
                    ("http.route", "/"),
                ],
                &[(T0, 2.5)],
            ),
        ]))
        .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let req = v2_request(
        &[
            "",
            "__name__",
            "process.cpu.time",
            "service.name",
            "api",
            "ünï",
            "✓",
        ],
        vec![(vec![1, 2, 3, 4, 5, 6], 7.0)],
    );
    let (status, _, body) = srv.write_v2(&req).await;
    assert_eq!((status, body.as_str()), (204, ""));
}

async fn check_dotted_queries(srv: &TestServer) {
    let (_, body) = query(srv, r#"{"http.server.duration", "service.name"="api"}"#).await;
    assert_eq!(
        vector(&body),
        [(
            json!({"__name__": "http.server.duration", "service.name": "api", "http.route": "/users/{id}"}),
            "1.5".to_owned()
        )]
    );
    let (_, body) = query(srv, r#"sum by ("service.name") ({"http.server.duration"})"#).await;
    assert_eq!(
        vector(&body),
        [
            (json!({"service.name": "api"}), "1.5".to_owned()),
            (json!({"service.name": "web"}), "2.5".to_owned()),
        ]
    );
    let (_, body) = query(srv, r#"{__name__="process.cpu.time", "ünï"="✓"} * 2"#).await;
    assert_eq!(
        vector(&body),
        [(json!({"service.name": "api", "ünï": "✓"}), "14".to_owned())]
    );
    // Functions that name a label take any UTF-8 name, as in Prometheus 3.
    let (_, body) = query(
        srv,
        r#"label_replace({"http.server.duration", "service.name"="web"}, "svc.copy", "$1", "service.name", "(.*)")"#,
    )
    .await;
    assert_eq!(vector(&body)[0].0["svc.copy"], "web", "{body}");
    let (_, body) = query(srv, r#"count_values("value.text", {"process.cpu.time"})"#).await;
    assert_eq!(
        vector(&body),
        [(json!({"value.text": "7"}), "1".to_owned())]
    );

    // Label names and values over the API, with Prometheus 3's `U__` escaping in the path.
    let window = format!("start={}&end={}", T0 / 1000 - 60, T0 / 1000 + 60);
    let (status, body) = srv
        .get(&format!("/api/v1/label/U__service_2e_name/values?{window}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!(["api", "web"]));
    let (_, body) = srv
        .get(&format!("/api/v1/label/U___fc_n_ef_/values?{window}"))
        .await;
    assert_eq!(body["data"], json!(["✓"]));
    let (_, body) = srv.get(&format!("/api/v1/labels?{window}")).await;
    let names = body["data"].as_array().unwrap();
    for want in ["service.name", "http.route", "ünï"] {
        assert!(names.contains(&json!(want)), "{want} missing from {body}");
    }
    let (_, body) = srv
        .get(&format!(
            "/api/v1/series?match[]=%7B%22http.server.duration%22%7D&{window}"
        ))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dotted_names_are_written_queried_and_survive_a_restart() {
    let srv = TestServer::start().await;
    write_dotted(&srv).await;
    check_dotted_queries(&srv).await;
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &[]).await;
    check_dotted_queries(&srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_scheme_refuses_dotted_names_and_keeps_the_rest() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config_path(dir.path()),
        "global:\n  metric_name_validation_scheme: legacy\n",
    )
    .unwrap();
    let srv = TestServer::start_in(dir, &[]).await;
    let (status, body) = srv
        .write_v1(&request(vec![
            series(
                &[("__name__", "http.server.duration"), ("job", "a")],
                &[(T0, 1.0)],
            ),
            series(
                &[("__name__", "ok_metric"), ("service.name", "a")],
                &[(T0, 1.0)],
            ),
            series(&[("__name__", "ok:metric"), ("job", "a")], &[(T0, 3.0)]),
        ]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with(
            r#"invalid labels for series {"http.server.duration", job="a"}: invalid metric name "http.server.duration": the legacy scheme allows [a-zA-Z_:][a-zA-Z0-9_:]*"#
        ),
        "{body}"
    );
    assert!(body.contains("2 invalid_labels"), "{body}");
    let (_, q) = query(&srv, "ok:metric").await;
    assert_eq!(
        vector(&q).len(),
        1,
        "the valid series of the request is kept"
    );
    let (_, q) = query(&srv, "ok_metric").await;
    assert_eq!(vector(&q).len(), 0, "{q}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_validation_scheme_stops_start_up_with_the_field() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = config_path(dir.path());
    std::fs::write(&path, "global:\n  metric_name_validation_scheme: strict\n").unwrap();
    let err = augur_api::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            r#"global.metric_name_validation_scheme: unrecognized ValidationScheme: "strict""#
        ),
        "{err}"
    );
}
