//! Go `text/template` with Prometheus's template functions, for alert annotations, labels
//! and console-less template expansion.
//!
//! Entry points: [`Template::parse`] then [`Template::execute`]; [`expand`] for an alert's
//! label or annotation text (Prometheus's `Expander.Expand` with the `$labels`/`$value`
//! prefix); [`check`] to validate such text when a rule file is loaded.
//!
//! Layout: `lexer` → `parser` (trees of nodes) → `exec` (walks a tree), with `value` (Go's
//! dynamic values), `printf` (Go's `fmt`), `gotime` (Go's time printing), `funcs` (Go's
//! builtins and the function table) and `prometheus` (Prometheus's functions).
//!
//! What it does not do: `html/template` escaping (Prometheus uses it only for consoles),
//! method calls beyond a few on times and durations, complex numbers, and channels or
//! function values.
//!
//! Semantics that differ from plain Go `text/template`:
//! - Map lookups always use missingkey=zero, as Prometheus configures every expander: a
//!   missing key of a string map reads as `""`, of any other map as nil (`<no value>`).
//! - Augur extension: `date LAYOUT TIME` formats a time in UTC with Go's reference-time
//!   layout (`15`, `2006-01-02`, `Mon`, `Jan`, `MST`, `-0700`, `.000`, …). TIME is a
//!   `toTime` result or Unix seconds (a number or numeric string), so `now | date "15"` works;
//!   `now` returns the evaluation time [`Env::now_ms`] as float seconds, as upstream does.
//! - Augur deviation: printf's integer verbs (`%d`, `%x`, …) accept a string holding a
//!   decimal integer, so `printf "%02d" (now | date "15")` prints `09`; Go would print
//!   `%!d(string=09)`.
//! - A `*template.sample` nested in a list prints as `&{map[..] 1}` where Go prints its
//!   address.
//! - `{{template}}` calls nest at most 256 deep (Go: 100000).

mod exec;
mod funcs;
mod gotime;
mod lexer;
mod parser;
mod printf;
mod prometheus;
mod value;

pub(crate) use funcs::query_escape;
pub(crate) use gotime::duration_string;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

/// A value passed to a template as dot. A query result sample is
/// `Value::Map {"Labels": Map<String, Str>, "Value": Float}`, as Prometheus's `sample`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// What templates can reach outside themselves.
pub trait Host {
    /// Runs an instant PromQL query at the template's evaluation time (Prometheus's `query`
    /// function). A vector result gives its samples; a scalar gives one sample with empty
    /// labels; other result types are an error.
    #[allow(clippy::type_complexity)] // The signature is the agreed interface; spelled out on purpose.
    fn query(&self, q: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String>;
}

/// The environment of one execution.
pub struct Env<'a> {
    /// The query engine for `query`; without one, `query` fails at run time.
    pub host: Option<&'a dyn Host>,
    /// Prometheus's external URL, for `externalURL` and `pathPrefix`.
    pub external_url: String,
    /// The evaluation time in milliseconds since the epoch, returned by `now`.
    pub now_ms: i64,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("host", &self.host.map(|_| "..."))
            .field("external_url", &self.external_url)
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

/// A template error; `Display` reads like Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text does not parse: `template: NAME:LINE: msg`.
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    /// Execution failed: `template: NAME:LINE:COL: executing "T" at <node>: msg`.
    #[error("{}", exec_message(.location, .template, .context.as_deref(), .msg))]
    Exec {
        location: String,
        template: String,
        context: Option<String>,
        msg: String,
    },
}

fn exec_message(location: &str, template: &str, context: Option<&str>, msg: &str) -> String {
    match context {
        Some(c) => format!(
            "template: {location}: executing {} at <{c}>: {msg}",
            printf::quote(template)
        ),
        None => format!("template: {location}: {msg}"),
    }
}

/// A parsed template with its `define`d and `block` templates.
pub struct Template {
    name: String,
    text: String,
    trees: parser::Trees,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("text", &self.text)
            .finish()
    }
}

impl Template {
    /// Parses `text`. Unknown function names are parse errors, as in Go
    /// (`function "foo" not defined`).
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let trees = parser::parse(name, text).map_err(|e| TemplateError::Parse {
            name: name.to_string(),
            line: e.line,
            msg: e.msg,
        })?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            trees,
        })
    }

    /// Executes the template with `dot`.
    pub fn execute(&self, dot: &Value, env: &Env<'_>) -> Result<String, TemplateError> {
        self.execute_val(value::Val::from(dot), env)
    }

    fn execute_val(&self, dot: value::Val, env: &Env<'_>) -> Result<String, TemplateError> {
        exec::execute(&self.trees, &self.text, &self.name, dot, env)
    }
}

/// The variables Prometheus defines before an alert's template text.
const ALERT_PREFIX: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Prometheus's alert label and annotation expansion: prepends the `$labels`,
/// `$externalLabels`, `$externalURL` and `$value` definitions to `text`, parses it as `name`
/// and executes it with the alert data as dot (missingkey=zero).
pub fn expand(
    name: &str,
    text: &str,
    labels: &BTreeMap<String, String>,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
    value: f64,
    env: &Env<'_>,
) -> Result<String, TemplateError> {
    let t = Template::parse(name, &format!("{ALERT_PREFIX}{text}"))?;
    t.execute_val(
        prometheus::alert_data(labels, external_labels, external_url, value),
        env,
    )
}

/// Parses `text` with the alert prefix without executing it, as Prometheus's `ParseTest`
/// validates rule files at load time.
pub fn check(name: &str, text: &str) -> Result<(), TemplateError> {
    Template::parse(name, &format!("{ALERT_PREFIX}{text}")).map(|_| ())
}
