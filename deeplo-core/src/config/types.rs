//! The validated configuration: what the rest of the engine sees.
//!
//! [`super::load`] / [`super::parse`] build these types after every rule has passed, so code
//! that holds a [`Config`] never re-checks names, paths or references. Embedders may also
//! build them in code. They also deserialize, to read back the applied-config baseline the
//! engine itself stored (names, paths and globs are re-validated on the way in).

use crate::access::OrgName;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{HostName, ProjectName, RepoName};
use crate::path::RelPath;
use crate::plan::WatchPaths;

/// The whole config: the hosts to deploy to, the repositories to watch and the projects
/// that tie them together. Hand it to [`EngineBuilder::config`](crate::EngineBuilder::config).
///
/// [`parse`](super::parse) and [`load`](super::load) build one from YAML and check every
/// rule. A `Config` built in code skips the checks that span entries, so the builder must
/// keep them: names unique within each list, every [`Project::repo`] and
/// [`Project::targets`] entry naming an existing repo and host, and no two projects on one
/// host with overlapping directories (one live directory inside another). Names, paths and globs are already checked by their types
/// ([`HostName`], [`RelPath`], [`WatchPaths`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The servers deeplo deploys to (`hosts[]`); the file requires at least one.
    pub hosts: Vec<Host>,
    /// The watched repositories (`repos[]`); the file requires at least one.
    pub repos: Vec<Repo>,
    /// The Compose projects (`projects[]`). Empty is allowed (a warning in the file): the
    /// daemon then deploys nothing and tears down what it deployed before.
    pub projects: Vec<Project>,
}

impl Config {
    /// The host entry named `name`, if there is one.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The repo entry named `name`, if there is one.
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }

    /// The project named `name`, if there is one.
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
    /// Unique among the hosts; what [`Project::targets`] refer to, and the host part of a
    /// [`Pair`](crate::model::Pair).
    pub name: HostName,
    /// How deeplo reaches the host: over SSH (the default), or through the runner agent that
    /// runs on it and connects out to the daemon (`transport: agent`).
    #[serde(default, skip_serializing_if = "HostTransport::is_ssh")]
    pub transport: HostTransport,
    /// Host name or IP address to connect to. Required over SSH; optional for an agent host,
    /// where it only tells deeplo that a host switched between SSH and the agent is still the
    /// same machine (so that its projects are redeployed in place, not moved). Empty when not
    /// given.
    pub address: String,
    /// The SSH port. In the file: default `$DEEPLO_SSH_PORT`, else 22.
    pub port: u16,
    /// The SSH user. In the file: default `$DEEPLO_SSH_USER`, else `deploy`.
    pub user: String,
    /// Absolute directory on the host under which each project gets its `deploy_subdir`,
    /// without a trailing slash (`/srv/apps`). Required.
    pub deploy_dir: String,
    /// The compose command to run instead of probing for `docker compose` / `docker-compose`,
    /// split into program and arguments (`["docker", "compose"]`). Default `None`: probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_command: Option<Vec<String>>,
    /// Prepended to compose project names on this host, to keep apart several deeplo hosts
    /// that share one Docker engine (`staging-` and `prod-` on one machine). Lowercase
    /// letters, digits, `-` and `_`. Default `None`: no prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose_project_prefix: Option<String>,
    /// The image of the reverse proxy that routes to this host's applications, run as the
    /// container `deeplo-proxy` and driven through its admin API (default `caddy:2`; any
    /// image with Caddy 2 as `caddy` and `wget` and `timeout` in its `PATH`, as the official one has).
    #[serde(default = "default_proxy_image")]
    pub proxy_image: String,
    /// The organization the host belongs to (default `default`): only its members see it,
    /// and only its projects deploy to it.
    #[serde(default, skip_serializing_if = "OrgName::is_default")]
    pub org: OrgName,
}

/// `hosts[].proxy_image` when not given.
pub const DEFAULT_PROXY_IMAGE: &str = "caddy:2";

fn default_proxy_image() -> String {
    DEFAULT_PROXY_IMAGE.to_owned()
}

/// How deeplo reaches a host (`hosts[].transport`); the file's default is [`Ssh`](Self::Ssh).
/// More transports may be added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostTransport {
    /// Agentless: deeplo connects to the host's sshd (`address`, `port`, `user`).
    #[default]
    Ssh,
    /// The runner agent on the host connects out to the daemon; no inbound port is needed.
    Agent,
}

impl HostTransport {
    /// The name used in the config file: `ssh` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Agent => "agent",
        }
    }

    /// Whether this is [`Ssh`](Self::Ssh), the default (left out when serialized).
    pub fn is_ssh(&self) -> bool {
        matches!(self, Self::Ssh)
    }
}

