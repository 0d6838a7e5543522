//! Request parameters parsed exactly as Prometheus parses them (`web/api/v1/api.go`):
//! timestamps, durations, `limit`, `match[]` selectors and `U__`-escaped label names.

use augur_storage::{MatchOp, Matcher};
use promql_parser::label::MatchOp as PromOp;
use promql_parser::parser::Expr as PromExpr;

use crate::error::ApiError;

/// The earliest time Prometheus accepts, used when `start` is absent (milliseconds).
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// The latest time Prometheus accepts, used when `end` is absent (milliseconds).
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;

/// Parses a timestamp: Unix seconds with an optional fraction (rounded to milliseconds), or
/// RFC 3339, or the two literal strings Prometheus prints for its minimum and maximum time.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let secs = f.trunc();
            let ms = (f - secs) * 1000.0;
            return Ok((secs as i64)
                .saturating_mul(1000)
                .saturating_add(ms.round() as i64));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    match s {
        "-292273086-05-16T16:47:06Z" => Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {s:?} to a valid timestamp")),
    }
}

/// Parses an optional time parameter, defaulting when absent or empty.
pub fn time_param(name: &str, value: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => parse_time(v).map_err(|e| {
            ApiError::bad_param(name, format!("invalid time value for '{name}': {e}"))
        }),
    }
}

/// Parses a duration in milliseconds: float seconds, or Prometheus's duration syntax
/// (`1h30m`, `5m`, `250ms`, `2d`, `1w`, `1y`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() >= 9.223_372_036_854_776e15 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms as i64);
    }
    parse_prometheus_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

pub use augur_engine::duration::parse_duration as parse_prometheus_duration;

/// Parses `limit`: empty means 0 (no limit); negative is an error.
pub fn limit_param(value: Option<&str>) -> Result<usize, ApiError> {
    match value {
        None | Some("") => Ok(0),
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                ApiError::bad_param(
                    "limit",
                    format!("strconv.Atoi: parsing {v:?}: invalid syntax"),
                )
            })?;
            if n < 0 {
                return Err(ApiError::bad_param("limit", "limit must be non-negative"));
            }
            Ok(n as usize)
        }
    }
}

/// Deepest nesting of brackets a query may have. The parser recurses per level, so an
/// unbounded depth would let one request overflow the stack and abort the process.
pub const MAX_NESTING: usize = 200;

/// Most operators a query may have. A chain like `a + b + c …` is as deep as it is long, so
/// the engine recurses once per operator; and parsing such a chain takes time quadratic in its
/// length (about 1 s for 10,000 terms) before any timeout applies.
pub const MAX_OPERATORS: usize = 5000;

/// Nesting depth of `(`, `[` and `{`, and an upper bound on the number of operators
/// (operator characters and the words `and`, `or`, `unless`, `atan2`), outside string
/// literals and comments.
fn shape(q: &str) -> (usize, usize) {
    let (mut depth, mut max, mut operators) = (0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(qc) => {
                if c == '\\' && qc != '`' {
                    chars.next();
                } else if c == qc {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '#' => {
                    // A comment runs to the end of the line.
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                '+' | '-' | '*' | '/' | '%' | '^' | '=' | '!' | '<' | '>' => operators += 1,
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let mut word = String::from(c);
                    while let Some(&n) = chars.peek() {
                        if !(n.is_ascii_alphanumeric() || n == '_' || n == ':') {
                            break;
                        }
                        word.push(n);
                        chars.next();
                    }
                    word.make_ascii_lowercase();
                    if matches!(word.as_str(), "and" | "or" | "unless" | "atan2") {
                        operators += 1;
                    }
                }
                _ => {}
            },
        }
    }
    (max, operators)
}

