//! What a config reload changes, pair by pair: pure, so every case is a table test.
//!
//! A (project, host) pair of either config is exactly one of:
//!
//! - **Added**: deployed at the branch head.
//! - **Removed**: torn down on its old host (if it was ever deployed there).
//! - **Moved**: the old location is torn down on the old host, the new one deployed at the
//!   pair's current commit. A pair moves when the machine changes (address or port: the old
//!   files and containers are on another sshd), when its live directory changes
//!   (`deploy_dir` + `deploy_subdir`, compared joined, so re-splitting one path between the
//!   two is no move), when its compose project name changes (`compose_project_prefix`):
//!   containers are found by that name, so under a new one the old containers would run on,
//!   unseen, holding their ports; or when a Compose project becomes an application or back
//!   (`dockerfile` set or removed): what the old kind runs must be stopped.
//! - **Changed**: redeployed in place at its current commit, because what runs would differ:
//!   `repo_subdir`, `compose_files`, `extra_files`, `persist_files`, an application's
//!   `dockerfile`, `container_port`, `health_check_path`, `domain`, `listen` or `build_args`,
//!   the SSH `user`, `compose_command` (v1 and v2 name containers differently, and a broken
//!   command is better found at reload than at the next push), or, for an application, the
//!   host's `proxy_image`. A new source (another repo URL or branch) is deployed at the head
//!   of that branch: the current commit may not be on it.
//! - **Unchanged**: nothing to do. `watch_paths`, `health_check`, `health`, `rollback`,
//!   `auto_deploy`, an application's `keep_releases` and `drain`, `trigger_mode` and
//!   `poll_interval` only decide when and how the next deploy runs, so a change to them alone
//!   redeploys nothing; they are still listed in [`PairDiff::fields`].
//!
//! A user change alone is no move: the machine (address and port) and the directory are the
//! same, so a redeploy in place replaces everything, and a teardown would only add downtime
//! and lose persisted files such as `.env`.
//!
//! A teardown is narrowed by what the new config keeps on the same machine ([`Teardown`]):
//! it does not `compose down` a compose project that a new pair still owns (that pair's
//! `up --remove-orphans --force-recreate` takes the containers over), and it does not remove
//! a directory that a new pair deploys into or below (that pair's deploy swaps the files and
//! carries persisted files over). So renaming a project or a host without moving anything
//! loses no `.env`, and a project that only changes `deploy_subdir` keeps serving until its
//! new directory is up.

use std::collections::BTreeSet;

use serde::Serialize;

use super::applied::redact_url;
use super::types::{Application, Config, Host, Project};
use crate::model::Pair;
use crate::path::remote_join;
use crate::pipeline::project_name;

/// What a config reload changes: every pair of the old and the new config and what happens
/// to it, from [`diff`]. The engine's reload acts on it; a caller can show it first, as a
/// dry run.
///
/// A pair moves when its machine (address, port), live directory, compose project name or
/// kind (Compose project or application) changes; it is redeployed in place when what runs
/// would differ (`repo_subdir`, the file lists, an application's settings, `user`,
/// `compose_command`, an application host's `proxy_image`, the source); a change to
/// `watch_paths`, the health check, `rollback`, `auto_deploy`, `keep_releases`, `drain` or
/// the trigger alone redeploys nothing. A teardown spares a compose
/// project or directory that a pair of the new config takes over on the same machine
/// ([`Teardown`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    /// One entry per pair found in either config, sorted by pair, unchanged pairs included.
    pub pairs: Vec<PairDiff>,
}

/// One pair's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairDiff {
    /// The (project, host) pair.
    pub pair: Pair,
    /// What happens to it.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Every field that differs, deploy-relevant or not (empty for added and removed pairs).
    pub fields: Vec<Field>,
}

/// What a reload does to a pair. More kinds may be added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChangeKind {
    /// Only in the new config: deployed at the branch head.
    Added,
    /// Only in the old config: torn down on its old host, if it was ever deployed there.
    Removed {
        /// What the teardown of the old location does.
        teardown: Teardown,
    },
    /// In both, but on another machine, in another live directory or under another compose
    /// project name: the old location is torn down and the new one deployed.
    Moved {
        /// What the teardown of the old location does.
        teardown: Teardown,
    },
    /// In both, same place, but what runs would differ: redeployed in place.
    Changed,
    /// Nothing to do on the host (fields that only affect the next deploy may still differ).
    Unchanged,
}

