//! Prometheus's template functions, matching `template/template.go` (`NewTemplateExpander`)
//! and `github.com/prometheus/common/helpers/templates` of the Prometheus sources:
//! <https://github.com/prometheus/prometheus/blob/main/template/template.go>,
//! documented at <https://prometheus.io/docs/prometheus/latest/configuration/template_reference/>.
//!
//! Numeric inputs go through `convert_to_float` (Go's `ConvertToFloat`: strings via
//! `ParseFloat`, ints, floats and durations). `now` returns the evaluation time as float
//! seconds, as upstream does. The Augur extension `date LAYOUT TIME` lives here too.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use augur_engine::gofmt::format_float;
use regex::Regex;

use super::funcs::{go_quote, query_escape, Func, Ty};
use super::gotime;
use super::value::{GoList, GoMap, StructKind, Val};
use super::Env;

const fn f(
    name: &'static str,
    params: &'static [Ty],
    variadic: Option<Ty>,
    imp: super::funcs::FuncImpl,
) -> Func {
    Func {
        name,
        params,
        variadic,
        call: super::funcs::Call::Func(imp),
    }
}

/// Prometheus's functions plus Augur's `date`.
pub(crate) static FUNCS: &[Func] = &[
    f("query", &[Ty::Str], None, query),
    f("first", &[Ty::QueryResult], None, |_, a| match &a[0] {
        Val::List(l) if !l.items.is_empty() => Ok(l.items[0].clone()),
        _ => Err("first() called on vector with no elements".to_string()),
    }),
    f("label", &[Ty::Str, Ty::Sample], None, |_, a| {
        let Val::Str(name) = &a[0] else {
            unreachable!("checked by the signature")
        };
        Ok(Val::Str(sample_label(&a[1], name)?))
    }),
    f("value", &[Ty::Sample], None, |_, a| {
        sample_field(&a[0], "Value")
    }),
    f("strvalue", &[Ty::Sample], None, |_, a| {
        Ok(Val::Str(sample_label(&a[0], "__value__")?))
    }),
    f("args", &[], Some(Ty::Any), |_, a| {
        let entries = a
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("arg{i}"), v))
            .collect();
        Ok(Val::Map(Rc::new(GoMap {
            string_elems: false,
            entries,
        })))
    }),
    f(
        "reReplaceAll",
        &[Ty::Str, Ty::Str, Ty::Str],
        None,
        |_, a| {
            let re = compile(s(&a[0]))
                .map_err(|e| format!("regexp: Compile({}): {e}", backquote(s(&a[0]))))?;
            Ok(Val::Str(re.replace_all(s(&a[2]), s(&a[1])).into_owned()))
        },
    ),
    f("safeHtml", &[Ty::Str], None, |_, a| Ok(a[0].clone())),
    f("match", &[Ty::Str, Ty::Str], None, |_, a| {
        Ok(Val::Bool(compile(s(&a[0]))?.is_match(s(&a[1]))))
    }),
    f("title", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(title(s(&a[0]))))
    }),
    f("toUpper", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(s(&a[0]).to_uppercase()))
    }),
    f("toLower", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(s(&a[0]).to_lowercase()))
    }),
    f("graphLink", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(s(&a[0]))
        )))
    }),
    f("tableLink", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(s(&a[0]))
        )))
    }),
    f(
        "sortByLabel",
        &[Ty::Str, Ty::QueryResult],
        None,
        sort_by_label,
    ),
    f("stripPort", &[Ty::Str], None, |_, a| {
        let hp = s(&a[0]);
        Ok(Val::Str(
            split_host_port(hp).map_or(hp.to_string(), |(h, _)| h),
        ))
    }),
    f("stripDomain", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(strip_domain(s(&a[0]))))
    }),
    f("humanize", &[Ty::Any], None, |_, a| {
        Ok(Val::Str(humanize(convert_to_float(&a[0])?)))
    }),
    f("humanize1024", &[Ty::Any], None, |_, a| {
        Ok(Val::Str(humanize1024(convert_to_float(&a[0])?)))
    }),
    f("humanizeDuration", &[Ty::Any], None, |_, a| {
        Ok(Val::Str(humanize_duration(convert_to_float(&a[0])?)))
    }),
    f("humanizePercentage", &[Ty::Any], None, |_, a| {
        Ok(Val::Str(format!(
            "{}%",
            g4(convert_to_float(&a[0])? * 100.0)
        )))
    }),
    f("humanizeTimestamp", &[Ty::Any], None, |_, a| {
        let v = convert_to_float(&a[0])?;
        match float_to_time(v) {
            Ok(ns) => Ok(Val::Str(gotime::time_string(ns))),
            Err(None) => Ok(Val::Str(g4(v))),
            Err(Some(e)) => Err(e),
        }
    }),
    f("toTime", &[Ty::Any], None, |_, a| {
        float_to_time(convert_to_float(&a[0])?)
            .map(Val::Time)
            .map_err(|e| e.unwrap_or_else(|| "value is NaN or Inf".to_string()))
    }),
    f("toDuration", &[Ty::Any], None, |_, a| {
        Ok(Val::Duration(float_to_duration_ns(
            convert_to_float(&a[0])? * 1e9,
        )))
    }),
    f("now", &[], None, |env, _| {
        Ok(Val::Float(env.now_ms as f64 / 1000.0))
    }),
    f("pathPrefix", &[], None, |env, _| {
        Ok(Val::Str(url_path(&env.external_url).to_string()))
    }),
    f("externalURL", &[], None, |env, _| {
        Ok(Val::Str(env.external_url.clone()))
    }),
    f("parseDuration", &[Ty::Str], None, |_, a| {
        parse_duration(s(&a[0])).map(|ms| Val::Float(ms as f64 / 1000.0))
    }),
    f("urlQueryEscape", &[Ty::Str], None, |_, a| {
        Ok(Val::Str(query_escape(s(&a[0]))))
    }),
    f("date", &[Ty::Str, Ty::Any], None, |_, a| {
        let ns = match &a[1] {
            Val::Time(ns) => *ns,
            v => float_to_time(convert_to_float(v)?)
                .map_err(|e| e.unwrap_or_else(|| "value is NaN or Inf".to_string()))?,
        };
        Ok(Val::Str(gotime::format(ns, s(&a[0]))))
    }),
];

