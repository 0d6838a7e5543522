//! Scoring a detector against labelled incident windows: the Numenta Anomaly Benchmark (NAB)
//! score, row-level precision/recall, and the seed's calibration rule.
//!
//! NAB's rules, as its `sweeper.py` (`calcSweepScore`, `calcScoreByThreshold`), `optimizer.py`
//! and `runner.py` (`normalize`) apply them; `../shared/nab/README.md` states them in prose:
//! - the first `min(floor(0.15 n), 750)` rows of a key are probation: never scored;
//! - a row inside a window weighs `tp * A(-(right - i + 1) / width) / A(-1)` with
//!   `A(x) = 2 / (1 + e^(5x)) - 1`; only the best (the earliest) detection of a window counts,
//!   and an undetected window costs `-fn`; windows with no row past probation do not count;
//! - a row outside every window weighs `fp * A(|i - prev_right| / (prev_width - 1))`, with
//!   `A = -1` past 3 and for rows before the first window; every such detection counts;
//! - one threshold for the whole set: every distinct score is tried, highest first, and the
//!   best raw score kept (the higher threshold on a tie), separately per profile;
//! - normalised: `100 * (raw - null) / (perfect - null)`, `null = -fn * scorable windows`,
//!   `perfect = tp * all windows`.
//!
//! Rows with no score (the expression had no output there, or NaN) are never detections.

/// A cost profile: the weights of a true positive, a false negative and a false positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The short name used on the command line and in the summary line.
    pub name: &'static str,
    /// NAB's name for it (`profiles.json`).
    pub nab_name: &'static str,
    pub tp: f64,
    pub fn_: f64,
    pub fp: f64,
}

/// NAB's three profiles, in the order reports list them.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        nab_name: "standard",
        tp: 1.0,
        fn_: 1.0,
        fp: 0.11,
    },
    Profile {
        name: "low_fp",
        nab_name: "reward_low_FP_rate",
        tp: 1.0,
        fn_: 1.0,
        fp: 0.22,
    },
    Profile {
        name: "low_fn",
        nab_name: "reward_low_FN_rate",
        tp: 1.0,
        fn_: 2.0,
        fp: 0.11,
    },
];

/// NAB's scaled sigmoid: `2 / (1 + e^(5x)) - 1`, and `-1` past 3.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// One key's rows: times (ms, increasing), scores (`None` = no detection possible), and its
/// labelled windows (inclusive time ranges, sorted, not overlapping).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyRows {
    pub key: String,
    pub times: Vec<i64>,
    pub scores: Vec<Option<f64>>,
    pub windows: Vec<(i64, i64)>,
}

/// Where a scored row stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// Inside window `w` (index into [`Scored::windows`]); `unit` is `A(position) / A(-1)`.
    Window { w: usize, unit: f64 },
    /// Outside every window; `unit` is the unweighted `A(d)` (negative).
    Outside { unit: f64 },
}

/// A row past probation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    key: usize,
    score: Option<f64>,
    place: Place,
}

/// A window as rows see it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowInfo {
    pub key: usize,
    pub start: i64,
    pub end: i64,
    /// Rows inside it.
    pub width: usize,
    /// Whether any of its rows is past probation (only those count).
    pub scorable: bool,
}

/// Everything needed to score any threshold, built once from the keys' rows.
#[derive(Debug, Clone)]
pub struct Scored {
    pub keys: Vec<String>,
    /// Rows per key, and how many of them are in probation.
    pub rows: Vec<(usize, usize)>,
    pub windows: Vec<WindowInfo>,
    /// Windows given but holding no row (so they cannot be scored), per key.
    pub empty_windows: Vec<(usize, i64, i64)>,
    scored: Vec<Row>,
}

/// The NAB probation length of a key with `n` rows.
pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