/// What a teardown of the old location does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Teardown {
    /// Stop what the old pair runs (`compose down --remove-orphans` for a Compose project):
    /// false when a pair of the new config owns that compose project, or that application,
    /// on the same machine.
    pub down: bool,
    /// Remove the live, `.staging` and `.old` directories: false when a pair of the new config
    /// deploys into that directory (or below it) on the same machine.
    pub remove_files: bool,
}

impl Teardown {
    /// Whether there is anything to do on the host at all.
    pub fn is_noop(&self) -> bool {
        !self.down && !self.remove_files
    }
}

/// Which commit a reload deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployAt {
    /// The head of the configured branch (new pairs, new sources).
    Head,
    /// The commit the pair runs now: a run's under way, else its last success, else the head.
    Current,
}

/// A field whose change [`diff`] notices, in the order they are listed; [`PairDiff::fields`]
/// holds them. More fields are added as the config grows, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// `hosts[].address` (compared without case).
    Address,
    /// `hosts[].port`.
    Port,
    /// `deploy_dir` joined with `deploy_subdir`.
    LiveDir,
    /// The compose project name (`compose_project_prefix` + project name).
    ComposeProject,
    /// Compose project or application (`projects[].dockerfile` set or removed).
    Kind,
    /// The repo URL (without credentials) or branch: redeployed at the new branch head.
    Source,
    /// `projects[].repo_subdir`.
    RepoSubdir,
    /// `projects[].compose_files`.
    ComposeFiles,
    /// `projects[].extra_files`.
    ExtraFiles,
    /// `projects[].persist_files`.
    PersistFiles,
    /// An application's `dockerfile`.
    Dockerfile,
    /// An application's `container_port`.
    ContainerPort,
    /// An application's `health_check_path` (the proxy checks it too).
    HealthCheckPath,
    /// An application's `domain`.
    Domain,
    /// An application's `listen` address.
    Listen,
    /// An application's `build_args`.
    BuildArgs,
    /// `hosts[].user`: a redeploy in place, not a move.
    User,
    /// `hosts[].compose_command`.
    ComposeCommand,
    /// `hosts[].proxy_image`, for an application on the host (a Compose project does not
    /// use the proxy).
    ProxyImage,
    /// `hosts[].transport`: a redeploy in place when the machine stays the same (an agent
    /// host that keeps the address it had over SSH), else a move.
    Transport,
    /// `projects[].watch_paths`: affects only which pushes deploy.
    WatchPaths,
    /// `projects[].health_check` (the URL or path and port).
    HealthCheck,
    /// The health gate's retries, intervals and timeout.
    Health,
    /// An application's `keep_releases`: applied when the next deploy prunes.
    KeepReleases,
    /// An application's `drain`: applied at the next switch.
    Drain,
    /// `projects[].rollback`.
    Rollback,
    /// `projects[].auto_deploy`: affects only whether pushes and polls deploy.
    AutoDeploy,
    /// `trigger_mode` or `poll_interval`.
    Trigger,
}

/// What a field's change does to its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effect {
    None,
    Redeploy,
    Move,
}

