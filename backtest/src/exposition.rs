//! The text exposition formats with timestamps, as `promtool tsdb create-blocks-from
//! openmetrics` reads them: OpenMetrics (timestamps in seconds, with a fraction) and the
//! Prometheus text format (timestamps in integer milliseconds).
//!
//! A file whose last non-empty line is `# EOF` is OpenMetrics; any other is the Prometheus text
//! format. `# HELP`, `# TYPE`, `# UNIT` and (in the Prometheus format) other comments are
//! skipped: classic histograms and summaries are imported as their series (`_bucket`, `_sum`,
//! `_count`, quantiles), which is how Prometheus stores them. Exemplars (`# {…} v [t]` after
//! a sample) are ignored. Every sample must carry a timestamp.
//!
//! Splitting a line is cheap and allocation-free ([`split_line`]); the label set is parsed
//! ([`parse_series`]) only the first time a series' text is seen.

use augur_storage::Labels;

/// Which of the two formats a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Timestamps are seconds (`1520430000.123`); the file ends with `# EOF`.
    OpenMetrics,
    /// Timestamps are integer milliseconds.
    PrometheusText,
}

impl Format {
    /// OpenMetrics when the last non-empty line is `# EOF`.
    pub fn detect(text: &str) -> Format {
        match text.trim_end().rsplit('\n').next() {
            Some(l) if l.trim_end_matches('\r') == "# EOF" => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::OpenMetrics => "OpenMetrics",
            Format::PrometheusText => "Prometheus text format",
        }
    }
}

/// A problem on one line: the 1-based column and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub column: usize,
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        column,
        message: message.into(),
    })
}

/// What one line holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    /// Nothing to import: an empty line or a comment.
    Skip,
    /// `# EOF` (OpenMetrics): nothing may follow.
    Eof,
    /// A sample: the series' text as written (`name{labels}`), its value and time (ms).
    Sample { series: &'a str, v: f64, t: i64 },
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Splits one line (without its newline) of a file in `format`.
pub fn split_line(line: &str, format: Format) -> Result<Entry<'_>, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let b = line.as_bytes();
    if b.is_empty() {
        return Ok(Entry::Skip);
    }
    if b[0] == b'#' {
        if line == "# EOF" {
            return Ok(Entry::Eof);
        }
        if format == Format::OpenMetrics {
            let known = ["# HELP ", "# TYPE ", "# UNIT "];
            if !known.iter().any(|k| line.starts_with(k)) {
                return err(
                    1,
                    "unknown comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF",
                );
            }
        }
        return Ok(Entry::Skip);
    }
    if b[0] == b'{' && b.get(1) == Some(&b'"') || b[0] == b'"' {
        return err(
            1,
            "quoted (UTF-8) metric names are not supported yet; use [a-zA-Z_:][a-zA-Z0-9_:]*",
        );
    }
    if !is_name_start(b[0]) {
        return err(
            1,
            format!("expected a metric name, found {:?}", char_at(line, 0)),
        );
    }
    let mut i = 1;
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        i = end_of_labels(line, i)?;
    }
    let series = &line[..i];
    if i >= b.len() || b[i] != b' ' {
        return match b.get(i) {
            None => err(i + 1, "expected a value after the series"),
            Some(_) => err(
                i + 1,
                format!(
                    "expected a space after the series, found {:?}",
                    char_at(line, i)
                ),
            ),
        };
    }
    let rest = &line[i + 1..];
    let value_col = i + 2;
    let mut fields = rest.splitn(3, ' ');
    let value_text = fields.next().unwrap_or("");
    let v = parse_value(value_text).ok_or_else(|| LineError {
        column: value_col,
        message: format!("invalid value {value_text:?}"),
    })?;
    let ts_col = value_col + value_text.len() + 1;
    let ts_text = match fields.next() {
        // The line ends after the value: the column just past its end.
        None => {
            return err(
                ts_col - 1,
                "sample has no timestamp (a backfill needs one on every sample)",
            )
        }
        Some("") => {
            return err(
                ts_col,
                "sample has no timestamp (a backfill needs one on every sample)",
            )
        }
        Some("#") => {
            return err(
                ts_col,
                "sample has no timestamp (a backfill needs one on every sample)",
            )
        }
        Some(t) => t,
    };
    let t = match format {
        Format::OpenMetrics => ts_text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| (f * 1000.0).round() as i64),
        Format::PrometheusText => ts_text.parse::<i64>().ok(),
    };
    let Some(t) = t else {
        let unit = match format {
            Format::OpenMetrics => "seconds",
            Format::PrometheusText => "integer milliseconds",
        };
        return err(
            ts_col,
            format!(
                "invalid timestamp {ts_text:?} ({} timestamps are {unit})",
                format.name()
            ),
        );
    };
    if let Some(more) = fields.next() {
        // Only an exemplar may follow.
        if !more.starts_with("# ") {
            return err(
                ts_col + ts_text.len() + 1,
                format!("unexpected text after the timestamp: {more:?}"),
            );
        }
    }
    Ok(Entry::Sample { series, v, t })
}

