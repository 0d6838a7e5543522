//! Prometheus's metadata and status API over real HTTP, in its exact JSON shapes.

mod common;

use common::*;
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000_000;

async fn seeded() -> TestServer {
    let srv = TestServer::start().await;
    let req = request(vec![
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "a:1")],
            &[(T0, 1.0)],
        ),
        series(
            &[("__name__", "up"), ("job", "db"), ("instance", "b:1")],
            &[(T0, 1.0)],
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "200"),
            ],
            &[(T0, 10.0)],
        ),
        series(
            &[("__name__", "late"), ("status_code", "418")],
            &[(T0 + 3_600_000, 1.0)],
        ),
    ]);
    assert_eq!(srv.write_v1(&req).await.0, 204);
    srv
}

fn ok(resp: (u16, Value)) -> Value {
    assert_eq!(resp.0, 200, "{}", resp.1);
    assert_eq!(resp.1["status"], "success", "{}", resp.1);
    resp.1["data"].clone()
}

fn err(resp: (u16, Value), status: u16, kind: &str, msg: &str) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["status"], "error");
    assert_eq!(resp.1["errorType"], kind);
    assert_eq!(resp.1["error"], msg);
}

#[tokio::test(flavor = "multi_thread")]
async fn series_labels_and_values() {
    let srv = seeded().await;
    let data = ok(srv.get("/api/v1/series?match[]=up").await);
    assert_eq!(
        data,
        json!([
            {"__name__": "up", "instance": "a:1", "job": "api"},
            {"__name__": "up", "instance": "b:1", "job": "db"},
        ])
    );
    // Several match[] are a union; POST forms work the same.
    let data = ok(srv
        .post_form(
            "/api/v1/series",
            &[
                ("match[]", r#"up{job="db"}"#),
                ("match[]", "http_requests_total"),
            ],
        )
        .await);
    assert_eq!(data.as_array().unwrap().len(), 2);
    // Time range: `late` is an hour after the rest.
    let data = ok(srv
        .get(&format!(
            "/api/v1/series?match[]={{__name__=~\".%2B\"}}&start={}&end={}",
            T0 / 1000 - 60,
            T0 / 1000 + 60
        ))
        .await);
    assert_eq!(data.as_array().unwrap().len(), 3);

    assert_eq!(
        ok(srv.get("/api/v1/labels").await),
        json!(["__name__", "code", "instance", "job", "status_code"])
    );
    assert_eq!(
        ok(srv.get("/api/v1/labels?match[]=up").await),
        json!(["__name__", "instance", "job"])
    );
    assert_eq!(
        ok(srv.get("/api/v1/label/job/values").await),
        json!(["api", "db"])
    );
    assert_eq!(
        ok(srv
            .get("/api/v1/label/__name__/values?match[]={job=\"api\"}")
            .await),
        json!(["http_requests_total", "up"])
    );
    // `U__` escaping in the path (`_6f_` is "o", `__` is "_").
    assert_eq!(
        ok(srv.get("/api/v1/label/U__status__c_6f_de/values").await),
        json!(["418"])
    );
    assert_eq!(ok(srv.get("/api/v1/label/nope/values").await), json!([]));
    let (status, body) = srv.get("/api/v1/label/%FF/values").await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid label name"),
        "{body}"
    );

    let (status, body) = srv.get("/api/v1/label/job/values?limit=1").await;
    assert_eq!(
        (status, body["data"].clone(), body["warnings"].clone()),
        (
            200,
            json!(["api"]),
            json!(["results truncated due to limit"])
        )
    );
    let (_, body) = srv.get("/api/v1/label/job/values?limit=2").await;
    assert!(
        body.get("warnings").is_none(),
        "exactly at the limit: no warning"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_bad_data_naming_the_parameter() {
    let srv = seeded().await;
    err(
        srv.get("/api/v1/series").await,
        400,
        "bad_data",
        "no match[] parameter provided",
    );
    err(
        srv.get("/api/v1/series?match[]=up&start=foo").await,
        400,
        "bad_data",
        r#"invalid parameter "start": invalid time value for 'start': cannot parse "foo" to a valid timestamp"#,
    );
    err(
        srv.get("/api/v1/labels?end=2023-13-45").await,
        400,
        "bad_data",
        r#"invalid parameter "end": invalid time value for 'end': cannot parse "2023-13-45" to a valid timestamp"#,
    );
    err(
        srv.get("/api/v1/series?match[]=up&limit=-1").await,
        400,
        "bad_data",
        r#"invalid parameter "limit": limit must be non-negative"#,
    );
    err(
        srv.get("/api/v1/series?match[]=up&limit=x").await,
        400,
        "bad_data",
        r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#,
    );
    let (status, body) = srv.get("/api/v1/series?match[]=up{").await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data"))
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"invalid parameter "match[]": parse error"#),
        "{body}"
    );
    let (status, body) = srv.get(r#"/api/v1/labels?match[]={job=""}"#).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at least one non-empty matcher"),
        "{body}"
    );
    // RFC 3339 and float seconds are both accepted.
    ok(srv
        .get("/api/v1/labels?start=2023-11-14T22:00:00Z&end=1700003600.5")
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_endpoint_limits() {
    let srv = TestServer::start().await;
    let mut req = request(vec![series(&[("__name__", "a_total")], &[(T0, 1.0)])]);
    for (name, help) in [
        ("a_total", "A."),
        ("a_total", "A again."),
        ("b", "B."),
        ("c", "C."),
    ] {
        req.metadata.push(augur_api::proto::v1::MetricMetadata {
            r#type: 1,
            metric_family_name: name.into(),
            help: help.into(),
            unit: String::new(),
        });
    }
    assert_eq!(srv.write_v1(&req).await.0, 204);
    let all = ok(srv.get("/api/v1/metadata").await);
    assert_eq!(all.as_object().unwrap().len(), 3);
    assert_eq!(
        all["b"],
        json!([{"type": "counter", "unit": "", "help": "B."}])
    );
    assert_eq!(
        ok(srv.get("/api/v1/metadata?limit=2").await)
            .as_object()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(ok(srv.get("/api/v1/metadata?limit=0").await), json!({}));
    assert_eq!(
        ok(srv
            .get("/api/v1/metadata?metric=a_total&limit_per_metric=1")
            .await)["a_total"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    err(
        srv.get("/api/v1/metadata?limit=x").await,
        400,
        "bad_data",
        "limit must be a number",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_endpoints_have_prometheus_shapes() {
    let srv = seeded().await;
    let b = ok(srv.get("/api/v1/status/buildinfo").await);
    for k in [
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    ] {
        assert!(b[k].is_string(), "buildinfo.{k}");
    }
    let cfg = ok(srv.get("/api/v1/status/config").await);
    assert!(
        cfg["yaml"]
            .as_str()
            .unwrap()
            .contains("evaluation_interval: 30s"),
        "{cfg}"
    );
    let flags = ok(srv.get("/api/v1/status/flags").await);
    assert_eq!(flags["storage.tsdb.retention.time"], "15d");
    assert_eq!(flags["query.lookback-delta"], "5m");
    let rt = ok(srv.get("/api/v1/status/runtimeinfo").await);
    for k in [
        "startTime",
        "CWD",
        "hostname",
        "serverTime",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "storageRetention",
    ] {
        assert!(rt.get(k).is_some(), "runtimeinfo.{k}");
    }
    let tsdb = ok(srv.get("/api/v1/status/tsdb?limit=2").await);
    assert_eq!(tsdb["headStats"]["numSeries"], 4);
    assert_eq!(tsdb["headStats"]["minTime"], T0);
    assert_eq!(
        tsdb["seriesCountByMetricName"],
        json!([{"name": "up", "value": 2}, {"name": "http_requests_total", "value": 1}])
    );
    assert_eq!(
        tsdb["labelValueCountByLabelName"][0],
        json!({"name": "__name__", "value": 3})
    );
    err(
        srv.get("/api/v1/status/tsdb?limit=0").await,
        400,
        "bad_data",
        "limit must be a positive number",
    );
    assert_eq!(
        ok(srv.get("/api/v1/targets").await),
        json!({"activeTargets": [], "droppedTargets": [], "droppedTargetCounts": {}})
    );
    assert_eq!(
        ok(srv
            .get("/api/v1/query_exemplars?query=up&start=1&end=2")
            .await),
        json!([])
    );
    let (status, _) = srv.get("/api/v1/query_exemplars?query=1%2B1").await;
    assert_eq!(status, 204, "no selector: no content, as in Prometheus");
    let (status, body) = srv.get("/api/v1/query_exemplars?query=up{").await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_reload_and_metrics() {
    let srv = seeded().await;
    let text = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    assert_eq!(
        text(srv.client.get(srv.url("/-/healthy")).send().await.unwrap()).await,
        (200, "Augur Server is Healthy.\n".into())
    );
    assert_eq!(
        text(srv.client.get(srv.url("/-/ready")).send().await.unwrap()).await,
        (200, "Augur Server is Ready.\n".into())
    );

    // A good reload takes effect.
    let cfg = config_path(srv.dir.path());
    std::fs::write(&cfg, "global:\n  evaluation_interval: 10s\n").unwrap();
    let (status, _) = text(srv.client.post(srv.url("/-/reload")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(ok(srv.get("/api/v1/status/config").await)["yaml"]
        .as_str()
        .unwrap()
        .contains("evaluation_interval: 10s"));

    // A broken one is reported with its line, and the running config stays.
    std::fs::write(
        &cfg,
        "global:\n  evaluation_interval: 10s\n  bogus_key: 1\n",
    )
    .unwrap();
    let (status, body) = text(srv.client.post(srv.url("/-/reload")).send().await.unwrap()).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("unknown field `bogus_key`") && body.contains("line 3"),
        "{body}"
    );
    assert!(ok(srv.get("/api/v1/status/config").await)["yaml"]
        .as_str()
        .unwrap()
        .contains("evaluation_interval: 10s"));
    assert_eq!(
        ok(srv.get("/api/v1/status/runtimeinfo").await)["reloadConfigSuccess"],
        false
    );

    let (status, metrics) = text(srv.client.get(srv.url("/metrics")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    for want in [
        "augur_config_last_reload_successful 0",
        "augur_tsdb_head_series 4",
        "augur_tsdb_samples_appended_total 4",
        "augur_tsdb_out_of_bounds_samples_total 0",
        r#"augur_http_request_duration_seconds_count{handler="/api/v1/status/config"} 2"#,
        r#"augur_remote_write_requests_total{handler="v1",code="204"} 1"#,
        r#"augur_tsdb_storage_bytes{cf="chunks"}"#,
        "augur_tsdb_wal_bytes ",
        r#"augur_tsdb_rocksdb_memory_bytes{kind="memtables"}"#,
        r#"augur_tsdb_rocksdb_memory_bytes{kind="block_cache"}"#,
    ] {
        assert!(
            metrics.contains(want),
            "/metrics lacks {want:?}:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_stops_startup_with_the_line() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config_path(dir.path()),
        "global:\n  scrape_interval: 15s\nrule_filez: []\n",
    )
    .unwrap();
    let argv = [
        "augur".to_string(),
        "--web.listen-address=127.0.0.1:0".into(),
        format!("--config.file={}", config_path(dir.path()).display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
    ];
    #[derive(clap::Parser)]
    struct W {
        #[command(flatten)]
        a: augur_api::ServeArgs,
    }
    let args = <W as clap::Parser>::parse_from(argv).a;
    let err = augur_api::Server::start(args)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field `rule_filez`") && err.contains("line 3"),
        "{err}"
    );
}

/// `POST /api/v1/admin/tsdb/snapshot`: off without `--web.enable-admin-api` (Prometheus's
/// answer); with it, a copy under `<data>/snapshots/<name>` that a new server opens with
/// every sample acknowledged before the snapshot and none written after it.
#[tokio::test]
async fn snapshot_admin_api() {
    let srv = seeded().await;
    err(
        srv.post_form("/api/v1/admin/tsdb/snapshot", &[]).await,
        503,
        "unavailable",
        "admin APIs disabled",
    );
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &["--web.enable-admin-api"]).await;
    err(
        srv.post_form("/api/v1/admin/tsdb/snapshot", &[("skip_head", "maybe")])
            .await,
        400,
        "bad_data",
        r#"invalid parameter "skip_head": unable to parse boolean 'skip_head' argument: strconv.ParseBool: parsing "maybe": invalid syntax"#,
    );
    let name = ok(srv
        .post_form("/api/v1/admin/tsdb/snapshot", &[("skip_head", "false")])
        .await)["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = regex::Regex::new(r"^\d{8}T\d{6}Z-[0-9a-f]{16}$").unwrap();
    assert!(re.is_match(&name), "{name}");
    // Written after the snapshot: not in it.
    let after = request(vec![series(&[("__name__", "after")], &[(T0, 1.0)])]);
    assert_eq!(srv.write_v1(&after).await.0, 204);
    let snap = srv.dir.path().join("data/snapshots").join(&name);
    assert!(snap.is_dir(), "{}", snap.display());

    // A server on a copy of the snapshot has the seeded series.
    let copy = tempfile::TempDir::new().unwrap();
    std::fs::write(config_path(copy.path()), CONFIG).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&snap)
        .arg(copy.path().join("data"))
        .status()
        .unwrap();
    assert!(status.success());
    let restored = TestServer::start_in(copy, &[]).await;
    let names = ok(restored.get("/api/v1/label/__name__/values").await);
    assert_eq!(names, json!(["http_requests_total", "late", "up"]));
    let _ = srv.stop().await;
}

/// `POST /api/v1/admin/tsdb/delete_series` and `clean_tombstones`: off without
/// `--web.enable-admin-api`; with it, Prometheus's errors, 204 answers, matching samples gone
/// from queries, series and label values at once, a range outside the samples deleting
/// nothing, and the deletion still there after a restart.
#[tokio::test(flavor = "multi_thread")]
async fn delete_series_admin_api() {
    let srv = seeded().await;
    for path in [
        "/api/v1/admin/tsdb/delete_series",
        "/api/v1/admin/tsdb/clean_tombstones",
    ] {
        err(
            srv.post_form(path, &[("match[]", "up")]).await,
            503,
            "unavailable",
            "admin APIs disabled",
        );
    }
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &["--web.enable-admin-api"]).await;
    const DELETE: &str = "/api/v1/admin/tsdb/delete_series";
    err(
        srv.post_form(DELETE, &[]).await,
        400,
        "bad_data",
        "no match[] parameter provided",
    );
    err(
        srv.post_form(DELETE, &[("match[]", "up"), ("start", "yesterday")])
            .await,
        400,
        "bad_data",
        r#"invalid parameter "start": invalid time value for 'start': cannot parse "yesterday" to a valid timestamp"#,
    );
    let (status, body) = srv.post_form(DELETE, &[("match[]", "up{")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"invalid parameter "match[]": "#),
        "{body}"
    );

    // All of up{job="api"}, by PUT with a form body (Go's ParseForm reads PUT bodies too).
    let resp = srv
        .client
        .put(srv.url(DELETE))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("match%5B%5D=up%7Bjob%3D%22api%22%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().await.unwrap()
    );
    assert_eq!(
        ok(srv.get("/api/v1/series?match[]=up").await),
        json!([{"__name__": "up", "job": "db", "instance": "b:1"}])
    );
    let t = (T0 / 1000).to_string();
    let q = ok(srv.get(&format!("/api/v1/query?query=up&time={t}")).await);
    assert_eq!(q["result"].as_array().unwrap().len(), 1, "{q}");
    assert_eq!(
        ok(srv.get("/api/v1/label/instance/values").await),
        json!(["b:1"])
    );

    // A range that misses the sample deletes nothing; one that holds it, everything.
    let before = ((T0 - 60_000) / 1000).to_string();
    let (status, _) = srv
        .post_form(
            DELETE,
            &[("match[]", "http_requests_total"), ("end", &before)],
        )
        .await;
    assert_eq!(status, 204);
    let q = ok(srv
        .get(&format!("/api/v1/query?query=http_requests_total&time={t}"))
        .await);
    assert_eq!(q["result"].as_array().unwrap().len(), 1, "{q}");
    let (status, _) = srv
        .post_form(
            DELETE,
            &[
                ("match[]", "http_requests_total"),
                ("match[]", "late"),
                ("start", &before),
                ("end", &t),
            ],
        )
        .await;
    assert_eq!(status, 204);
    let names = ok(srv.get("/api/v1/label/__name__/values").await);
    // `late` is an hour after the range: kept.
    assert_eq!(names, json!(["late", "up"]));
    let (status, body) = srv
        .post_form("/api/v1/admin/tsdb/clean_tombstones", &[])
        .await;
    assert_eq!((status, body), (204, json!("")));

    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, &[]).await;
    assert_eq!(
        ok(srv.get("/api/v1/label/__name__/values").await),
        json!(["late", "up"])
    );
    assert_eq!(
        ok(srv.get("/api/v1/series?match[]=up").await)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let _ = srv.stop().await;
}
