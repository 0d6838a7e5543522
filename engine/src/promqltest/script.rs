//! Parsing of the promqltest script format (`../shared/conformance/FORMAT.md`): commands,
//! series descriptions, value sequences and expectations. Evaluation lives in `runner.rs`.

use std::fmt;

use augur_storage::histogram::{Histogram, ResetHint, Span};
use augur_storage::{Labels, STALE_NAN};

/// A parse failure, with the 1-based line it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

/// One position of a value sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    /// `_`: no sample here.
    Empty,
    Value(f64),
    /// A native histogram literal (`{{…}}`, see [`parse_histogram`]), and whether it names
    /// its counter reset hint (an expected value's hint is compared only then).
    Histogram(Box<Histogram>, bool),
}

/// A series line: labels and expanded values.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// The label set; empty for `{}` (how a scalar's range result is written).
    pub labels: Labels,
    pub points: Vec<Point>,
    /// Start-timestamp offsets (ms) per position from an `@st` line (FORMAT.md §3.2): empty
    /// without one, else one per position (`None` = no start timestamp).
    pub start_timestamps: Vec<Option<i64>>,
    pub line: usize,
}

/// What an `expect` line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Fail(Option<TextMatch>),
    Warn(Option<TextMatch>),
    Info(Option<TextMatch>),
    NoWarn,
    NoInfo,
    Ordered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    Regex(String),
}

/// The expected result of an eval.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// Series lines (an empty list expects an empty vector or matrix).
    Series(Vec<SeriesLine>),
    Scalar(f64),
    String(String),
    /// `expect range vector from A to B step C` with its series.
    RangeVector {
        start: i64,
        end: i64,
        step: i64,
        series: Vec<SeriesLine>,
    },
}

/// When an eval runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalAt {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eval {
    pub line: usize,
    pub at: EvalAt,
    pub expr: String,
    pub expects: Vec<Expect>,
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Clear,
    Load {
        step: i64,
        series: Vec<SeriesLine>,
        /// `load_with_nhcb` (classic histograms also loaded as native ones).
        nhcb: bool,
        line: usize,
    },
    Eval(Eval),
}

pub use crate::duration::parse_duration;

/// Parses a number as the value grammar allows (§5.2): decimal with optional sign, fraction
/// and exponent, or `Inf`/`NaN` in any case.
pub fn parse_value(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (sign, body) = match lower.as_bytes().first() {
        Some(b'-') => (-1.0, &lower[1..]),
        Some(b'+') => (1.0, &lower[1..]),
        _ => (1.0, lower.as_str()),
    };
    match body {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'-' | b'+'))
    {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

/// Parses a scalar expectation line (Go number literal syntax, §4.2).
pub fn parse_scalar_line(s: &str) -> Option<f64> {
    if let Some(v) = parse_value(s) {
        return Some(v);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let body = body.replace('_', "");
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()? as f64
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()? as f64
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()? as f64
    } else {
        lower.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Expands one value-sequence item (§5.2).
fn expand_item(item: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if item == "_" {
        out.push(Point::Empty);
        return Ok(());
    }
    if item == "stale" {
        out.push(Point::Value(STALE_NAN));
        return Ok(());
    }
    if item.starts_with("{{") {
        return expand_histograms(item, out);
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n
            .parse()
            .map_err(|_| format!("bad repetition in {item:?}"))?;
        out.extend(std::iter::repeat_n(Point::Empty, n));
        return Ok(());
    }
    let Some(xpos) = item.rfind('x') else {
        let v = parse_value(item).ok_or_else(|| format!("invalid value {item:?}"))?;
        out.push(Point::Value(v));
        return Ok(());
    };
    let times: usize = item[xpos + 1..]
        .parse()
        .map_err(|_| format!("invalid value {item:?}"))?;
    let head = &item[..xpos];
    // Split `v+d` / `v-d` at the sign that is not the value's own sign or an exponent's.
    let bytes = head.as_bytes();
    let split = (1..bytes.len())
        .rev()
        .find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, delta) = match split {
        Some(i) => {
            let d = parse_value(&head[i + 1..])
                .ok_or_else(|| format!("invalid increment in {item:?}"))?;
            let d = if bytes[i] == b'-' { -d } else { d };
            (
                parse_value(&head[..i]).ok_or_else(|| format!("invalid value {item:?}"))?,
                d,
            )
        }
        None => (
            parse_value(head).ok_or_else(|| format!("invalid value {item:?}"))?,
            0.0,
        ),
    };
    let mut v = start;
    for i in 0..=times {
        if i > 0 {
            v += delta;
        }
        out.push(Point::Value(v));
    }
    Ok(())
}

/// Splits a series line into its label-set text and the value items.
fn split_series(line: &str) -> Result<(&str, Vec<&str>), String> {
    // The label set ends at the first whitespace outside braces and quotes.
    let bytes = line.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut end = bytes.len();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q != b'`' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' | b'\'' | b'`' => quote = Some(b),
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b' ' | b'\t' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            },
        }
        i += 1;
    }
    let labels = &line[..end];
    let rest = line[end..].trim();
    // Histogram literals contain spaces: keep `{{ … }}` groups together.
    let mut items = Vec::new();
    let mut cur_start: Option<usize> = None;
    let mut hist_depth = 0;
    let rb = rest.as_bytes();
    let mut j = 0;
    while j < rb.len() {
        if rb[j..].starts_with(b"{{") {
            hist_depth += 1;
            cur_start.get_or_insert(j);
            j += 2;
            continue;
        }
        if rb[j..].starts_with(b"}}") {
            hist_depth -= 1;
            j += 2;
            continue;
        }
        if (rb[j] == b' ' || rb[j] == b'\t') && hist_depth == 0 {
            if let Some(s) = cur_start.take() {
                items.push(&rest[s..j]);
            }
        } else {
            cur_start.get_or_insert(j);
        }
        j += 1;
    }
    if let Some(s) = cur_start {
        items.push(&rest[s..]);
    }
    Ok((labels, items))
}

