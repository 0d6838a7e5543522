//! Writes exactly the data `benches/engine.rs` ingests — `Generator::new(10_000,
//! 1_700_000_000_000, 7)`, 1440 scrapes (6 h at 15 s) — as OpenMetrics text, for
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! Usage: promdump <output file> [scrapes]
//!
//! OpenMetrics wants all samples of a metric family together and promtool wants each series'
//! samples in time order, so the whole data set is generated into memory first (about 230 MB)
//! and then written metric name by metric name, series by series. No `# TYPE` lines: every
//! name is its own family of type unknown, which loads the same samples.

mod labels;

#[allow(dead_code)]
mod generator {
    include!(concat!(env!("OUT_DIR"), "/generator.rs"));
}

use std::fs::File;
use std::io::{BufWriter, Write};

use generator::Generator;

/// The engine bench's parameters (benches/engine.rs).
const SERIES: usize = 10_000;
const T0_MS: i64 = 1_700_000_000_000;
const SEED: u64 = 7;
const SCRAPES: usize = 1440;

/// The millisecond timestamp Prometheus's OpenMetrics parser (2.x) reads from `s`: it parses
/// seconds as a float64 and truncates `ts * 1000` to an integer.
fn go_ms(s: &str) -> i64 {
    (s.parse::<f64>().unwrap() * 1000.0) as i64
}

/// `t` (ms) as seconds text that the parser reads back as exactly `t`. "1700000000.123" can
/// come out as ...122.99999 and truncate to ...122; those get a trailing 5 (half a millisecond).
fn seconds_text(t: i64) -> (String, bool) {
    let s = format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000));
    if go_ms(&s) == t {
        return (s, false);
    }
    let s = format!("{s}5");
    assert_eq!(go_ms(&s), t, "cannot represent {t} ms exactly");
    (s, true)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), scrapes) = (args.get(1), args.get(2)) else {
        eprintln!("usage: promdump <output file> [scrapes (default {SCRAPES})]");
        std::process::exit(2);
    };
    let scrapes: usize = scrapes.map_or(SCRAPES, |s| s.parse().expect("scrapes: a number"));

    let mut gen = Generator::new(SERIES, T0_MS, SEED);
    let labels: Vec<_> = gen.labels().cloned().collect();
    let n = labels.len();
    assert_eq!(n, gen.series_count());

    // Sample of series i at scrape s is at s * n + i (scrape_each goes through the series in
    // the same order as labels()).
    let mut ts = Vec::with_capacity(n * scrapes);
    let mut vs = Vec::with_capacity(n * scrapes);
    for s in 0..scrapes {
        let mut i = 0;
        gen.scrape_each(|l, t, v| {
            if s == 0 {
                assert_eq!(l, &labels[i], "scrape order differs from labels()");
            }
            i += 1;
            ts.push(t);
            vs.push(v);
        });
        assert_eq!(i, n);
    }

    // Metric families together; within one, series in generation order.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| labels[i].metric_name().unwrap());

    let mut w = BufWriter::with_capacity(1 << 20, File::create(out).expect("create output"));
    let (mut samples, mut nudged, mut families) = (0usize, 0usize, 0usize);
    let mut prev_name = "";
    for &i in &order {
        let name = labels[i].metric_name().unwrap();
        if name != prev_name {
            families += 1;
            prev_name = name;
        }
        let series = labels[i].to_string();
        let mut last = i64::MIN;
        for s in 0..scrapes {
            let (t, v) = (ts[s * n + i], vs[s * n + i]);
            assert!(t > last, "{series}: timestamps not increasing");
            last = t;
            let (secs, nudge) = seconds_text(t);
            nudged += usize::from(nudge);
            // f64's Display is the shortest text that parses back to the same bits.
            writeln!(w, "{series} {v} {secs}").unwrap();
            samples += 1;
        }
    }
    w.write_all(b"# EOF\n").unwrap();
    w.flush().unwrap();
    let first = &labels[0];
    eprintln!(
        "promdump: {n} series in {families} metric names, {samples} samples, {scrapes} scrapes \
         from {T0_MS} ms (seed {SEED}); {nudged} timestamps written with a half-ms nudge; \
         first series {first} = {} @ {} ms",
        vs[0], ts[0]
    );
}
