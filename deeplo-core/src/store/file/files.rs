//! Run logs, poll cursors and documents: files that stand alone and need no index.
//!
//! Log chunks are appended without an fsync each (a run writes many), so a crash can lose
//! the tail of a log but never a record. A cursor file keeps its key beside the commit, so a
//! file that does not belong to the key it was looked up by is noticed rather than trusted.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::Inner;
use super::fsio::{private_file, read_optional, to_json, unreadable, write_atomic};
use crate::model::{CommitId, RunId};
use crate::{Error, Result};

#[derive(Debug, Serialize, Deserialize)]
struct CursorFile {
    key: String,
    commit: CommitId,
}

impl Inner {
    pub(super) fn append_log(&self, id: &RunId, data: &[u8]) -> Result<()> {
        let path = self.layout.log_file(id);
        private_file()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(data))
            .map_err(|e| Error::io("append run log", path.display(), e))
    }

    pub(super) fn read_log(&self, id: &RunId) -> Result<Option<Vec<u8>>> {
        read_optional(&self.layout.log_file(id), "read run log")
    }

    pub(super) fn cursor(&self, key: &str) -> Result<Option<CommitId>> {
        let path = self.layout.cursor_file(key);
        let Some(data) = read_optional(&path, "read poll cursor")? else { return Ok(None) };
        let file: CursorFile = serde_json::from_slice(&data)
            .map_err(|e| unreadable("read poll cursor", &path, format!("invalid: {e}")))?;
        if file.key != key {
            let why = format!("holds the cursor of {:?}, not of {key:?}", file.key);
            return Err(unreadable("read poll cursor", &path, why));
        }
        Ok(Some(file.commit))
    }

    pub(super) fn set_cursor(&self, key: &str, commit: &CommitId) -> Result<()> {
        let file = CursorFile { key: key.to_owned(), commit: commit.clone() };
        let path = self.layout.cursor_file(key);
        write_atomic(&path, &to_json(&file, "save poll cursor")?, "save poll cursor")
    }

    pub(super) fn load_document(&self, name: &str) -> Result<Option<serde_json::Value>> {
        let path = self.layout.document_file(name, "load document")?;
        let Some(data) = read_optional(&path, "load document")? else { return Ok(None) };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| unreadable("load document", &path, format!("invalid JSON: {e}")))
    }

    pub(super) fn save_document(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let path = self.layout.document_file(name, "save document")?;
        write_atomic(&path, &to_json(value, "save document")?, "save document")
    }
}
