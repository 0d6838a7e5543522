//! Text pre-rewrites that let promql-parser 0.11 read the Prometheus 3 syntax it lacks.
//!
//! promql-parser rejects a few forms that Prometheus 3 accepts (see
//! `NOTES-promql-parser.md`, §3–§4). Instead of forking the parser we rewrite the query text
//! into an equivalent that it does accept, and let the engine interpret what the rewrite
//! left behind. [`rewrite`] runs once per query, when its step and range are known:
//!
//! 1. **Duration expressions** inside `[...]` (each side of a top-level `:`) and after
//!    `offset` — `[26m+4m]`, `[step()*2:range()/10]`, `offset -min_of(step(), 1s)` — are
//!    evaluated and replaced by a millisecond literal (`1800000ms`, `-1000ms`, or `0`).
//!    They may use numbers, durations, `+ - * / % ^`, parentheses, unary signs, and the
//!    case-insensitive `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)`. As in
//!    Prometheus, only a *primary* (signs, then a literal, a call or a parenthesis) belongs
//!    to an offset: `x offset step()*2` is `(x offset step()) * 2`. Plain literals stay as
//!    written, except a zero with a unit after `offset` (`0s`), which promql-parser
//!    rejects and Prometheus accepts; it becomes `0`.
//! 2. **`anchored` / `smoothed`** after a selector (possibly after its `[range]`, `offset`
//!    and `@` modifiers) are deleted, and the sentinel matcher `__augur_ext__="anchored"`
//!    (or `"smoothed"`) is added to the selector's braces (`{...}` is created after a bare
//!    metric name). The engine removes the sentinel before storage sees the matchers and
//!    uses it as the selector's mode.
//! 3. **`info(x, {...})`**: the sentinel `__augur_ext__="info"` is added to the braces of the
//!    second argument. Prometheus exempts that selector from the "at least one non-empty
//!    matcher" rule, promql-parser does not; the sentinel is a non-empty matcher.
//! 4. **Implicit subqueries**: a range on anything that is not a selector (the token before
//!    `[` is the `)` of a parenthesis, call or aggregation, but not of `@ start()` /
//!    `@ end()`) becomes a subquery: `sum(x)[1h]` → `sum(x)[1h:]`, or `sum(x)[1h:<step>ms]`
//!    when the caller gives a step (a range query's step, a rule group's interval).
//!    A selector such as `x[5m]` is left alone.
//!
//! All four work on one token stream of the original text, so strings (`"…"`, `'…'` with
//! escapes, and raw `` `…` ``) and `#` comments are never touched, and every edit is
//! located in the original query. Errors are Prometheus's messages without a position
//! (promql-parser gives none either); the caller adds the `parse error: ` prefix.

use crate::duration::parse_duration;

/// The label name of the sentinel matcher the rewrites add; the engine strips it before
/// storage.
pub const EXT_LABEL: &str = "__augur_ext__";

/// Query text after the pre-rewrites, ready for `promql_parser::parser::parse`.
///
/// `step_ms` and `range_ms` are the query's step and `end - start` (both 0 for an instant
/// query); they are the values of `step()` and `range()` in duration expressions. Implicit
/// subqueries get the query's step (none for an instant query: the engine's default).
pub fn rewrite(query: &str, step_ms: i64, range_ms: i64) -> Result<String, String> {
    rewrite_with(query, step_ms, range_ms, (step_ms > 0).then_some(step_ms))
}

/// [`rewrite`], with the step implicit subqueries get: `Some(ms)` writes it into the
/// subquery (`x[1h]` → `x[1h:60000ms]`), `None` leaves the subquery without one (`x[1h:]`).
/// Rules pass their group's interval.
pub fn rewrite_with(
    query: &str,
    step_ms: i64,
    range_ms: i64,
    implicit_step_ms: Option<i64>,
) -> Result<String, String> {
    let mut rw = Rewriter {
        implicit_step_ms: implicit_step_ms.filter(|&s| s > 0),
        q: query,
        t: lex(query),
        edits: Vec::new(),
        sentinels: Vec::new(),
        offset_start: Vec::new(),
        step_s: step_ms as f64 / 1000.0,
        range_s: range_ms as f64 / 1000.0,
    };
    rw.offset_start = vec![None; rw.t.len()];
    rw.duration_exprs()?;
    rw.range_modifiers()?;
    rw.info_selectors();
    rw.implicit_subqueries();
    rw.apply()
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Identifier or keyword (`rate`, `offset`, `job:rate5m`, `__name__`).
    Ident,
    /// Number or duration literal (`5`, `1.5e3`, `0x1F`, `1h30m`).
    Number,
    /// A quoted string, quotes included.
    Str,
    /// One of `( ) [ ] { } , : @ + - * / % ^`.
    Punct(u8),
    /// Anything else (comparison and matcher operators, stray characters).
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// Strictly inside `{...}` (label matchers), where no rewrite applies.
    pub in_braces: bool,
}

