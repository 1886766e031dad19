//! Where each thing lives in the data directory.
//!
//! The names follow the Go tool's data directory wherever it has an equivalent, so that a
//! user who switches keeps the same directory:
//!
//! ```text
//! deeplo.lock                  one process per data directory (flock)
//! state/projects.json          the newest record of every pair, keyed "host/project"
//! state/last_success.json      the newest succeeded record of every pair, same keys
//! state/<name>.json            documents (the applied config is "applied_config")
//! state/poll/<sha256>.json     poll cursors, named by the SHA-256 of their key
//! history/runs/<id>.json       one record per run
//! runs/<id>.log                one run log per run
//! audit.jsonl                  the audit log, one entry per line, appended only
//! ```
//!
//! Every path is built from a value that cannot leave its directory: a [`RunId`] (digits,
//! a dash and hex), a document name checked against `[a-z0-9_-]+`, or the hex digest of a
//! cursor key. Nothing a caller passes is ever joined onto a path as it is.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::RunId;
use crate::{Error, ErrorKind, Result};

/// Document names that the store uses for its own files in `state/`.
pub(super) const RESERVED_DOCUMENTS: [&str; 2] = ["projects", "last_success"];

/// The paths of one data directory.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(super) fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// Every directory the store writes into, parents first.
    pub(super) fn dirs(&self) -> [PathBuf; 5] {
        [self.root.clone(), self.state_dir(), self.poll_dir(), self.records_dir(), self.logs_dir()]
    }

    pub(super) fn lock_file(&self) -> PathBuf {
        self.root.join("deeplo.lock")
    }

    pub(super) fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    pub(super) fn poll_dir(&self) -> PathBuf {
        self.state_dir().join("poll")
    }

    pub(super) fn records_dir(&self) -> PathBuf {
        self.root.join("history").join("runs")
    }

    pub(super) fn logs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub(super) fn audit_file(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    pub(super) fn projects_file(&self) -> PathBuf {
        self.state_dir().join("projects.json")
    }

    pub(super) fn last_success_file(&self) -> PathBuf {
        self.state_dir().join("last_success.json")
    }

    pub(super) fn record_file(&self, id: &RunId) -> PathBuf {
        self.records_dir().join(format!("{}.json", checked(id)))
    }

    pub(super) fn log_file(&self, id: &RunId) -> PathBuf {
        self.logs_dir().join(format!("{}.log", checked(id)))
    }

    /// A cursor's file: the key may be anything (a URL, a branch with slashes), so the file
    /// is named by its digest and the key itself is kept inside the file.
    pub(super) fn cursor_file(&self, key: &str) -> PathBuf {
        let digest = Sha256::digest(key.as_bytes());
        self.poll_dir().join(format!("{}.json", hex::encode(digest)))
    }

    /// A document's file, once its name has been checked.
    pub(super) fn document_file(&self, name: &str, operation: &'static str) -> Result<PathBuf> {
        validate_document_name(name, operation)?;
        Ok(self.state_dir().join(format!("{name}.json")))
    }
}

/// A run id as a file-name stem. [`RunId`] only holds `<digits>-<8 hex>`; this re-checks it
/// so that a future change to that type cannot silently open a way out of the directory.
fn checked(id: &RunId) -> &str {
    let s = id.as_str();
    assert!(
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "run id {s:?} is not safe in a file name"
    );
    s
}

/// Checks a document name: `[a-z0-9_-]+`, and not one of the store's own files.
pub(super) fn validate_document_name(name: &str, operation: &'static str) -> Result<()> {
    let valid = !name.is_empty() && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if !valid {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            operation,
            format!("invalid document name {name:?}: use lowercase letters, digits, '_' and '-'"),
        ));
    }
    if RESERVED_DOCUMENTS.contains(&name) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            operation,
            format!("document name {name:?} is reserved: the file store keeps its own index in state/{name}.json"),
        ));
    }
    Ok(())
}

/// The key of a pair in `projects.json` and `last_success.json`, as the Go tool writes it.
pub(super) fn pair_key(project: &str, host: &str) -> String {
    format!("{host}/{project}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names() {
        for good in ["applied_config", "observed-state", "a", "0"] {
            assert!(validate_document_name(good, "t").is_ok(), "{good}");
        }
        for bad in ["", "A", "a.b", "../x", "a/b", "..", " ", "é", "projects", "last_success", "x\0"] {
            let err = validate_document_name(bad, "t").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn cursor_files_stay_in_the_poll_directory() {
        let layout = Layout::new(Path::new("/data"));
        for key in ["../../etc/passwd", "/abs", "https://github.com/o/r.git main", "", "a\0b"] {
            let path = layout.cursor_file(key);
            assert_eq!(path.parent(), Some(layout.poll_dir().as_path()), "{key}");
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(name.len(), 64 + ".json".len());
        }
        assert_ne!(layout.cursor_file("a"), layout.cursor_file("b"));
    }

    #[test]
    fn record_and_log_paths() {
        let layout = Layout::new(Path::new("/data"));
        let id = RunId::parse("1700000000-0123abcd").unwrap();
        assert_eq!(layout.record_file(&id), Path::new("/data/history/runs/1700000000-0123abcd.json"));
        assert_eq!(layout.log_file(&id), Path::new("/data/runs/1700000000-0123abcd.log"));
        assert_eq!(pair_key("web", "h1"), "h1/web");
    }
}
