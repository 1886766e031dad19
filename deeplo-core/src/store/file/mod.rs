//! The file store: deeplo's default [`Store`], JSON files in a data directory.
//!
//! It keeps the Go tool's layout (see [`layout`]) and reads its records (see [`compat`]), so
//! an existing data directory carries over. Every write is atomic (temporary file, fsync,
//! rename, fsync of the directory); one process owns the directory through a lock file; an
//! in-memory index answers every read of records without touching the disk. File I/O runs on
//! tokio's blocking threads, never on the async ones.

mod audit;
mod compat;
mod files;
mod fsio;
mod index;
mod layout;
mod load;
mod lock;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jiff::Timestamp;

use self::fsio::{create_private_dir, sweep_temp_files};
use self::index::Index;
use self::layout::Layout;
use self::lock::DirLock;
use super::{HistoryQuery, PruneReport, Store};
use crate::access::{AuditEntry, AuditQuery};
use crate::model::{CommitId, Deployment, Pair, RunId};
use crate::{Error, ErrorKind, Result};

/// Deployment records, run logs, poll cursors and documents as files under a data directory.
///
/// Opening takes the directory's lock for the store's lifetime and marks every run that an
/// earlier process left `pending` or `running` as failed (`interrupted`); those records are
/// kept in [`interrupted_at_open`](Self::interrupted_at_open) so that the caller can report
/// or redeploy them. Files that could not be read are listed in [`problems`](Self::problems)
/// rather than stopping the store from opening.
///
/// Besides the names the [`Store`] contract refuses, the document names `projects` and
/// `last_success` are refused: the store keeps its own index under those names.
pub struct FileStore {
    inner: Arc<Inner>,
    interrupted: Vec<Deployment>,
    problems: Vec<Error>,
}

/// What the blocking tasks share.
struct Inner {
    layout: Layout,
    state: Mutex<State>,
    /// Serializes writes of records and index files; held across their I/O, so it is only
    /// ever taken on a blocking thread.
    writer: Mutex<()>,
    /// Serializes appends to the audit log (one entry per write, whole lines only).
    audit_writer: Mutex<()>,
    lock: DirLock,
}

struct State {
    index: Index,
    /// Runs whose record file could not be read at open, and why.
    broken: HashMap<RunId, String>,
}

impl FileStore {
    /// Opens (creating it if needed) the store in `data_dir`.
    ///
    /// This does blocking file I/O; from async code, call it inside
    /// [`tokio::task::spawn_blocking`]. `now` is the time recorded on interrupted runs.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Locked`] when another store holds the directory (in this process or
    /// another), [`ErrorKind::Io`] when the directories cannot be created, and
    /// [`ErrorKind::Store`] when a directory cannot be listed.
    pub fn open(data_dir: &Path, now: Timestamp) -> Result<FileStore> {
        let layout = Layout::new(data_dir);
        for dir in layout.dirs() {
            create_private_dir(&dir)?;
        }
        let lock = DirLock::acquire(&layout.lock_file())?;
        for dir in [layout.state_dir(), layout.poll_dir(), layout.records_dir()] {
            sweep_temp_files(&dir)?;
        }
        let loaded = load::load(&layout, now)?;
        let state = State { index: loaded.index, broken: loaded.broken };
        let inner = Arc::new(Inner {
            layout,
            state: Mutex::new(state),
            writer: Mutex::new(()),
            audit_writer: Mutex::new(()),
            lock,
        });
        let interrupted = inner.mark_interrupted(now)?;
        Ok(FileStore { inner, interrupted, problems: loaded.problems })
    }

    /// The directory the store was opened in.
    pub fn data_dir(&self) -> &Path {
        self.inner.layout.root()
    }

    /// The runs that [`open`](Self::open) found unfinished and marked as failed.
    pub fn interrupted_at_open(&self) -> &[Deployment] {
        &self.interrupted
    }

    /// The files that [`open`](Self::open) could not read, one error each, naming the file.
    pub fn problems(&self) -> &[Error] {
        &self.problems
    }

    /// Runs `f` on a blocking thread.
    async fn blocking<T, F>(&self, operation: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::new(ErrorKind::Store, operation, format!("the store task failed: {e}")))?
    }
}

impl Inner {
    /// The index, locked for a moment; never held across I/O.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("data_dir", &self.data_dir())
            .field("lock", &self.inner.lock.path())
            .field("records", &self.inner.state().index.len())
            .field("problems", &self.problems.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for FileStore {
    async fn save(&self, record: &Deployment) -> Result<()> {
        let record = record.clone();
        self.blocking("save record", move |inner| inner.save_records(&inner.writer(), vec![record])).await
    }

    async fn get(&self, id: &RunId) -> Result<Option<Deployment>> {
        let state = self.inner.state();
        if let Some(why) = state.broken.get(id) {
            return Err(Error::new(ErrorKind::Store, "read record", why.clone()));
        }
        Ok(state.index.get(id).cloned())
    }

    async fn latest(&self, pair: &Pair) -> Result<Option<Deployment>> {
        Ok(self.inner.state().index.latest(pair).cloned())
    }

    async fn last_success(&self, pair: &Pair) -> Result<Option<Deployment>> {
        Ok(self.inner.state().index.last_success(pair).cloned())
    }

    async fn latest_all(&self) -> Result<Vec<Deployment>> {
        Ok(self.inner.state().index.latest_all())
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>> {
        Ok(self.inner.state().index.history(query))
    }

    async fn append_log(&self, id: &RunId, data: &[u8]) -> Result<()> {
        let (id, data) = (id.clone(), data.to_vec());
        self.blocking("append run log", move |inner| inner.append_log(&id, &data)).await
    }

    async fn read_log(&self, id: &RunId) -> Result<Option<Vec<u8>>> {
        let id = id.clone();
        self.blocking("read run log", move |inner| inner.read_log(&id)).await
    }

    async fn cursor(&self, key: &str) -> Result<Option<CommitId>> {
        let key = key.to_owned();
        self.blocking("read poll cursor", move |inner| inner.cursor(&key)).await
    }

    async fn set_cursor(&self, key: &str, commit: &CommitId) -> Result<()> {
        let (key, commit) = (key.to_owned(), commit.clone());
        self.blocking("save poll cursor", move |inner| inner.set_cursor(&key, &commit)).await
    }

    async fn mark_interrupted(&self, now: Timestamp) -> Result<Vec<Deployment>> {
        self.blocking("mark interrupted", move |inner| inner.mark_interrupted(now)).await
    }

    async fn prune(&self, before: Timestamp) -> Result<PruneReport> {
        self.blocking("prune", move |inner| inner.prune(before)).await
    }

    async fn load_document(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let name = name.to_owned();
        self.blocking("load document", move |inner| inner.load_document(&name)).await
    }

    async fn save_document(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let (name, value) = (name.to_owned(), value.clone());
        self.blocking("save document", move |inner| inner.save_document(&name, &value)).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let entry = entry.clone();
        self.blocking("append to the audit log", move |inner| inner.append_audit(&entry)).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let query = query.clone();
        self.blocking("read the audit log", move |inner| inner.audit(&query)).await
    }
}
