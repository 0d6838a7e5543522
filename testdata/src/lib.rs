//! Test fixtures and a generator of realistic Prometheus data.
//!
//! [`Generator`] produces what a Prometheus server scraping node-exporter-like hosts and
//! HTTP services would write, one scrape at a time (see [`Generator::scrape`]). The shapes are
//! the ones that decide how well a TSDB compresses:
//! - monotonic counters with bursty increments (`node_cpu_seconds_total` with two decimals,
//!   byte counters, `http_requests_total`): each scrape adds the counter's rate × 15 s with
//!   ±10% normal noise, and now and then (5–15% of scrapes) a burst of 3–8×; some counters are
//!   idle most of the time;
//! - gauges with a few decimal digits (`node_load1`) and integer gauges (memory bytes);
//! - constants (`up`, `node_exporter_build_info`);
//! - classic histograms: cumulative `_bucket` counters with `le` labels, plus `_sum` (an
//!   arbitrary float) and `_count`, fed by about 100 ± 10 requests per scrape (4× in bursts)
//!   with log-uniform latencies;
//! - a 15 s scrape interval per target with a random phase and a little jitter: 70% of scrapes
//!   are exactly on time, the rest are off by 1–3 ms either way ([`Generator::without_jitter`]
//!   gives the aligned timestamps Prometheus itself writes).
//!
//! Everything is deterministic for a given seed. No external data is read.
//!
//! [`TempTsdb`] is a throwaway store in a temp dir.

mod temp;
pub mod tools;

pub use temp::TempTsdb;

use augur_storage::Labels;

/// The scrape interval, in milliseconds.
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;
/// Series per target (host + service).
pub const SERIES_PER_TARGET: usize = 100;

/// A small, fast deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Approximately standard normal (sum of twelve uniforms, minus six).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.f64()).sum::<f64>() - 6.0
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

#[derive(Debug, Clone)]
enum Kind {
    /// Per-second rate, probability of a burst, decimals kept.
    Counter {
        rate: f64,
        burst: f64,
        decimals: i32,
    },
    /// Mean, relative step, decimals kept.
    Gauge {
        mean: f64,
        step: f64,
        decimals: i32,
    },
    Constant,
    /// Histogram bucket: index into the target's latency buckets.
    Bucket {
        le: usize,
    },
    HistSum,
    HistCount,
}

#[derive(Debug, Clone)]
struct GenSeries {
    labels: Labels,
    kind: Kind,
    value: f64,
    /// Index of the histogram this series belongs to (per target), if any.
    hist: usize,
}

const LE: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];

#[derive(Debug, Clone)]
struct Target {
    phase_ms: i64,
    series: Vec<GenSeries>,
    /// Per histogram: this scrape's per-bucket (non-cumulative) increments and latency sum.
    hist_incr: Vec<([u64; 12], f64)>,
}

fn le_str(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".to_owned()
    } else {
        format!("{le}")
    }
}

