//! The `load` command: expand a block's series lines into samples at `k × step` and commit
//! them through the storage traits (FORMAT.md §3.1).

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
            Point::Empty | Point::Histogram => None,
        })
        .collect()
}

/// Appends every float sample of a `load` block in one commit.
pub fn load(db: &dyn Appendable, step: i64, series: &[SeriesLine]) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut app = db.appender();
    for line in series {
        out.histograms_skipped += line
            .points
            .iter()
            .filter(|p| matches!(p, Point::Histogram))
            .count();
        // The parser refuses `{}` in a load block, so every line has labels.
        for s in samples_of(line, step) {
            app.append(&line.labels, s.t, s.v)?;
            out.samples += 1;
        }
    }
    out.report = app.commit()?;
    Ok(out)
}