/// Parses a label set in PromQL notation (`name`, `name{a="b"}`, `{a="b"}`).
pub fn parse_labels(s: &str) -> Result<Labels, String> {
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.to_owned()));
    }
    if !rest.is_empty() {
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| format!("invalid label set {s:?}"))?;
        let mut p = inner.trim();
        while !p.is_empty() {
            // A name is bare or quoted (Prometheus 3); a quoted name without `=` is the
            // metric name (`{"http.server.duration", job="a"}`).
            let lname = if let Some((quoted, used)) = unquote_prefix(p) {
                p = p[used..].trim_start();
                if p.is_empty() || p.starts_with(',') {
                    p = p.strip_prefix(',').unwrap_or(p).trim_start();
                    pairs.retain(|(n, _)| n != "__name__");
                    pairs.push(("__name__".into(), quoted));
                    continue;
                }
                quoted
            } else {
                let eq = p
                    .find('=')
                    .ok_or_else(|| format!("invalid label set {s:?}"))?;
                let bare = p[..eq].trim().to_owned();
                p = &p[eq..];
                bare
            };
            p = p
                .strip_prefix('=')
                .ok_or_else(|| format!("invalid label set {s:?}"))?
                .trim_start();
            let (value, used) =
                unquote_prefix(p).ok_or_else(|| format!("invalid label value in {s:?}"))?;
            p = p[used..].trim_start();
            p = p.strip_prefix(',').unwrap_or(p).trim_start();
            if lname == "__name__" {
                pairs.retain(|(n, _)| n != "__name__");
            }
            pairs.push((lname, value));
        }
    }
    // Empty-valued labels are absent (`Labels` drops them); `{}` gives the empty set.
    Labels::new(pairs).map_err(|e| e.to_string())
}

