//! The incidents file: labelled anomaly windows per key.
//!
//! YAML or JSON (JSON is YAML), a mapping from a key (the value of the backtest's key label)
//! to a list of windows, each a two-element list `[start, end]`, inclusive at both ends:
//!
//! ```yaml
//! checkout: [["2026-11-02T14:05:00Z", "2026-11-02T14:40:00Z"]]
//! "realKnownCause/nyc_taxi": [["2014-11-01 19:00:00.000000", "2014-11-02 12:30:00.000000"]]
//! api: [[1793000000, 1793003600]]   # unix seconds
//! quiet: []                          # a key with no incident: every detection is false
//! ```
//!
//! A time is RFC 3339, `YYYY-MM-DD HH:MM:SS[.fraction]` read as UTC (NAB's label files), or
//! unix seconds (a number, or a string holding one). Windows of a key must not overlap and
//! each must end at or after its start.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Incident windows by key, each list sorted by start, inclusive millisecond ranges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Incidents {
    pub windows: BTreeMap<String, Vec<(i64, i64)>>,
}

/// Parses a time: unix seconds (fractions kept to the millisecond), RFC 3339, or
/// `YYYY-MM-DD HH:MM:SS[.fraction]` as UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(f) = s.parse::<f64>() {
        return f.is_finite().then(|| (f * 1000.0).round() as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

impl Incidents {
    /// Reads and checks an incidents file.
    pub fn load(path: &str) -> Result<Incidents> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Input {
            what: path.to_owned(),
            message: format!("cannot read the incidents file: {e}"),
        })?;
        Incidents::parse(path, &text)
    }

    /// Parses and checks an incidents file's text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Incidents> {
        let bad = |message: String| Error::Input {
            what: path.to_owned(),
            message,
        };
        let raw: BTreeMap<String, Option<Vec<Vec<serde_yaml::Value>>>> = serde_yaml::from_str(text)
            .map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("{}:{}: ", l.line(), l.column()))
                    .unwrap_or_default();
                bad(format!(
                    "{at}{e} (expected a mapping from key to a list of [start, end] windows)"
                ))
            })?;
        if raw.is_empty() {
            return Err(bad("the incidents file names no key".into()));
        }
        let mut out = Incidents::default();
        for (key, list) in raw {
            let mut windows = Vec::new();
            for (i, w) in list.unwrap_or_default().iter().enumerate() {
                let ctx = || format!("key {key:?}, window {}", i + 1);
                let [start, end] = w.as_slice() else {
                    return Err(bad(format!(
                        "{}: a window is [start, end], got {} values",
                        ctx(),
                        w.len()
                    )));
                };
                let time = |v: &serde_yaml::Value| -> Result<i64> {
                    let parsed = match v {
                        serde_yaml::Value::Number(n) => n
                            .as_f64()
                            .and_then(|f| f.is_finite().then(|| (f * 1000.0).round() as i64)),
                        serde_yaml::Value::String(s) => parse_time(s),
                        _ => None,
                    };
                    parsed.ok_or_else(|| {
                        bad(format!(
                            "{}: cannot read {} as a time (use RFC 3339, \"YYYY-MM-DD HH:MM:SS\" in UTC, or unix seconds)",
                            ctx(),
                            serde_yaml::to_string(v).unwrap_or_default().trim()
                        ))
                    })
                };
                let (s, e) = (time(start)?, time(end)?);
                if e < s {
                    return Err(bad(format!("{}: ends before it starts", ctx())));
                }
                windows.push((s, e, i + 1));
            }
            windows.sort_unstable();
            for pair in windows.windows(2) {
                if pair[1].0 <= pair[0].1 {
                    return Err(bad(format!(
                        "key {key:?}: windows {} and {} overlap",
                        pair[0].2, pair[1].2
                    )));
                }
            }
            out.windows
                .insert(key, windows.into_iter().map(|(s, e, _)| (s, e)).collect());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Incidents> {
        Incidents::parse("inc.yml", text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn times_in_every_accepted_form() {
        let inc = parse(
            "a: [[\"2014-02-19 10:50:00.000000\", \"2014-02-19T11:00:00Z\"]]\n\
             b: [[1000, \"1001.5\"], [2000, 2000]]\n\
             c: []\n",
        )
        .unwrap();
        assert_eq!(inc.windows["a"], [(1_392_807_000_000, 1_392_807_600_000)]);
        assert_eq!(
            inc.windows["b"],
            [(1_000_000, 1_001_500), (2_000_000, 2_000_000)]
        );
        assert!(inc.windows["c"].is_empty());
        // JSON is accepted as it is YAML.
        let inc = parse(r#"{"k": [[0, 1]]}"#).unwrap();
        assert_eq!(inc.windows["k"], [(0, 1000)]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        assert!(err("{}").contains("inc.yml: the incidents file names no key"));
        assert!(err("a: [[2, 1]]").contains("key \"a\", window 1: ends before it starts"));
        assert!(err("a: [[1, 5], [4, 9]]").contains("key \"a\": windows 1 and 2 overlap"));
        assert!(err("a: [[1]]").contains("a window is [start, end], got 1 values"));
        assert!(err("a: [[\"yesterday\", 1]]").contains("cannot read yesterday as a time"));
        let e = err("a: [[1, 2]\nb: x");
        assert!(e.starts_with("inc.yml: "), "{e}");
        assert!(e.contains("expected a mapping"), "{e}");
    }
}
