//! Native histograms: the sample type Prometheus's remote write carries besides floats.
//!
//! A [`Histogram`] holds absolute bucket counts (the wire's integer deltas are summed on the
//! way in) in sparse form: spans of consecutive bucket indexes, each bucket's count in order.
//! With an exponential schema `s` in −4…8, bucket `i` of the positive side covers
//! `(base^(i−1), base^i]` with `base = 2^(2^−s)`; the negative side mirrors it; the zero
//! bucket covers `[−zero_threshold, zero_threshold]`. Schema −53 has custom bounds instead:
//! bucket `i` covers `(custom_values[i−1], custom_values[i]]` (the first from −Inf, the one
//! past the last bound up to +Inf), and no negative side or zero bucket.
//!
//! Counts are `f64` whether they arrived as integers or floats; `integer` remembers which,
//! as Prometheus keeps integer and float histograms apart, and the encoding stores integer
//! counts as varint deltas. [`Histogram::validate`] checks what Prometheus's `Validate`
//! checks, with its messages. [`Histogram::encode`] is the byte form the WAL and the chunks
//! use (`storage/FORMAT.md`, "Histogram").

use std::fmt;

use crate::error::StorageError;
use crate::varint::{self, Reader};

/// The custom-buckets schema (Prometheus's `CustomBucketsSchema`).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// The exponential schemas Prometheus accepts.
pub const EXPONENTIAL_SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;

/// A run of `length` consecutive buckets starting `offset` indexes after the previous span's
/// end (the first span's offset is the index of its first bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// The sender's word on counter resets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResetHint {
    /// Detect resets by comparing with the previous histogram.
    #[default]
    Unknown,
    /// The first histogram after a counter reset.
    Yes,
    /// No reset since the previous histogram.
    No,
    /// A gauge histogram: resets do not apply.
    Gauge,
}

impl ResetHint {
    fn code(self) -> u8 {
        match self {
            ResetHint::Unknown => 0,
            ResetHint::Yes => 1,
            ResetHint::No => 2,
            ResetHint::Gauge => 3,
        }
    }

    /// The hint with the wire's number (unknown numbers are `Unknown`, as protobuf's open
    /// enums read them).
    pub fn from_code(c: i32) -> ResetHint {
        match c {
            1 => ResetHint::Yes,
            2 => ResetHint::No,
            3 => ResetHint::Gauge,
            _ => ResetHint::Unknown,
        }
    }
}

/// One native histogram sample's value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    /// Absolute count of each bucket the positive spans name, in order.
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<Span>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (schema −53 only), strictly increasing.
    pub custom_values: Vec<f64>,
    pub reset_hint: ResetHint,
    /// The counts arrived as integers.
    pub integer: bool,
}

/// One bucket with its bounds, as Prometheus's query API reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
}

impl Bucket {
    /// Prometheus's boundary rule number: 0 `(l, u]`, 1 `[l, u)`, 2 `(l, u)`, 3 `[l, u]`.
    pub fn boundary_rule(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        }
    }
}

/// `x · 2^exp` exactly (Go's `math.Ldexp`) for the exponents bucket bounds use.
fn ldexp(x: f64, exp: i32) -> f64 {
    // Two powers of two, each a normal number, so both products are exact.
    let half = exp / 2;
    x * 2f64.powi(half) * 2f64.powi(exp - half)
}

/// Upper bound of bucket `idx` (Prometheus's `getBound`): on the positive side bucket `idx`
/// covers `(bound(idx − 1), bound(idx)]`, on the negative side its mirror.
pub fn bound(idx: i32, schema: i32, custom: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        let len = custom.len() as i32;
        return match idx {
            -1 => f64::NEG_INFINITY,
            i if i >= len => f64::INFINITY,
            i if i < -1 => f64::NEG_INFINITY,
            i => custom[i as usize],
        };
    }
    if schema < 0 {
        let exp = i64::from(idx) << -schema;
        if exp == 1024 {
            // The last regular bucket: +Inf is the overflow bucket's.
            return f64::MAX;
        }
        return ldexp(1.0, exp.clamp(-1100, 1100) as i32);
    }
    let table = crate::histogram_bounds::EXPONENTIAL_BOUNDS[schema as usize];
    let frac = table[(idx & ((1 << schema) - 1)) as usize];
    let exp = (idx >> schema).wrapping_add(1);
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp.clamp(-1100, 1100))
}

