//! The backtest's report: NAB scores per profile, the chosen threshold's precision and recall,
//! calibration, a line per key, and the machine-readable last line.

use std::fmt::Write;

use crate::score::{Counts, Profile, Scored, PROFILES};

/// How the threshold is chosen and what is reported.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A fixed threshold instead of NAB's sweep.
    pub threshold: Option<f64>,
    /// The profile whose threshold the metrics, the per-key lines and the last line use.
    pub profile: Profile,
    /// The seed's calibration: the best recall among thresholds with this precision.
    pub target_precision: Option<f64>,
}

/// One profile's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileScore {
    pub profile: Profile,
    /// `None`: detecting nothing.
    pub threshold: Option<f64>,
    pub raw: f64,
    pub score: f64,
}

/// Everything the report says, as numbers.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub profiles: Vec<ProfileScore>,
    /// The threshold the metrics use (the chosen profile's).
    pub threshold: Option<f64>,
    pub totals: Counts,
    pub by_key: Vec<Counts>,
    pub calibrated: Option<(f64, Counts)>,
}

fn threshold_text(t: Option<f64>) -> String {
    t.map_or_else(|| "none".to_owned(), |t| format!("{t}"))
}

fn metrics(c: &Counts) -> String {
    format!(
        "windows detected {} of {}, detections {} rows: precision {:.3}, recall {:.3}, F1 {:.3}, false-positive rate {:.4}",
        c.windows_detected,
        c.windows,
        c.tp + c.fp,
        c.precision(),
        c.recall(),
        c.f1(),
        c.false_positive_rate()
    )
}

/// Scores every profile and writes the report.
pub fn report(scored: &Scored, opts: &Options) -> (String, Outcome) {
    let mut out = String::new();
    let rows: usize = scored.rows.iter().map(|r| r.0).sum();
    let probation: usize = scored.rows.iter().map(|r| r.1).sum();
    let _ = writeln!(
        out,
        "scored {} keys: {rows} rows ({probation} in probation), {} windows ({} past probation)",
        scored.keys.len(),
        scored.windows.len() + scored.empty_windows.len(),
        scored.scorable_windows()
    );
    for (k, s, e) in &scored.empty_windows {
        let _ = writeln!(
            out,
            "warning: key {:?}: window [{s}, {e}] holds no row; it counts as missed by every detector",
            scored.keys[*k]
        );
    }
    let mut profiles = Vec::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>14} {:>10} {:>10} {:>10}",
        "profile", "score", "threshold", "raw", "null", "perfect"
    );
    for p in PROFILES {
        let (threshold, raw) = match opts.threshold {
            Some(t) => (Some(t), scored.raw_by_key(&p, Some(t)).iter().sum()),
            None => {
                let sw = scored.sweep(&p);
                (sw.threshold, sw.raw)
            }
        };
        let score = scored.normalise(&p, raw);
        let (null, perfect) = scored.bounds(&p);
        let _ = writeln!(
            out,
            "{:<10} {:>8.2} {:>14} {:>10.3} {:>10.1} {:>10.1}",
            p.name,
            score,
            threshold_text(threshold),
            raw,
            null,
            perfect
        );
        profiles.push(ProfileScore {
            profile: p,
            threshold,
            raw,
            score,
        });
    }
    let chosen = profiles
        .iter()
        .find(|s| s.profile.name == opts.profile.name)
        .copied()
        .unwrap_or(profiles[0]);
    let by_key = scored.counts_by_key(chosen.threshold);
    let mut totals = Counts::default();
    for c in &by_key {
        totals.add(c);
    }
    let _ = writeln!(
        out,
        "\nat threshold {} ({}):\n  {}",
        threshold_text(chosen.threshold),
        if opts.threshold.is_some() {
            "fixed by --threshold".to_owned()
        } else {
            format!("the {} profile's best", chosen.profile.name)
        },
        metrics(&totals)
    );
    let calibrated = opts.target_precision.and_then(|target| {
        let t = scored.calibrate(target)?;
        let mut c = Counts::default();
        for k in scored.counts_by_key(Some(t)) {
            c.add(&k);
        }
        let _ = writeln!(
            out,
            "calibrated for precision >= {target} ({}): threshold {t}\n  {}",
            if c.precision() >= target {
                "the best recall that meets it"
            } else {
                "not reachable: the best F1 instead"
            },
            metrics(&c)
        );
        Some((t, c))
    });

    let raw_by_key = scored.raw_by_key(&chosen.profile, chosen.threshold);
    let width = scored
        .keys
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(3)
        .max(3);
    let _ = writeln!(
        out,
        "\nper key ({} profile, threshold {}; score: the key's NAB score, - without windows):\n{:<width$} {:>7} {:>7} {:>8} {:>7} {:>9} {:>6} {:>6} {:>7} {:>7}",
        chosen.profile.name,
        threshold_text(chosen.threshold),
        "key",
        "rows",
        "windows",
        "detected",
        "fp rows",
        "precision",
        "recall",
        "F1",
        "FPR",
        "score"
    );
    for (i, key) in scored.keys.iter().enumerate() {
        let c = &by_key[i];
        let (null, perfect) = scored.key_bounds(&chosen.profile, i);
        let score = if perfect > null {
            format!("{:.2}", 100.0 * (raw_by_key[i] - null) / (perfect - null))
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "{key:<width$} {:>7} {:>7} {:>8} {:>7} {:>9.3} {:>6.3} {:>6.3} {:>7.4} {:>7}",
            scored.rows[i].0,
            c.windows,
            c.windows_detected,
            c.fp,
            c.precision(),
            c.recall(),
            c.f1(),
            c.false_positive_rate(),
            score
        );
    }
    let _ = writeln!(
        out,
        "backtest standard={:.2} low_fp={:.2} low_fn={:.2} threshold={}",
        profiles[0].score,
        profiles[1].score,
        profiles[2].score,
        threshold_text(chosen.threshold)
    );
    (
        out,
        Outcome {
            profiles,
            threshold: chosen.threshold,
            totals,
            by_key,
            calibrated,
        },
    )
}
