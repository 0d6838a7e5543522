//! Prometheus's relabelling (`relabel_configs`, `alert_relabel_configs`): a list of steps,
//! each rewriting or filtering one label set.
//!
//! [`RelabelConfig`] is a step as written in YAML; [`RelabelConfig::compile`] checks it with
//! Prometheus's rules and messages and yields a [`Relabel`], which [`process`] applies.
//! Semantics follow Prometheus's `model/relabel/relabel.go` (`Validate`, `relabel`):
//! - the regex is fully anchored and `.` matches newlines (`^(?s:REGEX)$`);
//! - source values are joined with `separator` (default `;`), a missing label reading as "";
//! - setting a label to "" removes it;
//! - `replace` changes nothing when the regex does not match or the expanded target is not a
//!   valid label name; `$1`, `${1}`, `$name` expand as in Go (the longest name wins, so `$1x`
//!   is the group named `1x`);
//! - `labelmap`, `labeldrop` and `labelkeep` see the labels as they were before the step.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// One relabelling step as written in YAML; unset fields take Prometheus's defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// A checked relabelling step, ready to apply.
#[derive(Debug, Clone)]
pub struct Relabel {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    /// The regex is the default `(.*)` (enables `replace`'s fast path).
    default_regex: bool,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label name that may contain `$var`/`${var}` references (Prometheus's
/// `relabelTargetLegacy`).
fn is_label_name_template(s: &str) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").expect("valid pattern")
    })
    .is_match(s)
}

impl RelabelConfig {
    /// Checks the step with Prometheus's rules; the error is Prometheus's message.
    pub fn compile(&self) -> Result<Relabel, String> {
        let action_text = self.action.as_deref().unwrap_or("replace");
        if action_text.is_empty() {
            return Err("relabel action cannot be empty".into());
        }
        let action = Action::parse(action_text)
            .ok_or_else(|| format!("unknown relabel action {action_text:?}"))?;
        let regex_text = self.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex = augur_storage::anchored_go_regex(regex_text)
            .map_err(|e| format!("invalid regex {regex_text:?}: {e}"))?;
        let target = self.target_label.clone().unwrap_or_default();
        let separator = self.separator.as_deref().unwrap_or(DEFAULT_SEPARATOR);
        let replacement = self.replacement.as_deref().unwrap_or(DEFAULT_REPLACEMENT);
        let modulus = self.modulus.unwrap_or(0);
        let name = action.as_str();
        use Action::*;
        if modulus == 0 && action == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(format!(
                "relabel configuration for {name} action requires 'target_label' value"
            ));
        }
        let target_ok = match action {
            Replace if target.contains('$') => is_label_name_template(&target),
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual | HashMod => {
                is_label_name(&target)
            }
            _ => true,
        };
        if !target_ok {
            return Err(format!(
                "{target:?} is invalid 'target_label' for {name} action"
            ));
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {name} action"));
        }
        if action == LabelMap && !is_label_name_template(replacement) {
            return Err(format!(
                "{replacement:?} is invalid 'replacement' for {name} action"
            ));
        }
        if matches!(action, KeepEqual | DropEqual)
            && (regex_text != DEFAULT_REGEX
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{name} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !target.is_empty()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{name} action requires only 'regex', and no other fields"
            ));
        }
        Ok(Relabel {
            source_labels: self.source_labels.clone(),
            separator: separator.to_owned(),
            default_regex: regex_text == DEFAULT_REGEX,
            regex,
            modulus,
            target_label: target,
            replacement: replacement.to_owned(),
            action,
        })
    }
}

/// Sets `name` to `value`, removing it when `value` is empty (as Prometheus's label builder).
fn set(labels: &mut BTreeMap<String, String>, name: &str, value: String) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name.to_owned(), value);
    }
}

