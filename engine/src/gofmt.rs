//! Go's `strconv.FormatFloat` (`%e`, `%f`, `%g` and `%x` of a float with a precision), for
//! messages that must read exactly as Prometheus prints them: the engine's annotations and
//! the rule templates' `printf` and `humanize*`.

/// Decimal digits of a float: `digits` without leading or trailing zeros and the decimal
/// point position `dp` (value = 0.digits × 10^dp), as Go's `decimalSlice`.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Returns the shortest round-tripping digits (`prec` < 0) or digits rounded to `prec`
/// significant digits.
fn digits(v: f64, sig: i32) -> Digits {
    let v = v.abs();
    if v == 0.0 {
        return Digits {
            d: Vec::new(),
            dp: 0,
        };
    }
    let s = if sig < 0 {
        format!("{v:e}")
    } else {
        format!("{:.*e}", (sig.max(1) - 1) as usize, v)
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    Digits { d, dp: exp + 1 }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for the formats `e E f F g G` (others fall
/// back to `g`); `prec` < 0 means the shortest representation.
pub fn format_float(v: f64, fmt: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let neg = v.is_sign_negative();
    let sign = if neg { "-" } else { "" };
    match fmt {
        'x' | 'X' => {
            let s = format!("{sign}{}", hex_float(v.abs(), prec));
            if fmt == 'X' {
                s.to_uppercase()
            } else {
                s
            }
        }
        'f' | 'F' => {
            if prec < 0 {
                let d = digits(v, -1);
                let p = (d.d.len() as i32 - d.dp).max(0);
                return format!("{sign}{}", fmt_f(&d, p));
            }
            format!("{sign}{:.*}", prec as usize, v.abs())
        }
        'e' | 'E' => {
            let (d, p) = if prec < 0 {
                let d = digits(v, -1);
                let p = d.d.len() as i32 - 1;
                (d, p)
            } else {
                (digits(v, prec + 1), prec)
            };
            format!("{sign}{}", fmt_e(&d, p, fmt))
        }
        _ => {
            let upper = fmt == 'G';
            let shortest = prec < 0;
            let mut prec = prec;
            let d = if shortest {
                let d = digits(v, -1);
                prec = d.d.len() as i32;
                d
            } else {
                if prec == 0 {
                    prec = 1;
                }
                digits(v, prec)
            };
            let nd = d.d.len() as i32;
            let mut eprec = prec;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                let e = if upper { 'E' } else { 'e' };
                return format!("{sign}{}", fmt_e(&d, prec - 1, e));
            }
            if prec > d.dp {
                prec = nd;
            }
            format!("{sign}{}", fmt_f(&d, (prec - d.dp).max(0)))
        }
    }
}

/// Go's `%x` of a float: `0x1.cp+01`. The mantissa is shortest when `prec` < 0, else
/// padded or cut to `prec` hex digits (cut without rounding; Go rounds).
fn hex_float(v: f64, prec: i32) -> String {
    if v == 0.0 {
        let frac = if prec > 0 {
            format!(".{}", "0".repeat(prec as usize))
        } else {
            String::new()
        };
        return format!("0x0{frac}p+00");
    }
    let bits = v.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        // Subnormal: normalise so the leading 1 is implicit again.
        exp = -1022;
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    } else {
        exp -= 1023;
    }
    let mut frac = format!("{mant:013x}");
    if prec < 0 {
        frac = frac.trim_end_matches('0').to_string();
    } else {
        let p = prec as usize;
        if frac.len() > p {
            frac.truncate(p);
        } else {
            frac.push_str(&"0".repeat(p - frac.len()));
        }
    }
    let dot = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("0x1{dot}p{sign}{:02}", exp.abs())
}

fn fmt_e(d: &Digits, prec: i32, e: char) -> String {
    let mut out = String::new();
    out.push(d.d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as usize {
            out.push(d.d.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(e);
    let exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
    out
}

fn fmt_f(d: &Digits, prec: i32) -> String {
    let mut out = String::new();
    if d.dp > 0 {
        let m = (d.dp as usize).min(d.d.len());
        out.extend(d.d[..m].iter().map(|&c| c as char));
        out.extend(std::iter::repeat_n('0', d.dp as usize - m));
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            let j = d.dp + i - 1;
            let c = if j >= 0 {
                d.d.get(j as usize).map_or('0', |&c| c as char)
            } else {
                '0'
            };
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_with_precision() {
        // fmt.Sprintf("%.2g", …) in Go.
        for (v, want) in [
            (2.0, "2"),
            (0.5, "0.5"),
            (123.0, "1.2e+02"),
            (100.0, "1e+02"),
            (1.25, "1.2"),
            (0.000123, "0.00012"),
            (0.0000123, "1.2e-05"),
            (-7.77, "-7.8"),
            (10.0, "10"),
        ] {
            assert_eq!(format_float(v, 'g', 2), want, "{v}");
        }
    }
}
