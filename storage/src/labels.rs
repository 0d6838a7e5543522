//! Label sets: the identity of a series.
//!
//! A [`Labels`] value is an immutable, validated, sorted set of `name=value` pairs kept in one
//! compact byte buffer (`[varint len][name][varint len][value]…`, the same encoding the `series`
//! column family stores, see `storage/FORMAT.md`). Holding the whole set in one allocation keeps
//! the in-memory head small: a typical node-exporter series costs about 150 bytes of labels.
//!
//! Invariants every `Labels` upholds, checked once at construction:
//! - names are non-empty UTF-8 without NUL (Prometheus 3's rule; whether a sender may use
//!   names outside the legacy `[a-zA-Z_][a-zA-Z0-9_]*` is the caller's policy, see
//!   [`NameScheme`]), and are unique;
//! - pairs are sorted by name (byte order), so equal sets have equal bytes;
//! - values are UTF-8 (Rust strings guarantee it; raw bytes are checked by [`Labels::from_raw`]).
//!
//! A label with an empty value is the same as no label at all (as in Prometheus), so such pairs
//! are dropped at construction. `__name__` may hold any UTF-8, like every other value.
//! Cloning is cheap (a reference count).

use std::fmt;
use std::sync::Arc;

use crate::error::LabelError;
use crate::varint;

/// The label that carries a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One `name=value` pair, borrowed from a [`Labels`] buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// A validated, sorted label set. Cheap to compare for equality and hash (one byte slice).
/// Ordering is Prometheus's: pair by pair, name then value, a prefix before a longer set.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Labels {
    data: Arc<[u8]>,
}

/// Whether `name` is a valid label name under Prometheus 3's default (UTF-8) rule: not empty
/// and no NUL byte (a Rust string is valid UTF-8 already).
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty() && !name.as_bytes().contains(&0)
}

/// Whether `name` is a label name in the legacy charset: `[a-zA-Z_][a-zA-Z0-9_]*`. Such names
/// are written bare in PromQL and in [`Labels`]' text form; others are quoted.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a metric name in the legacy charset: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Which metric and label names a writer accepts (Prometheus's
/// `metric_name_validation_scheme`). Storage itself holds any [`Labels`]; the API and the rule
/// loader apply the scheme to what users send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameScheme {
    /// Any non-empty UTF-8 name without NUL (Prometheus 3's default).
    #[default]
    Utf8,
    /// Only the legacy charsets: `[a-zA-Z_][a-zA-Z0-9_]*` for label names,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names.
    Legacy,
}

impl NameScheme {
    /// Whether `name` is an acceptable label name under this scheme.
    pub fn label_name_ok(self, name: &str) -> bool {
        match self {
            NameScheme::Utf8 => is_valid_label_name(name),
            NameScheme::Legacy => is_legacy_label_name(name),
        }
    }

    /// Whether `name` is an acceptable metric name under this scheme.
    pub fn metric_name_ok(self, name: &str) -> bool {
        match self {
            NameScheme::Utf8 => is_valid_label_name(name),
            NameScheme::Legacy => is_legacy_metric_name(name),
        }
    }

    /// Checks every name of `labels` (and its metric name) under this scheme.
    pub fn check(self, labels: &Labels) -> Result<(), LabelError> {
        if self == NameScheme::Utf8 {
            // `Labels` holds only names valid under this scheme.
            return Ok(());
        }
        for l in labels {
            if l.name == METRIC_NAME {
                if !self.metric_name_ok(l.value) {
                    return Err(LabelError::LegacyMetricName(l.value.to_owned()));
                }
            } else if !self.label_name_ok(l.name) {
                return Err(LabelError::LegacyName(l.name.to_owned()));
            }
        }
        Ok(())
    }
}

impl Labels {
    /// Builds a label set from pairs in any order, validating every invariant.
    pub fn new<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Labels, LabelError>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut owned: Vec<(N, V)> = pairs.into_iter().collect();
        owned.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        Self::from_sorted_pairs(owned.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
    }

