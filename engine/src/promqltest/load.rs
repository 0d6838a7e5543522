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

/// The native histogram samples a series line stands for, with `step` between positions, as
/// [`load`] writes them (reset hints as the TSDB reads them back, see [`tsdb_hint`]).
pub fn histograms_of(line: &SeriesLine, step: i64) -> Vec<(i64, Histogram)> {
    let mut out = Vec::new();
    let mut prev: Option<&Histogram> = None;
    for (k, p) in line.points.iter().enumerate() {
        match p {
            Point::Histogram(h, _) => {
                out.push((
                    k as i64 * step,
                    tsdb_hint(h, prev).unwrap_or_else(|| (**h).clone()),
                ));
                prev = Some(h);
            }
            Point::Value(_) => prev = None,
            Point::Empty => {}
        }
    }
    out
}

/// The float samples a series line stands for, with `step` between positions from t = 0.
pub fn samples_of(line: &SeriesLine, step: i64) -> Vec<Sample> {
    line.points
        .iter()
        .enumerate()
        .filter_map(|(k, p)| match p {
            Point::Value(v) => Some(Sample::new(k as i64 * step, *v)),
            Point::Empty | Point::Histogram(..) => None,
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
        let mut prev_h: Option<&Histogram> = None;
        for (k, p) in line.points.iter().enumerate() {
            let t = k as i64 * step;
            let hist = match p {
                Point::Empty => continue,
                Point::Histogram(..) => true,
                Point::Value(_) => false,
            };
            if last_hist.is_some_and(|was| was != hist) {
                let report = std::mem::replace(&mut app, db.appender()).commit()?;
                merge(&mut out.report, report);
            }
            last_hist = Some(hist);
            match p {
                Point::Histogram(h, _) => {
                    let hinted = tsdb_hint(h, prev_h);
                    app.append_histogram(0, &line.labels, t, hinted.as_ref().unwrap_or(h), 0)?;
                    prev_h = Some(h);
                    out.histograms += 1;
                }
                Point::Value(v) => {
                    prev_h = None;
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

/// What `load_with_nhcb` adds to a block: each classic histogram (`_bucket` series with `le`,
/// `_count`, `_sum`) also as a native histogram with custom buckets under its base name, at
/// every position any of its series has a value (Prometheus's `appendCustomHistogram`).
/// Positions whose buckets do not make a histogram (not cumulative, count below the buckets)
/// are left out.
pub fn nhcb_lines(series: &[SeriesLine]) -> Vec<SeriesLine> {
    #[derive(Default, Clone)]
    struct Temp {
        buckets: Vec<(f64, f64)>,
        count: Option<f64>,
        sum: f64,
    }
    let mut by_base: Vec<(
        augur_storage::Labels,
        std::collections::BTreeMap<usize, Temp>,
    )> = Vec::new();
    for line in series {
        let name = line.labels.metric_name().unwrap_or_default();
        let (kind, base) = if let Some(b) = name.strip_suffix("_bucket") {
            (0, b)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (1, b)
        } else if let Some(b) = name.strip_suffix("_count") {
            (2, b)
        } else {
            continue;
        };
        let le = if kind == 0 {
            match line.labels.get("le").and_then(|v| v.parse::<f64>().ok()) {
                Some(le) if !le.is_nan() => Some(le),
                _ => continue,
            }
        } else {
            None
        };
        let Ok(labels) =
            augur_storage::Labels::new(line.labels.iter().filter(|l| l.name != "le").map(|l| {
                if l.name == augur_storage::METRIC_NAME {
                    (l.name, base)
                } else {
                    (l.name, l.value)
                }
            }))
        else {
            continue;
        };
        let at = match by_base.iter().position(|(l, _)| *l == labels) {
            Some(i) => i,
            None => {
                by_base.push((labels, Default::default()));
                by_base.len() - 1
            }
        };
        for (k, p) in line.points.iter().enumerate() {
            let Point::Value(v) = p else { continue };
            let t = by_base[at].1.entry(k).or_default();
            match le {
                Some(le) => {
                    if !t.buckets.iter().any(|b| b.0 == le) {
                        t.buckets.push((le, *v));
                    }
                }
                None if kind == 1 => t.sum = *v,
                None => t.count = Some(*v),
            }
        }
    }
    by_base
        .into_iter()
        .map(|(labels, temps)| {
            let mut points = Vec::new();
            for (k, mut t) in temps {
                t.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                let count = t.count.or(t.buckets.last().map(|b| b.1)).unwrap_or(0.0);
                if t.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                    t.buckets.push((f64::INFINITY, count));
                }
                let cumulative = t.buckets.windows(2).all(|w| w[1].1 >= w[0].1);
                let last = t.buckets.last().map_or(0.0, |b| b.1);
                if !cumulative || t.buckets.iter().any(|b| b.1 < 0.0) || last != count {
                    continue;
                }
                let mut prev = 0.0;
                let counts: Vec<f64> = t
                    .buckets
                    .iter()
                    .map(|b| {
                        let c = b.1 - prev;
                        prev = b.1;
                        c
                    })
                    .collect();
                let mut h = Histogram {
                    schema: augur_storage::histogram::CUSTOM_BUCKETS_SCHEMA,
                    count,
                    sum: t.sum,
                    custom_values: t.buckets[..t.buckets.len() - 1]
                        .iter()
                        .map(|b| b.0)
                        .collect(),
                    positive_spans: vec![augur_storage::histogram::Span {
                        offset: 0,
                        length: counts.len() as u32,
                    }],
                    positive_buckets: counts,
                    ..Histogram::default()
                };
                crate::hist::compact(&mut h);
                while points.len() < k {
                    points.push(Point::Empty);
                }
                points.push(Point::Histogram(Box::new(h), false));
            }
            SeriesLine {
                labels,
                points,
                start_timestamps: Vec::new(),
                line: 0,
            }
        })
        .collect()
}

/// `h` with the counter reset hint Prometheus's TSDB would read back after `prev` (see
/// [`crate::hist::chunk_hint`]), when that differs from the one written.
pub fn tsdb_hint(h: &Histogram, prev: Option<&Histogram>) -> Option<Histogram> {
    let hint = crate::hist::chunk_hint(h, prev);
    (hint != h.reset_hint).then(|| Histogram {
        reset_hint: hint,
        ..h.clone()
    })
}

/// Adds a later commit's outcome to `total` (rejection indexes stay per commit).
fn merge(total: &mut CommitReport, r: CommitReport) {
    total.accepted += r.accepted;
    total.out_of_order += r.out_of_order;
    total.histograms += r.histograms;
    total.rejected.extend(r.rejected);
}
