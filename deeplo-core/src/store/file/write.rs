//! The writes that touch records: save, mark interrupted, prune.
//!
//! Each runs on a blocking thread while holding the writer lock, so that writes to the
//! record files and the two index files happen one at a time and in order. The run file is
//! written first: if the process dies before `projects.json` or `last_success.json` is
//! rewritten, the next open rebuilds the index from the run files and loses nothing. The
//! in-memory index is locked only for the moment it is read or changed, never across I/O.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::MutexGuard;

use jiff::Timestamp;

use super::Inner;
use super::fsio::{remove_if_present, sync_dir, to_json, write_atomic};
use super::layout::pair_key;
use crate::model::{Deployment, Pair, RunId};
use crate::store::PruneReport;
use crate::{Error, ErrorKind, Result};

/// The error the contract gives records that were still going when their process ended.
const INTERRUPTED: &str = "interrupted";

/// Proof that the caller holds the writer lock.
pub(super) type Writer<'a> = MutexGuard<'a, ()>;

impl Inner {
    pub(super) fn writer(&self) -> Writer<'_> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes records and updates the index and the index files.
    pub(super) fn save_records(&self, _writer: &Writer<'_>, records: Vec<Deployment>) -> Result<()> {
        for record in &records {
            let path = self.layout.record_file(&record.id);
            write_atomic(&path, &to_json(record, "save record")?, "save record").map_err(|e| context(e, record))?;
        }
        let pairs: Vec<Pair> = records.iter().map(|r| Pair::new(r.project.clone(), r.host.clone())).collect();
        let (latest, successes) = {
            let mut state = self.state();
            let before: Vec<_> = pairs.iter().map(|p| heads(&state.index, p)).collect();
            for record in records {
                state.broken.remove(&record.id);
                state.index.insert(record);
            }
            let after: Vec<_> = pairs.iter().map(|p| heads(&state.index, p)).collect();
            let latest_changed = before.iter().zip(&after).any(|(b, a)| b.0 != a.0);
            let success_changed = before.iter().zip(&after).any(|(b, a)| b.1 != a.1);
            (latest_changed.then(|| state.index.latest_all()), success_changed.then(|| state.index.last_success_all()))
        };
        if let Some(latest) = latest {
            write_index_file(&self.layout.projects_file(), &latest)?;
        }
        if let Some(successes) = successes {
            write_index_file(&self.layout.last_success_file(), &successes)?;
        }
        Ok(())
    }

    /// Fails every record that has not ended, as of `now`.
    pub(super) fn mark_interrupted(&self, now: Timestamp) -> Result<Vec<Deployment>> {
        let writer = self.writer();
        let mut records = self.state().index.unfinished();
        for record in &mut records {
            record
                .fail(now, INTERRUPTED)
                .map_err(|e| context(Error::new(ErrorKind::Store, "mark interrupted", e.to_string()), record))?;
        }
        if !records.is_empty() {
            self.save_records(&writer, records.clone())?;
            tracing::warn!(count = records.len(), "marked runs of an earlier process as interrupted");
        }
        Ok(records)
    }

    /// Removes the records and logs created before `before`, except each pair's latest record
    /// and last success; logs without a record are dated by their run id.
    pub(super) fn prune(&self, before: Timestamp) -> Result<PruneReport> {
        let _writer = self.writer();
        let mut report = PruneReport::default();
        let prunable = self.state().index.prunable(before);
        for id in prunable {
            remove_if_present(&self.layout.record_file(&id), "prune record")?;
            self.state().index.remove(&id);
            report.records += 1;
            if remove_if_present(&self.layout.log_file(&id), "prune run log")? {
                report.logs += 1;
            }
        }
        report.logs += self.prune_orphan_logs(before)?;
        for dir in [self.layout.records_dir(), self.layout.logs_dir()] {
            sync_dir(&dir).map_err(|e| Error::io("prune", dir.display(), e))?;
        }
        Ok(report)
    }

    fn prune_orphan_logs(&self, before: Timestamp) -> Result<usize> {
        let dir = self.layout.logs_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("prune run logs", dir.display(), e))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".log").and_then(|stem| RunId::parse(stem).ok()) else { continue };
            let known = {
                let state = self.state();
                state.index.contains(&id) || state.broken.contains_key(&id)
            };
            if !known && created_by_id(&id).is_some_and(|t| t < before) {
                removed += usize::from(remove_if_present(&self.layout.log_file(&id), "prune run log")?);
            }
        }
        Ok(removed)
    }
}

/// A pair's latest record and last success, to tell whether a save changed them.
fn heads(index: &super::index::Index, pair: &Pair) -> (Option<Deployment>, Option<Deployment>) {
    (index.latest(pair).cloned(), index.last_success(pair).cloned())
}

fn write_index_file(path: &Path, records: &[Deployment]) -> Result<()> {
    let map: BTreeMap<String, &Deployment> =
        records.iter().map(|r| (pair_key(r.project.as_str(), r.host.as_str()), r)).collect();
    write_atomic(path, &to_json(&map, "save index")?, "save index")
}

/// When a run was created, from its id (`<unix seconds>-<hex>`).
fn created_by_id(id: &RunId) -> Option<Timestamp> {
    let (secs, _) = id.as_str().split_once('-')?;
    Timestamp::from_second(secs.parse().ok()?).ok()
}

fn context(err: Error, record: &Deployment) -> Error {
    err.with_project(&record.project).with_host(&record.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_carry_their_creation_time() {
        let id = RunId::parse("1700000000-0123abcd").unwrap();
        assert_eq!(created_by_id(&id), Some(Timestamp::from_second(1_700_000_000).unwrap()));
        let id = RunId::parse("99999999999999999999-0123abcd").unwrap();
        assert_eq!(created_by_id(&id), None);
    }
}
