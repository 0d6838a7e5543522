//! Key encodings for every column family (byte layouts in `storage/FORMAT.md`).
//!
//! All integers in keys are big-endian so that RocksDB's byte order is numeric order.
//! Timestamps in keys have their sign bit flipped so negative times sort before positive ones.

use crate::interface::SeriesRef;

/// Column family names.
pub const CF_SERIES: &str = "series";
pub const CF_POSTINGS: &str = "postings";
pub const CF_CHUNKS: &str = "chunks";
pub const CF_HEAD: &str = "head";
/// Every column family, in the order they are opened.
pub const ALL_CFS: [&str; 5] = [CF_SERIES, CF_POSTINGS, CF_CHUNKS, CF_HEAD, CF_WAL];

/// Formats 1 and 2 kept WAL records in this column family; format 3 keeps it empty.
pub const CF_WAL: &str = "wal";

/// Augur's WAL segment files, inside the data directory.
pub const WAL_DIR: &str = "wal";

/// Keys in the default column family.
pub const META_FORMAT: &[u8] = b"format_version";
/// The checkpoint: the first WAL segment not reflected in `head` and `chunks` (format 3; in
/// formats 1 and 2, the first `wal` record).
pub const META_CHECKPOINT: &[u8] = b"checkpoint_seq";

/// A delete in progress (see `delete.rs`): the series and intervals it removes, until the
/// checkpoint that makes it durable is written.
pub const META_DELETE: &[u8] = b"delete_pending";

/// The on-disk format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 4;
/// Older format versions this code reads: a store in one of them replays its `wal` column
/// family at open, and the first checkpoint empties it and marks the store
/// [`FORMAT_VERSION`] (version 2 only added start timestamps, which version 1 data lacks;
/// version 3 moved the WAL out of RocksDB). A format-3 store is marked format 4 at open:
/// version 4 only added native histograms.
pub const READABLE_FORMAT_VERSIONS: &[u32] = &[1, 2];

/// `series`, `head`: the series id, 4 bytes big-endian.
pub fn series_key(id: SeriesRef) -> [u8; 4] {
    id.to_be_bytes()
}

pub fn parse_series_key(key: &[u8]) -> Option<SeriesRef> {
    Some(u32::from_be_bytes(key.try_into().ok()?))
}

fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// `chunks`: series id (4 bytes BE) + chunk start time (8 bytes BE, sign bit flipped).
pub fn chunk_key(id: SeriesRef, start: i64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&id.to_be_bytes());
    k[4..].copy_from_slice(&time_bytes(start));
    k
}

pub fn parse_chunk_key(key: &[u8]) -> Option<(SeriesRef, i64)> {
    if key.len() != 12 {
        return None;
    }
    let id = u32::from_be_bytes(key[..4].try_into().ok()?);
    let t = (u64::from_be_bytes(key[4..].try_into().ok()?) ^ (1 << 63)) as i64;
    Some((id, t))
}

/// `postings`: label name, a 0x00 byte, label value. Names cannot contain 0x00, so the split is
/// unambiguous. The key of the list of all series is the single byte 0x00 (empty name and value).
pub fn postings_key(name: &str, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + value.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(value.as_bytes());
    k
}

/// The postings key of the list that holds every series.
pub const ALL_POSTINGS_KEY: &[u8] = &[0];

/// Splits a postings key into name and value.
pub fn parse_postings_key(key: &[u8]) -> Option<(&str, &str)> {
    let nul = key.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&key[..nul]).ok()?;
    let value = std::str::from_utf8(&key[nul + 1..]).ok()?;
    Some((name, value))
}

/// `wal`: the record sequence number, 8 bytes big-endian.
pub fn wal_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn parse_wal_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_sort_by_series_then_time() {
        let keys = [
            chunk_key(1, i64::MIN),
            chunk_key(1, -5),
            chunk_key(1, 0),
            chunk_key(1, 7),
            chunk_key(2, -9),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parse_chunk_key(&chunk_key(9, -42)), Some((9, -42)));
    }

    #[test]
    fn postings_keys_split_at_first_nul() {
        assert_eq!(
            parse_postings_key(&postings_key("job", "a\0b")),
            Some(("job", "a\0b"))
        );
        assert_eq!(parse_postings_key(ALL_POSTINGS_KEY), Some(("", "")));
    }
}
