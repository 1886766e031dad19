//! The planner: which (project, host, commit) jobs a push asks for. Pure: no I/O.

mod watch;

pub use watch::{InvalidGlob, WatchPaths};

use serde::Serialize;

use crate::config::{Config, Project};
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

/// What a push asks for: the jobs, and the projects of the pushed repo entry that it does
/// not deploy, each with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The jobs, in config order (projects, then their targets); what [`plan`] returns.
    pub jobs: Vec<Job>,
    /// The projects of the pushed repo entry that get no job, in config order.
    pub skipped: Vec<Skipped>,
}

/// A project a push does not deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The project (`projects[].name`).
    pub project: ProjectName,
    /// Why it is not deployed.
    pub reason: SkipReason,
}

/// Why a push deploys a project of the pushed repo entry to none of its targets. Serialized
/// in `snake_case`. More reasons may come, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `auto_deploy: off`: only an explicit deploy deploys the project.
    AutoDeployOff,
    /// The push is to another branch than the one the repo entry watches.
    OtherBranch,
    /// The push changed no file.
    NothingChanged,
    /// No changed path matches the project's `watch_paths`.
    NoWatchedPathChanged,
}

impl SkipReason {
    /// A stable snake_case name for output and JSON (`auto_deploy_off`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoDeployOff => "auto_deploy_off",
            Self::OtherBranch => "other_branch",
            Self::NothingChanged => "nothing_changed",
            Self::NoWatchedPathChanged => "no_watched_path_changed",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AutoDeployOff => "auto_deploy is off: only `deeplo deploy` deploys it",
            Self::OtherBranch => "the push is not to the branch its repo entry watches",
            Self::NothingChanged => "the push changed no file",
            Self::NoWatchedPathChanged => "no changed path matches its watch_paths",
        })
    }
}

/// The jobs a push asks for, in config order (projects, then their targets): the
/// [`jobs`](Plan::jobs) of [`plan_explained`].
///
/// Only projects of the pushed repo entry whose branch is the pushed branch, with
/// `auto_deploy` on, are planned; of those, a project is planned when the changed paths are
/// unknown, or when one of them matches its `watch_paths` (an empty `watch_paths` matches
/// any push that changed something).
pub fn plan(config: &Config, push: &PushEvent) -> Vec<Job> {
    plan_explained(config, push).jobs
}

/// [`plan`], with every project of the pushed repo entry that gets no job and why.
pub fn plan_explained(config: &Config, push: &PushEvent) -> Plan {
    let Some(repo) = config.repo(push.repo.as_str()) else {
        return Plan::default();
    };
    let mut out = Plan::default();
    for project in config.projects_of(&repo.name) {
        match skip_reason(project, &repo.branch, push) {
            Some(reason) => out.skipped.push(Skipped { project: project.name.clone(), reason }),
            None => out.jobs.extend(project.targets.iter().map(|host| Job {
                project: project.name.clone(),
                host: host.clone(),
                commit: push.after.clone(),
            })),
        }
    }
    out
}

/// Why `push` does not deploy `project`, whose repo entry watches `branch`; `None` when it
/// does.
fn skip_reason(project: &Project, branch: &str, push: &PushEvent) -> Option<SkipReason> {
    if !project.auto_deploy {
        return Some(SkipReason::AutoDeployOff);
    }
    if branch != push.branch {
        return Some(SkipReason::OtherBranch);
    }
    match &push.changed {
        ChangedPaths::Unknown => None,
        ChangedPaths::Known(paths) if paths.is_empty() => Some(SkipReason::NothingChanged),
        ChangedPaths::Known(paths) if !project.watch_paths.matches_any(paths) => Some(SkipReason::NoWatchedPathChanged),
        ChangedPaths::Known(_) => None,
    }
}

#[cfg(test)]
mod tests;
