//! A real Prometheus (Debian's `prometheus` package) scrapes itself and remote-writes to a real
//! Augur server; the series, samples and metadata must arrive. A second run scrapes a target
//! serving a native histogram in the protobuf exposition format, and every histogram Augur
//! stores must be one the target served, bucket for bucket. A third writes over TLS with basic
//! authentication (`--web.config.file`). Skipped, saying so, when Prometheus is not
//! installed and cannot be installed here.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use augur_testdata::tools::{debian_tool, free_port};
use common::*;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Prometheus with `config` in `dir` (its data and log there), listening on `port`.
fn spawn_prometheus(
    prometheus: &std::path::Path,
    dir: &std::path::Path,
    config: &str,
    port: u16,
    extra: &[&str],
) -> Child {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    Child(
        Command::new(prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    )
}

/// `up` samples Augur holds.
fn up_samples(srv: &TestServer) -> usize {
    use augur_storage::Queryable;
    let db = srv.server.as_ref().unwrap().state.db().unwrap().clone();
    let found = db
        .querier(i64::MIN, i64::MAX)
        .unwrap()
        .select(&[augur_storage::Matcher::equal("__name__", "up")])
        .unwrap();
    found.first().map_or(0, |s| s.samples.len())
}

/// With `--web.config.file` requiring TLS and basic authentication, Prometheus's
/// `tls_config` and `basic_auth` on its remote-write entry get its samples in; clear text and
/// no password get nothing in.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_remote_write_with_tls_and_basic_auth() {
    let prometheus = match debian_tool("prometheus", "prometheus") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED prometheus_remote_write_with_tls_and_basic_auth: {why}");
            return;
        }
    };
    let augur_dir = tempfile::TempDir::new().unwrap();
    std::fs::write(config_path(augur_dir.path()), CONFIG).unwrap();
    let pki = Pki::new("e2e");
    let (cert, key) = pki.issue(&["localhost"]);
    std::fs::write(augur_dir.path().join("server.pem"), cert).unwrap();
    std::fs::write(augur_dir.path().join("server.key"), key).unwrap();
    let web = augur_dir.path().join("web.yml");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    )
    .unwrap();
    let flag = format!("--web.config.file={}", web.display());
    let srv = TestServer::start_in(augur_dir, &[flag.as_str()]).await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
         remote_write:\n  - url: https://localhost:{augur}/api/v1/write\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: alice\n      password: s3cret\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n",
        augur = srv.server.as_ref().unwrap().addr.port(),
        ca = dir.path().join("ca.pem").display()
    );
    let _child = spawn_prometheus(&prometheus, dir.path(), &config, port, &[]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while up_samples(&srv) < 3 {
        assert!(
            Instant::now() < deadline,
            "nothing arrived from Prometheus with basic auth in 90 s; see {}",
            dir.path().join("prometheus.log").display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Clear text gets no answer at all.
    assert!(srv
        .client
        .post(srv.url("/api/v1/write"))
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_remote_write_arrives() {
    let prometheus = match debian_tool("prometheus", "prometheus") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED prometheus_remote_write_arrives: {why}");
            return;
        }
    };
    let srv = TestServer::start().await;
    let dir = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    replica: e2e\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
         remote_write:\n  - url: {base}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n    metadata_config:\n      send_interval: 1s\n",
        base = srv.base
    );
    let _child = spawn_prometheus(&prometheus, dir.path(), &config, port, &[]);

    let deadline = Instant::now() + Duration::from_secs(90);
    let samples_seen = loop {
        let (_, body) = srv
            .get("/api/v1/series?match[]=prometheus_build_info")
            .await;
        let (_, md) = srv
            .get("/api/v1/metadata?metric=prometheus_http_requests_total")
            .await;
        let samples_seen = up_samples(&srv);
        let have_series = body["data"].as_array().is_some_and(|a| !a.is_empty());
        let have_md = md["data"]["prometheus_http_requests_total"].is_array();
        if have_series && have_md && samples_seen >= 3 {
            let s = &body["data"][0];
            assert_eq!(s["job"], "prometheus");
            assert_eq!(
                s["replica"], "e2e",
                "external labels are part of what Prometheus sends"
            );
            assert_eq!(
                md["data"]["prometheus_http_requests_total"][0]["type"],
                "counter"
            );
            break samples_seen;
        }
        assert!(
            Instant::now() < deadline,
            "nothing arrived from Prometheus in 90 s (series: {body}, metadata: {md}, up samples: {samples_seen}); see {}",
            dir.path().join("prometheus.log").display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let metrics = srv.metrics().await;
    assert!(
        metrics.contains(r#"augur_remote_write_requests_total{handler="v1",code="204"}"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"code="400""#),
        "Prometheus's own writes were refused:\n{metrics}"
    );
    eprintln!("prometheus e2e: {samples_seen} `up` samples arrived");
}

// --- A native-histogram target in the protobuf exposition format ---------------------------
//
// Prometheus 2.42 with `--enable-feature=native-histograms` scrapes with the protobuf format
// and remote-writes native histograms when `send_native_histograms` is set. Its own metrics
// have none, so the test serves one: a `MetricFamily` (io.prometheus.client, proto2) encoded by
// hand below (field numbers from client_model's metrics.proto), length-delimited.

fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    pb_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn pb_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    pb_key(out, field, 2);
    pb_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn pb_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    pb_key(out, field, 0);
    pb_varint(out, v);
}

fn pb_sint(out: &mut Vec<u8>, field: u32, v: i64) {
    pb_uint(out, field, ((v << 1) ^ (v >> 63)) as u64);
}

fn pb_double(out: &mut Vec<u8>, field: u32, v: f64) {
    pb_key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// The histogram served at scrape `k`: schema 0, buckets 1 and 2 (offset 1) holding `k` and
/// `2k` observations, `k` in the zero bucket.
fn served(k: u64) -> (u64, f64, Vec<f64>) {
    (4 * k, 1.5 * k as f64, vec![k as f64, 2.0 * k as f64])
}

/// One delimited `MetricFamily` named `nh_latency_seconds` (type HISTOGRAM) for scrape `k`.
fn exposition(k: u64) -> Vec<u8> {
    let (count, sum, _) = served(k);
    let mut h = Vec::new();
    pb_uint(&mut h, 1, count); // sample_count
    pb_double(&mut h, 2, sum); // sample_sum
    pb_sint(&mut h, 5, 0); // schema
    pb_double(&mut h, 6, 1e-128); // zero_threshold
    pb_uint(&mut h, 7, k); // zero_count
    let mut span = Vec::new();
    pb_sint(&mut span, 1, 1); // offset
    pb_uint(&mut span, 2, 2); // length
    pb_bytes(&mut h, 12, &span); // positive_span
    pb_sint(&mut h, 13, k as i64); // positive_delta: k
    pb_sint(&mut h, 13, k as i64); // then +k = 2k
    let mut label = Vec::new();
    pb_bytes(&mut label, 1, b"path");
    pb_bytes(&mut label, 2, b"/api");
    let mut metric = Vec::new();
    pb_bytes(&mut metric, 1, &label);
    pb_bytes(&mut metric, 7, &h); // histogram
    let mut family = Vec::new();
    pb_bytes(&mut family, 1, b"nh_latency_seconds");
    pb_bytes(&mut family, 2, b"Latency.");
    pb_uint(&mut family, 3, 4); // HISTOGRAM
    pb_bytes(&mut family, 4, &metric);
    let mut out = Vec::new();
    pb_varint(&mut out, family.len() as u64);
    out.extend_from_slice(&family);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_native_histograms_arrive() {
    let prometheus = match debian_tool("prometheus", "prometheus") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED prometheus_native_histograms_arrive: {why}");
            return;
        }
    };
    let srv = TestServer::start().await;

    // The target: scrape k serves `exposition(k)`.
    let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let counter = std::sync::Arc::clone(&scrapes);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let k = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                (
                    [(
                        "content-type",
                        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                    )],
                    exposition(k),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(target, app).await });

    let dir = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: nh\n    static_configs:\n      - targets: ['{target_addr}']\n\
         remote_write:\n  - url: {base}/api/v1/write\n    send_native_histograms: true\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n",
        base = srv.base
    );
    let _child = spawn_prometheus(
        &prometheus,
        dir.path(),
        &config,
        port,
        &["--enable-feature=native-histograms"],
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let got = loop {
        let db = srv.server.as_ref().unwrap().state.db().unwrap().clone();
        use augur_storage::Queryable;
        let got: Vec<augur_storage::Series> = db
            .querier(i64::MIN, i64::MAX)
            .unwrap()
            .select(&[augur_storage::Matcher::equal(
                "__name__",
                "nh_latency_seconds",
            )])
            .unwrap();
        if got.first().is_some_and(|s| s.histograms.len() >= 3) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "no native histograms arrived from Prometheus in 90 s (got {got:?}); see {}",
            dir.path().join("prometheus.log").display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let s = &got[0];
    assert_eq!(s.labels.get("path"), Some("/api"));
    assert_eq!(s.labels.get("job"), Some("nh"));
    // Every stored histogram is one the target served, bucket for bucket.
    for x in &s.histograms {
        let h = &x.h;
        let k = h.zero_count as u64;
        let (count, sum, buckets) = served(k);
        assert_eq!(
            (h.schema, h.count, h.sum, &h.positive_buckets),
            (0, count as f64, sum, &buckets),
            "{h:?}"
        );
        assert_eq!(h.positive_spans[0].offset, 1);
        assert!(h.integer);
    }
    let metrics = srv.metrics().await;
    assert!(
        !metrics.contains(r#"code="400""#),
        "Prometheus's writes were refused:\n{metrics}"
    );
    eprintln!(
        "prometheus native histograms e2e: {} histogram samples arrived",
        s.histograms.len()
    );
}