    /// Builds a label set from raw bytes as they arrive on the wire (remote write), checking
    /// UTF-8 as well as the other invariants. Pairs may come in any order; input that is
    /// already sorted (as senders send it) is encoded in one pass without intermediate copies.
    pub fn from_raw<'a, I>(pairs: I) -> Result<Labels, LabelError>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
        I::IntoIter: Clone,
    {
        let it = pairs.into_iter();
        let mut prev: Option<&[u8]> = None;
        let mut size = 0;
        let mut sorted = true;
        for (n, v) in it.clone() {
            if prev.is_some_and(|p| n <= p) {
                sorted = false;
                break;
            }
            prev = Some(n);
            size += n.len() + v.len() + 4;
        }
        let utf8 = |name: &'a [u8], value: &'a [u8]| -> Result<(&'a str, &'a str), LabelError> {
            let name = std::str::from_utf8(name).map_err(|_| LabelError::InvalidUtf8 {
                name: String::from_utf8_lossy(name).into_owned(),
            })?;
            let value = std::str::from_utf8(value).map_err(|_| LabelError::InvalidUtf8 {
                name: name.to_owned(),
            })?;
            Ok((name, value))
        };
        if sorted {
            let mut strs = it.map(|(n, v)| utf8(n, v));
            let mut err = None;
            let labels = Self::encode_sorted(
                std::iter::from_fn(|| match strs.next()? {
                    Ok(p) => Some(p),
                    Err(e) => {
                        err = Some(e);
                        None
                    }
                }),
                size,
            );
            return match err {
                Some(e) => Err(e),
                None => labels,
            };
        }
        let strs = it.map(|(n, v)| utf8(n, v)).collect::<Result<Vec<_>, _>>()?;
        Self::new(strs)
    }

    fn from_sorted_pairs<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Labels, LabelError> {
        Self::encode_sorted(pairs, 64)
    }

    /// Validates and encodes pairs sorted by name; `capacity` is a size hint in bytes.
    fn encode_sorted<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        capacity: usize,
    ) -> Result<Labels, LabelError> {
        let mut data = Vec::with_capacity(capacity);
        let mut prev: Option<&str> = None;
        for (name, value) in pairs.filter(|(_, v)| !v.is_empty()) {
            if name.is_empty() {
                return Err(LabelError::EmptyName);
            }
            if !is_valid_label_name(name) {
                return Err(LabelError::InvalidName(name.to_owned()));
            }
            if prev == Some(name) {
                return Err(LabelError::DuplicateName(name.to_owned()));
            }
            prev = Some(name);
            varint::put_uvarint(&mut data, name.len() as u64);
            data.extend_from_slice(name.as_bytes());
            varint::put_uvarint(&mut data, value.len() as u64);
            data.extend_from_slice(value.as_bytes());
        }
        Ok(Labels { data: data.into() })
    }

    /// Rebuilds a label set from bytes this crate wrote earlier (the `series` column family).
    /// The bytes are parsed and re-validated, so corruption surfaces as an error.
    pub fn decode(bytes: &[u8]) -> Result<Labels, LabelError> {
        let mut pairs = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let name = take_str(&mut rest)?;
            let value = take_str(&mut rest)?;
            pairs.push((name, value));
        }
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(LabelError::Corrupt("label names out of order".into()));
        }
        Self::from_sorted_pairs(pairs.into_iter())
    }

    /// The encoded form, as stored in the `series` column family.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Iterates the pairs in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter { rest: &self.data }
    }

    /// The value of `name`, if the set has that label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|l| l.name == name).map(|l| l.value)
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Whether these labels are exactly `pairs`, in order, compared as bytes (no decoding).
    /// Used to recognise a label set seen before straight from wire bytes.
    pub fn eq_raw<'a>(&self, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> bool {
        let mut rest: &[u8] = &self.data;
        for (name, value) in pairs {
            if value.is_empty() {
                return false;
            }
            for want in [name, value] {
                let Some((len, k)) = varint::uvarint(rest) else {
                    return false;
                };
                let end = k + len as usize;
                if rest.get(k..end) != Some(want) {
                    return false;
                }
                rest = &rest[end..];
            }
        }
        rest.is_empty()
    }

    /// Whether the set has a `__name__` label (without decoding any value).
    pub fn has_metric_name(&self) -> bool {
        let mut rest: &[u8] = &self.data;
        while let Some((len, n)) = varint::uvarint(rest) {
            let name = &rest[n..n + len as usize];
            rest = &rest[n + len as usize..];
            if name == METRIC_NAME.as_bytes() {
                return true;
            }
            let Some((vlen, m)) = varint::uvarint(rest) else {
                break;
            };
            rest = &rest[m + vlen as usize..];
        }
        false
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the set has no labels. Storage refuses to append such a series; query results
    /// may have one (`sum(x)` is `{}`).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Heap bytes this set occupies (for memory accounting): the buffer and its counts.
    pub fn heap_size(&self) -> usize {
        self.data.len() + 2 * std::mem::size_of::<usize>()
    }
}

/// The next length-prefixed field of an encoded label set; `None` when truncated.
fn take_bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, n) = varint::uvarint(rest)?;
    let body = rest.get(n..n.checked_add(len as usize)?)?;
    *rest = &rest[n + body.len()..];
    Some(body)
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Result<&'a str, LabelError> {
    let body =
        take_bytes(rest).ok_or_else(|| LabelError::Corrupt("truncated label encoding".into()))?;
    std::str::from_utf8(body).map_err(|_| LabelError::Corrupt("label is not UTF-8".into()))
}