impl Scored {
    /// Lays out every key's rows (NAB's `calcSweepScore`).
    pub fn new(keys: &[KeyRows]) -> Scored {
        let mut out = Scored {
            keys: keys.iter().map(|k| k.key.clone()).collect(),
            rows: Vec::new(),
            windows: Vec::new(),
            empty_windows: Vec::new(),
            scored: Vec::new(),
        };
        let max_tp = scaled_sigmoid(-1.0);
        for (ki, k) in keys.iter().enumerate() {
            let n = k.times.len();
            let prob = probation(n);
            out.rows.push((n, prob.min(n)));
            // Windows as row ranges: first row at or after the start, last at or before the end.
            let mut ranges: Vec<(usize, usize, usize)> = Vec::new();
            for &(start, end) in &k.windows {
                let lo = k.times.partition_point(|&t| t < start);
                let hi = k.times.partition_point(|&t| t <= end);
                if lo >= hi {
                    out.empty_windows.push((ki, start, end));
                    continue;
                }
                ranges.push((lo, hi - 1, out.windows.len()));
                out.windows.push(WindowInfo {
                    key: ki,
                    start,
                    end,
                    width: hi - lo,
                    scorable: hi > prob,
                });
            }
            let mut next = 0;
            let mut current: Option<(usize, usize, usize)> = None;
            let mut prev: Option<(usize, usize)> = None; // (right index, width)
            for i in 0..n {
                if current.is_none() && next < ranges.len() && ranges[next].0 == i {
                    current = Some(ranges[next]);
                    next += 1;
                }
                let place = match current {
                    Some((lo, hi, w)) => {
                        let width = (hi - lo + 1) as f64;
                        let pos = -((hi - i + 1) as f64) / width;
                        Place::Window {
                            w,
                            unit: scaled_sigmoid(pos) / max_tp,
                        }
                    }
                    None => Place::Outside {
                        unit: match prev {
                            None => -1.0,
                            // NAB divides by zero here (a one-row window); farther than 3 widths.
                            Some((_, 1)) => -1.0,
                            Some((right, width)) => {
                                scaled_sigmoid((i - right) as f64 / (width - 1) as f64)
                            }
                        },
                    },
                };
                if i >= prob {
                    out.scored.push(Row {
                        key: ki,
                        score: k.scores.get(i).copied().flatten().filter(|s| !s.is_nan()),
                        place,
                    });
                }
                if let Some((lo, hi, _)) = current {
                    if i == hi {
                        prev = Some((hi, hi - lo + 1));
                        current = None;
                    }
                }
            }
        }
        out
    }

    /// Windows that count (a row past probation).
    pub fn scorable_windows(&self) -> usize {
        self.windows.iter().filter(|w| w.scorable).count()
    }

    /// The raw score of the null detector and of the perfect one.
    pub fn bounds(&self, p: &Profile) -> (f64, f64) {
        let all = self.windows.len() + self.empty_windows.len();
        (-p.fn_ * self.scorable_windows() as f64, p.tp * all as f64)
    }

    /// [`Scored::bounds`] of one key's windows alone.
    pub fn key_bounds(&self, p: &Profile, key: usize) -> (f64, f64) {
        let scorable = self
            .windows
            .iter()
            .filter(|w| w.key == key && w.scorable)
            .count();
        let all = self.windows.iter().filter(|w| w.key == key).count()
            + self.empty_windows.iter().filter(|w| w.0 == key).count();
        (-p.fn_ * scorable as f64, p.tp * all as f64)
    }

    /// `100 * (raw - null) / (perfect - null)`; 0 when there is nothing to detect.
    pub fn normalise(&self, p: &Profile, raw: f64) -> f64 {
        let (null, perfect) = self.bounds(p);
        if perfect - null <= 0.0 {
            0.0
        } else {
            100.0 * (raw - null) / (perfect - null)
        }
    }

