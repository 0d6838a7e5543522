//! Backtesting: history in, rules and detectors judged against it.
//!
//! - [`import`]: exposition files (OpenMetrics or the Prometheus text format, with
//!   timestamps; see [`exposition`]) into a store through `augur_storage::Backfill`, so
//!   samples of any age are written (`augur tsdb import`).
//! - [`replay`]: rule groups evaluated over past time as `serve` would have, their results
//!   backfilled through an [`overlay`] (`augur rules replay`).
//! - [`run`]: a detector expression evaluated over a time range into scored rows per key.
//! - [`score`]: the Numenta Anomaly Benchmark's scoring of those rows against labelled
//!   windows ([`incidents`]), precision/recall and the seed's calibration; [`report`] prints it
//!   (`augur backtest`). [`nab`] reads NAB's own files.
//!
//! This crate sees storage only through its traits and the engine through `Engine`; it knows
//! nothing about HTTP. It reads YAML/JSON only for the incidents file.

pub mod error;
pub mod exposition;
pub mod import;
pub mod incidents;
pub mod nab;
pub mod overlay;
pub mod record;
pub mod replay;
pub mod report;
pub mod run;
pub mod score;

use std::io::Write;

use augur_engine::Engine;
use augur_storage::Queryable;

pub use error::{Error, Result};
pub use incidents::Incidents;
pub use report::{Options, Outcome};
pub use run::{Spec, Step};

/// Evaluates `spec` and scores it against `incidents`; returns the report's text and numbers.
/// With `csv`, writes `key,timestamp,score` (unix seconds) for every row with a score.
pub fn backtest(
    engine: &Engine,
    db: &dyn Queryable,
    spec: &Spec<'_>,
    incidents: &Incidents,
    opts: &Options,
    csv: Option<&mut dyn Write>,
) -> Result<(String, Outcome)> {
    let (mut rows, stats) = run::evaluate(engine, db, spec)?;
    let mut notes = String::new();
    // With a fixed step, an incident key the expression never scored still has its rows (the
    // grid) if its series exist: the detector missed its windows.
    if let Step::Fixed(step) = spec.step {
        let q = db
            .querier(spec.start, spec.end)
            .map_err(|e| Error::Storage(e.to_string()))?;
        let missing: Vec<&String> = incidents
            .windows
            .keys()
            .filter(|k| !rows.contains_key(*k))
            .collect();
        for key in missing {
            let m = augur_storage::Matcher::equal(spec.key_label, key);
            if q.series(&[m])
                .map_err(|e| Error::Storage(e.to_string()))?
                .is_empty()
            {
                continue;
            }
            let times = run::grid_times(spec.start, spec.end, step);
            notes.push_str(&format!(
                "note: the expression never scored key {key:?}, which has series: every window there is missed\n"
            ));
            let scores = vec![None; times.len()];
            rows.insert(key.clone(), run::Rows { times, scores });
        }
    }
    let unknown: Vec<&String> = incidents
        .windows
        .keys()
        .filter(|k| !rows.contains_key(*k))
        .collect();
    if unknown.len() == incidents.windows.len() {
        return Err(Error::Input {
            what: "--incidents".into(),
            message: format!(
                "the incidents file names no key the expression scores (keys are values of label {:?}; the file names {})",
                spec.key_label,
                incidents.windows.keys().take(5).map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    for k in unknown {
        notes.push_str(&format!(
            "warning: the incidents file names key {k:?}, which the expression does not score; its windows are left out\n"
        ));
    }
    let unlabelled = rows
        .keys()
        .filter(|k| !incidents.windows.contains_key(*k))
        .count();
    if unlabelled > 0 {
        notes.push_str(&format!(
            "note: {unlabelled} scored key(s) have no entry in the incidents file: every detection there is a false positive\n"
        ));
    }
    if stats.unkeyed_series > 0 {
        notes.push_str(&format!(
            "note: {} output series without label {:?} were ignored\n",
            stats.unkeyed_series, spec.key_label
        ));
    }
    if let Some(w) = csv {
        let io = |e: std::io::Error| Error::Input {
            what: "--output".into(),
            message: e.to_string(),
        };
        writeln!(w, "key,timestamp,score").map_err(io)?;
        for (key, r) in &rows {
            for (t, s) in r.times.iter().zip(&r.scores) {
                if let Some(s) = s {
                    writeln!(w, "{},{},{}", csv_field(key), *t as f64 / 1000.0, s).map_err(io)?;
                }
            }
        }
    }
    let keys: Vec<score::KeyRows> = rows
        .into_iter()
        .map(|(key, r)| score::KeyRows {
            windows: incidents.windows.get(&key).cloned().unwrap_or_default(),
            key,
            times: r.times,
            scores: r.scores,
        })
        .collect();
    let scored = score::Scored::new(&keys);
    let (text, outcome) = report::report(&scored, opts);
    Ok((
        format!(
            "evaluated {:?}: {} range and {} instant queries\n{notes}{text}",
            spec.expr, stats.range_queries, stats.instant_queries
        ),
        outcome,
    ))
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
