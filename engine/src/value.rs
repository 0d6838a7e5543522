//! Query results as callers see them: Prometheus's four result types.

use std::fmt;

use augur_storage::{Labels, Sample, Series};

/// One element of an instant vector: a series' labels and its value at `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
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