/// The string inside a value the signature guarantees to be a string.
fn s(v: &Val) -> &str {
    match v {
        Val::Str(s) => s,
        _ => "",
    }
}

fn backquote(s: &str) -> String {
    format!("`{s}`")
}

/// Compiles a Go (RE2) regular expression; the error reads like Go's `regexp` errors.
fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&augur_storage::go_regex(pattern)).map_err(|e| {
        let msg = match &e {
            regex::Error::Syntax(s) => s
                .lines()
                .last()
                .unwrap_or(s)
                .trim()
                .trim_start_matches("error: ")
                .to_string(),
            other => other.to_string(),
        };
        // Go's names for the common mistakes.
        let msg = match msg.as_str() {
            "unclosed group" => "missing closing )",
            "unopened group" => "unexpected )",
            "unclosed character class" => "missing closing ]",
            "repetition operator missing expression" => "missing argument to repetition operator",
            m if m.contains("escape") => "invalid escape sequence",
            m => m,
        };
        format!("error parsing regexp: {msg}: {}", backquote(pattern))
    })
}

fn query(env: &Env<'_>, a: Vec<Val>) -> Result<Val, String> {
    let Some(host) = env.host else {
        return Err("query is not available in this context".to_string());
    };
    let samples = host.query(s(&a[0]))?;
    let items = samples
        .iter()
        .map(|(labels, v)| Val::sample(labels, *v))
        .collect();
    Ok(Val::List(Rc::new(GoList {
        query_result: true,
        items,
    })))
}

/// Reads a field of a sample (a `*template.sample` or a map with the same keys).
fn sample_field(v: &Val, field: &str) -> Result<Val, String> {
    match v {
        Val::Struct(st) if st.kind == StructKind::Sample => {
            Ok(st.field(field).cloned().unwrap_or(Val::Nil))
        }
        Val::Map(m) => Ok(m.entries.get(field).cloned().unwrap_or(Val::Nil)),
        Val::Nil => {
            Err("runtime error: invalid memory address or nil pointer dereference".to_string())
        }
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        )),
    }
}

fn sample_label(v: &Val, name: &str) -> Result<String, String> {
    match sample_field(v, "Labels")? {
        Val::Map(m) => Ok(match m.entries.get(name) {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        }),
        _ => Ok(String::new()),
    }
}

fn sort_by_label(_: &Env<'_>, a: Vec<Val>) -> Result<Val, String> {
    let label = s(&a[0]).to_string();
    let Val::List(l) = &a[1] else {
        return Ok(a[1].clone());
    };
    let mut items = l.items.clone();
    let mut keyed: Vec<(String, Val)> = items
        .drain(..)
        .map(|v| (sample_label(&v, &label).unwrap_or_default(), v))
        .collect();
    keyed.sort_by(|x, y| x.0.cmp(&y.0));
    let items = keyed.into_iter().map(|(_, v)| v).collect();
    Ok(Val::List(Rc::new(GoList {
        query_result: l.query_result,
        items,
    })))
}

