//! A TSDB in its own temporary directory, removed when dropped: the store of tests, of
//! `augur rules test` (one per test group) and of anything else that needs a throwaway store.

use augur_storage::{Appendable, Appender, Options, Querier, Queryable, Tsdb};

/// A [`Tsdb`] opened without background work in a fresh temp dir; the dir lives as long as
/// the store.
#[derive(Debug)]
pub struct TempTsdb {
    db: Tsdb,
    _dir: tempfile::TempDir,
}

impl TempTsdb {
    /// Creates the directory and opens the store; the error says which of the two failed.
    pub fn new() -> Result<TempTsdb, String> {
        let dir = tempfile::TempDir::new().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let db = Tsdb::open(
            dir.path(),
            Options {
                background: false,
                ..Options::default()
            },
        )
        .map_err(|e| format!("cannot open a store in {}: {e}", dir.path().display()))?;
        Ok(TempTsdb { db, _dir: dir })
    }
}

impl Appendable for TempTsdb {
    fn appender(&self) -> Box<dyn Appender + Send + '_> {
        self.db.appender()
    }
}

impl Queryable for TempTsdb {
    fn querier(&self, mint: i64, maxt: i64) -> augur_storage::Result<Box<dyn Querier + '_>> {
        self.db.querier(mint, maxt)
    }
}
