//! Helpers shared by the benchmark files in this directory (one file per topic).

use std::time::Instant;

use augur_storage::{Appendable, Tsdb};
use augur_testdata::Generator;

/// Whether the benchmarks run for real (`cargo bench`), rather than once each as a smoke test
/// (`cargo test --benches`). One-off measurements that take seconds run only for real.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Appends `scrapes` scrapes from `gen`, one commit per scrape. Returns samples written.
pub fn ingest(db: &Tsdb, gen: &mut Generator, scrapes: usize) -> usize {
    let started = Instant::now();
    let mut n = 0;
    for i in 0..scrapes {
        let mut app = db.appender();
        gen.scrape_each(|l, t, v| {
            app.append(l, t, v).expect("generated labels are valid");
        });
        n += app.commit().expect("commit").accepted;
        if measuring() && i > 0 && i % 1000 == 0 {
            eprintln!(
                "  ingested {i}/{scrapes} scrapes ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    n
}

/// Resident set size of this process in bytes (Linux), if readable.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Size in bytes that Prometheus's own XOR chunk encoding (`tsdb/chunkenc/xor.go`) gives the
/// same samples, cut into the same 120-sample chunks: a 2-byte count, the first timestamp as a
/// varint, the first delta as a uvarint, then delta-of-deltas in buckets of 1, 16, 20, 24 and
/// 68 bits, and Gorilla XOR values with 5-bit leading and 6-bit length fields. Used to report
/// our size next to Prometheus's on identical data.
pub fn prometheus_xor_chunk_bytes(samples: &[(i64, f64)]) -> usize {
    fn varint_len(v: u64) -> u64 {
        (64 - v.leading_zeros() as u64).max(1).div_ceil(7)
    }
    let mut bits: u64 = 16;
    let (mut prev_t, mut prev_delta) = (0i64, 0i64);
    let (mut prev_v, mut leading, mut trailing) = (0u64, 0xffu32, 0u32);
    for (i, &(t, v)) in samples.iter().enumerate() {
        let vb = v.to_bits();
        match i {
            0 => {
                bits += 8 * varint_len(((t << 1) ^ (t >> 63)) as u64) + 64;
            }
            _ => {
                let delta = t - prev_t;
                if i == 1 {
                    bits += 8 * varint_len(delta as u64);
                } else {
                    let dod = delta - prev_delta;
                    bits += match dod {
                        0 => 1,
                        -8191..=8192 => 16,
                        -65535..=65536 => 20,
                        -524_287..=524_288 => 24,
                        _ => 68,
                    };
                }
                prev_delta = delta;
                let x = vb ^ prev_v;
                if x == 0 {
                    bits += 1;
                } else {
                    let lz = x.leading_zeros().min(31);
                    let tz = x.trailing_zeros();
                    if leading != 0xff && lz >= leading && tz >= trailing {
                        bits += 2 + u64::from(64 - leading - trailing);
                    } else {
                        bits += 2 + 5 + 6 + u64::from(64 - lz - tz);
                        leading = lz;
                        trailing = tz;
                    }
                }
            }
        }
        prev_t = t;
        prev_v = vb;
    }
    bits.div_ceil(8) as usize
}
