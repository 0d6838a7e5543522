//! Rule files: Prometheus's YAML format, read strictly.
//!
//! ```yaml
//! groups:
//!   - name: api                 # unique within the file
//!     interval: 1m              # default: global.evaluation_interval
//!     query_offset: 30s         # default: global.rule_query_offset (0)
//!     limit: 0                  # most series (record) / alerts (alert) per rule; 0 = none
//!     labels: {team: web}       # added to every rule's labels (the rule's own win)
//!     rules:
//!       - record: job:up:sum    # or `alert: Name`, never both
//!         expr: sum by (job) (up)
//!         labels: {}
//!       - alert: Down
//!         expr: up == 0
//!         for: 5m
//!         keep_firing_for: 10m
//!         labels: {severity: page}
//!         annotations: {summary: "{{ $labels.instance }} is down"}
//! ```
//!
//! [`parse`] checks everything Prometheus's `rulefmt` checks and reports every problem, each
//! naming the file, line and column, group and rule (`rules.yml:7:15: group "api", rule 2,
//! "Down": could not parse expression: …`). A file with any error yields no groups.
//!
//! Names are checked with Prometheus's classic character sets (`[a-zA-Z_:][a-zA-Z0-9_:]*` for
//! recorded metric names, `[a-zA-Z_][a-zA-Z0-9_]*` for label names), which is what Augur's
//! storage accepts; Prometheus 3 would also accept other UTF-8 names.

use std::collections::BTreeMap;
use std::fmt;

use augur_engine::duration::parse_duration;
use augur_storage::NameScheme;
use serde_yaml::Value as Yaml;

use crate::locate::{self, Pos, Positions};
use crate::template;

/// A parsed, validated rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: String,
    pub groups: Vec<GroupSpec>,
}

/// One group as written: rules are evaluated in order, every `interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// The file the group came from, as given to the loader.
    pub file: String,
    pub interval_ms: Option<i64>,
    pub query_offset_ms: Option<i64>,
    /// 0 means no limit.
    pub limit: usize,
    pub rules: Vec<RuleSpec>,
}

/// Whether a rule records a series or raises an alert, with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    Record(String),
    Alert(String),
}

/// One rule as written, with the group's labels already merged into `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub expr: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Where the rule starts in its file (1-based), for messages.
    pub line: usize,
}

impl RuleSpec {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Record(n) | RuleKind::Alert(n) => n,
        }
    }
}

/// One problem in a rule file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub pos: Option<Pos>,
    /// The group's name, and the rule's 1-based index and name, when the problem is in one.
    pub group: Option<String>,
    pub rule: Option<(usize, String)>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(p) = self.pos {
            write!(f, "{}:{}: ", p.line, p.column)?;
        }
        if let Some(g) = &self.group {
            write!(f, "group {g:?}, ")?;
        }
        if let Some((i, name)) = &self.rule {
            write!(f, "rule {i}, {name:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// How strictly to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Accept keys Prometheus does not know (promtool's `--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
    /// Which record and label names are valid (`global.metric_name_validation_scheme`).
    pub names: NameScheme,
}

const GROUP_KEYS: &[&str] = &[
    "name",
    "interval",
    "query_offset",
    "limit",
    "labels",
    "rules",
];
const RULE_KEYS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

/// Parses and validates a rule file's text. `file` names it in messages.
pub fn parse(file: &str, text: &str, opts: ParseOptions) -> Result<RuleFile, Vec<FileError>> {
    let mut cx = Cx {
        file,
        pos: locate::scan(text),
        errors: Vec::new(),
        group: None,
        rule: None,
        opts,
    };
    let doc: Yaml = match serde_yaml::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let pos = e.location().map(|l| Pos {
                line: l.line(),
                column: l.column(),
            });
            let mut msg = e.to_string();
            // serde_yaml appends " at line L column C"; the position is already in front.
            if let Some(i) = msg.find(" at line ") {
                msg.truncate(i);
            }
            return Err(vec![FileError {
                file: file.to_string(),
                pos,
                group: None,
                rule: None,
                message: msg,
            }]);
        }
    };
    let groups = cx.file_groups(&doc);
    if cx.errors.is_empty() {
        Ok(RuleFile {
            path: file.to_string(),
            groups,
        })
    } else {
        Err(cx.errors)
    }
}

