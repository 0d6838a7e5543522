//! How expected and actual values are compared (FORMAT.md §7.7).

use augur_storage::histogram::Histogram;
use augur_storage::is_stale_nan;

/// The smallest normal `f64`.
const MIN_NORMAL: f64 = 2.2250738585072014e-308;

/// Whether `actual` matches `expected`:
/// 1. a staleness marker equals only another staleness marker;
/// 2. any two other NaNs are equal;
/// 3. equal values (including equal infinities) are equal;
/// 4. when either is zero, or both are tiny, only a difference below `1e-6 × MIN_NORMAL` is;
/// 5. otherwise the difference relative to `|a| + |b|` must be below `1e-6`.
pub fn float_eq(expected: f64, actual: f64) -> bool {
    if is_stale_nan(expected) || is_stale_nan(actual) {
        return is_stale_nan(expected) && is_stale_nan(actual);
    }
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    if expected == actual {
        return true;
    }
    let diff = (expected - actual).abs();
    let sum = expected.abs() + actual.abs();
    if expected == 0.0 || actual == 0.0 || sum < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / sum.min(f64::MAX) < 1e-6
}

/// Whether `actual` matches the `expected` histogram as promqltest compares them: both
/// compacted, the same schema, zero threshold, custom bounds and bucket indexes, counts, sum
/// and bucket counts by [`float_eq`]; the counter reset hint only when the expectation names
/// it (`hint_set`).
pub fn histogram_eq(expected: &Histogram, actual: &Histogram, hint_set: bool) -> bool {
    let nonzero = |h: &Histogram, positive: bool| -> Vec<(i32, f64)> {
        let (spans, counts) = if positive {
            (&h.positive_spans, &h.positive_buckets)
        } else {
            (&h.negative_spans, &h.negative_buckets)
        };
        let mut side = crate::hist::side(spans, counts);
        side.retain(|b| b.1 != 0.0);
        side
    };
    let same_side = |positive: bool| {
        let (e, a) = (nonzero(expected, positive), nonzero(actual, positive));
        e.len() == a.len()
            && e.iter()
                .zip(&a)
                .all(|(e, a)| e.0 == a.0 && float_eq(e.1, a.1))
    };
    expected.schema == actual.schema
        && float_eq(expected.count, actual.count)
        && float_eq(expected.sum, actual.sum)
        && (!expected.uses_custom_buckets() || expected.custom_values == actual.custom_values)
        && expected.zero_threshold == actual.zero_threshold
        && float_eq(expected.zero_count, actual.zero_count)
        && same_side(false)
        && same_side(true)
        && (!hint_set || expected.reset_hint == actual.reset_hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_storage::STALE_NAN;

    #[test]
    fn cases() {
        let cases = [
            (STALE_NAN, STALE_NAN, true),
            (STALE_NAN, f64::NAN, false),
            (f64::NAN, STALE_NAN, false),
            (f64::NAN, -f64::NAN, true),
            (f64::INFINITY, f64::INFINITY, true),
            (f64::INFINITY, f64::NEG_INFINITY, false),
            (f64::INFINITY, f64::MAX, false),
            (0.0, 1e-300, false),
            (0.0, -0.0, true),
            (1.0, 1.0 + 1e-7, true),
            (1.0, 1.0 + 1e-5, false),
            (1e300, 1e300 * (1.0 + 1e-7), true),
            (-2.5, 2.5, false),
            (0.0000002, 2e-7, true),
        ];
        for (e, a, want) in cases {
            assert_eq!(float_eq(e, a), want, "expected {e:e}, actual {a:e}");
        }
    }
}
