//! Query results as callers see them: Prometheus's four result types.

use std::fmt;

use augur_storage::{Labels, Sample, Series};

/// One element of an instant vector: a series' labels and its value at `t`, a float `v` or,
/// when `h` is set, a native histogram (`v` is then 0 and means nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub h: Option<std::sync::Arc<augur_storage::histogram::Histogram>>,
}

/// The result of a query, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number at a time (e.g. `1 + 1`, `scalar(x)`).
    Scalar(Sample),
    /// A string literal query (e.g. `"foo"`), with the evaluation time.
    String(i64, String),
    /// An instant vector, in evaluation order (`sort`, `topk` … order is kept).
    Vector(Vec<Element>),
    /// A range vector or range-query result, sorted by labels.
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's name for the result type, as in the `resultType` JSON field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A successful query: its value and the annotations Prometheus would return beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    /// `PromQL warning: …` annotations (the result may be incomplete or misleading).
    pub warnings: Vec<String>,
    /// `PromQL info: …` annotations (the query may not do what its author meant).
    pub infos: Vec<String>,
}

/// Displays a float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` does, the way Prometheus
/// writes sample values and label values made from numbers: the shortest digits that read
/// back as `v`, never an exponent; `NaN`, `+Inf`, `-Inf`.
#[derive(Debug, Clone, Copy)]
pub struct GoFloat(pub f64);

impl fmt::Display for GoFloat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            // Rust's `Display` for f64 is the shortest round-trip form without an exponent.
            write!(f, "{v}")
        }
    }
}

/// Displays a float as Go's `strconv.FormatFloat(v, 'e', -1, 64)` does (`'E'` with
/// [`GoExp::upper`]): the shortest mantissa that reads back as `v` and a signed exponent of at
/// least two digits (`1e+00`, `2.5e-07`, `1.5E+21`); `NaN`, `+Inf`, `-Inf`. Prometheus uses it
/// for alert values in its API, promtool for sample values in its reports.
#[derive(Debug, Clone, Copy)]
pub struct GoExp {
    pub v: f64,
    /// Whether the exponent letter is `E` rather than `e`.
    pub upper: bool,
}

impl GoExp {
    pub fn lower(v: f64) -> GoExp {
        GoExp { v, upper: false }
    }

    pub fn upper(v: f64) -> GoExp {
        GoExp { v, upper: true }
    }
}

impl fmt::Display for GoExp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.v;
        if !v.is_finite() {
            return GoFloat(v).fmt(f);
        }
        // Rust prints the shortest mantissa too, but as `2.5e-7`.
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let letter = if self.upper { 'E' } else { 'e' };
        let sign = if exp < 0 { '-' } else { '+' };
        write!(f, "{mantissa}{letter}{sign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_exponent_format() {
        let lower = |v: f64| GoExp::lower(v).to_string();
        assert_eq!(lower(1.0), "1e+00");
        assert_eq!(lower(0.0), "0e+00");
        assert_eq!(lower(0.25), "2.5e-01");
        assert_eq!(lower(-1234.5), "-1.2345e+03");
        assert_eq!(lower(1e-7), "1e-07");
        assert_eq!(lower(1.5e21), "1.5e+21");
        assert_eq!(lower(1e100), "1e+100");
        assert_eq!(lower(f64::NAN), "NaN");
        assert_eq!(lower(f64::NEG_INFINITY), "-Inf");
        assert_eq!(GoExp::upper(1234.5).to_string(), "1.2345E+03");
        assert_eq!(GoExp::upper(f64::INFINITY).to_string(), "+Inf");
    }
}
