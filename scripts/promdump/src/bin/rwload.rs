//! Sends the benchmarks' generated data to one or more remote-write 1.0 receivers (Augur,
//! Prometheus, VictoriaMetrics), the same bytes to each, as a sender would: snappy-compressed
//! `prometheus.WriteRequest`s of at most `--batch` samples, one series' samples together
//! within a request, requests in time order. Used by `scripts/bench-footprint`.
//!
//! Usage: rwload --series N --scrapes S [--batch 2000] [--seed 7] [--interval-ms 15000]
//! [--realtime] URL...
//!
//! Without `--realtime` the scrapes are history that ends now (the first one is `S × 15 s`
//! ago) and are sent as fast as each receiver takes them. With `--realtime` the first scrape
//! is now and each request is sent when the newest sample in it is due (one scrape every
//! 15 s), so the run lasts `S × 15 s`. `--interval-ms` scrapes more or less often than every
//! 15 s (`scripts/soak` sends 100,000 series every second).
//!
//! One thread per URL, each with its own generator (same seed, so the same samples) and one
//! keep-alive HTTP/1.1 connection. A request a receiver refuses (status not 2xx) is counted
//! and reported with its body; the run goes on. Prints one summary line per URL.

#[path = "../labels.rs"]
mod labels;

#[allow(dead_code)]
mod generator {
    include!(concat!(env!("OUT_DIR"), "/generator.rs"));
}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use generator::Generator;

const SCRAPE_INTERVAL_MS: i64 = 15_000;

struct Args {
    series: usize,
    scrapes: usize,
    batch: usize,
    seed: u64,
    interval_ms: i64,
    realtime: bool,
    urls: Vec<String>,
}

fn usage() -> ! {
    eprintln!("usage: rwload --series N --scrapes S [--batch 2000] [--seed 7] [--interval-ms 15000] [--realtime] URL...");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        series: 0,
        scrapes: 0,
        batch: 2000,
        seed: 7,
        interval_ms: SCRAPE_INTERVAL_MS,
        realtime: false,
        urls: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("rwload: {name} needs a number");
                usage()
            })
        };
        match arg.as_str() {
            "--series" => a.series = num("--series") as usize,
            "--scrapes" => a.scrapes = num("--scrapes") as usize,
            "--batch" => a.batch = num("--batch").max(1) as usize,
            "--seed" => a.seed = num("--seed"),
            "--interval-ms" => a.interval_ms = num("--interval-ms").max(1) as i64,
            "--realtime" => a.realtime = true,
            u if u.starts_with("http://") => a.urls.push(u.to_owned()),
            _ => usage(),
        }
    }
    if a.series == 0 || a.scrapes == 0 || a.urls.is_empty() {
        usage();
    }
    a
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// --- protobuf encoding of prometheus.WriteRequest (remote write 1.0) ---

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_uvarint(out, u64::from(field << 3 | 2));
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One `TimeSeries`: labels (field 1), samples (field 2: value as fixed64 field 1, timestamp
/// as varint field 2).
fn encode_series(out: &mut Vec<u8>, labels: &labels::Labels, samples: &[(i64, f64)]) {
    let mut ts = Vec::with_capacity(256);
    let mut buf = Vec::with_capacity(64);
    for (n, v) in labels.iter() {
        buf.clear();
        put_len_field(&mut buf, 1, n.as_bytes());
        put_len_field(&mut buf, 2, v.as_bytes());
        put_len_field(&mut ts, 1, &buf);
    }
    for &(t, v) in samples {
        buf.clear();
        buf.push(1 << 3 | 1);
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
        buf.push(2 << 3);
        put_uvarint(&mut buf, t as u64);
        put_len_field(&mut ts, 2, &buf);
    }
    put_len_field(out, 1, &ts);
}

// --- a minimal keep-alive HTTP/1.1 client ---

struct Conn {
    host: String,
    path: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(url: &str) -> Conn {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Conn {
            host: host.to_owned(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            stream: None,
        }
    }

    /// POSTs `body`; returns the status and the response body.
    fn post(&mut self, body: &[u8]) -> std::io::Result<(u16, String)> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.host)?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        let result = self.exchange(body);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, body: &[u8]) -> std::io::Result<(u16, String)> {
        let r = self.stream.as_mut().expect("connected");
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
             Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n\
             User-Agent: augur-rwload\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        let w = r.get_mut();
        w.write_all(head.as_bytes())?;
        w.write_all(body)?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let (mut len, mut chunked, mut close) = (0usize, false, false);
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "connection" => close = v.to_ascii_lowercase().contains("close"),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            out.resize(len, 0);
            r.read_exact(&mut out)?;
        }
        if close {
            self.stream = None;
        }
        Ok((status, String::from_utf8_lossy(&out).into_owned()))
    }
}

