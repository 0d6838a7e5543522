//! Go's `fmt` printing: `Sprint`, `Sprintln` and `Sprintf` with the verbs, flags, width and
//! precision of Go's `fmt` package, including its error fillers (`%!d(string=x)`,
//! `%!d(MISSING)`, `%!(EXTRA int=1)`, `%!(BADWIDTH)`, `%!(NOVERB)`), and `strconv`'s float
//! formatting. Ported by reading `fmt/print.go`, `fmt/format.go` and `strconv/ftoa.go`.
//!
//! One deliberate deviation: `%d` (and the other integer verbs) accept a string that parses
//! as a decimal integer, so `printf "%02d" (now | date "15")` prints `09` where Go would print
//! `%!d(string=09)`.

use augur_engine::gofmt::format_float;

use super::gotime;
use super::value::{StructKind, Val};

/// `fmt.Sprint`: operands are printed with `%v`; a space separates two operands when
/// neither is a string.
pub(crate) fn sprint(args: &[Val]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Val::Str(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln`: operands are always separated by a space, and a newline is appended.
pub(crate) fn sprintln(args: &[Val]) -> String {
    let mut p = Printer::default();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Val]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

/// Formatting flags of one verb (Go's `fmt.fmtFlags` plus width and precision).
#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

#[derive(Debug, Default)]
struct Printer {
    buf: String,
    f: Flags,
    erroring: bool,
    /// Set when printing an action's value: the outermost pointer is dereferenced.
    deref: bool,
}

impl Printer {
    fn do_printf(&mut self, format: &str, args: &[Val]) {
        let b = format.as_bytes();
        let end = b.len();
        let mut arg_num = 0usize;
        let mut reordered = false;
        let mut i = 0usize;
        while i < end {
            let mut good_arg_num = true;
            let lasti = i;
            while i < end && b[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.buf.push_str(&format[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            while i < end {
                match b[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            // An explicit argument index such as `%[2]d`.
            let mut after_index = false;
            self.arg_number(
                b,
                &mut i,
                &mut arg_num,
                args.len(),
                &mut good_arg_num,
                &mut after_index,
                &mut reordered,
            );
            if i < end && b[i] == b'*' {
                i += 1;
                match int_from_arg(args, &mut arg_num) {
                    Some(w) => {
                        if w < 0 {
                            self.f.minus = true;
                            self.f.zero = false;
                        }
                        self.f.wid = Some(w.unsigned_abs() as usize);
                    }
                    None => self.buf.push_str("%!(BADWIDTH)"),
                }
                after_index = false;
            } else {
                self.f.wid = parse_num(b, &mut i);
                if after_index && self.f.wid.is_some() {
                    good_arg_num = false;
                }
            }
            if i + 1 < end && b[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                self.arg_number(
                    b,
                    &mut i,
                    &mut arg_num,
                    args.len(),
                    &mut good_arg_num,
                    &mut after_index,
                    &mut reordered,
                );
                if i < end && b[i] == b'*' {
                    i += 1;
                    match int_from_arg(args, &mut arg_num) {
                        Some(p) if p >= 0 => self.f.prec = Some(p as usize),
                        Some(_) => self.f.prec = None,
                        None => self.buf.push_str("%!(BADPREC)"),
                    }
                    after_index = false;
                } else {
                    self.f.prec = Some(parse_num(b, &mut i).unwrap_or(0));
                }
            }
            if !after_index {
                self.arg_number(
                    b,
                    &mut i,
                    &mut arg_num,
                    args.len(),
                    &mut good_arg_num,
                    &mut after_index,
                    &mut reordered,
                );
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format[i..].chars().next().unwrap_or('?');
            i += verb.len_utf8();
            if verb == '%' {
                self.buf.push('%');
            } else if !good_arg_num {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(BADINDEX)");
            } else if arg_num >= args.len() {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (i, a) in args[arg_num..].iter().enumerate() {
                if i > 0 {
                    self.buf.push_str(", ");
                }
                if let Val::Nil = a {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(a.type_name());
                    self.buf.push('=');
                    self.print_arg(a, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    /// Parses an argument index `[n]` at `b[*i]`, as Go's `argNumber`.
    #[allow(clippy::too_many_arguments)] // Mirrors Go's argNumber, which updates all of these.
    fn arg_number(
        &mut self,
        b: &[u8],
        i: &mut usize,
        arg_num: &mut usize,
        num_args: usize,
        good: &mut bool,
        after_index: &mut bool,
        reordered: &mut bool,
    ) {
        if *i >= b.len() || b[*i] != b'[' {
            return;
        }
        *reordered = true;
        let Some(close) = b[*i + 1..].iter().position(|&c| c == b']') else {
            *good = false;
            return;
        };
        let digits = &b[*i + 1..*i + 1 + close];
        let n: Option<usize> = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok());
        *i += close + 2;
        match n {
            Some(n) if n >= 1 && n <= num_args => {
                *arg_num = n - 1;
                *after_index = true;
            }
            _ => *good = false,
        }
    }

    fn print_arg(&mut self, arg: &Val, verb: char) {
        if verb == 'T' {
            let t = arg.type_name();
            self.pad_string(t);
            return;
        }
        match arg {
            Val::Nil => match verb {
                'v' => self.pad_string("<nil>"),
                _ => self.bad_verb(arg, verb),
            },
            Val::Bool(b) => match verb {
                't' | 'v' => self.pad_string(if *b { "true" } else { "false" }),
                _ => self.bad_verb(arg, verb),
            },
            Val::Int(i) => self.fmt_integer(*i, verb, arg),
            Val::Float(x) => self.fmt_float_verb(*x, verb, arg),
            Val::Str(s) => self.fmt_string(s, verb, arg),
            Val::Time(_) | Val::Duration(_) => {
                // Both types are Stringers; Go calls String() for the string verbs.
                let s = stringer(arg).unwrap_or_default();
                match verb {
                    'v' | 's' | 'x' | 'X' | 'q' => self.fmt_string(&s, verb, arg),
                    _ => self.bad_verb(arg, verb),
                }
            }
            Val::List(l) => {
                self.buf.push('[');
                for (i, e) in l.items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_arg(e, verb);
                }
                self.buf.push(']');
            }
            Val::Map(m) => {
                self.buf.push_str("map[");
                for (i, (k, v)) in m.entries.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.fmt_string(k, verb, &Val::Str(k.clone()));
                    self.buf.push(':');
                    self.print_arg(v, verb);
                }
                self.buf.push(']');
            }
            Val::Struct(s) => {
                let deref = std::mem::take(&mut self.deref);
                if s.kind == StructKind::Sample && !deref {
                    // A *template.sample; Go prints a pointer to a struct as &{...}.
                    self.buf.push('&');
                }
                self.buf.push('{');
                for (i, (name, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    if self.f.plus_v || self.f.sharp_v {
                        self.buf.push_str(name);
                        self.buf.push(':');
                    }
                    self.print_arg(v, verb);
                }
                self.buf.push('}');
            }
        }
    }

    fn bad_verb(&mut self, arg: &Val, verb: char) {
        self.erroring = true;
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if let Val::Nil = arg {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(arg.type_name());
            self.buf.push('=');
            self.print_arg(arg, 'v');
        }
        self.buf.push(')');
        self.erroring = false;
    }

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Pads `s` to the width, on the left unless the minus flag is set.
    fn pad_string(&mut self, s: &str) {
        let Some(wid) = self.f.wid else {
            self.buf.push_str(s);
            return;
        };
        let n = wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(n);
        } else {
            self.write_padding(n);
            self.buf.push_str(s);
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        match self.f.prec {
            Some(p) => match s.char_indices().nth(p) {
                Some((i, _)) => &s[..i],
                None => s,
            },
            None => s,
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, arg: &Val) {
        match verb {
            'v' if self.f.sharp_v => {
                let q = quote(s);
                self.pad_string(&q);
            }
            'v' | 's' => {
                let t = self.truncate(s).to_string();
                self.pad_string(&t);
            }
            'x' => self.fmt_sx(s.as_bytes(), b"0123456789abcdefx"),
            'X' => self.fmt_sx(s.as_bytes(), b"0123456789ABCDEFX"),
            'q' => {
                let t = self.truncate(s);
                let q = if self.f.sharp
                    && !t.contains('`')
                    && t.chars()
                        .all(|c| c != '\u{FEFF}' && (c == '\t' || !c.is_control()))
                {
                    format!("`{t}`")
                } else {
                    quote(t)
                };
                self.pad_string(&q);
            }
            'd' | 'b' | 'o' | 'O' | 'c' | 'U' => match s.trim().parse::<i64>() {
                // Augur deviation: integer verbs accept decimal strings (see module header).
                Ok(i) => self.fmt_integer(i, verb, arg),
                Err(_) => self.bad_verb(arg, verb),
            },
            _ => self.bad_verb(arg, verb),
        }
    }

    fn fmt_sx(&mut self, b: &[u8], digits: &[u8; 17]) {
        let mut length = b.len();
        if let Some(p) = self.f.prec {
            length = length.min(p);
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if let Some(w) = self.f.wid {
                self.write_padding(w);
            }
            return;
        }
        let wid = self.f.wid.unwrap_or(0);
        if wid > width && !self.f.minus {
            self.write_padding(wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(digits[16] as char);
        }
        for (i, c) in b[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(digits[16] as char);
                }
            }
            self.buf.push(digits[(c >> 4) as usize] as char);
            self.buf.push(digits[(c & 0xF) as usize] as char);
        }
        if wid > width && self.f.minus {
            self.write_padding(wid - width);
        }
    }

    fn fmt_integer(&mut self, v: i64, verb: char, arg: &Val) {
        let (base, upper) = match verb {
            'v' | 'd' => (10, false),
            'b' => (2, false),
            'o' | 'O' => (8, false),
            'x' => (16, false),
            'X' => (16, true),
            'c' => {
                let c = u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                self.pad_string(&c.to_string());
                return;
            }
            'q' => {
                let c = u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                let q = quote_rune(c);
                self.pad_string(&q);
                return;
            }
            'U' => {
                let mut s = format!("U+{:04X}", v);
                if self.f.sharp {
                    if let Some(c) = u32::try_from(v).ok().and_then(char::from_u32) {
                        if !c.is_control() {
                            s.push_str(&format!(" '{c}'"));
                        }
                    }
                }
                self.pad_string(&s);
                return;
            }
            _ => {
                self.bad_verb(arg, verb);
                return;
            }
        };
        let negative = v < 0;
        let u = v.unsigned_abs();
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                let w = self.f.wid.unwrap_or(0);
                self.write_padding(w);
                self.f.zero = old;
                return;
            }
        } else if self.f.zero && self.f.wid.is_some() {
            prec = self.f.wid.unwrap_or(0);
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut digits = match (base, upper) {
            (2, _) => format!("{u:b}"),
            (8, _) => format!("{u:o}"),
            (16, false) => format!("{u:x}"),
            (16, true) => format!("{u:X}"),
            _ => u.to_string(),
        };
        if digits.len() < prec {
            digits = "0".repeat(prec - digits.len()) + &digits;
        }
        if self.f.sharp {
            match base {
                2 => digits.insert_str(0, "0b"),
                8 if !digits.starts_with('0') => digits.insert(0, '0'),
                16 => digits.insert_str(0, if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            digits.insert_str(0, "0o");
        }
        if negative {
            digits.insert(0, '-');
        } else if self.f.plus {
            digits.insert(0, '+');
        } else if self.f.space {
            digits.insert(0, ' ');
        }
        let old = self.f.zero;
        self.f.zero = false;
        self.pad_string(&digits);
        self.f.zero = old;
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char, arg: &Val) {
        match verb {
            'v' => self.fmt_float(v, 'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(v, verb, -1),
            'f' | 'e' | 'E' | 'F' => self.fmt_float(v, verb, 6),
            _ => self.bad_verb(arg, verb),
        }
    }

    /// Go's `fmt.fmtFloat`.
    fn fmt_float(&mut self, v: f64, verb: char, default_prec: i32) {
        let prec = self.f.prec.map_or(default_prec, |p| p as i32);
        let formatted = format_float(v, verb, prec);
        let mut num = if formatted.starts_with('-') || formatted.starts_with('+') {
            formatted
        } else {
            format!("+{formatted}")
        };
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        if num[1..].starts_with('I') || num[1..].starts_with('N') {
            let old = self.f.zero;
            self.f.zero = false;
            if num[1..].starts_with('N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad_string(&num);
            self.f.zero = old;
            return;
        }
        if self.f.sharp && !num[1..].contains('.') && !num.contains('e') && !num.contains('E') {
            num.push('.');
        }
        if self.f.plus || !num.starts_with('+') {
            if let Some(wid) = self.f.wid {
                if self.f.zero && wid > num.len() {
                    self.buf.push_str(&num[..1]);
                    self.write_padding(wid - num.len());
                    self.buf.push_str(&num[1..]);
                    return;
                }
            }
            self.pad_string(&num);
            return;
        }
        let rest = num[1..].to_string();
        self.pad_string(&rest);
    }
}

/// Reads an integer width or precision argument (`*`), advancing past it.
fn int_from_arg(args: &[Val], arg_num: &mut usize) -> Option<i64> {
    let a = args.get(*arg_num)?;
    *arg_num += 1;
    match a {
        Val::Int(i) if i.unsigned_abs() <= 1_000_000 => Some(*i),
        _ => None,
    }
}

fn parse_num(b: &[u8], i: &mut usize) -> Option<usize> {
    let start = *i;
    let mut n = 0usize;
    while *i < b.len() && b[*i].is_ascii_digit() {
        if n > 1_000_000 {
            return None;
        }
        n = n * 10 + (b[*i] - b'0') as usize;
        *i += 1;
    }
    (*i > start).then_some(n)
}

/// The text a Stringer value (time, duration) prints as.
pub(crate) fn stringer(v: &Val) -> Option<String> {
    match v {
        Val::Time(ns) => Some(gotime::time_string(*ns)),
        Val::Duration(ns) => Some(gotime::duration_string(*ns)),
        _ => None,
    }
}

/// Prints a value the way an action does: pointers are dereferenced, so a sample prints
/// as `{map[..] 1}` and a time through its String method; nil prints as `<no value>`.
pub(crate) fn print_action_value(v: &Val) -> String {
    match v {
        Val::Nil => "<no value>".to_string(),
        Val::Struct(_) => {
            let mut p = Printer {
                deref: true,
                ..Printer::default()
            };
            p.print_arg(v, 'v');
            p.buf
        }
        _ => sprint(std::slice::from_ref(v)),
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`.
fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if is_printable(c) => out.push(c),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII runes.
pub(crate) fn is_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(c as u32, 0xAD | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF)
        && !(0xD800..=0xDFFF).contains(&(c as u32))
}
