//! `augur serve` flags. Names follow Prometheus's wherever Prometheus has the flag, so the
//! binary can be swapped in; `/api/v1/status/flags` reports them under those names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::format_duration;
use crate::params::parse_prometheus_duration;

/// `--storage.tsdb.retention.time`: 0 means the 15-day default, as in Prometheus.
fn retention(s: &str) -> Result<i64, String> {
    duration(s).map(|ms| if ms == 0 { 15 * 86_400_000 } else { ms })
}

/// `--web.listen-address`: an empty host (`:9090`) means every interface, as in Go.
fn listen_address(s: &str) -> Result<String, String> {
    Ok(match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_owned(),
    })
}

fn duration(s: &str) -> Result<i64, String> {
    parse_prometheus_duration(s)
        .ok_or_else(|| format!("not a valid duration: {s:?} (use e.g. 15d, 5m, 1h30m)"))
}

/// Flags of `augur serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Configuration file (prometheus.yml style: global, rule_files, alerting).
    #[arg(long = "config.file", default_value = "augur.yml")]
    pub config_file: PathBuf,
    /// Address to listen on for the HTTP API, remote write and /metrics.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090", value_parser = listen_address)]
    pub listen_address: String,
    /// URL under which Augur is reachable from outside (used in alert links).
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,
    /// Directory of the TSDB.
    #[arg(long = "storage.tsdb.path", default_value = "./data")]
    pub tsdb_path: PathBuf,
    /// How long to keep samples.
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d", value_parser = retention)]
    pub retention_ms: i64,
    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = duration)]
    pub lookback_delta_ms: i64,
    /// Longest a query may run.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = duration)]
    pub query_timeout_ms: i64,
    /// Most samples one query may load.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: u64,
    /// Largest remote-write request body accepted (compressed; the decoded body may be at most
    /// four times this).
    #[arg(long = "web.remote-write.max-body-bytes", default_value_t = 32 << 20)]
    pub remote_write_max_bytes: usize,
    /// Accepted for compatibility: /-/reload is always enabled.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Accepted for compatibility: the remote-write receiver is always enabled.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,
    /// Log level: debug, info, warn or error.
    #[arg(long = "log.level", default_value = "info")]
    pub log_level: String,
}

impl ServeArgs {
    /// Flag name (without dashes) → value, as `/api/v1/status/flags` reports them.
    pub fn flag_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put("config.file", self.config_file.display().to_string());
        put("web.listen-address", self.listen_address.clone());
        put(
            "web.external-url",
            self.external_url.clone().unwrap_or_default(),
        );
        put("storage.tsdb.path", self.tsdb_path.display().to_string());
        put(
            "storage.tsdb.retention.time",
            format_duration(self.retention_ms),
        );
        put(
            "query.lookback-delta",
            format_duration(self.lookback_delta_ms),
        );
        put("query.timeout", format_duration(self.query_timeout_ms));
        put("query.max-samples", self.query_max_samples.to_string());
        put(
            "web.remote-write.max-body-bytes",
            self.remote_write_max_bytes.to_string(),
        );
        put("web.enable-lifecycle", "true".into());
        put("web.enable-remote-write-receiver", "true".into());
        put("log.level", self.log_level.clone());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: ServeArgs,
    }

    #[test]
    fn prometheus_conventions() {
        let a = W::parse_from([
            "augur",
            "--web.listen-address=:9091",
            "--storage.tsdb.retention.time=0",
        ])
        .a;
        assert_eq!(a.listen_address, "0.0.0.0:9091");
        assert_eq!(
            a.retention_ms,
            15 * 86_400_000,
            "0 means the default, as in Prometheus"
        );
        let a = W::parse_from(["augur"]).a;
        assert_eq!(a.listen_address, "127.0.0.1:9090");
        assert_eq!(a.flag_map()["storage.tsdb.retention.time"], "15d");
    }
}
