//! The run log: a plain-text account of one run, kept in the store next to its record.
//!
//! Lines are buffered and written at step boundaries; only whole lines are written, so the
//! redactor always sees a secret in one piece.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use crate::model::RunId;
use crate::secret::Redactor;
use crate::store::Store;
use crate::transport::{OutputSink, OutputStream};

/// Collects a run's log and writes it to the store.
pub(crate) struct RunLog {
    store: Arc<dyn Store>,
    id: RunId,
    redactor: Redactor,
    buf: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLog").field("id", &self.id).finish_non_exhaustive()
    }
}

impl RunLog {
    pub fn new(store: Arc<dyn Store>, id: RunId, redactor: Redactor) -> Self {
        Self { store, id, redactor, buf: Mutex::new(Vec::new()) }
    }

    /// The run this log belongs to.
    pub fn id(&self) -> &RunId {
        &self.id
    }

    /// `text` with every secret of the run replaced, for what goes into the record.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    /// A timestamped line: `[HH:MM:SSZ] message`.
    pub fn line(&self, message: impl AsRef<str>) {
        let now = Timestamp::now().strftime("%H:%M:%SZ");
        self.raw(format!("[{now}] {}\n", message.as_ref()).as_bytes());
    }

    /// Text as it is (a header, command output).
    pub fn raw(&self, data: &[u8]) {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(data);
    }

    /// Writes every complete line buffered so far; with `all`, the partial last line too.
    pub async fn flush(&self, all: bool) {
        let chunk = {
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            let cut = if all { buf.len() } else { buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) };
            buf.drain(..cut).collect::<Vec<u8>>()
        };
        if chunk.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&chunk);
        let text = self.redactor.redact(&text);
        if let Err(err) = self.store.append_log(&self.id, text.as_bytes()).await {
            tracing::warn!(run = %self.id, error = %err, "cannot write run log");
        }
    }
}

impl OutputSink for RunLog {
    fn output(&self, _stream: OutputStream, data: &[u8]) {
        self.raw(data);
    }
}
