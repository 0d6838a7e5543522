//! Augur's own metrics, served at `/metrics` (OpenMetrics text via `prometheus-client`).
//!
//! Names use an `augur_` prefix; where Prometheus has an equivalent, the name mirrors it
//! (`augur_tsdb_head_series` ↔ `prometheus_tsdb_head_series`,
//! `augur_http_request_duration_seconds{handler}` ↔ `prometheus_http_request_duration_seconds`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use augur_storage::Tsdb;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabels {
    pub handler: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub handler: String,
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Handles to every metric the server updates directly.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub request_duration: Family<HandlerLabels, Histogram>,
    pub requests: Family<RequestLabels, Counter>,
    /// Samples refused by the remote-write receiver, by reason.
    pub samples_rejected: Family<ReasonLabels, Counter>,
    pub remote_write_requests: Family<RequestLabels, Counter>,
    pub config_reload_success: Gauge,
    pub config_reload_timestamp: Gauge,
    /// PromQL queries being evaluated or waiting for a slot (`prometheus_engine_queries`).
    pub engine_queries: Gauge,
    /// `--query.max-concurrency` (`prometheus_engine_queries_concurrent_max`).
    pub engine_queries_concurrent_max: Gauge,
    /// Finished query evaluations by outcome: `success` or the API's error type.
    pub engine_query_outcomes: Family<OutcomeLabels, Counter>,
}

/// Reports the TSDB's statistics at scrape time.
#[derive(Debug, Clone, Default)]
pub struct TsdbCollector {
    pub db: Arc<OnceLock<Arc<Tsdb>>>,
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v.load(Ordering::Relaxed));
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// One gauge family with one series per `(label value, value)`.
fn labelled_gauges(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (value, v) in values {
        let labels = [(label.to_string(), value.to_string())];
        ConstGauge::new(*v as i64).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for TsdbCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(db) = self.db.get() else {
            return Ok(());
        };
        let c = db.counters();
        counter(
            &mut enc,
            "augur_tsdb_samples_appended",
            "Samples written to the TSDB.",
            &c.samples_appended,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_out_of_order_samples",
            "Samples refused as older than their series' newest sample (out-of-order window off).",
            &c.samples_out_of_order,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_out_of_order_samples_appended",
            "Samples accepted older than their series' newest sample, within the out-of-order window.",
            &c.samples_out_of_order_appended,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_too_old_samples",
            "Samples refused as older than the out-of-order window allows.",
            &c.samples_too_old,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_duplicate_samples",
            "Samples refused for repeating a timestamp with another value.",
            &c.samples_duplicate,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_out_of_bounds_samples",
            "Samples refused for a timestamp outside what the store accepts (past retention).",
            &c.samples_out_of_bounds,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_commits",
            "Appender commits.",
            &c.commits,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_series_created",
            "Series created.",
            &c.series_created,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_series_removed",
            "Series removed by retention.",
            &c.series_removed,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_checkpoints",
            "Head checkpoints written.",
            &c.checkpoints,
        )?;
        counter(
            &mut enc,
            "augur_tsdb_chunks_sealed",
            "Chunks sealed and written.",
            &c.chunks_sealed,
        )?;
        let st = db.stats();
        gauge(
            &mut enc,
            "augur_tsdb_head_series",
            "Series in the head (active series).",
            st.series as i64,
        )?;
        gauge(
            &mut enc,
            "augur_tsdb_head_chunks",
            "Open chunks in the head.",
            st.open_chunks as i64,
        )?;
        gauge(
            &mut enc,
            "augur_tsdb_head_memory_bytes",
            "Memory held by head series (labels, chunks, tables).",
            st.head_bytes as i64,
        )?;
        gauge(
            &mut enc,
            "augur_tsdb_wal_bytes",
            "Bytes in the WAL's segment files (samples since the last head checkpoint).",
            st.wal_bytes as i64,
        )?;
        labelled_gauges(
            &mut enc,
            "augur_tsdb_rocksdb_memory_bytes",
            "RocksDB's memory by kind: memtables, block_cache, table_readers.",
            "kind",
            &st.rocksdb_memory,
        )?;
        labelled_gauges(
            &mut enc,
            "augur_tsdb_storage_bytes",
            "Live RocksDB SST bytes per column family.",
            "cf",
            &st.sst_bytes,
        )?;
        Ok(())
    }
}

