//! `anomaly_score(v range-vector)`: how surprising the newest sample of a window is, in
//! `[0, 1]`, learned from the window alone (issue "Detectors", part 4). The steps, their
//! constants and the scores they reach on the NAB corpus are in `docs/anomaly-functions.md`.
//!
//! In short: the window's earlier samples fix a value range, cut into 8 levels on two grids
//! half a level apart. Every position has *fine* contexts (its level, and its level with the
//! one and two samples before it) and a *coarse* one (the levels of means over 1% of the
//! window, at it and one and two such steps before); each is new or already seen earlier in
//! the window. The share of new fine contexts and the share of new coarse ones are two
//! streams of raw surprise. Each stream is averaged over the last 10 positions and compared
//! with the distribution of that average over the rest of the window (its first quarter is
//! warm-up): the upper-tail probability of a normal with that mean and deviation is the
//! likelihood that the newest point is ordinary. The smaller of the two likelihoods counts,
//! and `ln(tail) / ln(1e-10)` maps it onto `[0, 1]`. A sample beyond the earlier range by
//! more than a tenth of it scores 1. Within 10 positions after an alert the score is at
//! most 0.3, so an episode alerts once.
//!
//! The design follows what the strong NAB detectors share (contextual novelty, Numenta's
//! "anomaly likelihood" of the recent mean surprise, range novelty), written from their
//! published descriptions. Everything is recomputed from the window at every evaluation:
//! no state between steps, so a rule, a range query and a backtest agree. Cost: O(n) in the
//! window's samples, with no hashing (contexts index tables of flags).

use super::range::Win;
use crate::error::Result;

/// Fewer finite samples than this in the window: no output (still warming up).
pub const MIN_SAMPLES: usize = 50;
/// Levels the earlier samples' range is cut into.
const LEVELS: f64 = 8.0;
/// The grids' offsets, in levels: two grids half a level apart soften the level boundaries.
const GRIDS: [f64; 2] = [0.0, 0.5];
/// Level indices run from -1 (below the range) to `LEVELS + 1` (above it): 11 values.
const SPAN: usize = LEVELS as usize + 3;
/// Fine contexts: 1, 2 and 3 consecutive levels.
const DEPTH: usize = 3;
/// Coarse contexts: the levels of the mean of the last `stride` samples, at a position and
/// one and two strides before it, with `stride = max(1, n / COARSE_STEPS)`: each coarse step
/// is 1% of the window, so the coarse triple sees shapes 2% of the window long.
const COARSE_STEPS: usize = 100;
/// Positions averaged into the recent surprise.
const SMOOTH: usize = 10;
/// Floors of the learned distribution of averaged surprise (mean, variance), so a window
/// that was never surprised does not turn a single new context into certainty.
const MEAN_FLOOR: f64 = 0.03;
const VARIANCE_FLOOR: f64 = 0.0003;
/// A position is an alert when its tail is at or below `ALERT_TAIL` (or its sample is beyond
/// the range before it). Within `REPEAT` positions after an alert, the newest tail is raised
/// to at least `REPEAT_TAIL` (a score of at most 0.3), and a sample beyond the range scores
/// by its tail instead of 1: one alert per episode.
const ALERT_TAIL: f64 = 1e-5;
const REPEAT_TAIL: f64 = 1e-3;
const REPEAT: usize = SMOOTH;
/// The smallest tail the score tells apart: `ln(tail + 1e-10) / ln(1e-10)`.
const TAIL_FLOOR: f64 = 1e-10;
/// A sample this far beyond the earlier samples' range, as a share of it, scores 1.
const RANGE_MARGIN: f64 = 0.1;

/// The range function: non-finite samples are skipped; a non-finite newest sample, or fewer
/// than [`MIN_SAMPLES`] finite ones, give no output.
pub(crate) fn anomaly_score(w: &Win<'_>) -> Result<Option<f64>> {
    match w.s.last() {
        Some(p) if p.v.is_finite() => {}
        _ => return Ok(None),
    }
    let xs: Vec<f64> = w.s.iter().map(|p| p.v).filter(|v| v.is_finite()).collect();
    Ok(score(&xs))
}

/// The score of the last of `xs` (finite values, oldest first).
pub fn score(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < MIN_SAMPLES {
        return None;
    }
    let (earlier, x) = (&xs[..n - 1], xs[n - 1]);
    let lo = earlier.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = earlier.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = hi - lo;
    let beyond = x > hi + RANGE_MARGIN * range || x < lo - RANGE_MARGIN * range;
    let after_beyond = recently_beyond(xs);
    if beyond && !after_beyond {
        return Some(1.0);
    }
    let (fine, coarse) = surprise(xs, lo, range);
    let (fine_tail, fine_alert) = likelihood(&fine);
    let (coarse_tail, coarse_alert) = likelihood(&coarse);
    let mut tail = fine_tail.min(coarse_tail);
    if fine_alert || coarse_alert || after_beyond {
        tail = tail.max(REPEAT_TAIL);
    }
    Some(((tail + TAIL_FLOOR).ln() / TAIL_FLOOR.ln()).clamp(0.0, 1.0))
}

