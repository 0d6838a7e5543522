//! Label matchers with Prometheus semantics.
//!
//! - `=`, `!=`, `=~`, `!~`; regular expressions are fully anchored and `.` matches newlines
//!   (Prometheus compiles `^(?s:<re>)$`).
//! - A series lacking a label is treated as having it with the empty value, so a matcher that
//!   matches `""` also selects series without the label (`{foo=""}`, `{foo=~"a|"}`).
//!
//! - Patterns mean what they mean to Go's RE2, which Prometheus uses: [`go_regex`] turns a `{`
//!   that opens no valid repetition (`a{2,`, `{x}`, `a{,3}`) into a literal brace, as RE2
//!   reads it, where Rust's `regex` would reject the pattern.
//!
//! For the inverted index, [`Matcher::value_hint`] tells which label values can possibly satisfy
//! the matcher's *inner* predicate without testing every value: an exact list (for `=` and plain
//! alternations such as `a|b|c`) or a literal prefix (for `api-.*`).

use std::borrow::Cow;
use std::fmt;

use regex::Regex;

use crate::error::StorageError;

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        })
    }
}

/// `pattern` as Rust's `regex` must see it to match what Go's RE2 matches: RE2 reads a `{`
/// that does not open a repetition of the form `{n}`, `{n,}` or `{n,m}` as a literal brace,
/// and Rust's `regex` rejects the pattern. Such braces (outside character classes, not
/// escaped) are escaped; everything else is unchanged. Borrowed when nothing changes.
pub fn go_regex(pattern: &str) -> Cow<'_, str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut changed = false;
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        match c {
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            }
            '[' if !in_class => {
                in_class = true;
                // A `]` first in a class (after an optional `^`) is a literal.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // A POSIX class such as `[:alpha:]` inside a class: copy it whole.
                if let Some(end) = chars[i + 1..].windows(2).position(|w| w == [':', ']']) {
                    out.extend(&chars[i + 1..i + 3 + end]);
                    i += end + 2;
                }
            }
            ']' if in_class => in_class = false,
            '{' if !in_class && !opens_repetition(&chars[i + 1..]) => {
                out.pop();
                out.push_str("\\{");
                changed = true;
            }
            _ => {}
        }
        i += 1;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(pattern)
    }
}

/// A Prometheus regex as Prometheus compiles it for matchers, `label_replace` and relabelling:
/// fully anchored, `.` matching newlines (`^(?s:<re>)$`), with RE2's braces ([`go_regex`]).
pub fn anchored_go_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{})$", go_regex(pattern)))
}

/// Whether `rest` (what follows a `{`) is `n}`, `n,}` or `n,m}` with decimal `n` and `m`.
fn opens_repetition(rest: &[char]) -> bool {
    let digits = |s: &[char]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    match rest.get(n) {
        Some('}') => true,
        Some(',') => {
            let m = digits(&rest[n + 1..]);
            rest.get(n + 1 + m) == Some(&'}')
        }
        _ => false,
    }
}

/// Which label values may satisfy a matcher's inner predicate (equality or the regex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueHint {
    /// Only these values (sorted, deduplicated).
    Exact(Vec<String>),
    /// Only values starting with this prefix (then the predicate is tested on each).
    Prefix(String),
    /// Any value: every value of the label must be tested.
    Any,
}