    /// The best threshold for a profile: every distinct score is tried, highest first, and the
    /// best raw score kept; on a tie the higher threshold wins. `None` means detecting
    /// nothing scores best.
    pub fn sweep(&self, p: &Profile) -> Sweep {
        let mut order: Vec<&Row> = self.scored.iter().filter(|r| r.score.is_some()).collect();
        order.sort_by(|a, b| b.score.unwrap().total_cmp(&a.score.unwrap()));
        let mut parts: Vec<f64> = self
            .windows
            .iter()
            .map(|w| if w.scorable { -p.fn_ } else { 0.0 })
            .collect();
        let mut total: f64 = parts.iter().sum();
        let mut best = Sweep {
            threshold: None,
            raw: total,
            thresholds_tried: 1,
        };
        let mut i = 0;
        while i < order.len() {
            let t = order[i].score.unwrap();
            while i < order.len() && order[i].score.unwrap().total_cmp(&t).is_eq() {
                match order[i].place {
                    Place::Window { w, unit } => {
                        let v = unit * p.tp;
                        if v > parts[w] {
                            total += v - parts[w];
                            parts[w] = v;
                        }
                    }
                    Place::Outside { unit } => total += unit * p.fp,
                }
                i += 1;
            }
            best.thresholds_tried += 1;
            if total > best.raw {
                best.raw = total;
                best.threshold = Some(t);
            }
        }
        best
    }

    /// The raw score per key at a threshold (`None` = detect nothing).
    pub fn raw_by_key(&self, p: &Profile, threshold: Option<f64>) -> Vec<f64> {
        let mut by_key = vec![0.0; self.keys.len()];
        let mut parts: Vec<f64> = self
            .windows
            .iter()
            .map(|w| if w.scorable { -p.fn_ } else { 0.0 })
            .collect();
        for r in &self.scored {
            if !detects(r.score, threshold) {
                continue;
            }
            match r.place {
                Place::Window { w, unit } => parts[w] = parts[w].max(unit * p.tp),
                Place::Outside { unit } => by_key[r.key] += unit * p.fp,
            }
        }
        for (w, v) in self.windows.iter().zip(parts) {
            by_key[w.key] += v;
        }
        by_key
    }

    /// Row-level counts at a threshold, over rows past probation, per key.
    pub fn counts_by_key(&self, threshold: Option<f64>) -> Vec<Counts> {
        let mut out = vec![Counts::default(); self.keys.len()];
        let mut detected = vec![false; self.windows.len()];
        for r in &self.scored {
            let hit = detects(r.score, threshold);
            let c = &mut out[r.key];
            match (r.place, hit) {
                (Place::Window { w, .. }, true) => {
                    c.tp += 1;
                    detected[w] = true;
                }
                (Place::Window { .. }, false) => c.fn_ += 1,
                (Place::Outside { .. }, true) => c.fp += 1,
                (Place::Outside { .. }, false) => c.tn += 1,
            }
        }
        for (w, d) in self.windows.iter().zip(detected) {
            if w.scorable {
                out[w.key].windows += 1;
                out[w.key].windows_detected += usize::from(d);
            }
        }
        out
    }

    /// The seed's calibration rule: among thresholds whose row-level precision is at least
    /// `target`, the one with the best recall (the higher threshold on a tie); when none
    /// reaches it, the one with the best F1. `None` when no row has a score.
    pub fn calibrate(&self, target: f64) -> Option<f64> {
        let mut order: Vec<&Row> = self.scored.iter().filter(|r| r.score.is_some()).collect();
        order.sort_by(|a, b| b.score.unwrap().total_cmp(&a.score.unwrap()));
        let positives = self
            .scored
            .iter()
            .filter(|r| matches!(r.place, Place::Window { .. }))
            .count();
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut best_meeting: Option<(f64, f64)> = None; // (recall, threshold)
        let mut best_f1: Option<(f64, f64)> = None;
        let mut i = 0;
        while i < order.len() {
            let t = order[i].score.unwrap();
            while i < order.len() && order[i].score.unwrap().total_cmp(&t).is_eq() {
                match order[i].place {
                    Place::Window { .. } => tp += 1,
                    Place::Outside { .. } => fp += 1,
                }
                i += 1;
            }
            let c = Counts {
                tp,
                fp,
                fn_: positives - tp,
                ..Counts::default()
            };
            let (precision, recall) = (c.precision(), c.recall());
            if precision >= target && best_meeting.is_none_or(|(r, _)| recall > r) {
                best_meeting = Some((recall, t));
            }
            let f1 = c.f1();
            if best_f1.is_none_or(|(f, _)| f1 > f) {
                best_f1 = Some((f1, t));
            }
        }
        best_meeting.or(best_f1).map(|(_, t)| t)
    }
}