impl Target {
    fn new(index: usize, rng: &mut Rng, interval_ms: i64) -> Target {
        let instance = format!("host-{index:05}:9100");
        let svc = ["api", "checkout", "search", "auth", "billing"][index % 5];
        let mut series = Vec::with_capacity(SERIES_PER_TARGET);
        let mut push = |pairs: &[(&str, &str)], kind: Kind, value: f64, hist: usize| {
            let mut all: Vec<(&str, &str)> = pairs.to_vec();
            all.push(("instance", &instance));
            let labels = Labels::new(all).expect("generator labels are valid");
            series.push(GenSeries {
                labels,
                kind,
                value,
                hist,
            });
        };
        push(
            &[("__name__", "up"), ("job", "node")],
            Kind::Constant,
            1.0,
            0,
        );
        push(
            &[
                ("__name__", "node_exporter_build_info"),
                ("job", "node"),
                ("version", "1.8.2"),
            ],
            Kind::Constant,
            1.0,
            0,
        );
        for cpu in 0..4 {
            for (mode, rate) in [
                ("idle", 0.7),
                ("user", 0.15),
                ("system", 0.08),
                ("iowait", 0.01),
                ("irq", 0.001),
                ("softirq", 0.004),
                ("steal", 0.0),
                ("nice", 0.0005),
            ] {
                let cpu = cpu.to_string();
                push(
                    &[
                        ("__name__", "node_cpu_seconds_total"),
                        ("job", "node"),
                        ("cpu", &cpu),
                        ("mode", mode),
                    ],
                    Kind::Counter {
                        rate,
                        burst: 0.05,
                        decimals: 2,
                    },
                    100_000.0 * rate,
                    0,
                );
            }
        }
        for (name, mean) in [
            ("node_memory_MemAvailable_bytes", 6.2e9),
            ("node_memory_MemFree_bytes", 1.1e9),
            ("node_memory_Cached_bytes", 3.3e9),
            ("node_memory_Buffers_bytes", 2.1e8),
            ("node_memory_MemTotal_bytes", 1.6e10),
        ] {
            let kind = if name.ends_with("Total_bytes") {
                Kind::Constant
            } else {
                Kind::Gauge {
                    mean,
                    step: 0.002,
                    decimals: 0,
                }
            };
            push(
                &[("__name__", name), ("job", "node")],
                kind,
                (mean / 4096.0).round() * 4096.0,
                0,
            );
        }
        for (name, mean) in [
            ("node_load1", 1.2),
            ("node_load5", 1.1),
            ("node_load15", 1.0),
        ] {
            push(
                &[("__name__", name), ("job", "node")],
                Kind::Gauge {
                    mean,
                    step: 0.05,
                    decimals: 2,
                },
                mean,
                0,
            );
        }
        for dev in ["eth0", "lo"] {
            for (name, rate) in [
                ("node_network_receive_bytes_total", 2.0e5),
                ("node_network_transmit_bytes_total", 1.5e5),
                ("node_network_receive_packets_total", 300.0),
                ("node_network_transmit_packets_total", 250.0),
            ] {
                push(
                    &[("__name__", name), ("job", "node"), ("device", dev)],
                    Kind::Counter {
                        rate,
                        burst: 0.1,
                        decimals: 0,
                    },
                    rate * 1e4,
                    0,
                );
            }
        }
        for mount in ["/", "/var", "/home"] {
            push(
                &[
                    ("__name__", "node_filesystem_avail_bytes"),
                    ("job", "node"),
                    ("mountpoint", mount),
                ],
                Kind::Gauge {
                    mean: 5e10,
                    step: 0.0001,
                    decimals: 0,
                },
                5e10,
                0,
            );
            push(
                &[
                    ("__name__", "node_filesystem_size_bytes"),
                    ("job", "node"),
                    ("mountpoint", mount),
                ],
                Kind::Constant,
                1e11,
                0,
            );
        }
        for (handler, method, code, rate) in [
            ("/api/v1/items", "GET", "200", 40.0),
            ("/api/v1/items", "GET", "500", 0.02),
            ("/api/v1/items", "POST", "201", 5.0),
            ("/api/v1/items", "POST", "400", 0.3),
            ("/api/v1/users", "GET", "200", 12.0),
            ("/api/v1/users", "GET", "404", 0.5),
            ("/healthz", "GET", "200", 0.2),
            ("/metrics", "GET", "200", 0.0667),
        ] {
            push(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", svc),
                    ("handler", handler),
                    ("method", method),
                    ("code", code),
                ],
                Kind::Counter {
                    rate,
                    burst: 0.15,
                    decimals: 0,
                },
                (rate * 1e5).round(),
                0,
            );
        }
        for (h, handler) in ["/api/v1/items", "/api/v1/users"].iter().enumerate() {
            for (i, &le) in LE.iter().enumerate() {
                let le = le_str(le);
                push(
                    &[
                        ("__name__", "http_request_duration_seconds_bucket"),
                        ("job", svc),
                        ("handler", handler),
                        ("le", &le),
                    ],
                    Kind::Bucket { le: i },
                    0.0,
                    h,
                );
            }
            push(
                &[
                    ("__name__", "http_request_duration_seconds_sum"),
                    ("job", svc),
                    ("handler", handler),
                ],
                Kind::HistSum,
                0.0,
                h,
            );
            push(
                &[
                    ("__name__", "http_request_duration_seconds_count"),
                    ("job", svc),
                    ("handler", handler),
                ],
                Kind::HistCount,
                0.0,
                h,
            );
        }
        for (name, mean, decimals) in [
            ("go_goroutines", 48.0, 0),
            ("process_resident_memory_bytes", 1.8e8, 0),
            ("process_open_fds", 35.0, 0),
        ] {
            push(
                &[("__name__", name), ("job", svc)],
                Kind::Gauge {
                    mean,
                    step: 0.02,
                    decimals,
                },
                mean,
                0,
            );
        }
        push(
            &[("__name__", "process_cpu_seconds_total"), ("job", svc)],
            Kind::Counter {
                rate: 0.12,
                burst: 0.05,
                decimals: 2,
            },
            5000.0,
            0,
        );
        push(&[("__name__", "up"), ("job", svc)], Kind::Constant, 1.0, 0);
        let mut queue = 0;
        let filler = SERIES_PER_TARGET - 97;
        while queue < filler {
            let n = queue.to_string();
            push(
                &[("__name__", "app_queue_depth"), ("job", svc), ("queue", &n)],
                Kind::Gauge {
                    mean: 10.0,
                    step: 0.3,
                    decimals: 0,
                },
                10.0,
                0,
            );
            queue += 1;
        }
        assert_eq!(series.len(), SERIES_PER_TARGET, "target template size");
        Target {
            phase_ms: rng.below(interval_ms as u64) as i64,
            series,
            hist_incr: vec![([0; 12], 0.0); 2],
        }
    }

    fn advance(&mut self, rng: &mut Rng, interval_ms: i64) {
        let secs = interval_ms as f64 / 1000.0;
        for h in &mut self.hist_incr {
            let burst = if rng.f64() < 0.1 { 4.0 } else { 1.0 };
            let requests = ((100.0 + 10.0 * rng.normal()).max(0.0) * burst) as u64;
            let mut counts = [0u64; 12];
            let mut sum = 0.0;
            for _ in 0..requests.min(64) {
                // Log-uniform latency between 2 ms and ~3 s.
                let lat = 0.002 * (rng.f64() * 7.3).exp();
                sum += lat;
                let b = LE.iter().position(|&le| lat <= le).unwrap_or(11);
                counts[b] += 1;
            }
            // Scale the sampled shape up to the request count.
            let scale = requests as f64 / requests.clamp(1, 64) as f64;
            for c in &mut counts {
                *c = (*c as f64 * scale).round() as u64;
            }
            *h = (counts, sum * scale);
        }
        for s in &mut self.series {
            match s.kind {
                Kind::Counter {
                    rate,
                    burst,
                    decimals,
                } => {
                    let factor = if rng.f64() < burst {
                        3.0 + 5.0 * rng.f64()
                    } else {
                        (1.0 + 0.1 * rng.normal()).max(0.0)
                    };
                    let inc = round_to(rate * secs * factor, decimals);
                    s.value = round_to(s.value + inc, decimals);
                }
                Kind::Gauge {
                    mean,
                    step,
                    decimals,
                } => {
                    let drift = (mean - s.value) * 0.05;
                    let noise = (rng.f64() - 0.5) * 2.0 * step * mean;
                    let mut v = round_to(s.value + drift + noise, decimals);
                    if decimals == 0 && mean > 1e6 {
                        v = (v / 4096.0).round() * 4096.0;
                    }
                    s.value = v.max(0.0);
                }
                Kind::Constant => {}
                Kind::Bucket { le } => {
                    let (counts, _) = &self.hist_incr[s.hist];
                    s.value += counts[..=le].iter().sum::<u64>() as f64;
                }
                Kind::HistSum => s.value += self.hist_incr[s.hist].1,
                Kind::HistCount => s.value += self.hist_incr[s.hist].0.iter().sum::<u64>() as f64,
            }
        }
    }
}