impl Field {
    /// A stable snake_case name for output and JSON (`live_dir`, `compose_files`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Port => "port",
            Self::LiveDir => "live_dir",
            Self::ComposeProject => "compose_project",
            Self::Kind => "kind",
            Self::Source => "source",
            Self::RepoSubdir => "repo_subdir",
            Self::ComposeFiles => "compose_files",
            Self::ExtraFiles => "extra_files",
            Self::PersistFiles => "persist_files",
            Self::Dockerfile => "dockerfile",
            Self::ContainerPort => "container_port",
            Self::HealthCheckPath => "health_check_path",
            Self::Domain => "domain",
            Self::Listen => "listen",
            Self::BuildArgs => "build_args",
            Self::User => "user",
            Self::ComposeCommand => "compose_command",
            Self::ProxyImage => "proxy_image",
            Self::Transport => "transport",
            Self::WatchPaths => "watch_paths",
            Self::HealthCheck => "health_check",
            Self::Health => "health",
            Self::KeepReleases => "keep_releases",
            Self::Drain => "drain",
            Self::Rollback => "rollback",
            Self::AutoDeploy => "auto_deploy",
            Self::Trigger => "trigger",
        }
    }

    fn effect(self) -> Effect {
        match self {
            Self::Address | Self::Port | Self::LiveDir | Self::ComposeProject | Self::Kind => Effect::Move,
            Self::Source
            | Self::RepoSubdir
            | Self::ComposeFiles
            | Self::ExtraFiles
            | Self::PersistFiles
            | Self::Dockerfile
            | Self::ContainerPort
            | Self::HealthCheckPath
            | Self::Domain
            | Self::Listen
            | Self::BuildArgs
            | Self::User
            | Self::ComposeCommand
            | Self::ProxyImage
            | Self::Transport => Effect::Redeploy,
            Self::WatchPaths
            | Self::HealthCheck
            | Self::Health
            | Self::KeepReleases
            | Self::Drain
            | Self::Rollback
            | Self::AutoDeploy
            | Self::Trigger => Effect::None,
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PairDiff {
    /// The teardown of the old location, when there is one with something to do.
    pub fn teardown(&self) -> Option<Teardown> {
        match self.kind {
            ChangeKind::Removed { teardown } | ChangeKind::Moved { teardown } if !teardown.is_noop() => Some(teardown),
            _ => None,
        }
    }

    /// Which commit the reload deploys for this pair, if it deploys it.
    pub fn deploy_at(&self) -> Option<DeployAt> {
        match self.kind {
            ChangeKind::Added => Some(DeployAt::Head),
            ChangeKind::Moved { .. } | ChangeKind::Changed if self.fields.contains(&Field::Source) => {
                Some(DeployAt::Head)
            }
            ChangeKind::Moved { .. } | ChangeKind::Changed => Some(DeployAt::Current),
            ChangeKind::Removed { .. } | ChangeKind::Unchanged => None,
        }
    }
}

impl ConfigDiff {
    /// The entry for `pair`, if it is in either config.
    pub fn get(&self, pair: &Pair) -> Option<&PairDiff> {
        self.pairs.iter().find(|d| &d.pair == pair)
    }

    /// Pairs whose old location is torn down.
    pub fn teardowns(&self) -> impl Iterator<Item = (&PairDiff, Teardown)> {
        self.pairs.iter().filter_map(|d| d.teardown().map(|t| (d, t)))
    }

    /// Pairs the reload deploys, and at which commit.
    pub fn deploys(&self) -> impl Iterator<Item = (&PairDiff, DeployAt)> {
        self.pairs.iter().filter_map(|d| d.deploy_at().map(|at| (d, at)))
    }

    /// Whether the reload touches no host.
    pub fn is_noop(&self) -> bool {
        self.teardowns().next().is_none() && self.deploys().next().is_none()
    }
}

/// Where a pair runs: enough to tell whether two pairs share a machine, a compose project (or
/// an application, which goes by the same name) or a directory.
struct Place {
    /// Address (lowercase) and port of the sshd: one machine, one Docker engine.
    machine: (String, u16),
    live: String,
    /// The compose project name, and whether an application goes by it: a Compose project
    /// never takes over an application's containers, nor the other way round.
    compose: (String, bool),
}

impl Place {
    fn of(host: &Host, project: &Project) -> Self {
        // An agent host without an address is known by its name alone.
        let machine = if host.address.is_empty() {
            (format!("agent {}", host.name), 0)
        } else {
            (host.address.to_ascii_lowercase(), host.port)
        };
        Self {
            machine,
            live: remote_join(&host.deploy_dir, &project.deploy_subdir),
            compose: (project_name(&project.name, host.compose_project_prefix.as_deref()), project.is_application()),
        }
    }
}

/// Whether `dir` is `base` or lies under it.
fn at_or_under(dir: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    dir == base || dir.strip_prefix(base).is_some_and(|rest| rest.starts_with('/')) || base.is_empty()
}

/// Every pair of a config with its host and project entries.
fn pairs(config: &Config) -> impl Iterator<Item = (Pair, &Host, &Project)> {
    config.projects.iter().flat_map(move |p| {
        p.targets
            .iter()
            .filter_map(move |t| config.host(t.as_str()).map(|h| (Pair::new(p.name.clone(), t.clone()), h, p)))
    })
}

/// A pair's host and project entries in `config`, if the pair is in it.
fn find<'a>(config: &'a Config, pair: &Pair) -> Option<(&'a Host, &'a Project)> {
    let project = config.project(pair.project.as_str()).filter(|p| p.targets.contains(&pair.host))?;
    Some((config.host(pair.host.as_str())?, project))
}

/// Compares the applied config `old` with a new one: pure, and every pair of either config
/// gets an entry (see [`ConfigDiff`] for the rules).
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let new_places: Vec<Place> = pairs(new).map(|(_, h, p)| Place::of(h, p)).collect();
    let teardown = |place: &Place| Teardown {
        down: !new_places.iter().any(|n| n.machine == place.machine && n.compose == place.compose),
        remove_files: !new_places.iter().any(|n| n.machine == place.machine && at_or_under(&n.live, &place.live)),
    };
    let keys: BTreeSet<Pair> = pairs(old).chain(pairs(new)).map(|(pair, _, _)| pair).collect();
    let pairs = keys
        .into_iter()
        .map(|pair| match (find(old, &pair), find(new, &pair)) {
            (Some((oh, op)), None) => {
                PairDiff { pair, kind: ChangeKind::Removed { teardown: teardown(&Place::of(oh, op)) }, fields: vec![] }
            }
            (None, _) => PairDiff { pair, kind: ChangeKind::Added, fields: vec![] },
            (Some((oh, op)), Some((nh, np))) => {
                let fields = changed_fields(old, (oh, op), new, (nh, np));
                let kind = match fields.iter().map(|f| f.effect()).max() {
                    Some(Effect::Move) => ChangeKind::Moved { teardown: teardown(&Place::of(oh, op)) },
                    Some(Effect::Redeploy) => ChangeKind::Changed,
                    Some(Effect::None) | None => ChangeKind::Unchanged,
                };
                PairDiff { pair, kind, fields }
            }
        })
        .collect();
    ConfigDiff { pairs }
}

