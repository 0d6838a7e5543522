//! `augur tsdb import`: exposition files (or NAB's CSV files) into a store, through
//! [`augur_storage::Backfill`], so history of any age is written.
//!
//! Lines may come in any order. Samples are buffered per series and written when a file ends
//! (or the buffers reach [`FLUSH_SAMPLES`]); each write sorts its series' samples, so a file
//! sorted by series or by time costs the same. A sample whose timestamp a series already holds
//! is a no-op with the same value and a conflict (reported, skipped) with another.

use std::collections::HashMap;
use std::time::Instant;

use augur_storage::{Backfill, Labels, RejectReason, Sample};

use crate::error::{Error, Result};
use crate::exposition::{self, Entry, Format};

/// Buffered samples across all series that trigger a write before the file ends.
pub const FLUSH_SAMPLES: usize = 4 << 20;

/// Problems reported one by one before the rest are only counted.
const SHOWN_PER_KIND: usize = 10;

/// Why samples were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A line that could not be read.
    Malformed,
    /// A timestamp the series holds (or the file repeats) with another value.
    Conflict,
    /// Older than the retention period allows.
    OutOfBounds,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::Conflict => "conflicting value",
            Skip::OutOfBounds => "out of bounds (retention)",
        }
    }
}

/// What an import did, so far.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: usize,
    /// Distinct series seen.
    pub series: usize,
    /// Samples read from the files.
    pub read: u64,
    /// Samples written, or already present with the same value.
    pub written: u64,
    pub skipped: std::collections::BTreeMap<Skip, u64>,
    /// The first problems of each kind, as `file:line:column: message`.
    pub problems: Vec<String>,
    pub seconds: f64,
}

impl Summary {
    fn skip(&mut self, kind: Skip, message: impl FnOnce() -> String) {
        let n = self.skipped.entry(kind).or_default();
        *n += 1;
        if *n as usize <= SHOWN_PER_KIND {
            self.problems.push(message());
        }
    }

    /// The one-line summary printed at the end.
    pub fn line(&self) -> String {
        let skipped: u64 = self.skipped.values().sum();
        let mut s = format!(
            "imported {} samples of {} series from {} file(s) in {:.2}s ({:.0} samples/s)",
            self.written,
            self.series,
            self.files,
            self.seconds,
            self.read as f64 / self.seconds.max(1e-9)
        );
        if skipped == 0 {
            s.push_str(", none skipped");
        } else {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            s.push_str(&format!(", skipped {skipped}: {}", parts.join(", ")));
        }
        s
    }
}

/// Progress of the file being read: bytes done, bytes in all, samples read so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, u64);

struct Buffer {
    labels: Labels,
    samples: Vec<Sample>,
    /// The line each sample came from.
    lines: Vec<u32>,
}

/// Writes files into a store.
pub struct Importer<'a> {
    db: &'a dyn Backfill,
    strict: bool,
    by_labels: HashMap<Labels, usize>,
    buffers: Vec<Buffer>,
    buffered: usize,
    started: Instant,
    pub summary: Summary,
}

impl std::fmt::Debug for Importer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl<'a> Importer<'a> {
    /// With `strict`, the first malformed line or skipped sample stops the import.
    pub fn new(db: &'a dyn Backfill, strict: bool) -> Self {
        Importer {
            db,
            strict,
            by_labels: HashMap::new(),
            buffers: Vec::new(),
            buffered: 0,
            started: Instant::now(),
            summary: Summary::default(),
        }
    }

    /// The buffer of a series, created on first sight.
    fn buffer_of(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.by_labels.get(&labels) {
            return i;
        }
        let i = self.buffers.len();
        self.by_labels.insert(labels.clone(), i);
        self.buffers.push(Buffer {
            labels,
            samples: Vec::new(),
            lines: Vec::new(),
        });
        self.summary.series += 1;
        i
    }

    fn push(&mut self, buf: usize, s: Sample, line: u32, file: &str) -> Result<()> {
        let b = &mut self.buffers[buf];
        b.samples.push(s);
        b.lines.push(line);
        self.summary.read += 1;
        self.buffered += 1;
        if self.buffered >= FLUSH_SAMPLES {
            self.flush(file)?;
        }
        Ok(())
    }