impl std::fmt::Display for HostTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a repo's new commits are noticed (`repos[].trigger_mode`); the file's default is
/// [`Poll`](Self::Poll). More modes may be added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerMode {
    /// Only GitHub push webhooks; the repo is never polled.
    Webhook,
    /// Only polling the branch head every [`Repo::poll_interval`]; webhooks for it are ignored.
    Poll,
    /// Both: webhooks for speed, polling to catch a missed delivery.
    Hybrid,
}

impl TriggerMode {
    /// Whether the poller watches a repo in this mode.
    pub fn polls(self) -> bool {
        matches!(self, Self::Poll | Self::Hybrid)
    }

    /// Whether a push webhook for a repo in this mode is planned.
    pub fn takes_webhooks(self) -> bool {
        matches!(self, Self::Webhook | Self::Hybrid)
    }

    /// The name used in the config file: `webhook`, `poll` or `hybrid`.
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
    /// Unique among the repos; what [`Project::repo`] refers to.
    pub name: RepoName,
    /// A local path, `file://`, `ssh://`, scp-style `git@host:org/repo.git` or `https://` URL.
    /// A password in it (`https://user:token@…`) is masked in errors, diffs and the stored
    /// applied config.
    pub url: String,
    /// The branch whose head is deployed (default `main`).
    pub branch: String,
    /// How new commits are noticed (default [`TriggerMode::Poll`]).
    pub trigger_mode: TriggerMode,
    /// How often the branch head is polled, when [`TriggerMode::polls`]; more than zero
    /// (default 60 s).
    #[serde(with = "duration_secs")]
    pub poll_interval: Duration,
    /// The organization the repo belongs to (default `default`).
    #[serde(default, skip_serializing_if = "OrgName::is_default")]
    pub org: OrgName,
}

/// A deployable Docker Compose project (`projects[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Unique among the projects; also the base of the compose project name on each host.
    pub name: ProjectName,
    /// The [`Repo::name`] this project deploys from.
    pub repo: RepoName,
    /// The project's directory in the repository, normalised: no `.` segments, no trailing
    /// slash; empty ([`RelPath::root`]) for the repository root. Required in the file.
    pub repo_subdir: RelPath,
    /// The [`Host::name`]s to deploy to; at least one. Each gives one
    /// [`Pair`](crate::model::Pair).
    pub targets: Vec<HostName>,
    /// Compose files passed with `-f`, relative to `repo_subdir` (default `[compose.yml]`).
    pub compose_files: Vec<RelPath>,
    /// Globs relative to the repository root; a push deploys the project when a changed path
    /// matches. Empty means every push matches. Default in the file: `<repo_subdir>/**`
    /// (every push when `repo_subdir` is the root).
    pub watch_paths: WatchPaths,
    /// More files or directories to ship with the compose files, relative to `repo_subdir`;
    /// a directory means every file under it (default none).
    pub extra_files: Vec<RelPath>,
    /// Files kept from the live directory across deploys when the commit does not carry them
    /// (default `[.env]`; empty keeps nothing).
    pub persist_files: Vec<RelPath>,
    /// The live directory, relative to each target host's [`Host::deploy_dir`] (default: the
    /// project name).
    pub deploy_subdir: RelPath,
    /// An HTTP check run from the host after `up`, gating success (default `None`: only the
    /// compose healthchecks gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthTarget>,
    /// Retries, backoff and overall timeout of the health gate (compose healthchecks and
    /// `health_check` alike); default [`HealthPolicy::default`].
    pub health: HealthPolicy,
    /// Whether a failed verify or health gate rolls the pair back to its last good commit
    /// (default `true`).
    pub rollback: bool,
    /// Whether pushes and polls deploy this project (default `true`). When `false`, only an
    /// explicit deploy does, and a plan says why it skipped it.
    #[serde(default = "yes")]
    pub auto_deploy: bool,
    /// Set when the project is a single-Dockerfile application rather than a Compose project:
    /// built on the server and swapped blue-green behind the host's proxy. Its
    /// [`compose_files`](Self::compose_files) and [`persist_files`](Self::persist_files) are
    /// then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Application>,
    /// The organization the project belongs to (default `default`); its repo and every
    /// target must be in it too.
    #[serde(default, skip_serializing_if = "OrgName::is_default")]
    pub org: OrgName,
}

fn yes() -> bool {
    true
}

impl Project {
    /// Whether the project is an [`Application`] (it has a `dockerfile`).
    pub fn is_application(&self) -> bool {
        self.application.is_some()
    }
}

