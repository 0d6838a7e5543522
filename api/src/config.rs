//! The configuration file, in the style of `prometheus.yml`.
//!
//! Augur reads the sections it acts on (`global`, `rule_files`, `alerting`) strictly: an
//! unknown key is an error naming the key, its place and its line. Prometheus sections Augur
//! has no use for (`scrape_configs`, `remote_write`, …) are accepted and ignored with a
//! warning, so an existing `prometheus.yml` loads unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::params::parse_prometheus_duration;

/// A duration written in Prometheus's syntax (`1m`, `30s`, `1h30m`), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PromDuration(pub i64);

impl PromDuration {
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_prometheus_duration(&s)
            .map(PromDuration)
            .ok_or_else(|| serde::de::Error::custom(format!("not a valid duration string: {s:?}")))
    }
}

impl Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

pub use augur_engine::duration::format_duration;

/// Secrets are shown as `<secret>` wherever the config is printed, as Prometheus does.
fn secret<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("<secret>"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(default = "one_minute")]
    pub scrape_interval: PromDuration,
    #[serde(default = "ten_seconds")]
    pub scrape_timeout: PromDuration,
    #[serde(default = "one_minute")]
    pub evaluation_interval: PromDuration,
    #[serde(default)]
    pub rule_query_offset: Option<PromDuration>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    // Scrape settings of Prometheus's `global` section: accepted, and ignored since Augur
    // does not scrape.
    #[serde(default, skip_serializing)]
    pub scrape_protocols: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub body_size_limit: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub sample_limit: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub label_limit: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub label_name_length_limit: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub label_value_length_limit: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub target_limit: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub keep_dropped_targets: Option<serde_yaml::Value>,
    /// `utf8` (the default) or `legacy`: which metric and label names remote write and rule
    /// files accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name_validation_scheme: Option<String>,
    #[serde(default, skip_serializing)]
    pub metric_name_escaping_scheme: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub scrape_failure_log_file: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub scrape_native_histograms: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub scrape_classic_histograms: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub always_scrape_classic_histograms: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub convert_classic_histograms_to_nhcb: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub extra_scrape_metrics: Option<serde_yaml::Value>,
}

fn one_minute() -> PromDuration {
    PromDuration(60_000)
}

fn ten_seconds() -> PromDuration {
    PromDuration(10_000)
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: one_minute(),
            scrape_timeout: ten_seconds(),
            evaluation_interval: one_minute(),
            rule_query_offset: None,
            external_labels: BTreeMap::new(),
            query_log_file: None,
            scrape_protocols: None,
            body_size_limit: None,
            sample_limit: None,
            label_limit: None,
            label_name_length_limit: None,
            label_value_length_limit: None,
            target_limit: None,
            keep_dropped_targets: None,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: None,
            scrape_failure_log_file: None,
            scrape_native_histograms: None,
            scrape_classic_histograms: None,
            always_scrape_classic_histograms: None,
            convert_classic_histograms_to_nhcb: None,
            extra_scrape_metrics: None,
        }
    }
}

/// One relabelling step (`relabel_configs`, `alert_relabel_configs`), as written.
pub use augur_rules::relabel::RelabelConfig;

/// Checks a list of relabelling steps; `what` names the list in the error.
pub fn compile_relabel(
    steps: &[RelabelConfig],
    what: &str,
) -> Result<Vec<augur_rules::relabel::Relabel>, String> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.compile().map_err(|e| format!("{what}[{i}]: {e}")))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_file: Option<PathBuf>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret"
    )]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret"
    )]
    pub credentials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// Inline PEM alternatives to the `*_file` options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret"
    )]
    pub key: Option<String>,
}

/// One `alerting.alertmanagers` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    #[serde(default = "ten_seconds")]
    pub timeout: PromDuration,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "secret"
    )]
    pub bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    // Accepted so existing files load; service discovery and these client options are not
    // supported (a warning names them at load).
    #[serde(default, skip_serializing)]
    pub dns_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub file_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub kubernetes_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub consul_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub ec2_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub azure_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub gce_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub http_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub digitalocean_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub docker_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub eureka_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub hetzner_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub linode_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub marathon_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub nomad_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub openstack_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub puppetdb_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub scaleway_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub triton_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub uyuni_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub vultr_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub serverset_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub nerve_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub lightsail_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub ionos_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub dockerswarm_sd_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub oauth2: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub sigv4: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub http_headers: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub proxy_from_environment: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub no_proxy: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub proxy_connect_header: Option<serde_yaml::Value>,
}