/// Why a histogram is invalid, in Prometheus's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramError(pub String);

impl fmt::Display for HistogramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HistogramError {}

fn invalid(msg: impl Into<String>) -> Result<(), HistogramError> {
    Err(HistogramError(msg.into()))
}

impl Histogram {
    /// Whether it uses custom bucket bounds (schema −53).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Every bucket in Prometheus's order, with its bounds: the negative side from the most
    /// negative bucket, the zero bucket when it has observations, then the positive side.
    /// Buckets overlapping the zero bucket are clipped to it. Buckets with no observations
    /// are included (the query API leaves them out).
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        let indexes = |spans: &[Span]| -> Vec<i32> {
            let mut idx = Vec::new();
            let mut next = 0i32;
            for (k, s) in spans.iter().enumerate() {
                let start = if k == 0 {
                    s.offset
                } else {
                    next.wrapping_add(s.offset)
                };
                idx.extend((0..s.length as i32).map(|j| start.wrapping_add(j)));
                next = start.wrapping_add(s.length as i32);
            }
            idx
        };
        let zt = self.zero_threshold;
        let custom = self.uses_custom_buckets();
        let neg = indexes(&self.negative_spans);
        for (&i, &count) in neg.iter().zip(&self.negative_buckets).rev() {
            let lower = -bound(i, self.schema, &self.custom_values);
            let upper = (-bound(i.wrapping_sub(1), self.schema, &self.custom_values)).min(-zt);
            out.push(Bucket {
                lower,
                upper,
                lower_inclusive: lower < 0.0,
                upper_inclusive: upper > 0.0,
                count,
            });
        }
        if !custom && self.zero_count > 0.0 {
            out.push(Bucket {
                lower: -zt,
                upper: zt,
                lower_inclusive: true,
                upper_inclusive: true,
                count: self.zero_count,
            });
        }
        let pos = indexes(&self.positive_spans);
        for (&i, &count) in pos.iter().zip(&self.positive_buckets) {
            let mut lower = bound(i.wrapping_sub(1), self.schema, &self.custom_values);
            let upper = bound(i, self.schema, &self.custom_values);
            if custom {
                out.push(Bucket {
                    lower,
                    upper,
                    lower_inclusive: i == 0,
                    upper_inclusive: true,
                    count,
                });
                continue;
            }
            lower = lower.max(zt);
            out.push(Bucket {
                lower,
                upper,
                lower_inclusive: lower < 0.0,
                upper_inclusive: upper > 0.0,
                count,
            });
        }
        out
    }

    /// Whether this is a staleness marker (its sum is the stale NaN).
    pub fn is_stale(&self) -> bool {
        self.sum.to_bits() == crate::STALE_NAN_BITS
    }

    /// Checks what Prometheus's `Validate` checks (`Histogram.Validate` for integer counts,
    /// `FloatHistogram.Validate` for float ones), in its order and words.
    pub fn validate(&self) -> Result<(), HistogramError> {
        let side = |which: &str, r: Result<(), HistogramError>| {
            r.map_err(|e| HistogramError(format!("{which} side: {e}")))
        };
        if self.uses_custom_buckets() {
            check_custom_bounds(
                &self.custom_values,
                &self.positive_spans,
                self.positive_buckets.len(),
            )
            .map_err(|e| HistogramError(format!("custom buckets: {e}")))?;
            if self.integer {
                if self.zero_count != 0.0 {
                    return invalid("custom buckets: must have zero count of 0");
                }
                if self.zero_threshold != 0.0 {
                    return invalid("custom buckets: must have zero threshold of 0");
                }
            } else {
                if self.zero_threshold != 0.0 {
                    return invalid("custom buckets: must have zero threshold of 0");
                }
                if self.zero_count != 0.0 {
                    return invalid("custom buckets: must have zero count of 0");
                }
            }
            if !self.negative_spans.is_empty() {
                return invalid("custom buckets: must not have negative spans");
            }
            if !self.negative_buckets.is_empty() {
                return invalid("custom buckets: must not have negative buckets");
            }
        } else if EXPONENTIAL_SCHEMAS.contains(&self.schema) {
            side(
                "positive",
                check_spans(&self.positive_spans, self.positive_buckets.len()),
            )?;
            side(
                "negative",
                check_spans(&self.negative_spans, self.negative_buckets.len()),
            )?;
            side("negative", self.check_buckets(&self.negative_buckets))?;
            if !self.integer && self.zero_count < 0.0 {
                return invalid(format!(
                    "zero bucket has observation count of {}: histogram has a bucket whose observation count is negative",
                    self.zero_count
                ));
            }
            if !self.custom_values.is_empty() {
                return invalid("histogram with exponential schema must not have custom bounds");
            }
        } else {
            return invalid(format!(
                "histogram has an invalid schema, which must be between {} and {} for exponential buckets, or {CUSTOM_BUCKETS_SCHEMA} for custom buckets, got schema {}",
                EXPONENTIAL_SCHEMAS.start(),
                EXPONENTIAL_SCHEMAS.end(),
                self.schema
            ));
        }
        if !self.integer && self.count < 0.0 {
            return invalid(format!(
                "observation count is  {}: histogram's observation count is negative",
                self.count
            ));
        }
        side("positive", self.check_buckets(&self.positive_buckets))?;
        if self.integer {
            // Integer counts must add up; a NaN sum (a NaN observation) allows more.
            let in_buckets = (self.zero_count
                + self.positive_buckets.iter().sum::<f64>()
                + self.negative_buckets.iter().sum::<f64>()) as u64;
            let count = self.count as u64;
            if self.sum.is_nan() {
                if in_buckets > count {
                    return invalid(format!(
                        "{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should be at least the number of observations found in the buckets"
                    ));
                }
            } else if in_buckets != count {
                return invalid(format!(
                    "{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"
                ));
            }
        }
        Ok(())
    }

    /// Bucket counts are never negative.
    fn check_buckets(&self, buckets: &[f64]) -> Result<(), HistogramError> {
        for (i, &c) in buckets.iter().enumerate() {
            if c < 0.0 {
                let c = if self.integer {
                    format!("{}", c as i64)
                } else {
                    format!("{c}")
                };
                return invalid(format!(
                    "bucket number {} has observation count of {c}: histogram has a bucket whose observation count is negative",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    /// A 64-bit digest of the byte form: equal histograms have equal digests (the head keeps
    /// the newest one's for the duplicate rule).
    pub fn digest(&self) -> u64 {
        let mut buf = Vec::with_capacity(64);
        self.encode(&mut buf);
        xxhash_rust::xxh3::xxh3_64(&buf)
    }

    /// Appends the byte form (`storage/FORMAT.md`, "Histogram") to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.integer) | (self.reset_hint.code() << 1));
        varint::put_varint(out, i64::from(self.schema));
        out.extend_from_slice(&self.zero_threshold.to_bits().to_le_bytes());
        out.extend_from_slice(&self.sum.to_bits().to_le_bytes());
        let put_count = |out: &mut Vec<u8>, c: f64| {
            if self.integer {
                varint::put_uvarint(out, c as u64);
            } else {
                out.extend_from_slice(&c.to_bits().to_le_bytes());
            }
        };
        put_count(out, self.count);
        put_count(out, self.zero_count);
        for (spans, buckets) in [
            (&self.positive_spans, &self.positive_buckets),
            (&self.negative_spans, &self.negative_buckets),
        ] {
            varint::put_uvarint(out, spans.len() as u64);
            for s in spans {
                varint::put_varint(out, i64::from(s.offset));
                varint::put_uvarint(out, u64::from(s.length));
            }
            // Integer counts as deltas from the previous bucket (small and often repeated),
            // float counts as their bits.
            let mut prev = 0i64;
            for &b in buckets.iter() {
                if self.integer {
                    varint::put_varint(out, (b as i64).wrapping_sub(prev));
                    prev = b as i64;
                } else {
                    out.extend_from_slice(&b.to_bits().to_le_bytes());
                }
            }
        }
        varint::put_uvarint(out, self.custom_values.len() as u64);
        for v in &self.custom_values {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }

    /// Reads one histogram written by [`Histogram::encode`] from the front of `r`.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Option<Histogram> {
        let flags = r.u8()?;
        let integer = flags & 1 == 1;
        let reset_hint = ResetHint::from_code(i32::from((flags >> 1) & 3));
        let schema = i32::try_from(r.varint()?).ok()?;
        let zero_threshold = f64::from_bits(r.u64_le()?);
        let sum = f64::from_bits(r.u64_le()?);
        let count_of = |r: &mut Reader<'_>| -> Option<f64> {
            if integer {
                Some(r.uvarint()? as f64)
            } else {
                Some(f64::from_bits(r.u64_le()?))
            }
        };
        let count = count_of(r)?;
        let zero_count = count_of(r)?;
        let mut sides: [(Vec<Span>, Vec<f64>); 2] = Default::default();
        for (spans, buckets) in sides.iter_mut() {
            let n = usize::try_from(r.uvarint()?).ok()?;
            if n > r.rest().len() {
                return None;
            }
            let mut total = 0usize;
            for _ in 0..n {
                let offset = i32::try_from(r.varint()?).ok()?;
                let length = u32::try_from(r.uvarint()?).ok()?;
                total = total.checked_add(length as usize)?;
                spans.push(Span { offset, length });
            }
            if total > r.rest().len() {
                return None;
            }
            let mut prev = 0i64;
            for _ in 0..total {
                if integer {
                    prev = prev.wrapping_add(r.varint()?);
                    buckets.push(prev as f64);
                } else {
                    buckets.push(f64::from_bits(r.u64_le()?));
                }
            }
        }
        let n = usize::try_from(r.uvarint()?).ok()?;
        if n > r.rest().len() {
            return None;
        }
        let mut custom_values = Vec::with_capacity(n);
        for _ in 0..n {
            custom_values.push(f64::from_bits(r.u64_le()?));
        }
        let [(positive_spans, positive_buckets), (negative_spans, negative_buckets)] = sides;
        Some(Histogram {
            schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            custom_values,
            reset_hint,
            integer,
        })
    }
}

/// One stored histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    /// Start timestamp, 0 = unknown.
    pub st: i64,
    pub h: Histogram,
}

/// The value-encoding byte of a histogram chunk in `chunks` (float chunks use 0–2, with
/// 0x80 for a start-timestamp section); see `storage/FORMAT.md`, "Histogram chunk".
pub const ENC_HISTOGRAM: u8 = 3;

/// Histogram samples per chunk, as for floats.
pub const HISTOGRAM_CHUNK_SAMPLES: usize = 120;

/// Whether sealed chunk bytes hold histograms.
pub fn is_histogram_chunk(bytes: &[u8]) -> bool {
    bytes.first() == Some(&ENC_HISTOGRAM)
}

/// A run of histogram samples of one series, in time order, as the bytes the sealed form
/// carries after its header: per sample `varint t − previous t` (the first against
/// `min_t`), `varint st − previous st` (the first against 0), then the histogram's byte
/// form. Appending costs one encode; sealing only prepends the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramChunk {
    body: Vec<u8>,
    count: u16,
    min_t: i64,
    max_t: i64,
    prev_st: i64,
}

