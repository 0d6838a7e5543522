//! The `load` command: expand a block's series lines into samples at `k × step`, with the
//! start timestamps of their `@st` lines, and commit them through the storage traits
//! (FORMAT.md §3.1, §3.2). Native histogram positions are appended as histograms.

use augur_storage::histogram::Histogram;
use augur_storage::{Appendable, CommitReport, Result, Sample};

use super::script::{Point, SeriesLine};

/// What a load wrote: float samples, native histogram samples, and the commit's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    pub samples: usize,
    pub histograms: usize,
    pub report: CommitReport,
}

/// The native histogram samples a series line stands for, with `step` between positions.
pub fn histograms_of(line: &SeriesLine, step: i64) -> Vec<(i64, &Histogram)> {
    line.points
        .iter()
        .enumerate()
        .filter_map(|(k, p)| match p {
            Point::Histogram(h) => Some((k as i64 * step, &**h)),
            _ => None,
        })
        .collect()
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

/// Appends every sample of a `load` block: floats with their start timestamps, and native
/// histograms. One commit, except that a line mixing the two is written in runs of one kind,
/// in time order (a commit applies its floats before its histograms, as Prometheus's does).
pub fn load(db: &dyn Appendable, step: i64, series: &[SeriesLine]) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut app = db.appender();
    for line in series {
        // The parser refuses `{}` in a load block, so every line has labels.
        let sts = start_timestamps_of(line, step);
        let mut float_i = 0;
        let mut last_hist: Option<bool> = None;
        for (k, p) in line.points.iter().enumerate() {
            let t = k as i64 * step;
            let hist = match p {
                Point::Empty => continue,
                Point::Histogram(_) => true,
                Point::Value(_) => false,
            };
            if last_hist.is_some_and(|was| was != hist) {
                let report = std::mem::replace(&mut app, db.appender()).commit()?;
                merge(&mut out.report, report);
            }
            last_hist = Some(hist);
            match p {
                Point::Histogram(h) => {
                    app.append_histogram(0, &line.labels, t, h, 0)?;
                    out.histograms += 1;
                }
                Point::Value(v) => {
                    let st = sts.get(float_i).copied().unwrap_or(0);
                    app.append_st(0, &line.labels, t, *v, st)?;
                    float_i += 1;
                    out.samples += 1;
                }
                Point::Empty => {}
            }
        }
    }
    let report = app.commit()?;
    merge(&mut out.report, report);
    Ok(out)
}

/// Adds a later commit's outcome to `total` (rejection indexes stay per commit).
fn merge(total: &mut CommitReport, r: CommitReport) {
    total.accepted += r.accepted;
    total.out_of_order += r.out_of_order;
    total.histograms += r.histograms;
    total.rejected.extend(r.rejected);
}