/// Names of the `*_sd_configs` and client options of an Alertmanager entry that Augur
/// accepts but does not act on.
const AM_IGNORED: &[&str] = &[
    "dns_sd_configs",
    "file_sd_configs",
    "kubernetes_sd_configs",
    "consul_sd_configs",
    "ec2_sd_configs",
    "azure_sd_configs",
    "gce_sd_configs",
    "http_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "eureka_sd_configs",
    "hetzner_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
    "serverset_sd_configs",
    "nerve_sd_configs",
    "lightsail_sd_configs",
    "ionos_sd_configs",
    "dockerswarm_sd_configs",
    "oauth2",
    "sigv4",
    "http_headers",
    "proxy_from_environment",
    "no_proxy",
    "proxy_connect_header",
];

impl AlertmanagerConfig {
    /// Which of the accepted-but-ignored options this entry sets.
    fn ignored_present(&self) -> Vec<(&'static str, bool)> {
        let present = [
            self.dns_sd_configs.is_some(),
            self.file_sd_configs.is_some(),
            self.kubernetes_sd_configs.is_some(),
            self.consul_sd_configs.is_some(),
            self.ec2_sd_configs.is_some(),
            self.azure_sd_configs.is_some(),
            self.gce_sd_configs.is_some(),
            self.http_sd_configs.is_some(),
            self.digitalocean_sd_configs.is_some(),
            self.docker_sd_configs.is_some(),
            self.eureka_sd_configs.is_some(),
            self.hetzner_sd_configs.is_some(),
            self.linode_sd_configs.is_some(),
            self.marathon_sd_configs.is_some(),
            self.nomad_sd_configs.is_some(),
            self.openstack_sd_configs.is_some(),
            self.puppetdb_sd_configs.is_some(),
            self.scaleway_sd_configs.is_some(),
            self.triton_sd_configs.is_some(),
            self.uyuni_sd_configs.is_some(),
            self.vultr_sd_configs.is_some(),
            self.serverset_sd_configs.is_some(),
            self.nerve_sd_configs.is_some(),
            self.lightsail_sd_configs.is_some(),
            self.ionos_sd_configs.is_some(),
            self.dockerswarm_sd_configs.is_some(),
            self.oauth2.is_some(),
            self.sigv4.is_some(),
            self.http_headers.is_some(),
            self.proxy_from_environment.is_some(),
            self.no_proxy.is_some(),
            self.proxy_connect_header.is_some(),
        ];
        AM_IGNORED.iter().copied().zip(present).collect()
    }
}

fn default_scheme() -> String {
    "http".into()
}

fn default_path_prefix() -> String {
    "/".into()
}

fn default_api_version() -> String {
    "v2".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// `storage:`: Augur acts on `tsdb.out_of_order_time_window`; `exemplars` and the other
/// `tsdb` settings of Prometheus are accepted and ignored (a warning names them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
    #[serde(default, skip_serializing)]
    pub exemplars: Option<serde_yaml::Value>,
}

/// `storage.tsdb:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TsdbConfig {
    /// Samples up to this much older than the store's newest are accepted out of order
    /// (default 0: refused, as in Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_order_time_window: Option<PromDuration>,
    #[serde(default, skip_serializing)]
    pub stale_series_compaction_threshold: Option<serde_yaml::Value>,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub alerting: AlertingConfig,
    // Prometheus sections Augur does not act on; accepted so prometheus.yml loads unchanged,
    // and never printed back (they may hold credentials).
    #[serde(default, skip_serializing)]
    pub scrape_configs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub scrape_config_files: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub remote_write: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub remote_read: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageConfig>,
    #[serde(default, skip_serializing)]
    pub tracing: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub otlp: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub runtime: Option<serde_yaml::Value>,
}

/// A configuration that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// serde_yaml reports no position for an unknown key at the top level of a document; find the
/// key's line in the text so every unknown-key error names its line.
fn with_line(message: String, text: &str) -> String {
    if message.contains(" at line ") {
        return message;
    }
    let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    else {
        return message;
    };
    let found = text.lines().position(|l| {
        let t = l.trim_start().trim_start_matches("- ");
        t.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'))
    });
    match found {
        Some(i) => format!("{message} at line {} column 1", i + 1),
        None => message,
    }
}

