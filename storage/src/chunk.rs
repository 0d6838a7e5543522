//! Chunk encodings: the streaming head chunk and the compact sealed chunk.
//!
//! A series' samples are cut into chunks of at most [`CHUNK_SAMPLES`] samples.
//!
//! - While a chunk is open it lives in memory as a [`HeadChunk`]: timestamps as residuals
//!   against the first delta in fixed buckets, values XOR-encoded as in Gorilla. Appending is
//!   O(1) and needs no look-ahead.
//! - When it is sealed (full, idle, or checkpointed) [`seal`] re-encodes it with everything known:
//!   timestamps as residuals against the median step with a per-chunk bit width, and values as
//!   the smallest of Gorilla XOR, or, when every value is a decimal with at most
//!   [`MAX_DECIMAL_SCALE`] fractional digits, scaled integers as deltas or delta-of-deltas with
//!   a per-chunk bit width. Timestamps and values are separate byte-aligned sections, so series
//!   scraped together (identical timestamp sections) compress well under RocksDB's block
//!   compression.
//!
//! A chunk may also carry each sample's start timestamp (the "created" time of a cumulative
//! counter, or the start of a delta sample's interval; 0 = unknown). Chunks where no sample has
//! one carry nothing extra; otherwise the start timestamps are a separate section of
//! zig-zag varint differences (see [`write_sts`]).
//!
//! Every `f64` bit pattern round-trips exactly (the decimal form is used only when decoding
//! reproduces each value's bits), including Prometheus's stale marker NaN. The byte layout is in
//! `storage/FORMAT.md` ("Sealed chunk").

use crate::error::StorageError;
use crate::varint::{self, Reader};
use crate::Sample;

/// The most samples a chunk holds.
pub const CHUNK_SAMPLES: usize = 120;
/// Largest number of decimal digits the decimal value encoding tries.
pub const MAX_DECIMAL_SCALE: u32 = 9;

const ENC_XOR: u8 = 0;
const ENC_DEC_DELTA: u8 = 1;
const ENC_DEC_DOD: u8 = 2;
/// Set on the encoding byte of a sealed chunk that has a start-timestamp section.
const FLAG_ST: u8 = 0x80;

// ---------------------------------------------------------------------------------------------
// Bit streams

/// Big-endian bit writer. Grows its buffer a few bytes at a time so that thousands of open
/// chunks do not each waste half their capacity.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    nbits: u32,
}

impl BitWriter {
    fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        let mut left = n;
        let used = self.nbits % 8;
        if used != 0 {
            // Fill the free low bits of the last byte first.
            let free = 8 - used;
            let take = free.min(left);
            let bits = (v >> (left - take)) as u8 & (0xffu8 >> (8 - take));
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << (free - take);
            }
            left -= take;
        }
        if left > 0 {
            let bytes = left.div_ceil(8) as usize;
            if self.buf.capacity() - self.buf.len() < bytes {
                self.buf.reserve_exact(bytes.max(16));
            }
            while left >= 8 {
                left -= 8;
                self.buf.push((v >> left) as u8);
            }
            if left > 0 {
                self.buf.push((v << (8 - left)) as u8);
            }
        }
        self.nbits += n;
    }

    fn write_bit(&mut self, b: bool) {
        self.write_bits(u64::from(b), 1);
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn heap_size(&self) -> usize {
        self.buf.capacity()
    }
}