/// Reads and parses a rule file from disk.
pub fn load(path: &str, opts: ParseOptions) -> Result<RuleFile, Vec<FileError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text, opts),
        Err(e) => Err(vec![FileError {
            file: path.to_string(),
            pos: None,
            group: None,
            rule: None,
            message: format!("cannot read rule file: {e}"),
        }]),
    }
}

struct Cx<'a> {
    file: &'a str,
    pos: Positions,
    errors: Vec<FileError>,
    group: Option<String>,
    rule: Option<(usize, String)>,
    opts: ParseOptions,
}

impl Cx<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FileError {
            file: self.file.to_string(),
            pos: self.pos.find(path),
            group: self.group.clone(),
            rule: self.rule.clone(),
            message: message.into(),
        });
    }

    fn file_groups(&mut self, doc: &Yaml) -> Vec<GroupSpec> {
        let map = match doc {
            // An empty file is an empty rule file, as in Prometheus.
            Yaml::Null => return Vec::new(),
            Yaml::Mapping(m) => m,
            _ => {
                self.err("", "rule file must be a mapping with a `groups` key");
                return Vec::new();
            }
        };
        let mut groups = Vec::new();
        for (k, v) in map {
            let key = scalar_string(k).unwrap_or_default();
            if key != "groups" {
                if !self.opts.ignore_unknown_fields {
                    self.err(
                        &key,
                        format!("field {key} not found in type rulefmt.RuleGroups"),
                    );
                }
                continue;
            }
            match v {
                Yaml::Null => {}
                Yaml::Sequence(items) => {
                    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
                    for (i, g) in items.iter().enumerate() {
                        let path = format!("groups.{i}");
                        if let Some(spec) = self.group(&path, g) {
                            self.group = Some(spec.name.clone());
                            if seen.insert(spec.name.clone(), ()).is_some() {
                                self.group = None;
                                let name = spec.name.clone();
                                self.err(
                                    &format!("{path}.name"),
                                    format!("groupname: {name:?} is repeated in the same file"),
                                );
                            }
                            self.group = None;
                            groups.push(spec);
                        }
                    }
                }
                _ => self.err("groups", "`groups` must be a list of rule groups"),
            }
        }
        groups
    }

    fn group(&mut self, path: &str, g: &Yaml) -> Option<GroupSpec> {
        let Yaml::Mapping(m) = g else {
            self.err(path, "a rule group must be a mapping");
            return None;
        };
        let get = |k: &str| m.get(Yaml::String(k.into()));
        let before = self.errors.len();
        self.unknown_keys(path, m, GROUP_KEYS, "rulefmt.RuleGroup");
        let name = match get("name").map(scalar_string) {
            Some(Some(n)) if !n.is_empty() => n,
            _ => {
                self.err(path, "groupname must not be empty");
                String::new()
            }
        };
        self.group = Some(name.clone());
        let interval_ms = self.duration(&format!("{path}.interval"), get("interval"));
        let query_offset_ms = self.duration(&format!("{path}.query_offset"), get("query_offset"));
        let limit = match get("limit") {
            None | Some(Yaml::Null) => 0,
            Some(v) => match v.as_u64() {
                Some(n) => n as usize,
                None => {
                    self.err(
                        &format!("{path}.limit"),
                        "limit must be a non-negative integer",
                    );
                    0
                }
            },
        };
        let group_labels = self.string_map(&format!("{path}.labels"), get("labels"), "labels");
        self.check_labels(&format!("{path}.labels"), &group_labels);
        let mut rules = Vec::new();
        match get("rules") {
            None | Some(Yaml::Null) => {}
            Some(Yaml::Sequence(items)) => {
                for (i, r) in items.iter().enumerate() {
                    let rpath = format!("{path}.rules.{i}");
                    if let Some(spec) = self.rule(&rpath, i + 1, r, &group_labels) {
                        rules.push(spec);
                    }
                    self.rule = None;
                }
            }
            Some(_) => self.err(&format!("{path}.rules"), "`rules` must be a list"),
        }
        self.group = None;
        (self.errors.len() == before).then(|| GroupSpec {
            name,
            file: self.file.to_string(),
            interval_ms: interval_ms.filter(|&d| d > 0),
            query_offset_ms,
            limit,
            rules,
        })
    }

    fn rule(
        &mut self,
        path: &str,
        index: usize,
        r: &Yaml,
        group_labels: &BTreeMap<String, String>,
    ) -> Option<RuleSpec> {
        let Yaml::Mapping(m) = r else {
            self.rule = Some((index, String::new()));
            self.err(path, "a rule must be a mapping");
            return None;
        };
        let get = |k: &str| m.get(Yaml::String(k.into()));
        let str_field = |k: &str| get(k).and_then(scalar_string).unwrap_or_default();
        let record = str_field("record");
        let alert = str_field("alert");
        let name = if record.is_empty() { &alert } else { &record };
        self.rule = Some((index, name.clone()));
        let before = self.errors.len();
        self.unknown_keys(path, m, RULE_KEYS, "rulefmt.Rule");
        let kind = match (record.is_empty(), alert.is_empty()) {
            (false, false) => {
                self.err(
                    &format!("{path}.record"),
                    "only one of 'record' and 'alert' must be set",
                );
                None
            }
            (true, true) => {
                self.err(path, "one of 'record' or 'alert' must be set");
                None
            }
            (false, true) => Some(RuleKind::Record(record.clone())),
            (true, false) => Some(RuleKind::Alert(alert.clone())),
        };
        let expr = str_field("expr");
        if expr.trim().is_empty() {
            self.err(path, "field 'expr' must be set in rule");
        } else if let Err(e) = augur_engine::parse(&expr, 0, 0) {
            self.err(
                &format!("{path}.expr"),
                format!("could not parse expression: {e}"),
            );
        }
        let for_ms = self
            .duration(&format!("{path}.for"), get("for"))
            .unwrap_or(0);
        let keep_firing_for_ms = self
            .duration(&format!("{path}.keep_firing_for"), get("keep_firing_for"))
            .unwrap_or(0);
        let own_labels = self.string_map(&format!("{path}.labels"), get("labels"), "labels");
        let annotations = self.string_map(
            &format!("{path}.annotations"),
            get("annotations"),
            "annotations",
        );
        self.check_labels(&format!("{path}.labels"), &own_labels);
        for k in annotations.keys() {
            if !self.opts.names.label_name_ok(k) {
                self.err(
                    &format!("{path}.annotations.{k}"),
                    format!("invalid annotation name: {k}"),
                );
            }
        }
        if let Some(RuleKind::Record(name)) = &kind {
            let rec = format!("{path}.record");
            if !annotations.is_empty() {
                self.err(&rec, "invalid field 'annotations' in recording rule");
            }
            if for_ms != 0 {
                self.err(&rec, "invalid field 'for' in recording rule");
            }
            if keep_firing_for_ms != 0 {
                self.err(&rec, "invalid field 'keep_firing_for' in recording rule");
            }
            if !self.opts.names.metric_name_ok(name) {
                self.err(&rec, format!("invalid recording rule name: {name}"));
            }
        }
        // Templates are parsed now so a typo is reported at load, not at 3 a.m.
        let tmpl_name = match &kind {
            Some(RuleKind::Alert(n)) => format!("__alert_{n}"),
            _ => format!("__record_{name}"),
        };
        for (section, map) in [("labels", &own_labels), ("annotations", &annotations)] {
            for (k, v) in map {
                if let Err(e) = template::check(&tmpl_name, v) {
                    self.err(
                        &format!("{path}.{section}.{k}"),
                        format!("invalid template in {section} {k:?}: {e}"),
                    );
                }
            }
        }
        let mut labels = group_labels.clone();
        labels.extend(own_labels);
        let line = self.pos.find(path).map_or(0, |p| p.line);
        (self.errors.len() == before).then(|| RuleSpec {
            kind: kind.expect("checked above"),
            expr,
            for_ms,
            keep_firing_for_ms,
            labels,
            annotations,
            line,
        })
    }

    fn unknown_keys(&mut self, path: &str, m: &serde_yaml::Mapping, known: &[&str], ty: &str) {
        if self.opts.ignore_unknown_fields {
            return;
        }
        for k in m.keys() {
            let key = scalar_string(k).unwrap_or_default();
            if !known.contains(&key.as_str()) {
                self.err(
                    &format!("{path}.{key}"),
                    format!("field {key} not found in type {ty}"),
                );
            }
        }
    }

    fn duration(&mut self, path: &str, v: Option<&Yaml>) -> Option<i64> {
        let v = v?;
        if v.is_null() {
            return None;
        }
        let s = scalar_string(v).unwrap_or_default();
        match parse_duration(&s) {
            Some(d) => Some(d),
            None => {
                self.err(path, format!("not a valid duration string: {s:?}"));
                None
            }
        }
    }

    fn string_map(&mut self, path: &str, v: Option<&Yaml>, what: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match v {
            None | Some(Yaml::Null) => {}
            Some(Yaml::Mapping(m)) => {
                for (k, v) in m {
                    let key = scalar_string(k).unwrap_or_default();
                    match scalar_string(v) {
                        Some(s) => {
                            out.insert(key, s);
                        }
                        None => self.err(
                            &format!("{path}.{key}"),
                            format!("{what} value for {key:?} must be a string"),
                        ),
                    }
                }
            }
            Some(_) => self.err(path, format!("{what} must be a mapping of strings")),
        }
        out
    }

    fn check_labels(&mut self, path: &str, labels: &BTreeMap<String, String>) {
        for k in labels.keys() {
            if !self.opts.names.label_name_ok(k) || k == "__name__" {
                self.err(&format!("{path}.{k}"), format!("invalid label name: {k}"));
            }
        }
    }
}

