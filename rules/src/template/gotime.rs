//! Go's `time` printing: `time.Time.String()`, `time.Duration.String()` and `Time.Format`
//! with Go's reference-time layouts (`2006-01-02 15:04:05.000 -0700 MST`). Every time here is
//! in UTC, as Prometheus's `toTime` and `humanizeTimestamp` produce.

use chrono::{DateTime, Datelike, Timelike};

/// Layout of Go's `time.Time.String()`.
const STRING_LAYOUT: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

/// `time.Time.String()` of a UTC time given in nanoseconds since the epoch.
pub(crate) fn time_string(ns: i64) -> String {
    format(ns, STRING_LAYOUT)
}

/// `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn duration_string(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        let frac = frac_string(&mut u, prec);
        out.push_str(&u.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let frac = frac_string(&mut u, 9);
        let secs = u % 60;
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&format!("{secs}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Divides `u` by 10^prec and returns the fraction as `.123` without trailing zeros.
fn frac_string(u: &mut u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let frac = *u % p;
    *u /= p;
    if frac == 0 {
        return String::new();
    }
    let s = format!("{:0width$}", frac, width = prec as usize);
    format!(".{}", s.trim_end_matches('0'))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats a UTC time (nanoseconds since the epoch) with a Go layout string.
pub(crate) fn format(ns: i64, layout: &str) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let Some(t) = DateTime::from_timestamp(secs, nanos) else {
        return String::new();
    };
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        let (lit, chunk, after) = next_chunk(rest);
        out.push_str(lit);
        let Some(chunk) = chunk else { break };
        rest = after;
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        match chunk {
            Chunk::LongMonth => out.push_str(MONTHS[t.month0() as usize]),
            Chunk::Month => out.push_str(&MONTHS[t.month0() as usize][..3]),
            Chunk::NumMonth => out.push_str(&t.month().to_string()),
            Chunk::ZeroMonth => out.push_str(&format!("{:02}", t.month())),
            Chunk::LongWeekDay => out.push_str(DAYS[t.weekday().num_days_from_sunday() as usize]),
            Chunk::WeekDay => out.push_str(&DAYS[t.weekday().num_days_from_sunday() as usize][..3]),
            Chunk::Day => out.push_str(&t.day().to_string()),
            Chunk::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Chunk::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            Chunk::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Chunk::ZeroYearDay => out.push_str(&format!("{:03}", t.ordinal())),
            Chunk::Hour => out.push_str(&format!("{:02}", t.hour())),
            Chunk::Hour12 => out.push_str(&hour12.to_string()),
            Chunk::ZeroHour12 => out.push_str(&format!("{hour12:02}")),
            Chunk::Minute => out.push_str(&t.minute().to_string()),
            Chunk::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            Chunk::Second => out.push_str(&t.second().to_string()),
            Chunk::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            Chunk::LongYear => {
                let y = t.year();
                if y < 0 {
                    out.push_str(&format!("-{:04}", -y));
                } else {
                    out.push_str(&format!("{y:04}"));
                }
            }
            Chunk::Year => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            Chunk::PM => out.push_str(if t.hour() >= 12 { "PM" } else { "AM" }),
            Chunk::Pm => out.push_str(if t.hour() >= 12 { "pm" } else { "am" }),
            Chunk::Tz => out.push_str("UTC"),
            Chunk::Iso(s) | Chunk::Offset(s) => out.push_str(s),
            Chunk::Frac { sep, digits, trim } => {
                let s = format!("{:09}", t.nanosecond());
                let mut f = &s[..digits];
                if trim {
                    f = f.trim_end_matches('0');
                    if f.is_empty() {
                        continue;
                    }
                }
                out.push(sep);
                out.push_str(f);
            }
        }
    }
    out
}

/// One element of a Go layout.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    /// An ISO 8601 zone (`Z0700` and friends): `Z` for UTC.
    Iso(&'static str),
    /// A numeric zone offset (`-0700` and friends), already rendered for UTC.
    Offset(&'static str),
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

/// Splits `layout` into the literal prefix, the first layout element and the rest, as Go's
/// `nextStdChunk`.
fn next_chunk(layout: &str) -> (&str, Option<Chunk>, &str) {
    let b = layout.as_bytes();
    const TABLE: &[(&str, Chunk)] = &[
        ("January", Chunk::LongMonth),
        ("Jan", Chunk::Month),
        ("Monday", Chunk::LongWeekDay),
        ("Mon", Chunk::WeekDay),
        ("MST", Chunk::Tz),
        ("01", Chunk::ZeroMonth),
        ("02", Chunk::ZeroDay),
        ("03", Chunk::ZeroHour12),
        ("04", Chunk::ZeroMinute),
        ("05", Chunk::ZeroSecond),
        ("06", Chunk::Year),
        ("002", Chunk::ZeroYearDay),
        ("15", Chunk::Hour),
        ("1", Chunk::NumMonth),
        ("2006", Chunk::LongYear),
        ("2", Chunk::Day),
        ("__2", Chunk::UnderYearDay),
        ("_2", Chunk::UnderDay),
        ("3", Chunk::Hour12),
        ("4", Chunk::Minute),
        ("5", Chunk::Second),
        ("PM", Chunk::PM),
        ("pm", Chunk::Pm),
        ("-07:00:00", Chunk::Offset("+00:00:00")),
        ("-070000", Chunk::Offset("+000000")),
        ("-07:00", Chunk::Offset("+00:00")),
        ("-0700", Chunk::Offset("+0000")),
        ("-07", Chunk::Offset("+00")),
        ("Z07:00:00", Chunk::Iso("Z")),
        ("Z070000", Chunk::Iso("Z")),
        ("Z07:00", Chunk::Iso("Z")),
        ("Z0700", Chunk::Iso("Z")),
        ("Z07", Chunk::Iso("Z")),
    ];
    for i in 0..b.len() {
        let rest = &layout[i..];
        if (b[i] == b'.' || b[i] == b',')
            && i + 1 < b.len()
            && (b[i + 1] == b'0' || b[i + 1] == b'9')
        {
            let ch = b[i + 1];
            let mut j = i + 1;
            while j < b.len() && b[j] == ch {
                j += 1;
            }
            if !(j < b.len() && b[j].is_ascii_digit()) {
                let digits = (j - i - 1).min(9);
                let chunk = Chunk::Frac {
                    sep: b[i] as char,
                    digits,
                    trim: ch == b'9',
                };
                return (&layout[..i], Some(chunk), &layout[j..]);
            }
        }
        // Longest match first: the table lists longer forms before their prefixes where
        // it matters, except for "002"/"2006" which need explicit ordering below.
        let mut best: Option<(&str, Chunk)> = None;
        for (pat, chunk) in TABLE {
            if rest.starts_with(pat) && best.is_none_or(|(p, _)| pat.len() > p.len()) {
                best = Some((pat, *chunk));
            }
        }
        if let Some((pat, chunk)) = best {
            // Go treats "Jan"/"Mon" only as words when not followed by a lower-case letter.
            let after = &rest[pat.len()..];
            let word_ok = !matches!(pat, "Jan" | "Mon" | "MST")
                || !after.starts_with(|c: char| c.is_ascii_lowercase());
            if word_ok {
                return (&layout[..i], Some(chunk), after);
            }
        }
    }
    (layout, None, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        // 2015-06-23 13:19:44.128 UTC, a Tuesday.
        let ns = 1_435_065_584_128_000_000;
        assert_eq!(time_string(ns), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(format(ns, "15"), "13");
        assert_eq!(
            format(ns, "Mon Jan _2 3:04PM 06 .000 Z07:00 -07:00"),
            "Tue Jun 23 1:19PM 15 .128 Z +00:00"
        );
        assert_eq!(
            format(ns, "Monday January 2, 2006 002"),
            "Tuesday June 23, 2015 174"
        );
        assert_eq!(
            format(ns, "2006-01-02T15:04:05.999999999Z07:00"),
            "2015-06-23T13:19:44.128Z"
        );
    }

    #[test]
    fn durations() {
        let s = 1_000_000_000i64;
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(90 * s), "1m30s");
        assert_eq!(duration_string(3723 * s + s / 2), "1h2m3.5s");
        assert_eq!(duration_string(1_500_000), "1.5ms");
        assert_eq!(duration_string(100), "100ns");
        assert_eq!(duration_string(1_500), "1.5µs");
        assert_eq!(duration_string(-2 * s), "-2s");
        assert_eq!(duration_string(3600 * s), "1h0m0s");
    }
}