impl Relabel {
    /// Applies the step; `false` means the label set is dropped.
    fn apply(&self, labels: &mut BTreeMap<String, String>) -> bool {
        let val = self
            .source_labels
            .iter()
            .map(|n| labels.get(n).map_or("", String::as_str))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Drop => return !self.regex.is_match(&val),
            Action::Keep => return self.regex.is_match(&val),
            Action::DropEqual => {
                return labels.get(&self.target_label).map_or("", String::as_str) != val
            }
            Action::KeepEqual => {
                return labels.get(&self.target_label).map_or("", String::as_str) == val
            }
            Action::Replace => {
                if val.is_empty()
                    && self.default_regex
                    && !self.target_label.contains('$')
                    && !self.replacement.contains('$')
                {
                    set(labels, &self.target_label, self.replacement.clone());
                    return true;
                }
                let Some(caps) = self.regex.captures(&val) else {
                    return true;
                };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !is_label_name(&target) {
                    return true;
                }
                let mut value = String::new();
                caps.expand(&self.replacement, &mut value);
                set(labels, &target, value);
            }
            Action::Lowercase => set(labels, &self.target_label, val.to_lowercase()),
            Action::Uppercase => set(labels, &self.target_label, val.to_uppercase()),
            Action::HashMod => {
                let digest = md5::compute(val.as_bytes());
                let tail: [u8; 8] = digest.0[8..].try_into().expect("md5 digest is 16 bytes");
                let m = u64::from_be_bytes(tail) % self.modulus;
                set(labels, &self.target_label, m.to_string());
            }
            Action::LabelMap => {
                let before: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                for (name, value) in before {
                    if let Some(caps) = self.regex.captures(&name) {
                        let mut new_name = String::new();
                        caps.expand(&self.replacement, &mut new_name);
                        set(labels, &new_name, value);
                    }
                }
            }
            Action::LabelDrop => labels.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| self.regex.is_match(name)),
        }
        true
    }
}

