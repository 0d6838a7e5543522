//! The built-in web UI: the page and its assets over real HTTP (paths, caching, base href),
//! then a real headless Chromium (Debian's `chromium`) against a real server with an hour
//! of data, a spike and a firing alerting rule: the query page draws the series, the
//! anomaly band, the points outside it and the alert's firing span; the alerts, rules and
//! status pages show them. Screenshots go to a temp dir, or to `UI_SCREENSHOTS` (the README's
//! `docs/ui/` pictures are made with `UI_SCREENSHOTS=docs/ui`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use augur_testdata::tools::debian_tool;
use common::*;
use serde_json::{json, Value};

const RULES: &str = r#"groups:
  - name: demo
    rules:
      - alert: Spike
        expr: demo_value > 50
        labels:
          severity: SEV2
        annotations:
          summary: 'demo_value is {{ $value }}'
      - record: demo:doubled
        expr: demo_value * 2
"#;

async fn server(extra: &[&str]) -> TestServer {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config_path(dir.path()),
        "global:\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    TestServer::start_in(dir, extra).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_are_served_with_caching_headers() {
    let srv = server(&["--web.external-url=https://example.org/augur/"]).await;
    for path in [
        "/",
        "/query",
        "/graph",
        "/alerts",
        "/rules",
        "/status",
        "/tsdb-status",
    ] {
        let resp = srv.client.get(srv.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        let html = resp.text().await.unwrap();
        assert!(html.contains(r#"<base href="/augur/">"#), "{html}");
        assert!(html.contains("static/app.js?v="), "{html}");
    }
    let resp = srv
        .client
        .get(srv.url("/static/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let etag = resp.headers()["etag"].clone();
    assert!(resp.text().await.unwrap().contains("function queryPage"));
    let again = srv
        .client
        .get(srv.url("/static/style.css"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = srv
        .client
        .get(srv.url("/static/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let _ = srv.stop().await;
}

/// Runs headless Chromium on `url`; returns the DOM after the page's scripts ran, and writes a
/// screenshot to `shot`.
fn chromium(binary: &Path, url: &str, shot: &Path) -> String {
    let profile = tempfile::TempDir::new().unwrap();
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,900",
        // Enough virtual time for the page's queries to come back and be drawn.
        "--virtual-time-budget=15000",
    ];
    let run = |extra: &str| {
        let out = Command::new(binary)
            .args(base)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium {extra} {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&format!("--screenshot={}", shot.display()));
    let png = std::fs::read(shot).expect("chromium wrote the screenshot");
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "{} is not a real screenshot",
        shot.display()
    );
    run("--dump-dom")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_browser_draws_the_graph_band_and_alerts() {
    let chromium_bin = match debian_tool("chromium", "chromium") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED a_real_browser_draws_the_graph_band_and_alerts: {why}");
            return;
        }
    };
    let srv = server(&[]).await;
    // An hour of a calm series, one sample every 15 s, then a spike in the last three minutes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let samples: Vec<(i64, f64)> = (0..240)
        .map(|i| {
            let t = now - 3_600_000 + i * 15_000;
            let v = 10.0 + 3.0 * (i as f64 / 10.0).sin() + if i >= 228 { 70.0 } else { 0.0 };
            (t, v)
        })
        .collect();
    let req = request(vec![series(
        &[("__name__", "demo_value"), ("job", "demo")],
        &samples,
    )]);
    assert_eq!(srv.write_v1(&req).await.0, 204);
    // The rule fires at its next evaluation (every second).
    let mut firing = false;
    for _ in 0..100 {
        let (_, body) = srv.get("/api/v1/alerts").await;
        if body["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
        {
            firing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(firing, "the Spike alert never fired");
    // ALERTS needs a few evaluations in the graph's range.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let keep = std::env::var_os("UI_SCREENSHOTS").map(std::path::PathBuf::from);
    let tmp = tempfile::TempDir::new().unwrap();
    let shots = keep.as_deref().unwrap_or(tmp.path()).to_path_buf();
    std::fs::create_dir_all(&shots).unwrap();
    let page = |path: &str, name: &str| {
        let (bin, url, shot) = (
            chromium_bin.clone(),
            srv.url(path),
            shots.join(format!("{name}.png")),
        );
        async move {
            tokio::task::spawn_blocking(move || chromium(&bin, &url, &shot))
                .await
                .unwrap()
        }
    };

    let dom = page(
        "/query?g0.expr=demo_value&g0.tab=0&g0.range_input=1h&g0.band=ewma&g0.alpha=0.1&g0.k=3&g0.window=30m",
        "query",
    )
    .await;
    assert!(
        dom.contains(r#"<svg class="chart""#),
        "no chart drawn:\n{dom}"
    );
    assert!(
        dom.contains(r#"class="series" d="M"#),
        "no series line:\n{dom}"
    );
    assert!(dom.contains(r#"class="band""#), "no anomaly band:\n{dom}");
    assert!(
        dom.contains(r#"class="outside""#),
        "the spike is not marked outside the band:\n{dom}"
    );
    assert!(dom.contains(r#"class="alert""#), "no firing span:\n{dom}");
    assert!(
        dom.contains("demo_value{job=\"demo\"}"),
        "no legend:\n{dom}"
    );

    let dom = page("/query?g0.expr=demo_value%20*%202&g0.tab=1", "table").await;
    assert!(dom.contains(r#"id="result-table""#), "no table:\n{dom}");
    assert!(dom.contains("{job=\"demo\"}"), "{dom}");

    let dom = page("/query?g0.expr=rate(demo_value%5B5m%5D&g0.tab=1", "error").await;
    assert!(dom.contains(r#"class="error""#), "no error shown:\n{dom}");
    assert!(dom.contains("parse error"), "{dom}");

    let dom = page("/alerts", "alerts").await;
    assert!(dom.contains("Spike"), "{dom}");
    assert!(
        dom.contains(r#"<span class="state firing">firing</span>"#),
        "{dom}"
    );
    assert!(dom.contains("SEV2"), "{dom}");

    let dom = page("/rules", "rules").await;
    assert!(
        dom.contains("demo:doubled") && dom.contains("Spike"),
        "{dom}"
    );

    let dom = page("/status", "status").await;
    assert!(dom.contains("Augur") && dom.contains("demo_value"), "{dom}");
    let _ = srv.stop().await;
}

/// A page in headless Chromium driven over the DevTools protocol (a WebSocket): typing,
/// keys, evaluating script, screenshots.
struct Browser {
    proc: std::process::Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(binary: &Path, url: &str) -> Browser {
        use std::io::{BufRead, BufReader};
        let profile = tempfile::TempDir::new().unwrap();
        let mut proc = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let mut stderr = BufReader::new(proc.stderr.take().unwrap()).lines();
        let mut port = None;
        for line in stderr.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                port = rest.split('/').next().map(str::to_owned);
                break;
            }
        }
        // The rest of its log is drained, so a write to it never fails.
        std::thread::spawn(move || stderr.for_each(drop));
        let port = port.expect("chromium printed its DevTools address");
        // The page's own endpoint, from the target list.
        let list: Value = (0..50)
            .find_map(|_| {
                let out = get_json(&port, "/json/list");
                match out {
                    Some(v)
                        if v.as_array()
                            .is_some_and(|a| a.iter().any(|t| t["type"] == "page")) =>
                    {
                        Some(v)
                    }
                    _ => {
                        std::thread::sleep(Duration::from_millis(100));
                        None
                    }
                }
            })
            .expect("chromium lists its page");
        let ws_url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap()
            .to_owned();
        let (ws, _) = tungstenite::connect(ws_url).expect("connect to the page");
        Browser {
            proc,
            ws,
            next: 0,
            _profile: profile,
        }
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(tungstenite::Message::text(msg)).unwrap();
        loop {
            let m = self.ws.read().expect("read from chromium");
            if let Ok(text) = m.to_text() {
                let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    fn eval(&mut self, script: &str) -> Value {
        self.call(
            "Runtime.evaluate",
            json!({"expression": script, "returnByValue": true}),
        )["result"]["value"]
            .clone()
    }

    /// Waits up to 20 s for `script` to be truthy.
    fn wait(&mut self, script: &str, what: &str) {
        for _ in 0..200 {
            let v = self.eval(script);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let dom = self.eval("document.body.outerHTML");
        panic!("waited 20 s for {what}; the page:\n{dom}");
    }

    fn key(&mut self, key: &str, code: i64) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}),
            );
        }
    }

    fn screenshot(&mut self, to: &Path) {
        use base64::Engine;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }
}

/// A plain HTTP/1.1 GET of JSON from Chromium's DevTools endpoint (which keeps the connection
/// open: the body is read by its Content-Length).
fn get_json(port: &str, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = c.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(usize::MAX);
            if body.len() >= len {
                return serde_json::from_str(body).ok();
            }
        }
    }
    None
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

/// A user types a query with completion, runs it with Enter and gets a graph.
#[tokio::test(flavor = "multi_thread")]
async fn typing_a_query_with_completion_draws_its_graph() {
    let chromium_bin = match debian_tool("chromium", "chromium") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED typing_a_query_with_completion_draws_its_graph: {why}");
            return;
        }
    };
    let srv = server(&[]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let samples: Vec<(i64, f64)> = (0..120)
        .map(|i| (now - 1_800_000 + i * 15_000, i as f64))
        .collect();
    let req = request(vec![series(
        &[("__name__", "demo_value"), ("job", "demo")],
        &samples,
    )]);
    assert_eq!(srv.write_v1(&req).await.0, 204);
    let url = srv.url("/query");
    let shot = tempfile::TempDir::new().unwrap();
    let keep = std::env::var_os("UI_SCREENSHOTS").map(std::path::PathBuf::from);
    let to = keep.as_deref().unwrap_or(shot.path()).join("typed.png");
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::open(&chromium_bin, &url);
        b.wait("document.querySelector('#expr')", "the editor");
        b.eval("document.querySelector('#expr').focus()");
        b.call("Input.insertText", json!({"text": "demo_va"}));
        b.wait(
            "document.querySelector('.complete') && !document.querySelector('.complete').hidden && document.querySelector('.complete').innerText.includes('demo_value')",
            "the completion of demo_value",
        );
        b.key("Tab", 9);
        assert_eq!(b.eval("document.querySelector('#expr').value"), "demo_value");
        // Inside braces, label names, then the label's values.
        b.call("Input.insertText", json!({"text": "{jo"}));
        b.wait(
            "document.querySelector('.complete').innerText.includes('job')",
            "the completion of the label name job",
        );
        b.key("Tab", 9);
        b.call("Input.insertText", json!({"text": "=\"de"}));
        b.wait(
            "document.querySelector('.complete').innerText.includes('demo')",
            "the completion of the label value demo",
        );
        b.key("Tab", 9);
        b.call("Input.insertText", json!({"text": "\"}"}));
        assert_eq!(
            b.eval("document.querySelector('#expr').value"),
            "demo_value{job=\"demo\"}"
        );
        // Highlighted as typed.
        b.wait(
            "document.querySelector('pre.highlight .tok-str')",
            "the highlighted string",
        );
        b.key("Enter", 13);
        b.wait(
            "document.querySelector('svg.chart path.series')",
            "the graph",
        );
        assert!(b
            .eval("location.search")
            .as_str()
            .unwrap()
            .contains("g0.expr=demo_value"));
        b.screenshot(&to);
    })
    .await
    .unwrap();
    let _ = srv.stop().await;
}
