//! The inverted index: one croaring bitmap of series ids per `name=value`, plus one of all series.
//!
//! Index updates are RocksDB merge operands, so adding a series never reads the list first.
//! Every value and operand in the `postings` column family is a *postings delta*:
//! `[uvarint len(add)][add: portable roaring][remove: portable roaring]`, meaning "remove these
//! ids, then add those". A stored list is a delta with an empty remove set. Deltas compose:
//! applying (a1, r1) then (a2, r2) equals applying (a1 - r2 ∪ a2, r1 ∪ r2), which is the
//! partial merge.

use croaring::{Bitmap, Portable};
use rocksdb::MergeOperands;

use crate::varint;

/// A pending change to one postings list.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub add: Bitmap,
    pub remove: Bitmap,
}

impl Delta {
    pub fn add(ids: &[u32]) -> Self {
        Delta {
            add: Bitmap::of(ids),
            remove: Bitmap::new(),
        }
    }

    pub fn remove(ids: &[u32]) -> Self {
        Delta {
            add: Bitmap::new(),
            remove: Bitmap::of(ids),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let add = self.add.serialize::<Portable>();
        let remove = self.remove.serialize::<Portable>();
        let mut out = Vec::with_capacity(add.len() + remove.len() + 5);
        varint::put_uvarint(&mut out, add.len() as u64);
        out.extend_from_slice(&add);
        out.extend_from_slice(&remove);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (len, n) = varint::uvarint(bytes)?;
        let rest = &bytes[n..];
        let len = usize::try_from(len).ok()?;
        if rest.len() < len {
            return None;
        }
        let add = Bitmap::try_deserialize::<Portable>(&rest[..len])?;
        let remove = Bitmap::try_deserialize::<Portable>(&rest[len..])?;
        Some(Delta { add, remove })
    }

    /// `self` followed by `next`, as one delta.
    fn then(mut self, next: &Delta) -> Delta {
        self.add.andnot_inplace(&next.remove);
        self.add.or_inplace(&next.add);
        self.remove.or_inplace(&next.remove);
        self
    }
}

/// Reads a stored postings list (a delta with nothing to remove).
pub fn decode_list(bytes: &[u8]) -> Option<Bitmap> {
    Delta::decode(bytes).map(|d| d.add)
}

fn fold(existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Delta> {
    let mut acc = match existing {
        Some(bytes) => Delta::decode(bytes)?,
        None => Delta::default(),
    };
    for op in operands {
        acc = acc.then(&Delta::decode(op)?);
    }
    Some(acc)
}

/// Full merge: the result is a plain list.
pub fn full_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut d = fold(existing, operands)?;
    d.remove = Bitmap::new();
    d.add.run_optimize();
    Some(d.encode())
}

/// Partial merge: operands combine into one delta.
pub fn partial_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    fold(existing, operands).map(|d| d.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_compose() {
        let a = Delta {
            add: Bitmap::of(&[1, 2, 3]),
            remove: Bitmap::of(&[9]),
        };
        let b = Delta {
            add: Bitmap::of(&[9]),
            remove: Bitmap::of(&[2]),
        };
        let c = a.then(&b);
        assert_eq!(c.add.to_vec(), vec![1, 3, 9]);
        assert_eq!(c.remove.to_vec(), vec![2, 9]);
        let round = Delta::decode(&c.encode()).unwrap();
        assert_eq!(round.add.to_vec(), vec![1, 3, 9]);
    }
}
