//! The function table and Go's builtin template functions (`text/template/funcs.go`):
//! `and or not len index slice print printf println html js urlquery eq ne lt le gt ge call`.
//! Each function declares Go's parameter types, so the executor converts and checks
//! arguments the way Go's reflection-based `evalArg` does.

use std::rc::Rc;

use super::printf::{quote, sprint, sprintf, sprintln};
use super::prometheus;
use super::value::{GoList, Val};
use super::Env;

/// Go parameter types that matter to argument conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `interface{}` or `reflect.Value`: anything, constants keep their own type.
    Any,
    Str,
    /// Prometheus's `template.queryResult` (a list of samples).
    QueryResult,
    /// Prometheus's `*template.sample`.
    Sample,
}

impl Ty {
    /// Go's name of the type, as error messages print it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Str => "string",
            Ty::QueryResult => "template.queryResult",
            Ty::Sample => "*template.sample",
        }
    }

    /// Reports whether nil is a valid value of the type.
    pub(crate) fn can_be_nil(self) -> bool {
        matches!(self, Ty::Any | Ty::QueryResult | Ty::Sample)
    }
}

/// A function's implementation; errors are the text after "error calling NAME: ".
pub(crate) type FuncImpl = fn(&Env<'_>, Vec<Val>) -> Result<Val, String>;

/// How a function is called.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call {
    /// The short-circuiting `and`.
    And,
    /// The short-circuiting `or`.
    Or,
    Func(FuncImpl),
}

/// A template function: its name, Go signature and implementation.
#[derive(Debug)]
pub(crate) struct Func {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [Ty],
    pub(crate) variadic: Option<Ty>,
    pub(crate) call: Call,
}

const fn f(name: &'static str, params: &'static [Ty], variadic: Option<Ty>, imp: FuncImpl) -> Func {
    Func {
        name,
        params,
        variadic,
        call: Call::Func(imp),
    }
}

/// Go's builtin functions.
static BUILTINS: &[Func] = &[
    Func {
        name: "and",
        params: &[Ty::Any],
        variadic: Some(Ty::Any),
        call: Call::And,
    },
    Func {
        name: "or",
        params: &[Ty::Any],
        variadic: Some(Ty::Any),
        call: Call::Or,
    },
    f("not", &[Ty::Any], None, |_, a| Ok(Val::Bool(!a[0].truth()))),
    f("len", &[Ty::Any], None, len),
    f("index", &[Ty::Any], Some(Ty::Any), index),
    f("slice", &[Ty::Any], Some(Ty::Any), slice),
    f("print", &[], Some(Ty::Any), |_, a| Ok(Val::Str(sprint(&a)))),
    f("println", &[], Some(Ty::Any), |_, a| {
        Ok(Val::Str(sprintln(&a)))
    }),
    f("printf", &[Ty::Str], Some(Ty::Any), printf),
    f("html", &[], Some(Ty::Any), |_, a| {
        Ok(Val::Str(html_escape(&eval_args(&a))))
    }),
    f("js", &[], Some(Ty::Any), |_, a| {
        Ok(Val::Str(js_escape(&eval_args(&a))))
    }),
    f("urlquery", &[], Some(Ty::Any), |_, a| {
        Ok(Val::Str(query_escape(&eval_args(&a))))
    }),
    f("eq", &[Ty::Any], Some(Ty::Any), eq),
    f("ne", &[Ty::Any, Ty::Any], None, |e, a| match eq(e, a)? {
        Val::Bool(b) => Ok(Val::Bool(!b)),
        v => Ok(v),
    }),
    f("lt", &[Ty::Any, Ty::Any], None, |_, a| {
        lt(&a[0], &a[1]).map(Val::Bool)
    }),
    f("le", &[Ty::Any, Ty::Any], None, |_, a| {
        Ok(Val::Bool(lt(&a[0], &a[1])? || equal(&a[0], &a[1])?))
    }),
    f("gt", &[Ty::Any, Ty::Any], None, |_, a| {
        Ok(Val::Bool(!lt(&a[0], &a[1])? && !equal(&a[0], &a[1])?))
    }),
    f("ge", &[Ty::Any, Ty::Any], None, |_, a| {
        Ok(Val::Bool(!lt(&a[0], &a[1])?))
    }),
    f("call", &[Ty::Any], Some(Ty::Any), |_, a| match &a[0] {
        Val::Nil => Err("call of nil".to_string()),
        v => Err(format!("non-function of type {}", v.type_name())),
    }),
];

/// Looks a function up by name: builtins first, then Prometheus's functions.
pub(crate) fn lookup(name: &str) -> Option<&'static Func> {
    BUILTINS
        .iter()
        .chain(prometheus::FUNCS.iter())
        .find(|f| f.name == name)
}

/// Reports whether `name` is a known function (checked at parse time, as Go does).
pub(crate) fn is_defined(name: &str) -> bool {
    lookup(name).is_some()
}

fn printf(_: &Env<'_>, mut a: Vec<Val>) -> Result<Val, String> {
    let Val::Str(format) = a.remove(0) else {
        return Err("printf needs a format string".into());
    };
    Ok(Val::Str(sprintf(&format, &a)))
}

fn len(_: &Env<'_>, a: Vec<Val>) -> Result<Val, String> {
    match &a[0] {
        Val::Str(s) => Ok(Val::Int(s.len() as i64)),
        Val::List(l) => Ok(Val::Int(l.items.len() as i64)),
        Val::Map(m) => Ok(Val::Int(m.entries.len() as i64)),
        Val::Nil => Err("len of untyped nil".to_string()),
        v => Err(format!("len of type {}", v.type_name())),
    }
}

