//! Write-ahead records: the accepted samples of one commit.
//!
//! A record is the value of one key in the `wal` column family, written in the same RocksDB
//! write batch as everything else the commit changes, so it reaches RocksDB's own write-ahead
//! log atomically with them. Layout (see `storage/FORMAT.md`, "WAL record"):
//!
//! ```text
//! u8 version (3; records of versions 1 and 2 are read too)
//! varint base time                     (version 3: the first sample's time)
//! repeated until the end:
//!   uvarint series id
//!   uvarint sample count n (>= 1)
//!   varint  first timestamp − base     then (n-1) × varint timestamp delta
//!                                       (versions 1, 2: the first timestamp itself)
//!   n × u64 little-endian value bits   (after all timestamps of the series)
//!   u8 start timestamps present (0 or 1; version 2 only)
//!   if 1: n × varint start timestamp   (each a difference to the previous one, the first
//!                                        against 0; 0 = unknown)
//! ```

use crate::error::StorageError;
use crate::histogram::{Histogram, HistogramSample};
use crate::interface::SeriesRef;
use crate::varint::{self, Reader};

/// The version this code writes.
const VERSION: u8 = 3;
/// Version 2: first timestamps absolute (no base time).
const VERSION_2: u8 = 2;
/// Version 1 (format version 1): no start timestamps.
const VERSION_1: u8 = 1;

/// One logged sample: time, value and start timestamp (0 = unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Logged {
    pub t: i64,
    pub v: f64,
    pub st: i64,
}

impl Logged {
    pub const fn new(t: i64, v: f64, st: i64) -> Self {
        Logged { t, v, st }
    }
}

/// Builds one record, series by series.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    buf: Vec<u8>,
    series: u32,
    /// The base time, once the first series set it.
    base: Option<i64>,
}

impl RecordBuilder {
    pub fn new() -> Self {
        RecordBuilder {
            buf: vec![VERSION],
            series: 0,
            base: None,
        }
    }

