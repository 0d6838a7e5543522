//! The real `augur serve` binary as users run it: acknowledged remote writes survive
//! `kill -9`, SIGTERM shuts down cleanly (checkpointed, so the next start replays nothing),
//! and SIGHUP reloads the configuration.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use augur_testdata::tools::free_port;
use common::{http_client, request, series, snappy, V1_HEADERS};
use prost::Message;
use serde_json::Value;

struct Augur {
    child: Child,
    base: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Augur {
    /// Starts the binary and waits until it is ready; returns it with its "ready" log line.
    fn start(dir: &std::path::Path) -> (Augur, String) {
        let (augur, mut lines) = Augur::start_with(dir, &[]);
        (augur, lines.pop().unwrap())
    }

    /// Starts the binary with extra flags; returns it with its log lines up to "ready".
    fn start_with(dir: &std::path::Path, extra: &[&str]) -> (Augur, Vec<String>) {
        let port = free_port();
        let cfg = dir.join("augur.yml");
        if !cfg.exists() {
            std::fs::write(&cfg, "global:\n  evaluation_interval: 30s\n").unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
            .arg("serve")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start augur");
        let (tx, log) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let augur = Augur {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let lines = augur.log_until("server is ready");
        (augur, lines)
    }

    fn wait_for_log(&self, needle: &str) -> String {
        self.log_until(needle).pop().unwrap()
    }

    /// The log lines up to and including the first that contains `needle`.
    fn log_until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut lines = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.log.recv_timeout(Duration::from_millis(200)) {
                let found = line.contains(needle);
                lines.push(line);
                if found {
                    return lines;
                }
            }
        }
        panic!(
            "augur never logged {needle:?}; it logged:\n{}",
            lines.join("\n")
        );
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn write(client: &reqwest::Client, base: &str, n: i64) -> u16 {
    let req = request(
        (0..20)
            .map(|i| {
                series(
                    &[("__name__", "survivor"), ("i", &i.to_string())],
                    &[(1_700_000_000_000 + n * 15_000, n as f64)],
                )
            })
            .collect(),
    );
    let mut r = client
        .post(format!("{base}/api/v1/write"))
        .body(snappy(&req.encode_to_vec()));
    for (k, v) in V1_HEADERS {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Series named `survivor` (sample timestamps are checked through `/status/tsdb`'s maxTime,
/// as there is no query API yet).
async fn series_count(client: &reqwest::Client, base: &str) -> usize {
    let body: Value = get_json(client, format!("{base}/api/v1/series?match[]=survivor")).await;
    body["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_sigterm_and_sighup_on_the_real_binary() {
    let dir = tempfile::TempDir::new().unwrap();
    let client = http_client();

    // Acknowledged writes survive kill -9.
    let (mut augur, _) = Augur::start(dir.path());
    for n in 0..50 {
        assert_eq!(write(&client, &augur.base, n).await, 204);
    }
    augur.child.kill().unwrap(); // SIGKILL
    augur.child.wait().unwrap();

    let (mut augur, ready) = Augur::start(dir.path());
    assert!(
        ready.contains("series=20") && !ready.contains("wal_records=0"),
        "recovery replayed the WAL: {ready}"
    );
    assert_eq!(series_count(&client, &augur.base).await, 20);
    let status: Value = get_json(&client, format!("{}/api/v1/status/tsdb", augur.base)).await;
    let head = &status["data"]["headStats"];
    assert_eq!(
        head["maxTime"],
        1_700_000_000_000i64 + 49 * 15_000,
        "the last acknowledged write survived"
    );

    // SIGHUP reloads the config.
    std::fs::write(
        dir.path().join("augur.yml"),
        "global:\n  evaluation_interval: 10s\n",
    )
    .unwrap();
    augur.signal("HUP");
    augur.wait_for_log("configuration reloaded");

    // SIGTERM: clean exit, checkpointed, so the next start replays no WAL.
    assert_eq!(write(&client, &augur.base, 50).await, 204);
    augur.signal("TERM");
    augur.wait_for_log("shut down cleanly");
    let status = augur.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");

    let (augur, ready) = Augur::start(dir.path());
    assert!(ready.contains("wal_records=0"), "{ready}");
    let body: Value = get_json(&client, format!("{}/api/v1/status/walreplay", augur.base)).await;
    assert_eq!(
        body["data"]["max"], 0,
        "a clean shutdown leaves nothing to replay"
    );
    let status: Value = get_json(&client, format!("{}/api/v1/status/tsdb", augur.base)).await;
    assert_eq!(
        status["data"]["headStats"]["maxTime"],
        1_700_000_000_000i64 + 50 * 15_000
    );
    drop(augur);
}

impl Drop for Augur {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus 3 command line starts Augur: flags Augur has no use for are accepted, each
/// named in a warning; `--web.config.file` (TLS and authentication, not implemented yet) still
/// stops the start rather than serve without the protection the user asked for.
#[tokio::test]
async fn a_prometheus_3_command_line_starts_augur() {
    let dir = tempfile::TempDir::new().unwrap();
    let ignored = [
        "--web.enable-otlp-receiver",
        "--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
        "--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
        "--auto-gomemlimit.ratio=0.9",
        "--storage.tsdb.no-lockfile",
        "--web.cors.origin=.*",
        "--rules.max-concurrent-evals=4",
        "--enable-feature=native-histograms",
    ];
    let (mut augur, lines) = Augur::start_with(dir.path(), &ignored);
    for flag in [
        "web.enable-otlp-receiver",
        "web.remote-write-receiver.accepted-protobuf-messages",
        "auto-gomemlimit.ratio",
        "storage.tsdb.no-lockfile",
        "web.cors.origin",
        "rules.max-concurrent-evals",
        "enable-feature",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("accepted but ignored") && l.contains(flag)),
            "no warning names {flag}: {lines:#?}"
        );
    }
    let client = http_client();
    assert_eq!(write(&client, &augur.base, 0).await, 204);
    augur.child.kill().unwrap();
    augur.child.wait().unwrap();

    // A web config whose TLS files are missing stops the start, naming file and field,
    // rather than serving in clear text.
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("augur.yml"), "global: {}\n").unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: s.pem\n  key_file: s.key\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .current_dir(dir.path())
        .args([
            "serve",
            "--config.file=augur.yml",
            "--web.config.file=web.yml",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web config file web.yml: tls_server_config"),
        "{stderr}"
    );
}
