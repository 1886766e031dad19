//! The planner: which (project, host, commit) jobs a push asks for. Pure: no I/O.

mod watch;

pub use watch::{InvalidGlob, WatchPaths};

use serde::Serialize;

use crate::config::Config;
use crate::model::{CommitId, HostName, Pair, ProjectName, RepoName};

/// The paths a push changed, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedPaths {
    /// Not known (a first push, a force push, a webhook without file lists): every project
    /// of the repo is planned.
    Unknown,
    /// Paths relative to the repository root; an empty list plans nothing.
    Known(Vec<String>),
}

/// A new head of a watched branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// The repo entry (`repos[].name`) that was pushed to.
    pub repo: RepoName,
    /// The branch that moved (`main`, not `refs/heads/main`); a push to a branch the repo
    /// entry does not watch plans nothing.
    pub branch: String,
    /// The previous head, when known.
    pub before: Option<CommitId>,
    /// The new head: the commit every planned job deploys.
    pub after: CommitId,
    /// What the push changed, which decides the projects planned.
    pub changed: ChangedPaths,
}

/// One unit of work: deploy `commit` of `project` to `host`. Hand jobs to
/// [`Engine::submit`](crate::Engine::submit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Job {
    /// The project (`projects[].name`).
    pub project: ProjectName,
    /// One of the project's targets (`hosts[].name`).
    pub host: HostName,
    /// The full commit id to deploy.
    pub commit: CommitId,
}

impl Job {
    /// The (project, host) pair, the unit of dedup, scheduling and records.
    pub fn pair(&self) -> Pair {
        Pair::new(self.project.clone(), self.host.clone())
    }
}

/// The jobs a push asks for, in config order (projects, then their targets).
///
/// Only projects of the pushed repo entry whose branch is the pushed branch are planned; of
/// those, a project is planned when the changed paths are unknown, or when one of them
/// matches its `watch_paths` (an empty `watch_paths` matches any push that changed
/// something).
pub fn plan(config: &Config, push: &PushEvent) -> Vec<Job> {
    let Some(repo) = config.repo(push.repo.as_str()) else {
        return Vec::new();
    };
    if repo.branch != push.branch {
        return Vec::new();
    }
    config
        .projects_of(&repo.name)
        .filter(|project| match &push.changed {
            ChangedPaths::Unknown => true,
            ChangedPaths::Known(paths) => !paths.is_empty() && project.watch_paths.matches_any(paths),
        })
        .flat_map(|project| {
            project.targets.iter().map(|host| Job {
                project: project.name.clone(),
                host: host.clone(),
                commit: push.after.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