/// Reads a quoted string at the start of `s` (`"…"`, `'…'` or `` `…` ``, Go escapes); returns
/// the value and the bytes consumed.
pub fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let mut chars = s.char_indices();
    let (_, q) = chars.next()?;
    if !matches!(q, '"' | '\'' | '`') {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Some((out, i + 1));
        }
        if c == '\\' && q != '`' {
            let (_, e) = chars.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\\' | '"' | '\'' => out.push(e),
                'x' => {
                    let h: String = (0..2)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    out.push(u8::from_str_radix(&h, 16).ok()? as char);
                }
                'u' | 'U' => {
                    let n = if e == 'u' { 4 } else { 8 };
                    let h: String = (0..n)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                }
                d if d.is_digit(8) => {
                    let mut oct = String::from(d);
                    for _ in 0..2 {
                        oct.push(chars.next()?.1);
                    }
                    out.push(u8::from_str_radix(&oct, 8).ok()? as char);
                }
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Expands a histogram item: `{{h}}`, `{{h}}xN` (N+1 copies) or `{{h}}±{{d}}xN` (`h`, then
/// `d` added or subtracted N times).
fn expand_histograms(item: &str, out: &mut Vec<Point>) -> Result<(), String> {
    let close = item
        .find("}}")
        .ok_or_else(|| format!("unterminated histogram {item:?}"))?;
    let (first, mut hint_set) = parse_histogram_hint(&item[..close + 2])?;
    let rest = &item[close + 2..];
    let (delta, times) = if rest.is_empty() {
        (None, 0)
    } else if let Some(n) = rest.strip_prefix('x') {
        (
            None,
            n.parse::<usize>()
                .map_err(|_| format!("bad repetition in {item:?}"))?,
        )
    } else {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1.0,
            b'-' => -1.0,
            _ => return Err(format!("invalid histogram series {item:?}")),
        };
        let close2 = rest
            .find("}}x")
            .ok_or_else(|| format!("a histogram increment needs a repetition: {item:?}"))?;
        let (d, d_hint) = parse_histogram_hint(&rest[1..close2 + 2])?;
        hint_set |= d_hint;
        let n = rest[close2 + 3..]
            .parse::<usize>()
            .map_err(|_| format!("bad repetition in {item:?}"))?;
        (Some((d, sign)), n)
    };
    let mut h = first;
    out.push(Point::Histogram(Box::new(h.clone()), hint_set));
    for _ in 0..times {
        if let Some((d, sign)) = &delta {
            h = add_histograms(&h, d, *sign)?;
        }
        out.push(Point::Histogram(Box::new(h.clone()), hint_set));
    }
    Ok(())
}

/// Parses a histogram literal: `{{schema:1 sum:-0.3 count:3 z_bucket:1 z_bucket_w:0.05
/// buckets:[1 2] offset:-1 n_buckets:[1] n_offset:0 counter_reset_hint:gauge
/// custom_values:[0.1 0.5]}}` (every field optional). Counts are floats, as Prometheus's
/// test loader makes them; each side is one span starting at its offset.
pub fn parse_histogram(text: &str) -> Result<Histogram, String> {
    parse_histogram_hint(text).map(|(h, _)| h)
}

/// [`parse_histogram`], and whether the literal names its counter reset hint.
pub fn parse_histogram_hint(text: &str) -> Result<(Histogram, bool), String> {
    let body = text
        .trim()
        .strip_prefix("{{")
        .and_then(|b| b.strip_suffix("}}"))
        .ok_or_else(|| format!("invalid histogram {text:?}"))?;
    let bad = |what: &str| format!("invalid {what} in histogram {text:?}");
    let mut h = Histogram::default();
    let mut hint_set = false;
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    let (mut pos_offset, mut neg_offset) = (0i32, 0i32);
    let mut rest = body.trim();
    while !rest.is_empty() {
        let colon = rest.find(':').ok_or_else(|| bad("field"))?;
        let key = rest[..colon].trim();
        rest = rest[colon + 1..].trim_start();
        let value;
        if rest.starts_with('[') {
            let end = rest.find(']').ok_or_else(|| bad(key))?;
            value = &rest[..=end];
            rest = rest[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = &rest[..end];
            rest = rest[end..].trim_start();
        }
        let num = || parse_value(value).ok_or_else(|| bad(key));
        let list = || -> Result<Vec<f64>, String> {
            value
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split_whitespace()
                .map(|v| parse_value(v).ok_or_else(|| bad(key)))
                .collect()
        };
        match key {
            "schema" => h.schema = num()? as i32,
            "sum" => h.sum = num()?,
            "count" => h.count = num()?,
            "z_bucket" => h.zero_count = num()?,
            "z_bucket_w" => h.zero_threshold = num()?,
            "buckets" => pos = list()?,
            "n_buckets" => neg = list()?,
            "offset" => pos_offset = num()? as i32,
            "n_offset" => neg_offset = num()? as i32,
            "custom_values" => h.custom_values = list()?,
            "counter_reset_hint" => {
                hint_set = true;
                h.reset_hint = match value {
                    "unknown" => ResetHint::Unknown,
                    "reset" => ResetHint::Yes,
                    "not_reset" => ResetHint::No,
                    "gauge" => ResetHint::Gauge,
                    _ => return Err(bad(key)),
                }
            }
            _ => return Err(format!("unknown field {key:?} in histogram {text:?}")),
        }
    }
    let span = |offset: i32, n: usize| {
        if n == 0 {
            Vec::new()
        } else {
            vec![Span {
                offset,
                length: n as u32,
            }]
        }
    };
    h.positive_spans = span(pos_offset, pos.len());
    h.positive_buckets = pos;
    h.negative_spans = span(neg_offset, neg.len());
    h.negative_buckets = neg;
    Ok((h, hint_set))
}

/// `a + sign·b` with PromQL's histogram arithmetic (the coarser schema, the wider zero bucket).
fn add_histograms(a: &Histogram, b: &Histogram, sign: f64) -> Result<Histogram, String> {
    crate::hist::add(a, b, sign < 0.0)
        .map(|s| s.h)
        .ok_or_else(|| "a histogram increment needs the same kind of buckets".to_string())
}

/// Parses a series line. `{}` (the empty label set) is allowed.
pub fn parse_series_line(line: &str, lineno: usize) -> Result<SeriesLine, ScriptError> {
    let err = |message: String| ScriptError {
        line: lineno,
        message,
    };
    let (labels_text, items) = split_series(line).map_err(err)?;
    let mut points = Vec::new();
    for item in items {
        expand_item(item, &mut points).map_err(err)?;
    }
    let labels = parse_labels(labels_text).map_err(err)?;
    Ok(SeriesLine {
        labels,
        points,
        start_timestamps: Vec::new(),
        line: lineno,
    })
}

/// A signed single-unit duration of an `@st` item (`-1m`, `+30s`, `-0ms`, `0`), in ms.
fn parse_signed_duration(s: &str) -> Option<i64> {
    match s.as_bytes().first()? {
        b'-' => parse_duration(&s[1..]).map(|d| -d),
        b'+' => parse_duration(&s[1..]),
        _ => parse_duration(s),
    }
}

/// Expands one `@st` item (FORMAT.md §3.2): `_`, `_xN` (N positions), `D`, `DxN` and
/// `D±ExN` (N+1 positions each).
fn expand_st_item(item: &str, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n
            .parse()
            .map_err(|_| format!("bad repetition in {item:?}"))?;
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    let bad = || format!("invalid start timestamp item {item:?}");
    let Some((head, times)) = item.rsplit_once('x') else {
        out.push(Some(parse_signed_duration(item).ok_or_else(bad)?));
        return Ok(());
    };
    let times: i64 = times.parse().map_err(|_| bad())?;
    let split = head
        .char_indices()
        .skip(1)
        .filter(|&(_, c)| c == '+' || c == '-')
        .last();
    let (start, step) = match split {
        Some((i, c)) => {
            let e = parse_duration(&head[i + 1..]).ok_or_else(bad)?;
            (
                parse_signed_duration(&head[..i]).ok_or_else(bad)?,
                if c == '-' { -e } else { e },
            )
        }
        None => (parse_signed_duration(head).ok_or_else(bad)?, 0),
    };
    out.extend((0..=times).map(|k| Some(start + k * step)));
    Ok(())
}

/// Parses an `@st` line into its label set and per-position offsets.
fn parse_st_line(line: &str) -> Result<(Labels, Vec<Option<i64>>), String> {
    let (labels_text, items) = split_series(line)?;
    let labels_text = labels_text
        .strip_suffix("@st")
        .ok_or("a start-timestamp line's label set must end in @st")?;
    let mut sts = Vec::new();
    for item in items {
        expand_st_item(item, &mut sts)?;
    }
    Ok((parse_labels(labels_text)?, sts))
}

fn parse_text_match(rest: &str) -> Result<Option<TextMatch>, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    if let Some(m) = rest.strip_prefix("msg:") {
        return Ok(Some(TextMatch::Exact(m.trim().to_owned())));
    }
    if let Some(r) = rest.strip_prefix("regex:") {
        return Ok(Some(TextMatch::Regex(r.trim().to_owned())));
    }
    Err(format!("invalid expectation {rest:?}"))
}

/// Parses a whole script into commands.
pub fn parse_script(text: &str) -> Result<Vec<Command>, ScriptError> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_owned()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let lineno = i + 1;
        if line.is_empty() {
            i += 1;
            continue;
        }
        let err = |message: String| ScriptError {
            line: lineno,
            message,
        };
        let word = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // The block: following lines up to the first empty one.
        let mut block_end = i + 1;
        while block_end < lines.len() && !lines[block_end].is_empty() {
            block_end += 1;
        }
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
            continue;
        }
        if word.starts_with("load") {
            let mut parts = line.split_whitespace();
            let kw = parts.next().unwrap_or_default();
            let step = parts
                .next()
                .and_then(parse_duration)
                .ok_or_else(|| err(format!("invalid load step in {line:?}")))?;
            let mut series: Vec<SeriesLine> = Vec::new();
            // An `@st` line waiting for its sample line: (line number, labels, offsets).
            let mut pending_st: Option<(usize, Labels, Vec<Option<i64>>)> = None;
            for (j, l) in lines.iter().enumerate().take(block_end).skip(i + 1) {
                if l.split_whitespace()
                    .next()
                    .is_some_and(|t| t.ends_with("@st"))
                {
                    if let Some((at, ..)) = pending_st {
                        return Err(ScriptError {
                            line: at,
                            message:
                                "a start-timestamp line must be followed by its series' sample line"
                                    .into(),
                        });
                    }
                    let (labels, sts) = parse_st_line(l).map_err(|message| ScriptError {
                        line: j + 1,
                        message,
                    })?;
                    pending_st = Some((j + 1, labels, sts));
                    continue;
                }
                let mut s = parse_series_line(l, j + 1)?;
                if let Some((at, labels, sts)) = pending_st.take() {
                    if labels != s.labels || sts.len() != s.points.len() {
                        return Err(ScriptError {
                            line: at,
                            message: format!(
                                "start-timestamp line ({} positions for {labels}) does not match the next sample line ({} positions for {})",
                                sts.len(),
                                s.points.len(),
                                s.labels
                            ),
                        });
                    }
                    s.start_timestamps = sts;
                }
                if s.labels.is_empty() {
                    return Err(ScriptError {
                        line: j + 1,
                        message: "a loaded series needs labels".into(),
                    });
                }
                series.retain(|x| x.labels != s.labels);
                series.push(s);
            }
            if let Some((at, ..)) = pending_st {
                return Err(ScriptError {
                    line: at,
                    message: "a start-timestamp line at the end of a load block has no sample line"
                        .into(),
                });
            }
            cmds.push(Command::Load {
                step,
                series,
                nhcb: kw == "load_with_nhcb",
                line: lineno,
            });
            i = block_end;
            continue;
        }
        if !word.starts_with("eval") {
            return Err(err(format!("unknown command {word:?}")));
        }
        let (eval, next) = parse_eval(&lines, i, block_end)?;
        cmds.push(Command::Eval(eval));
        i = next;
    }
    Ok(cmds)
}

