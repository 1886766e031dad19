//! The validated configuration: what the rest of the engine sees.
//!
//! These types are only built by [`super::load`] / [`super::parse`] after every rule has
//! passed, so code that holds a [`Config`] never re-checks names, paths or references. They
//! also deserialize, to read back the applied-config baseline the engine itself stored
//! (names, paths and globs are re-validated on the way in).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{HostName, ProjectName, RepoName};
use crate::path::RelPath;
use crate::plan::WatchPaths;

/// The whole validated config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub hosts: Vec<Host>,
    pub repos: Vec<Repo>,
    pub projects: Vec<Project>,
}

impl Config {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }

    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// The projects that deploy from the repo entry `repo`.
    pub fn projects_of<'a>(&'a self, repo: &'a RepoName) -> impl Iterator<Item = &'a Project> + 'a {
        self.projects.iter().filter(move |p| &p.repo == repo)
    }
}

/// A server deeplo deploys to (`hosts[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: HostName,
    /// Host name or IP address to connect to.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Absolute directory on the host under which each project gets its `deploy_subdir`.
    pub deploy_dir: String,
    /// The compose command to run instead of probing for `docker compose` / `docker-compose`,
    /// split into program and arguments (`["docker", "compose"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_command: Option<Vec<String>>,
    /// Prepended to compose project names on this host, to keep apart several deeplo hosts
    /// that share one Docker engine (`staging-` and `prod-` on one machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_project_prefix: Option<String>,
}

/// How a repo's new commits are noticed (`repos[].trigger_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerMode {
    Webhook,
    Poll,
    Hybrid,
}

impl TriggerMode {
    pub fn polls(self) -> bool {
        matches!(self, Self::Poll | Self::Hybrid)
    }

    pub fn takes_webhooks(self) -> bool {
        matches!(self, Self::Webhook | Self::Hybrid)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Poll => "poll",
            Self::Hybrid => "hybrid",
        }
    }
}

/// A watched git repository and branch (`repos[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repo {
    pub name: RepoName,
    /// A local path, `file://`, `ssh://`, scp-style `git@host:org/repo.git` or `https://` URL.
    pub url: String,
    pub branch: String,
    pub trigger_mode: TriggerMode,
    #[serde(with = "duration_secs")]
    pub poll_interval: Duration,
}

/// A deployable Docker Compose project (`projects[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub name: ProjectName,
    pub repo: RepoName,
    /// The project's directory in the repository, normalised: no `.` segments, no trailing
    /// slash; empty for the repository root.
    pub repo_subdir: RelPath,
    pub targets: Vec<HostName>,
    /// Relative to `repo_subdir`.
    pub compose_files: Vec<RelPath>,
    /// Relative to the repository root; empty means every push matches.
    pub watch_paths: WatchPaths,
    /// Relative to `repo_subdir`; a directory means every file under it.
    pub extra_files: Vec<RelPath>,
    /// Files kept from the live directory across deploys when the commit does not carry them.
    pub persist_files: Vec<RelPath>,
    /// Relative to each target host's `deploy_dir`.
    pub deploy_subdir: RelPath,
    /// An HTTP check run from the host after `up`, gating success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthTarget>,
    /// Retries, backoff and overall timeout of the health gate (compose healthchecks and
    /// `health_check` alike).
    pub health: HealthPolicy,
    /// Whether a failed verify or health gate rolls the pair back to its last good commit.
    pub rollback: bool,
}

/// What the HTTP health check asks, from the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthTarget {
    /// A full `http://` or `https://` URL.
    Url(String),
    /// `http://127.0.0.1:{port}{path}` on the host.
    PathPort { path: String, port: u16 },
}

impl HealthTarget {
    /// The URL to request.
    pub fn url(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::PathPort { path, port } => format!("http://127.0.0.1:{port}{path}"),
        }
    }
}

/// How long and how often the health gate waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Attempts before giving up.
    pub retries: u32,
    /// The wait before the second attempt; it doubles after each failure up to `max_interval`.
    #[serde(with = "duration_secs")]
    pub interval: Duration,
    #[serde(with = "duration_secs")]
    pub max_interval: Duration,
    /// The gate fails once this much time has passed, whatever the retries left.
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            retries: 10,
            interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(16),
            timeout: Duration::from_secs(180),
        }
    }
}

impl HealthPolicy {
    /// The wait after failed attempt number `attempt` (1-based): exponential, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.interval.saturating_mul(factor).min(self.max_interval)
    }
}

/// Durations as fractional seconds, for JSON and for comparing configs.
mod duration_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads what [`serialize`] wrote (the applied-config baseline in the store).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = HealthPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
    }

    #[test]
    fn health_target_url() {
        let t = HealthTarget::PathPort { path: "/healthz".into(), port: 8080 };
        assert_eq!(t.url(), "http://127.0.0.1:8080/healthz");
    }
}
