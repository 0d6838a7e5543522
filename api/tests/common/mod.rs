//! Shared helpers for the api integration tests: a real server on 127.0.0.1:0 over a real
//! RocksDB in a temp dir, and real remote-write bodies (protobuf + snappy).

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use augur_api::proto::{v1, v2};
use augur_api::{ServeArgs, Server};
use clap::Parser;
use prost::Message;
use serde_json::Value;
use tempfile::TempDir;

#[derive(clap::Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ServeArgs,
}

pub struct TestServer {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub base: String,
    pub client: reqwest::Client,
}

pub const CONFIG: &str =
    "global:\n  evaluation_interval: 30s\n  external_labels:\n    cluster: test\n";

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("augur.yml")
}

impl TestServer {
    /// Starts a server on a fresh directory with the default test config.
    pub async fn start() -> TestServer {
        let dir = TempDir::new().unwrap();
        std::fs::write(config_path(dir.path()), CONFIG).unwrap();
        Self::start_in(dir, &[]).await
    }

    /// Starts a server on `dir` (which holds `augur.yml` and `data/`), with extra flags.
    pub async fn start_in(dir: TempDir, extra: &[&str]) -> TestServer {
        let cfg = config_path(dir.path());
        let data = dir.path().join("data");
        let mut argv = vec![
            "augur".to_string(),
            "--web.listen-address=127.0.0.1:0".into(),
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", data.display()),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let args = Wrapper::parse_from(argv).args;
        let mut server = Server::start(args).await.expect("server starts");
        server.wait_ready().await.expect("tsdb opens");
        let base = format!("http://{}", server.addr);
        TestServer {
            server: Some(server),
            dir,
            base,
            client: http_client(),
        }
    }

    /// Shuts down cleanly and returns the directory, for a restart.
    pub async fn stop(mut self) -> TempDir {
        self.server
            .take()
            .unwrap()
            .shutdown()
            .await
            .expect("clean shutdown");
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The `/metrics` exposition text.
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts a raw remote-write body with the given headers; returns status, headers, body text.
    pub async fn write_raw(
        &self,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.client.post(self.url("/api/v1/write")).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    pub async fn write_v1(&self, req: &v1::WriteRequest) -> (u16, String) {
        let (s, _, body) = self
            .write_raw(snappy(&req.encode_to_vec()), V1_HEADERS)
            .await;
        (s, body)
    }

    pub async fn write_v2(&self, req: &v2::Request) -> (u16, reqwest::header::HeaderMap, String) {
        self.write_raw(snappy(&req.encode_to_vec()), V2_HEADERS)
            .await
    }
}

/// An HTTP client for tests (reqwest's TLS needs the process's crypto provider first).
pub fn http_client() -> reqwest::Client {
    augur_api::alertmanager::install_crypto_provider();
    reqwest::Client::new()
}

pub const V1_HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

pub const V2_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Type",
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    ),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "2.0.0"),
];

pub fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

/// A v1 series from label pairs and (timestamp ms, value) samples.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> v1::TimeSeries {
    v1::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| v1::Label {
                name: prost::bytes::Bytes::copy_from_slice(n.as_bytes()),
                value: prost::bytes::Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(t, v)| v1::Sample {
                value: v,
                timestamp: t,
            })
            .collect(),
        ..Default::default()
    }
}

pub fn request(series: Vec<v1::TimeSeries>) -> v1::WriteRequest {
    v1::WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
}

/// A CA and certificates signed by it, as PEM.
pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca = p.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// (certificate PEM, key PEM) for `names`.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }
}
