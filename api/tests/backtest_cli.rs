//! The real `augur` binary's backtest commands as users run them: import, replay, backtest and
//! nab on files in a temp dir, their exit codes, summaries and error messages.

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

fn augur(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .output()
        .expect("run augur")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Three days of `x{job=...}` every 5 minutes for two jobs, as OpenMetrics; job "api" spikes
/// on day 3 at 12:00 for 20 minutes.
fn history() -> String {
    let mut s = String::from("# TYPE x gauge\n");
    let t0 = 1_790_000_000i64 - 1_790_000_000 % 86_400;
    for job in ["api", "db"] {
        for i in 0..3 * 288 {
            let t = t0 + i * 300;
            let spike = job == "api" && (2 * 288 + 144..2 * 288 + 148).contains(&i);
            let v = if spike {
                500.0
            } else {
                10.0 + ((i * 37) % 11) as f64
            };
            s.push_str(&format!("x{{job=\"{job}\"}} {v} {t}\n"));
        }
    }
    s.push_str("# EOF\n");
    s
}

#[test]
fn import_replay_and_backtest_through_the_binary() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let om = dir.path().join("history.om");
    std::fs::write(&om, history()).unwrap();
    let store = format!("--storage.tsdb.path={}", path(&data));
    let retention = "--storage.tsdb.retention.time=10y";

    let o = augur(&[
        "tsdb",
        "import",
        "openmetrics",
        &store,
        retention,
        path(&om),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("imported 1728 samples of 2 series from 1 file(s)"),
        "{out}"
    );
    assert!(out.contains("none skipped"), "{out}");
    assert!(err.contains("read as OpenMetrics"), "{err}");

    let t0 = 1_790_000_000i64 - 1_790_000_000 % 86_400;
    let spike = t0 + (2 * 288 + 144) * 300;
    let incidents = dir.path().join("incidents.yml");
    std::fs::write(
        &incidents,
        format!("api: [[{}, {}]]\ndb: []\n", spike - 600, spike + 3000),
    )
    .unwrap();
    let inc = format!("--incidents={}", path(&incidents));
    let o = augur(&[
        "backtest",
        &store,
        retention,
        "--expr=abs(zscore(x[1d]))",
        &inc,
        "--target-precision=0.5",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("backtest standard="), "{out}");
    assert!(out.contains("windows detected 1 of 1"), "{out}");
    assert!(out.contains("calibrated for precision >= 0.5"), "{out}");

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 5m\n    rules:\n      - alert: Spike\n        expr: x > 100\n        for: 5m\n",
    )
    .unwrap();
    let start = format!("--start={}", t0 + 86_400);
    let o = augur(&["rules", "replay", &store, retention, &start, path(&rules)]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("alert Spike: 1 alert(s) would have fired, firing 15m in all"),
        "{out}"
    );
    assert!(
        out.contains("{alertname=\"Spike\", job=\"api\"} from "),
        "{out}"
    );
    assert!(out.contains("wrote "), "{out}");
    // The replayed ALERTS are in the store now: a second replay finds them already there.
    let o = augur(&["rules", "replay", &store, retention, &start, path(&rules)]);
    assert!(o.status.success());
    assert!(!text(&o).0.contains("conflict"), "{}", text(&o).0);
}

#[test]
fn bad_input_is_one_clear_error_and_exit_code_2() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let store = format!("--storage.tsdb.path={}", path(&data));
    let om = dir.path().join("a.om");
    std::fs::write(&om, "x 1 100\n# EOF\n").unwrap();
    assert!(augur(&[
        "tsdb",
        "import",
        "openmetrics",
        &store,
        "--storage.tsdb.retention.time=100y",
        path(&om)
    ])
    .status
    .success());

    let inc = dir.path().join("inc.yml");
    std::fs::write(&inc, "x: [[5, 10], [8, 20]]\n").unwrap();
    let o = augur(&[
        "backtest",
        &store,
        "--expr=x",
        &format!("--incidents={}", path(&inc)),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("inc.yml: key \"x\": windows 1 and 2 overlap"),
        "{err}"
    );

    std::fs::write(&inc, "x: [[5, 10]]\n").unwrap();
    let incf = format!("--incidents={}", path(&inc));
    for (args, want) in [
        (vec!["--expr=sum(", "--start=10", "--end=20"], "parse error"),
        (
            vec!["--expr=x", "--start=20", "--end=10"],
            "--end: the end of the time range is before its start",
        ),
        (
            vec!["--expr=x", "--step=0s"],
            "the step must be positive (or auto)",
        ),
        (
            vec!["--expr=x", "--key-label=nope"],
            "the incidents file names no key the expression scores",
        ),
    ] {
        let mut a = vec![
            "backtest",
            store.as_str(),
            incf.as_str(),
            "--storage.tsdb.retention.time=100y",
        ];
        a.extend(args);
        let o = augur(&a);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(want), "{a:?}: {err}");
    }

    // A store held by another process (a running server) is refused, naming the lock.
    let held = augur_storage::Tsdb::open(&data, augur_storage::Options::default()).unwrap();
    let o = augur(&["tsdb", "import", "openmetrics", &store, path(&om)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("LOCK") && err.contains("augur serve"), "{err}");
    drop(held);

    // --strict: the first malformed line stops the import, exit 1, nothing of the file written.
    let bad = dir.path().join("bad.om");
    std::fs::write(&bad, "y 1 100\ny{ 2 200\n# EOF\n").unwrap();
    let o = augur(&[
        "tsdb",
        "import",
        "openmetrics",
        &store,
        "--strict",
        "--storage.tsdb.retention.time=100y",
        path(&bad),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("bad.om:2:2: label set is not closed"), "{err}");
    assert!(out.contains("imported 0 samples"), "{out}");
}

#[test]
fn nab_on_a_small_corpus() {
    let dir = TempDir::new().unwrap();
    let nab = dir.path().join("nab");
    std::fs::create_dir_all(nab.join("data/cat")).unwrap();
    std::fs::create_dir_all(nab.join("labels")).unwrap();
    let mut csv = String::from("timestamp,value\n");
    for i in 0..600 {
        let (h, m) = (i / 12, (i % 12) * 5);
        let v = if i == 400 { 90.0 } else { (i % 7) as f64 };
        csv.push_str(&format!(
            "2014-04-{:02} {:02}:{:02}:00,{v}\n",
            1 + h / 24,
            h % 24,
            m
        ));
    }
    // A repeated timestamp (a daylight-saving artefact) keeps its row.
    csv.push_str("2014-04-03 01:55:00,3\n");
    std::fs::write(nab.join("data/cat/a.csv"), csv).unwrap();
    std::fs::write(
        nab.join("labels/combined_windows.json"),
        r#"{"cat/a.csv": [["2014-04-02 08:50:00.000000", "2014-04-02 10:00:00.000000"]]}"#,
    )
    .unwrap();
    let o = augur(&[
        "nab",
        &format!("--data={}", path(&nab)),
        "--expr=abs(zscore(nab_value[6h]))",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(err.contains("imported 601 samples of 1 series"), "{err}");
    assert!(err.contains("1 rows moved 1 ms"), "{err}");
    assert!(out.contains("windows detected 1 of 1"), "{out}");
    // The spike is the window's 7th of 15 rows: A(-9/15)/A(-1) of the best score.
    let last = out.lines().last().unwrap();
    let standard: f64 = last
        .strip_prefix("backtest standard=")
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(standard > 90.0, "{out}");
}
