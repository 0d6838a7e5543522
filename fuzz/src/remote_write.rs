//! Remote-write bodies for fuzzing: the input bytes are a stream of choices that build a
//! `prometheus.WriteRequest` (1.0) or an `io.prometheus.write.v2.Request` (2.0) with hostile
//! content where it matters (label names and values that are empty, repeated, unsorted, not
//! UTF-8 or huge; special floats and timestamps; histograms whose spans, buckets and counts
//! disagree; symbol references out of range), which is then encoded and snappy-compressed as
//! a sender would. Mutating the choice bytes moves through the space of such requests;
//! a few modes pass raw bytes to the snappy or protobuf layer instead.

use augur_api::proto::{v1, v2};
use prost::Message;

/// Reads choices from bytes; past the end every choice is 0.
#[derive(Debug)]
pub struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Choices<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Choices { bytes, at: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at.min(self.bytes.len())..]
    }

    fn i64(&mut self) -> i64 {
        const T: &[i64] = &[
            0,
            1,
            -1,
            1_700_000_000_000,
            1_700_000_015_000,
            1_700_000_030_000,
            i64::MIN,
            i64::MAX,
            i64::MIN + 1,
            4_102_444_800_000,
        ];
        match self.below(4) {
            0 => T[self.below(T.len())],
            1 => 1_700_000_000_000 + i64::from(self.byte()) * 1000,
            _ => now_ms() + (i64::from(self.byte()) - 128) * 15_000,
        }
    }

    fn f64(&mut self) -> f64 {
        const F: &[f64] = &[
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-300,
            0.5,
        ];
        match self.below(3) {
            0 => F[self.below(F.len())],
            1 => f64::from_bits(0x7ff0_0000_0000_0002), // the staleness marker
            _ => f64::from(self.byte()),
        }
    }

    fn string(&mut self) -> Vec<u8> {
        const S: &[&[u8]] = &[
            b"__name__",
            b"job",
            b"instance",
            b"le",
            b"up",
            b"http_requests_total",
            b"",
            b"service.name",
            b"a\xffb",
            b"caf\xc3\xa9",
            b"0bad",
            b"x\0y",
            b"__augur_ext__",
            b"quantile",
        ];
        match self.below(4) {
            0..=1 => S[self.below(S.len())].to_vec(),
            2 => {
                let n = self.below(8);
                (0..n).map(|_| self.byte()).collect()
            }
            _ => vec![b'a' + self.below(4) as u8; 1 + self.below(3) * 300],
        }
    }

    fn spans(&mut self) -> Vec<(i32, u32)> {
        (0..self.below(4))
            .map(|_| {
                let off = i32::from(self.byte() as i8) / 8;
                let len = u32::from(self.byte() % 5);
                (off, len)
            })
            .collect()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which wire format a body is, and how it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A generated 1.0 request, encoded and compressed.
    V1,
    /// A generated 2.0 request, encoded and compressed.
    V2,
    /// The rest of the input as the body, as is (snappy's decoder sees garbage).
    RawSnappy,
    /// The rest of the input compressed (protobuf's decoder sees garbage).
    RawProto,
}

/// Builds a body from the input: `(is 2.0, body)`.
pub fn body(input: &[u8]) -> (Mode, bool, Vec<u8>) {
    let mut c = Choices::new(input);
    let mode = match c.below(8) {
        0..=2 => Mode::V1,
        3..=5 => Mode::V2,
        6 => Mode::RawSnappy,
        _ => Mode::RawProto,
    };
    let v2 =
        mode == Mode::V2 || (matches!(mode, Mode::RawSnappy | Mode::RawProto) && c.byte() & 1 == 1);
    let proto = match mode {
        Mode::V1 => build_v1(&mut c).encode_to_vec(),
        Mode::V2 => build_v2(&mut c).encode_to_vec(),
        Mode::RawSnappy => return (mode, v2, c.rest().to_vec()),
        Mode::RawProto => c.rest().to_vec(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&proto)
        .expect("snappy compresses any input");
    (mode, v2, body)
}

/// The same histogram as either version's message (their fields differ only in 2.0's
/// `start_timestamp`).
macro_rules! proto_histogram {
    ($v:ident, $h:expr $(, $extra:ident: $value:expr)*) => {{
        let h = $h;
        let spans = |s: &[(i32, u32)]| {
            s.iter()
                .map(|&(offset, length)| $v::BucketSpan { offset, length })
                .collect()
        };
        $v::Histogram {
            sum: h.sum,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            negative_spans: spans(&h.neg),
            negative_deltas: h.deltas.0,
            negative_counts: h.counts.0,
            positive_spans: spans(&h.pos),
            positive_deltas: h.deltas.1,
            positive_counts: h.counts.1,
            reset_hint: h.reset_hint,
            timestamp: h.t,
            custom_values: h.custom,
            count: Some(if h.count.0 {
                $v::histogram::Count::CountFloat(h.count.2)
            } else {
                $v::histogram::Count::CountInt(h.count.1)
            }),
            zero_count: Some(if h.zero.0 {
                $v::histogram::ZeroCount::ZeroCountFloat(h.zero.2)
            } else {
                $v::histogram::ZeroCount::ZeroCountInt(h.zero.1)
            }),
            $($extra: $value,)*
        }
    }};
}

fn build_v1(c: &mut Choices<'_>) -> v1::WriteRequest {
    let mut req = v1::WriteRequest::default();
    for _ in 0..c.below(4) {
        let mut ts = v1::TimeSeries::default();
        for _ in 0..c.below(5) {
            ts.labels.push(v1::Label {
                name: c.string().into(),
                value: c.string().into(),
            });
        }
        for _ in 0..c.below(4) {
            ts.samples.push(v1::Sample {
                value: c.f64(),
                timestamp: c.i64(),
            });
        }
        for _ in 0..c.below(3) {
            ts.histograms.push(proto_histogram!(v1, histogram(c)));
        }
        if c.chance() {
            ts.exemplars.push(v1::Exemplar {
                labels: vec![v1::Label {
                    name: c.string().into(),
                    value: c.string().into(),
                }],
                value: c.f64(),
                timestamp: c.i64(),
            });
        }
        req.timeseries.push(ts);
    }
    if c.chance() {
        req.metadata.push(v1::MetricMetadata {
            r#type: c.below(9) as i32 - 1,
            metric_family_name: String::from_utf8_lossy(&c.string()).into_owned(),
            help: "help".into(),
            unit: String::new(),
        });
    }
    req
}

impl Choices<'_> {
    fn chance(&mut self) -> bool {
        self.byte() & 3 == 0
    }
}

