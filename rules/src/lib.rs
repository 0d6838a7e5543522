//! Recording and alerting rules (issue "Rules"): rule files, group evaluation, alert state,
//! and the Alertmanager notifier. It sees the engine through a query function and storage
//! through the `augur_storage` traits.
//!
//! Nothing is implemented here yet; the crate exists so the workspace has its final shape.

pub mod template;