fn char_at(s: &str, i: usize) -> char {
    s[i..].chars().next().unwrap_or(' ')
}

/// Go's `strconv.ParseFloat` for exposition values: decimal and the Inf/NaN spellings.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            let b = s.as_bytes();
            // Rust also takes "infinity"; the formats do not.
            if b.is_empty() || !(b[0].is_ascii_digit() || matches!(b[0], b'+' | b'-' | b'.')) {
                return None;
            }
            s.parse().ok()
        }
    }
}

/// Index just past the `}` closing the label set that opens at `open`.
fn end_of_labels(line: &str, open: usize) -> Result<usize, LineError> {
    let b = line.as_bytes();
    let mut i = open + 1;
    let mut in_string = false;
    while i < b.len() {
        match (in_string, b[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_string = false,
            (false, b'"') => in_string = true,
            (false, b'}') => return Ok(i + 1),
            _ => {}
        }
        i += 1;
    }
    err(open + 1, "label set is not closed with '}'")
}

/// Parses a series' text (`name` or `name{a="x",b="y"}`, as [`split_line`] returned it) into
/// its label set. Labels with empty values are dropped, as Prometheus does. Columns in errors
/// are 1-based within the series text, which starts the line.
pub fn parse_series(series: &str) -> Result<Labels, LineError> {
    let b = series.as_bytes();
    let name_end = b.iter().position(|&c| c == b'{').unwrap_or(b.len());
    let mut pairs: Vec<(String, String)> = vec![("__name__".into(), series[..name_end].into())];
    let mut i = name_end + 1;
    let end = b.len().saturating_sub(1); // the closing brace
    while i < end {
        while i < end && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= end {
            break;
        }
        if b[i] == b'"' {
            return err(
                i + 1,
                "quoted (UTF-8) label names are not supported yet; use [a-zA-Z_][a-zA-Z0-9_]*",
            );
        }
        let start = i;
        while i < end && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if start == i {
            return err(
                i + 1,
                format!("expected a label name, found {:?}", char_at(series, i)),
            );
        }
        let name = &series[start..i];
        while i < end && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= end || b[i] != b'=' {
            return err(i + 1, format!("expected '=' after label name {name:?}"));
        }
        i += 1;
        while i < end && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= end || b[i] != b'"' {
            return err(i + 1, format!("expected a quoted value for label {name:?}"));
        }
        i += 1;
        let mut value = String::new();
        loop {
            if i >= end {
                return err(start + 1, format!("value of label {name:?} is not closed"));
            }
            match b[i] {
                b'"' => break,
                b'\\' => {
                    match b.get(i + 1) {
                        Some(b'\\') => value.push('\\'),
                        Some(b'"') => value.push('"'),
                        Some(b'n') => value.push('\n'),
                        _ => {
                            return err(
                                i + 1,
                                "invalid escape in label value (use \\\\, \\\" or \\n)",
                            )
                        }
                    }
                    i += 2;
                }
                _ => {
                    let c = char_at(series, i);
                    value.push(c);
                    i += c.len_utf8();
                }
            }
        }
        i += 1;
        if pairs.iter().any(|(n, _)| n == name) {
            return err(start + 1, format!("duplicate label name {name:?}"));
        }
        pairs.push((name.to_owned(), value));
        while i < end && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i < end {
            if b[i] != b',' {
                return err(
                    i + 1,
                    format!("expected ',' or '}}', found {:?}", char_at(series, i)),
                );
            }
            i += 1;
        }
    }
    pairs.retain(|(_, v)| !v.is_empty());
    Labels::new(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).map_err(|e| LineError {
        column: 1,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str, f: Format) -> (String, f64, i64) {
        match split_line(line, f).unwrap() {
            Entry::Sample { series, v, t } => (parse_series(series).unwrap().to_string(), v, t),
            other => panic!("{other:?}"),
        }
    }

    fn error(line: &str, f: Format) -> (usize, String) {
        match split_line(line, f) {
            Err(e) => (e.column, e.message),
            Ok(Entry::Sample { series, .. }) => {
                let e = parse_series(series).unwrap_err();
                (e.column, e.message)
            }
            Ok(other) => panic!("{other:?}"),
        }
    }

    const OM: Format = Format::OpenMetrics;
    const PT: Format = Format::PrometheusText;

    #[test]
    fn samples_in_both_formats() {
        assert_eq!(
            sample(
                r#"http_requests_total{code="200",path="/a\"b\\c\n"} 1027 1395066363.5"#,
                OM
            ),
            (
                r#"http_requests_total{code="200", path="/a\"b\\c\n"}"#.to_string(),
                1027.0,
                1_395_066_363_500
            )
        );
        assert_eq!(sample("up 1 1395066363000", PT).2, 1_395_066_363_000);
        assert_eq!(sample("x{le=\"+Inf\"} +Inf 1", OM).1, f64::INFINITY);
        assert!(sample("x NaN 1", OM).1.is_nan());
        assert_eq!(
            sample("x{a=\"\",b=\"1\",} -2.5e3 1 # {id=\"x\"} 1 1", OM).0,
            r#"x{b="1"}"#
        );
        assert_eq!(split_line("# TYPE x counter", OM).unwrap(), Entry::Skip);
        assert_eq!(split_line("# any comment", PT).unwrap(), Entry::Skip);
        assert_eq!(split_line("# EOF", OM).unwrap(), Entry::Eof);
        assert_eq!(split_line("", OM).unwrap(), Entry::Skip);
    }

    #[test]
    fn errors_point_at_the_column() {
        assert_eq!(
            error("x 1", OM),
            (
                4,
                "sample has no timestamp (a backfill needs one on every sample)".into()
            )
        );
        assert_eq!(error("x 1 ", OM).0, 5);
        assert_eq!(error("x one 5", OM).0, 3);
        assert_eq!(error("x 1 1.5", PT), (5, "invalid timestamp \"1.5\" (Prometheus text format timestamps are integer milliseconds)".into()));
        assert_eq!(error("x{a=\"1\" 1 1", OM).0, 2);
        assert_eq!(
            error("x{a=1} 1 1", OM),
            (5, "expected a quoted value for label \"a\"".into())
        );
        assert_eq!(
            error("x{a=\"1\",a=\"2\"} 1 1", OM).1,
            "duplicate label name \"a\""
        );
        assert_eq!(error("x{a=\"\\q\"} 1 1", OM).0, 6);
        assert!(error("{\"my.metric\"} 1 1", OM).1.contains("UTF-8"));
        assert!(error("# random", OM).1.contains("unknown comment"));
        assert_eq!(error("9x 1 1", OM).0, 1);
        assert_eq!(error("x 1 1 junk", OM).0, 7);
    }

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect("x 1 1\n# EOF\n"), OM);
        assert_eq!(Format::detect("x 1 1\n# EOF"), OM);
        assert_eq!(Format::detect("x 1 1000\n"), PT);
    }
}
