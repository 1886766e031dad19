//! The domain model: names, commit ids, deployment records and the two state machines.

mod commit;
mod name;
mod record;
mod status;

pub use commit::{CommitId, InvalidCommitId, is_commit_prefix};
pub use name::{HostName, InvalidName, MAX_NAME_LEN, ProjectName, RepoName};
pub use record::{Deployment, InvalidRunId, RollbackRecord, RunId, StepOutcome, StepRecord, Trigger};
pub use status::{DeployStatus, HostState, IllegalTransition};

/// A (project, host) pair: the unit of deployment, of dedup and of the latest-record index.
/// Shown as `project@host`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pair {
    /// The project deployed.
    pub project: ProjectName,
    /// One of the project's target hosts.
    pub host: HostName,
}

impl Pair {
    /// The pair of `project` on `host`; nothing checks that the host is one of its targets.
    pub fn new(project: ProjectName, host: HostName) -> Self {
        Self { project, host }
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.project, self.host)
    }
}
