//! Source positions for rule-file errors.
//!
//! serde_yaml reports line and column for syntax errors but keeps no positions in the values
//! it builds, and a rule-file error must say where the offending rule is (`rules.yml:12:15:
//! group "api", rule 2, "HighLatency": …`). This module scans the text of a block-style YAML
//! document once and records where every mapping key and sequence item starts, keyed by path
//! (`groups.0.rules.1.expr`). It understands what rule files are written in: block mappings,
//! block sequences (`- key: v`), quoted and plain keys, comments, and block or multi-line
//! scalars (whose continuation lines it skips). Flow collections (`{a: b}`) are opaque: a path
//! inside one resolves to the key that holds it, so an error there still names a line.

use std::collections::HashMap;

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where each key's value and each sequence item starts, by dotted path.
#[derive(Debug, Default)]
pub struct Positions {
    at: HashMap<String, Pos>,
}

impl Positions {
    /// The position of `path`, or of its nearest recorded ancestor.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.at.get(p) {
                return Some(*pos);
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

/// A container being filled while scanning: its indentation and path.
struct Frame {
    /// Column (0-based) of this container's keys or dashes.
    indent: usize,
    path: String,
    /// For sequences, the index the next item gets.
    next_item: Option<usize>,
}

/// Scans `text` and records the position of every key and sequence item.
pub fn scan(text: &str) -> Positions {
    let mut out = Positions::default();
    let mut stack: Vec<Frame> = vec![Frame {
        indent: 0,
        path: String::new(),
        next_item: None,
    }];
    // While Some(n), lines indented deeper than n continue a scalar and are skipped.
    let mut scalar_above: Option<usize> = None;
    // The key whose value is still to come on a deeper line (`rules:` then `- …`).
    let mut open_key: Option<(usize, String)> = None;

    for (lineno, raw) in text.lines().enumerate() {
        let line = lineno + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") {
            continue;
        }
        if let Some(n) = scalar_above {
            if indent > n {
                continue;
            }
            scalar_above = None;
        }
        let mut col = indent;
        let mut rest = trimmed;
        // A key opened on an earlier line owns what is indented under it (or, for a
        // sequence, dashes at its own indentation, as YAML allows).
        if let Some((kind, path)) = open_key.take() {
            let is_dash = rest.starts_with("- ") || rest == "-";
            if col > kind || (is_dash && col == kind) {
                stack.push(Frame {
                    indent: col,
                    path,
                    next_item: is_dash.then_some(0),
                });
            }
        }
        loop {
            while stack.len() > 1 && stack.last().is_some_and(|f| f.indent > col) {
                stack.pop();
            }
            let is_dash = rest.starts_with("- ") || rest == "-";
            if !is_dash {
                break;
            }
            // A dash at this indentation is an item of the sequence here; a mapping
            // frame at the same indentation ends (its keys cannot share a column with
            // a sequence that is not theirs).
            if let Some(f) = stack.last() {
                if f.indent == col && f.next_item.is_none() && stack.len() > 1 {
                    stack.pop();
                }
            }
            let top = stack.last_mut().expect("root frame stays");
            let idx = match top.next_item.as_mut() {
                Some(n) if top.indent == col => {
                    let i = *n;
                    *n += 1;
                    i
                }
                _ => break,
            };
            let path = join(&top.path, &idx.to_string());
            out.at.insert(
                path.clone(),
                Pos {
                    line,
                    column: col + 1,
                },
            );
            let after = &rest[1..];
            let skip = after.len() - after.trim_start().len();
            col += 1 + skip;
            rest = after.trim_start();
            if rest.is_empty() {
                open_key = Some((col - 1 - skip, path));
                break;
            }
            // The item's contents start at `col`: a mapping or a nested sequence.
            stack.push(Frame {
                indent: col,
                path,
                next_item: (rest.starts_with("- ") || rest == "-").then_some(0),
            });
        }
        if rest.is_empty() || rest.starts_with("- ") || rest == "-" {
            continue;
        }
        let Some((key, value_off)) = split_key(rest) else {
            // A plain scalar line (e.g. a multi-line value): everything under it continues it.
            scalar_above = Some(col.saturating_sub(1));
            continue;
        };
        let parent = stack
            .last()
            .map(|f| f.path.clone())
            .expect("root frame stays");
        let path = join(&parent, &key);
        let value = rest[value_off..].trim_start();
        let value_col = col + value_off + (rest[value_off..].len() - value.len());
        out.at.insert(
            path.clone(),
            Pos {
                line,
                column: value_col + 1,
            },
        );
        let value = strip_comment(value);
        if value.is_empty() {
            open_key = Some((col, path));
        } else {
            // An inline value; deeper lines continue it (block scalars, folded plain text).
            scalar_above = Some(col);
        }
    }
    out
}