/// Iterator over the pairs of a [`Labels`].
#[derive(Debug, Clone)]
pub struct LabelsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = Label<'a>;

    fn next(&mut self) -> Option<Label<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        // The buffer was validated at construction, so these cannot fail.
        let name = take_str(&mut self.rest).ok()?;
        let value = take_str(&mut self.rest).ok()?;
        Some(Label { name, value })
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = LabelsIter<'a>;

    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

/// The next (name, value) of an encoded label set, as bytes; `None` at the end.
fn take_pair<'a>(rest: &mut &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    Some((take_bytes(rest)?, take_bytes(rest)?))
}

impl Ord for Labels {
    /// Pair by pair, name then value, as Prometheus orders label sets. Compares bytes (UTF-8
    /// byte order is code point order, as Go compares strings), without decoding text.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.data, &other.data) {
            return std::cmp::Ordering::Equal;
        }
        let (mut a, mut b) = (&self.data[..], &other.data[..]);
        loop {
            match (take_pair(&mut a), take_pair(&mut b)) {
                (None, None) => return std::cmp::Ordering::Equal,
                (None, Some(_)) => return std::cmp::Ordering::Less,
                (Some(_), None) => return std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => match x.cmp(&y) {
                    std::cmp::Ordering::Equal => {}
                    o => return o,
                },
            }
        }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Labels {
    /// The empty label set.
    fn default() -> Self {
        Labels {
            data: Arc::from(&[][..]),
        }
    }
}