impl Config {
    /// Parses a configuration from YAML text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        // An empty file is a valid, all-defaults configuration, as in Prometheus.
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let cfg: Config =
            serde_yaml::from_str(text).map_err(|e| invalid(with_line(e.to_string(), text)))?;
        if let Some(v) = &cfg.global.metric_name_validation_scheme {
            if !matches!(v.as_str(), "" | "utf8" | "legacy") {
                return Err(invalid(format!(
                    "global.metric_name_validation_scheme: unrecognized ValidationScheme: {v:?} (use \"utf8\" or \"legacy\")"
                )));
            }
        }
        let names = cfg.name_scheme();
        for name in cfg.global.external_labels.keys() {
            if !names.label_name_ok(name) {
                return Err(invalid(format!(
                    "global.external_labels: {name:?} is not a valid label name"
                )));
            }
        }
        compile_relabel(
            &cfg.alerting.alert_relabel_configs,
            "alerting.alert_relabel_configs",
        )
        .map_err(&invalid)?;
        for (i, am) in cfg.alerting.alertmanagers.iter().enumerate() {
            let at = format!("alerting.alertmanagers[{i}]");
            compile_relabel(&am.relabel_configs, &format!("{at}.relabel_configs"))
                .map_err(&invalid)?;
            compile_relabel(
                &am.alert_relabel_configs,
                &format!("{at}.alert_relabel_configs"),
            )
            .map_err(&invalid)?;
            let bearer = am.bearer_token.is_some() || am.bearer_token_file.is_some();
            let auths = [am.basic_auth.is_some(), am.authorization.is_some(), bearer];
            if auths.iter().filter(|x| **x).count() > 1 {
                return Err(invalid(format!(
                    "{at}: at most one of basic_auth, authorization and bearer_token/bearer_token_file may be set"
                )));
            }
            if am.bearer_token.is_some() && am.bearer_token_file.is_some() {
                return Err(invalid(format!(
                    "{at}: at most one of bearer_token and bearer_token_file may be set"
                )));
            }
            if am.api_version != "v2" {
                return Err(invalid(format!(
                    "alerting.alertmanagers[{i}].api_version: {:?} is not supported; only v2 is (as in Prometheus 3)",
                    am.api_version
                )));
            }
            if am.scheme != "http" && am.scheme != "https" {
                return Err(invalid(format!(
                    "alerting.alertmanagers[{i}].scheme: must be http or https, got {:?}",
                    am.scheme
                )));
            }
        }
        Ok(cfg)
    }

    /// `storage.tsdb.out_of_order_time_window` (zero when unset).
    pub fn out_of_order_window(&self) -> std::time::Duration {
        self.storage
            .as_ref()
            .and_then(|s| s.tsdb.as_ref())
            .and_then(|t| t.out_of_order_time_window)
            .map_or(std::time::Duration::ZERO, PromDuration::as_std)
    }

    /// Which names writers may use (`global.metric_name_validation_scheme`).
    pub fn name_scheme(&self) -> augur_storage::NameScheme {
        match self.global.metric_name_validation_scheme.as_deref() {
            Some("legacy") => augur_storage::NameScheme::Legacy,
            _ => augur_storage::NameScheme::Utf8,
        }
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The Prometheus sections present that Augur ignores, for a warning at load.
    pub fn ignored_sections(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let sections = [
            ("scrape_configs", self.scrape_configs.is_some()),
            ("scrape_config_files", self.scrape_config_files.is_some()),
            ("remote_write", self.remote_write.is_some()),
            ("remote_read", self.remote_read.is_some()),
            (
                "storage.exemplars",
                self.storage.as_ref().is_some_and(|s| s.exemplars.is_some()),
            ),
            ("tracing", self.tracing.is_some()),
            ("otlp", self.otlp.is_some()),
            ("runtime", self.runtime.is_some()),
        ];
        for (name, present) in sections {
            if present {
                out.push(name);
            }
        }
        for am in &self.alerting.alertmanagers {
            for (name, present) in am.ignored_present() {
                if present && !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Rule files matched by the `rule_files` globs, relative to the config file's directory.
    pub fn rule_file_paths(&self, config_path: &Path) -> Result<Vec<PathBuf>, String> {
        let base = config_path.parent().unwrap_or(Path::new("."));
        let mut out = Vec::new();
        for pattern in &self.rule_files {
            let full = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                base.join(pattern)
            };
            let text = full.to_string_lossy();
            let paths = glob::glob(&text)
                .map_err(|e| format!("invalid rule_files pattern {pattern:?}: {e}"))?;
            for p in paths {
                out.push(p.map_err(|e| format!("cannot read {}: {e}", e.path().display()))?);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("augur.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn prometheus_yml_loads_with_ignored_sections() {
        let cfg = parse(
            "global:\n  scrape_interval: 15s\n  evaluation_interval: 30s\n  external_labels:\n    cluster: eu1\n\
             rule_files:\n  - rules/*.yml\nscrape_configs:\n  - job_name: x\n    static_configs: [{targets: [a]}]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:9093']\n      timeout: 5s\n",
        )
        .unwrap();
        assert_eq!(cfg.global.evaluation_interval, PromDuration(30_000));
        assert_eq!(cfg.global.external_labels["cluster"], "eu1");
        assert_eq!(cfg.alerting.alertmanagers[0].timeout, PromDuration(5000));
        assert_eq!(cfg.alerting.alertmanagers[0].path_prefix, "/");
        assert_eq!(cfg.ignored_sections(), ["scrape_configs"]);
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn the_out_of_order_window_is_read_and_the_rest_of_storage_ignored() {
        let cfg = parse(
            "storage:\n  tsdb:\n    out_of_order_time_window: 30m\n  exemplars:\n    max_exemplars: 10\n",
        )
        .unwrap();
        assert_eq!(cfg.out_of_order_window().as_secs(), 1800);
        assert_eq!(cfg.ignored_sections(), ["storage.exemplars"]);
        assert_eq!(parse("").unwrap().out_of_order_window().as_secs(), 0);
        let err = parse("storage:\n  tsdb:\n    out_of_order_time_window: -1m\n").unwrap_err();
        assert!(
            err.contains(r#"not a valid duration string: "-1m" at line 3"#),
            "{err}"
        );
        assert!(parse("storage:\n  tsdb:\n    out_of_order_window: 1m\n")
            .unwrap_err()
            .contains("unknown field `out_of_order_window`"));
    }

    #[test]
    fn real_prometheus_yml_keys_load() {
        let text = [
            "global:",
            "  scrape_protocols: [PrometheusText0.0.4]",
            "  body_size_limit: 10MB",
            "  sample_limit: 100",
            "alerting:",
            "  alertmanagers:",
            "    - kubernetes_sd_configs: [{role: pod}]",
            "      oauth2: {client_id: x}",
            "      tls_config: {ca: pem, max_version: TLS13}",
            "      basic_auth: {username_file: /u, password_file: /p}",
        ]
        .join("\n");
        let cfg = parse(&text).unwrap();
        let ignored = cfg.ignored_sections();
        assert!(
            ignored.contains(&"kubernetes_sd_configs") && ignored.contains(&"oauth2"),
            "{ignored:?}"
        );
        assert!(parse("global:\n  scrape_protocolz: []\n")
            .unwrap_err()
            .contains("unknown field `scrape_protocolz`"));
    }

    #[test]
    fn printing_hides_secrets_and_ignored_sections() {
        let cfg = parse(
            "alerting:\n  alertmanagers:\n    - basic_auth: {username: u, password: hunter2}\n    - bearer_token: tok\n\
             remote_write:\n  - url: http://x\n    basic_auth: {username: u, password: hunter2}\n",
        )
        .unwrap();
        let yaml = serde_yaml::to_string(&cfg).unwrap();
        assert!(
            !yaml.contains("hunter2") && !yaml.contains("tok\n"),
            "{yaml}"
        );
        assert!(yaml.contains("password: <secret>"), "{yaml}");
    }

    #[test]
    fn alerting_mistakes_are_named() {
        let err =
            parse("alerting:\n  alert_relabel_configs:\n    - action: replace\n").unwrap_err();
        assert!(
            err.ends_with("alerting.alert_relabel_configs[0]: relabel configuration for replace action requires 'target_label' value"),
            "{err}"
        );
        let err = parse(
            "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [a]}]\n    - relabel_configs:\n        - {action: keep}\n        - {action: dance}\n",
        )
        .unwrap_err();
        assert!(
            err.ends_with(
                "alerting.alertmanagers[1].relabel_configs[1]: unknown relabel action \"dance\""
            ),
            "{err}"
        );
        let err = parse(
            "alerting:\n  alertmanagers:\n    - bearer_token: t\n      basic_auth: {username: u}\n",
        )
        .unwrap_err();
        assert!(
            err.ends_with("alerting.alertmanagers[0]: at most one of basic_auth, authorization and bearer_token/bearer_token_file may be set"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let err =
            parse("global:\n  evaluation_interval: 1m\n  evaluaton_interval: 2m\n").unwrap_err();
        assert!(
            err.contains("unknown field `evaluaton_interval`") && err.contains("line 3"),
            "{err}"
        );
        let err = parse("bogus: 1\n").unwrap_err();
        assert!(
            err.contains("unknown field `bogus`") && err.contains("line 1"),
            "{err}"
        );
        let err = parse("global:\n  evaluation_interval: soon\n").unwrap_err();
        assert!(
            err.contains(r#"not a valid duration string: "soon""#) && err.contains("line 2"),
            "{err}"
        );
        let err = parse("alerting:\n  alertmanagers:\n    - api_version: v1\n").unwrap_err();
        assert!(err.contains("only v2 is"), "{err}");
    }
}