fn join(parent: &str, seg: &str) -> String {
    if parent.is_empty() {
        seg.to_string()
    } else {
        format!("{parent}.{seg}")
    }
}

/// Splits `key: value` (plain or quoted key); returns the key and the offset after the colon.
fn split_key(s: &str) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    if bytes[0] == b'"' || bytes[0] == b'\'' {
        let q = bytes[0];
        let mut i = 1;
        let mut key = String::new();
        while i < bytes.len() {
            let c = bytes[i];
            if c == b'\\' && q == b'"' && i + 1 < bytes.len() {
                key.push(bytes[i + 1] as char);
                i += 2;
                continue;
            }
            if c == q {
                if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    key.push('\'');
                    i += 2;
                    continue;
                }
                break;
            }
            key.push(c as char);
            i += 1;
        }
        let after = s.get(i + 1..)?;
        let colon = after.find(|c: char| !c.is_whitespace())?;
        if after[colon..].starts_with(':') {
            return Some((key, i + 1 + colon + 1));
        }
        return None;
    }
    if matches!(bytes[0], b'{' | b'[' | b'|' | b'>' | b'&' | b'*' | b'!') {
        return None;
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some((s[..i].trim_end().to_string(), i + 1));
        }
        if bytes[i] == b' ' && bytes.get(i + 1) == Some(&b'#') {
            return None;
        }
        i += 1;
    }
    None
}

fn strip_comment(v: &str) -> &str {
    if v.starts_with('#') {
        return "";
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# leading comment
groups:
  - name: api
    interval: 1m
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: HighLatency
        expr: |
          histogram_quantile(0.9,
            rate(x[5m])) > 1
        for: 5m
        labels:
          severity: page
        annotations:
          summary: 'latency: {{ $value }}'
  - name: \"second\"
    rules:
    - alert: X
      expr: up == 0
";

    fn check(path: &str, line: usize, column: usize) {
        let p = scan(FILE)
            .find(path)
            .unwrap_or_else(|| panic!("{path} not found"));
        assert_eq!((p.line, p.column), (line, column), "{path}");
    }

    #[test]
    fn keys_and_items() {
        check("groups", 2, 8);
        check("groups.0", 3, 3);
        check("groups.0.name", 3, 11);
        check("groups.0.interval", 4, 15);
        check("groups.0.rules.0", 6, 7);
        check("groups.0.rules.0.record", 6, 17);
        check("groups.0.rules.0.expr", 7, 15);
        check("groups.0.rules.1.alert", 8, 16);
        check("groups.0.rules.1.expr", 9, 15);
        check("groups.0.rules.1.for", 12, 14);
        check("groups.0.rules.1.labels.severity", 14, 21);
        check("groups.0.rules.1.annotations.summary", 16, 20);
        check("groups.1.name", 17, 11);
        // A sequence whose dashes sit at its key's own indentation.
        check("groups.1.rules.0.alert", 19, 14);
        check("groups.1.rules.0.expr", 20, 13);
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        check("groups.0.rules.1.labels.nosuch", 13, 16);
        assert!(scan(FILE).find("nosuch").is_none());
    }
}
