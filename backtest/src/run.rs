//! Evaluating a detector expression into scored rows per key.
//!
//! Every output series of the expression is a score over time; its key is the value of the
//! key label (series without it are ignored, several series with one key are combined by
//! taking the highest score at each row, as an alert on any of them would fire).
//!
//! The rows of a key are its evaluation times:
//! - with a fixed step, `start, start + step, …, end`, one range query;
//! - with `auto`, the timestamps of the stored raw samples of the series whose key label is
//!   the key. Keys are grouped by sampling grid (the greatest common divisor of their row
//!   offsets, or their most common interval when the divisor would mean far more evaluations
//!   than rows) and alignment; each group of overlapping keys is one range query on its grid,
//!   and the few rows off every grid (nudged duplicates, odd offsets) are instant queries.
//!   A range query's point at `t` is, by PromQL's semantics, the instant query at `t`.

use std::collections::{BTreeMap, HashMap};

use augur_engine::{Engine, QueryOptions, Value, MAX_POINTS_PER_SERIES};
use augur_storage::{is_stale_nan, Matcher, Queryable};

use crate::error::{Error, Result};

/// How the evaluation times are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every `ms` from the start.
    Fixed(i64),
    /// The stored raw samples' timestamps of each key.
    Auto,
}

/// A key and its row times.
type KeyTimes<'a> = (&'a String, &'a Vec<i64>);

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub expr: &'a str,
    pub start: i64,
    pub end: i64,
    pub step: Step,
    pub key_label: &'a str,
}

/// A key's rows: times, and the score at each (`None` = no output there).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub times: Vec<i64>,
    pub scores: Vec<Option<f64>>,
}

/// What an evaluation did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvalStats {
    pub range_queries: usize,
    pub instant_queries: usize,
    /// Output series without the key label.
    pub unkeyed_series: usize,
}

fn query_err(e: augur_engine::Error) -> Error {
    Error::Query(e.to_string())
}

/// Checks `spec` and the expression before anything is evaluated.
pub fn check(spec: &Spec<'_>) -> Result<()> {
    if spec.end < spec.start {
        return Err(Error::Input {
            what: "--end".into(),
            message: "the end of the time range is before its start".into(),
        });
    }
    if let Step::Fixed(s) = spec.step {
        if s <= 0 {
            return Err(Error::Input {
                what: "--step".into(),
                message: "the step must be positive (or auto)".into(),
            });
        }
    }
    augur_engine::parse(spec.expr, 1, 1).map_err(query_err)?;
    Ok(())
}

/// Evaluates the expression into rows per key.
pub fn evaluate(
    engine: &Engine,
    db: &dyn Queryable,
    spec: &Spec<'_>,
) -> Result<(BTreeMap<String, Rows>, EvalStats)> {
    check(spec)?;
    let mut stats = EvalStats::default();
    let mut out: BTreeMap<String, Rows> = BTreeMap::new();
    match spec.step {
        Step::Fixed(step) => {
            let mut scores: HashMap<String, HashMap<i64, f64>> = HashMap::new();
            range(
                engine,
                db,
                spec,
                (spec.start, spec.end, step),
                None,
                &mut scores,
                &mut stats,
            )?;
            let times = grid_times(spec.start, spec.end, step);
            for (key, by_t) in scores {
                let scores = times.iter().map(|t| by_t.get(t).copied()).collect();
                out.insert(
                    key,
                    Rows {
                        times: times.clone(),
                        scores,
                    },
                );
            }
        }
        Step::Auto => {
            let rows = raw_rows(db, spec)?;
            let mut scores: HashMap<String, HashMap<i64, f64>> = HashMap::new();
            // Group keys by grid, then evaluate each run of overlapping keys once.
            let mut groups: BTreeMap<(i64, i64), Vec<KeyTimes<'_>>> = BTreeMap::new();
            for (key, times) in &rows {
                let g = grid(times);
                groups
                    .entry((g, times[0].rem_euclid(g)))
                    .or_default()
                    .push((key, times));
            }
            let mut off_grid: Vec<(&String, i64)> = Vec::new();
            for ((g, _), mut keys) in groups {
                keys.sort_by_key(|(_, t)| t[0]);
                let mut i = 0;
                while i < keys.len() {
                    let (lo, mut hi) = (keys[i].1[0], *keys[i].1.last().unwrap());
                    let mut j = i + 1;
                    while j < keys.len() && keys[j].1[0] <= hi {
                        hi = hi.max(*keys[j].1.last().unwrap());
                        j += 1;
                    }
                    let wanted: Vec<&str> = keys[i..j].iter().map(|(k, _)| k.as_str()).collect();
                    range(
                        engine,
                        db,
                        spec,
                        (lo, hi, g),
                        Some(&wanted),
                        &mut scores,
                        &mut stats,
                    )?;
                    for (key, times) in &keys[i..j] {
                        off_grid.extend(
                            times
                                .iter()
                                .filter(|&&t| (t - lo).rem_euclid(g) != 0)
                                .map(|&t| (*key, t)),
                        );
                    }
                    i = j;
                }
            }
            for (key, t) in off_grid {
                stats.instant_queries += 1;
                let r = engine
                    .instant(db, spec.expr, t, &QueryOptions::default())
                    .map_err(query_err)?;
                let Value::Vector(v) = r.value else {
                    return Err(not_a_vector(&r.value));
                };
                // No range point lands on an off-grid time, so nothing is there yet.
                let entry = scores.entry(key.clone()).or_default();
                for e in v {
                    if e.labels.get(spec.key_label) == Some(key.as_str()) {
                        let s = entry.entry(t).or_insert(e.v);
                        *s = max_score(*s, e.v);
                    }
                }
            }
            for (key, times) in rows {
                let by_t = scores.remove(&key).unwrap_or_default();
                let scores = times.iter().map(|t| by_t.get(t).copied()).collect();
                out.insert(key, Rows { times, scores });
            }
        }
    }
    Ok((out, stats))
}

