//! The `http` target: requests to a real `augur serve` (in this process, on 127.0.0.1 port 0,
//! over a real store with a few series) at every endpoint, with fuzzed methods, parameters,
//! headers and bodies. Any 500, or the server going away, is a bug: bad input must get a 4xx.
//!
//! An input is text: the first line is `METHOD /path`, each further line `name=value` (a
//! parameter, sent in the query string for GET and HEAD, as a form body otherwise) or
//! `header:Name: value`.

use std::sync::OnceLock;
use std::time::Duration;

use augur_api::proto::v1;
use augur_api::{ServeArgs, Server};
use clap::Parser;
use prost::Message;

#[derive(clap::Parser)]
struct Wrapper {
    #[command(flatten)]
    args: ServeArgs,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    // Kept alive for the life of the process.
    _server: Server,
    _dir: tempfile::TempDir,
}

const T0_S: i64 = 1_700_000_000;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the http target");
        let dir = tempfile::TempDir::new().expect("a temp dir for the http target");
        let cfg = dir.path().join("augur.yml");
        std::fs::write(&cfg, "global:\n  evaluation_interval: 30s\n").expect("write the config");
        let argv = [
            "augur".to_owned(),
            "--web.listen-address=127.0.0.1:0".into(),
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            "--web.enable-admin-api".into(),
            "--web.enable-lifecycle".into(),
            "--query.timeout=2s".into(),
            "--query.max-samples=1000000".into(),
            "--log.level=error".into(),
        ];
        let args = Wrapper::parse_from(argv).args;
        let (server, base) = runtime.block_on(async {
            let mut server = Server::start(args).await.expect("the server starts");
            server.wait_ready().await.expect("the store opens");
            let base = format!("http://{}", server.addr);
            (server, base)
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        // A few series an hour long, one sample a minute.
        let series = |name: &str, job: &str| v1::TimeSeries {
            labels: vec![
                v1::Label {
                    name: "__name__".into(),
                    value: name.to_owned().into(),
                },
                v1::Label {
                    name: "job".into(),
                    value: job.to_owned().into(),
                },
            ],
            samples: (0..60)
                .map(|k| v1::Sample {
                    value: k as f64,
                    timestamp: (T0_S + k * 60) * 1000,
                })
                .collect(),
            ..v1::TimeSeries::default()
        };
        let req = v1::WriteRequest {
            timeseries: vec![
                series("up", "api"),
                series("up", "db"),
                series("http_requests_total", "api"),
            ],
            ..v1::WriteRequest::default()
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("snappy");
        let status = runtime.block_on(async {
            client
                .post(format!("{base}/api/v1/write"))
                .header("Content-Type", "application/x-protobuf")
                .header("Content-Encoding", "snappy")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        assert_eq!(status.ok(), Some(204), "seeding the http target's server");
        Fixture {
            runtime,
            base,
            client,
            _server: server,
            _dir: dir,
        }
    })
}

pub fn run(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    let (method, path) = first.split_once(' ').unwrap_or(("GET", first));
    let method = match method {
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        "HEAD" => reqwest::Method::HEAD,
        "DELETE" => reqwest::Method::DELETE,
        "OPTIONS" => reqwest::Method::OPTIONS,
        _ => reqwest::Method::GET,
    };
    // Snapshots copy the store: not fuzzed, the disk would fill.
    if path.contains("snapshot") {
        return false;
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let mut params: Vec<(String, String)> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if let Some(h) = line.strip_prefix("header:") {
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        } else if let Some((k, v)) = line.split_once('=') {
            params.push((k.to_owned(), v.to_owned()));
        }
    }
    let f = fixture();
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let in_url = method == reqwest::Method::GET || method == reqwest::Method::HEAD;
    let full = if in_url && !encoded.is_empty() {
        format!("{}{path}?{encoded}", f.base)
    } else {
        format!("{}{path}", f.base)
    };
    let Ok(url) = reqwest::Url::parse(&full) else {
        return false;
    };
    let mut req = f.client.request(method.clone(), url);
    if !in_url {
        req = req
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encoded);
    }
    for (k, v) in &headers {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            req = req.header(k, v);
        }
    }
    let outcome = f.runtime.block_on(async {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    });
    match outcome {
        Ok((500, body)) => panic!("500 for {method} {path} {params:?} {headers:?}: {body}"),
        Ok((status, _)) => status < 400,
        Err(e) if e.is_timeout() => panic!("no answer in 30 s to {method} {path} {params:?}"),
        Err(e) => panic!("the server went away at {method} {path} {params:?}: {e}"),
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    [
        "GET /api/v1/query\nquery=sum by (job) (rate(up[5m]))\ntime=1700001800",
        "POST /api/v1/query_range\nquery=up\nstart=1700000000\nend=1700003600\nstep=60",
        "GET /api/v1/series\nmatch[]=up{job=\"api\"}\nstart=1700000000\nlimit=1",
        "GET /api/v1/labels\nmatch[]={__name__=~\".+\"}",
        "GET /api/v1/label/job/values\nlimit=5",
        "GET /api/v1/label/U__service_2e_name/values",
        "GET /api/v1/metadata\nmetric=up\nlimit=1\nlimit_per_metric=1",
        "GET /api/v1/status/tsdb\nlimit=3",
        "GET /api/v1/status/config",
        "GET /api/v1/status/flags",
        "GET /api/v1/rules\ntype=alert\nrule_name[]=x\nexclude_alerts=true",
        "GET /api/v1/alerts",
        "GET /api/v1/query_exemplars\nquery=up\nstart=1\nend=2",
        "POST /api/v1/admin/tsdb/delete_series\nmatch[]=nothing\nstart=1\nend=2",
        "POST /api/v1/write\nheader:Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request\nheader:Content-Encoding: snappy\nx=y",
        "GET /api/v1/targets",
        "GET /metrics",
        "GET /-/ready",
        "POST /-/reload",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

pub const DICT: &[&str] = &[
    "GET ",
    "POST ",
    "PUT ",
    "HEAD ",
    "DELETE ",
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/",
    "/values",
    "/api/v1/metadata",
    "/api/v1/status/",
    "tsdb",
    "config",
    "flags",
    "runtimeinfo",
    "buildinfo",
    "walreplay",
    "/api/v1/rules",
    "/api/v1/alerts",
    "/api/v1/alertmanagers",
    "/api/v1/targets",
    "/api/v1/query_exemplars",
    "/api/v1/admin/tsdb/",
    "delete_series",
    "clean_tombstones",
    "/api/v1/write",
    "/-/reload",
    "/-/ready",
    "/-/healthy",
    "/metrics",
    "\n",
    "query=",
    "time=",
    "start=",
    "end=",
    "step=",
    "timeout=",
    "limit=",
    "match[]=",
    "lookback_delta=",
    "stats=all",
    "metric=",
    "limit_per_metric=",
    "type=",
    "rule_name[]=",
    "rule_group[]=",
    "file[]=",
    "exclude_alerts=",
    "group_limit=",
    "group_next_token=",
    "skip_head=",
    "=",
    "header:Content-Type: ",
    "header:Content-Encoding: ",
    "header:Authorization: ",
    "header:X-Prometheus-Remote-Write-Version: ",
    "application/x-protobuf",
    "snappy",
    "gzip",
    "application/x-www-form-urlencoded",
    "1700000000",
    "1700003600",
    "-1",
    "0",
    "1e309",
    "NaN",
    "2023-11-14T22:13:20Z",
    "5m",
    "-5m",
    "0.001",
    "11001",
    "up",
    "{",
    "}",
    "\"",
    "[5m]",
    "rate(",
    ")",
    "U__",
    "%",
    "%zz",
    "\u{e9}",
    "job",
    "__name__",
    "true",
    "1y",
    "1ms",
];