/// Applies `steps` in order; `false` means a step dropped the label set (it is then left
/// partly rewritten and should be discarded).
pub fn process(labels: &mut BTreeMap<String, String>, steps: &[Relabel]) -> bool {
    steps.iter().all(|s| s.apply(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(yaml: &str) -> Result<Relabel, String> {
        let cfg: RelabelConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        cfg.compile()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Applies the steps (YAML documents separated by `---`) and returns the outcome.
    fn check(steps: &str, input: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        let steps: Vec<Relabel> = steps
            .split("---")
            .map(|s| step(s).expect("valid step"))
            .collect();
        let mut l = labels(input);
        process(&mut l, &steps).then_some(l)
    }

    #[test]
    fn actions() {
        let a = [("alertname", "High"), ("severity", "page"), ("env", "prod")];
        // replace with capture groups, including the default regex and replacement.
        assert_eq!(
            check(
                "source_labels: [alertname, env]\nregex: '(.*);(p.*)'\ntarget_label: x\nreplacement: '${2}-$1'",
                &a
            ),
            Some(labels(&[("alertname", "High"), ("env", "prod"), ("severity", "page"), ("x", "prod-High")]))
        );
        assert_eq!(
            check("source_labels: [severity]\ntarget_label: sev", &a).unwrap()["sev"],
            "page"
        );
        // No match: nothing changes. Empty result: the label goes.
        assert_eq!(
            check(
                "source_labels: [env]\nregex: dev\ntarget_label: env\nreplacement: x",
                &a
            ),
            Some(labels(&a))
        );
        assert_eq!(
            check(
                "source_labels: [env]\nregex: prod\ntarget_label: env\nreplacement: ''",
                &a
            ),
            Some(labels(&[("alertname", "High"), ("severity", "page")]))
        );
        // Fast path: no source labels sets a constant.
        assert_eq!(
            check("target_label: team\nreplacement: sre", &a).unwrap()["team"],
            "sre"
        );
        // `$1x` is the group named "1x" (absent), as in Go.
        assert!(!check(
            "source_labels: [env]\ntarget_label: t\nreplacement: '$1x'",
            &a
        )
        .unwrap()
        .contains_key("t"));
        // An invalid expanded target changes nothing.
        assert_eq!(
            check(
                "source_labels: [env]\nregex: '(.*)'\ntarget_label: '$1'\nreplacement: v",
                &[("env", "9x")]
            ),
            Some(labels(&[("env", "9x")]))
        );
        // keep / drop match the whole value.
        assert!(check("source_labels: [severity]\nregex: pag\naction: keep", &a).is_none());
        assert!(check("source_labels: [severity]\nregex: page\naction: keep", &a).is_some());
        assert!(check("source_labels: [severity]\nregex: pa.e\naction: drop", &a).is_none());
        assert!(check("source_labels: [missing]\nregex: ''\naction: drop", &a).is_none());
        // keepequal / dropequal compare with the target label.
        assert!(check(
            "source_labels: [env]\ntarget_label: env\naction: keepequal",
            &a
        )
        .is_some());
        assert!(check(
            "source_labels: [env]\ntarget_label: severity\naction: keepequal",
            &a
        )
        .is_none());
        assert!(check(
            "source_labels: [env]\ntarget_label: env\naction: dropequal",
            &a
        )
        .is_none());
        // labeldrop / labelkeep / labelmap act on names.
        assert_eq!(
            check("regex: sev.*\naction: labeldrop", &a),
            Some(labels(&[("alertname", "High"), ("env", "prod")]))
        );
        assert_eq!(
            check("regex: alertname|env\naction: labelkeep", &a),
            Some(labels(&[("alertname", "High"), ("env", "prod")]))
        );
        assert_eq!(
            check(
                "regex: '__meta_(.+)'\naction: labelmap",
                &[("__meta_zone", "a"), ("x", "1")]
            ),
            Some(labels(&[("__meta_zone", "a"), ("x", "1"), ("zone", "a")]))
        );
        // lowercase / uppercase.
        assert_eq!(
            check(
                "source_labels: [alertname]\ntarget_label: l\naction: lowercase",
                &a
            )
            .unwrap()["l"],
            "high"
        );
        assert_eq!(
            check(
                "source_labels: [env]\ntarget_label: u\naction: UpperCase",
                &a
            )
            .unwrap()["u"],
            "PROD"
        );
        // Steps run in order and a drop stops the list.
        assert!(check("target_label: env\nreplacement: dev\n---\nsource_labels: [env]\nregex: dev\naction: drop", &a).is_none());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Values from Prometheus's relabel_test.go ("foo" % 1000 = 976 with these labels).
        let out = check(
            "source_labels: [c]\ntarget_label: d\naction: hashmod\nmodulus: 1000",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        )
        .unwrap();
        assert_eq!(out["d"], "976");
    }

    #[test]
    fn invalid_steps_say_what_is_wrong() {
        let cases = [
            ("action: replace", "relabel configuration for replace action requires 'target_label' value"),
            ("action: hashmod\ntarget_label: x", "relabel configuration for hashmod requires non-zero modulus"),
            ("action: explode", "unknown relabel action \"explode\""),
            ("action: ''", "relabel action cannot be empty"),
            ("target_label: '1bad'", "\"1bad\" is invalid 'target_label' for replace action"),
            ("action: lowercase\ntarget_label: x\nreplacement: y", "'replacement' can not be set for lowercase action"),
            ("action: labeldrop\nsource_labels: [a]", "labeldrop action requires only 'regex', and no other fields"),
            ("action: keepequal\ntarget_label: x\nregex: a", "keepequal action requires only 'source_labels' and `target_label`, and no other fields"),
            ("action: labelmap\nreplacement: '-'", "\"-\" is invalid 'replacement' for labelmap action"),
        ];
        for (yaml, want) in cases {
            assert_eq!(step(yaml).unwrap_err(), want, "{yaml}");
        }
        assert!(step("regex: '('\ntarget_label: x")
            .unwrap_err()
            .starts_with("invalid regex \"(\""));
    }
}
