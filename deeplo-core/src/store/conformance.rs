//! The checks every [`Store`] implementation runs, one per bullet of the trait's contract.
//!
//! A backend's integration test calls [`run_all`] with a function that makes a fresh, empty
//! store (a new directory, a new database schema); each check gets its own store. Every
//! check runs even when an earlier one fails, and the failures are reported together:
//!
//! ```no_run
//! # async fn demo() {
//! use deeplo_core::store::{conformance, FileStore, Store};
//!
//! let mut dirs = Vec::new();
//! conformance::run_all(|| {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = FileStore::open(dir.path(), jiff::Timestamp::now()).unwrap();
//!     dirs.push(dir);
//!     async move { Box::new(store) as Box<dyn Store> }
//! })
//! .await;
//! # }
//! ```
//!
//! The checks only use the trait: things a backend does on its own (locking, reopening,
//! reading older formats) are tested by that backend.

mod audit;
mod other;
mod records;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;
use jiff::Timestamp;

use super::Store;
use crate::model::{CommitId, DeployStatus, Deployment, HostName, Pair, ProjectName, RunId, Trigger};

/// One check: it panics, naming what it expected, when the store breaks the contract.
pub type Check = for<'a> fn(&'a dyn Store) -> BoxFuture<'a, ()>;

macro_rules! checks {
    ($($module:ident :: $name:ident),* $(,)?) => {
        /// Every check, by name.
        pub const CHECKS: &[(&str, Check)] = &[$((stringify!($name), |store| Box::pin($module::$name(store)))),*];
    };
}

checks![
    records::save_then_get,
    records::save_replaces_by_id,
    records::latest_is_newest_by_created_time_then_id,
    records::latest_is_per_pair,
    records::last_success_is_newest_success,
    records::latest_all_is_sorted_by_project_then_host,
    records::history_is_newest_first_with_filters_and_limit,
    records::mark_interrupted_fails_pending_and_running,
    records::prune_keeps_latest_and_last_success,
    other::logs_append_in_order,
    other::cursors_round_trip_any_key,
    other::documents_round_trip,
    other::invalid_document_names_are_refused,
    audit::audit_is_newest_first_with_filters_and_limit,
    audit::audit_appends_concurrently_lose_nothing,
];

/// Runs every check, each on a store from `fresh`, and panics listing the ones that failed.
pub async fn run_all<F, Fut>(mut fresh: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Box<dyn Store>>,
{
    let mut failures = Vec::new();
    for (name, check) in CHECKS {
        let store = fresh().await;
        if let Err(panic) = AssertUnwindSafe(check(store.as_ref())).catch_unwind().await {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(failures.is_empty(), "the store breaks its contract:\n{}", failures.join("\n"));
}

/// A time `secs` seconds after a fixed origin.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn pair(project: &str, host: &str) -> Pair {
    Pair::new(ProjectName::new(project).unwrap(), HostName::new(host).unwrap())
}

fn commit(n: u8) -> CommitId {
    CommitId::new(format!("{n:02x}").repeat(20)).unwrap()
}

/// A record of `project` on `host` created at `at(secs)` with `status`, its id made from
/// the creation time and `suffix` so that ties sort by the given suffix.
fn record(project: &str, host: &str, secs: i64, suffix: u32, status: DeployStatus) -> Deployment {
    let created = at(secs);
    let mut d = Deployment::new(
        ProjectName::new(project).unwrap(),
        HostName::new(host).unwrap(),
        commit(suffix as u8),
        "main",
        Trigger::Poll,
        created,
    );
    d.id = RunId::parse(&format!("{}-{suffix:08x}", created.as_second())).unwrap();
    if status != DeployStatus::Pending {
        d.start(created).unwrap();
    }
    match status {
        DeployStatus::Succeeded => d.succeed(created).unwrap(),
        DeployStatus::Failed => d.fail(created, "boom").unwrap(),
        DeployStatus::Pending | DeployStatus::Running => {}
    }
    d
}

async fn save_all(store: &dyn Store, records: &[&Deployment]) {
    for r in records {
        store.save(r).await.unwrap_or_else(|e| panic!("save {}: {e}", r.id));
    }
}

fn ids(records: &[Deployment]) -> Vec<String> {
    records.iter().map(|r| r.id.to_string()).collect()
}
