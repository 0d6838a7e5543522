//! The backtest crate's errors, sorted by who is at fault.

use thiserror::Error;

/// Everything import, replay and backtest can fail with.
#[derive(Debug, Error)]
pub enum Error {
    // --- the caller's input ---
    /// A file, flag or line that cannot be used: `what` names it (a path, `path:line:col`, a
    /// flag).
    #[error("{what}: {message}")]
    Input { what: String, message: String },
    /// The expression does not parse or fails to evaluate.
    #[error("{0}")]
    Query(String),

    // --- the store's fault ---
    #[error("storage: {0}")]
    Storage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