/// A YAML scalar as the string Go's yaml decoder would give a `string` field (`values: 1` is
/// as good as `values: '1'`); `None` for a sequence or mapping.
pub(crate) fn scalar_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        Yaml::Tagged(t) => scalar_string(&t.value),
        Yaml::Sequence(_) | Yaml::Mapping(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` and returns every error message, with positions, without the file name.
    fn errors(text: &str) -> Vec<String> {
        errors_with(text, ParseOptions::default())
    }

    fn errors_with(text: &str, opts: ParseOptions) -> Vec<String> {
        match parse("f.yml", text, opts) {
            Ok(_) => Vec::new(),
            Err(errs) => errs
                .iter()
                .map(|e| e.to_string().trim_start_matches("f.yml: ").to_string())
                .collect(),
        }
    }

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(errors(text), expected, "for:\n{text}");
    }

    #[test]
    fn a_valid_file_parses_with_group_labels_merged() {
        let text = "groups:\n- name: g\n  interval: 30s\n  query_offset: 1m\n  limit: 5\n  labels: {team: a, sev: low}\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    labels: {sev: high}\n    annotations: {summary: '{{ $labels.job }} down'}\n";
        let f = parse("f.yml", text, ParseOptions::default()).unwrap();
        let g = &f.groups[0];
        assert_eq!(
            (g.interval_ms, g.query_offset_ms, g.limit),
            (Some(30_000), Some(60_000), 5)
        );
        assert_eq!(g.rules[0].kind, RuleKind::Record("job:up:sum".into()));
        assert_eq!(g.rules[0].labels["team"], "a");
        let alert = &g.rules[1];
        assert_eq!(
            (alert.for_ms, alert.keep_firing_for_ms, alert.line),
            (300_000, 60_000, 10)
        );
        assert_eq!(alert.labels["sev"], "high");
        assert_eq!(alert.labels["team"], "a");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        check(
            "groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n",
            &["4:13: group \"g\", rule 1, \"a\": only one of 'record' and 'alert' must be set"],
        );
        check(
            "groups:\n- name: g\n  rules:\n  - expr: up\n",
            &["4:3: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set"],
        );
        check(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n",
            &["5:11: group \"g\", rule 1, \"A\": could not parse expression: parse error: unclosed left parenthesis"],
        );
        check(
            "groups:\n- name: g\n  rules:\n  - record: 'a b'\n    expr: up\n    for: 1m\n    annotations: {x: y}\n",
            &[
                "4:13: group \"g\", rule 1, \"a b\": invalid field 'annotations' in recording rule",
                "4:13: group \"g\", rule 1, \"a b\": invalid field 'for' in recording rule",
            ],
        );
        check(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      __name__: x\n",
            &["7:17: group \"g\", rule 1, \"A\": invalid label name: __name__"],
        );
        check(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    expresion: up\n",
            &["6:16: group \"g\", rule 1, \"A\": field expresion not found in type rulefmt.Rule"],
        );
        check(
            "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
            &["4:9: groupname: \"g\" is repeated in the same file"],
        );
        check(
            "groups:\n- name: g\n  interval: 5 minutes\n  rules: []\n",
            &["3:13: group \"g\", not a valid duration string: \"5 minutes\""],
        );
        check(
            "groups:\n- rules: []\n",
            &["2:1: groupname must not be empty"],
        );
        check(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ nosuchfn }}'\n",
            &["7:10: group \"g\", rule 1, \"A\": invalid template in annotations \"s\": template: __alert_A:1: function \"nosuchfn\" not defined"],
        );
    }

    #[test]
    fn names_are_utf8_unless_the_legacy_scheme_is_asked_for() {
        let text = "groups:\n- name: g\n  rules:\n  - record: 'http.requests:rate5m'\n    expr: up\n    labels:\n      service.name: x\n  - alert: A\n    expr: up\n    labels:\n      0bad: x\n    annotations:\n      run.book: y\n";
        check(text, &[]);
        let legacy = ParseOptions {
            names: NameScheme::Legacy,
            ..ParseOptions::default()
        };
        assert_eq!(
            errors_with(text, legacy),
            [
                "7:21: group \"g\", rule 1, \"http.requests:rate5m\": invalid label name: service.name",
                "4:13: group \"g\", rule 1, \"http.requests:rate5m\": invalid recording rule name: http.requests:rate5m",
                "11:13: group \"g\", rule 2, \"A\": invalid label name: 0bad",
                "13:17: group \"g\", rule 2, \"A\": invalid annotation name: run.book",
            ]
        );
    }

    #[test]
    fn yaml_syntax_errors_carry_the_parser_position() {
        let errs = errors("groups:\n- name: g\n  rules: [\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("4:1: "), "{errs:?}");
    }

    #[test]
    fn unknown_fields_can_be_ignored() {
        let text = "groups:\n- name: g\n  namespace: x\n  rules:\n  - alert: A\n    expr: up\n    owner: me\n";
        assert_eq!(errors(text).len(), 2);
        let opts = ParseOptions {
            ignore_unknown_fields: true,
            ..ParseOptions::default()
        };
        assert!(parse("f.yml", text, opts).is_ok());
    }
}