/// Converts an index argument, as Go's `indexArg`.
fn index_arg(i: &Val, cap: usize) -> Result<usize, String> {
    let x = match i {
        Val::Int(x) => *x,
        Val::Nil => return Err("cannot index slice/array with nil".to_string()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ))
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(_: &Env<'_>, a: Vec<Val>) -> Result<Val, String> {
    let mut item = a[0].clone();
    if let Val::Nil = item {
        return Err("index of untyped nil".to_string());
    }
    for i in &a[1..] {
        item = match &item {
            Val::List(l) => {
                let x = index_arg(i, l.items.len())?;
                l.items
                    .get(x)
                    .cloned()
                    .ok_or_else(|| format!("index out of range: {x}"))?
            }
            Val::Str(s) => {
                let x = index_arg(i, s.len())?;
                Val::Int(
                    *s.as_bytes()
                        .get(x)
                        .ok_or_else(|| format!("index out of range: {x}"))?
                        as i64,
                )
            }
            Val::Map(m) => {
                let Val::Str(k) = i else {
                    return Err(format!(
                        "value has type {}; should be string",
                        i.type_name()
                    ));
                };
                match m.entries.get(k) {
                    Some(v) => v.clone(),
                    None if m.string_elems => Val::Str(String::new()),
                    None => Val::Nil,
                }
            }
            Val::Nil => return Err("index of nil pointer".to_string()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn slice(_: &Env<'_>, a: Vec<Val>) -> Result<Val, String> {
    let item = &a[0];
    let idx_args = &a[1..];
    if idx_args.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx_args.len()));
    }
    let len = match item {
        Val::Nil => return Err("slice of untyped nil".to_string()),
        Val::Str(s) => {
            if idx_args.len() == 3 {
                return Err("cannot 3-index slice a string".to_string());
            }
            s.len()
        }
        Val::List(l) => l.items.len(),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    let mut idx = [0, len, len];
    for (n, i) in idx_args.iter().enumerate() {
        idx[n] = index_arg(i, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if idx_args.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Val::Str(s) => {
            Val::Str(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Val::List(l) => Val::List(Rc::new(GoList {
            query_result: l.query_result,
            items: l.items[idx[0]..idx[1]].to_vec(),
        })),
        _ => unreachable!("checked above"),
    })
}

/// The argument string of `html`, `js` and `urlquery` (Go's `evalArgs`).
fn eval_args(a: &[Val]) -> String {
    if let [Val::Str(s)] = a {
        return s.clone();
    }
    let printable: Vec<Val> = a
        .iter()
        .map(|v| match v {
            Val::Nil => Val::Str("<no value>".to_string()),
            v => v.clone(),
        })
        .collect();
    sprint(&printable)
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || super::printf::is_printable(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The basic kinds Go's comparison functions know.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
    Nil,
}

fn kind(v: &Val) -> Kind {
    match v {
        Val::Bool(_) => Kind::Bool,
        Val::Int(_) => Kind::Int,
        Val::Float(_) => Kind::Float,
        Val::Str(_) => Kind::Str,
        Val::Nil => Kind::Nil,
        _ => Kind::Other,
    }
}

/// Go's `eq` for two values.
fn equal(a: &Val, b: &Val) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        if ka != Kind::Nil && kb != Kind::Nil {
            return Err("incompatible types for comparison".to_string());
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Float(x), Val::Float(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Nil, Val::Nil) => true,
        (Val::Time(x), Val::Time(y)) | (Val::Duration(x), Val::Duration(y)) => x == y,
        (Val::Struct(x), Val::Struct(y)) if x.kind == y.kind => Rc::ptr_eq(x, y),
        (x @ (Val::List(_) | Val::Map(_)), _) => {
            return Err(format!(
                "non-comparable type {}: {}",
                sprint(std::slice::from_ref(x)),
                x.type_name()
            ));
        }
        (x, y) => {
            return Err(format!(
                "non-comparable types {}: {}, {}: {}",
                sprint(std::slice::from_ref(x)),
                x.type_name(),
                y.type_name(),
                sprint(std::slice::from_ref(y))
            ));
        }
    })
}

fn eq(_: &Env<'_>, a: Vec<Val>) -> Result<Val, String> {
    if a.len() < 2 {
        return Err("missing argument for comparison".to_string());
    }
    for b in &a[1..] {
        if equal(&a[0], b)? {
            return Ok(Val::Bool(true));
        }
    }
    Ok(Val::Bool(false))
}

/// Go's `lt`.
fn lt(a: &Val, b: &Val) -> Result<bool, String> {
    let bad_type = || "invalid type for comparison".to_string();
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Other | Kind::Nil) || matches!(kb, Kind::Other | Kind::Nil) {
        return Err(bad_type());
    }
    if ka != kb {
        return Err("incompatible types for comparison".to_string());
    }
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Ok(x < y),
        (Val::Float(x), Val::Float(y)) => Ok(x < y),
        (Val::Str(x), Val::Str(y)) => Ok(x < y),
        _ => Err(bad_type()),
    }
}

/// Quotes a string as Go's `%q` does; shared with the Prometheus functions.
pub(crate) fn go_quote(s: &str) -> String {
    quote(s)
}