    /// A malformed line: counted and reported, or the end of a strict import.
    fn malformed(&mut self, file: &str, line: usize, e: exposition::LineError) -> Result<()> {
        let msg = format!("{file}:{line}:{}: {}", e.column, e.message);
        if self.strict {
            return Err(Error::Input {
                what: format!("{file}:{line}:{}", e.column),
                message: e.message,
            });
        }
        self.summary.skip(Skip::Malformed, || msg);
        Ok(())
    }

    /// Reads one exposition file.
    pub fn exposition_file(&mut self, path: &str, progress: Progress<'_>) -> Result<Format> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Input {
            what: path.to_owned(),
            message: format!("cannot read: {e}"),
        })?;
        let format = Format::detect(&text);
        self.summary.files += 1;
        let total = text.len() as u64;
        let mut by_text: HashMap<&str, usize> = HashMap::new();
        let mut offset = 0u64;
        let mut eof_at: Option<usize> = None;
        for (n, line) in text.split('\n').enumerate() {
            let line_no = n + 1;
            offset += line.len() as u64 + 1;
            if n % 65_536 == 0 {
                progress(offset.min(total), total, self.summary.read);
            }
            if let Some(at) = eof_at {
                if !line.trim().is_empty() {
                    self.malformed(
                        path,
                        line_no,
                        exposition::LineError {
                            column: 1,
                            message: format!("content after # EOF (line {at})"),
                        },
                    )?;
                }
                continue;
            }
            match exposition::split_line(line, format) {
                Ok(Entry::Skip) => {}
                Ok(Entry::Eof) => eof_at = Some(line_no),
                Ok(Entry::Sample { series, v, t }) => {
                    let buf = match by_text.get(series) {
                        Some(&b) => b,
                        None => match exposition::parse_series(series) {
                            Ok(labels) => {
                                let b = self.buffer_of(labels);
                                by_text.insert(series, b);
                                b
                            }
                            Err(e) => {
                                self.malformed(path, line_no, e)?;
                                continue;
                            }
                        },
                    };
                    self.push(buf, Sample::new(t, v), line_no as u32, path)?;
                }
                Err(e) => self.malformed(path, line_no, e)?,
            }
        }
        self.flush(path)?;
        progress(total, total, self.summary.read);
        Ok(format)
    }

    /// Imports rows already read (a NAB CSV file, say) as one series. `lines` gives each
    /// row's line number for reports.
    pub fn series(&mut self, file: &str, labels: Labels, rows: &[(u32, Sample)]) -> Result<()> {
        self.summary.files += 1;
        let b = self.buffer_of(labels);
        for &(line, s) in rows {
            self.push(b, s, line, file)?;
        }
        self.flush(file)
    }

    /// Writes every buffer.
    fn flush(&mut self, file: &str) -> Result<()> {
        for i in 0..self.buffers.len() {
            if self.buffers[i].samples.is_empty() {
                continue;
            }
            let b = &mut self.buffers[i];
            let samples = std::mem::take(&mut b.samples);
            let lines = std::mem::take(&mut b.lines);
            let report = self
                .db
                .backfill(&b.labels, &samples)
                .map_err(|e| Error::Storage(e.to_string()))?;
            self.summary.written += report.accepted as u64;
            let labels = b.labels.clone();
            for r in report.rejected {
                let kind = match r.reason {
                    RejectReason::OutOfBounds => Skip::OutOfBounds,
                    RejectReason::Duplicate
                    | RejectReason::OutOfOrder
                    | RejectReason::TooOld
                    | RejectReason::HistogramSeries => Skip::Conflict,
                };
                let line = lines[r.index];
                let msg = || {
                    match kind {
                    Skip::OutOfBounds => format!(
                        "{file}:{line}: sample of {labels} at {} is older than the retention period allows; skipped",
                        r.t
                    ),
                    _ => format!(
                        "{file}:{line}: sample of {labels} at {} has a different value than the one already stored (or earlier in the input); skipped",
                        r.t
                    ),
                }
                };
                if self.strict {
                    return Err(Error::Input {
                        what: format!("{file}:{line}"),
                        message: msg()
                            .split_once(": ")
                            .map(|(_, m)| m.to_owned())
                            .unwrap_or_default(),
                    });
                }
                self.summary.skip(kind, msg);
            }
        }
        self.buffered = 0;
        self.summary.seconds = self.started.elapsed().as_secs_f64();
        Ok(())
    }
}
