//! `augur serve` flags. Names follow Prometheus's wherever Prometheus has the flag, so the
//! binary can be swapped in; `/api/v1/status/flags` reports them under those names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::format_duration;
use crate::params::parse_prometheus_duration;

/// `--storage.tsdb.retention.time`: 0 means the 15-day default, as in Prometheus.
pub(crate) fn retention(s: &str) -> Result<i64, String> {
    duration(s).map(|ms| if ms == 0 { 15 * 86_400_000 } else { ms })
}

/// `--web.listen-address`: an empty host (`:9090`) means every interface, as in Go.
fn listen_address(s: &str) -> Result<String, String> {
    Ok(match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_owned(),
    })
}

/// A duration flag in Prometheus's syntax, in milliseconds.
pub(crate) fn duration(s: &str) -> Result<i64, String> {
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
    /// Longest a query may run (a request's `timeout` parameter can only shorten it).
    #[arg(long = "query.timeout", default_value = "2m", value_parser = duration)]
    pub query_timeout_ms: i64,
    /// Most samples one query may hold in memory at once; a query needing more fails (422).
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: u64,
    /// Most queries evaluated at once; more wait for a slot, and the wait counts against
    /// their timeout.
    #[arg(long = "query.max-concurrency", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub query_max_concurrency: u32,
    /// Largest remote-write request body accepted (compressed; the decoded body may be at most
    /// four times this).
    #[arg(long = "web.remote-write.max-body-bytes", default_value_t = 32 << 20)]
    pub remote_write_max_bytes: usize,
    /// Alerts queued per Alertmanager; when full, the oldest are dropped (and counted).
    #[arg(long = "alertmanager.notification-queue-capacity", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub notification_queue_capacity: u64,
    /// Send queued alerts before shutting down (`=false` drops them).
    #[arg(long = "alertmanager.drain-notification-queue-on-shutdown", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub drain_notification_queue: bool,
    /// Least time between two notifications of the same firing alert.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m", value_parser = duration)]
    pub resend_delay_ms: i64,
    /// Longest outage after which `for` state is still restored at start.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h", value_parser = duration)]
    pub for_outage_tolerance_ms: i64,
    /// Least `for` time an alert still has to wait after a restore.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m", value_parser = duration)]
    pub for_grace_period_ms: i64,
    /// Accepted for compatibility: /-/reload is always enabled.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Accepted for compatibility: the remote-write receiver is always enabled.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,
    /// The exporter-toolkit web configuration (basic authentication, response headers, rate
    /// limit); read at start and on reload. See the README.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
    /// Enables the admin API (`/api/v1/admin/tsdb/`: `snapshot`, `delete_series`,
    /// `clean_tombstones`), as in Prometheus.
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,
    /// Log level: debug, info, warn or error.
    #[arg(long = "log.level", default_value = "info")]
    pub log_level: String,
    /// Prometheus flags accepted so an existing command line starts Augur; they have no effect
    /// (a warning at start names each one given).
    #[command(flatten)]
    pub ignored: IgnoredFlags,
}

/// Whether an ignored flag was given on the command line.
trait Given {
    fn given(&self) -> bool;
}

impl Given for bool {
    fn given(&self) -> bool {
        *self
    }
}

impl Given for Option<String> {
    fn given(&self) -> bool {
        self.is_some()
    }
}

impl Given for Vec<String> {
    fn given(&self) -> bool {
        !self.is_empty()
    }
}

/// Defines [`IgnoredFlags`]: one hidden flag per entry, `bool` for a switch, `Option<String>`
/// for a flag with a value, `Vec<String>` for one that may repeat.
macro_rules! ignored_flags {
    ($($field:ident: $ty:ty = $name:literal,)*) => {
        /// Prometheus flags Augur accepts and ignores, so that a Prometheus command line starts
        /// Augur (a warning at start names each one given). Flags that would change what is
        /// stored or who may read it (`--storage.tsdb.retention`, `--agent`) are not here:
        /// Augur refuses to start rather than ignore them.
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct IgnoredFlags {
            $(
                #[arg(long = $name, hide = true)]
                pub $field: $ty,
            )*
        }

        impl IgnoredFlags {
            /// Names of the ignored flags that were given, in declaration order.
            pub fn given(&self) -> Vec<&'static str> {
                let mut out = Vec::new();
                $(if Given::given(&self.$field) {
                    out.push($name);
                })*
                out
            }
        }
    };
}