/// Splits `q` into tokens, dropping whitespace and `#` comments. It never fails: whatever
/// it does not understand becomes [`Kind::Other`] and is left for the parser to reject.
pub(crate) fn lex(q: &str) -> Vec<Tok> {
    let b = q.as_bytes();
    let mut toks = Vec::new();
    let (mut i, mut braces, mut brackets) = (0usize, 0usize, 0usize);
    // Inside brackets `:` separates range and step; elsewhere it is part of metric names.
    let ident_byte = |c: u8, brackets: usize| {
        c.is_ascii_alphanumeric() || c == b'_' || (c == b':' && brackets == 0)
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i = string_end(b, i);
                Kind::Str
            }
            b'0'..=b'9' => {
                i = number_end(b, i);
                Kind::Number
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(b, i);
                Kind::Number
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && brackets == 0) => {
                while i < b.len() && ident_byte(b[i], brackets) {
                    i += 1;
                }
                Kind::Ident
            }
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b':' | b'@' | b'+' | b'-' | b'*'
            | b'/' | b'%' | b'^' => {
                i += 1;
                Kind::Punct(c)
            }
            _ => {
                i += q[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Other
            }
        };
        match kind {
            Kind::Punct(b'{') => braces += 1,
            Kind::Punct(b'}') => braces = braces.saturating_sub(1),
            Kind::Punct(b'[') => brackets += 1,
            Kind::Punct(b']') => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        let in_braces = match kind {
            Kind::Punct(b'{') => braces > 1,
            _ => braces > 0,
        };
        toks.push(Tok {
            kind,
            start,
            end: i,
            in_braces,
        });
    }
    toks
}

/// End (exclusive) of the string starting at `b[i]`; the end of input if it is unclosed.
fn string_end(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && quote != b'`' {
            j += 2;
        } else if b[j] == quote {
            return j + 1;
        } else {
            j += 1;
        }
    }
    b.len()
}