impl fmt::Display for Labels {
    /// Prometheus's notation: `name{a="1", b="2"}`; a name outside the legacy charset is
    /// quoted, as Prometheus 3 writes it: `{"http.server.duration", "service.name"="api"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        match self.metric_name() {
            Some(name) if is_legacy_metric_name(name) => {
                f.write_str(name)?;
                f.write_str("{")?;
            }
            Some(name) => {
                write!(f, "{{{name:?}")?;
                first = false;
            }
            None => f.write_str("{")?,
        }
        for l in self.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_legacy_label_name(l.name) {
                write!(f, "{}={:?}", l.name, l.value)?;
            } else {
                write!(f, "{:?}={:?}", l.name, l.value)?;
            }
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(pairs: &[(&str, &str)], want: &str) {
        let err = Labels::new(pairs.iter().copied()).unwrap_err();
        assert_eq!(err.to_string(), want);
    }

    /// The byte-wise order is the order of the decoded pairs (name, then value).
    #[test]
    fn ordering_compares_pairs_name_then_value() {
        let sets: Vec<Labels> = [
            vec![],
            vec![("a", "1")],
            vec![("a", "1"), ("b", "2")],
            vec![("a", "10")],
            vec![("a", "2")],
            vec![("aa", "1")],
            vec![("a", "é")],
            vec![("a", "z")],
            vec![("b", "")],
            vec![("__name__", "x"), ("job", "a")],
            vec![("__name__", "x"), ("job", "a"), ("zone", "1")],
            vec![("__name__", "xy")],
        ]
        .into_iter()
        .filter_map(|pairs| Labels::new(pairs).ok())
        .collect();
        for a in &sets {
            for b in &sets {
                assert_eq!(a.cmp(b), a.iter().cmp(b.iter()), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn sorts_and_round_trips() {
        let l = Labels::new([("job", "api"), ("__name__", "up"), ("instance", "a:1")]).unwrap();
        let names: Vec<_> = l.iter().map(|l| l.name).collect();
        assert_eq!(names, ["__name__", "instance", "job"]);
        assert_eq!(Labels::decode(l.as_bytes()).unwrap(), l);
        assert_eq!(l.to_string(), r#"up{instance="a:1", job="api"}"#);
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn rejects_invalid_sets() {
        assert!(Labels::new(Vec::<(&str, &str)>::new()).unwrap().is_empty());
        assert!(
            Labels::new([("a", "")]).unwrap().is_empty(),
            "empty values are absent labels"
        );
        check_err(&[("", "x")], "label name is empty");
        check_err(
            &[("a\0b", "x")],
            r#"invalid label name "a\0b": must be non-empty UTF-8 without NUL"#,
        );
        check_err(&[("a", "x"), ("a", "y")], r#"duplicate label name "a""#);
    }

    #[test]
    fn orders_pair_by_pair() {
        let a = Labels::new([("__name__", "up"), ("job", "api")]).unwrap();
        let b =
            Labels::new([("__name__", "http_requests_total"), ("job", "zzzzzzzzzzzz")]).unwrap();
        let c = Labels::new([("__name__", "up")]).unwrap();
        assert!(
            b < a,
            "name values compare as strings, not by encoded length"
        );
        assert!(c < a, "a prefix sorts first");
    }

    #[test]
    fn empty_values_are_absent_labels() {
        let l = Labels::new([("a", ""), ("b", "1")]).unwrap();
        assert_eq!(l, Labels::new([("b", "1")]).unwrap());
    }

    #[test]
    fn metric_name_and_values_may_be_any_utf8() {
        let l = Labels::new([("__name__", "ünïcode.metric-name"), ("v", "\0 ✓ \"q\"")]).unwrap();
        assert_eq!(l.metric_name(), Some("ünïcode.metric-name"));
        assert_eq!(Labels::decode(l.as_bytes()).unwrap(), l);
    }

    #[test]
    fn names_may_be_any_utf8_and_are_quoted_when_not_legacy() {
        let l = Labels::new([
            ("__name__", "http.server.duration"),
            ("service.name", "api"),
            ("1abc", "x"),
            ("job", "a"),
        ])
        .unwrap();
        assert_eq!(Labels::decode(l.as_bytes()).unwrap(), l);
        assert_eq!(
            l.to_string(),
            r#"{"http.server.duration", "1abc"="x", job="a", "service.name"="api"}"#
        );
        let plain = Labels::new([("__name__", "up:rate5m"), ("job", "a")]).unwrap();
        assert_eq!(plain.to_string(), r#"up:rate5m{job="a"}"#);
        let unnamed = Labels::new([("a.b", "1")]).unwrap();
        assert_eq!(unnamed.to_string(), r#"{"a.b"="1"}"#);
    }

    #[test]
    fn the_legacy_scheme_refuses_what_the_utf8_one_accepts() {
        let dotted = Labels::new([("__name__", "a.b"), ("job", "x")]).unwrap();
        let label = Labels::new([("__name__", "ok:name"), ("service.name", "x")]).unwrap();
        assert!(NameScheme::Utf8.check(&dotted).is_ok());
        assert!(NameScheme::Utf8.check(&label).is_ok());
        assert_eq!(
            NameScheme::Legacy.check(&dotted).unwrap_err().to_string(),
            r#"invalid metric name "a.b": the legacy scheme allows [a-zA-Z_:][a-zA-Z0-9_:]*"#
        );
        assert_eq!(
            NameScheme::Legacy.check(&label).unwrap_err().to_string(),
            r#"invalid label name "service.name": the legacy scheme allows [a-zA-Z_][a-zA-Z0-9_]*"#
        );
        assert!(!is_legacy_label_name("a:b") && is_legacy_metric_name("a:b"));
        assert!(!is_valid_label_name("") && !is_valid_label_name("a\0"));
    }

    #[test]
    fn raw_bytes_must_be_utf8() {
        let err = Labels::from_raw([(&b"job"[..], &b"\xff"[..])]).unwrap_err();
        assert_eq!(err.to_string(), r#"label "job" is not valid UTF-8"#);
        let err =
            Labels::from_raw([(&b"a"[..], &b"1"[..]), (&b"\xfe"[..], &b"2"[..])]).unwrap_err();
        assert!(matches!(err, LabelError::InvalidUtf8 { .. }), "{err}");
    }

    #[test]
    fn compares_with_raw_pairs() {
        let l = Labels::new([("__name__", "up"), ("job", "a")]).unwrap();
        let raw = |p: &[(&'static str, &'static str)]| {
            p.iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert!(l.eq_raw(raw(&[("__name__", "up"), ("job", "a")]).into_iter()));
        assert!(!l.eq_raw(raw(&[("__name__", "up")]).into_iter()));
        assert!(!l.eq_raw(raw(&[("__name__", "up"), ("job", "a"), ("x", "1")]).into_iter()));
        assert!(!l.eq_raw(raw(&[("job", "a"), ("__name__", "up")]).into_iter()));
        assert!(!l.eq_raw(raw(&[("__name__", "up"), ("job", "b")]).into_iter()));
    }

    #[test]
    fn raw_pairs_sorted_or_not_give_the_same_set() {
        let sorted = [(&b"__name__"[..], &b"up"[..]), (&b"job"[..], &b"a"[..])];
        let unsorted = [sorted[1], sorted[0]];
        assert_eq!(
            Labels::from_raw(sorted).unwrap(),
            Labels::from_raw(unsorted).unwrap()
        );
        let dup = [(&b"a"[..], &b"1"[..]), (&b"a"[..], &b"2"[..])];
        assert_eq!(
            Labels::from_raw(dup).unwrap_err().to_string(),
            r#"duplicate label name "a""#
        );
    }
}
