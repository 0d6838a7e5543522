//! Source positions for annotations: the `(line:col)` Prometheus appends to a warning or info,
//! which points at the expression it is about (a function's argument, an aggregation's
//! parameter, a whole call).
//!
//! promql-parser keeps no source positions, so they are recovered from the query text: a
//! scan of the tokens (the pre-rewrites' lexer) finds every function call (`name(`) and aggregation (`sum by (…) (`) with the
//! byte offsets where each of its arguments starts, and a walk of the AST pairs the k-th call
//! of a name in the tree (in source order) with the k-th call of that name in the text. Nodes
//! are identified by address, so the map is valid for the tree it was built from. When the
//! scanner and the tree disagree on the number of calls of a name, that name gets no
//! positions rather than wrong ones.

use std::collections::HashMap;

use promql_parser::parser::{Call, Expr};

use crate::rewrite::{lex, Kind, Tok};

/// Aggregation operators (case-insensitive in PromQL).
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// One call or aggregation in the text: where it starts and where each argument starts.
#[derive(Debug, Clone)]
struct Site {
    start: usize,
    args: Vec<usize>,
}

/// The argument starts of the parenthesised list opening at token `open`.
fn arg_starts(toks: &[Tok], open: usize) -> Vec<usize> {
    let mut args = Vec::new();
    let mut depth = 0;
    let mut expect_arg = true;
    for tok in &toks[open..] {
        match tok.kind {
            Kind::Punct(b'(' | b'[' | b'{') => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            Kind::Punct(b')' | b']' | b'}') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Kind::Punct(b',') if depth == 1 => {
                expect_arg = true;
                continue;
            }
            _ => {}
        }
        if expect_arg {
            args.push(tok.start);
            expect_arg = false;
        }
    }
    args
}

/// Every call and aggregation in the text, by lower-cased name, in source order.
fn sites(text: &str) -> HashMap<String, Vec<Site>> {
    let toks = lex(text);
    let word = |i: usize| -> Option<String> {
        let t = toks.get(i)?;
        (t.kind == Kind::Ident && !t.in_braces).then(|| text[t.start..t.end].to_ascii_lowercase())
    };
    let is_open_paren = |i: usize| toks.get(i).is_some_and(|t| t.kind == Kind::Punct(b'('));
    let mut out: HashMap<String, Vec<Site>> = HashMap::new();
    for i in 0..toks.len() {
        let Some(name) = word(i) else { continue };
        let after_at = i > 0 && toks[i - 1].kind == Kind::Punct(b'@');
        let open = if AGGREGATIONS.contains(&name.as_str()) {
            // `op (…)`, or `op by|without (labels) (…)`.
            match word(i + 1).as_deref() {
                Some("by" | "without") if is_open_paren(i + 2) => {
                    let close = (i + 2..toks.len()).find(|&j| toks[j].kind == Kind::Punct(b')'));
                    close.map(|j| j + 1).filter(|&j| is_open_paren(j))
                }
                _ => Some(i + 1).filter(|&j| is_open_paren(j)),
            }
        } else if !after_at {
            // Keywords before a parenthesis (`by (`, `on (`, `bool (`) are recorded too, but
            // no function has their names, so the tree never asks for them.
            Some(i + 1).filter(|&j| is_open_paren(j))
        } else {
            None
        };
        if let Some(open) = open {
            out.entry(name).or_default().push(Site {
                start: toks[i].start,
                args: arg_starts(&toks, open),
            });
        }
    }
    out
}

/// Byte offsets of the nodes annotations point at, keyed by node address.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    at: HashMap<usize, usize>,
}

/// A node's address, the key of [`Positions`].
pub(crate) fn key<T>(node: &T) -> usize {
    node as *const T as usize
}