/// One histogram's fields, shared by both versions' builders.
struct H {
    sum: f64,
    schema: i32,
    zero_threshold: f64,
    neg: Vec<(i32, u32)>,
    pos: Vec<(i32, u32)>,
    deltas: (Vec<i64>, Vec<i64>),
    counts: (Vec<f64>, Vec<f64>),
    reset_hint: i32,
    t: i64,
    custom: Vec<f64>,
    count: (bool, u64, f64),
    zero: (bool, u64, f64),
}

fn histogram(c: &mut Choices<'_>) -> H {
    const SCHEMAS: &[i32] = &[0, 3, 8, -4, -53, 9, -5, -54, i32::MIN];
    let float = c.chance();
    let neg = c.spans();
    let pos = c.spans();
    let n = |s: &[(i32, u32)], c: &mut Choices<'_>| {
        let want: u32 = s.iter().map(|x| x.1).sum();
        // Usually as many buckets as the spans say, sometimes not.
        if c.below(6) == 0 {
            c.below(6)
        } else {
            want as usize
        }
    };
    let (nn, np) = (n(&neg, c), n(&pos, c));
    let mut deltas = (Vec::new(), Vec::new());
    let mut counts = (Vec::new(), Vec::new());
    for (k, len) in [(0, nn), (1, np)] {
        for _ in 0..len {
            if float {
                let v = c.f64();
                if k == 0 { &mut counts.0 } else { &mut counts.1 }.push(v);
            } else {
                let d = i64::from(c.byte() as i8);
                if k == 0 { &mut deltas.0 } else { &mut deltas.1 }.push(d);
            }
        }
    }
    let custom = if c.chance() {
        (0..c.below(4)).map(|_| c.f64()).collect()
    } else {
        Vec::new()
    };
    H {
        sum: c.f64(),
        schema: SCHEMAS[c.below(SCHEMAS.len())],
        zero_threshold: if c.chance() { c.f64() } else { 1e-128 },
        neg,
        pos,
        deltas,
        counts,
        reset_hint: c.below(5) as i32,
        t: c.i64(),
        custom,
        count: (float, u64::from(c.byte()), c.f64()),
        zero: (float, u64::from(c.byte() % 4), c.f64()),
    }
}

fn build_v2(c: &mut Choices<'_>) -> v2::Request {
    let mut req = v2::Request::default();
    // Symbol 0 is "" by the spec; sometimes it is not.
    if !c.chance() {
        req.symbols.push(Vec::new().into());
    }
    for _ in 0..c.below(8) {
        req.symbols.push(c.string().into());
    }
    let nsym = req.symbols.len() as u32;
    let r = |c: &mut Choices<'_>| -> u32 {
        if c.below(10) == 0 {
            nsym + c.below(3) as u32 // out of range
        } else {
            c.below(nsym.max(1) as usize) as u32
        }
    };
    for _ in 0..c.below(4) {
        let mut ts = v2::TimeSeries::default();
        // Pairs, sometimes an odd count.
        let n = c.below(5) * 2 + usize::from(c.below(8) == 0);
        ts.labels_refs = (0..n).map(|_| r(c)).collect();
        for _ in 0..c.below(4) {
            ts.samples.push(v2::Sample {
                value: c.f64(),
                timestamp: c.i64(),
                start_timestamp: if c.chance() { c.i64() } else { 0 },
            });
        }
        for _ in 0..c.below(3) {
            let h = histogram(c);
            let st = if c.chance() { c.i64() } else { 0 };
            ts.histograms
                .push(proto_histogram!(v2, h, start_timestamp: st));
        }
        if c.chance() {
            ts.exemplars.push(v2::Exemplar {
                labels_refs: vec![r(c), r(c)],
                value: c.f64(),
                timestamp: c.i64(),
            });
        }
        if c.chance() {
            ts.metadata = Some(v2::Metadata {
                r#type: c.below(9) as i32 - 1,
                help_ref: r(c),
                unit_ref: r(c),
            });
        }
        req.timeseries.push(ts);
    }
    req
}