/// Go's `cases.Title(language.AmericanEnglish, cases.NoLower)`: upper-cases the first letter
/// of every word and leaves the rest alone. A word starts after anything that is not a
/// letter, digit or `_`, so "o'neil" becomes "O'Neil" and "x_y" stays "X_y", as in Go.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let starts_word = match prev {
            None => true,
            Some(p) => !(p.is_alphanumeric() || p == '_'),
        };
        if starts_word && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

/// Go's `ConvertToFloat` from `prometheus/common/helpers/templates`.
pub(crate) fn convert_to_float(v: &Val) -> Result<f64, String> {
    match v {
        Val::Float(f) => Ok(*f),
        Val::Int(i) => Ok(*i as f64),
        Val::Str(s) => parse_float(s),
        Val::Duration(ns) => Ok(*ns as f64 / 1e9),
        Val::Nil => Err("can't convert <nil> to float".to_string()),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` with its error text.
fn parse_float(s: &str) -> Result<f64, String> {
    let err = |what: &str| format!("strconv.ParseFloat: parsing {}: {what}", go_quote(s));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    let valid_chars = body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'));
    if !(special || valid_chars) || body.is_empty() {
        return Err(err("invalid syntax"));
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    match cleaned.parse::<f64>() {
        Ok(f) if f.is_infinite() && !special => Err(err("value out of range")),
        Ok(f) => Ok(f),
        Err(_) => Err(err("invalid syntax")),
    }
}

/// `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    format_float(v, 'g', 4)
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Go's `FloatToTime`: seconds to nanoseconds since the epoch. `Err(None)` is NaN or Inf.
fn float_to_time(v: f64) -> Result<i64, Option<String>> {
    if v.is_nan() || v.is_infinite() {
        return Err(None);
    }
    let ts = v * 1e9;
    if ts > i64::MAX as f64 || ts < i64::MIN as f64 {
        return Err(Some(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float(v, 'g', -1)
        )));
    }
    Ok(ts as i64)
}

/// Go's `time.Duration(float)` conversion: truncation, saturating like amd64 does not
/// guarantee, so out-of-range values clamp.
fn float_to_duration_ns(ns: f64) -> i64 {
    if ns.is_nan() {
        return i64::MIN;
    }
    ns as i64
}

/// Go's `model.ParseDurationAllowNegative`, in milliseconds.
fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(rest) = s.strip_prefix('-') {
        return parse_duration_positive(rest, s).map(|d| -d);
    }
    parse_duration_positive(s, s)
}

fn parse_duration_positive(s: &str, orig: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(orig));
    use augur_engine::duration::UNITS;
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit = 0usize;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            return Err(invalid());
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: u64 = s[start..i].parse().map_err(|_| invalid())?;
        let ustart = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ustart {
            return Err(invalid());
        }
        let unit = &s[ustart..i];
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                go_quote(unit),
                go_quote(orig)
            ));
        };
        if pos < last_unit {
            return Err(invalid());
        }
        last_unit = pos + 1;
        // Durations are limited to what time.Duration (int64 nanoseconds) holds.
        let unit_ms = UNITS[pos].1 as u64;
        if n > (1u64 << 63) / (unit_ms * 1_000_000) {
            return Err("duration out of range".to_string());
        }
        total += n * unit_ms;
        if total * 1_000_000 > i64::MAX as u64 {
            return Err("duration out of range".to_string());
        }
    }
    Ok(total as i64)
}

/// The path of a URL (`url.URL.Path`), without query or fragment.
fn url_path(u: &str) -> &str {
    let after_scheme = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return u.split(['?', '#']).next().unwrap_or(""),
    };
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].split(['?', '#']).next().unwrap_or(""),
        None => "",
    }
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let port = rest[end + 1..].strip_prefix(':')?;
        (host, port)
    } else {
        let i = hp.rfind(':')?;
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host, &hp[i + 1..])
    };
    if host.contains(['[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
    if host.parse::<IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("").to_string();
    if port.is_empty() {
        return host;
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Builds the alert data struct Prometheus passes as dot to annotation templates.
pub(crate) fn alert_data(
    labels: &BTreeMap<String, String>,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
    value: f64,
) -> Val {
    Val::Struct(Rc::new(super::value::GoStruct {
        kind: StructKind::Alert,
        fields: vec![
            ("Labels", Val::string_map(labels)),
            ("ExternalLabels", Val::string_map(external_labels)),
            ("ExternalURL", Val::Str(external_url.to_string())),
            ("Value", Val::Float(value)),
        ],
    }))
}