/// End (exclusive) of the number or duration literal starting at `b[i]`.
fn number_end(b: &[u8], mut i: usize) -> usize {
    let digit = |c: u8| c.is_ascii_digit() || c == b'_';
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
    } else {
        while i < b.len() && digit(b[i]) {
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while i < b.len() && digit(b[i]) {
                i += 1;
            }
        }
        // A signed exponent; an unsigned one is covered by the loop below.
        if matches!(b.get(i), Some(b'e' | b'E'))
            && matches!(b.get(i + 1), Some(b'+' | b'-'))
            && b.get(i + 2).is_some_and(u8::is_ascii_digit)
        {
            i += 2;
        }
    }
    // Hex digits, exponent digits and duration units (`1h30m`).
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// Keywords that cannot end an operand, so `anchored`/`offset` after them is a metric name.
const OPERATOR_KEYWORDS: [&str; 11] = [
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

// ---------------------------------------------------------------------------------------
// The rewrites
// ---------------------------------------------------------------------------------------

/// Replace `start..end` of the original query by `text`.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

struct Rewriter<'a> {
    /// The step written into implicit subqueries, if any.
    implicit_step_ms: Option<i64>,
    q: &'a str,
    t: Vec<Tok>,
    edits: Vec<Edit>,
    /// Sentinel matchers to add: (token index of the selector's `}` or metric name, value).
    sentinels: Vec<(usize, &'static str)>,
    /// For the last token of each `offset` operand, the index of its `offset` keyword.
    offset_start: Vec<Option<usize>>,
    step_s: f64,
    range_s: f64,
}

impl Rewriter<'_> {
    fn text(&self, i: usize) -> &str {
        &self.q[self.t[i].start..self.t[i].end]
    }

    fn is_punct(&self, i: usize, c: u8) -> bool {
        self.t.get(i).is_some_and(|t| t.kind == Kind::Punct(c))
    }

    fn is_ident(&self, i: usize, name: &str) -> bool {
        self.t.get(i).is_some_and(|t| t.kind == Kind::Ident)
            && self.text(i).eq_ignore_ascii_case(name)
    }

    /// True if token `i` can end an operand, so that a modifier keyword may follow it.
    fn ends_operand(&self, i: usize) -> bool {
        let t = self.t[i];
        match t.kind {
            Kind::Number | Kind::Str => true,
            Kind::Punct(c) => matches!(c, b')' | b']' | b'}'),
            Kind::Ident => !OPERATOR_KEYWORDS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(self.text(i))),
            Kind::Other => false,
        }
    }

    /// True if token `i` is the keyword `kw` used as a modifier (after an operand, outside
    /// braces), not a metric or label name that happens to be spelled the same.
    fn is_modifier(&self, i: usize, kw: &str) -> bool {
        i > 0 && !self.t[i].in_braces && self.is_ident(i, kw) && self.ends_operand(i - 1)
    }

    /// Index of the `]` closing the `[` at `open`.
    fn close_bracket(&self, open: usize) -> Option<usize> {
        (open + 1..self.t.len()).find(|&k| self.is_punct(k, b']'))
    }

    /// Index of the `)` matching the `(` at `open`.
    fn close_paren(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for k in open..self.t.len() {
            match self.t[k].kind {
                Kind::Punct(b'(') => depth += 1,
                Kind::Punct(b')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(k);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// True if the `)` at `i` ends `@ start()` or `@ end()`.
    fn is_at_start_end(&self, i: usize) -> bool {
        i >= 3
            && self.is_punct(i, b')')
            && self.is_punct(i - 1, b'(')
            && (self.is_ident(i - 2, "start") || self.is_ident(i - 2, "end"))
            && self.is_punct(i - 3, b'@')
    }

    /// Index of the `@` of an `@` modifier whose last token is `i`.
    fn at_modifier_start(&self, i: usize) -> Option<usize> {
        if self.is_at_start_end(i) {
            return Some(i - 3);
        }
        if self.t[i].kind != Kind::Number || i == 0 {
            return None;
        }
        let mut k = i - 1;
        if (self.is_punct(k, b'+') || self.is_punct(k, b'-')) && k > 0 {
            k -= 1;
        }
        self.is_punct(k, b'@').then_some(k)
    }

    // -- 1. duration expressions --------------------------------------------------------

    fn duration_exprs(&mut self) -> Result<(), String> {
        for i in 0..self.t.len() {
            if self.t[i].in_braces {
                continue;
            }
            if self.is_punct(i, b'[') {
                let Some(close) = self.close_bracket(i) else {
                    continue;
                };
                let mut depth = 0i32;
                let mut part_start = i + 1;
                for k in i + 1..=close {
                    match self.t[k].kind {
                        Kind::Punct(b'(') => depth += 1,
                        Kind::Punct(b')') => depth -= 1,
                        Kind::Punct(b':') if depth == 0 => {
                            self.bracket_part(part_start, k)?;
                            part_start = k + 1;
                        }
                        Kind::Punct(b']') => self.bracket_part(part_start, k)?,
                        _ => {}
                    }
                }
            } else if self.is_modifier(i, "offset") {
                self.offset_operand(i)?;
            }
        }
        Ok(())
    }

    /// Rewrites the range or step `a..b` (token indices) of a bracket unless it is empty or
    /// a plain literal.
    fn bracket_part(&mut self, a: usize, b: usize) -> Result<(), String> {
        if b == a || (b == a + 1 && self.t[a].kind == Kind::Number) {
            return Ok(());
        }
        let ms = self.eval_duration(a, b, false)?;
        self.edits.push(Edit {
            start: self.t[a].start,
            end: self.t[b - 1].end,
            text: format!("{ms}ms"),
        });
        Ok(())
    }

    /// Finds the operand of the `offset` keyword at `kw` (signs, then a literal, `( … )`, or
    /// `step()`/`range()`/`min_of(…)`/`max_of(…)`), records it, and rewrites it unless it
    /// is a literal promql-parser reads as Prometheus does. Without a recognisable operand
    /// the text is left for the parser to reject.
    fn offset_operand(&mut self, kw: usize) -> Result<(), String> {
        let first = kw + 1;
        let mut k = first;
        while self.is_punct(k, b'+') || self.is_punct(k, b'-') {
            k += 1;
        }
        let signs = k - first;
        let Some(tok) = self.t.get(k) else {
            return Ok(());
        };
        let last = match tok.kind {
            Kind::Number => k,
            Kind::Punct(b'(') => match self.close_paren(k) {
                Some(close) => close,
                None => return Ok(()),
            },
            Kind::Ident
                if ["step", "range", "min_of", "max_of"]
                    .iter()
                    .any(|f| self.text(k).eq_ignore_ascii_case(f))
                    && self.is_punct(k + 1, b'(') =>
            {
                match self.close_paren(k + 1) {
                    Some(close) => close,
                    None => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        self.offset_start[last] = Some(kw);
        let plain = tok.kind == Kind::Number && signs <= 1 && !is_zero_with_unit(self.text(k));
        if plain {
            return Ok(());
        }
        let ms = self.eval_duration(first, last + 1, true)?;
        let text = match ms {
            0 => "0".to_string(),
            _ if ms < 0 => format!("-{}ms", ms.unsigned_abs()),
            _ => format!("{ms}ms"),
        };
        // `offset(1m)` has no space to separate the keyword from the literal.
        let start = self.t[first].start;
        let space = if start == self.t[kw].end { " " } else { "" };
        self.edits.push(Edit {
            start,
            end: self.t[last].end,
            text: format!("{space}{text}"),
        });
        Ok(())
    }

    /// Evaluates the duration expression in tokens `a..b` to whole milliseconds, with
    /// Prometheus's checks: finite, within ±2^63 ns, and positive unless `allow_negative`.
    fn eval_duration(&self, a: usize, b: usize, allow_negative: bool) -> Result<i64, String> {
        let mut ev = DurationEval {
            rw: self,
            pos: a,
            end: b,
        };
        let secs = ev.expr()?;
        if ev.pos < b {
            return Err(ev.unexpected());
        }
        if !secs.is_finite() {
            return Err("duration is NaN or infinite".into());
        }
        if secs <= 0.0 && !allow_negative {
            return Err("duration must be greater than 0".into());
        }
        // The largest duration Prometheus can hold: 2^63 ns.
        if secs.abs() > 9_223_372_036.854_775 {
            return Err("duration is out of range".into());
        }
        // Truncated to the millisecond, as Prometheus does.
        let ms = (secs * 1000.0).trunc() as i64;
        if ms <= 0 && !allow_negative {
            return Err("duration must be greater than 0".into());
        }
        Ok(ms)
    }

    // -- 2. anchored / smoothed ---------------------------------------------------------

    fn range_modifiers(&mut self) -> Result<(), String> {
        for i in 0..self.t.len() {
            let mode = if self.is_modifier(i, "anchored") {
                "anchored"
            } else if self.is_modifier(i, "smoothed") {
                "smoothed"
            } else {
                continue;
            };
            let target = self.modifier_target(i, mode)?;
            let other = if mode == "anchored" {
                "smoothed"
            } else {
                "anchored"
            };
            if self.sentinels.contains(&(target, other)) {
                return Err("anchored and smoothed modifiers cannot be used together".into());
            }
            if !self.sentinels.contains(&(target, mode)) {
                self.sentinels.push((target, mode));
            }
            // Delete the keyword with the blanks before it (not a line break: a comment may
            // end there).
            let b = self.q.as_bytes();
            let mut start = self.t[i].start;
            while start > self.t[i - 1].end && matches!(b[start - 1], b' ' | b'\t') {
                start -= 1;
            }
            self.edits.push(Edit {
                start,
                end: self.t[i].end,
                text: String::new(),
            });
        }
        Ok(())
    }

    /// The selector the modifier keyword at `kw` applies to: the token index of its `}` or
    /// metric name, after walking back over `offset`, `@`, other modifier keywords and the
    /// `[range]`.
    fn modifier_target(&self, kw: usize, mode: &str) -> Result<usize, String> {
        let not_implemented = || format!("{mode} modifier not implemented");
        let mut j = kw - 1;
        loop {
            if self.is_modifier(j, "anchored") || self.is_modifier(j, "smoothed") {
                j -= 1;
            } else if let Some(off) = self.offset_start[j] {
                j = off - 1;
            } else if let Some(at) = self.at_modifier_start(j) {
                j = at.checked_sub(1).ok_or_else(not_implemented)?;
            } else {
                break;
            }
        }
        if self.is_punct(j, b']') && !self.t[j].in_braces {
            let open = (0..j)
                .rev()
                .find(|&k| self.is_punct(k, b'['))
                .ok_or_else(not_implemented)?;
            let subquery = (open..j).any(|k| self.is_punct(k, b':'))
                || (open > 0 && self.is_punct(open - 1, b')'));
            if subquery {
                return Err(format!("{mode} modifier is not supported for subqueries"));
            }
            j = open.checked_sub(1).ok_or_else(not_implemented)?;
        }
        let t = self.t[j];
        let selector_end = match t.kind {
            Kind::Punct(b'}') => !t.in_braces,
            Kind::Ident => self.ends_operand(j) && !t.in_braces,
            _ => false,
        };
        if selector_end {
            Ok(j)
        } else {
            Err(not_implemented())
        }
    }

    // -- 3. info() ----------------------------------------------------------------------

    fn info_selectors(&mut self) {
        for i in 0..self.t.len() {
            if self.t[i].in_braces
                || self.t[i].kind != Kind::Ident
                || self.text(i) != "info"
                || !self.is_punct(i + 1, b'(')
            {
                continue;
            }
            let mut depth = 0usize;
            for k in i + 1..self.t.len() {
                if self.t[k].in_braces {
                    continue;
                }
                match self.t[k].kind {
                    Kind::Punct(b'(') => depth += 1,
                    Kind::Punct(b')') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Kind::Punct(b',') if depth == 1 => {
                        if self.is_punct(k + 1, b'{') {
                            let close = (k + 2..self.t.len()).find(|&e| self.is_punct(e, b'}'));
                            if let Some(close) = close {
                                self.sentinels.push((close, "info"));
                            }
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }

    // -- 4. implicit subqueries ---------------------------------------------------------

    fn implicit_subqueries(&mut self) {
        for i in 1..self.t.len() {
            if !self.is_punct(i, b'[')
                || self.t[i].in_braces
                || !self.is_punct(i - 1, b')')
                || self.is_at_start_end(i - 1)
                || self.offset_start[i - 1].is_some()
            {
                continue;
            }
            let Some(close) = self.close_bracket(i) else {
                continue;
            };
            if (i + 1..close).any(|k| self.is_punct(k, b':')) {
                continue;
            }
            let at = self.t[close].start;
            self.edits.push(Edit {
                start: at,
                end: at,
                text: match self.implicit_step_ms {
                    Some(ms) => format!(":{ms}ms"),
                    None => ":".into(),
                },
            });
        }
    }

    // -- applying the edits -------------------------------------------------------------

    fn apply(mut self) -> Result<String, String> {
        // One insertion per selector, whatever number of sentinels it gets.
        let mut targets: Vec<usize> = self.sentinels.iter().map(|s| s.0).collect();
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            let matchers: Vec<String> = self
                .sentinels
                .iter()
                .filter(|s| s.0 == target)
                .map(|s| format!("{EXT_LABEL}=\"{}\"", s.1))
                .collect();
            let matchers = matchers.join(",");
            let edit = if self.is_punct(target, b'}') {
                let empty = target == 0
                    || self.is_punct(target - 1, b'{')
                    || self.is_punct(target - 1, b',');
                let at = self.t[target].start;
                let sep = if empty { "" } else { "," };
                Edit {
                    start: at,
                    end: at,
                    text: format!("{sep}{matchers}"),
                }
            } else {
                let at = self.t[target].end;
                Edit {
                    start: at,
                    end: at,
                    text: format!("{{{matchers}}}"),
                }
            };
            self.edits.push(edit);
        }
        self.edits.sort_by_key(|e| (e.start, e.end));
        let mut out = String::with_capacity(self.q.len() + 64);
        let mut pos = 0;
        for e in &self.edits {
            if e.start < pos {
                return Err(format!(
                    "internal error: overlapping query rewrites at byte {}",
                    e.start
                ));
            }
            out.push_str(&self.q[pos..e.start]);
            out.push_str(&e.text);
            pos = e.end;
        }
        out.push_str(&self.q[pos..]);
        Ok(out)
    }
}

/// `0s`, `0m`, `0ms`…: a zero duration with a unit (Prometheus accepts it after `offset`,
/// promql-parser does not).
fn is_zero_with_unit(text: &str) -> bool {
    text != "0" && parse_duration(text) == Some(0)
}

// ---------------------------------------------------------------------------------------
// Duration expression evaluation
// ---------------------------------------------------------------------------------------

/// Recursive-descent evaluator over a token range, in seconds. Precedence as in
/// Prometheus's grammar: `^` (right-associative) binds tighter than unary signs, which bind
/// like `* / %`, then `+ -`.
struct DurationEval<'r, 'a> {
    rw: &'r Rewriter<'a>,
    pos: usize,
    end: usize,
}

impl DurationEval<'_, '_> {
    fn peek(&self) -> Option<Kind> {
        (self.pos < self.end).then(|| self.rw.t[self.pos].kind)
    }

    fn unexpected(&self) -> String {
        let what = if self.pos < self.end {
            let text = self.rw.text(self.pos);
            match self.rw.t[self.pos].kind {
                Kind::Ident => format!("identifier {text:?}"),
                Kind::Number => format!("number {text:?}"),
                Kind::Str => format!("string {text}"),
                Kind::Punct(_) | Kind::Other => format!("{text:?}"),
            }
        } else {
            "end of duration expression".to_string()
        };
        format!(
            "unexpected {what} in duration expression, expected number, duration, step(), \
             range(), min_of() or max_of()"
        )
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(Kind::Punct(c)) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.term()?;
        while let Some(Kind::Punct(op @ (b'+' | b'-'))) = self.peek() {
            self.pos += 1;
            let r = self.term()?;
            v = if op == b'+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        while let Some(Kind::Punct(op @ (b'*' | b'/' | b'%'))) = self.peek() {
            self.pos += 1;
            let r = self.unary()?;
            v = match op {
                b'*' => v * r,
                _ if r == 0.0 => {
                    return Err(if op == b'/' {
                        "division by zero".into()
                    } else {
                        "modulo by zero".into()
                    })
                }
                b'/' => v / r,
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(Kind::Punct(b'+')) => {
                self.pos += 1;
                self.unary()
            }
            Some(Kind::Punct(b'-')) => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.primary()?;
        if self.peek() == Some(Kind::Punct(b'^')) {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(Kind::Number) => {
                let v = literal_seconds(self.rw.text(self.pos))?;
                self.pos += 1;
                Ok(v)
            }
            Some(Kind::Punct(b'(')) => {
                self.pos += 1;
                let v = self.expr()?;
                self.expect(b')')?;
                Ok(v)
            }
            Some(Kind::Ident) => {
                let name = self.rw.text(self.pos).to_ascii_lowercase();
                let value = match name.as_str() {
                    "step" => Some(self.rw.step_s),
                    "range" => Some(self.rw.range_s),
                    "min_of" | "max_of" => None,
                    _ => return Err(self.unexpected()),
                };
                self.pos += 1;
                self.expect(b'(')?;
                if let Some(v) = value {
                    self.expect(b')')?;
                    return Ok(v);
                }
                let a = self.expr()?;
                self.expect(b',')?;
                let b = self.expr()?;
                self.expect(b')')?;
                Ok(if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if name == "min_of" {
                    a.min(b)
                } else {
                    a.max(b)
                })
            }
            _ => Err(self.unexpected()),
        }
    }
}

/// The value in seconds of a number (`90`, `1.5`, `0x1F`, `1e3`) or duration (`1h30m`)
/// literal, as Prometheus reads it (integers in Go syntax first, then floats).
fn literal_seconds(text: &str) -> Result<f64, String> {
    let bad = || format!("bad number or duration syntax: {text:?}");
    if text.bytes().any(|c| c.is_ascii_alphabetic())
        && !text.starts_with("0x")
        && !text.starts_with("0X")
    {
        if let Some(ms) = parse_duration(text) {
            return Ok(ms as f64 / 1000.0);
        }
    }
    let digits = text.replace('_', "");
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    match int {
        Some(n) => Ok(n as f64),
        None => digits.parse::<f64>().map_err(|_| bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    /// Rewrites `query` as a range query with `step_ms`/`range_ms` (0, 0: instant), checks
    /// the result and that promql-parser accepts it.
    #[track_caller]
    fn check(query: &str, step_ms: i64, range_ms: i64, want: &str) {
        let got = rewrite(query, step_ms, range_ms).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(got, want, "rewrite of {query}");
        if let Err(e) = promql_parser::parser::parse(&got) {
            panic!("{got} (from {query}) does not parse: {e}");
        }
    }

    #[track_caller]
    fn unchanged(query: &str) {
        check(query, 0, 0, query);
    }

    #[track_caller]
    fn fails(query: &str, step_ms: i64, range_ms: i64, want: &str) {
        match rewrite(query, step_ms, range_ms) {
            Ok(got) => panic!("{query} rewrote to {got}, want error {want:?}"),
            Err(e) => assert_eq!(e, want, "error for {query}"),
        }
    }

    #[test]
    fn duration_expressions_in_brackets() {
        let c = |q: &str, want: &str| check(q, 0, 0, want);
        c("changes(x[26m+4m])", "changes(x[1800000ms])");
        c("changes(x[30m+0s])", "changes(x[1800000ms])");
        c("changes(x[60*30])", "changes(x[1800000ms])");
        c("changes(x[2m*(10+5)])", "changes(x[1800000ms])");
        c("changes(x[24m+((1.5*2m)+2m)])", "changes(x[1740000ms])");
        c("changes(x[-5m+35m])", "changes(x[1800000ms])");
        c("changes(x[1h/2])", "changes(x[1800000ms])");
        c("changes(x[1h30m % 1h])", "changes(x[1800000ms])");
        c("changes(x[30m1s-30m1s % 1m])", "changes(x[1800000ms])");
        c("changes(x[(9m30s+30s)*3])", "changes(x[1800000ms])");
        c("changes(x[ 2 ^ 3 ^ 2 ])", "changes(x[ 512000ms ])");
        c("changes(x[0x10 * 0_10])", "changes(x[128000ms])");
        c("changes(x[1e1+.5])", "changes(x[10500ms])");
        c("changes(x[1.0005])", "changes(x[1.0005])");
        c("changes(x[(2s)])", "changes(x[2000ms])");
        // Truncated to the millisecond, as Prometheus does.
        c("changes(x[1s/3])", "changes(x[333ms])");
        c(
            "sum_over_time(x[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms])",
            "sum_over_time(x[30000ms:10000ms])",
        );
        c(
            "sum_over_time(x[29s+1s:5s])",
            "sum_over_time(x[30000ms:5s])",
        );
        c(
            "sum_over_time(x[30s:2*5s])",
            "sum_over_time(x[30s:10000ms])",
        );
        c("sum_over_time(x[2*30s:])", "sum_over_time(x[60000ms:])");
    }

    #[test]
    fn step_range_min_of_max_of() {
        let step = 5 * S;
        let range = 10 * S;
        let c = |q: &str, want: &str| check(q, step, range, want);
        c("count_over_time(x[step()])", "count_over_time(x[5000ms])");
        c(
            "count_over_time(x[step()+1ms])",
            "count_over_time(x[5001ms])",
        );
        c(
            "count_over_time(x[1+(STep()-5)*2])",
            "count_over_time(x[1000ms])",
        );
        c(
            "count_over_time(x[min_of(step()+1,1h)])",
            "count_over_time(x[6000ms])",
        );
        c(
            "count_over_time(x[((max_of(min_of((step()+1),((1h))),1ms)))])",
            "count_over_time(x[6000ms])",
        );
        c(
            "count_over_time(x[MAX_OF(step(), RANGE())])",
            "count_over_time(x[10000ms])",
        );
        c("count_over_time(x[range()])", "count_over_time(x[10000ms])");
        c(
            "avg_over_time(x[range():step()])",
            "avg_over_time(x[10000ms:5000ms])",
        );
    }

    #[test]
    fn duration_expressions_after_offset() {
        let c = |q: &str, want: &str| check(q, 5 * S, 10 * S, want);
        c("x offset (100 + 2)", "x offset 102000ms");
        c("x offset(2 ^ 2)", "x offset 4000ms");
        c("x offset (-2 * 2)", "x offset -4000ms");
        c("x offset STEP()", "x offset 5000ms");
        c("x offset step()*0", "x offset 5000ms*0");
        c("x offset (-step()*2)", "x offset -10000ms");
        c("x offset -step()*2", "x offset -5000ms*2");
        c("x offset step()^0", "x offset 5000ms^0");
        c("x offset (STEP()/10)", "x offset 500ms");
        c("x offset min_of(step(), 1s)+8000", "x offset 1000ms+8000");
        c("x offset -min_of(step(), 1s)+8000", "x offset -1000ms+8000");
        c("x offset +min_of(step(), 1s)^0", "x offset 1000ms^0");
        c(
            "x offset -(min_of(step(), 2s)-5)+8000",
            "x offset 3000ms+8000",
        );
        c(
            "x offset max_of(3s,min_of(step(), 1s))+8000",
            "x offset 3000ms+8000",
        );
        c("x offset min_of(range(), 8s)", "x offset 8000ms");
        c(
            "sum_over_time(x[29s+1s:20*500ms] offset -(20*(((((8 - 2) / 3) * 7s) % 4) + 8000ms)))",
            "sum_over_time(x[30000ms:10000ms] offset -200000ms)",
        );
        c("rate(x[5m] offset (1m))", "rate(x[5m] offset 60000ms)");
        c("sum(x)[5m:1m] offset (1m)", "sum(x)[5m:1m] offset 60000ms");
        c("x offset (0)", "x offset 0");
        c("x offset 0s", "x offset 0");
        c("x offset -0ms", "x offset 0");
        c("x offset +(5m)", "x offset 300000ms");
        c("x offset --5m", "x offset 300000ms");
        check("x offset range()", 0, 0, "x offset 0");
        check("x offset -range()", 0, 0, "x offset 0");
    }

    #[test]
    fn plain_literals_untouched() {
        unchanged("rate(x[5m])");
        unchanged("rate(x[1m30s])");
        unchanged("changes(x[1800])");
        unchanged("avg_over_time(x[30:10])");
        unchanged("max_over_time(rate(x[5m])[1h:5m])");
        unchanged("x offset 5m");
        unchanged("x offset -100");
        unchanged("x offset +5m");
        unchanged("x offset - 5m");
        unchanged("x offset 0");
        unchanged("x offset 100 + 2");
        unchanged("x offset -2 ^ 2");
        unchanged("x @ 100s offset 1m");
        unchanged("x @ start() offset -1m");
        unchanged("predict_linear(x[50m], 1h)");
        unchanged("step() + range() * min_of(1, 2)");
        // `offset` as a label or metric name is not the keyword.
        unchanged("sum by (offset) (x)");
        unchanged("sum(x) by (a, offset)");
        unchanged("x{offset=\"(1+1)\"}");
        unchanged("x + on(offset) y");
        unchanged("offset + offset");
    }

    #[test]
    fn duration_errors() {
        fails("x[step()]", 0, 0, "duration must be greater than 0");
        fails("x[1m-2m]", 0, 0, "duration must be greater than 0");
        fails("x[-5m]", 0, 0, "duration must be greater than 0");
        fails("x[5m:-step()]", 5 * S, 0, "duration must be greater than 0");
        fails("x[1s/3000]", 0, 0, "duration must be greater than 0");
        fails("x[5m/0]", 0, 0, "division by zero");
        fails("x[5m/(1-1)]", 0, 0, "division by zero");
        fails("x[5m%0s]", 0, 0, "modulo by zero");
        fails("x[(0-1)^0.5]", 0, 0, "duration is NaN or infinite");
        fails("x offset (10^400)", 0, 0, "duration is NaN or infinite");
        fails("x[1e10*1e10]", 0, 0, "duration is out of range");
        fails("x offset -(1e10*1e10)", 0, 0, "duration is out of range");
        let want = "unexpected identifier \"foo\" in duration expression, expected number, \
                    duration, step(), range(), min_of() or max_of()";
        fails("x[foo(1)+1]", 0, 0, want);
        fails("x offset (foo)", 0, 0, want);
        let want = "unexpected end of duration expression in duration expression, expected \
                    number, duration, step(), range(), min_of() or max_of()";
        fails("x[1m+]", 0, 0, want);
        fails(
            "x[min_of(1m)]",
            0,
            0,
            &want.replace("end of duration expression", "\")\""),
        );
        fails(
            "x[1.5h+1m]",
            0,
            0,
            "bad number or duration syntax: \"1.5h\"",
        );
        // Not a duration operand: left for the parser to reject.
        assert_eq!(rewrite("x offset foo", 0, 0).unwrap(), "x offset foo");
    }

    #[test]
    fn anchored_and_smoothed() {
        let c = |q: &str, want: &str| check(q, 0, 0, want);
        c(
            "increase(metric[1m] anchored)",
            "increase(metric{__augur_ext__=\"anchored\"}[1m])",
        );
        c(
            "metric offset -100 smoothed + 0",
            "metric{__augur_ext__=\"smoothed\"} offset -100 + 0",
        );
        c(
            "rate(foo{a=\"b\"}[5m] smoothed)",
            "rate(foo{a=\"b\",__augur_ext__=\"smoothed\"}[5m])",
        );
        c(
            "metric @ 100 smoothed",
            "metric{__augur_ext__=\"smoothed\"} @ 100",
        );
        c("metric smoothed", "metric{__augur_ext__=\"smoothed\"}");
        c(
            "histogram_count(hist_counter smoothed)",
            "histogram_count(hist_counter{__augur_ext__=\"smoothed\"})",
        );
        c(
            "predict_linear(foo[3m] anchored, 4)",
            "predict_linear(foo{__augur_ext__=\"anchored\"}[3m], 4)",
        );
        c(
            "increase(anchored_reset_at_end[70s] ANCHORED)",
            "increase(anchored_reset_at_end{__augur_ext__=\"anchored\"}[70s])",
        );
        c(
            "rate(x{a=\"b\",}[5m] offset 1m @ 100 anchored)",
            "rate(x{a=\"b\",__augur_ext__=\"anchored\"}[5m] offset 1m @ 100)",
        );
        c(
            "rate({__name__=\"x\"}[5m] anchored offset 1m)",
            "rate({__name__=\"x\",__augur_ext__=\"anchored\"}[5m] offset 1m)",
        );
        c(
            "rate(x[5m] @ end() offset -(1m) smoothed)",
            "rate(x{__augur_ext__=\"smoothed\"}[5m] @ end() offset -60000ms)",
        );
        c("x @ -5 anchored", "x{__augur_ext__=\"anchored\"} @ -5");
        c("x anchored anchored", "x{__augur_ext__=\"anchored\"}");
        // A line break before the keyword is kept: a comment may end there.
        c(
            "rate(x[5m] # the window\n  anchored)",
            "rate(x{__augur_ext__=\"anchored\"}[5m] # the window\n)",
        );
    }

    #[test]
    fn anchored_smoothed_step() {
        check(
            "rate(x[step()*2] smoothed)",
            S,
            0,
            "rate(x{__augur_ext__=\"smoothed\"}[2000ms])",
        );
    }

    #[test]
    fn anchored_and_smoothed_errors() {
        let sub = "anchored modifier is not supported for subqueries";
        fails("max_over_time(x[5m:1m] anchored)", 0, 0, sub);
        fails("max_over_time(sum(x)[5m] anchored)", 0, 0, sub);
        let ni = "smoothed modifier not implemented";
        fails("rate(x[5m]) smoothed", 0, 0, ni);
        fails("(x) smoothed", 0, 0, ni);
        fails("1 smoothed", 0, 0, ni);
        fails("\"a\" smoothed", 0, 0, ni);
        fails(
            "x anchored smoothed",
            0,
            0,
            "anchored and smoothed modifiers cannot be used together",
        );
        fails(
            "rate(x[5m] smoothed offset 1m anchored)",
            0,
            0,
            "anchored and smoothed modifiers cannot be used together",
        );
    }

    #[test]
    fn anchored_and_smoothed_as_names_untouched() {
        // promql-parser does not accept these names (they are its keywords), so only the
        // text is checked.
        for q in [
            "sum by (anchored) (x)",
            "x{anchored=\"1\"}",
            "x and smoothed",
            "x + on(smoothed) y",
            "anchored",
            "rate(smoothed[5m])",
        ] {
            assert_eq!(rewrite(q, 0, 0).unwrap(), q);
        }
    }

    #[test]
    fn info_second_argument() {
        let c = |q: &str, want: &str| check(q, 0, 0, want);
        c(
            "info(metric, {data=~\".*\"})",
            "info(metric, {data=~\".*\",__augur_ext__=\"info\"})",
        );
        c(
            "info(metric, {__name__!=\"target_info\"})",
            "info(metric, {__name__!=\"target_info\",__augur_ext__=\"info\"})",
        );
        c(
            "info(x{a=\"1\",b=\"2\"}, {c=~\".*\", })",
            "info(x{a=\"1\",b=\"2\"}, {c=~\".*\", __augur_ext__=\"info\"})",
        );
        c(
            "info(rate(x[5m]), {})",
            "info(rate(x[5m]), {__augur_ext__=\"info\"})",
        );
        c(
            "sum(info(last_over_time(x[10m:1m] @ 180), {k=~\".+\"}))",
            "sum(info(last_over_time(x[10m:1m] @ 180), {k=~\".+\",__augur_ext__=\"info\"}))",
        );
        unchanged("info(metric)");
        unchanged("info(metric offset 1m)");
        unchanged("info(label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\"))");
    }

    #[test]
    fn implicit_subqueries() {
        let c = |q: &str, want: &str| check(q, 0, 0, want);
        c(
            "predict_linear(sum(rate(x[5m])) by (svc)[1h], 3600)",
            "predict_linear(sum(rate(x[5m])) by (svc)[1h:], 3600)",
        );
        c(
            "max_over_time(sum by (svc) (rate(x[5m]))[1h])",
            "max_over_time(sum by (svc) (rate(x[5m]))[1h:])",
        );
        c("min_over_time(sum(x)[1h])", "min_over_time(sum(x)[1h:])");
        c(
            "max_over_time(sum by (a) (x)[30m] offset 5m)",
            "max_over_time(sum by (a) (x)[30m:] offset 5m)",
        );
        c(
            "quantile_over_time(0.9, (a + b)[1h])",
            "quantile_over_time(0.9, (a + b)[1h:])",
        );
        c(
            "last_over_time(vector(1)[ 1h ])",
            "last_over_time(vector(1)[ 1h :])",
        );
        unchanged("rate(x[5m])");
        unchanged("rate(x{a=\")[5m]\"}[5m])");
        unchanged("max_over_time(rate(x[5m])[1h:])");
        unchanged("max_over_time(rate(x[5m])[1h:1m])");
        // `@ end()[1h]` is not an implicit subquery (Prometheus rejects it).
        assert_eq!(rewrite("x @ end()[1h]", 0, 0).unwrap(), "x @ end()[1h]");
        assert_eq!(rewrite("x @ START()[1h]", 0, 0).unwrap(), "x @ START()[1h]");
        // Nor is a range after an offset (Prometheus: "no offset modifiers allowed before
        // range").
        assert_eq!(
            rewrite("x offset (1m)[5m]", 0, 0).unwrap(),
            "x offset 60000ms[5m]"
        );
    }

    #[test]
    fn implicit_subquery_with_step() {
        // A range query's implicit subqueries get its step.
        check(
            "avg_over_time(rate(x[5m])[step()*10])",
            6 * S,
            0,
            "avg_over_time(rate(x[5m])[60000ms:6000ms])",
        );
        // A rule passes its group's interval.
        let got = rewrite_with("max_over_time(sum(x)[1h])", 0, 0, Some(30_000)).unwrap();
        assert_eq!(got, "max_over_time(sum(x)[1h:30000ms])");
        // Explicit subqueries keep what they say.
        let got = rewrite_with("max_over_time(sum(x)[1h:])", 0, 0, Some(30_000)).unwrap();
        assert_eq!(got, "max_over_time(sum(x)[1h:])");
    }

    #[test]
    fn strings_and_comments_untouched() {
        unchanged("x{a=\"[1m+1m] offset step() anchored )[5m]\"}");
        unchanged("x{a='[1m+1m] offset (1) smoothed'}");
        unchanged("x{a=`\"[1m+1m]' offset (1) smoothed`}");
        unchanged("x{a=\"\\\"[1m+1m]\\\" offset (1)\"}");
        unchanged("x{a='\\'[1m+1m]\\' offset (1)'}");
        unchanged("label_replace(x, \"dst\", \"$1 offset (1)\", \"src\", \"(.*)[5m]\")");
        unchanged("x{a=\"é[1m+1m]\", b=\"日本\"}");
        unchanged("x # offset step() anchored sum(x)[5m] info(x, {a=\"\"})");
        unchanged("sum(x) # )[5m]\n + 1");
        check(
            "rate(x[1m+1m] # [1m+1m] anchored\n) # offset (1)",
            0,
            0,
            "rate(x[120000ms] # [1m+1m] anchored\n) # offset (1)",
        );
        check(
            "x{a=\"offset (1)\"} offset (1) anchored # smoothed",
            0,
            0,
            "x{a=\"offset (1)\",__augur_ext__=\"anchored\"} offset 1000ms # smoothed",
        );
    }

    #[test]
    fn everything_at_once() {
        check(
            "max_over_time(sum by (job) (rate(x{a=\"[1m]\"}[step()+1m] offset (1m) smoothed))\
             [range()]) + info(y, {k=~\".*\"})",
            10 * S,
            3600 * S,
            "max_over_time(sum by (job) (rate(x{a=\"[1m]\",__augur_ext__=\"smoothed\"}[70000ms] \
             offset 60000ms))[3600000ms:10000ms]) + info(y, {k=~\".*\",__augur_ext__=\"info\"})",
        );
    }

    /// Arbitrary fragment soup must never panic, and rewriting must be deterministic.
    #[test]
    fn never_panics() {
        const PARTS: [&str; 32] = [
            "x",
            "[",
            "]",
            "(",
            ")",
            "{",
            "}",
            " anchored",
            " smoothed",
            " offset ",
            "@",
            "start()",
            ":",
            "1m",
            "+",
            "-",
            "\"",
            "'",
            "`",
            "\\",
            "#",
            "\n",
            "info",
            ",",
            "é",
            "step()",
            "min_of(",
            "0s",
            "a=\"b\"",
            " ",
            "^",
            "0x",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut q = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 12) {
                q.push_str(PARTS[((seed >> (4 * k)) % 32) as usize]);
            }
            let first = rewrite(&q, 1000, 60_000);
            assert_eq!(first, rewrite(&q, 1000, 60_000), "{q}");
        }
    }

    #[test]
    fn literals() {
        assert_eq!(literal_seconds("90"), Ok(90.0));
        assert_eq!(literal_seconds("1h30m"), Ok(5400.0));
        assert_eq!(literal_seconds("250ms"), Ok(0.25));
        assert_eq!(literal_seconds("0x1F"), Ok(31.0));
        assert_eq!(literal_seconds("017"), Ok(15.0));
        assert_eq!(literal_seconds("09"), Ok(9.0));
        assert_eq!(literal_seconds("1_000"), Ok(1000.0));
        assert_eq!(literal_seconds("1.5e-3"), Ok(0.0015));
        assert!(literal_seconds("5x").is_err());
        assert!(is_zero_with_unit("0s") && is_zero_with_unit("0ms") && !is_zero_with_unit("0"));
    }
}