/// Parses `<start> to <end> step <step>[ <rest>]` (durations), returning the rest trimmed.
fn parse_span(spec: &str) -> Result<(i64, i64, i64, &str), String> {
    let (start, r) = spec.split_once(" to ").ok_or("missing `to`")?;
    let (end, r) = r.split_once(" step ").ok_or("missing `step`")?;
    let r = r.trim();
    let (step, rest) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
    let d = |s: &str| parse_duration(s.trim()).ok_or_else(|| format!("invalid duration {s:?}"));
    Ok((d(start)?, d(end)?, d(step)?, rest.trim()))
}

fn parse_eval(lines: &[String], i: usize, block_end: usize) -> Result<(Eval, usize), ScriptError> {
    let line = &lines[i];
    let lineno = i + 1;
    let err = |message: String| ScriptError {
        line: lineno,
        message,
    };
    let mut words = line.splitn(2, char::is_whitespace);
    let kw = words.next().unwrap_or_default().to_ascii_lowercase();
    let rest = words.next().unwrap_or("").trim();
    let mut expects = Vec::new();
    match kw.as_str() {
        "eval" => {}
        "eval_fail" => expects.push(Expect::Fail(None)),
        "eval_warn" => expects.push(Expect::Warn(None)),
        "eval_info" => expects.push(Expect::Info(None)),
        "eval_ordered" => expects.push(Expect::Ordered),
        other => return Err(err(format!("unknown eval keyword {other:?}"))),
    }
    let (at, expr) = if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, e) = r
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("missing expression".into()))?;
        let t = parse_duration(t).ok_or_else(|| err(format!("invalid time {t:?}")))?;
        (EvalAt::Instant(t), e.trim().to_owned())
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let (start, end, step, e) = parse_span(r).map_err(err)?;
        if e.is_empty() {
            return Err(err("missing expression".into()));
        }
        if end < start {
            return Err(err("end before start".into()));
        }
        (EvalAt::Range { start, end, step }, e.trim().to_owned())
    } else {
        return Err(err(format!("invalid eval header {line:?}")));
    };

    let mut series: Vec<SeriesLine> = Vec::new();
    let mut expected: Option<Expected> = None;
    let mut range_vector: Option<(i64, i64, i64)> = None;
    let mut j = i + 1;
    while j < block_end {
        let l = &lines[j];
        let lno = j + 1;
        let lerr = |message: String| ScriptError { line: lno, message };
        j += 1;
        if let Some(r) = l.strip_prefix("expect ") {
            let r = r.trim();
            if let Some(spec) = r.strip_prefix("range vector from ") {
                let (a, b, c, _) = parse_span(spec).map_err(lerr)?;
                range_vector = Some((a, b, c));
                continue;
            }
            if let Some(s) = r.strip_prefix("string ") {
                let (v, _) =
                    unquote_prefix(s.trim()).ok_or_else(|| lerr(format!("bad string {s:?}")))?;
                expected = Some(Expected::String(v));
                continue;
            }
            let (kind, tail) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            let e = match kind {
                "fail" => Expect::Fail(parse_text_match(tail).map_err(lerr)?),
                "warn" => Expect::Warn(parse_text_match(tail).map_err(lerr)?),
                "info" => Expect::Info(parse_text_match(tail).map_err(lerr)?),
                "no_warn" => Expect::NoWarn,
                "no_info" => Expect::NoInfo,
                "ordered" => Expect::Ordered,
                other => return Err(lerr(format!("unknown expectation {other:?}"))),
            };
            expects.push(e);
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message ") {
            expects.retain(|e| !matches!(e, Expect::Fail(_)));
            expects.push(Expect::Fail(Some(TextMatch::Exact(m.trim().to_owned()))));
            break;
        }
        if let Some(m) = l.strip_prefix("expected_fail_regexp ") {
            expects.retain(|e| !matches!(e, Expect::Fail(_)));
            expects.push(Expect::Fail(Some(TextMatch::Regex(m.trim().to_owned()))));
            break;
        }
        if let Some(v) = parse_scalar_line(l) {
            expected = Some(Expected::Scalar(v));
            break;
        }
        let s = parse_series_line(l, lno)?;
        series.retain(|x| x.labels != s.labels);
        series.push(s);
    }
    let expected = match (expected, range_vector) {
        (Some(e), _) => e,
        (None, Some((start, end, step))) => Expected::RangeVector {
            start,
            end,
            step,
            series,
        },
        (None, None) => Expected::Series(series),
    };
    Ok((
        Eval {
            line: lineno,
            at,
            expr,
            expects,
            expected,
        },
        j,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: &str) -> Vec<Point> {
        let mut out = Vec::new();
        for item in s.split_whitespace() {
            expand_item(item, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn histogram_series_expand_as_prometheus_loads_them() {
        let line = parse_series_line(
            "h {{sum:3 count:2 buckets:[2]}}+{{sum:1.3 count:1 buckets:[1]}}x2 {{schema:1 sum:-0.3 count:32.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3 n_buckets:[4.1 5] n_offset:-5 counter_reset_hint:gauge}}",
            1,
        )
        .unwrap();
        let hs: Vec<&Histogram> = line
            .points
            .iter()
            .map(|p| match p {
                Point::Histogram(h, _) => &**h,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[2].count, 4.0);
        assert!((hs[2].sum - 5.6).abs() < 1e-9, "{}", hs[2].sum);
        assert_eq!(hs[2].positive_buckets, [4.0]);
        // Hints stay as written: the loader gives them as the TSDB reads them back.
        assert_eq!(
            (hs[0].reset_hint, hs[1].reset_hint),
            (ResetHint::Unknown, ResetHint::Unknown)
        );
        let h = hs[3];
        assert_eq!((h.schema, h.zero_count, h.zero_threshold), (1, 7.1, 0.05));
        assert_eq!(
            h.positive_spans,
            [Span {
                offset: -3,
                length: 3
            }]
        );
        assert_eq!(h.negative_buckets, [4.1, 5.0]);
        assert_eq!(h.reset_hint, ResetHint::Gauge);
        assert!(parse_histogram("{{sum:1 nope:2}}").is_err());
    }

    #[test]
    fn value_sequences() {
        use Point::*;
        assert_eq!(values("1x3"), vec![Value(1.0); 4]);
        assert_eq!(
            values("-2+4x3"),
            vec![Value(-2.0), Value(2.0), Value(6.0), Value(10.0)]
        );
        assert_eq!(values("1-2x2"), vec![Value(1.0), Value(-1.0), Value(-3.0)]);
        assert_eq!(values("_x3 5"), vec![Empty, Empty, Empty, Value(5.0)]);
        assert_eq!(
            values("1e3 .5 Inf -inf"),
            vec![
                Value(1000.0),
                Value(0.5),
                Value(f64::INFINITY),
                Value(f64::NEG_INFINITY)
            ]
        );
        assert_eq!(values("1e-3+1e-3x1"), vec![Value(0.001), Value(0.002)]);
        let stale = values("stale");
        assert!(matches!(stale[0], Value(v) if v.to_bits() == STALE_NAN.to_bits()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("59s999ms"), Some(59_999));
        assert_eq!(parse_duration("100d"), Some(8_640_000_000));
        assert_eq!(parse_duration("30s1m"), None);
        assert_eq!(parse_duration("-1m"), None);
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_scalar_line("0x1F"), Some(31.0));
        assert_eq!(parse_scalar_line("1_000"), Some(1000.0));
        assert_eq!(parse_scalar_line("-0.2e-6"), Some(-0.2e-6));
        assert_eq!(parse_scalar_line("foo"), None);
        assert_eq!(parse_scalar_line("{} 1"), None);
    }

    #[test]
    fn scripts() {
        let script = "load 1m\n  foo{a=\"1\"} 1 2 3\n  bar 0+1x2\n\n# comment\neval instant at 1m foo\n  foo{a=\"1\"} 2\n\neval range from 0 to 2m step 1m sum(foo)\n  {} 1 2 3\n\neval instant at 0 scalar(foo)\n  NaN\n\neval instant at 0 nope(\n  expect fail msg: something\n\nclear\n";
        let cmds = parse_script(script).unwrap();
        assert_eq!(cmds.len(), 6);
        let Command::Load { step, series, .. } = &cmds[0] else {
            panic!()
        };
        assert_eq!((*step, series.len()), (60_000, 2));
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!((e.at, e.expr.as_str()), (EvalAt::Instant(60_000), "foo"));
        let Command::Eval(e) = &cmds[3] else { panic!() };
        assert!(matches!(e.expected, Expected::Scalar(v) if v.is_nan()));
        let Command::Eval(e) = &cmds[4] else { panic!() };
        assert_eq!(
            e.expects,
            vec![Expect::Fail(Some(TextMatch::Exact("something".into())))]
        );
        assert_eq!(cmds[5], Command::Clear);
    }
}