/// Reader matching [`BitWriter`].
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    /// Reads `n` (at most 64) bits, most significant first.
    #[inline]
    fn read_bits(&mut self, n: u32) -> Option<u64> {
        // Fast path: the bits lie within one unaligned 8-byte window of the buffer.
        let byte = self.pos / 8;
        let shift = (self.pos % 8) as u32;
        if n > 0 && n + shift <= 64 {
            if let Some(window) = self.buf.get(byte..byte + 8) {
                let w = u64::from_be_bytes(window.try_into().expect("8 bytes"));
                self.pos += n as usize;
                return Some((w << shift) >> (64 - n));
            }
        }
        self.read_bits_slow(n)
    }

    /// [`BitReader::read_bits`] byte by byte, for reads near the end of the buffer or
    /// spanning more than 8 bytes.
    fn read_bits_slow(&mut self, n: u32) -> Option<u64> {
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = *self.buf.get(self.pos / 8)?;
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(left);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 { bits } else { (v << take) | bits };
            left -= take;
            self.pos += take as usize;
        }
        Some(v)
    }

    #[inline]
    fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.buf.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 {
        return 0;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Bits needed to hold `x` in two's complement.
fn signed_width(x: i64) -> u32 {
    if x == 0 {
        0
    } else if x > 0 {
        65 - x.leading_zeros()
    } else {
        65 - (!x).leading_zeros()
    }
}

// ---------------------------------------------------------------------------------------------
// Gorilla XOR values (shared by head and sealed chunks)

#[derive(Debug, Clone, Copy)]
struct XorState {
    prev: u64,
    leading: u8,
    trailing: u8,
}

impl XorState {
    const NONE: u8 = 0xff;

    fn first(w: &mut BitWriter, v: u64) -> Self {
        w.write_bits(v, 64);
        XorState {
            prev: v,
            leading: Self::NONE,
            trailing: 0,
        }
    }

    fn push(&mut self, w: &mut BitWriter, v: u64) {
        let delta = v ^ self.prev;
        self.prev = v;
        if delta == 0 {
            w.write_bit(false);
            return;
        }
        w.write_bit(true);
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != Self::NONE && leading >= self.leading && trailing >= self.trailing {
            w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.write_bits(delta >> self.trailing, sig);
        } else {
            w.write_bit(true);
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            w.write_bits(u64::from(leading), 5);
            // 64 significant bits are written as 0; 0 cannot occur because delta != 0.
            w.write_bits(u64::from(sig) & 63, 6);
            w.write_bits(delta >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    fn read_first(r: &mut BitReader<'_>) -> Option<Self> {
        Some(XorState {
            prev: r.read_bits(64)?,
            leading: Self::NONE,
            trailing: 0,
        })
    }

    fn read_next(&mut self, r: &mut BitReader<'_>) -> Option<u64> {
        if !r.read_bit()? {
            return Some(self.prev);
        }
        if r.read_bit()? {
            self.leading = r.read_bits(5)? as u8;
            let mut sig = r.read_bits(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            self.trailing = (64 - u32::from(self.leading) - sig) as u8;
        } else if self.leading == Self::NONE {
            return None;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = r.read_bits(sig)?;
        self.prev ^= bits << self.trailing;
        Some(self.prev)
    }
}

// ---------------------------------------------------------------------------------------------
// Head chunk

/// Fixed buckets for head timestamp residuals: (prefix, prefix length, payload bits).
const HEAD_TS_BUCKETS: [(u64, u32, u32); 4] = [
    (0b10, 2, 5),
    (0b110, 3, 14),
    (0b1110, 4, 24),
    (0b1111, 4, 64),
];

/// An open chunk being appended to. Not thread-safe by itself; the head locks around it.
#[derive(Debug, Clone)]
pub struct HeadChunk {
    t_first: i64,
    t_last: i64,
    step: i64,
    count: u16,
    ts: BitWriter,
    values: BitWriter,
    xor: XorState,
    /// Start timestamps as [`write_sts`] lays them out, one per sample; empty while no sample
    /// has one.
    sts: Vec<u8>,
    /// The newest start timestamp in `sts` (the base of the next difference).
    st_prev: i64,
}

impl HeadChunk {
    /// Starts a chunk with its first sample and its start timestamp (0 = unknown).
    pub fn new(t: i64, v: f64, st: i64) -> Self {
        let mut values = BitWriter::default();
        let xor = XorState::first(&mut values, v.to_bits());
        let mut c = HeadChunk {
            t_first: t,
            t_last: t,
            step: 0,
            count: 1,
            ts: BitWriter::default(),
            values,
            xor,
            sts: Vec::new(),
            st_prev: 0,
        };
        c.push_st(st, 0);
        c
    }

    /// Records the start timestamp of the sample that follows `before` others.
    fn push_st(&mut self, st: i64, before: usize) {
        if self.sts.is_empty() {
            if st == 0 {
                return;
            }
            // The earlier samples had none: one zero difference (one byte) each.
            self.sts.resize(before, 0);
        }
        varint::put_varint(&mut self.sts, st.wrapping_sub(self.st_prev));
        self.st_prev = st;
    }

    /// Appends a sample with its start timestamp (0 = unknown). The caller guarantees
    /// `t > self.max_t()` and that the chunk is not full.
    pub fn append(&mut self, t: i64, v: f64, st: i64) {
        debug_assert!(t > self.t_last && !self.is_full());
        let delta = t.wrapping_sub(self.t_last);
        if self.count == 1 {
            self.step = delta;
        } else {
            let r = delta.wrapping_sub(self.step);
            if r == 0 {
                self.ts.write_bit(false);
            } else {
                let width = signed_width(r);
                let &(prefix, plen, bits) = HEAD_TS_BUCKETS
                    .iter()
                    .find(|b| width <= b.2)
                    .expect("last bucket holds 64 bits");
                self.ts.write_bits(prefix, plen);
                self.ts.write_bits(r as u64, bits);
            }
        }
        self.xor.push(&mut self.values, v.to_bits());
        self.push_st(st, self.len());
        self.t_last = t;
        self.count += 1;
    }

    pub fn is_full(&self) -> bool {
        usize::from(self.count) >= CHUNK_SAMPLES
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn min_t(&self) -> i64 {
        self.t_first
    }

    pub fn max_t(&self) -> i64 {
        self.t_last
    }

    /// Bytes of heap this chunk holds.
    pub fn heap_size(&self) -> usize {
        self.ts.heap_size() + self.values.heap_size() + self.sts.capacity()
    }

    /// Decodes every sample, appending to `out`, and their start timestamps to `sts`, which
    /// is kept either empty (no sample so far has one) or parallel to `out`.
    pub fn decode_into(&self, out: &mut Vec<Sample>, sts: &mut Vec<i64>) {
        let start = out.len();
        self.decode_samples(out);
        if self.sts.is_empty() {
            if !sts.is_empty() {
                sts.resize(out.len(), 0);
            }
        } else {
            sts.resize(start, 0);
            // The head wrote these bytes itself, so decoding cannot fail.
            let _ = read_sts(&self.sts, out.len() - start, sts);
        }
    }

    fn decode_samples(&self, out: &mut Vec<Sample>) {
        out.reserve(self.count as usize);
        let mut ts = BitReader::new(self.ts.bytes());
        let mut vals = BitReader::new(self.values.bytes());
        // The head wrote these bits itself, so decoding cannot fail.
        let Some(mut xor) = XorState::read_first(&mut vals) else {
            return;
        };
        let mut t = self.t_first;
        out.push(Sample::new(t, f64::from_bits(xor.prev)));
        for i in 1..self.count {
            let delta = if i == 1 {
                self.step
            } else {
                let r = match read_head_residual(&mut ts) {
                    Some(r) => r,
                    None => return,
                };
                self.step.wrapping_add(r)
            };
            t = t.wrapping_add(delta);
            let Some(v) = xor.read_next(&mut vals) else {
                return;
            };
            out.push(Sample::new(t, f64::from_bits(v)));
        }
    }

    /// All samples and their start timestamps (empty when none has one), decoded.
    pub fn samples(&self) -> (Vec<Sample>, Vec<i64>) {
        let mut out = Vec::with_capacity(self.len());
        let mut sts = Vec::new();
        self.decode_into(&mut out, &mut sts);
        (out, sts)
    }

    /// Re-encodes the chunk in the sealed format.
    pub fn seal(&self) -> Vec<u8> {
        let (samples, sts) = self.samples();
        seal(&samples, &sts)
    }

    /// Rebuilds an open chunk from decoded samples and start timestamps (empty or parallel).
    pub fn from_samples(samples: &[Sample], sts: &[i64]) -> Option<Self> {
        let st = |i: usize| sts.get(i).copied().unwrap_or(0);
        let first = samples.first()?;
        let mut c = HeadChunk::new(first.t, first.v, st(0));
        for (i, x) in samples.iter().enumerate().skip(1) {
            c.append(x.t, x.v, st(i));
        }
        Some(c)
    }
}

fn read_head_residual(r: &mut BitReader<'_>) -> Option<i64> {
    let mut ones = 0;
    while ones < 4 && r.read_bit()? {
        ones += 1;
    }
    if ones == 0 {
        return Some(0);
    }
    let bits = HEAD_TS_BUCKETS[ones - 1].2;
    Some(sign_extend(r.read_bits(bits)?, bits))
}

// ---------------------------------------------------------------------------------------------
// Sealed chunk

/// Two-level width coding of a section of signed integers (see FORMAT.md, "Width coding"):
/// `0` for zero, `10` + `narrow` bits, `11` + `wide` bits, where `wide` fits every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Widths {
    narrow: u32,
    wide: u32,
}

impl Widths {
    /// The pair that minimises the section's size, and that size in bits.
    fn best(xs: &[i64]) -> (Widths, u64) {
        let mut count = [0u64; 65];
        for &x in xs {
            count[signed_width(x) as usize] += 1;
        }
        let wide = (0..=64).rev().find(|&w| count[w] > 0).unwrap_or(0) as u32;
        let zeros = count[0];
        if zeros == xs.len() as u64 {
            return (Widths { narrow: 0, wide: 0 }, 0);
        }
        let mut best = (Widths { narrow: wide, wide }, u64::MAX);
        let mut at_most = 0u64; // non-zero values no wider than `narrow`
        for narrow in 0..=wide {
            at_most += if narrow > 0 {
                count[narrow as usize]
            } else {
                0
            };
            let rest = xs.len() as u64 - zeros - at_most;
            let cost = zeros + at_most * (2 + u64::from(narrow)) + rest * (2 + u64::from(wide));
            if cost < best.1 {
                best = (Widths { narrow, wide }, cost);
            }
        }
        best
    }

    fn write_header(self, out: &mut Vec<u8>) {
        out.push(self.narrow as u8);
        out.push(self.wide as u8);
    }

    fn read_header(r: &mut Reader<'_>) -> Option<Widths> {
        let narrow = u32::from(r.u8()?);
        let wide = u32::from(r.u8()?);
        (narrow <= wide && wide <= 64).then_some(Widths { narrow, wide })
    }

    /// Writes `xs`. A section of only zeros is written as nothing at all: readers treat an
    /// exhausted section as zeros.
    fn write(self, w: &mut BitWriter, xs: &[i64]) {
        if xs.iter().all(|&x| x == 0) {
            return;
        }
        for &x in xs {
            let need = signed_width(x);
            if need == 0 {
                w.write_bit(false);
            } else if need <= self.narrow {
                w.write_bits(0b10, 2);
                w.write_bits(x as u64, self.narrow);
            } else {
                w.write_bits(0b11, 2);
                w.write_bits(x as u64, self.wide);
            }
        }
    }

    fn read(self, r: &mut BitReader<'_>) -> Option<i64> {
        if r.buf.is_empty() || !r.read_bit()? {
            return Some(0);
        }
        let bits = if r.read_bit()? {
            self.wide
        } else {
            self.narrow
        };
        Some(sign_extend(r.read_bits(bits)?, bits))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The greatest common divisor of the values' magnitudes (1 if all are zero).
fn common_factor(xs: &[i64]) -> u64 {
    xs.iter().fold(0, |g, &x| gcd(g, x.unsigned_abs())).max(1)
}

/// Finds the smallest decimal scale `k` such that every value is `w / 10^k` for an integer `w`
/// with `|w| < 2^53`, reproducing each value's exact bits.
fn decimal_form(samples: &[Sample]) -> Option<(u32, Vec<i64>)> {
    'scale: for k in 0..=MAX_DECIMAL_SCALE {
        let pow = 10f64.powi(k as i32);
        let mut ints = Vec::with_capacity(samples.len());
        for s in samples {
            if !s.v.is_finite() {
                return None;
            }
            let w = (s.v * pow).round();
            if w.abs() >= 9_007_199_254_740_992.0 {
                continue 'scale;
            }
            // Decode exactly as the decoder will (from the integer), so -0.0 cannot pass.
            let w = w as i64;
            if (w as f64 / pow).to_bits() != s.v.to_bits() {
                continue 'scale;
            }
            ints.push(w);
        }
        return Some((k, ints));
    }
    None
}

fn diffs(xs: &[i64]) -> Vec<i64> {
    xs.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect()
}

fn encode_values(samples: &[Sample]) -> (u8, Vec<u8>) {
    let mut xor_bits = BitWriter::default();
    let mut xor = XorState::first(&mut xor_bits, samples[0].v.to_bits());
    for s in &samples[1..] {
        xor.push(&mut xor_bits, s.v.to_bits());
    }
    let mut best = (ENC_XOR, xor_bits.buf);

    if let Some((k, ints)) = decimal_form(samples) {
        let deltas = diffs(&ints);
        // Delta-of-delta with an implicit zero delta before the first.
        let mut dods = Vec::with_capacity(deltas.len());
        let mut prev = 0i64;
        for &d in &deltas {
            dods.push(d.wrapping_sub(prev));
            prev = d;
        }
        for (enc, xs) in [(ENC_DEC_DELTA, deltas), (ENC_DEC_DOD, dods)] {
            let factor = common_factor(&xs);
            let scaled: Vec<i64> = xs.iter().map(|&x| x / factor as i64).collect();
            let (widths, cost) = Widths::best(&scaled);
            let mut out = Vec::with_capacity((cost as usize).div_ceil(8) + 16);
            out.push(k as u8);
            varint::put_varint(&mut out, ints[0]);
            varint::put_uvarint(&mut out, factor);
            widths.write_header(&mut out);
            let mut bits = BitWriter::default();
            widths.write(&mut bits, &scaled);
            out.extend_from_slice(&bits.buf);
            if out.len() < best.1.len() {
                best = (enc, out);
            }
        }
    }
    best
}

/// Timestamps are predicted on a grid of `step` anchored at the previous sample's grid point;
/// a residual larger than half a step (a missed or late scrape) re-anchors the grid on the
/// actual time. Scrape jitter then costs its own size, not the difference of two jitters.
fn next_anchor(anchor: i64, step: i64, residual: i64) -> i64 {
    let next = anchor.wrapping_add(step);
    if residual.unsigned_abs() <= (step / 2).unsigned_abs() {
        next
    } else {
        next.wrapping_add(residual)
    }
}

fn ts_residuals(ts: &[i64], step: i64) -> Vec<i64> {
    let mut anchor = ts[0];
    ts[1..]
        .iter()
        .map(|&t| {
            let r = t.wrapping_sub(anchor.wrapping_add(step));
            anchor = next_anchor(anchor, step, r);
            r
        })
        .collect()
}

/// Appends the start-timestamp section for `sts`: per sample, the zig-zag varint difference
/// to the previous sample's start timestamp (the first against 0). A counter's constant start
/// costs one byte per sample; a delta series' (each sample starting at the previous one's
/// time) costs the size of the scrape interval.
fn write_sts(out: &mut Vec<u8>, sts: &[i64]) {
    let mut prev = 0i64;
    for &st in sts {
        varint::put_varint(out, st.wrapping_sub(prev));
        prev = st;
    }
}

/// Reads `n` start timestamps written by [`write_sts`], appending them to `out`.
fn read_sts(bytes: &[u8], n: usize, out: &mut Vec<i64>) -> Option<()> {
    let mut r = Reader::new(bytes);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.varint()?);
        out.push(prev);
    }
    Some(())
}

/// Encodes strictly time-ordered samples (1..=65535 of them) as a sealed chunk, with their
/// start timestamps (`sts` empty, or one per sample with 0 = unknown).
pub fn seal(samples: &[Sample], sts: &[i64]) -> Vec<u8> {
    assert!(!samples.is_empty() && samples.len() <= usize::from(u16::MAX));
    assert!(sts.is_empty() || sts.len() == samples.len());
    let with_sts = sts.iter().any(|&st| st != 0);
    let ts: Vec<i64> = samples.iter().map(|s| s.t).collect();
    let deltas = diffs(&ts);
    let step = if deltas.is_empty() {
        0
    } else {
        let mut sorted = deltas;
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    let residuals = ts_residuals(&ts, step);
    let (ts_widths, _) = Widths::best(&residuals);
    let mut ts_bits = BitWriter::default();
    ts_widths.write(&mut ts_bits, &residuals);

    let (enc, values) = encode_values(samples);

    let mut st_bytes = Vec::new();
    if with_sts {
        write_sts(&mut st_bytes, sts);
    }

    let mut out = Vec::with_capacity(24 + ts_bits.buf.len() + st_bytes.len() + values.len());
    out.push(if with_sts { enc | FLAG_ST } else { enc });
    varint::put_uvarint(&mut out, samples.len() as u64);
    varint::put_varint(&mut out, ts[0]);
    varint::put_uvarint(&mut out, ts[ts.len() - 1].wrapping_sub(ts[0]) as u64);
    varint::put_varint(&mut out, step);
    ts_widths.write_header(&mut out);
    varint::put_uvarint(&mut out, ts_bits.buf.len() as u64);
    out.extend_from_slice(&ts_bits.buf);
    if with_sts {
        varint::put_uvarint(&mut out, st_bytes.len() as u64);
        out.extend_from_slice(&st_bytes);
    }
    out.extend_from_slice(&values);
    out
}

/// The fixed-position facts of a sealed chunk, readable without decoding samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub count: usize,
    pub min_t: i64,
    pub max_t: i64,
}

fn corrupt(detail: &str) -> StorageError {
    StorageError::corrupt("chunk", detail)
}

/// Reads a sealed chunk's header.
pub fn meta(bytes: &[u8]) -> Result<ChunkMeta, StorageError> {
    let mut r = Reader::new(bytes);
    r.u8().ok_or_else(|| corrupt("empty"))?;
    let count = r.uvarint().ok_or_else(|| corrupt("truncated count"))? as usize;
    let min_t = r.varint().ok_or_else(|| corrupt("truncated min time"))?;
    let span = r.uvarint().ok_or_else(|| corrupt("truncated max time"))?;
    let max_t = min_t.wrapping_add(span as i64);
    Ok(ChunkMeta {
        count,
        min_t,
        max_t,
    })
}

/// Decodes a sealed chunk, appending its samples to `out` and their start timestamps to
/// `sts`, which is kept either empty (no sample so far has one) or parallel to `out`.
pub fn decode_into(
    bytes: &[u8],
    out: &mut Vec<Sample>,
    sts: &mut Vec<i64>,
) -> Result<(), StorageError> {
    if crate::histogram::is_histogram_chunk(bytes) {
        // Histogram samples are read by `histogram::decode_sealed`.
        return Ok(());
    }
    let mut r = Reader::new(bytes);
    let flags = r.u8().ok_or_else(|| corrupt("empty"))?;
    let enc = flags & !FLAG_ST;
    let count = r.uvarint().ok_or_else(|| corrupt("truncated count"))? as usize;
    let t_first = r.varint().ok_or_else(|| corrupt("truncated min time"))?;
    r.uvarint().ok_or_else(|| corrupt("truncated max time"))?;
    let step = r.varint().ok_or_else(|| corrupt("truncated step"))?;
    let ts_widths = Widths::read_header(&mut r).ok_or_else(|| corrupt("bad timestamp widths"))?;
    let ts_len = r.uvarint().ok_or_else(|| corrupt("truncated length"))? as usize;
    let ts_bytes = r
        .bytes(ts_len)
        .ok_or_else(|| corrupt("truncated timestamps"))?;
    if count == 0 || count > usize::from(u16::MAX) {
        return Err(corrupt("bad sample count"));
    }
    let start = out.len();
    if flags & FLAG_ST != 0 {
        let len = r.uvarint().ok_or_else(|| corrupt("truncated length"))? as usize;
        let st_bytes = r
            .bytes(len)
            .ok_or_else(|| corrupt("truncated start timestamps"))?;
        sts.resize(start, 0);
        read_sts(st_bytes, count, sts).ok_or_else(|| corrupt("truncated start timestamps"))?;
    } else if !sts.is_empty() {
        sts.resize(start + count, 0);
    }
    out.reserve(count);
    let mut tr = BitReader::new(ts_bytes);
    let mut anchor = t_first;
    out.push(Sample::new(t_first, 0.0));
    for _ in 1..count {
        let res = ts_widths
            .read(&mut tr)
            .ok_or_else(|| corrupt("truncated timestamps"))?;
        out.push(Sample::new(
            anchor.wrapping_add(step).wrapping_add(res),
            0.0,
        ));
        anchor = next_anchor(anchor, step, res);
    }
    let values = &mut out[start..];
    match enc {
        ENC_XOR => {
            let mut vr = BitReader::new(r.rest());
            let mut xor =
                XorState::read_first(&mut vr).ok_or_else(|| corrupt("truncated values"))?;
            values[0].v = f64::from_bits(xor.prev);
            for s in &mut values[1..] {
                let bits = xor
                    .read_next(&mut vr)
                    .ok_or_else(|| corrupt("truncated values"))?;
                s.v = f64::from_bits(bits);
            }
        }
        ENC_DEC_DELTA | ENC_DEC_DOD => {
            let k = u32::from(r.u8().ok_or_else(|| corrupt("truncated scale"))?);
            let mut w = r.varint().ok_or_else(|| corrupt("truncated first value"))?;
            let factor = r.uvarint().ok_or_else(|| corrupt("truncated factor"))? as i64;
            let widths = Widths::read_header(&mut r).ok_or_else(|| corrupt("bad value widths"))?;
            if k > MAX_DECIMAL_SCALE {
                return Err(corrupt("bad decimal scale"));
            }
            let pow = 10f64.powi(k as i32);
            let mut vr = BitReader::new(r.rest());
            values[0].v = w as f64 / pow;
            let mut d = 0i64;
            for s in &mut values[1..] {
                let x = widths
                    .read(&mut vr)
                    .ok_or_else(|| corrupt("truncated values"))?
                    .wrapping_mul(factor);
                d = if enc == ENC_DEC_DOD {
                    d.wrapping_add(x)
                } else {
                    x
                };
                w = w.wrapping_add(d);
                s.v = w as f64 / pow;
            }
        }
        other => return Err(corrupt(&format!("unknown value encoding {other}"))),
    }
    Ok(())
}

/// Decodes a sealed chunk: its samples and their start timestamps (empty when none has one).
pub fn decode(bytes: &[u8]) -> Result<(Vec<Sample>, Vec<i64>), StorageError> {
    let mut out = Vec::new();
    let mut sts = Vec::new();
    decode_into(bytes, &mut out, &mut sts)?;
    Ok((out, sts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    /// Reads of every width at every bit alignment, near the end of the buffer too (where
    /// the reader falls back from its 8-byte window), give back what was written.
    #[test]
    fn bit_reads_of_every_width_and_alignment_round_trip() {
        let mut items = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for lead in 0..8u32 {
            for n in 1..=64u32 {
                x = x.rotate_left(13).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                items.push((lead, n, if n == 64 { x } else { x & ((1 << n) - 1) }));
            }
        }
        let mut w = BitWriter::default();
        for &(lead, n, v) in &items {
            w.write_bits(0, lead);
            w.write_bits(v, n);
            w.write_bit(n % 2 == 0);
        }
        let mut r = BitReader::new(w.bytes());
        for &(lead, n, v) in &items {
            assert_eq!(r.read_bits(lead), Some(0));
            assert_eq!(r.read_bits(n), Some(v), "width {n} after {lead} bits");
            assert_eq!(r.read_bit(), Some(n % 2 == 0));
        }
        let left = w.bytes().len() * 8 - r.pos;
        assert!(left < 8);
        assert_eq!(
            r.read_bits(left as u32 + 1),
            None,
            "reading past the end fails"
        );
    }

    fn check(samples: &[Sample]) -> usize {
        check_st(samples, &[])
    }

    /// Round-trips samples with start timestamps (`sts` empty or parallel) through the head
    /// and the sealed form; returns the sealed size.
    fn check_st(samples: &[Sample], sts: &[i64]) -> usize {
        let head = HeadChunk::from_samples(samples, sts).unwrap();
        let bits = |xs: &[Sample]| xs.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
        let want_sts = if sts.iter().any(|&st| st != 0) {
            sts.to_vec()
        } else {
            Vec::new()
        };
        let (got, got_sts) = head.samples();
        assert_eq!(bits(&got), bits(samples), "head round trip");
        assert_eq!(got_sts, want_sts, "head start timestamps");
        let sealed = head.seal();
        let (got, got_sts) = decode(&sealed).unwrap();
        assert_eq!(bits(&got), bits(samples), "sealed round trip");
        assert_eq!(got_sts, want_sts, "sealed start timestamps");
        let m = meta(&sealed).unwrap();
        assert_eq!(
            (m.count, m.min_t, m.max_t),
            (samples.len(), samples[0].t, samples.last().unwrap().t)
        );
        sealed.len()
    }

    fn series(f: impl Fn(usize) -> (i64, f64)) -> Vec<Sample> {
        (0..CHUNK_SAMPLES)
            .map(|i| {
                let (t, v) = f(i);
                Sample::new(t, v)
            })
            .collect()
    }

    #[test]
    fn every_bit_pattern_round_trips() {
        let specials = [
            f64::from_bits(STALE_NAN),
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            0.1,
            1e300,
            -2.5,
        ];
        let s = series(|i| {
            (
                1_700_000_000_000 + i as i64 * 15_000,
                specials[i % specials.len()],
            )
        });
        check(&s);
        let stale = &decode(&seal(&s, &[])).unwrap().0[0];
        assert_eq!(stale.v.to_bits(), STALE_NAN);
    }

    #[test]
    fn negative_zero_survives_the_decimal_encoding() {
        let zeros = series(|i| (i as i64 * 15_000, -0.0));
        check(&zeros);
        let mixed = series(|i| (i as i64 * 15_000, [0.0, -0.0, 1.5][i % 3]));
        check(&mixed);
    }

    #[test]
    fn odd_timestamps_round_trip() {
        check(&[
            Sample::new(i64::MIN + 1, 1.0),
            Sample::new(-5, 2.0),
            Sample::new(0, 3.0),
            Sample::new(i64::MAX, 4.0),
        ]);
        check(&[Sample::new(42, 1.0)]);
        check(&series(|i| (-1_000_000 + (i * i * 1000) as i64, i as f64)));
    }

    #[test]
    fn regular_counters_and_constants_are_tiny() {
        let constant = check(&series(|i| (1_700_000_000_000 + i as i64 * 15_000, 1.0)));
        assert!(constant <= 25, "constant chunk took {constant} bytes");
        let counter = check(&series(|i| {
            (
                1_700_000_000_000 + i as i64 * 15_000,
                1000.0 + 7.0 * i as f64,
            )
        }));
        assert!(counter <= 45, "steady counter took {counter} bytes");
        let gauge = check(&series(|i| {
            (
                1_700_000_000_000 + i as i64 * 15_000,
                ((i * 37) % 101) as f64 / 100.0,
            )
        }));
        assert!(gauge <= 150, "two-decimal gauge took {gauge} bytes");
    }

    #[test]
    fn jitter_and_gaps_round_trip() {
        let s = series(|i| {
            (
                1_700_000_000_000
                    + i as i64 * 15_000
                    + [0, 2, -1, 0, 3][i % 5]
                    + if i > 60 { 30_000 } else { 0 },
                i as f64 * 0.25,
            )
        });
        check(&s);
    }

    #[test]
    fn start_timestamps_round_trip() {
        let s = series(|i| (1_700_000_000_000 + i as i64 * 15_000, i as f64));
        // A counter's constant start: one byte per sample on top of the plain chunk.
        let constant = vec![1_699_999_000_000; s.len()];
        let plain = check(&s);
        let with_start = check_st(&s, &constant);
        assert!(
            with_start <= plain + s.len() + 8,
            "{with_start} vs {plain} bytes"
        );
        // Delta samples (each starts at the previous sample's time), unknown ones, negative
        // and odd values, and a first start timestamp appearing late.
        let delta: Vec<i64> = s.iter().map(|x| x.t - 15_000).collect();
        check_st(&s, &delta);
        let mixed: Vec<i64> = (0..s.len())
            .map(|i| [0, -5, i64::MAX, i64::MIN + 1, 1][i % 5])
            .collect();
        check_st(&s, &mixed);
        let late: Vec<i64> = (0..s.len()).map(|i| if i < 70 { 0 } else { 42 }).collect();
        check_st(&s, &late);
        // All unknown: stored exactly like a chunk without start timestamps.
        assert_eq!(check_st(&s, &vec![0; s.len()]), plain);
        check_st(&[Sample::new(7, 1.0)], &[3]);
    }

    #[test]
    fn decoding_keeps_start_timestamps_parallel_across_chunks() {
        let a = [Sample::new(1, 1.0), Sample::new(2, 2.0)];
        let b = [Sample::new(3, 3.0), Sample::new(4, 4.0)];
        let plain = seal(&a, &[]);
        let with = seal(&b, &[0, 2]);
        let (mut out, mut sts) = (Vec::new(), Vec::new());
        decode_into(&plain, &mut out, &mut sts).unwrap();
        assert!(sts.is_empty());
        decode_into(&with, &mut out, &mut sts).unwrap();
        decode_into(&plain, &mut out, &mut sts).unwrap();
        assert_eq!(sts, vec![0, 0, 0, 2, 0, 0]);
        assert_eq!(out.len(), sts.len());
    }
}