/// Refuses a query nested deeper than [`MAX_NESTING`] or with more than [`MAX_OPERATORS`]
/// operators, in the parser's error style, before it reaches the parser.
pub fn check_complexity(q: &str) -> Result<(), String> {
    let (depth, operators) = shape(q);
    if depth > MAX_NESTING {
        return Err(format!(
            "parse error: expression nests {depth} levels deep; at most {MAX_NESTING} are allowed"
        ));
    }
    if operators > MAX_OPERATORS {
        return Err(format!(
            "parse error: expression has {operators} operators; at most {MAX_OPERATORS} are allowed"
        ));
    }
    Ok(())
}

/// Wraps a third-party parse error once, at the boundary.
pub fn parse_promql(q: &str) -> Result<PromExpr, String> {
    check_complexity(q)?;
    augur_engine::parse_raw(q).map_err(|e| format!("parse error: {e}"))
}

/// Whether an expression reads any series (has a vector or matrix selector anywhere).
/// Lists every variant so a new one breaks the build here.
pub fn has_selector(e: &PromExpr) -> bool {
    match e {
        PromExpr::VectorSelector(_) | PromExpr::MatrixSelector(_) => true,
        PromExpr::Aggregate(a) => {
            has_selector(&a.expr) || a.param.as_deref().is_some_and(has_selector)
        }
        PromExpr::Unary(u) => has_selector(&u.expr),
        PromExpr::Binary(b) => has_selector(&b.lhs) || has_selector(&b.rhs),
        PromExpr::Paren(p) => has_selector(&p.expr),
        PromExpr::Subquery(s) => has_selector(&s.expr),
        PromExpr::Call(c) => c.args.args.iter().any(|a| has_selector(a)),
        PromExpr::NumberLiteral(_) | PromExpr::StringLiteral(_) => false,
        // Extensions are not produced by the parser for queries Augur accepts.
        PromExpr::Extension(_) => false,
    }
}

/// Parses one `match[]` value into alternatives of storage matchers (more than one when the
/// selector uses `or` inside braces). Every alternative has at least one non-empty matcher.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = parse_promql(s)?;
    let PromExpr::VectorSelector(vs) = expr else {
        return Err(format!(
            "parse error: expected a series selector, got {s:?}"
        ));
    };
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        base.push(Matcher::equal("__name__", name.clone()));
    }
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, String> {
        ms.iter()
            .map(|m| {
                let op = match m.op {
                    PromOp::Equal => MatchOp::Equal,
                    PromOp::NotEqual => MatchOp::NotEqual,
                    PromOp::Re(_) => MatchOp::RegexMatch,
                    PromOp::NotRe(_) => MatchOp::RegexNoMatch,
                };
                Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
            })
            .collect()
    };
    let mut alternatives = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        let mut ms = base.clone();
        ms.extend(convert(&vs.matchers.matchers)?);
        alternatives.push(ms);
    } else {
        for group in &vs.matchers.or_matchers {
            let mut ms = base.clone();
            ms.extend(convert(group)?);
            alternatives.push(ms);
        }
    }
    for ms in &alternatives {
        if ms.iter().all(|m| m.matches("")) {
            return Err("match[] must contain at least one non-empty matcher".into());
        }
    }
    Ok(alternatives)
}

