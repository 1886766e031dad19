//! Building the index from the data directory at open.
//!
//! Records come from `history/runs/*.json` first; then the entries of `state/projects.json`
//! and `state/last_success.json` whose run file is gone are added (the Go tool's log
//! retention deletes run files but keeps `projects.json`, and this store never prunes a
//! pair's latest record or last success, so those entries are records like the others).
//!
//! A file that cannot be read does not stop the others: the store opens with what it could
//! read, logs a warning for each problem and keeps them (see [`FileStore::problems`]). A run
//! whose file is broken answers [`get`](crate::Store::get) with an
//! [`ErrorKind::Store`](crate::ErrorKind::Store) error that names the file, its log is never
//! pruned, and the file stays as it is until a record with that id is saved again. A broken
//! index file is moved aside to `<name>.corrupt-<unix seconds>` (it is rebuilt from the
//! records on the next save) so that what it held can still be recovered by hand.
//!
//! [`FileStore::problems`]: super::FileStore::problems

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use jiff::Timestamp;
use serde_json::Value;

use super::compat::{decode_record, record_from_value};
use super::fsio::{TEMP_PREFIX, read_optional, unreadable};
use super::index::Index;
use super::layout::Layout;
use crate::model::RunId;
use crate::{Error, Result};

/// What open found on disk.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub(super) index: Index,
    /// Runs whose record file could not be read, with the error that says why.
    pub(super) broken: HashMap<RunId, String>,
    pub(super) problems: Vec<Error>,
}

impl Loaded {
    fn problem(&mut self, err: Error) {
        tracing::warn!(error = %err, "skipped unreadable store data");
        self.problems.push(err);
    }
}

pub(super) fn load(layout: &Layout, now: Timestamp) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    load_records(layout, &mut loaded)?;
    for file in [layout.projects_file(), layout.last_success_file()] {
        load_index_file(&file, now, &mut loaded)?;
    }
    Ok(loaded)
}

fn load_records(layout: &Layout, loaded: &mut Loaded) -> Result<()> {
    let dir = layout.records_dir();
    let entries = fs::read_dir(&dir).map_err(|e| unreadable("load store", &dir, e.to_string()).with_source(e))?;
    for entry in entries {
        let entry = entry.map_err(|e| unreadable("load store", &dir, e.to_string()).with_source(e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(id) = RunId::parse(stem) else {
            loaded.problem(unreadable("load store", &path, "the file name is not a run id; file ignored"));
            continue;
        };
        let record = match read_optional(&path, "load store") {
            Ok(Some(data)) => decode_record(&data).map_err(|why| unreadable("load store", &path, why)),
            Ok(None) => continue,
            Err(err) => Err(err),
        };
        match record {
            Ok(record) if record.id == id => loaded.index.insert(record),
            Ok(record) => {
                let why = format!("holds run {} but is named for run {id}", record.id);
                broken(loaded, id, unreadable("load store", &path, why));
            }
            Err(err) => broken(loaded, id, err),
        }
    }
    Ok(())
}

fn broken(loaded: &mut Loaded, id: RunId, err: Error) {
    loaded.broken.insert(id, err.message().to_owned());
    loaded.problem(err);
}

/// Adds the records of `projects.json` or `last_success.json` that the runs did not have.
fn load_index_file(path: &Path, now: Timestamp, loaded: &mut Loaded) -> Result<()> {
    let Some(data) = read_optional(path, "load store")? else { return Ok(()) };
    let entries: BTreeMap<String, Value> = match serde_json::from_slice(&data) {
        Ok(entries) => entries,
        Err(e) => {
            let aside = path.with_extension(format!("json.corrupt-{}", now.as_second()));
            let moved = match fs::rename(path, &aside) {
                Ok(()) => format!("moved to {}", aside.display()),
                Err(e) => format!("could not be moved aside: {e}"),
            };
            loaded.problem(unreadable("load store", path, format!("invalid JSON: {e}; {moved}")));
            return Ok(());
        }
    };
    for (key, value) in entries {
        match record_from_value(value) {
            Ok(record) if loaded.index.contains(&record.id) || loaded.broken.contains_key(&record.id) => {}
            Ok(record) => loaded.index.insert(record),
            Err(why) => loaded.problem(unreadable("load store", path, format!("entry {key:?}: {why}"))),
        }
    }
    Ok(())
}
