//! Augur's server crate: the only crate that speaks HTTP or JSON, and the only one that names
//! the storage implementation (`augur_storage::Tsdb`).
//!
//! Entry point: [`server::Server::start`]. Modules: [`remote_write`] (the receiver, usable
//! without HTTP), [`query`] (PromQL instant and range queries), [`api_v1`] (metadata and
//! status endpoints), [`params`] (Prometheus's parameter parsing), [`config`] (the YAML
//! config), [`metrics`] (self-metrics), [`alertmanager`] (alerts to Alertmanager over HTTP).

pub mod alertmanager;
pub mod api_v1;
pub mod backtest_cli;
pub mod config;
pub mod error;
pub mod flags;
pub mod metadata;
pub mod metrics;
pub mod params;
pub mod query;
pub mod remote_write;
pub mod rules_api;
pub mod rules_cli;
pub mod server;
pub mod tls;
pub mod ui;
pub mod web_config;

/// Protobuf types generated from `proto/` by `build.rs`.
pub mod proto {
    /// Remote-Write 1.0 (`prometheus.WriteRequest`).
    #[allow(missing_debug_implementations, clippy::all, reason = "generated code")]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
    }
    /// Remote-Write 2.0 (`io.prometheus.write.v2.Request`).
    #[allow(missing_debug_implementations, clippy::all, reason = "generated code")]
    pub mod v2 {
        include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
    }
}

/// The allocator the `augur` binary and the benchmarks use. glibc's malloc spent a third of
/// remote-write ingestion in allocation and free-list upkeep; mimalloc is a small, widely used
/// allocator built for many short-lived allocations across threads.
pub type GlobalAllocator = mimalloc::MiMalloc;

pub use flags::ServeArgs;
pub use server::Server;