/// The fields of one pair that differ between the two configs, in [`Field`] order.
fn changed_fields(old: &Config, (oh, op): (&Host, &Project), new: &Config, (nh, np): (&Host, &Project)) -> Vec<Field> {
    let (before, after) = (Place::of(oh, op), Place::of(nh, np));
    let source =
        |c: &Config, p: &Project| c.repo(p.repo.as_str()).map(|r| (redact_url(&r.url).into_owned(), r.branch.clone()));
    let trigger = |c: &Config, p: &Project| c.repo(p.repo.as_str()).map(|r| (r.trigger_mode, r.poll_interval));
    let checks = [
        (Field::Address, before.machine.0 != after.machine.0),
        (Field::Port, before.machine.1 != after.machine.1),
        (Field::LiveDir, before.live != after.live),
        (Field::ComposeProject, before.compose.0 != after.compose.0),
        (Field::Kind, op.is_application() != np.is_application()),
        (Field::Source, source(old, op) != source(new, np)),
        (Field::RepoSubdir, op.repo_subdir != np.repo_subdir),
        (Field::ComposeFiles, op.compose_files != np.compose_files),
        (Field::ExtraFiles, op.extra_files != np.extra_files),
        (Field::PersistFiles, op.persist_files != np.persist_files),
        (Field::Dockerfile, app_differs(op, np, |a| &a.dockerfile)),
        (Field::ContainerPort, app_differs(op, np, |a| &a.container_port)),
        (Field::HealthCheckPath, app_differs(op, np, |a| &a.health_check_path)),
        (Field::Domain, app_differs(op, np, |a| &a.domain)),
        (Field::Listen, app_differs(op, np, |a| &a.listen)),
        (Field::BuildArgs, app_differs(op, np, |a| &a.build_args)),
        (Field::User, oh.user != nh.user),
        (Field::Transport, oh.transport != nh.transport),
        (Field::ComposeCommand, oh.compose_command != nh.compose_command),
        (Field::ProxyImage, np.is_application() && oh.proxy_image != nh.proxy_image),
        (Field::WatchPaths, op.watch_paths != np.watch_paths),
        (Field::HealthCheck, op.health_check != np.health_check),
        (Field::Health, op.health != np.health),
        (Field::KeepReleases, app_differs(op, np, |a| &a.keep_releases)),
        (Field::Drain, app_differs(op, np, |a| &a.drain)),
        (Field::Rollback, op.rollback != np.rollback),
        (Field::AutoDeploy, op.auto_deploy != np.auto_deploy),
        (Field::Trigger, trigger(old, op) != trigger(new, np)),
    ];
    checks.into_iter().filter(|(_, changed)| *changed).map(|(field, _)| field).collect()
}

/// Whether an application setting differs between two applications; a change of kind is
/// [`Field::Kind`] alone.
fn app_differs<T: PartialEq>(old: &Project, new: &Project, setting: impl Fn(&Application) -> &T) -> bool {
    match (&old.application, &new.application) {
        (Some(a), Some(b)) => setting(a) != setting(b),
        _ => false,
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