impl HistogramChunk {
    /// A chunk holding one sample.
    pub fn new(t: i64, st: i64, h: &Histogram) -> HistogramChunk {
        let mut c = HistogramChunk::starting_at(t);
        c.append(t, st, h);
        c
    }

    /// An empty chunk whose first sample will be at `t`.
    pub fn starting_at(t: i64) -> HistogramChunk {
        HistogramChunk {
            min_t: t,
            max_t: t,
            ..HistogramChunk::default()
        }
    }

    /// Appends a sample newer than every one held; returns [`Histogram::digest`] of it,
    /// taken from the bytes just written.
    pub fn append(&mut self, t: i64, st: i64, h: &Histogram) -> u64 {
        varint::put_varint(&mut self.body, t.wrapping_sub(self.max_t));
        varint::put_varint(&mut self.body, st.wrapping_sub(self.prev_st));
        let start = self.body.len();
        h.encode(&mut self.body);
        self.prev_st = st;
        self.max_t = t;
        self.count += 1;
        xxhash_rust::xxh3::xxh3_64(&self.body[start..])
    }

    pub fn is_full(&self) -> bool {
        usize::from(self.count) >= HISTOGRAM_CHUNK_SAMPLES
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.body.capacity()
    }

    /// The sealed form: `u8 3, uvarint n, varint min_t, uvarint max_t − min_t`, then the
    /// samples (the same header start as a float chunk, so `chunk::meta` reads both).
    pub fn seal(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 16);
        out.push(ENC_HISTOGRAM);
        varint::put_uvarint(&mut out, u64::from(self.count));
        varint::put_varint(&mut out, self.min_t);
        varint::put_uvarint(&mut out, self.max_t.wrapping_sub(self.min_t) as u64);
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads a sealed histogram chunk back into an appendable one.
    pub fn from_sealed(bytes: &[u8]) -> Result<HistogramChunk, StorageError> {
        let mut out = Vec::new();
        decode_sealed(bytes, &mut out)?;
        let mut samples = out.into_iter();
        let first = samples
            .next()
            .ok_or_else(|| StorageError::corrupt("histogram chunk", "no samples"))?;
        let mut c = HistogramChunk::new(first.t, first.st, &first.h);
        for s in samples {
            c.append(s.t, s.st, &s.h);
        }
        Ok(c)
    }

