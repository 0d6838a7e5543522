//! Alerts reach a real Alertmanager (Debian's `prometheus-alertmanager`, installed when
//! missing and possible; otherwise each test is skipped, saying why). The Alertmanager runs
//! the seed routing tree (`testdata/alertmanager/routing.yml`), and every assertion about
//! delivery reads Alertmanager's own `/api/v2/alerts`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_testdata::tools::{debian_tool, free_port};
use common::*;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..")
}

/// A running Alertmanager on 127.0.0.1.
struct Alertmanager {
    child: Option<std::process::Child>,
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    /// `--web.config.file` (TLS, basic auth), when set.
    web_config: Option<PathBuf>,
    client: reqwest::Client,
    base: String,
}

impl Alertmanager {
    /// The binary, or the reason the calling test skips.
    fn binary(test: &str) -> Option<PathBuf> {
        match debian_tool("prometheus-alertmanager", "prometheus-alertmanager") {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("SKIPPED {test}: {why}");
                None
            }
        }
    }

    fn new(bin: PathBuf, port: u16) -> Alertmanager {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::copy(
            repo().join("testdata/alertmanager/routing.yml"),
            dir.path().join("alertmanager.yml"),
        )
        .unwrap();
        Alertmanager {
            child: None,
            bin,
            port,
            dir,
            web_config: None,
            client: http_client(),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Starts the process and waits until it answers `/-/ready`.
    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("alertmanager.log"))
            .unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!(
            "--config.file={}",
            self.dir.path().join("alertmanager.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            self.dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(log);
        if let Some(w) = &self.web_config {
            cmd.arg(format!("--web.config.file={}", w.display()));
        }
        self.child = Some(cmd.spawn().expect("start alertmanager"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .client
                .get(format!("{}/-/ready", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() < 500);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager did not become ready; its log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// Alertmanager's current (unresolved) alerts named `name`.
    async fn alerts(&self, name: &str) -> Vec<Value> {
        let resp = self
            .client
            .get(format!("{}/api/v2/alerts", self.base))
            .basic_auth("augur", Some("hunter2"))
            .send()
            .await
            .expect("alertmanager answers");
        let all: Vec<Value> = resp.json().await.expect("alertmanager JSON");
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .collect()
    }

    /// Waits until `ok` holds for the alerts named `name`.
    async fn wait_alerts(
        &self,
        name: &str,
        what: &str,
        ok: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let alerts = self.alerts(name).await;
            if ok(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager never showed {what}; it has {alerts:?}; its log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.stop();
    }
}

const RULES: &str = r#"groups:
  - name: anomalies
    interval: 1s
    rules:
      - alert: AnomalyLatencyHigh
        expr: latency_seconds{service="checkout"} > 1
        for: 2s
        labels:
          severity: critical
          anomaly_confidence: high
          detector_type: threshold
        annotations:
          summary: '{{ $labels.service }} latency is {{ $value }}s'
          runbook: '{{ $externalURL }}/runbooks/latency'
"#;

/// Starts Augur with `alerting` (YAML under `alerting:`) and the rule above.
async fn augur(alerting: &str, extra: &[&str]) -> TestServer {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config_path(dir.path()),
        format!(
            "global:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: test\n\
             rule_files: [rules.yml]\nalerting:\n{alerting}"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let mut flags = vec!["--web.external-url=http://augur.example:9090"];
    flags.extend_from_slice(extra);
    TestServer::start_in(dir, &flags).await
}

/// Remote-writes `latency_seconds{service="checkout"}` every 250 ms with the value in `value`
/// (f64 bits), like a Prometheus streaming its scrapes, until the task is aborted.
fn stream_latency(srv: &TestServer, value: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let client = srv.client.clone();
    let url = srv.url("/api/v1/write");
    tokio::spawn(async move {
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let v = f64::from_bits(value.load(Ordering::Relaxed));
            let req = request(vec![series(
                &[("__name__", "latency_seconds"), ("service", "checkout")],
                &[(now, v)],
            )]);
            let mut post = client
                .post(&url)
                .body(snappy(&prost::Message::encode_to_vec(&req)));
            for (k, h) in V1_HEADERS {
                post = post.header(*k, *h);
            }
            let status = post.send().await.map(|r| r.status().as_u16());
            assert!(matches!(status, Ok(204)), "remote write failed: {status:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// The value of the sample `name{alertmanager="url"}` in `/metrics`, or 0 when absent.
async fn notification_metric(srv: &TestServer, name: &str, url: &str) -> f64 {
    let text = srv.metrics().await;
    let prefix = format!("{name}{{alertmanager=\"{url}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// A firing alert arrives with its labels (external labels too), rendered annotations,
/// `startsAt`, `endsAt` and generator URL, is routed by the seed routing tree, and resolves in
/// Alertmanager once the data is normal again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_and_resolved_alerts_reach_alertmanager() {
    let Some(bin) = Alertmanager::binary("firing_and_resolved_alerts_reach_alertmanager") else {
        return;
    };
    let mut am = Alertmanager::new(bin, free_port());
    am.start().await;
    let target = format!("127.0.0.1:{}", am.port);
    let srv = augur(
        &format!("  alertmanagers:\n    - static_configs: [{{targets: ['{target}']}}]\n      timeout: 5s\n"),
        &[],
    )
    .await;
    let am_url = format!("http://{target}/api/v2/alerts");
    let (_, body) = srv.get("/api/v1/alertmanagers").await;
    assert_eq!(
        body["data"],
        serde_json::json!({"activeAlertmanagers": [{"url": am_url}], "droppedAlertmanagers": []})
    );

    let value = Arc::new(AtomicU64::new(5f64.to_bits()));
    let writer = stream_latency(&srv, Arc::clone(&value));
    let alerts = am
        .wait_alerts("AnomalyLatencyHigh", "the firing alert", |a| !a.is_empty())
        .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        a["labels"],
        serde_json::json!({
            "alertname": "AnomalyLatencyHigh",
            "service": "checkout",
            "severity": "critical",
            "anomaly_confidence": "high",
            "detector_type": "threshold",
            "cluster": "test",
        })
    );
    assert_eq!(a["annotations"]["summary"], "checkout latency is 5s");
    assert_eq!(
        a["annotations"]["runbook"],
        "http://augur.example:9090/runbooks/latency"
    );
    assert_eq!(
        a["generatorURL"],
        "http://augur.example:9090/graph?g0.expr=latency_seconds%7Bservice%3D%22checkout%22%7D+%3E+1&g0.tab=1"
    );
    assert_eq!(a["status"]["state"], "active");
    // The seed routing tree sends critical, high-confidence anomalies to on-call.
    assert_eq!(
        a["receivers"],
        serde_json::json!([{"name": "oncall-pagerduty"}])
    );

    // startsAt is when the alert fired: `for: 2s` after it became active, at an evaluation.
    let (_, ours) = srv.get("/api/v1/alerts").await;
    let active_at = millis(&ours["data"]["alerts"][0]["activeAt"]);
    let starts_at = millis(&a["startsAt"]);
    assert!(
        (active_at + 2000..=active_at + 6000).contains(&starts_at),
        "startsAt {} vs activeAt {}",
        a["startsAt"],
        ours["data"]["alerts"][0]["activeAt"]
    );
    // endsAt is four resend delays (1m, larger than the 1s interval) after the last send.
    let ends_at = millis(&a["endsAt"]);
    assert!(
        (starts_at + 240_000..=starts_at + 300_000).contains(&ends_at),
        "endsAt {} vs startsAt {}",
        a["endsAt"],
        a["startsAt"]
    );

    // Back to normal: the resolved notification ends the alert in Alertmanager long before
    // its four-minute validity would have.
    value.store(0.1f64.to_bits(), Ordering::Relaxed);
    am.wait_alerts("AnomalyLatencyHigh", "the alert resolved", |a| a.is_empty())
        .await;
    writer.abort();
    let (_, ours) = srv.get("/api/v1/alerts").await;
    assert_eq!(ours["data"]["alerts"], serde_json::json!([]));

    let sent = notification_metric(&srv, "prometheus_notifications_sent_total", &am_url).await;
    assert!(
        sent >= 2.0,
        "firing and resolved notifications sent: {sent}"
    );
    let errors = notification_metric(&srv, "prometheus_notifications_errors_total", &am_url).await;
    assert_eq!(errors, 0.0);
    let text = srv.metrics().await;
    assert!(
        text.contains("prometheus_notifications_queue_capacity 10000"),
        "{text}"
    );
    assert!(text.contains("prometheus_notifications_alertmanagers_discovered 1"));
    assert!(text.contains(&format!(
        "prometheus_notifications_latency_seconds_count{{alertmanager=\"{am_url}\"}} "
    )));
    srv.stop().await;
}

/// With the Alertmanager down, rules keep evaluating and failures are counted; when it comes
/// back, the next resend delivers the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_when_alertmanager_returns() {
    let Some(bin) = Alertmanager::binary("delivery_resumes_when_alertmanager_returns") else {
        return;
    };
    let mut am = Alertmanager::new(bin, free_port());
    let target = format!("127.0.0.1:{}", am.port);
    let srv = augur(
        &format!("  alertmanagers:\n    - static_configs: [{{targets: ['{target}']}}]\n      timeout: 2s\n"),
        &["--rules.alert.resend-delay=1s"],
    )
    .await;
    let am_url = format!("http://{target}/api/v2/alerts");
    let value = Arc::new(AtomicU64::new(5f64.to_bits()));
    let writer = stream_latency(&srv, Arc::clone(&value));

    let deadline = Instant::now() + Duration::from_secs(60);
    while notification_metric(&srv, "prometheus_notifications_errors_total", &am_url).await < 2.0 {
        assert!(
            Instant::now() < deadline,
            "no failed sends counted: {}",
            srv.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Evaluation goes on while sending fails.
    let iterations = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix("prometheus_rule_group_iterations_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let before = iterations(&srv.metrics().await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = iterations(&srv.metrics().await);
    assert!(after >= before + 2.0, "iterations {before} -> {after}");
    let (_, ours) = srv.get("/api/v1/alerts").await;
    assert_eq!(ours["data"]["alerts"][0]["state"], "firing");
    assert_eq!(
        notification_metric(&srv, "prometheus_notifications_sent_total", &am_url).await,
        0.0
    );
    let dropped =
        notification_metric(&srv, "prometheus_notifications_dropped_total", &am_url).await;
    assert!(dropped >= 2.0, "failed batches count as dropped: {dropped}");

    am.start().await;
    let alerts = am
        .wait_alerts("AnomalyLatencyHigh", "the alert after the restart", |a| {
            !a.is_empty()
        })
        .await;
    assert_eq!(alerts[0]["labels"]["service"], "checkout");
    assert!(notification_metric(&srv, "prometheus_notifications_sent_total", &am_url).await >= 1.0);
    writer.abort();
    srv.stop().await;
}

/// Runs `openssl` with `args` in `dir`; false when it fails.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA and a server certificate for 127.0.0.1, made with the `openssl` command.
fn make_certs(dir: &Path) -> bool {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=augur-test-ca",
        ],
    ) && openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    )
}

/// An Alertmanager behind TLS and basic auth: Augur verifies it with `tls_config.ca_file` and
/// authenticates with `basic_auth.password_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth() {
    let Some(bin) = Alertmanager::binary("tls_and_basic_auth") else {
        return;
    };
    let mut am = Alertmanager::new(bin, free_port());
    let d = am.dir.path().to_owned();
    if !make_certs(&d) {
        eprintln!("SKIPPED tls_and_basic_auth: the openssl command is missing or failed (apt-get install openssl)");
        return;
    }
    // bcrypt of "hunter2" (cost 4), as Alertmanager's web config wants.
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n\
             basic_auth_users:\n  augur: $2b$04$qjMN0GqvY8Xxl7SJVgjcBeApdgz0G9XDTUz/8fo31f9aIY.nMzxNa\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::write(d.join("password"), "hunter2\n").unwrap();
    am.web_config = Some(d.join("web.yml"));
    let ca = std::fs::read(d.join("ca.crt")).unwrap();
    am.client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    am.base = format!("https://127.0.0.1:{}", am.port);
    am.start().await;

    let target = format!("127.0.0.1:{}", am.port);
    let srv = augur(
        &format!(
            "  alertmanagers:\n    - scheme: https\n      static_configs: [{{targets: ['{target}']}}]\n\
             \x20     tls_config: {{ca_file: {ca}}}\n      basic_auth: {{username: augur, password_file: {pw}}}\n",
            ca = d.join("ca.crt").display(),
            pw = d.join("password").display()
        ),
        &[],
    )
    .await;
    let value = Arc::new(AtomicU64::new(5f64.to_bits()));
    let writer = stream_latency(&srv, Arc::clone(&value));
    let alerts = am
        .wait_alerts("AnomalyLatencyHigh", "the alert over TLS", |a| {
            !a.is_empty()
        })
        .await;
    assert_eq!(alerts[0]["labels"]["cluster"], "test");
    let am_url = format!("https://{target}/api/v2/alerts");
    assert_eq!(
        notification_metric(&srv, "prometheus_notifications_errors_total", &am_url).await,
        0.0
    );
    writer.abort();
    srv.stop().await;
}

/// A reload installs new Alertmanagers (relabelling decides which are active); a reload with
/// a bad alerting section answers 500 with the reason and keeps the running ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_alertmanagers_or_nothing() {
    let srv = augur("  alertmanagers: []\n", &[]).await;
    let (_, body) = srv.get("/api/v1/alertmanagers").await;
    assert_eq!(
        body["data"],
        serde_json::json!({"activeAlertmanagers": [], "droppedAlertmanagers": []})
    );
    let cfg = config_path(srv.dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    let with_ams = text.replace(
        "  alertmanagers: []\n",
        "  alertmanagers:\n    - path_prefix: /am\n      static_configs: [{targets: ['127.0.0.1:1', 'old:9093']}]\n\
         \x20     relabel_configs:\n        - {source_labels: [__address__], regex: 'old:.*', action: drop}\n",
    );
    std::fs::write(&cfg, &with_ams).unwrap();
    let resp = srv.client.post(srv.url("/-/reload")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let want = serde_json::json!({
        "activeAlertmanagers": [{"url": "http://127.0.0.1:1/am/api/v2/alerts"}],
        "droppedAlertmanagers": [{"url": "http://old:9093/am/api/v2/alerts"}],
    });
    let (_, body) = srv.get("/api/v1/alertmanagers").await;
    assert_eq!(body["data"], want);

    std::fs::write(&cfg, with_ams.replace("action: drop", "action: dorp")).unwrap();
    let resp = srv.client.post(srv.url("/-/reload")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    let msg = resp.text().await.unwrap();
    assert!(
        msg.contains(
            "alerting.alertmanagers[0].relabel_configs[0]: unknown relabel action \"dorp\""
        ),
        "{msg}"
    );
    let (_, body) = srv.get("/api/v1/alertmanagers").await;
    assert_eq!(body["data"], want, "the running Alertmanagers stay");
    srv.stop().await;
}