impl Positions {
    /// Positions for the nodes of `expr`, parsed from `text`.
    pub fn new(text: &str, expr: &Expr) -> Positions {
        let mut found = sites(text);
        let mut walk = Walk::default();
        walk.visit(expr);
        let mut at = HashMap::new();
        for (name, nodes) in walk.by_name {
            let Some(sites) = found.remove(&name) else {
                continue;
            };
            if sites.len() != nodes.len() {
                continue;
            }
            for (node, site) in nodes.into_iter().zip(sites) {
                if node.args.len() != site.args.len() {
                    continue;
                }
                at.insert(node.call, site.start);
                for (arg, start) in node.args.into_iter().zip(site.args) {
                    at.insert(arg, start);
                }
            }
        }
        Positions { at }
    }

    /// The byte offset where `node` starts, if known.
    pub fn offset(&self, node: usize) -> Option<usize> {
        self.at.get(&node).copied()
    }
}

/// Whether a quoted literal of the query text (quotes included) stands for valid UTF-8 under
/// Go's rules, where `\xNN` and `\NNN` are single bytes. promql-parser decodes them as code
/// points instead (`"\xff"` becomes `ÿ`), so a label name Prometheus refuses as invalid UTF-8
/// would otherwise pass; see [`invalid_utf8_literal`].
pub(crate) fn literal_is_utf8(lit: &str) -> bool {
    let b = lit.as_bytes();
    if b.len() < 2 || b[0] == b'`' {
        return true;
    }
    let body = &b[1..b.len() - 1];
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' || i + 1 >= body.len() {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let c = body[i + 1];
        let hex = |from: usize, n: usize| -> Option<u32> {
            let digits = std::str::from_utf8(body.get(from..from + n)?).ok()?;
            u32::from_str_radix(digits, 16).ok()
        };
        match c {
            b'x' => {
                if let Some(v) = hex(i + 2, 2) {
                    out.push(v as u8);
                }
                i += 4;
            }
            b'0'..=b'7' => {
                let v = std::str::from_utf8(body.get(i + 1..i + 4).unwrap_or_default())
                    .ok()
                    .and_then(|d| u32::from_str_radix(d, 8).ok());
                if let Some(v) = v {
                    out.push(v as u8);
                }
                i += 4;
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                if let Some(ch) = hex(i + 2, n).and_then(char::from_u32) {
                    out.extend_from_slice(ch.to_string().as_bytes());
                }
                i += 2 + n;
            }
            _ => {
                out.push(b'.');
                i += 2;
            }
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// Whether `value` came from a quoted literal of `text` that is not valid UTF-8 under Go's
/// rules (see [`literal_is_utf8`]).
pub(crate) fn invalid_utf8_literal(text: &str, value: &str) -> bool {
    lex(text).iter().any(|t| {
        let lit = &text[t.start..t.end];
        t.kind == Kind::Str
            && !literal_is_utf8(lit)
            && promql_parser::util::unquote_string(lit).is_ok_and(|v| v == value)
    })
}

/// Prometheus's `line:col` of a byte offset (both from 1; the column counts bytes).
pub(crate) fn line_col(text: &str, offset: usize) -> String {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let col = match before.iter().rposition(|&c| c == b'\n') {
        Some(nl) => offset - nl,
        None => offset + 1,
    };
    format!("{line}:{col}")
}

/// A call or aggregation node: its own address and its arguments' (an aggregation's only
/// argument here is its parameter, then its expression).
struct Node {
    call: usize,
    args: Vec<usize>,
}

#[derive(Default)]
struct Walk {
    by_name: HashMap<String, Vec<Node>>,
}

impl Walk {
    /// Visits in source order: a node before its children, children left to right.
    fn visit(&mut self, e: &Expr) {
        match e {
            Expr::Aggregate(a) => {
                let name = a.op.to_string().to_ascii_lowercase();
                let mut args = Vec::new();
                if let Some(p) = &a.param {
                    args.push(key::<Expr>(p));
                }
                args.push(key::<Expr>(&a.expr));
                self.by_name
                    .entry(name)
                    .or_default()
                    .push(Node { call: key(a), args });
                if let Some(p) = &a.param {
                    self.visit(p);
                }
                self.visit(&a.expr);
            }
            Expr::Call(c) => {
                self.by_name
                    .entry(c.func.name.to_ascii_lowercase())
                    .or_default()
                    .push(Node {
                        call: key::<Call>(c),
                        args: c.args.args.iter().map(|a| key::<Expr>(a)).collect(),
                    });
                for a in &c.args.args {
                    self.visit(a);
                }
            }
            Expr::Unary(u) => self.visit(&u.expr),
            Expr::Binary(b) => {
                self.visit(&b.lhs);
                self.visit(&b.rhs);
            }
            Expr::Paren(p) => self.visit(&p.expr),
            Expr::Subquery(s) => self.visit(&s.expr),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_arg(e: &Expr, i: usize) -> usize {
        match e {
            Expr::Call(c) => key::<Expr>(&c.args.args[i]),
            Expr::Aggregate(a) if i == 0 => key::<Expr>(a.param.as_ref().unwrap()),
            Expr::Aggregate(a) => key::<Expr>(&a.expr),
            Expr::Paren(p) => call_arg(&p.expr, i),
            other => panic!("not a call: {other:?}"),
        }
    }

    fn pos(text: &str, pick: impl Fn(&Expr) -> usize) -> Option<String> {
        let e = promql_parser::parser::parse(text).unwrap();
        let p = Positions::new(text, &e);
        p.offset(pick(&e)).map(|o| line_col(text, o))
    }

    #[test]
    fn literals_are_utf8_as_go_decodes_them() {
        for (lit, ok) in [
            (r#""plain""#, true),
            (r#""\xff""#, false),
            (r#""\377""#, false),
            (r#""\xc3\xa9""#, true),
            (r#""\u00ff""#, true),
            (r#"'a\'b'"#, true),
            ("`\\xff`", true),
        ] {
            assert_eq!(literal_is_utf8(lit), ok, "{lit}");
        }
        assert!(invalid_utf8_literal(
            r#"label_replace(x, "\xff", "", "a", "")"#,
            "ÿ"
        ));
        assert!(!invalid_utf8_literal(
            r#"label_replace(x, "ÿ", "", "a", "")"#,
            "ÿ"
        ));
    }

    #[test]
    fn arguments_of_calls_and_aggregations() {
        assert_eq!(
            pos(
                "histogram_quantile(0.5, nonmonotonic_bucket)",
                |e| call_arg(e, 1)
            )
            .as_deref(),
            Some("1:25")
        );
        assert_eq!(
            pos("rate(x[5m])", |e| call_arg(e, 0)).as_deref(),
            Some("1:6")
        );
        assert_eq!(
            pos("QUANTILE by (sum) (1.5, x)", |e| call_arg(e, 0)).as_deref(),
            Some("1:20")
        );
        assert_eq!(
            pos("quantile(\n  2, x) by (a)", |e| call_arg(e, 0)).as_deref(),
            Some("2:3")
        );
        // The second of two calls of one name, after a string holding `rate(`.
        let text = r#"rate(x{a="rate("}[5m]) + rate( (y[5m]) )"#;
        let e = promql_parser::parser::parse(text).unwrap();
        let p = Positions::new(text, &e);
        let Expr::Binary(b) = &e else { panic!() };
        let rhs = p.offset(call_arg(&b.rhs, 0)).unwrap();
        assert_eq!(line_col(text, rhs), "1:32");
        // `@ start()` and grouping keywords are not calls.
        assert_eq!(
            pos("sort(x @ start()) + on (a) group_left (b) y", |e| match e {
                Expr::Binary(b) => call_arg(&b.lhs, 0),
                _ => panic!(),
            })
            .as_deref(),
            Some("1:6")
        );
    }
}
