//! Placeholder until the Go template engine lands (branch `tmpl`).
use std::collections::BTreeMap;

pub trait Host {
    fn query(&self, q: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String>;
}
pub struct Env<'a> {
    pub host: Option<&'a dyn Host>,
    pub external_url: String,
    pub now_ms: i64,
}
pub fn check(_name: &str, _text: &str) -> Result<(), String> {
    Ok(())
}
pub fn expand(
    _name: &str,
    text: &str,
    _labels: &BTreeMap<String, String>,
    _external_labels: &BTreeMap<String, String>,
    _external_url: &str,
    _value: f64,
    _env: &Env<'_>,
) -> Result<String, String> {
    Ok(text.to_string())
}