/// Reports each rule group's evaluation statistics at scrape time, under Prometheus's
/// `prometheus_rule_*` names (dashboards for Prometheus's rule manager work unchanged), with
/// `rule_group="<file>;<group>"` as Prometheus labels them.
#[derive(Debug, Clone, Default)]
pub struct RulesCollector {
    pub rules: Arc<OnceLock<Arc<augur_rules::Manager>>>,
}

impl Collector for RulesCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(m) = self.rules.get() else {
            return Ok(());
        };
        let groups = m.groups();
        let key =
            |g: &augur_rules::Group| [("rule_group".to_string(), format!("{};{}", g.file, g.name))];
        type Read = fn(&augur_rules::Group) -> f64;
        let gauges: [(&str, &str, Read); 4] = [
            (
                "prometheus_rule_group_interval_seconds",
                "The interval of a rule group.",
                |g| g.interval_ms as f64 / 1000.0,
            ),
            ("prometheus_rule_group_rules", "The number of rules.", |g| {
                g.rules.len() as f64
            }),
            (
                "prometheus_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
                |g| g.last_evaluation().1.as_secs_f64(),
            ),
            (
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "The timestamp of the last rule group evaluation in seconds.",
                |g| g.last_evaluation().0.map_or(0.0, |t| t as f64 / 1000.0),
            ),
        ];
        for (name, help, read) in gauges {
            let mut fam = enc.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for g in &groups {
                ConstGauge::new(read(g)).encode(fam.encode_family(&key(g))?)?;
            }
        }
        type Count = fn(&augur_rules::Group) -> &AtomicU64;
        let counters: [(&str, &str, Count); 3] = [
            (
                "prometheus_rule_group_iterations",
                "The number of scheduled rule group evaluations.",
                |g| &g.iterations_total,
            ),
            (
                "prometheus_rule_group_iterations_missed",
                "The number of rule group evaluations missed due to slow rule group evaluation.",
                |g| &g.iterations_missed,
            ),
            (
                "prometheus_rule_evaluation_failures",
                "The number of rule evaluation failures.",
                |g| &g.eval_failures,
            ),
        ];
        for (name, help, read) in counters {
            let mut fam = enc.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for g in &groups {
                ConstCounter::new(read(g).load(Ordering::Relaxed))
                    .encode(fam.encode_family(&key(g))?)?;
            }
        }
        let st = m.status();
        let g = ConstGauge::new(i64::from(st.success));
        g.encode(enc.encode_descriptor(
            "augur_rule_files_last_load_successful",
            "Whether the latest load of the rule files succeeded (on failure the previous rules keep running).",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Reports the notifier's per-Alertmanager counters at scrape time under Prometheus's
/// `prometheus_notifications_*` names, labelled `alertmanager="<url>"` as Prometheus 3 does.
/// Latency is a histogram (Prometheus's buckets) under both Prometheus names: where
/// Prometheus's `_latency_seconds` is a summary, ours has the same `_sum` and `_count` series
/// but buckets instead of quantiles (prometheus-client has no summary type).
#[derive(Debug, Clone)]
pub struct NotifierCollector {
    pub notifier: Arc<augur_rules::Notifier>,
}

impl Collector for NotifierCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        use augur_rules::notifier::{EndpointStats, LATENCY_BUCKETS};
        use prometheus_client::metrics::MetricType;
        let endpoints = self.notifier.endpoints();
        let key = |url: &str| [("alertmanager".to_string(), url.to_string())];
        type Read = fn(&EndpointStats) -> &AtomicU64;
        let families: [(&str, &str, MetricType, Read); 4] = [
            (
                "prometheus_notifications_sent",
                "Total number of alerts sent.",
                MetricType::Counter,
                |s| &s.sent,
            ),
            (
                "prometheus_notifications_errors",
                "Total number of sent alerts affected by errors.",
                MetricType::Counter,
                |s| &s.errors,
            ),
            (
                "prometheus_notifications_dropped",
                "Total number of alerts dropped due to errors when sending to Alertmanager.",
                MetricType::Counter,
                |s| &s.dropped,
            ),
            (
                "prometheus_notifications_queue_length",
                "The number of alert notifications in the queue.",
                MetricType::Gauge,
                |s| &s.queue_length,
            ),
        ];
        for (name, help, kind, read) in families {
            let mut fam = enc.encode_descriptor(name, help, None, kind)?;
            for e in &endpoints {
                let v = read(&e.stats).load(Ordering::Relaxed);
                let labels = key(&e.url);
                let m = fam.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(v).encode(m)?,
                    _ => ConstGauge::new(v as i64).encode(m)?,
                }
            }
        }
        for name in [
            "prometheus_notifications_latency_seconds",
            "prometheus_notifications_latency_histogram_seconds",
        ] {
            let mut fam = enc.encode_descriptor(
                name,
                "Latency of sending alert notifications.",
                None,
                MetricType::Histogram,
            )?;
            for e in &endpoints {
                let l = e.stats.latency();
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::MAX])
                    .zip(l.buckets)
                    .collect();
                fam.encode_family(&key(&e.url))?
                    .encode_histogram::<Vec<(String, String)>>(
                        l.sum_seconds,
                        l.count,
                        &buckets,
                        None,
                    )?;
            }
        }
        gauge(
            &mut enc,
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            self.notifier.options().queue_capacity as i64,
        )?;
        gauge(
            &mut enc,
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            endpoints.len() as i64,
        )?;
        Ok(())
    }
}

