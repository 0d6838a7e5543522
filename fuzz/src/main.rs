//! `augur-fuzz`: runs Augur's fuzz targets for a time, each in a child process so that an
//! abort (stack overflow, out of memory) or a hang is caught with the input that caused it.
//!
//! ```text
//! augur-fuzz [--seconds N] [--seed S] [--crashes DIR] [--corpus DIR] [TARGET...]
//! augur-fuzz --list
//! ```
//!
//! Every input that panicked, aborted or hung is written to `--crashes` (default
//! `fuzz/crashes`) as `<target>/<hash>` with a `.txt` beside it saying what happened; a crash
//! becomes a regression test when the file is moved to `fuzz/regressions/<target>/` and the
//! bug fixed. Inputs under `--corpus/<target>/` (default `fuzz/corpus`, if present) join the
//! seeds. Exit status 1 when anything was found.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_fuzz::{fuzz, input_name, quiet_panics, targets, Budget, TARGETS};

/// An input running longer than this is a hang (queries time out after 2 s).
const HANG: Duration = Duration::from_secs(20);

struct Args {
    seconds: u64,
    seed: u64,
    crashes: PathBuf,
    corpus: PathBuf,
    targets: Vec<String>,
    child: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: augur-fuzz [--seconds N (default 10)] [--seed S] [--crashes DIR] [--corpus DIR] [TARGET...]\n       augur-fuzz --list"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        seconds: 10,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        crashes: root.join("crashes"),
        corpus: root.join("corpus"),
        targets: Vec::new(),
        child: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--seconds" => a.seconds = value().parse().unwrap_or_else(|_| usage()),
            "--seed" => a.seed = value().parse().unwrap_or_else(|_| usage()),
            "--crashes" => a.crashes = PathBuf::from(value()),
            "--corpus" => a.corpus = PathBuf::from(value()),
            "--child" => a.child = true,
            "--list" => {
                for t in TARGETS {
                    println!("{:14} {}", t.name, t.what);
                }
                std::process::exit(0);
            }
            "-h" | "--help" => usage(),
            name if !name.starts_with('-') => {
                if targets::target(name).is_none() {
                    eprintln!(
                        "augur-fuzz: no target {name:?}; the targets are: {}",
                        TARGETS
                            .iter()
                            .map(|t| t.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    std::process::exit(2);
                }
                a.targets.push(name.to_owned());
            }
            _ => usage(),
        }
    }
    if a.targets.is_empty() {
        a.targets = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    }
    a
}

fn read_dir_inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "txt"))
        .collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn save_crash(dir: &Path, target: &str, input: &[u8], what: &str) -> PathBuf {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("create the crashes directory");
    let path = dir.join(input_name(input));
    std::fs::write(&path, input).expect("write the crashing input");
    std::fs::write(path.with_extension("txt"), format!("{what}\n")).expect("write its note");
    path
}

/// The child: fuzzes one target, saving each input to `last` before running it, and prints
/// `summary inputs=… accepted=… crashes=…` at the end.
fn child(args: &Args) {
    let target = targets::target(&args.targets[0]).expect("checked by parse_args");
    quiet_panics();
    let last = args.crashes.join(format!(".{}-last-input", target.name));
    std::fs::create_dir_all(&args.crashes).expect("create the crashes directory");
    let mut extra = read_dir_inputs(&args.corpus.join(target.name));
    extra.extend(read_dir_inputs(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("regressions")
            .join(target.name),
    ));
    // The watchdog: an input running past HANG is saved and the child exits with status 3.
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let clock = Instant::now();
    {
        let started_ms = Arc::clone(&started_ms);
        let last = last.clone();
        let (crashes, name) = (args.crashes.clone(), target.name);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let s = started_ms.load(Ordering::Relaxed);
            let now = clock.elapsed().as_millis() as u64;
            if s != u64::MAX && now.saturating_sub(s) > HANG.as_millis() as u64 {
                let input = std::fs::read(&last).unwrap_or_default();
                let at = save_crash(&crashes, name, &input, "hang: ran past 20 s");
                println!("hang {}", at.display());
                let _ = std::io::stdout().flush();
                std::process::exit(3);
            }
        });
    }
    // One open file rewritten in place: two system calls per input.
    let saved = std::fs::File::create(&last).expect("create the last-input file");
    let sum = fuzz(
        target,
        Budget::Time(Duration::from_secs(args.seconds)),
        args.seed,
        &extra,
        |input| {
            use std::os::unix::fs::FileExt;
            saved
                .write_all_at(input, 0)
                .and_then(|()| saved.set_len(input.len() as u64))
                .expect("save the input about to run");
            started_ms.store(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
        },
    );
    for c in &sum.crashes {
        let at = save_crash(
            &args.crashes,
            target.name,
            &c.input,
            &format!("panic: {}", c.message),
        );
        println!("panic {} {}", at.display(), c.message.replace('\n', " "));
    }
    let _ = std::fs::remove_file(&last);
    println!(
        "summary inputs={} accepted={} crashes={}",
        sum.inputs,
        sum.accepted,
        sum.crashes.len()
    );
}

fn main() {
    let args = parse_args();
    if args.child {
        child(&args);
        return;
    }
    let exe = std::env::current_exe().expect("the path of this program");
    let mut found = 0usize;
    for name in &args.targets {
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let (mut inputs, mut accepted, mut restarts) = (0u64, 0u64, 0u32);
        let mut seed = args.seed;
        eprintln!("augur-fuzz: {name} for {} s", args.seconds);
        // A child that aborted or hung is restarted with another seed until time is up.
        while Instant::now() < deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .max(1);
            let mut proc = Command::new(&exe)
                .args([
                    "--child",
                    "--seconds",
                    &left.to_string(),
                    "--seed",
                    &seed.to_string(),
                ])
                .arg("--crashes")
                .arg(&args.crashes)
                .arg("--corpus")
                .arg(&args.corpus)
                .arg(name)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a fuzzing child");
            let mut summary = false;
            for line in BufReader::new(proc.stdout.take().expect("piped")).lines() {
                let line = line.unwrap_or_default();
                if let Some(rest) = line.strip_prefix("summary ") {
                    summary = true;
                    for kv in rest.split(' ') {
                        match kv.split_once('=') {
                            Some(("inputs", v)) => inputs += v.parse::<u64>().unwrap_or(0),
                            Some(("accepted", v)) => accepted += v.parse::<u64>().unwrap_or(0),
                            _ => {}
                        }
                    }
                } else {
                    found += 1;
                    eprintln!("augur-fuzz: {name}: {line}");
                }
            }
            let status = proc.wait().expect("wait for the child");
            if !summary && !status.success() && status.code() != Some(3) {
                let last = args.crashes.join(format!(".{name}-last-input"));
                let input = std::fs::read(&last).unwrap_or_default();
                let at = save_crash(&args.crashes, name, &input, &format!("abort: {status}"));
                found += 1;
                eprintln!("augur-fuzz: {name}: abort ({status}) {}", at.display());
            }
            if summary {
                break;
            }
            restarts += 1;
            seed = seed.wrapping_add(0x9E37_79B9);
        }
        println!(
            "{name}: {inputs} inputs in {} s ({:.0}/s), {accepted} accepted, {restarts} restarts",
            args.seconds,
            inputs as f64 / args.seconds.max(1) as f64
        );
    }
    if found > 0 {
        println!(
            "augur-fuzz: {found} findings under {}",
            args.crashes.display()
        );
        std::process::exit(1);
    }
    println!("augur-fuzz: nothing found");
}
