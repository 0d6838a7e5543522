//! The write-ahead log's files: numbered segments in `<data>/wal/`, one checksummed frame per
//! commit (the frame's payload is a record from `wal.rs`). Byte layout in `storage/FORMAT.md`,
//! "WAL segments".
//!
//! Only [`Log::append`] writes frames, always to the newest segment, one `write` per frame
//! under a lock, so a commit's record is in the kernel (it survives `kill -9`) when `append`
//! returns, and on the disk too with `sync`. [`Log::rotate`] starts the next segment; a
//! checkpoint rotates first and, once the head is persisted, removes the segments before the
//! new one ([`Log::remove_below`]). Nothing ever appends to a segment written by an earlier
//! process: [`Log::open`] starts a new one, so a frame torn by a crash is always a file's last.
//!
//! Reading ([`read_segment`]) stops at the first frame that is incomplete or fails its
//! checksum and says where: the frames before it are good, the bytes after it are dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Result, StorageError};

/// First bytes of every segment: magic and layout version.
const HEADER: &[u8; 8] = b"AUGWAL\x00\x01";
/// Frame header: `u32le` payload length, `u64le` XXH3-64 of the payload.
const FRAME_HEADER: usize = 12;
/// A frame longer than this is treated as corrupt (commits are far smaller).
const MAX_FRAME: u32 = 1 << 30;

