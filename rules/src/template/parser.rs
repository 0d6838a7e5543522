//! The parser of Go's `text/template` (`text/template/parse/parse.go` and `node.go`): turns
//! tokens into a tree of nodes, one tree per template (the main one plus every `define` and
//! `block`). Like Go, it rejects unknown function names and undeclared variables at parse
//! time. Node `Display` implementations print Go's `Node.String()`, which execution errors
//! quote as their context (`at <humanize "x">`).

use std::collections::HashMap;
use std::fmt;

use super::funcs;
use super::lexer::{lex, Tok, Token};

/// A node of a template's list.
#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// The common shape of `if`, `range` and `with`.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

/// A pipeline with its optional variable declarations.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Command>,
}

/// One command of a pipeline: a function, a method or field chain, or an operand.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

/// A number literal: Go's `NumberNode`, reduced to what execution needs.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) int: Option<i64>,
    pub(crate) float: Option<f64>,
    pub(crate) is_char: bool,
}

/// An operand.
#[derive(Debug)]
pub(crate) enum Arg {
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    /// `.a.b`: the field names without dots.
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.a.b`: `idents[0]` is the variable with its `$`.
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    /// `(pipe).a.b` or another term followed by fields.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Number,
    },
    Str {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number { num, .. } => f.write_str(&num.text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parse error: the line it was found on and Go's message.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) msg: String,
}

/// The parsed trees: the main template under its name plus every defined template.
pub(crate) type Trees = HashMap<String, Vec<Node>>;

/// Parses `text`; the main tree is stored under `name`.
pub(crate) fn parse(name: &str, text: &str) -> Result<Trees, ParseError> {
    let mut p = Parser {
        tokens: lex(text),
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        trees: HashMap::new(),
    };
    let mut root = Vec::new();
    while p.peek().kind != Tok::Eof {
        if p.peek().kind == Tok::LeftDelim {
            let save = p.i;
            p.next();
            if p.next_non_space().kind == Tok::Define {
                p.parse_definition()?;
                continue;
            }
            p.i = save;
        }
        match p.text_or_action()? {
            Item::Node(n) => root.push(n),
            Item::End => return Err(p.err_line(p.tok().line, "unexpected {{end}}".to_string())),
            Item::Else(..) => {
                return Err(p.err_line(p.tok().line, "unexpected {{else}}".to_string()))
            }
        }
    }
    // As Go's Tree.add: a main template that is only whitespace does not replace a
    // definition of the same name.
    let empty = root
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
    if !(empty && p.trees.contains_key(name)) {
        p.trees.insert(name.to_string(), root);
    }
    Ok(p.trees)
}

/// What `textOrAction` returns: a node or one of the list terminators.
enum Item {
    Node(Node),
    End,
    /// `{{else}}`, with the keyword that follows it (`if`/`with`) if any.
    Else(Option<Tok>),
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    trees: Trees,
}

impl Parser {
    fn tok(&self) -> &Token {
        &self.tokens[self.i.saturating_sub(1).min(self.tokens.len() - 1)]
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.i.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.i.min(self.tokens.len() - 1)].clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn backup(&mut self) {
        self.i -= 1;
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.kind != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn err_line(&self, line: usize, msg: String) -> ParseError {
        ParseError { line, msg }
    }

    /// An error at the current token; a lexical error token reports its own message.
    fn err(&self, msg: String) -> ParseError {
        ParseError {
            line: self.tok().line,
            msg,
        }
    }

    fn unexpected(&self, t: &Token, context: &str) -> ParseError {
        if t.kind == Tok::Error {
            return self.err_line(t.line, t.val.clone());
        }
        self.err_line(t.line, format!("unexpected {t} in {context}"))
    }

    fn expect(&mut self, kind: Tok, context: &str) -> Result<Token, ParseError> {
        let t = self.next_non_space();
        if t.kind != kind {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn parse_definition(&mut self) -> Result<(), ParseError> {
        let context = "define clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        self.expect(Tok::RightDelim, context)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        if let Item::Else(..) = end {
            return Err(self.err("unexpected {{else}} in define clause".to_string()));
        }
        self.add_tree(name, list);
        Ok(())
    }

    fn add_tree(&mut self, name: String, list: Vec<Node>) {
        let empty = list
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if !(empty && self.trees.contains_key(&name)) {
            self.trees.insert(name, list);
        }
    }

    fn template_name(&self, t: &Token, context: &str) -> Result<String, ParseError> {
        match t.kind {
            Tok::String | Tok::RawString => {
                unquote(&t.val).ok_or_else(|| self.err_line(t.line, "invalid syntax".into()))
            }
            _ => Err(self.unexpected(t, context)),
        }
    }

    /// Parses nodes up to `{{end}}` or `{{else}}`, which it returns.
    fn item_list(&mut self) -> Result<(Vec<Node>, Item), ParseError> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Tok::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        let t = self.peek_non_space();
        Err(self.err_line(t.line, "unexpected EOF".to_string()))
    }

    fn text_or_action(&mut self) -> Result<Item, ParseError> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Text => Ok(Item::Node(Node::Text(t.val))),
            Tok::LeftDelim => self.action(),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> Result<Item, ParseError> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Block => return self.block_control().map(Item::Node),
            Tok::Break | Tok::Continue => {
                let word = if t.kind == Tok::Break {
                    "break"
                } else {
                    "continue"
                };
                let n = self.next_non_space();
                if n.kind != Tok::RightDelim {
                    return Err(self.unexpected(&n, &format!("{{{{{word}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(
                        self.err_line(t.line, format!("{{{{{word}}}}} outside {{{{range}}}}"))
                    );
                }
                return Ok(Item::Node(if t.kind == Tok::Break {
                    Node::Break
                } else {
                    Node::Continue
                }));
            }
            Tok::Else => {
                let peek = self.peek_non_space();
                if peek.kind == Tok::If || peek.kind == Tok::With {
                    return Ok(Item::Else(Some(peek.kind)));
                }
                self.expect(Tok::RightDelim, "else")?;
                return Ok(Item::Else(None));
            }
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Item::End);
            }
            Tok::If => return self.control(Tok::If).map(Item::Node),
            Tok::Range => return self.control(Tok::Range).map(Item::Node),
            Tok::With => return self.control(Tok::With).map(Item::Node),
            Tok::Template => return self.template_control().map(Item::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Tok::RightDelim)?;
        Ok(Item::Node(Node::Action(pipe)))
    }

    /// Parses `if`, `range` or `with` after its keyword; `else if` and `else with` chain.
    fn control(&mut self, kind: Tok) -> Result<Node, ParseError> {
        let context = match kind {
            Tok::If => "if",
            Tok::Range => "range",
            _ => "with",
        };
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if kind == Tok::Range {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if kind == Tok::Range {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        match next {
            Item::End => {}
            Item::Else(follow) => {
                if kind != Tok::Range && follow == Some(kind) {
                    // "{{else if b}}" is "{{else}}{{if b}}..{{end}}{{end}}" with one {{end}}.
                    self.next_non_space();
                    else_list = Some(vec![self.control(kind)?]);
                } else {
                    if follow.is_some() {
                        // "{{else with}}" after an if, or the like: Go expects "}}".
                        let t = self.next_non_space();
                        return Err(self.unexpected(&t, "else"));
                    }
                    let (l, next) = self.item_list()?;
                    if let Item::Else(..) = next {
                        return Err(self.err("expected end; found {{else}}".to_string()));
                    }
                    else_list = Some(l);
                }
            }
            Item::Node(_) => unreachable!("item_list returns only terminators"),
        }
        self.vars.truncate(nvars);
        let branch = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind {
            Tok::If => Node::If(branch),
            Tok::Range => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    fn template_control(&mut self) -> Result<Node, ParseError> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = if self.next_non_space().kind != Tok::RightDelim {
            self.backup();
            Some(self.pipeline(context, Tok::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe,
        })
    }

    fn block_control(&mut self) -> Result<Node, ParseError> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_depth = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        self.range_depth = saved_depth;
        if let Item::Else(..) = end {
            return Err(self.err(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add_tree(name.clone(), list);
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe, ParseError> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations or assignments.
        loop {
            let v = self.peek_non_space();
            if v.kind != Tok::Variable {
                break;
            }
            let save = self.i;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.kind {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.kind == Tok::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                }
                Tok::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Tok::Variable | Tok::RightDelim | Tok::RightParen => continue,
                            _ => {
                                return Err(
                                    self.err("range can only initialize variables".to_string())
                                )
                            }
                        }
                    }
                    return Err(self.err(format!("too many declarations in {context}")));
                }
                _ => self.i = save,
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            match t.kind {
                k if k == end => {
                    if pipe.cmds.is_empty() {
                        return Err(self.err(format!("missing value for {context}")));
                    }
                    for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                        if matches!(
                            c.args[0],
                            Arg::Bool { .. }
                                | Arg::Dot { .. }
                                | Arg::Nil { .. }
                                | Arg::Number { .. }
                                | Arg::Str { .. }
                        ) {
                            return Err(self.err(format!(
                                "non executable command in pipeline stage {}",
                                i + 1
                            )));
                        }
                    }
                    return Ok(pipe);
                }
                Tok::Bool
                | Tok::CharConstant
                | Tok::Dot
                | Tok::Field
                | Tok::Identifier
                | Tok::Number
                | Tok::Nil
                | Tok::RawString
                | Tok::String
                | Tok::Variable
                | Tok::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let t = self.next();
            match t.kind {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.err("empty command".to_string()));
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Tok::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Tok::Field {
            fields.push(self.next().val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field {
                    pos: chain_pos,
                    idents,
                }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable {
                    pos: chain_pos,
                    idents,
                }
            }
            Arg::Bool { .. }
            | Arg::Str { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.err(format!(
                    "unexpected . after term {}",
                    super::printf::quote(&node.to_string())
                )));
            }
            node => Arg::Chain {
                pos: chain_pos,
                node: Box::new(node),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let t = self.next_non_space();
        let pos = t.pos;
        Ok(Some(match t.kind {
            Tok::Identifier => {
                if !funcs::is_defined(&t.val) {
                    return Err(self.err_line(
                        t.line,
                        format!("function {} not defined", super::printf::quote(&t.val)),
                    ));
                }
                Arg::Identifier { pos, name: t.val }
            }
            Tok::Dot => Arg::Dot { pos },
            Tok::Nil => Arg::Nil { pos },
            Tok::Variable => {
                if !self.vars.contains(&t.val) {
                    return Err(self.err_line(
                        t.line,
                        format!("undefined variable {}", super::printf::quote(&t.val)),
                    ));
                }
                Arg::Variable {
                    pos,
                    idents: vec![t.val],
                }
            }
            Tok::Field => Arg::Field {
                pos,
                idents: vec![t.val[1..].to_string()],
            },
            Tok::Bool => Arg::Bool {
                pos,
                val: t.val == "true",
            },
            Tok::CharConstant | Tok::Number => {
                let num = parse_number(&t.val, t.kind == Tok::CharConstant)
                    .map_err(|m| self.err_line(t.line, m))?;
                Arg::Number { pos, num }
            }
            Tok::LeftParen => Arg::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", Tok::RightParen)?,
            )),
            Tok::String | Tok::RawString => {
                let text = unquote(&t.val)
                    .ok_or_else(|| self.err_line(t.line, "invalid syntax".to_string()))?;
                Arg::Str {
                    pos,
                    quoted: t.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// Go's `parse.newNumber`: char constants, integers (with base prefixes and `_`) and floats.
fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    if is_char {
        let inner =
            unquote_char(text).ok_or_else(|| format!("malformed character constant: {text}"))?;
        let v = inner as i64;
        return Ok(Number {
            text: text.to_string(),
            int: Some(v),
            float: Some(v as f64),
            is_char: true,
        });
    }
    let illegal = || format!("illegal number syntax: {}", super::printf::quote(text));
    if text.ends_with('i') {
        return Err(illegal());
    }
    let int = parse_int(text);
    if let Some(i) = int {
        return Ok(Number {
            text: text.to_string(),
            int: Some(i),
            float: Some(i as f64),
            is_char: false,
        });
    }
    let is_hex = text.trim_start_matches(['+', '-']).starts_with("0x")
        || text.trim_start_matches(['+', '-']).starts_with("0X");
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    match cleaned.parse::<f64>() {
        Ok(f) if f.is_finite() && !is_hex => {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(format!("integer overflow: {}", super::printf::quote(text)));
            }
            let int = (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64);
            Ok(Number {
                text: text.to_string(),
                int,
                float: Some(f),
                is_char: false,
            })
        }
        _ => Err(illegal()),
    }
}

/// `strconv.ParseInt(text, 0, 64)`.
fn parse_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty() || digits.starts_with('_') && radix == 10 {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    let u = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            return Some((u as i128).wrapping_neg() as i64);
        }
        return None;
    }
    i64::try_from(u).ok()
}

/// Go's `strconv.Unquote` for double-quoted and raw strings.
pub(crate) fn unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`') {
        return Some(raw.strip_suffix('`')?.replace('\r', ""));
    }
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            let c = inner[i..].chars().next()?;
            if c == '"' {
                return None;
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            i += c.len_utf8();
            continue;
        }
        i += 1;
        let e = *b.get(i)?;
        i += 1;
        match e {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'x' => {
                out.push(u8::from_str_radix(inner.get(i..i + 2)?, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let v = u32::from_str_radix(inner.get(i - 1..i + 2)?, 8).ok()?;
                out.push(u8::try_from(v).ok()?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = u32::from_str_radix(inner.get(i..i + n)?, 16).ok()?;
                let c = char::from_u32(v)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Unquotes a Go character literal such as `'a'`, `'\n'` or `'\u00e9'`.
fn unquote_char(s: &str) -> Option<char> {
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    if inner == "\"" {
        return Some('"');
    }
    if inner == "\\'" {
        return Some('\'');
    }
    if inner.starts_with('\\') {
        let u = unquote(&format!("\"{inner}\""))?;
        let mut it = u.chars();
        let c = it.next()?;
        return it.next().is_none().then_some(c);
    }
    let mut it = inner.chars();
    let c = it.next()?;
    (it.next().is_none() && c != '\'').then_some(c)
}
