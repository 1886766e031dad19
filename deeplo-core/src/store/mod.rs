//! Where deployment records, run logs, poll cursors and small documents (the applied
//! config, the observed state) live.

#[cfg(feature = "testing")]
pub mod conformance;
mod file;

pub use file::FileStore;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::Result;
use crate::access::{AuditEntry, AuditQuery};
use crate::model::{CommitId, Deployment, HostName, Pair, ProjectName, RunId};

/// Which records [`Store::history`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only records of this project; `None` means every project.
    pub project: Option<ProjectName>,
    /// Only records on this host; `None` means every host.
    pub host: Option<HostName>,
    /// At most this many records (the newest, after the filters); `None` means all.
    pub limit: Option<usize>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Deployment records removed.
    pub records: usize,
    /// Run logs removed (a record may have had none).
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
/// - [`get`](Store::get) returns the record last saved under the id, unchanged; `None` for
///   an unknown id.
/// - [`history`](Store::history) returns records newest first (by creation time, then id),
///   each id once, filtered by the query's project and host, then cut to its limit.
/// - Logs are appended in order, bytes as given, one log per run id;
///   [`read_log`](Store::read_log) returns everything appended, or `None` when nothing was.
/// - [`cursor`](Store::cursor) returns what [`set_cursor`](Store::set_cursor) last stored
///   for the key; keys are any text (a URL, `#`, a branch with slashes).
/// - [`mark_interrupted`](Store::mark_interrupted) turns every `running` (and `pending`)
///   record into `failed` with the error `interrupted` and returns them; a store opened by a
///   fresh process calls it once, since no run of an earlier process can still be going.
/// - [`prune`](Store::prune) removes records and logs created before the cutoff, but never a
///   pair's latest record or last success (rollback needs it).
/// - [`load_document`](Store::load_document) returns the JSON value
///   [`save_document`](Store::save_document) last stored under the name, or `None`. Document
///   names are `[a-z0-9_-]+`; any other name is refused with
///   [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
/// - [`append_audit`](Store::append_audit) appends an entry durably and never changes or
///   removes one; [`audit`](Store::audit) returns the entries matching the query's filters,
///   newest first (the reverse of the order they were appended in), cut to its limit.
/// - Every method may be called concurrently from several tasks. A deployment's own saves
///   come one at a time, in order (its `pending` record first).
///
/// The conformance suite (`store::conformance`, feature `testing`) checks every point that
/// one caller can observe; every implementation runs it.
///
/// # Errors
///
/// [`ErrorKind::Store`](crate::ErrorKind::Store) for unreadable data,
/// [`ErrorKind::Io`](crate::ErrorKind::Io) for failed writes,
/// [`ErrorKind::Locked`](crate::ErrorKind::Locked) when another process owns the store.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Inserts or replaces the record with `record.id`, durably.
    async fn save(&self, record: &Deployment) -> Result<()>;

    /// The record with this id.
    async fn get(&self, id: &RunId) -> Result<Option<Deployment>>;

    /// The newest record of a pair.
    async fn latest(&self, pair: &Pair) -> Result<Option<Deployment>>;

    /// The newest succeeded record of a pair.
    async fn last_success(&self, pair: &Pair) -> Result<Option<Deployment>>;

    /// The newest record of every pair, sorted by project then host.
    async fn latest_all(&self) -> Result<Vec<Deployment>>;

    /// Records matching `query`, newest first.
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>>;

    /// Appends `data` to the run log of `id` (already redacted by the caller).
    async fn append_log(&self, id: &RunId, data: &[u8]) -> Result<()>;

    /// The whole run log of `id`.
    async fn read_log(&self, id: &RunId) -> Result<Option<Vec<u8>>>;

    /// The last commit the poller or webhook handled for `key` (a repo URL and branch).
    async fn cursor(&self, key: &str) -> Result<Option<CommitId>>;

    /// Moves the cursor of `key` to `commit` (replacing it, durably).
    async fn set_cursor(&self, key: &str, commit: &CommitId) -> Result<()>;

    /// Fails every unfinished record with the error `interrupted`, finished at `now`;
    /// returns them as saved.
    async fn mark_interrupted(&self, now: Timestamp) -> Result<Vec<Deployment>>;

    /// Removes records and logs created before `before`, keeping what rollback needs.
    async fn prune(&self, before: Timestamp) -> Result<PruneReport>;

    /// A small JSON document (the applied config is `applied_config`).
    async fn load_document(&self, name: &str) -> Result<Option<serde_json::Value>>;

    /// Stores a small JSON document under `name`, replacing it, atomically.
    async fn save_document(&self, name: &str, value: &serde_json::Value) -> Result<()>;

    /// Appends `entry` to the audit log, durably.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// Audit entries matching `query`, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
}