/// Generates scrapes of `targets × SERIES_PER_TARGET` series.
#[derive(Debug, Clone)]
pub struct Generator {
    jitter: bool,
    targets: Vec<Target>,
    rng: Rng,
    start_ms: i64,
    scrapes: i64,
    interval_ms: i64,
}

/// One generated sample.
#[derive(Debug, Clone)]
pub struct GenSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

impl Generator {
    /// About `series` series (rounded up to whole targets), first scrape at `start_ms`.
    pub fn new(series: usize, start_ms: i64, seed: u64) -> Generator {
        Generator::with_interval(series, start_ms, seed, SCRAPE_INTERVAL_MS)
    }

    /// Like [`Generator::new`], scraping every `interval_ms` instead of every 15 s (counters
    /// grow by the same rate per second). With the default interval the two are identical.
    pub fn with_interval(series: usize, start_ms: i64, seed: u64, interval_ms: i64) -> Generator {
        assert!(interval_ms > 0, "the scrape interval must be positive");
        let mut rng = Rng::new(seed);
        let targets = (0..series.div_ceil(SERIES_PER_TARGET))
            .map(|i| Target::new(i, &mut rng, interval_ms))
            .collect();
        Generator {
            jitter: true,
            targets,
            rng,
            start_ms,
            scrapes: 0,
            interval_ms,
        }
    }