/// A single-Dockerfile application (`projects[].dockerfile` and the keys that go with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// The Dockerfile, relative to the project's `repo_subdir`, which is the build context.
    pub dockerfile: RelPath,
    /// The port the application listens on inside its container.
    pub container_port: u16,
    /// The path the health gate and the proxy's checks ask (default `/`); starts with `/`.
    pub health_check_path: String,
    /// The host name the proxy routes to the application (HTTPS, certificates managed by
    /// the proxy), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The address and port on the server where the proxy serves the application over
    /// HTTP, if any (`127.0.0.1:8080`, `:80`). At least one of `domain` and `listen` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<ListenAddress>,
    /// `--build-arg NAME=VALUE` pairs for `docker build`, sorted by name.
    #[serde(default)]
    pub build_args: Vec<(String, String)>,
    /// How many releases are kept on the server, the live one included (default 3, at
    /// least 1): the others stay stopped with their images, for an instant rollback.
    pub keep_releases: u32,
    /// How long the old release keeps running after the switch, for the requests it is
    /// still answering (default 5 s).
    #[serde(with = "duration_secs")]
    pub drain: Duration,
}

/// `projects[].listen`: where on the server the proxy listens for an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenAddress {
    /// The IP address to bind (`127.0.0.1`), or `None` for every address (`:80`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::IpAddr>,
    /// The TCP port, more than 0.
    pub port: u16,
}

impl ListenAddress {
    /// Reads `ADDRESS:PORT` or `:PORT` (`[::1]:8080` for IPv6).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (ip, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("expected ADDRESS:PORT or :PORT (such as 127.0.0.1:8080 or :80), got {text:?}"))?;
        let port: u16 = match port.parse() {
            Ok(0) | Err(_) => return Err(format!("{port:?} is not a TCP port (1 to 65535) in {text:?}")),
            Ok(p) => p,
        };
        let ip = match ip.trim_start_matches('[').trim_end_matches(']') {
            "" => None,
            ip => Some(ip.parse().map_err(|_| format!("{ip:?} is not an IP address in {text:?}"))?),
        };
        Ok(Self { ip, port })
    }

    /// `docker run --publish`'s form: `127.0.0.1:8080:PORT`, `8080:PORT`.
    pub fn publish(&self, container_port: u16) -> String {
        match self.ip {
            None => format!("{}:{container_port}", self.port),
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}:{container_port}", self.port),
            Some(ip) => format!("{ip}:{}:{container_port}", self.port),
        }
    }
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            None => write!(f, ":{}", self.port),
            Some(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Some(ip) => write!(f, "{ip}:{}", self.port),
        }
    }
}

/// What the HTTP health check asks, from the host itself (`projects[].health_check`). A 2xx
/// answer passes. More kinds of check may be added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthTarget {
    /// A full `http://` or `https://` URL.
    Url(String),
    /// `http://127.0.0.1:{port}{path}` on the host.
    PathPort {
        /// The request path, starting with `/` (`/healthz`).
        path: String,
        /// The TCP port on the host's loopback interface.
        port: u16,
    },
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

/// How long and how often the health gate waits (`projects[].health_check.retries`,
/// `interval`, `max_interval`, `timeout`). [`Default`] gives 10 retries, 1 s doubling up to
/// 16 s, and 3 minutes overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Attempts before giving up, at least 1 (default 10).
    pub retries: u32,
    /// The wait before the second attempt; it doubles after each failure up to
    /// `max_interval` (default 1 s).
    #[serde(with = "duration_secs")]
    pub interval: Duration,
    /// The longest wait between two attempts (default 16 s; in the file, a larger
    /// `interval` raises it).
    #[serde(with = "duration_secs")]
    pub max_interval: Duration,
    /// The gate fails once this much time has passed, whatever the retries left (default
    /// 3 minutes).
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
    fn listen_addresses() {
        let l = ListenAddress::parse("127.0.0.1:8080").unwrap();
        assert_eq!((l.to_string(), l.publish(80)), ("127.0.0.1:8080".into(), "127.0.0.1:8080:80".into()));
        let any = ListenAddress::parse(":80").unwrap();
        assert_eq!((any.to_string(), any.publish(80)), (":80".into(), "80:80".into()));
        assert_eq!(ListenAddress::parse("[::1]:9000").unwrap().publish(80), "[::1]:9000:80");
        for bad in ["8080", "127.0.0.1:0", "127.0.0.1:http", "localhost:80", "1.2.3:80"] {
            assert!(ListenAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_target_url() {
        let t = HealthTarget::PathPort { path: "/healthz".into(), port: 8080 };
        assert_eq!(t.url(), "http://127.0.0.1:8080/healthz");
    }
}
