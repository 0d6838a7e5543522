//! Write-ahead records: the accepted samples of one commit.
//!
//! A record is the value of one key in the `wal` column family, written in the same RocksDB
//! write batch as everything else the commit changes, so it reaches RocksDB's own write-ahead
//! log atomically with them. Layout (see `storage/FORMAT.md`, "WAL record"):
//!
//! ```text
//! u8 version (1)
//! repeated until the end:
//!   uvarint series id
//!   uvarint sample count n (>= 1)
//!   varint  first timestamp            then (n-1) × varint timestamp delta
//!   n × u64 little-endian value bits   (after all timestamps of the series)
//! ```

use crate::error::StorageError;
use crate::interface::{Sample, SeriesRef};
use crate::varint::{self, Reader};

const VERSION: u8 = 1;

/// Builds one record, series by series.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    buf: Vec<u8>,
    series: u32,
}

impl RecordBuilder {
    pub fn new() -> Self {
        RecordBuilder {
            buf: vec![VERSION],
            series: 0,
        }
    }

    /// Adds the samples of one series (in time order).
    pub fn add_series(&mut self, id: SeriesRef, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        self.series += 1;
        varint::put_uvarint(&mut self.buf, u64::from(id));
        varint::put_uvarint(&mut self.buf, samples.len() as u64);
        let mut prev = 0i64;
        for (i, s) in samples.iter().enumerate() {
            varint::put_varint(
                &mut self.buf,
                if i == 0 { s.t } else { s.t.wrapping_sub(prev) },
            );
            prev = s.t;
        }
        for s in samples {
            self.buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
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
pub fn decode(bytes: &[u8], mut f: impl FnMut(SeriesRef, &[Sample])) -> Result<(), StorageError> {
    let corrupt = |d: &str| StorageError::corrupt("wal record", d);
    let mut r = Reader::new(bytes);
    if r.u8() != Some(VERSION) {
        return Err(corrupt("unknown version"));
    }
    let mut samples = Vec::new();
    while !r.is_empty() {
        let id = r.uvarint().ok_or_else(|| corrupt("truncated series id"))?;
        let id = SeriesRef::try_from(id).map_err(|_| corrupt("series id out of range"))?;
        let n = r.uvarint().ok_or_else(|| corrupt("truncated count"))? as usize;
        if n == 0 || n > bytes.len() {
            return Err(corrupt("bad sample count"));
        }
        samples.clear();
        let mut t = 0i64;
        for i in 0..n {
            let d = r.varint().ok_or_else(|| corrupt("truncated timestamp"))?;
            t = if i == 0 { d } else { t.wrapping_add(d) };
            samples.push(Sample::new(t, 0.0));
        }
        for s in &mut samples {
            s.v = f64::from_bits(r.u64_le().ok_or_else(|| corrupt("truncated value"))?);
        }
        f(id, &samples);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut b = RecordBuilder::new();
        let a = [
            Sample::new(-5, 1.5),
            Sample::new(10, f64::from_bits(0x7ff0_0000_0000_0002)),
        ];
        let c = [Sample::new(1_700_000_000_000, -0.0)];
        b.add_series(7, &a);
        b.add_series(u32::MAX, &c);
        let bytes = b.finish();
        let mut got = Vec::new();
        decode(&bytes, |id, s| {
            got.push((
                id,
                s.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>(),
            ))
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (7, a.iter().map(|s| (s.t, s.v.to_bits())).collect()),
                (u32::MAX, c.iter().map(|s| (s.t, s.v.to_bits())).collect()),
            ]
        );
        assert!(decode(&bytes[..bytes.len() - 1], |_, _| {}).is_err());
    }
}