    /// Turns scrape-time jitter off: every scrape lands exactly on its target's 15 s grid, as
    /// Prometheus (2.27 and later) writes timestamps with its default 2 ms alignment tolerance.
    pub fn without_jitter(mut self) -> Generator {
        self.jitter = false;
        self
    }

    /// Number of series generated per scrape.
    pub fn series_count(&self) -> usize {
        self.targets.len() * SERIES_PER_TARGET
    }

    /// Labels of every series.
    pub fn labels(&self) -> impl Iterator<Item = &Labels> {
        self.targets
            .iter()
            .flat_map(|t| t.series.iter().map(|s| &s.labels))
    }

    /// The next scrape of every target: one sample per series, target by target.
    pub fn scrape(&mut self) -> Vec<GenSample> {
        let mut out = Vec::with_capacity(self.series_count());
        self.scrape_each(|labels, t, v| {
            out.push(GenSample {
                labels: labels.clone(),
                t,
                v,
            })
        });
        out
    }

    /// Like [`Generator::scrape`], without allocating: calls `f` per sample.
    pub fn scrape_each(&mut self, mut f: impl FnMut(&Labels, i64, f64)) {
        let nominal = self.start_ms + self.scrapes * self.interval_ms;
        self.scrapes += 1;
        for target in &mut self.targets {
            target.advance(&mut self.rng, self.interval_ms);
            let jitter = if !self.jitter || self.rng.f64() < 0.7 {
                0
            } else {
                let ms = 1 + self.rng.below(3) as i64;
                if self.rng.below(2) == 0 {
                    ms
                } else {
                    -ms
                }
            };
            let t = nominal + target.phase_ms + jitter;
            for s in &target.series {
                f(&s.labels, t, s.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_are_monotonic_and_shaped_like_prometheus_data() {
        let mut g = Generator::new(250, 0, 7);
        assert_eq!(g.series_count(), 300);
        let a = g.scrape();
        let b = g.scrape();
        assert_eq!(a.len(), 300);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.labels, y.labels);
            assert!(
                y.t > x.t && (y.t - x.t - SCRAPE_INTERVAL_MS).abs() <= 6,
                "{} -> {}",
                x.t,
                y.t
            );
            let name = x.labels.metric_name().unwrap();
            if name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_count") {
                assert!(y.v >= x.v, "{} decreased", x.labels);
            }
        }
        let mut names: Vec<&str> = a.iter().map(|s| s.labels.metric_name().unwrap()).collect();
        names.dedup();
        assert!(names.contains(&"http_request_duration_seconds_bucket") && names.contains(&"up"));
        // Deterministic for a seed.
        assert_eq!(
            Generator::new(250, 0, 7).scrape()[5].v.to_bits(),
            a[5].v.to_bits()
        );
    }
}
