//! Rules end to end: `augur rules check|test` on the upstream promtool examples and our own
//! rule tests, and the rule manager inside a real server (`/api/v1/rules`, `/api/v1/alerts`,
//! reload keeping the old rules on error).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use augur_rules::unittest::{run_file, TestOptions};
use common::*;
use serde_json::Value;

fn repo() -> PathBuf {
    // Read at run time: the target dir is shared between clones.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..")
}

fn conformance() -> Option<PathBuf> {
    let dir = repo().join("../shared/conformance/rules");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent, so the promtool examples are not run",
            dir.display()
        );
        None
    }
}

fn test_file(path: &Path, run: &[&str], ignore_unknown_fields: bool) -> (String, bool) {
    let opts = TestOptions {
        run: run.iter().map(|r| regex::Regex::new(r).unwrap()).collect(),
        ignore_unknown_fields,
    };
    // Deep expressions recurse; run on a big stack as the CLI does.
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || run_file(&path, &opts, &augur_api::rules_cli::backend))
        .unwrap()
        .join()
        .unwrap()
}

/// Every example of `../shared/conformance/rules/` ends as its SOURCE.md says.
#[test]
fn promtool_examples_behave_as_upstream() {
    let Some(dir) = conformance() else { return };
    // (file, --run regexes, --ignore-unknown-fields, passes)
    let cases: &[(&str, &[&str], bool, bool)] = &[
        ("long-period.yml", &[], false, true),
        ("no-test-group-interval.yml", &[], false, true),
        ("start-time-test.yml", &[], false, true),
        ("at-modifier-test.yml", &[], false, true),
        ("negative-offset-test.yml", &[], false, true),
        ("failing.yml", &[], false, false),
        ("bad-input-series.yml", &[], false, false),
        ("bad-promql.yml", &[], false, false),
        ("bad-rules-syntax-test.yml", &[], false, false),
        ("bad-rules-error-test.yml", &[], false, false),
        ("rules_run.yml", &[], false, false),
        ("rules_run.yml", &["correct"], false, true),
        ("rules_run.yml", &["wrong"], false, false),
        ("rules_run.yml", &["correct", "wrong"], false, false),
        ("rules_run_extrafields.yml", &[], true, true),
        ("rules_run_extrafields.yml", &[], false, false),
        ("rules_run_fuzzy.yml", &["correct"], false, true),
        ("rules_run_fuzzy.yml", &["wrong"], false, false),
        ("rules_run_no_fuzzy.yml", &[], false, false),
    ];
    for (file, run, ignore, passes) in cases {
        let (report, ok) = test_file(&dir.join(file), run, *ignore);
        assert_eq!(ok, *passes, "{file} --run {run:?}:\n{report}");
    }
    // The failures are the right ones, with expected against got.
    let (report, _) = test_file(&dir.join("failing.yml"), &[], false);
    assert!(
        report.contains("expr: \"test\", time: 0s,\n        exp: {__name__=\"test\"} 1E+00\n        got: {__name__=\"test\"} 0E+00"),
        "{report}"
    );
    assert!(
        report.contains("alertname: AlwaysFiring, time: 5m"),
        "{report}"
    );
    let (report, _) = test_file(&dir.join("bad-rules-syntax-test.yml"), &[], false);
    assert!(
        report.contains("bad-rules-syntax.yml: 7:15: group \"bad-syntax\", rule 1, \"x\": could not parse expression"),
        "{report}"
    );
    let (report, _) = test_file(&dir.join("bad-rules-error-test.yml"), &[], false);
    assert!(
        report.contains("rule: joined, time: 0s, err: found duplicate series"),
        "{report}"
    );
    let (report, _) = test_file(&dir.join("rules_run_extrafields.yml"), &[], false);
    assert!(
        report.contains("field namespace not found in type rulefmt.RuleGroup"),
        "{report}"
    );

    // unittest.yml passes upstream, its native-histogram group included; so must it here.
    let (report, ok) = test_file(&dir.join("unittest.yml"), &[], false);
    assert!(ok, "{report}");
}