/// The likelihood that the newest position's recent surprise (the mean of `raw` over the last
/// [`SMOOTH`] positions) is ordinary, as the upper tail of a normal fitted to the recent
/// surprise of the window's positions from `n / 4` up to the one before the newest (floored);
/// and whether one of the [`REPEAT`] positions before the newest was an alert against it.
fn likelihood(raw: &[f64]) -> (f64, bool) {
    let n = raw.len();
    let recent = moving_average(raw, SMOOTH);
    let history = &recent[n / 4..n - 1];
    let len = history.len() as f64;
    let mean = history.iter().sum::<f64>() / len;
    let var = history.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / len;
    let (mean, sd) = (mean.max(MEAN_FLOOR), var.max(VARIANCE_FLOOR).sqrt());
    let tail = upper_tail((recent[n - 1] - mean) / sd);
    let after_alert = recent[n - 1 - REPEAT..n - 1]
        .iter()
        .any(|a| upper_tail((a - mean) / sd) <= ALERT_TAIL);
    (tail, after_alert)
}

/// Whether one of the [`REPEAT`] samples before the newest was beyond the range of the
/// samples before it (from the [`MIN_SAMPLES`]th sample on) by more than [`RANGE_MARGIN`].
fn recently_beyond(xs: &[f64]) -> bool {
    let n = xs.len();
    let (mut lo, mut hi) = (xs[0], xs[0]);
    for (j, &v) in xs.iter().enumerate().take(n - 1).skip(1) {
        let margin = RANGE_MARGIN * (hi - lo);
        if j + REPEAT >= n - 1 && j + 1 >= MIN_SAMPLES && (v > hi + margin || v < lo - margin) {
            return true;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    false
}

/// Every position's raw surprise, as two streams: the share of its 6 fine contexts and the
/// share of its 2 coarse contexts that no earlier position of the window had. On each grid:
/// its level, its level with the one before, with the two before (fine), and the levels of
/// the coarse means at it, one stride and two strides before (coarse, see
/// [`COARSE_STEPS`]). Contexts that reach before the window count as new.
fn surprise(xs: &[f64], lo: f64, range: f64) -> (Vec<f64>, Vec<f64>) {
    let n = xs.len();
    let stride = (n / COARSE_STEPS).max(1);
    let coarse = moving_mean(xs, stride);
    let (mut fine_new, mut coarse_new) = (vec![0u8; n], vec![0u8; n]);
    // Flags for fine contexts of depth 1, 2 and 3, one after the other; then coarse triples.
    let offsets = [0, SPAN, SPAN + SPAN * SPAN];
    let mut seen = vec![false; SPAN + SPAN * SPAN + SPAN * SPAN * SPAN];
    let mut seen_coarse = vec![false; SPAN * SPAN * SPAN];
    for offset in GRIDS {
        seen.iter_mut().for_each(|f| *f = false);
        seen_coarse.iter_mut().for_each(|f| *f = false);
        let levels: Vec<usize> = xs.iter().map(|&v| level(v, lo, range, offset)).collect();
        let coarse_levels: Vec<usize> = coarse
            .iter()
            .map(|&v| level(v, lo, range, offset))
            .collect();
        for i in 0..n {
            let mut key = 0;
            for d in 0..DEPTH {
                let new = match i.checked_sub(d) {
                    Some(j) => {
                        key = key * SPAN + levels[j];
                        !std::mem::replace(&mut seen[offsets[d] + key], true)
                    }
                    None => true,
                };
                fine_new[i] += u8::from(new);
            }
            let new = match i.checked_sub(2 * stride) {
                Some(_) => {
                    let key = (coarse_levels[i] * SPAN + coarse_levels[i - stride]) * SPAN
                        + coarse_levels[i - 2 * stride];
                    !std::mem::replace(&mut seen_coarse[key], true)
                }
                None => true,
            };
            coarse_new[i] += u8::from(new);
        }
    }
    let share = |counts: Vec<u8>, of: usize| -> Vec<f64> {
        counts
            .into_iter()
            .map(|c| f64::from(c) / of as f64)
            .collect()
    };
    (
        share(fine_new, DEPTH * GRIDS.len()),
        share(coarse_new, GRIDS.len()),
    )
}

/// The mean of the last `k` values at every position (fewer at the start), by a sliding sum
/// with Neumaier's compensation so that it does not drift over long windows.
fn moving_mean(xs: &[f64], k: usize) -> Vec<f64> {
    if k == 1 {
        return xs.to_vec();
    }
    fn add(sum: &mut f64, comp: &mut f64, v: f64) {
        let t = *sum + v;
        *comp += if sum.abs() >= v.abs() {
            (*sum - t) + v
        } else {
            (v - t) + *sum
        };
        *sum = t;
    }
    let (mut sum, mut comp) = (0.0, 0.0);
    let mut out = Vec::with_capacity(xs.len());
    for (i, &v) in xs.iter().enumerate() {
        add(&mut sum, &mut comp, v);
        if i >= k {
            add(&mut sum, &mut comp, -xs[i - k]);
        }
        out.push((sum + comp) / (i + 1).min(k) as f64);
    }
    out
}

/// The level index (0 to `SPAN - 1`) of `v`: `floor((v - lo) / range * 8 + offset)`, from -1
/// to 9, shifted by one. A zero range has three levels: below, at and above `lo`.
fn level(v: f64, lo: f64, range: f64, offset: f64) -> usize {
    let l = if range > 0.0 {
        ((v - lo) / range * LEVELS + offset)
            .floor()
            .clamp(-1.0, LEVELS + 1.0)
    } else if v == lo {
        0.0
    } else if v > lo {
        LEVELS + 1.0
    } else {
        -1.0
    };
    (l + 1.0) as usize
}

/// The mean of the last `k` values at every position (fewer at the start).
fn moving_average(v: &[f64], k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= k {
            sum -= v[i - k];
        }
        out.push(sum / (i + 1).min(k) as f64);
    }
    out
}

/// `P(Z > z)` for a standard normal: `erfc(z / sqrt 2) / 2`.
fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev fit of Numerical Recipes' `erfcc`
/// (fractional error below 1.2e-7 everywhere), enough for tails down to 1e-10.
fn erfc(x: f64) -> f64 {
    const C: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = C.iter().rev().fold(0.0, |acc, c| c + t * acc);
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_1),
            (2.0, 0.004_677_734_981_047_266),
            (4.0, 1.541_725_790_028_002e-8),
            (-1.0, 1.842_700_792_949_715),
        ] {
            let got = erfc(x);
            assert!(((got - want) / want).abs() < 1.2e-7, "erfc({x}) = {got}");
        }
    }

    #[test]
    fn levels_cover_the_range_and_one_beyond() {
        assert_eq!(level(0.0, 0.0, 8.0, 0.0), 1);
        assert_eq!(level(8.0, 0.0, 8.0, 0.0), 9);
        assert_eq!(level(8.0, 0.0, 8.0, 0.5), 9);
        assert_eq!(level(100.0, 0.0, 8.0, 0.5), SPAN - 1);
        assert_eq!(level(-100.0, 0.0, 8.0, 0.0), 0);
        assert_eq!(level(3.0, 3.0, 0.0, 0.5), 1);
        assert_eq!(level(4.0, 3.0, 0.0, 0.5), SPAN - 1);
    }

    #[test]
    fn surprise_counts_new_contexts() {
        // 0, 8, 0, 8: levels 0/8 on grid 0 and 0/8 (8.5 floors to 8) on grid 1.
        let (fine, coarse) = surprise(&[0.0, 8.0, 0.0, 8.0, 0.0], 0.0, 8.0);
        // 5 samples: the coarse stride is 1, so the coarse triple is the fine one again.
        // First position: its level is new and the other contexts reach before the window.
        assert_eq!((fine[0], coarse[0]), (1.0, 1.0));
        // Second: new level, new pair, triples out of reach.
        assert_eq!((fine[1], coarse[1]), (1.0, 1.0));
        // Third: level seen; pair (8, 0) new; triples new: 4 of 6 fine.
        assert_eq!((fine[2], coarse[2]), (4.0 / 6.0, 1.0));
        // Fourth: level and pair (0, 8) seen; triples (8, 0, 8) new.
        assert_eq!((fine[3], coarse[3]), (2.0 / 6.0, 1.0));
        // Fifth: everything seen.
        assert_eq!((fine[4], coarse[4]), (0.0, 0.0));
    }

    #[test]
    fn moving_mean_is_exact_enough_over_long_windows() {
        let xs: Vec<f64> = (0..100_000).map(|i| 0.1 * (i % 7) as f64 + 1e6).collect();
        let m = moving_mean(&xs, 7);
        assert_eq!(m[0], xs[0]);
        // Every full window of 7 holds each residue once: mean 1e6 + 0.3.
        for v in &m[6..] {
            assert!((v - (1e6 + 0.3)).abs() < 1e-9, "{v}");
        }
        assert_eq!(moving_mean(&xs[..3], 1), xs[..3].to_vec());
    }
}
