//! A real Prometheus (Debian's `prometheus` package) scrapes itself and remote-writes to a real
//! Augur server; the series, samples and metadata must arrive. Skipped, saying so, when
//! Prometheus is not installed and cannot be installed here.

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
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _child = Child(
        Command::new(prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let samples_seen = loop {
        let (_, body) = srv
            .get("/api/v1/series?match[]=prometheus_build_info")
            .await;
        let (_, md) = srv
            .get("/api/v1/metadata?metric=prometheus_http_requests_total")
            .await;
        let db = srv.server.as_ref().unwrap().state.db().unwrap().clone();
        use augur_storage::Queryable;
        let samples_seen = db
            .querier(i64::MIN, i64::MAX)
            .unwrap()
            .select(&[augur_storage::Matcher::equal("__name__", "up")])
            .unwrap()
            .first()
            .map_or(0, |s| s.samples.len());
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