    /// Adds the samples of one series (in apply order: out-of-order samples may go back in
    /// time, which the signed differences allow).
    pub fn add_series(&mut self, id: SeriesRef, samples: &[Logged]) {
        if samples.is_empty() {
            return;
        }
        let base = series_header(
            &mut self.buf,
            &mut self.base,
            id,
            samples[0].t,
            samples.len(),
        );
        self.series += 1;
        let mut prev = base;
        for s in samples {
            varint::put_varint(&mut self.buf, s.t.wrapping_sub(prev));
            prev = s.t;
        }
        for s in samples {
            self.buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
        }
        let with_sts = samples.iter().any(|s| s.st != 0);
        self.buf.push(u8::from(with_sts));
        if with_sts {
            let mut prev = 0i64;
            for s in samples {
                varint::put_varint(&mut self.buf, s.st.wrapping_sub(prev));
                prev = s.st;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series == 0
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Decodes a record, calling `f` for each series' samples.
pub fn decode(bytes: &[u8], mut f: impl FnMut(SeriesRef, &[Logged])) -> Result<(), StorageError> {
    let corrupt = |d: &str| StorageError::corrupt("wal record", d);
    let mut r = Reader::new(bytes);
    let version = r.u8();
    let base = match version {
        Some(VERSION) if r.is_empty() => 0,
        Some(VERSION) => r.varint().ok_or_else(|| corrupt("truncated base time"))?,
        Some(VERSION_2 | VERSION_1) => 0,
        _ => return Err(corrupt("unknown version")),
    };
    let mut samples = Vec::new();
    while !r.is_empty() {
        let (id, n) = read_series_header(&mut r, bytes.len(), corrupt)?;
        samples.clear();
        let mut t = base;
        for _ in 0..n {
            let d = r.varint().ok_or_else(|| corrupt("truncated timestamp"))?;
            t = t.wrapping_add(d);
            samples.push(Logged::new(t, 0.0, 0));
        }
        for s in &mut samples {
            s.v = f64::from_bits(r.u64_le().ok_or_else(|| corrupt("truncated value"))?);
        }
        if version != Some(VERSION_1) {
            match r.u8() {
                Some(0) => {}
                Some(1) => {
                    let mut st = 0i64;
                    for s in &mut samples {
                        let d = r
                            .varint()
                            .ok_or_else(|| corrupt("truncated start timestamp"))?;
                        st = st.wrapping_add(d);
                        s.st = st;
                    }
                }
                _ => return Err(corrupt("bad start timestamp flag")),
            }
        }
        f(id, &samples);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per series: (time, value bits, start timestamp) of each sample.
    type Decoded = Vec<(SeriesRef, Vec<(i64, u64, i64)>)>;

    fn decoded(bytes: &[u8]) -> Decoded {
        let mut got = Vec::new();
        decode(bytes, |id, s| {
            got.push((id, s.iter().map(|s| (s.t, s.v.to_bits(), s.st)).collect()))
        })
        .unwrap();
        got
    }

    #[test]
    fn round_trips() {
        let mut b = RecordBuilder::new();
        let a = [
            Logged::new(-5, 1.5, 0),
            Logged::new(10, f64::from_bits(0x7ff0_0000_0000_0002), 0),
        ];
        let c = [Logged::new(1_700_000_000_000, -0.0, 0)];
        let d = [
            Logged::new(20, 1.0, 0),
            Logged::new(30, 2.0, 20),
            Logged::new(40, 3.0, i64::MIN + 1),
        ];
        b.add_series(7, &a);
        b.add_series(u32::MAX, &c);
        b.add_series(9, &d);
        let bytes = b.finish();
        let want = |xs: &[Logged]| xs.iter().map(|s| (s.t, s.v.to_bits(), s.st)).collect();
        assert_eq!(
            decoded(&bytes),
            vec![(7, want(&a)), (u32::MAX, want(&c)), (9, want(&d))]
        );
        assert!(decode(&bytes[..bytes.len() - 1], |_, _| {}).is_err());
    }

    #[test]
    fn reads_version_2_records() {
        // Written before storage format 3's records: absolute first timestamps, no base.
        let mut v2 = vec![VERSION_2];
        varint::put_uvarint(&mut v2, 3);
        varint::put_uvarint(&mut v2, 2);
        varint::put_varint(&mut v2, 1_700_000_000_000);
        varint::put_varint(&mut v2, 15);
        v2.extend_from_slice(&1.0f64.to_bits().to_le_bytes());
        v2.extend_from_slice(&2.0f64.to_bits().to_le_bytes());
        v2.push(1);
        varint::put_varint(&mut v2, 5);
        varint::put_varint(&mut v2, 0);
        assert_eq!(
            decoded(&v2),
            vec![(
                3,
                vec![
                    (1_700_000_000_000, 1.0f64.to_bits(), 5),
                    (1_700_000_000_015, 2.0f64.to_bits(), 5)
                ]
            )]
        );
    }

    #[test]
    fn reads_version_1_records() {
        // Written by format version 1: no start-timestamp flag after the values.
        let mut v1 = vec![VERSION_1];
        varint::put_uvarint(&mut v1, 3);
        varint::put_uvarint(&mut v1, 2);
        varint::put_varint(&mut v1, 100);
        varint::put_varint(&mut v1, 15);
        v1.extend_from_slice(&1.0f64.to_bits().to_le_bytes());
        v1.extend_from_slice(&2.0f64.to_bits().to_le_bytes());
        assert_eq!(
            decoded(&v1),
            vec![(
                3,
                vec![(100, 1.0f64.to_bits(), 0), (115, 2.0f64.to_bits(), 0)]
            )]
        );
    }
}

/// Writes a series' id and sample count, and the record's base time before the first series;
/// returns the base.
fn series_header(
    buf: &mut Vec<u8>,
    base: &mut Option<i64>,
    id: SeriesRef,
    first_t: i64,
    n: usize,
) -> i64 {
    let base = *base.get_or_insert_with(|| {
        varint::put_varint(buf, first_t);
        first_t
    });
    varint::put_uvarint(buf, u64::from(id));
    varint::put_uvarint(buf, n as u64);
    base
}

/// Reads a series' id and sample count (at least 1, at most the record's length).
fn read_series_header(
    r: &mut Reader<'_>,
    record_len: usize,
    corrupt: impl Fn(&str) -> StorageError,
) -> Result<(SeriesRef, usize), StorageError> {
    let id = r.uvarint().ok_or_else(|| corrupt("truncated series id"))?;
    let id = SeriesRef::try_from(id).map_err(|_| corrupt("series id out of range"))?;
    let n = r.uvarint().ok_or_else(|| corrupt("truncated count"))? as usize;
    if n == 0 || n > record_len {
        return Err(corrupt("bad sample count"));
    }
    Ok((id, n))
}

/// Version byte of a histogram record (a commit's native histogram samples; its floats go in
/// a record of their own). Layout (`storage/FORMAT.md`, "WAL histogram record"):
///
/// ```text
/// u8 0x48
/// varint base time (the first sample's)
/// repeated until the end:
///   uvarint series id
///   uvarint sample count n (>= 1)
///   n × (varint t − previous t (the first against base), varint start timestamp,
///        histogram in its byte form)
/// ```
pub const HIST_VERSION: u8 = 0x48;

/// Whether a record holds histograms.
pub fn is_histogram_record(bytes: &[u8]) -> bool {
    bytes.first() == Some(&HIST_VERSION)
}

/// Builds one histogram record, series by series.
#[derive(Debug)]
pub struct HistRecordBuilder {
    buf: Vec<u8>,
    series: u32,
    base: Option<i64>,
}

impl Default for HistRecordBuilder {
    fn default() -> Self {
        HistRecordBuilder {
            buf: vec![HIST_VERSION],
            series: 0,
            base: None,
        }
    }
}

impl HistRecordBuilder {
    /// Adds one histogram sample of series `id` (a series may come back, once per sample).
    pub fn add(&mut self, id: SeriesRef, t: i64, st: i64, h: &Histogram) {
        let base = series_header(&mut self.buf, &mut self.base, id, t, 1);
        self.series += 1;
        varint::put_varint(&mut self.buf, t.wrapping_sub(base));
        varint::put_varint(&mut self.buf, st);
        h.encode(&mut self.buf);
    }

    pub fn is_empty(&self) -> bool {
        self.series == 0
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Decodes a histogram record, calling `f` with each series' samples.
pub fn decode_histograms(
    bytes: &[u8],
    mut f: impl FnMut(SeriesRef, Vec<HistogramSample>),
) -> Result<(), StorageError> {
    let corrupt = |d: &str| StorageError::corrupt("wal histogram record", d);
    let mut r = Reader::new(bytes);
    if r.u8() != Some(HIST_VERSION) {
        return Err(corrupt("not a histogram record"));
    }
    if r.is_empty() {
        return Ok(());
    }
    let base = r.varint().ok_or_else(|| corrupt("truncated base time"))?;
    while !r.is_empty() {
        let (id, n) = read_series_header(&mut r, bytes.len(), corrupt)?;
        let mut samples = Vec::with_capacity(n);
        let mut t = base;
        for _ in 0..n {
            t = t.wrapping_add(r.varint().ok_or_else(|| corrupt("truncated time"))?);
            let st = r.varint().ok_or_else(|| corrupt("truncated start time"))?;
            let h = Histogram::decode(&mut r).ok_or_else(|| corrupt("truncated histogram"))?;
            samples.push(HistogramSample { t, st, h });
        }
        f(id, samples);
    }
    Ok(())
}
