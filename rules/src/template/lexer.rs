//! The lexer of Go's `text/template` (`text/template/parse/lex.go`): splits a template into
//! text and action tokens, handles the trim markers `{{- ` and ` -}}` and comments. A lexical
//! error becomes an [`Tok::Error`] token at the place it happened, so the parser reports it
//! only when it reaches it, as Go's concurrent lexer does.

/// Token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Dot,
    Field,
    Variable,
    /// A printable ASCII character with no other meaning, such as `,` or `}`.
    Char,
    CharConstant,
    Number,
    String,
    RawString,
    Bool,
    Nil,
    Pipe,
    Declare,
    Assign,
    LeftParen,
    RightParen,
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
    Eof,
    Error,
}

/// A token: its kind, its text (the message for `Error`), its byte offset and its line.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: Tok,
    pub(crate) val: String,
    pub(crate) pos: usize,
    pub(crate) line: usize,
}

impl std::fmt::Display for Token {
    /// Go's `item.String()`, used in "unexpected X in Y" messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Tok::Eof => f.write_str("EOF"),
            Tok::Error => f.write_str(&self.val),
            Tok::Block
            | Tok::Break
            | Tok::Continue
            | Tok::Define
            | Tok::Else
            | Tok::End
            | Tok::If
            | Tok::Range
            | Tok::Template
            | Tok::With => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let short: String = self.val.chars().take(10).collect();
                write!(f, "{}...", super::printf::quote(&short))
            }
            _ => f.write_str(&super::printf::quote(&self.val)),
        }
    }
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Lexes the whole input.
pub(crate) fn lex(input: &str) -> Vec<Token> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        paren_depth: 0,
        tokens: Vec::new(),
    };
    l.run();
    l.tokens
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn emit(&mut self, kind: Tok) {
        let val = self.input[self.start..self.pos].to_string();
        self.tokens.push(Token {
            kind,
            val,
            pos: self.start,
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn error(&mut self, msg: String) {
        self.tokens.push(Token {
            kind: Tok::Error,
            val: msg,
            pos: self.start,
            line: self.start_line,
        });
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    /// Reports whether the input is at a right delimiter, possibly preceded by a trim
    /// marker, and whether there is one.
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest().as_bytes();
        if r.len() >= 2 && is_space(r[0]) && r[1] == b'-' && self.rest()[2..].starts_with(RIGHT) {
            return (true, true);
        }
        (self.rest().starts_with(RIGHT), false)
    }

    fn run(&mut self) {
        loop {
            // Text up to the next left delimiter.
            let Some(off) = self.rest().find(LEFT) else {
                self.pos = self.input.len();
                if self.pos > self.start {
                    self.line += self.input[self.start..self.pos].matches('\n').count();
                    self.emit(Tok::Text);
                }
                self.emit(Tok::Eof);
                return;
            };
            let delim_pos = self.pos + off;
            let after = &self.input[delim_pos + LEFT.len()..];
            let trim =
                after.len() >= 2 && after.as_bytes()[0] == b'-' && is_space(after.as_bytes()[1]);
            let mut text_end = delim_pos;
            if trim {
                text_end = self.start
                    + self.input[self.start..delim_pos]
                        .trim_end_matches([' ', '\t', '\r', '\n'])
                        .len();
            }
            self.pos = text_end;
            if self.pos > self.start {
                self.line += self.input[self.start..self.pos].matches('\n').count();
                self.emit(Tok::Text);
            }
            self.pos = delim_pos;
            self.ignore();
            if !self.left_delim(trim) {
                return;
            }
        }
    }

    /// Lexes from a left delimiter through the matching right delimiter; returns false when
    /// lexing stopped with an error.
    fn left_delim(&mut self, trim: bool) -> bool {
        self.pos += LEFT.len();
        let after_marker = if trim { 2 } else { 0 };
        if self.input[self.pos + after_marker..].starts_with("/*") {
            self.pos += after_marker;
            self.ignore();
            return self.comment();
        }
        self.emit(Tok::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        self.inside_action()
    }

    fn comment(&mut self) -> bool {
        self.pos += 2;
        let Some(end) = self.rest().find("*/") else {
            self.error("unclosed comment".to_string());
            return false;
        };
        self.pos += end + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            self.error("comment ends before closing delimiter".to_string());
            return false;
        }
        self.ignore();
        self.pos += if trim { 2 } else { 0 } + RIGHT.len();
        if trim {
            self.skip_leading_space();
        }
        self.ignore();
        true
    }

    fn skip_leading_space(&mut self) {
        let n = self.rest().len()
            - self
                .rest()
                .trim_start_matches([' ', '\t', '\r', '\n'])
                .len();
        self.pos += n;
    }

    fn right_delim(&mut self, trim: bool) {
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += RIGHT.len();
        self.emit(Tok::RightDelim);
        if trim {
            self.skip_leading_space();
            self.ignore();
        }
    }

    fn inside_action(&mut self) -> bool {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth == 0 {
                    self.right_delim(trim);
                    return true;
                }
                self.error("unclosed left paren".to_string());
                return false;
            }
            let Some(c) = self.next() else {
                self.error("unclosed action".to_string());
                return false;
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii() && is_space(c as u8))
                    {
                        self.next();
                    }
                    // A space before "-}}" belongs to the trim marker.
                    if self.rest().starts_with("-}}") {
                        let prev = self.input[..self.pos].chars().next_back().unwrap_or(' ');
                        self.backup(prev);
                    }
                    if self.pos > self.start {
                        self.emit(Tok::Space);
                    }
                }
                '=' => self.emit(Tok::Assign),
                ':' => {
                    if self.next() != Some('=') {
                        self.error("expected :=".to_string());
                        return false;
                    }
                    self.emit(Tok::Declare);
                }
                '|' => self.emit(Tok::Pipe),
                '"' => {
                    if !self.quoted('"', Tok::String, "quoted string") {
                        return false;
                    }
                }
                '`' => {
                    let Some(end) = self.rest().find('`') else {
                        self.error("unterminated raw quoted string".to_string());
                        return false;
                    };
                    let text = &self.input[self.pos..self.pos + end];
                    self.line += text.matches('\n').count();
                    self.pos += end + 1;
                    self.emit(Tok::RawString);
                }
                '$' => {
                    if !self.field_or_variable(Tok::Variable) {
                        return false;
                    }
                }
                '\'' => {
                    if !self.quoted('\'', Tok::CharConstant, "character constant") {
                        return false;
                    }
                }
                '.' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => {
                    if !self.field_or_variable(Tok::Field) {
                        return false;
                    }
                }
                '.' | '+' | '-' | '0'..='9' => {
                    self.backup(c);
                    if !self.number() {
                        return false;
                    }
                }
                c if is_alnum(c) => {
                    while self.peek().is_some_and(is_alnum) {
                        self.next();
                    }
                    let word = &self.input[self.start..self.pos];
                    let kind = match word {
                        "block" => Tok::Block,
                        "break" => Tok::Break,
                        "continue" => Tok::Continue,
                        "define" => Tok::Define,
                        "else" => Tok::Else,
                        "end" => Tok::End,
                        "if" => Tok::If,
                        "range" => Tok::Range,
                        "nil" => Tok::Nil,
                        "template" => Tok::Template,
                        "with" => Tok::With,
                        "true" | "false" => Tok::Bool,
                        _ => Tok::Identifier,
                    };
                    if !self.at_terminator() {
                        let c = self.peek().unwrap_or(' ');
                        self.error(format!("bad character {}", go_unicode(c)));
                        return false;
                    }
                    self.emit(kind);
                }
                '(' => {
                    self.emit(Tok::LeftParen);
                    self.paren_depth += 1;
                }
                ')' => {
                    self.emit(Tok::RightParen);
                    if self.paren_depth == 0 {
                        self.error(format!("unexpected right paren {}", go_unicode(c)));
                        return false;
                    }
                    self.paren_depth -= 1;
                }
                c if c.is_ascii() && !c.is_ascii_control() => self.emit(Tok::Char),
                c => {
                    self.error(format!(
                        "unrecognized character in action: {}",
                        go_unicode(c)
                    ));
                    return false;
                }
            }
        }
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if c.is_ascii() && is_space(c as u8) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.at_right_delim().0,
        }
    }

    /// Lexes `.field` or `$var` (the `.`/`$` is consumed); a lone `.` is the dot.
    fn field_or_variable(&mut self, kind: Tok) -> bool {
        if self.at_terminator() {
            self.emit(if kind == Tok::Variable {
                Tok::Variable
            } else {
                Tok::Dot
            });
            return true;
        }
        while self.peek().is_some_and(is_alnum) {
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character {}", go_unicode(c)));
            return false;
        }
        self.emit(kind);
        true
    }

    /// Lexes a `"…"` string or `'…'` character constant up to its closing `close` (escapes
    /// skipped); a newline or the end of input first is Go's "unterminated …" error.
    fn quoted(&mut self, close: char, tok: Tok, what: &str) -> bool {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some('\n') | None => break,
                    Some(_) => {}
                },
                Some('\n') | None => break,
                Some(c) if c == close => {
                    self.emit(tok);
                    return true;
                }
                Some(_) => {}
            }
        }
        self.error(format!("unterminated {what}"));
        false
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.next();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alnum) {
            self.next();
            let text = self.input[self.start..self.pos].to_string();
            self.error(format!(
                "bad number syntax: {}",
                super::printf::quote(&text)
            ));
            return false;
        }
        self.emit(Tok::Number);
        true
    }
}

/// Go's `%#U` rendering of a rune: `U+0040 '@'`.
fn go_unicode(c: char) -> String {
    if super::printf::is_printable(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}