/// The file name of segment `n`: 16 hex digits, so names sort in number order.
fn segment_name(n: u64) -> String {
    format!("{n:016x}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    (name.len() == 16)
        .then(|| u64::from_str_radix(name, 16).ok())
        .flatten()
}

/// The segment numbers present in `dir`, ascending (none when it does not exist).
pub(super) fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                if let Some(n) = e?.file_name().to_str().and_then(parse_segment_name) {
                    out.push(n);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort_unstable();
    Ok(out)
}

struct Active {
    n: u64,
    file: File,
    /// Set after a failed write, which may have left part of a frame: the next append starts
    /// a new segment, so later frames never sit behind a torn one.
    broken: bool,
}

/// The open log: the segment being written and the directory.
pub(crate) struct Log {
    dir: PathBuf,
    sync: bool,
    active: Mutex<Active>,
}

fn create_segment(dir: &Path, n: u64, sync: bool) -> io::Result<File> {
    let path = dir.join(segment_name(n));
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    file.write_all(HEADER)?;
    if sync {
        file.sync_data()?;
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

impl Log {
    /// Opens the log in `dir` (created if missing) and starts a new segment numbered after
    /// every existing one and at least `floor`.
    pub(crate) fn open(dir: &Path, floor: u64, sync: bool) -> Result<Log> {
        fs::create_dir_all(dir)?;
        let next = segments(dir)?
            .last()
            .map_or(floor, |&last| (last + 1).max(floor))
            .max(1);
        let file = create_segment(dir, next, sync)?;
        Ok(Log {
            dir: dir.to_path_buf(),
            sync,
            active: Mutex::new(Active {
                n: next,
                file,
                broken: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one frame holding `record` to the newest segment.
    pub(crate) fn append(&self, record: &[u8]) -> Result<()> {
        let len = u32::try_from(record.len())
            .ok()
            .filter(|&l| l <= MAX_FRAME)
            .ok_or_else(|| StorageError::corrupt("wal", "record too large for one frame"))?;
        let mut frame = Vec::with_capacity(FRAME_HEADER + record.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(record).to_le_bytes());
        frame.extend_from_slice(record);
        let mut a = self.lock();
        if a.broken {
            let n = a.n + 1;
            a.file = create_segment(&self.dir, n, self.sync)?;
            a.n = n;
            a.broken = false;
        }
        let written = a.file.write_all(&frame).and_then(|()| {
            if self.sync {
                a.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            a.broken = true;
            return Err(e.into());
        }
        Ok(())
    }

    /// Starts the next segment; returns its number. Every frame appended before this call is
    /// in a lower-numbered segment, every frame after it in this one or a later one.
    pub(crate) fn rotate(&self) -> Result<u64> {
        let mut a = self.lock();
        let n = a.n + 1;
        a.file = create_segment(&self.dir, n, self.sync)?;
        a.n = n;
        a.broken = false;
        Ok(n)
    }

    /// Deletes every segment numbered below `n`; returns how many.
    pub(crate) fn remove_below(&self, n: u64) -> Result<usize> {
        let mut removed = 0;
        for s in segments(&self.dir)?.into_iter().take_while(|&s| s < n) {
            fs::remove_file(self.dir.join(segment_name(s)))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Copies the segments numbered `from..to` into `dst` (created). They must be closed
    /// (`to` at most the newest segment's number).
    pub(crate) fn copy_segments(&self, from: u64, to: u64, dst: &Path) -> Result<()> {
        fs::create_dir_all(dst)?;
        for s in segments(&self.dir)?
            .into_iter()
            .filter(|s| (from..to).contains(s))
        {
            fs::copy(self.dir.join(segment_name(s)), dst.join(segment_name(s)))?;
        }
        Ok(())
    }

    /// Bytes in every segment file.
    pub(crate) fn disk_bytes(&self) -> u64 {
        segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| fs::metadata(self.dir.join(segment_name(s))).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// What reading one segment found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct SegmentRead {
    pub frames: u64,
    /// Where reading stopped before the end, and why: (byte offset, reason, bytes dropped).
    pub torn: Option<(u64, &'static str, u64)>,
}

/// Calls `f` with the payload of every good frame of segment `n` in `dir`, in order.
pub(super) fn read_segment(
    dir: &Path,
    n: u64,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<SegmentRead> {
    let path = dir.join(segment_name(n));
    let file = File::open(&path)?;
    let size = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut out = SegmentRead::default();
    let mut header = [0u8; 8];
    if size < HEADER.len() as u64 {
        if size > 0 {
            out.torn = Some((0, "incomplete segment header", size));
        }
        return Ok(out);
    }
    r.read_exact(&mut header)?;
    if &header != HEADER {
        return Err(StorageError::corrupt(
            "wal",
            format!(
                "{} is not an Augur WAL segment (bad header)",
                path.display()
            ),
        ));
    }
    let mut offset = HEADER.len() as u64;
    let mut payload = Vec::new();
    while offset < size {
        let torn = |reason| Some((offset, reason, size - offset));
        if size - offset < FRAME_HEADER as u64 {
            out.torn = torn("incomplete frame header");
            break;
        }
        let mut fh = [0u8; FRAME_HEADER];
        r.read_exact(&mut fh)?;
        let len = u32::from_le_bytes(fh[..4].try_into().expect("4 bytes"));
        let sum = u64::from_le_bytes(fh[4..].try_into().expect("8 bytes"));
        if len > MAX_FRAME || u64::from(len) > size - offset - FRAME_HEADER as u64 {
            out.torn = torn("incomplete frame");
            break;
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload)?;
        if xxhash_rust::xxh3::xxh3_64(&payload) != sum {
            out.torn = torn("checksum mismatch");
            break;
        }
        f(&payload)?;
        out.frames += 1;
        offset += (FRAME_HEADER + payload.len()) as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(dir: &Path, n: u64) -> (Vec<Vec<u8>>, SegmentRead) {
        let mut got = Vec::new();
        let read = read_segment(dir, n, |p| {
            got.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        (got, read)
    }

    #[test]
    fn frames_round_trip_across_rotation_and_restart() {
        let dir = tempfile::TempDir::new().unwrap();
        let wal = dir.path().join("wal");
        let log = Log::open(&wal, 0, false).unwrap();
        log.append(b"one").unwrap();
        log.append(b"").unwrap();
        assert_eq!(log.rotate().unwrap(), 2);
        log.append(b"three").unwrap();
        drop(log);
        // A new process starts a new segment after the existing ones.
        let log = Log::open(&wal, 0, false).unwrap();
        assert_eq!(segments(&wal).unwrap(), [1, 2, 3]);
        assert_eq!(frames(&wal, 1).0, [b"one".to_vec(), Vec::new()]);
        assert_eq!(frames(&wal, 2).0, [b"three".to_vec()]);
        assert_eq!(frames(&wal, 3).1, SegmentRead::default());
        assert_eq!(log.remove_below(3).unwrap(), 2);
        assert_eq!(segments(&wal).unwrap(), [3]);
        // The floor wins over the existing numbers.
        drop(log);
        Log::open(&wal, 10, false).unwrap();
        assert_eq!(segments(&wal).unwrap(), [3, 10]);
    }

    #[test]
    fn reading_stops_at_a_torn_or_corrupt_frame_and_says_where() {
        let dir = tempfile::TempDir::new().unwrap();
        let wal = dir.path().join("wal");
        let log = Log::open(&wal, 0, false).unwrap();
        log.append(b"good").unwrap();
        log.append(b"second").unwrap();
        drop(log);
        let path = wal.join(segment_name(1));
        let full = fs::read(&path).unwrap();
        let second_at = (HEADER.len() + FRAME_HEADER + 4) as u64;

        // Cut in the middle of the second frame, as a crash mid-write would.
        fs::write(&path, &full[..full.len() - 2]).unwrap();
        let (got, read) = frames(&wal, 1);
        assert_eq!(got, [b"good".to_vec()]);
        assert_eq!(
            read.torn,
            Some((second_at, "incomplete frame", (FRAME_HEADER + 4) as u64))
        );

        // A flipped payload byte fails the checksum.
        let mut bad = full.clone();
        *bad.last_mut().unwrap() ^= 1;
        fs::write(&path, &bad).unwrap();
        let (got, read) = frames(&wal, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(read.torn.map(|t| t.1), Some("checksum mismatch"));

        // Not a segment at all.
        fs::write(&path, b"something else entirely").unwrap();
        assert!(read_segment(&wal, 1, |_| Ok(())).is_err());
    }
}
