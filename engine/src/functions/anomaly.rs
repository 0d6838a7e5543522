//! Augur's anomaly-detection functions (issue "Anomaly functions"), registered with
//! promql-parser so they parse and type-check like built-ins. Documented with example rules
//! in `docs/anomaly-functions.md`.
//!
//! Implemented so far: `zscore(v range-vector)` and `ewma(v range-vector, alpha scalar)`.
//! Like the other range functions they see one window of one series at a time (staleness
//! markers already removed) and drop the metric name.
//!
//! NaN and ±Inf samples are values like any other and propagate through the arithmetic
//! (a NaN in a window makes `zscore` and `ewma` NaN); irregular spacing is ignored (both
//! weigh samples by order, not by time).

use std::sync::Once;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{register_extra_functions, Function};

use super::range::Win;
use crate::error::{exec_err, Result};

/// Registers the functions with promql-parser, once per process.
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_extra_functions(vec![
            Function::new(
                "zscore",
                vec![ValueType::Matrix],
                0,
                ValueType::Vector,
                false,
            ),
            Function::new(
                "ewma",
                vec![ValueType::Matrix, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
        ])
        .expect("Augur's function names do not clash with PromQL's");
    });
}

/// `zscore`: how unusual the newest sample is against the others in the window:
/// `(x - mean) / stddev` over the other samples (population standard deviation). At least
/// three samples; a zero deviation gives 0 when `x` equals the mean, else ±Inf.
pub(crate) fn zscore(w: &Win<'_>) -> Result<Option<f64>> {
    let s = w.s;
    if s.len() < 3 {
        return Ok(None);
    }
    let (others, x) = (&s[..s.len() - 1], s[s.len() - 1].v);
    let n = others.len() as f64;
    let mean = others.iter().map(|p| p.v).sum::<f64>() / n;
    let var = others
        .iter()
        .map(|p| (p.v - mean) * (p.v - mean))
        .sum::<f64>()
        / n;
    let sd = var.sqrt();
    Ok(Some(if sd == 0.0 {
        if x == mean {
            0.0
        } else if x > mean {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }
    } else {
        (x - mean) / sd
    }))
}

/// Checks `ewma`'s smoothing factor: it must be in (0, 1].
pub(crate) fn check_alpha(alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha <= 1.0 {
        Ok(())
    } else {
        Err(exec_err!(
            "ewma: alpha must be in (0, 1], got {}",
            super::go_float(alpha)
        ))
    }
}

/// `ewma`: exponentially weighted moving average of the window, oldest first:
/// `e = x1`, then `e = alpha*x + (1-alpha)*e`.
pub(crate) fn ewma(w: &Win<'_>) -> Result<Option<f64>> {
    let alpha = w.params[0];
    check_alpha(alpha)?;
    let mut it = w.s.iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    Ok(Some(
        it.fold(first.v, |e, p| alpha * p.v + (1.0 - alpha) * e),
    ))
}