/// Our own rule tests: every `*_test.yml` under `testdata/rules/` passes.
#[test]
fn testdata_rule_tests_pass() {
    let mut files = Vec::new();
    collect_tests(&repo().join("testdata/rules"), &mut files);
    assert!(!files.is_empty());
    let mut failed = Vec::new();
    for f in &files {
        let (report, ok) = test_file(f, &[], false);
        if !ok {
            failed.push(report);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn collect_tests(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_tests(&p, out);
        } else if p.to_string_lossy().ends_with("_test.yml") {
            out.push(p);
        }
    }
    out.sort();
}

fn augur(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `augur rules check`: exit codes as promtool's, the lint as warnings or, with `--strict`,
/// errors.
#[test]
fn rules_check_cli() {
    let dir = tempfile::TempDir::new().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n",
    )
    .unwrap();
    let never = dir.path().join("never.yml");
    std::fs::write(
        &never,
        "groups:\n- name: z\n  rules:\n  - alert: Z\n    expr: sum by (svc) (x) / avg(x) > 3\n",
    )
    .unwrap();
    let s = |p: &Path| p.to_string_lossy().into_owned();

    let (code, out, _) = augur(&["rules", "check", &s(&good)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS: 1 rules found"), "{out}");

    let (code, out, err) = augur(&["rules", "check", &s(&good), &s(&bad)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(
        err.contains("bad.yml: 5:11: group \"g\", rule 1, \"A\": could not parse expression"),
        "{err}"
    );

    let (code, out, _) = augur(&["rules", "check", &s(&never)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARNING: ") && out.contains("never.yml:4: group \"z\", rule \"Z\""),
        "{out}"
    );
    assert!(
        out.contains("only matches series whose svc label is empty"),
        "{out}"
    );
    let (code, _, err) = augur(&["rules", "check", "--strict", &s(&never)]);
    assert_eq!(code, 1);
    assert!(err.contains("never.yml:4:"), "{err}");

    let (code, _, err) = augur(&["rules", "test", "--run", "(", &s(&good)]);
    assert_eq!(code, 2, "{err}");
}

const RULES: &str = "groups:
- name: live
  interval: 1s
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: InstanceDown
    expr: up == 0
    labels:
      severity: page
    annotations:
      summary: '{{ $labels.instance }} down ({{ $externalLabels.cluster }})'
";

async fn wait_for(srv: &TestServer, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = srv.get(what).await;
        assert_eq!(code, 200, "{body}");
        if ok(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never reached the expected state: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server evaluates its rule files, shows them in `/api/v1/rules` and `/api/v1/alerts`, and a
/// reload with a broken file keeps the running rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runs_rules_and_reports_them() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config_path(dir.path()),
        "global:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: test\nrule_files:\n  - rules/*.yml\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let rules_file = dir.path().join("rules/live.yml");
    std::fs::write(&rules_file, RULES).unwrap();
    let srv = TestServer::start_in(dir, &["--web.external-url=http://augur.example:9090"]).await;

    // Samples stamped "now" for the next minute, so every evaluation sees them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let pts = |v: f64| -> Vec<(i64, f64)> { (0..60).map(|i| (now + i * 1000, v)).collect() };
    let req = request(vec![
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "a")],
            &pts(1.0),
        ),
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "b")],
            &pts(0.0),
        ),
    ]);
    assert_eq!(srv.write_v1(&req).await.0, 204);

    let body = wait_for(&srv, "/api/v1/alerts", |b| {
        b["data"]["alerts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    let alert = &body["data"]["alerts"][0];
    assert_eq!(
        alert["labels"],
        serde_json::json!({"alertname": "InstanceDown", "instance": "b", "job": "api", "severity": "page"})
    );
    assert_eq!(alert["annotations"]["summary"], "b down (test)");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["value"], "0e+00");

    let (code, body) = srv.get("/api/v1/rules").await;
    assert_eq!(code, 200);
    let g = &body["data"]["groups"][0];
    assert_eq!(g["name"], "live");
    assert!(
        g["file"].as_str().unwrap().ends_with("rules/live.yml"),
        "{g}"
    );
    assert_eq!(g["interval"], 1.0);
    assert_eq!(g["limit"], 0);
    let rec = &g["rules"][0];
    assert_eq!(rec["type"], "recording");
    assert_eq!(rec["name"], "job:up:sum");
    assert_eq!(rec["query"], "sum by (job) (up)");
    assert_eq!(rec["health"], "ok");
    assert!(
        rec["lastEvaluation"].as_str().unwrap().starts_with("20"),
        "{rec}"
    );
    let al = &g["rules"][1];
    assert_eq!(al["type"], "alerting");
    assert_eq!(al["state"], "firing");
    assert_eq!(al["duration"], 0.0);
    assert_eq!(al["labels"]["severity"], "page");
    assert_eq!(al["alerts"].as_array().unwrap().len(), 1);

    // Filters.
    let (_, body) = srv.get("/api/v1/rules?type=record").await;
    assert_eq!(
        body["data"]["groups"][0]["rules"].as_array().unwrap().len(),
        1
    );
    let (_, body) = srv.get("/api/v1/rules?rule_name[]=InstanceDown").await;
    assert_eq!(
        body["data"]["groups"][0]["rules"][0]["name"],
        "InstanceDown"
    );
    let (_, body) = srv.get("/api/v1/rules?rule_group[]=nosuch").await;
    assert_eq!(body["data"]["groups"], serde_json::json!([]));
    let (code, body) = srv.get("/api/v1/rules?type=bogus").await;
    assert_eq!((code, body["errorType"].as_str()), (400, Some("bad_data")));

    // The recording rule's output is queryable.
    let body = wait_for(&srv, "/api/v1/query?query=job:up:sum", |b| {
        b["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    })
    .await;
    assert_eq!(body["data"]["result"][0]["value"][1], "1");

    // A broken rule file: the reload fails and the running rules stay.
    std::fs::write(
        &rules_file,
        "groups:\n- name: live\n  rules:\n  - alert: X\n    expr: up ==\n",
    )
    .unwrap();
    let resp = srv.client.post(srv.url("/-/reload")).send().await.unwrap();
    assert!(!resp.status().is_success());
    let text = resp.text().await.unwrap();
    assert!(text.contains("live.yml: 5:11:"), "{text}");
    let (_, body) = srv.get("/api/v1/rules").await;
    assert_eq!(
        body["data"]["groups"][0]["rules"].as_array().unwrap().len(),
        2
    );
    let metrics = srv.metrics().await;
    assert!(
        metrics.contains("augur_config_last_reload_successful 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("augur_rule_files_last_load_successful 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("prometheus_rule_group_interval_seconds{rule_group=\"")
            && metrics.contains("live.yml;live\"} 1.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("prometheus_rule_group_iterations_total{rule_group="),
        "{metrics}"
    );

    // Fixed: the new set replaces the old.
    std::fs::write(
        &rules_file,
        "groups:\n- name: other\n  rules:\n  - record: r\n    expr: vector(1)\n",
    )
    .unwrap();
    let resp = srv.client.post(srv.url("/-/reload")).send().await.unwrap();
    assert!(resp.status().is_success());
    let (_, body) = srv.get("/api/v1/rules").await;
    assert_eq!(body["data"]["groups"][0]["name"], "other");
    srv.stop().await;
}
