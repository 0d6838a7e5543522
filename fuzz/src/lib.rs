//! Augur's fuzz targets and the mutation fuzzer that drives them on the stable toolchain.
//!
//! A target ([`targets::Target`]) takes bytes and feeds them to one of Augur's parsers or
//! decoders the way the server does (remote-write bodies, PromQL with its evaluation, rule
//! files, templates, the exposition importer's lines, the web config, matcher regexes, API
//! parameters, and whole HTTP requests to a real server). It panics on anything that would be a bug as a user sees it: a panic of the
//! code under test, or an error the server would answer with a 500.
//!
//! The fuzzer ([`fuzz`]) is not coverage-guided (that needs a nightly toolchain and its
//! sanitizer passes); it mutates a corpus of seeds with byte and token edits (each target
//! brings a dictionary of its syntax), keeps inputs the target accepted as new seeds, and
//! records every input that panicked. `augur-fuzz` (`src/main.rs`) runs targets for a time in
//! child processes, so an abort or a hang is caught too; the tests run each target for a fixed
//! number of inputs and replay every file under `fuzz/regressions/`.

pub mod http;
pub mod remote_write;
pub mod targets;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use targets::{Target, TARGETS};

/// A small, fast, seedable generator (xorshift64*); quality is ample for choosing mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Bytes that often break parsers.
const INTERESTING: &[u8] = &[
    0, 0x7f, 0x80, 0xff, b'\\', b'"', b'\'', b'`', b'{', b'}', b'[', b']', b'(', b')', b',', b'\n',
    b' ', b':', b'-', b'.', b'0', b'9', b'e', b'$',
];

/// Applies one to four random edits to `input`, using `dict` (tokens of the target's syntax)
/// and `corpus` (for splicing); the result is at most `max_len` bytes.
pub fn mutate(
    rng: &mut Rng,
    input: &mut Vec<u8>,
    dict: &[&str],
    corpus: &[Vec<u8>],
    max_len: usize,
) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        let pos = rng.below(len + 1);
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 | 3 if !dict.is_empty() => {
                let tok = dict[rng.below(dict.len())].as_bytes();
                input.splice(pos..pos, tok.iter().copied());
            }
            4 if len > 0 => {
                let end = pos + rng.below(len - pos.min(len) + 1).min(16);
                input.drain(pos.min(len)..end.min(len));
            }
            5 if len > 0 => {
                // Duplicate a slice of itself (nesting, repetition).
                let a = rng.below(len);
                let b = a + 1 + rng.below((len - a).min(64));
                let piece: Vec<u8> = input[a..b].to_vec();
                input.splice(pos..pos, piece);
            }
            6 if !corpus.is_empty() => {
                // Splice: keep a prefix, take another input's tail.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    input.truncate(pos);
                    input.extend_from_slice(&other[from..]);
                }
            }
            7 if !dict.is_empty() && len > 0 => {
                // Replace a slice with a token.
                let end = (pos + 1 + rng.below(8)).min(len);
                let tok = dict[rng.below(dict.len())].as_bytes();
                let pos = pos.min(len - 1);
                input.splice(pos..end.max(pos), tok.iter().copied());
            }
            8 => {
                let n = 1 + rng.below(4);
                for _ in 0..n {
                    input.insert(pos.min(input.len()), rng.next_u64() as u8);
                }
            }
            9 if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            _ => {
                // A random multi-byte character (UTF-8 names, escapes).
                let c = char::from_u32(0x80 + rng.below(0x2_0000) as u32).unwrap_or('\u{fffd}');
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                input.splice(pos.min(input.len())..pos.min(input.len()), s.bytes());
            }
        }
    }
    input.truncate(max_len);
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Inputs(u64),
    Time(Duration),
}

/// One input that broke a target.
#[derive(Debug, Clone)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub inputs: u64,
    /// Inputs the target accepted (parsed, decoded) rather than refused with an error.
    pub accepted: u64,
    pub crashes: Vec<Crash>,
    pub elapsed: Duration,
}

static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

