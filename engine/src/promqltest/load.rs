//! The `load` command: expand a block's series lines into samples at `k × step`, with the
//! start timestamps of their `@st` lines, and commit them through the storage traits
//! (FORMAT.md §3.1, §3.2).

use augur_storage::{Appendable, CommitReport, Result, Sample};

use super::script::{Point, SeriesLine};

/// What a load wrote, and what it could not (native histogram positions are not supported).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub samples: usize,
    pub histograms_skipped: usize,
    pub report: CommitReport,
}

/// The float samples a series line stands for, with `step` between positions from t = 0.
pub fn samples_of(line: &SeriesLine, step: i64) -> Vec<Sample> {
    line.points
        .iter()
        .enumerate()
        .filter_map(|(k, p)| match p {
            Point::Value(v) => Some(Sample::new(k as i64 * step, *v)),
            Point::Empty | Point::Histogram(_) => None,
        })
        .collect()
}

/// The start timestamps (ms; 0 = none) of [`samples_of`]'s samples, parallel to them; empty
/// when none has one, as storage returns them.
pub fn start_timestamps_of(line: &SeriesLine, step: i64) -> Vec<i64> {
    let sts: Vec<i64> = line
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, Point::Value(_)))
        .map(|(k, _)| match line.start_timestamps.get(k) {
            Some(Some(offset)) => k as i64 * step + offset,
            _ => 0,
        })
        .collect();
    if sts.iter().all(|&st| st == 0) {
        return Vec::new();
    }
    sts
}

/// Appends every float sample of a `load` block, with its start timestamp, in one commit.
pub fn load(db: &dyn Appendable, step: i64, series: &[SeriesLine]) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut app = db.appender();
    for line in series {
        out.histograms_skipped += line
            .points
            .iter()
            .filter(|p| matches!(p, Point::Histogram(_)))
            .count();
        // The parser refuses `{}` in a load block, so every line has labels.
        let sts = start_timestamps_of(line, step);
        for (i, s) in samples_of(line, step).into_iter().enumerate() {
            let st = sts.get(i).copied().unwrap_or(0);
            app.append_st(0, &line.labels, s.t, s.v, st)?;
            out.samples += 1;
        }
    }
    out.report = app.commit()?;
    Ok(out)
}
