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