thread_local! {
    /// Set while [`run_one`] runs a target on this thread.
    static IN_TARGET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs a panic hook that, for panics inside [`run_one`], keeps the message (with its
/// location) for it instead of printing; any other panic goes to the previous hook, so a
/// failing assertion still prints. Call once per process before fuzzing (more is harmless).
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.with(std::cell::Cell::get) {
                return previous(info);
            }
            let msg = match info.payload().downcast_ref::<&str>() {
                Some(s) => (*s).to_owned(),
                None => info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            };
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            *PANIC_MESSAGE.lock().unwrap_or_else(|e| e.into_inner()) = format!("{msg}{at}");
        }));
    });
}

/// Runs `target` on one input: `Ok(accepted)`, or the panic's message.
pub fn run_one(target: &Target, input: &[u8]) -> Result<bool, String> {
    IN_TARGET.with(|f| f.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    IN_TARGET.with(|f| f.set(false));
    r.map_err(|_| std::mem::take(&mut *PANIC_MESSAGE.lock().unwrap_or_else(|e| e.into_inner())))
}

/// Fuzzes `target` within `budget`, starting from its seeds and `extra` inputs (a corpus
/// directory, regressions). `before_each` sees every input before it runs (the child process
/// saves it, so an abort can be reported with its input).
pub fn fuzz(
    target: &Target,
    budget: Budget,
    seed: u64,
    extra: &[Vec<u8>],
    mut before_each: impl FnMut(&[u8]),
) -> Summary {
    let mut rng = Rng::new(seed);
    // The seeds stay; accepted mutants join a pool of their own. Without coverage feedback a
    // pool that took every accepted input would drift to the cheapest ones (a bare number, an
    // empty request) and stop exploring, so the pool takes only inputs it has not seen, at
    // least half as long as the average seed, and mutation starts from a seed half the time.
    let seeds: Vec<Vec<u8>> = (target.seeds)()
        .into_iter()
        .chain(extra.iter().cloned())
        .chain(std::iter::once(Vec::new()))
        .collect();
    let min_len = seeds.iter().map(Vec::len).sum::<usize>() / seeds.len() / 2;
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let started = Instant::now();
    let mut sum = Summary::default();
    let mut seen_messages: Vec<String> = Vec::new();
    loop {
        match budget {
            Budget::Inputs(n) if sum.inputs >= n => break,
            Budget::Time(d) if sum.inputs % 16 == 0 && started.elapsed() >= d => break,
            _ => {}
        }
        let from_seed = pool.is_empty() || rng.chance(2);
        let mut input = if from_seed {
            seeds[rng.below(seeds.len())].clone()
        } else {
            pool[rng.below(pool.len())].clone()
        };
        // Seeds themselves run once in a while too.
        if !rng.chance(20) {
            let splice = if rng.chance(2) || pool.is_empty() {
                &seeds
            } else {
                &pool
            };
            mutate(&mut rng, &mut input, target.dict, splice, target.max_len);
        }
        before_each(&input);
        sum.inputs += 1;
        match run_one(target, &input) {
            Ok(true) => {
                sum.accepted += 1;
                if input.len() >= min_len && seen.insert(hash(&input)) {
                    if pool.len() < 4096 {
                        pool.push(input);
                    } else {
                        let i = rng.below(pool.len());
                        pool[i] = input;
                    }
                }
            }
            Ok(false) => {}
            Err(message) => {
                // One example per distinct message (location included) is enough.
                if !seen_messages.contains(&message) {
                    seen_messages.push(message.clone());
                    sum.crashes.push(Crash { input, message });
                }
            }
        }
    }
    sum.elapsed = started.elapsed();
    sum
}

/// 64-bit FNV-1a.
fn hash(input: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A stable file name for a crashing input: its 64-bit FNV-1a hash in hex.
pub fn input_name(input: &[u8]) -> String {
    format!("{:016x}", hash(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_the_length_limit_and_change_inputs() {
        let mut rng = Rng::new(1);
        let corpus = vec![b"rate(x[5m])".to_vec()];
        let mut changed = 0;
        for _ in 0..1000 {
            let mut x = corpus[0].clone();
            mutate(&mut rng, &mut x, &["sum(", "[5m]"], &corpus, 32);
            assert!(x.len() <= 32);
            changed += usize::from(x != corpus[0]);
        }
        assert!(changed > 900, "{changed} of 1000 inputs changed");
    }
}