/// One label matcher. Construct with [`Matcher::new`], which compiles regexes.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; fails if a regex operator's value does not compile.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, StorageError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(
                anchored_go_regex(&value).map_err(|e| StorageError::InvalidMatcher {
                    name: name.clone(),
                    regex: value.clone(),
                    message: e.to_string(),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Shorthand for an `=` matcher (never fails).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// The inner predicate: equality for `=`/`!=`, the regex for `=~`/`!~`.
    fn inner(&self, v: &str) -> bool {
        match &self.regex {
            Some(re) => re.is_match(v),
            None => v == self.value,
        }
    }

    /// Whether the operator negates the inner predicate.
    pub fn is_negative(&self) -> bool {
        matches!(self.op, MatchOp::NotEqual | MatchOp::RegexNoMatch)
    }

    /// Whether a label value (`""` for an absent label) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        self.inner(v) != self.is_negative()
    }

    /// Whether the inner predicate (ignoring negation) holds for `v`.
    pub fn inner_matches(&self, v: &str) -> bool {
        self.inner(v)
    }

    /// Which values can satisfy the inner predicate, for index lookups.
    pub fn value_hint(&self) -> ValueHint {
        match self.op {
            MatchOp::Equal | MatchOp::NotEqual => ValueHint::Exact(vec![self.value.clone()]),
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => regex_hint(&self.value),
        }
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Characters with a meaning in regex syntax; a pattern without them is a literal.
fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

/// Conservative analysis of an (anchored) regex: a plain alternation of literals gives the
/// exact values; a leading literal run gives a prefix. Anything unusual falls back to `Any`,
/// which is always correct, only slower.
fn regex_hint(re: &str) -> ValueHint {
    if re.split('|').all(|alt| !alt.chars().any(is_meta)) {
        let mut values: Vec<String> = re.split('|').map(str::to_owned).collect();
        values.sort();
        values.dedup();
        return ValueHint::Exact(values);
    }
    if re.contains('|') {
        return ValueHint::Any;
    }
    let literal_len = re.find(is_meta).unwrap_or(re.len());
    let mut prefix = &re[..literal_len];
    // A quantifier right after the literal run applies to its last character.
    if matches!(
        re[literal_len..].chars().next(),
        Some('?' | '*' | '+' | '{')
    ) {
        prefix = match prefix.char_indices().last() {
            Some((i, _)) => &prefix[..i],
            None => "",
        };
    }
    if prefix.is_empty() {
        ValueHint::Any
    } else {
        ValueHint::Prefix(prefix.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).unwrap()
    }

    #[test]
    fn braces_that_open_no_repetition_are_literals_as_in_re2() {
        for (go, rust) in [
            ("a{2,", r"a\{2,"),
            ("a{,3}", r"a\{,3}"),
            ("{x}", r"\{x}"),
            ("a{", r"a\{"),
            ("a{2,x}", r"a\{2,x}"),
            ("[]{]{x}", r"[]{]\{x}"),
            ("[^]{]{", r"[^]{]\{"),
            ("é{ü", r"é\{ü"),
        ] {
            assert_eq!(go_regex(go), rust, "{go}");
        }
        for same in [
            "a{2}",
            "a{2,}",
            "a{2,5}",
            r"\{",
            "[{]",
            "[[:alpha:]{]+",
            "x}",
            "a|b",
        ] {
            assert!(matches!(go_regex(same), Cow::Borrowed(_)), "{same}");
        }
        let re = m(MatchOp::RegexMatch, "a{2,");
        assert!(re.matches("a{2,"));
        assert!(!re.matches("aa"));
        assert!(m(MatchOp::RegexMatch, "a{2}").matches("aa"));
        assert!(m(MatchOp::RegexMatch, "x}").matches("x}"));
        assert!(m(MatchOp::RegexNoMatch, "{x}").matches("y"));
        assert!(!m(MatchOp::RegexNoMatch, "{x}").matches("{x}"));
    }

    #[test]
    fn regexes_are_anchored_and_dot_matches_newline() {
        let re = m(MatchOp::RegexMatch, "a.c");
        assert!(re.matches("abc"));
        assert!(re.matches("a\nc"));
        assert!(!re.matches("xabc"));
        assert!(!re.matches("abcx"));
        assert!(m(MatchOp::RegexMatch, "a|").matches(""));
        assert!(m(MatchOp::RegexNoMatch, "a|b").matches("c"));
        assert!(!m(MatchOp::RegexNoMatch, "a|b").matches("b"));
        assert!(m(MatchOp::NotEqual, "x").matches(""));
    }

    #[test]
    fn bad_regex_names_the_matcher() {
        let err = Matcher::new(MatchOp::RegexMatch, "job", "a(").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"invalid regular expression "a(" in matcher for label "job""#),
            "{err}"
        );
    }

    #[test]
    fn hints() {
        let exact = |v: &[&str]| ValueHint::Exact(v.iter().map(|s| s.to_string()).collect());
        let cases = [
            ("api", exact(&["api"])),
            ("b|a|b", exact(&["a", "b"])),
            ("a|", exact(&["", "a"])),
            ("api-.*", ValueHint::Prefix("api-".into())),
            ("abc?d", ValueHint::Prefix("ab".into())),
            ("a+", ValueHint::Any),
            ("abc.*|x", ValueHint::Any),
            ("(?i)abc", ValueHint::Any),
            (".*", ValueHint::Any),
            ("ü+x", ValueHint::Any),
            ("üx+", ValueHint::Prefix("ü".into())),
        ];
        for (re, want) in cases {
            assert_eq!(regex_hint(re), want, "regex {re:?}");
        }
    }
}