    /// Every sample, decoded, appended to `out`.
    pub fn decode_into(&self, out: &mut Vec<HistogramSample>) {
        // The chunk wrote these bytes itself, so decoding cannot fail.
        let _ = decode_body(&self.body, self.count as usize, self.min_t, out);
    }
}

/// Decodes a sealed histogram chunk's samples into `out`; a float chunk adds nothing.
pub fn decode_sealed(bytes: &[u8], out: &mut Vec<HistogramSample>) -> Result<(), StorageError> {
    if !is_histogram_chunk(bytes) {
        return Ok(());
    }
    let corrupt = |d: &str| StorageError::corrupt("histogram chunk", d);
    let mut r = Reader::new(&bytes[1..]);
    let count = r.uvarint().ok_or_else(|| corrupt("truncated count"))? as usize;
    let min_t = r.varint().ok_or_else(|| corrupt("truncated min time"))?;
    r.uvarint().ok_or_else(|| corrupt("truncated max time"))?;
    if count == 0 || count > usize::from(u16::MAX) {
        return Err(corrupt("bad sample count"));
    }
    decode_body(r.rest(), count, min_t, out).ok_or_else(|| corrupt("truncated samples"))
}

fn decode_body(
    body: &[u8],
    count: usize,
    min_t: i64,
    out: &mut Vec<HistogramSample>,
) -> Option<()> {
    let mut r = Reader::new(body);
    let (mut t, mut st) = (min_t, 0i64);
    for _ in 0..count {
        t = t.wrapping_add(r.varint()?);
        st = st.wrapping_add(r.varint()?);
        let h = Histogram::decode(&mut r)?;
        out.push(HistogramSample { t, st, h });
    }
    Some(())
}