/// Decodes a label name from a URL path: names starting with `U__` use Prometheus's value
/// escaping (`__` is `_`, `_<hex>_` is that code point); a malformed escape leaves the name
/// as it was.
pub fn unescape_label_name(name: &str) -> String {
    let Some(body) = name.strip_prefix("U__") else {
        return name.to_owned();
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') if !hex.is_empty() => break,
                Some(h) if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                _ => return name.to_owned(),
            }
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(ch) => out.push(ch),
            None => return name.to_owned(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("1700000000", Ok(1_700_000_000_000)),
            ("1700000000.1234", Ok(1_700_000_000_123)),
            ("1700000000.9996", Ok(1_700_000_001_000)),
            ("-1.5", Ok(-1500)),
            ("2023-11-14T22:13:20Z", Ok(1_700_000_000_000)),
            ("2023-11-14T23:13:20.5+01:00", Ok(1_700_000_000_500)),
            ("-292273086-05-16T16:47:06Z", Ok(MIN_TIME_MS)),
            ("292277025-08-18T07:12:54.999999999Z", Ok(MAX_TIME_MS)),
            ("foo", Err(r#"cannot parse "foo" to a valid timestamp"#)),
            (
                "2023-11-14",
                Err(r#"cannot parse "2023-11-14" to a valid timestamp"#),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_time(input), want.map_err(str::to_owned), "{input}");
        }
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Option<i64>)] = &[
            ("15", Some(15_000)),
            ("0.5", Some(500)),
            ("5m", Some(300_000)),
            ("1h30m", Some(5_400_000)),
            ("250ms", Some(250)),
            ("1d2h", Some(93_600_000)),
            ("1w", Some(604_800_000)),
            ("1y", Some(31_536_000_000)),
            ("30m1h", None),
            ("5", Some(5000)),
            ("", None),
            ("m", None),
            ("5x", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).ok(), *want, "{input}");
        }
        assert_eq!(
            parse_duration("1e300").unwrap_err(),
            r#"cannot parse "1e300" to a valid duration. It overflows int64"#
        );
    }

    #[test]
    fn label_name_escaping() {
        let cases = [
            ("job", "job"),
            ("U__http_2e_status__code", "http.status_code"),
            ("U__a_1f600_b", "a😀b"),
            ("U__http_2e_status_code", "U__http_2e_status_code"),
            ("U__bad_zz_", "U__bad_zz_"),
            ("U__trailing_", "U__trailing_"),
        ];
        for (input, want) in cases {
            assert_eq!(unescape_label_name(input), want, "{input}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}up{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse_promql(&deep)
            .unwrap_err()
            .contains("nests 100000 levels deep"));
        let ok = format!("{}up{}", "(".repeat(50), ")".repeat(50));
        assert!(parse_promql(&ok).is_ok());
        assert_eq!(
            shape(r#"up{job="((((("}"#),
            (1, 1),
            "brackets in strings do not count"
        );
        assert_eq!(
            shape("a + b OR c and on(x) d unless e - -1 # + + +"),
            (1, 6),
            "comments do not count"
        );
        assert_eq!(
            shape("sum_or_not(x_and_y) or_z"),
            (1, 0),
            "only whole words"
        );
        let long = ["up"; MAX_OPERATORS + 2].join(" or ");
        assert_eq!(
            parse_promql(&long).unwrap_err(),
            format!(
                "parse error: expression has {} operators; at most {MAX_OPERATORS} are allowed",
                MAX_OPERATORS + 1
            )
        );
        assert!(parse_promql(&["up"; MAX_OPERATORS + 1].join(" + ")).is_ok());
    }

    #[test]
    fn finds_selectors() {
        for (q, want) in [
            ("1 + 1", false),
            ("up", true),
            ("sum(rate(x[5m]))", true),
            ("time() * 2", false),
            ("scalar(up) + 1", true),
        ] {
            assert_eq!(has_selector(&parse_promql(q).unwrap()), want, "{q}");
        }
    }

    #[test]
    fn selectors() {
        let alts = parse_selector(r#"up{job="api", instance=~"a.*"}"#).unwrap();
        assert_eq!(alts.len(), 1);
        let shown: Vec<String> = alts[0].iter().map(|m| m.to_string()).collect();
        assert_eq!(
            shown,
            [r#"__name__="up""#, r#"job="api""#, r#"instance=~"a.*""#]
        );
        assert!(parse_selector(r#"{job=""}"#).is_err());
        assert!(parse_selector("sum(up)")
            .unwrap_err()
            .contains("expected a series selector"));
        assert!(parse_selector("up{").unwrap_err().contains("parse error"));
    }
}
