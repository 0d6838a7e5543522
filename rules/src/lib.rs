//! Recording and alerting rules (issue "Rules"): rule files, group evaluation, alert state
//! and rule unit tests.
//!
//! - [`file`] reads Prometheus's rule-file format strictly, with positions in every error.
//! - [`group`] evaluates a group's rules in order and writes their output through the
//!   `augur_storage` traits; [`manager`] runs groups on their schedules and reloads them.
//! - [`alerting`] is the alert state machine; [`rule`] holds recording rules and what rules
//!   share, notably [`QueryFunc`]: rules reach the engine only through that function.
//! - [`template`] is Go's `text/template` with Prometheus's functions, for annotations.
//! - [`unittest`] runs rule unit tests in promtool's format.
//! - [`notifier`] queues alerts and delivers them to Alertmanagers through a [`Transport`]
//!   (per-Alertmanager queues and threads); [`relabel`] is Prometheus's relabelling.
//!
//! Not here: HTTP and JSON. The `api` crate serves `/api/v1/rules` and `/api/v1/alerts` and
//! implements [`Transport`] (Alertmanager's v2 JSON over HTTP); rules hand alerts to the
//! notifier only through [`NotifyFunc`].

pub mod alerting;
pub mod file;
pub mod group;
mod locate;
pub mod manager;
pub mod notifier;
pub mod relabel;
pub mod rule;
pub mod template;
pub mod unittest;

pub use alerting::{Alert, AlertState, AlertingRule};
pub use file::{FileError, GroupSpec, ParseOptions, RuleFile, RuleKind, RuleSpec};
pub use group::{Group, GroupContext, NotifyFunc, Rule, Storage};
pub use manager::{Manager, ManagerOptions, ReloadStatus};
pub use notifier::{
    notify_func, AlertmanagerSet, Notifier, NotifierAlert, NotifierOptions, Transport,
};
pub use rule::{Health, QueryFunc, RecordingRule, RuleStatus};