ignored_flags! {
    route_prefix: Option<String> = "web.route-prefix",
    console_templates: Option<String> = "web.console.templates",
    console_libraries: Option<String> = "web.console.libraries",
    page_title: Option<String> = "web.page-title",
    log_format: Option<String> = "log.format",
    retention_size: Option<String> = "storage.tsdb.retention.size",
    wal_compression: bool = "storage.tsdb.wal-compression",
    min_block_duration: Option<String> = "storage.tsdb.min-block-duration",
    max_block_duration: Option<String> = "storage.tsdb.max-block-duration",
    enable_feature: Vec<String> = "enable-feature",
    enable_otlp_receiver: bool = "web.enable-otlp-receiver",
    accepted_protobuf_messages: Vec<String> = "web.remote-write-receiver.accepted-protobuf-messages",
    read_timeout: Option<String> = "web.read-timeout",
    max_connections: Option<String> = "web.max-connections",
    max_notifications_subscribers: Option<String> = "web.max-notifications-subscribers",
    local_assets: Option<String> = "web.local-assets",
    user_assets: Option<String> = "web.user-assets",
    cors_origin: Option<String> = "web.cors.origin",
    config_auto_reload_interval: Option<String> = "config.auto-reload-interval",
    no_lockfile: bool = "storage.tsdb.no-lockfile",
    use_lockfile: bool = "storage.tsdb.use-lockfile",
    allow_overlapping_compaction: bool = "storage.tsdb.allow-overlapping-compaction",
    head_chunks_write_queue_size: Option<String> = "storage.tsdb.head-chunks-write-queue-size",
    samples_per_chunk: Option<String> = "storage.tsdb.samples-per-chunk",
    wal_segment_size: Option<String> = "storage.tsdb.wal-segment-size",
    max_block_chunk_segment_size: Option<String> = "storage.tsdb.max-block-chunk-segment-size",
    wal_compression_type: Option<String> = "storage.tsdb.wal-compression-type",
    remote_flush_deadline: Option<String> = "storage.remote.flush-deadline",
    remote_read_sample_limit: Option<String> = "storage.remote.read-sample-limit",
    remote_read_concurrent_limit: Option<String> = "storage.remote.read-concurrent-limit",
    remote_read_max_bytes_in_frame: Option<String> = "storage.remote.read-max-bytes-in-frame",
    rules_max_concurrent_evals: Option<String> = "rules.max-concurrent-evals",
    scrape_adjust_timestamps: bool = "scrape.adjust-timestamps",
    scrape_timestamp_tolerance: Option<String> = "scrape.timestamp-tolerance",
    scrape_discovery_reload_interval: Option<String> = "scrape.discovery-reload-interval",
    notification_batch_size: Option<String> = "alertmanager.notification-batch-size",
    auto_gomemlimit: bool = "auto-gomemlimit",
    auto_gomemlimit_ratio: Option<String> = "auto-gomemlimit.ratio",
    auto_gomaxprocs: bool = "auto-gomaxprocs",
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
            "web.config.file",
            self.web_config_file
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
        );
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
            "query.max-concurrency",
            self.query_max_concurrency.to_string(),
        );
        put(
            "web.remote-write.max-body-bytes",
            self.remote_write_max_bytes.to_string(),
        );
        put(
            "alertmanager.notification-queue-capacity",
            self.notification_queue_capacity.to_string(),
        );
        put(
            "alertmanager.drain-notification-queue-on-shutdown",
            self.drain_notification_queue.to_string(),
        );
        put(
            "rules.alert.resend-delay",
            format_duration(self.resend_delay_ms),
        );
        put(
            "rules.alert.for-outage-tolerance",
            format_duration(self.for_outage_tolerance_ms),
        );
        put(
            "rules.alert.for-grace-period",
            format_duration(self.for_grace_period_ms),
        );
        put("web.enable-lifecycle", "true".into());
        put("web.enable-remote-write-receiver", "true".into());
        put("web.enable-admin-api", self.enable_admin_api.to_string());
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
        let a = W::parse_from([
            "augur",
            "--web.enable-admin-api",
            "--enable-feature=exemplar-storage",
            "--log.format=json",
        ])
        .a;
        assert_eq!(a.ignored.given(), ["log.format", "enable-feature"]);
        assert!(a.enable_admin_api);
        let a = W::parse_from([
            "augur",
            "--auto-gomaxprocs",
            "--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
            "--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
            "--web.read-timeout",
            "5m",
        ])
        .a;
        assert_eq!(
            a.ignored.given(),
            [
                "web.remote-write-receiver.accepted-protobuf-messages",
                "web.read-timeout",
                "auto-gomaxprocs"
            ]
        );
        assert_eq!(a.ignored.read_timeout.as_deref(), Some("5m"));
        let a = W::parse_from(["augur", "--web.config.file=web.yml"]).a;
        assert_eq!(
            a.web_config_file.as_deref(),
            Some(std::path::Path::new("web.yml"))
        );
        assert!(W::try_parse_from(["augur", "--storage.tsdb.retention=1d"]).is_err());
        let a = W::parse_from(["augur"]).a;
        assert_eq!(a.listen_address, "127.0.0.1:9090");
        assert_eq!(a.flag_map()["storage.tsdb.retention.time"], "15d");
        let flags = a.flag_map();
        assert_eq!(flags["query.timeout"], "2m");
        assert_eq!(flags["query.lookback-delta"], "5m");
        assert_eq!(flags["query.max-samples"], "50000000");
        assert_eq!(flags["query.max-concurrency"], "20");
        assert_eq!(flags["alertmanager.notification-queue-capacity"], "10000");
        assert_eq!(flags["rules.alert.resend-delay"], "1m");
        assert!(a.drain_notification_queue);
        let a = W::parse_from([
            "augur",
            "--alertmanager.drain-notification-queue-on-shutdown=false",
            "--rules.alert.resend-delay=30s",
        ])
        .a;
        assert!(!a.drain_notification_queue);
        assert_eq!(a.resend_delay_ms, 30_000);
    }
}