impl Metrics {
    pub fn new(tsdb: TsdbCollector, rules: RulesCollector, notifier: NotifierCollector) -> Metrics {
        let mut registry = Registry::default();
        let request_duration = Family::<HandlerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0,
            ])
        });
        registry.register(
            "augur_http_request_duration_seconds",
            "Latency of HTTP requests by handler.",
            request_duration.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "augur_http_requests",
            "HTTP requests by handler and status code.",
            requests.clone(),
        );
        let samples_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "augur_remote_write_samples_rejected",
            "Samples the remote-write receiver refused, by reason.",
            samples_rejected.clone(),
        );
        let remote_write_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "augur_remote_write_requests",
            "Remote-write requests by protocol version (handler) and status code.",
            remote_write_requests.clone(),
        );
        let config_reload_success = Gauge::default();
        registry.register(
            "augur_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or not (0).",
            config_reload_success.clone(),
        );
        let config_reload_timestamp = Gauge::default();
        registry.register(
            "augur_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration reload.",
            config_reload_timestamp.clone(),
        );
        let engine_queries = Gauge::default();
        registry.register(
            "augur_engine_queries",
            "PromQL queries being evaluated or waiting for a slot.",
            engine_queries.clone(),
        );
        let engine_queries_concurrent_max = Gauge::default();
        registry.register(
            "augur_engine_queries_concurrent_max",
            "Most PromQL queries evaluated at once (--query.max-concurrency).",
            engine_queries_concurrent_max.clone(),
        );
        let engine_query_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "augur_engine_query_outcomes",
            "Finished PromQL query evaluations by outcome: success or the API error type.",
            engine_query_outcomes.clone(),
        );
        let build_info = Family::<Vec<(String, String)>, Gauge>::default();
        build_info
            .get_or_create(&vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )])
            .set(1);
        registry.register("augur_build_info", "Augur's version.", build_info);
        registry.register_collector(Box::new(tsdb));
        registry.register_collector(Box::new(rules));
        registry.register_collector(Box::new(notifier));
        Metrics {
            registry,
            request_duration,
            requests,
            samples_rejected,
            remote_write_requests,
            config_reload_success,
            config_reload_timestamp,
            engine_queries,
            engine_queries_concurrent_max,
            engine_query_outcomes,
        }
    }

    pub fn reject(&self, reason: &str, n: u64) {
        if n > 0 {
            self.samples_rejected
                .get_or_create(&ReasonLabels {
                    reason: reason.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
