//! Prometheus's duration syntax, shared by PromQL, the HTTP API, the config file and the test
//! scripts: one or more `<integer><unit>` with units in decreasing order, each at most once
//! (`y` = 365d, `w`, `d`, `h`, `m`, `s`, `ms`), e.g. `1h30m`, `5m`, `250ms`.

/// The units, longest first, with their length in milliseconds.
pub const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a duration; returns milliseconds, or `None` if `s` is not in the syntax (or
/// overflows). The bare `0` is accepted.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // The longest unit that fits, so "5ms" is milliseconds, not minutes then "s".
        let (idx, (unit, mult)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        if last.is_some_and(|l| idx <= l) {
            return None;
        }
        last = Some(idx);
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(*mult)?)?;
    }
    Some(total)
}

/// Formats milliseconds as Prometheus prints durations (`1h30m`, `15s`, `0s`, `15d`): `y` and
/// `w` are used only when they divide the whole duration exactly, as in Prometheus.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    if rest < 0 {
        out.push('-');
        rest = rest.saturating_neg();
    }
    for (unit, size) in UNITS {
        let exact_only = unit == "y" || unit == "w";
        if rest >= size && (!exact_only || rest % size == 0) {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("5m", Some(300_000)),
            ("1h30m", Some(5_400_000)),
            ("250ms", Some(250)),
            ("59s999ms", Some(59_999)),
            ("1d2h", Some(93_600_000)),
            ("1y", Some(31_536_000_000)),
            ("30m1h", None),
            ("1m1m", None),
            ("", None),
            ("m", None),
            ("5x", None),
            ("-1m", None),
            ("1.5h", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), *want, "{input}");
        }
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(15 * 86_400_000), "15d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(90 * 86_400_000), "90d");
        assert_eq!(format_duration(365 * 86_400_000), "1y");
        assert_eq!(format_duration(0), "0s");
    }
}
