//! A delete is all or nothing under `kill -9`: a real child process fills a real RocksDB
//! (persisted chunks, in-memory chunks, WAL), starts deleting a range from 300 series and is
//! killed with SIGKILL after a delay that differs per round, from before the delete starts
//! to after it returns. After each restart every one of those series must hold all its
//! samples (the old state) or none in the range (the new state), all of them the same, and
//! the other series everything.
//!
//! Runs without the libtest harness so the same binary can be the child
//! (`delete_crash child DIR`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use augur_storage::{Appendable, Labels, Matcher, Options, Queryable, Tsdb};

const MIN: i64 = 60_000;
const DOOMED: usize = 300;
const KEPT: usize = 50;
const MINUTES: i64 = 600;
/// The deleted range, in minutes, inclusive.
const FROM: i64 = 100;
const TO: i64 = 499;

fn labels(job: &str, i: usize) -> Labels {
    Labels::new([("__name__", "x"), ("job", job), ("i", &i.to_string())]).unwrap()
}

fn options() -> Options {
    Options {
        background: false,
        retention: Duration::from_secs(100 * 365 * 86_400),
        ..Options::default()
    }
}

fn child(dir: &str) {
    let db = Tsdb::open(dir, options()).expect("child opens the store");
    let all: Vec<Labels> = (0..DOOMED)
        .map(|i| labels("a", i))
        .chain((0..KEPT).map(|i| labels("b", i)))
        .collect();
    // The first 400 minutes sealed into persisted chunks, the rest only in memory and the WAL.
    for (from, to) in [(0, 400), (400, MINUTES)] {
        let mut app = db.appender();
        for l in &all {
            for m in from..to {
                app.append(l, m * MIN, m as f64).unwrap();
            }
        }
        assert!(app.commit().unwrap().rejected.is_empty());
        if from == 0 {
            db.checkpoint().unwrap();
            db.seal_all().unwrap();
        }
    }
    println!("deleting");
    db.delete_series(&[vec![Matcher::equal("job", "a")]], FROM * MIN, TO * MIN)
        .unwrap();
    println!("deleted");
    std::thread::sleep(Duration::from_secs(600));
}

/// Minutes each series holds, by job.
fn held(dir: &str, job: &str) -> Vec<Vec<i64>> {
    let db = Tsdb::open(dir, options()).expect("the store opens after the crash");
    let got = db
        .querier(i64::MIN + 1, i64::MAX)
        .unwrap()
        .select(&[Matcher::equal("job", job)])
        .unwrap();
    got.iter()
        .map(|s| {
            s.samples
                .iter()
                .map(|x| {
                    assert_eq!(x.v, (x.t / MIN) as f64);
                    x.t / MIN
                })
                .collect()
        })
        .collect()
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Killed before the delete returned, found undone.
    Old,
    /// Killed before the delete returned, found done (finished at the restart, or the kill
    /// came after the commit point's work but before the child could say so).
    Finished,
    /// Killed after the delete returned.
    Done,
}

fn round(delay: Option<Duration>) -> Outcome {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().to_str().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut proc = Command::new(exe)
        .args(["child", path])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "deleting");
    match delay {
        Some(d) => std::thread::sleep(d),
        None => assert_eq!(lines.next().unwrap().unwrap(), "deleted"),
    }
    proc.kill().unwrap(); // SIGKILL
    proc.wait().unwrap();
    let returned = delay.is_none() || lines.any(|l| l.is_ok_and(|l| l == "deleted"));

    let full: Vec<i64> = (0..MINUTES).collect();
    let cut: Vec<i64> = (0..FROM).chain(TO + 1..MINUTES).collect();
    let doomed = held(path, "a");
    assert_eq!(doomed.len(), DOOMED);
    let done = doomed[0] == cut;
    for (i, m) in doomed.iter().enumerate() {
        assert!(
            m == if done { &cut } else { &full },
            "after a kill {delay:?} into the delete, series {i} holds {} samples, series 0 {}: \
             a mix of the old and new states",
            m.len(),
            doomed[0].len()
        );
    }
    let kept = held(path, "b");
    assert_eq!(kept.len(), KEPT);
    assert!(
        kept.iter().all(|m| *m == full),
        "untouched series lost samples"
    );
    match (done, returned) {
        (false, false) => Outcome::Old,
        (true, false) => Outcome::Finished,
        (true, true) => Outcome::Done,
        (false, true) => panic!("the delete returned, yet after a kill -9 it is undone"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2]);
        return;
    }
    let delays_us = [
        0u64, 500, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000,
    ];
    let outcomes: Vec<Outcome> = delays_us
        .iter()
        .map(|&us| Some(Duration::from_micros(us)))
        .chain([None])
        .map(round)
        .collect();
    let count = |o| outcomes.iter().filter(|&&x| x == o).count();
    // How many rounds land inside the delete depends on the machine's speed; each round's
    // state is checked whatever it is.
    println!(
        "delete_crash: {} kill -9 rounds: {} before the delete's commit point (old state), {} \
         during the delete (finished at restart), {} after it returned",
        outcomes.len(),
        count(Outcome::Old),
        count(Outcome::Finished),
        count(Outcome::Done)
    );
    println!("1 passed, 0 failed");
}