/// Spans: only the first may have a negative offset, and their lengths add up to the
/// number of buckets.
fn check_spans(spans: &[Span], buckets: usize) -> Result<(), HistogramError> {
    let mut total = 0u64;
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return invalid(format!(
                "span number {} with offset {}: histogram has a span whose offset is negative",
                i + 1,
                s.offset
            ));
        }
        total += u64::from(s.length);
    }
    check_span_total(total, buckets)
}

fn check_span_total(total: u64, buckets: usize) -> Result<(), HistogramError> {
    if total != buckets as u64 {
        return invalid(format!(
            "spans need {total} buckets, have {buckets} buckets: histogram spans specify different number of buckets than provided"
        ));
    }
    Ok(())
}

/// Custom bounds: not NaN, strictly increasing, not ending in +Inf; spans without negative
/// offsets, as many buckets as they name, and no bucket past the last bound's +Inf bucket.
fn check_custom_bounds(
    bounds: &[f64],
    spans: &[Span],
    buckets: usize,
) -> Result<(), HistogramError> {
    if bounds.iter().any(|b| b.is_nan()) {
        return invalid("histogram custom bounds must not be NaN");
    }
    for w in bounds.windows(2) {
        if w[1] <= w[0] {
            return invalid(format!(
                "previous bound is {:.6} and current is {:.6}: histogram custom bounds must be in strictly increasing order",
                w[0], w[1]
            ));
        }
    }
    if bounds.last() == Some(&f64::INFINITY) {
        return invalid(
            "last +Inf bound must not be explicitly defined: histogram custom bounds must be finite",
        );
    }
    let mut total = 0u64;
    let mut reach = 0i64;
    for (i, s) in spans.iter().enumerate() {
        if s.offset < 0 {
            return invalid(format!(
                "span number {} with offset {}: histogram has a span whose offset is negative",
                i + 1,
                s.offset
            ));
        }
        total += u64::from(s.length);
        reach += i64::from(s.offset) + i64::from(s.length);
    }
    check_span_total(total, buckets)?;
    if (bounds.len() as i64) + 1 < reach {
        return invalid(format!(
            "only {} custom bounds defined which is insufficient to cover total span length of {reach}: histogram custom bounds are too few",
            bounds.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_past_the_largest_float_are_infinite() {
        // The last regular bucket ends at the largest float; the one past it, at +Inf
        // (Prometheus's getBound).
        assert_eq!(bound(1024, 0, &[]), f64::MAX);
        assert_eq!(bound(1025, 0, &[]), f64::INFINITY);
        assert_eq!(bound(256, -2, &[]), f64::MAX);
        assert_eq!(bound(257, -2, &[]), f64::INFINITY);
        assert_eq!(bound(8192, 3, &[]), f64::MAX);
        assert_eq!(bound(8193, 3, &[]), f64::INFINITY);
        assert_eq!(bound(1, 0, &[]), 2.0);
    }

    fn exponential() -> Histogram {
        Histogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 9.0,
            sum: 18.4,
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 2,
                },
                Span {
                    offset: 1,
                    length: 2,
                },
            ],
            positive_buckets: vec![1.0, 2.0, 1.0, 1.0],
            negative_spans: vec![Span {
                offset: 0,
                length: 1,
            }],
            negative_buckets: vec![3.0],
            integer: true,
            ..Histogram::default()
        }
    }

    fn round_trip(h: &Histogram) {
        let mut buf = Vec::new();
        h.encode(&mut buf);
        let mut r = Reader::new(&buf);
        assert_eq!(Histogram::decode(&mut r).as_ref(), Some(h));
        assert!(r.is_empty());
        for cut in 0..buf.len() {
            let _ = Histogram::decode(&mut Reader::new(&buf[..cut]));
        }
    }

    #[test]
    fn valid_histograms_round_trip() {
        let h = exponential();
        assert_eq!(h.validate(), Ok(()));
        round_trip(&h);
        let float = Histogram {
            integer: false,
            count: 9.5,
            reset_hint: ResetHint::Gauge,
            positive_buckets: vec![1.5, 2.0, 1.0, 1.0],
            ..exponential()
        };
        assert_eq!(float.validate(), Ok(()));
        round_trip(&float);
        let custom = Histogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 6.0,
            sum: 3.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 2.0, 3.0],
            custom_values: vec![0.1, 0.5],
            integer: true,
            ..Histogram::default()
        };
        assert_eq!(custom.validate(), Ok(()));
        round_trip(&custom);
    }

    #[test]
    fn buckets_have_prometheus_bounds() {
        // Schema 0: bucket i is (2^(i-1), 2^i]; schema 3's first bound above 1 is 2^(1/8).
        let h = Histogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 7.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1.0, 2.0],
            negative_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            negative_buckets: vec![3.0],
            integer: true,
            ..Histogram::default()
        };
        let b: Vec<(u8, f64, f64, f64)> = h
            .buckets()
            .iter()
            .map(|b| (b.boundary_rule(), b.lower, b.upper, b.count))
            .collect();
        assert_eq!(
            b,
            [
                (1, -2.0, -1.0, 3.0),
                (3, -0.001, 0.001, 1.0),
                (0, 0.5, 1.0, 1.0),
                (0, 1.0, 2.0, 2.0),
            ]
        );
        let fine = Histogram {
            schema: 3,
            positive_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            positive_buckets: vec![1.0],
            count: 1.0,
            integer: true,
            ..Histogram::default()
        };
        assert_eq!(fine.buckets()[0].upper, 1.0905077326652577);
        assert_eq!(fine.buckets()[0].lower, 1.0);
        let custom = Histogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 0.0, 2.0],
            custom_values: vec![0.1, 0.5],
            count: 3.0,
            integer: true,
            ..Histogram::default()
        };
        let b: Vec<(u8, f64, f64)> = custom
            .buckets()
            .iter()
            .map(|b| (b.boundary_rule(), b.lower, b.upper))
            .collect();
        assert_eq!(
            b,
            [
                (3, f64::NEG_INFINITY, 0.1),
                (0, 0.1, 0.5),
                (0, 0.5, f64::INFINITY)
            ]
        );
        let negative = Histogram {
            schema: -2,
            positive_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            positive_buckets: vec![1.0],
            count: 1.0,
            integer: true,
            ..Histogram::default()
        };
        assert_eq!(negative.buckets()[0].upper, 16.0);
    }

    #[test]
    fn chunks_keep_every_sample_sealed_or_not() {
        let mut samples = Vec::new();
        for i in 0..5i64 {
            let mut h = exponential();
            h.count += i as f64;
            h.zero_count += i as f64;
            h.sum += i as f64 * 0.5;
            samples.push(HistogramSample {
                t: 1000 + i * 15_000,
                st: if i % 2 == 0 { 0 } else { 500 },
                h,
            });
        }
        let mut c = HistogramChunk::new(samples[0].t, samples[0].st, &samples[0].h);
        for s in &samples[1..] {
            assert_eq!(c.append(s.t, s.st, &s.h), s.h.digest());
        }
        assert_eq!(samples[4].h.digest(), samples[4].h.clone().digest());
        assert_ne!(samples[4].h.digest(), samples[3].h.digest());
        let mut got = Vec::new();
        c.decode_into(&mut got);
        assert_eq!(got, samples);
        let sealed = c.seal();
        assert!(is_histogram_chunk(&sealed));
        let meta = crate::chunk::meta(&sealed).unwrap();
        assert_eq!((meta.count, meta.min_t, meta.max_t), (5, 1000, 61_000));
        let mut back = Vec::new();
        decode_sealed(&sealed, &mut back).unwrap();
        assert_eq!(back, samples);
        assert_eq!(HistogramChunk::from_sealed(&sealed).unwrap(), c);
        for cut in 1..sealed.len() {
            let _ = decode_sealed(&sealed[..cut], &mut Vec::new());
        }
    }

    #[test]
    fn invalid_histograms_are_named_as_prometheus_names_them() {
        let custom = || Histogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 6.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 2.0, 3.0],
            custom_values: vec![0.1, 0.5],
            integer: true,
            ..Histogram::default()
        };
        let cases: Vec<(Histogram, &str)> = vec![
            (
                Histogram { schema: 9, ..exponential() },
                "histogram has an invalid schema, which must be between -4 and 8 for exponential buckets, or -53 for custom buckets, got schema 9",
            ),
            (
                Histogram { positive_buckets: vec![1.0, 2.0, 1.0], ..exponential() },
                "positive side: spans need 4 buckets, have 3 buckets: histogram spans specify different number of buckets than provided",
            ),
            (
                Histogram {
                    positive_spans: vec![Span { offset: 0, length: 2 }, Span { offset: -1, length: 2 }],
                    ..exponential()
                },
                "positive side: span number 2 with offset -1: histogram has a span whose offset is negative",
            ),
            (
                Histogram { negative_buckets: vec![-3.0], count: 3.0, ..exponential() },
                "negative side: bucket number 1 has observation count of -3: histogram has a bucket whose observation count is negative",
            ),
            (
                Histogram { count: 8.0, ..exponential() },
                "9 observations found in buckets, but the Count field is 8: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)",
            ),
            (
                Histogram { count: 8.0, sum: f64::NAN, ..exponential() },
                "9 observations found in buckets, but the Count field is 8: histogram's observation count should be at least the number of observations found in the buckets",
            ),
            (
                Histogram { count: -1.0, integer: false, ..exponential() },
                "observation count is  -1: histogram's observation count is negative",
            ),
            (
                Histogram { custom_values: vec![1.0], ..exponential() },
                "histogram with exponential schema must not have custom bounds",
            ),
            (
                Histogram { custom_values: vec![0.5, 0.5], ..custom() },
                "custom buckets: previous bound is 0.500000 and current is 0.500000: histogram custom bounds must be in strictly increasing order",
            ),
            (
                Histogram { custom_values: vec![0.5, f64::INFINITY], ..custom() },
                "custom buckets: last +Inf bound must not be explicitly defined: histogram custom bounds must be finite",
            ),
            (
                Histogram { custom_values: vec![0.5], ..custom() },
                "custom buckets: only 1 custom bounds defined which is insufficient to cover total span length of 3: histogram custom bounds are too few",
            ),
            (
                Histogram { zero_count: 1.0, count: 7.0, ..custom() },
                "custom buckets: must have zero count of 0",
            ),
        ];
        for (h, want) in cases {
            assert_eq!(h.validate().unwrap_err().to_string(), want, "{h:?}");
        }
        assert_eq!(custom().validate(), Ok(()));
        // Float histograms do not compare the count with the buckets.
        let float = Histogram {
            count: 1.0,
            integer: false,
            ..exponential()
        };
        assert_eq!(float.validate(), Ok(()));
    }
}
