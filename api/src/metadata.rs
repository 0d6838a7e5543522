//! Metric metadata (`type`, `help`, `unit`) received over remote write, served by
//! `/api/v1/metadata`.
//!
//! Kept in memory and bounded: Prometheus re-sends metadata every minute (`send_metadata`),
//! so after a restart the store refills within one send interval. (Prometheus itself serves
//! only scraped metadata here; serving what remote write delivers is what an Augur user
//! expects, since Augur does not scrape.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use serde::Serialize;

/// One metadata entry, in Prometheus's JSON field order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Metadata {
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: String,
    pub help: String,
}

/// Most distinct entries kept per metric family, and most families.
const MAX_PER_METRIC: usize = 10;
const MAX_METRICS: usize = 100_000;

#[derive(Debug, Default)]
pub struct MetadataStore {
    inner: RwLock<BTreeMap<String, BTreeSet<Metadata>>>,
}

/// The name Prometheus uses for a metric type number (remote write 1.0 and 2.0 agree).
pub fn type_name(t: i32) -> &'static str {
    match t {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

impl MetadataStore {
    pub fn record(&self, metric: &str, md: Metadata) {
        if metric.is_empty() {
            return;
        }
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(metric) && map.len() >= MAX_METRICS {
            return;
        }
        let set = map.entry(metric.to_owned()).or_default();
        if set.len() < MAX_PER_METRIC || set.contains(&md) {
            set.insert(md);
        }
    }

    /// Metadata per metric: only `metric` if given; at most `limit` metrics (if `Some`) and
    /// `limit_per_metric` entries each (if `Some`).
    pub fn query(
        &self,
        metric: Option<&str>,
        limit: Option<usize>,
        limit_per_metric: Option<usize>,
    ) -> BTreeMap<String, Vec<Metadata>> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter(|(name, _)| metric.is_none_or(|m| m == name.as_str()))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(name, set)| {
                let entries = set
                    .iter()
                    .take(limit_per_metric.unwrap_or(usize::MAX))
                    .cloned()
                    .collect();
                (name.clone(), entries)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(kind: &str, help: &str) -> Metadata {
        Metadata {
            kind: kind.into(),
            unit: String::new(),
            help: help.into(),
        }
    }

    #[test]
    fn dedups_and_limits() {
        let s = MetadataStore::default();
        s.record("a", md("counter", "x"));
        s.record("a", md("counter", "x"));
        s.record("a", md("counter", "y"));
        s.record("b", md("gauge", "z"));
        assert_eq!(s.query(None, None, None)["a"].len(), 2);
        assert_eq!(s.query(None, None, Some(1))["a"].len(), 1);
        assert_eq!(s.query(None, Some(1), None).len(), 1);
        assert_eq!(
            s.query(Some("b"), None, None).keys().collect::<Vec<_>>(),
            ["b"]
        );
        assert!(s.query(None, Some(0), None).is_empty());
    }
}