/// Whether a score is a detection at a threshold.
fn detects(score: Option<f64>, threshold: Option<f64>) -> bool {
    matches!((score, threshold), (Some(s), Some(t)) if s >= t)
}

/// The outcome of a threshold sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    /// `None`: detecting nothing scores best.
    pub threshold: Option<f64>,
    pub raw: f64,
    /// Distinct thresholds tried, "detect nothing" included.
    pub thresholds_tried: usize,
}

/// Row-level confusion counts (rows past probation) and window-level detections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
    /// Windows that count, and how many of them had a detection.
    pub windows: usize,
    pub windows_detected: usize,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
        self.windows += o.windows;
        self.windows_detected += o.windows_detected;
    }

    /// `tp / (tp + fp)`, 0 without detections.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `tp / (tp + fn)`, 0 without positives.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// `fp / (fp + tn)`.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: Profile = PROFILES[0];

    /// A key of `n` rows at t = 0, 1, … with the given windows (row indexes, inclusive) and
    /// detections (score 1 at those rows, 0 elsewhere).
    fn key(n: usize, windows: &[(i64, i64)], hits: &[usize]) -> KeyRows {
        let mut scores = vec![Some(0.0); n];
        for &h in hits {
            scores[h] = Some(1.0);
        }
        KeyRows {
            key: "k".into(),
            times: (0..n as i64).collect(),
            scores,
            windows: windows.to_vec(),
        }
    }

    fn raw_at_one(k: KeyRows) -> f64 {
        Scored::new(&[k]).raw_by_key(&STD, Some(1.0))[0]
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }

    /// The README's worked case: 100 rows, probation 15, one window at rows 50–59.
    #[test]
    fn detections_at_a_windows_start_end_and_outside() {
        close(raw_at_one(key(100, &[(50, 59)], &[50])), 1.0);
        close(raw_at_one(key(100, &[(50, 59)], &[59])), 0.2482);
        // The first detection counts, not the best-placed one after it.
        close(
            raw_at_one(key(100, &[(50, 59)], &[55, 59])),
            scaled_sigmoid(-5.0 / 10.0) / scaled_sigmoid(-1.0),
        );
        // Row 70: 11 rows past the window's last, over width - 1 = 9.
        close(
            raw_at_one(key(100, &[(50, 59)], &[59, 70])),
            0.2482 - 0.1095,
        );
        // Missed window.
        close(raw_at_one(key(100, &[(50, 59)], &[])), -1.0);
        // Before any window: full cost.
        close(raw_at_one(key(100, &[(50, 59)], &[20])), -1.0 - 0.11);
        // More than 3 widths past: full cost.
        close(raw_at_one(key(100, &[(50, 59)], &[50, 90])), 1.0 - 0.11);
    }

    #[test]
    fn probation_rows_and_windows_do_not_count() {
        assert_eq!(probation(100), 15);
        assert_eq!(probation(10_000), 750);
        // A detection inside probation counts for nothing, a window ending there neither.
        let k = key(100, &[(5, 10)], &[3, 7]);
        let s = Scored::new(&[k]);
        assert_eq!(s.scorable_windows(), 0);
        close(s.raw_by_key(&STD, Some(1.0))[0], 0.0);
        assert_eq!(s.bounds(&STD), (0.0, 1.0));
        // A window straddling the end of probation counts; its position uses the whole width.
        let k = key(100, &[(10, 19)], &[15]);
        let s = Scored::new(&[k]);
        assert_eq!(s.scorable_windows(), 1);
        close(
            s.raw_by_key(&STD, Some(1.0))[0],
            scaled_sigmoid(-5.0 / 10.0) / scaled_sigmoid(-1.0),
        );
    }

    #[test]
    fn a_key_without_windows_only_pays_for_false_positives() {
        let s = Scored::new(&[key(100, &[], &[20, 30])]);
        close(s.raw_by_key(&STD, Some(1.0))[0], -0.22);
        assert_eq!(s.bounds(&STD), (0.0, 0.0));
        assert_eq!(s.normalise(&STD, -0.22), 0.0);
    }

    #[test]
    fn sweep_tries_every_score_and_prefers_the_higher_threshold_on_ties() {
        // Window at rows 50-59. Scores: 0.9 at row 50 (true detection), 0.95 at row 20 (false),
        // everything else 0.
        let mut k = key(100, &[(50, 59)], &[]);
        k.scores[50] = Some(0.9);
        k.scores[20] = Some(0.95);
        let s = Scored::new(&[k]);
        let sw = s.sweep(&STD);
        // Null -1; at 0.95: -1.11; at 0.9: 1 - 0.11 = 0.89; at 0: everything detected.
        assert_eq!(sw.threshold, Some(0.9));
        close(sw.raw, 0.89);
        close(s.normalise(&STD, sw.raw), 100.0 * 1.89 / 2.0);
        // All equal: only "nothing" and "everything" exist; nothing wins the tie-free case.
        let k = key(100, &[(50, 59)], &[]);
        let sw = Scored::new(&[k]).sweep(&STD);
        assert_eq!(sw.thresholds_tried, 2);
        assert_eq!(sw.threshold, None);
        close(sw.raw, -1.0);
    }

    #[test]
    fn rows_without_a_score_never_detect_and_windows_without_rows_are_reported() {
        let mut k = key(100, &[(50, 59), (200, 300)], &[50]);
        k.scores[50] = None;
        let s = Scored::new(&[k]);
        assert_eq!(s.empty_windows, vec![(0, 200, 300)]);
        close(s.raw_by_key(&STD, Some(1.0))[0], -1.0);
        // The unmatched window still counts as one the perfect detector would find.
        assert_eq!(s.bounds(&STD), (-1.0, 2.0));
    }

    #[test]
    fn counts_and_calibration() {
        // Window rows 50-59; detections at 50..=54 (5 tp) and 20, 30 (2 fp) with score 1;
        // rows 55, 56 score 0.5.
        let mut k = key(100, &[(50, 59)], &[50, 51, 52, 53, 54, 20, 30]);
        k.scores[55] = Some(0.5);
        k.scores[56] = Some(0.5);
        let s = Scored::new(&[k]);
        let c = s.counts_by_key(Some(1.0))[0];
        assert_eq!((c.tp, c.fp, c.fn_, c.tn), (5, 2, 5, 73));
        assert_eq!((c.windows, c.windows_detected), (1, 1));
        close(c.precision(), 5.0 / 7.0);
        close(c.recall(), 0.5);
        close(c.false_positive_rate(), 2.0 / 75.0);
        // Precision ≥ 0.7: threshold 1 gives 5/7 with recall 0.5, threshold 0.5 gives 7/9 with
        // recall 0.7: the lower one has better recall and meets the target.
        assert_eq!(s.calibrate(0.7), Some(0.5));
        // Nothing reaches 0.99: best F1 instead.
        assert_eq!(s.calibrate(0.99), Some(0.5));
    }
}