struct Summary {
    samples: u64,
    requests: u64,
    refused: u64,
    bytes: u64,
    elapsed: Duration,
}

fn run(args: &Args, url: &str, start_ms: i64) -> Summary {
    let mut gen = Generator::with_interval(args.series, start_ms, args.seed, args.interval_ms);
    let labels: Vec<labels::Labels> = gen.labels().cloned().collect();
    let n = labels.len();
    let mut conn = Conn::new(url);
    let mut enc = snap::raw::Encoder::new();
    let started = Instant::now();
    let mut sum = Summary {
        samples: 0,
        requests: 0,
        refused: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    // Samples per series in the request being built; scrape_each visits series in labels()
    // order, so index i is series i.
    let per_request = (args.batch / n).max(1);
    let mut pending: Vec<Vec<(i64, f64)>> = vec![Vec::new(); n];
    let mut in_request = 0usize;
    let mut newest = i64::MIN;
    let mut send = |pending: &mut Vec<Vec<(i64, f64)>>, newest: i64, sum: &mut Summary| {
        if args.realtime {
            let wait = newest - now_ms();
            if wait > 0 {
                std::thread::sleep(Duration::from_millis(wait as u64));
            }
        }
        // At most `--batch` samples per request: one scrape of more series than that is
        // split over several requests, whole series each.
        let mut start = 0;
        while start < n {
            let mut body = Vec::with_capacity(args.batch.min(n) * 160);
            let mut count = 0u64;
            let mut i = start;
            while i < n && (count == 0 || count + (pending[i].len() as u64) <= args.batch as u64) {
                let samples = &mut pending[i];
                if !samples.is_empty() {
                    encode_series(&mut body, &labels[i], samples);
                    count += samples.len() as u64;
                    samples.clear();
                }
                i += 1;
            }
            start = i;
            if count == 0 {
                continue;
            }
            let body = enc.compress_vec(&body).expect("snappy");
            let mut tries = 0;
            loop {
                match conn.post(&body) {
                    Ok((s, _)) if (200..300).contains(&s) => break,
                    Ok((s, text)) if s >= 500 && tries < 30 => {
                        tries += 1;
                        eprintln!("rwload: {url}: {s} {}; retrying", text.trim());
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Ok((s, text)) => {
                        sum.refused += 1;
                        if sum.refused <= 5 {
                            eprintln!("rwload: {url}: refused with {s}: {}", text.trim());
                        }
                        break;
                    }
                    Err(e) if tries < 30 => {
                        tries += 1;
                        eprintln!("rwload: {url}: {e}; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Err(e) => panic!("rwload: {url}: {e}"),
                }
            }
            sum.samples += count;
            sum.requests += 1;
            sum.bytes += body.len() as u64;
        }
    };
    for s in 0..args.scrapes {
        let mut i = 0;
        gen.scrape_each(|_, t, v| {
            pending[i].push((t, v));
            newest = newest.max(t);
            i += 1;
        });
        in_request += 1;
        if in_request == per_request || s + 1 == args.scrapes {
            send(&mut pending, newest, &mut sum);
            in_request = 0;
        }
        if !args.realtime && s % 1000 == 999 {
            eprintln!(
                "rwload: {url}: {}/{} scrapes, {:.0}s",
                s + 1,
                args.scrapes,
                started.elapsed().as_secs_f64()
            );
        }
    }
    sum.elapsed = started.elapsed();
    sum
}

fn main() {
    let args = parse_args();
    let start_ms = if args.realtime {
        now_ms()
    } else {
        now_ms() - args.scrapes as i64 * args.interval_ms
    };
    let sums: Vec<(String, Summary)> = std::thread::scope(|scope| {
        let handles: Vec<_> = args
            .urls
            .iter()
            .map(|u| {
                let args = &args;
                scope.spawn(move || (u.clone(), run(args, u, start_ms)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (url, s) in sums {
        println!(
            "{url} samples={} requests={} refused={} bytes={} seconds={:.1}",
            s.samples,
            s.requests,
            s.refused,
            s.bytes,
            s.elapsed.as_secs_f64()
        );
    }
}
