//! Where deployment records, run logs, poll cursors and small documents (the applied
//! config, the observed state) live.

#[cfg(feature = "testing")]
pub mod conformance;
mod file;

pub use file::FileStore;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::Result;
use crate::model::{CommitId, Deployment, HostName, Pair, ProjectName, RunId};

/// Which records [`Store::history`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub project: Option<ProjectName>,
    pub host: Option<HostName>,
    /// At most this many records; `None` means all.
    pub limit: Option<usize>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub records: usize,
    pub logs: usize,
}

/// Persistent state of the engine.
///
/// # Contract
///
/// - [`save`](Store::save) inserts or replaces the record with the record's id, durably (a
///   crash leaves either the old or the new record, never a torn one). It updates the
///   pair's latest record unless a newer record (by creation time, then id) is already
///   there, and the pair's last success when the record succeeded.
/// - [`history`](Store::history) returns records newest first.
/// - Logs are appended in order; [`read_log`](Store::read_log) returns everything appended.
/// - [`mark_interrupted`](Store::mark_interrupted) turns every `running` (and `pending`)
///   record into `failed` with the error `interrupted` and returns them; a store opened by a
///   fresh process calls it once, since no run of an earlier process can still be going.
/// - [`prune`](Store::prune) removes records and logs created before the cutoff, but never a
///   pair's latest record or last success (rollback needs it).
/// - Document names are `[a-z0-9_-]+`.
///
/// # Errors
///
/// [`ErrorKind::Store`](crate::ErrorKind::Store) for unreadable data,
/// [`ErrorKind::Io`](crate::ErrorKind::Io) for failed writes,
/// [`ErrorKind::Locked`](crate::ErrorKind::Locked) when another process owns the store.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    async fn save(&self, record: &Deployment) -> Result<()>;

    async fn get(&self, id: &RunId) -> Result<Option<Deployment>>;

    /// The newest record of a pair.
    async fn latest(&self, pair: &Pair) -> Result<Option<Deployment>>;

    /// The newest succeeded record of a pair.
    async fn last_success(&self, pair: &Pair) -> Result<Option<Deployment>>;

    /// The newest record of every pair, sorted by project then host.
    async fn latest_all(&self) -> Result<Vec<Deployment>>;

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>>;

    async fn append_log(&self, id: &RunId, data: &[u8]) -> Result<()>;

    async fn read_log(&self, id: &RunId) -> Result<Option<Vec<u8>>>;

    /// The last commit the poller or webhook handled for `key` (a repo URL and branch).
    async fn cursor(&self, key: &str) -> Result<Option<CommitId>>;

    async fn set_cursor(&self, key: &str, commit: &CommitId) -> Result<()>;

    async fn mark_interrupted(&self, now: Timestamp) -> Result<Vec<Deployment>>;

    async fn prune(&self, before: Timestamp) -> Result<PruneReport>;

    async fn load_document(&self, name: &str) -> Result<Option<serde_json::Value>>;

    async fn save_document(&self, name: &str, value: &serde_json::Value) -> Result<()>;
}
