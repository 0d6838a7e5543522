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