/// The evaluation times of a fixed step: `start, start + step, …` up to `end`.
pub fn grid_times(start: i64, end: i64, step: i64) -> Vec<i64> {
    (0..)
        .map(|i| start + i * step)
        .take_while(|&t| t <= end)
        .collect()
}

fn not_a_vector(v: &Value) -> Error {
    Error::Input {
        what: "--expr".into(),
        message: format!(
            "the expression must return an instant vector (one score series per key), not a {}",
            v.type_name()
        ),
    }
}

/// The larger score; NaN loses to any number.
fn max_score(a: f64, b: f64) -> f64 {
    if a.is_nan() || b > a {
        b
    } else {
        a
    }
}

/// Evaluates `[lo, hi]` every `step` (in pieces within the engine's point limit), adding the
/// scores of the output series whose key is in `wanted` (all keys when `None`).
fn range(
    engine: &Engine,
    db: &dyn Queryable,
    spec: &Spec<'_>,
    (lo, hi, step): (i64, i64, i64),
    wanted: Option<&[&str]>,
    scores: &mut HashMap<String, HashMap<i64, f64>>,
    stats: &mut EvalStats,
) -> Result<()> {
    let piece = (MAX_POINTS_PER_SERIES - 1) * step;
    let mut s = lo;
    while s <= hi {
        let e = hi.min(s + piece);
        stats.range_queries += 1;
        let r = engine
            .range(db, spec.expr, s, e, step, &QueryOptions::default())
            .map_err(query_err)?;
        match r.value {
            Value::Matrix(series) => {
                for ser in series {
                    let Some(key) = ser.labels.get(spec.key_label) else {
                        stats.unkeyed_series += 1;
                        continue;
                    };
                    if wanted.is_some_and(|w| !w.contains(&key)) {
                        continue;
                    }
                    let entry = scores.entry(key.to_owned()).or_default();
                    for p in ser.samples {
                        let sc = entry.entry(p.t).or_insert(p.v);
                        *sc = max_score(*sc, p.v);
                    }
                }
            }
            other => return Err(not_a_vector(&other)),
        }
        s = e + step;
    }
    Ok(())
}

/// The raw sample times of every key within the range (staleness markers are not rows).
fn raw_rows(db: &dyn Queryable, spec: &Spec<'_>) -> Result<BTreeMap<String, Vec<i64>>> {
    let m = Matcher::new(augur_storage::MatchOp::RegexMatch, spec.key_label, ".+")
        .map_err(|e| Error::Storage(e.to_string()))?;
    let series = db
        .querier(spec.start, spec.end)
        .and_then(|q| q.select(&[m]))
        .map_err(|e| Error::Storage(e.to_string()))?;
    let mut rows: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in series {
        let key = s.labels.get(spec.key_label).unwrap_or_default().to_owned();
        rows.entry(key)
            .or_default()
            .extend(s.samples.iter().filter(|p| !is_stale_nan(p.v)).map(|p| p.t));
    }
    rows.retain(|_, t| {
        t.sort_unstable();
        t.dedup();
        !t.is_empty()
    });
    Ok(rows)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// The evaluation grid of a key's rows: the gcd of their offsets from the first, unless that
/// would evaluate more than four times as many points as there are rows; then the most common
/// interval (and the rows off it are evaluated one by one).
fn grid(times: &[i64]) -> i64 {
    let first = times[0];
    let g = times.iter().fold(0, |g, &t| gcd(g, t - first));
    if g > 0 && (times[times.len() - 1] - first) / g < 4 * times.len() as i64 {
        return g;
    }
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for w in times.windows(2) {
        *counts.entry(w[1] - w[0]).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(d, n)| (n, std::cmp::Reverse(d)))
        .map_or(1000, |(d, _)| d.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids() {
        assert_eq!(grid(&[0, 300, 600, 1200]), 300);
        // One nudged row (1 ms after its neighbour) does not make the grid 1 ms.
        assert_eq!(grid(&[0, 300, 301, 600, 900]), 300);
        assert_eq!(grid(&[5]), 1000);
    }
}
