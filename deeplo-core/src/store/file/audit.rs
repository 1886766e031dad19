//! The audit log: `audit.jsonl`, one JSON entry per line, only ever appended to.
//!
//! Each entry is written with one `write` on a file opened for appending and flushed to
//! disk before the call returns, so an acknowledged entry survives a crash. A crash in the
//! middle of a write leaves at most a torn last line without its newline: reading skips
//! it (the caller of that write never heard it succeed); any other unreadable line is an
//! error that names the line, not something to skip.

use std::io::Write;

use super::Inner;
use super::fsio::{private_file, read_optional, unreadable};
use crate::access::{AuditEntry, AuditQuery};
use crate::{Error, Result};

impl Inner {
    pub(super) fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        const OP: &str = "append to the audit log";
        let path = self.layout.audit_file();
        let mut line = serde_json::to_vec(entry).map_err(|e| unreadable(OP, &path, e))?;
        line.push(b'\n');
        let _guard = self.audit_writer.lock().unwrap_or_else(|e| e.into_inner());
        private_file()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(&line)?;
                file.sync_data()
            })
            .map_err(|e| Error::io(OP, path.display(), e))
    }

    pub(super) fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        const OP: &str = "read the audit log";
        let path = self.layout.audit_file();
        let Some(data) = read_optional(&path, OP)? else { return Ok(Vec::new()) };
        let complete = data.strip_suffix(b"\n").unwrap_or_else(|| cut_torn_tail(&data));
        let mut entries = Vec::new();
        if complete.is_empty() {
            return Ok(entries);
        }
        for (number, line) in complete.split(|b| *b == b'\n').enumerate() {
            let entry: AuditEntry = serde_json::from_slice(line)
                .map_err(|e| unreadable(OP, &path, format!("line {} is not an entry: {e}", number + 1)))?;
            if query.matches(&entry) {
                entries.push(entry);
            }
        }
        entries.reverse();
        if let Some(limit) = query.limit {
            entries.truncate(limit);
        }
        Ok(entries)
    }
}

/// The lines before a last line that has no newline (a write cut short).
fn cut_torn_tail(data: &[u8]) -> &[u8] {
    data.iter().rposition(|b| *b == b'\n').map_or(&[], |end| &data[..end])
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use jiff::Timestamp;

    use crate::access::{Actor, AuditEntry, AuditQuery, Outcome};
    use crate::{FileStore, Store};

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            at: Timestamp::from_second(1_700_000_000 + n).unwrap(),
            actor: Actor::System,
            org: None,
            action: "deploy".into(),
            target: format!("project p{n}"),
            outcome: Outcome::Ok,
        }
    }

    fn append_raw(dir: &std::path::Path, bytes: &[u8]) {
        let mut file = std::fs::OpenOptions::new().append(true).open(dir.join("audit.jsonl")).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped_and_a_bad_line_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::open(tmp.path(), Timestamp::now()).unwrap();
        store.append_audit(&entry(1)).await.unwrap();
        store.append_audit(&entry(2)).await.unwrap();
        append_raw(tmp.path(), b"{\"at\":\"2023-");
        let read = store.audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(read, [entry(2), entry(1)], "a write cut short was never acknowledged");

        append_raw(tmp.path(), b"\n");
        store.append_audit(&entry(3)).await.unwrap();
        let error = store.audit(&AuditQuery::default()).await.unwrap_err().to_string();
        assert!(error.contains("line 3 is not an entry") && error.contains("audit.jsonl"), "{error}");
    }
}
