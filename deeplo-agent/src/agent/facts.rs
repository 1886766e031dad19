//! The local Docker engine as the agent reports it: its [`DockerFacts`] for
//! [`ToAgent::DockerFacts`](crate::protocol::ToAgent::DockerFacts), and the versions that go
//! into the [`Fingerprint`](crate::protocol::Fingerprint).
//!
//! The engine is asked over its unix socket: `DOCKER_HOST` when it names one
//! (`unix:///run/user/1000/docker.sock` for a rootless engine), else `/var/run/docker.sock`.
//! The Compose plugin has no API of its own, so its version comes from
//! `docker compose version --short`. Every call to either is bounded by [`DOCKER_TIMEOUT`]: a
//! stuck engine makes the request fail, it never holds it forever.

use std::collections::HashMap;
use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use bollard::models::{ContainerSummary, SystemVersion};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::{ClientVersion, Docker};
use tokio::process::Command;

use crate::protocol::{Container, DockerFacts};

/// How long one call to the engine (or to `docker compose`) may take.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket when `DOCKER_HOST` is unset.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The label Compose puts on every container of a project, and the one naming its service.
const PROJECT_LABEL: &str = "com.docker.compose.project";
const SERVICE_LABEL: &str = "com.docker.compose.service";

/// The API versions spoken, newest first. Every engine refuses a version above its own
/// maximum, and engines from 29 on refuse one below 1.44, so no single version reaches them
/// all: 1.44 reaches Docker 25 and later, 1.24 the older ones (Docker 20.10 speaks at most
/// 1.41). The fields read here (`Version`, `ApiVersion`, `Names`, `Labels`, `State`,
/// `Status`) exist in both.
const API_VERSIONS: [ClientVersion; 2] =
    [ClientVersion { major_version: 1, minor_version: 44 }, ClientVersion { major_version: 1, minor_version: 24 }];

/// Why the Docker facts could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The engine could not be reached, or answered with an error.
    #[error("Docker does not answer on {socket}: {reason}; is the Docker engine running, and may this user use it?")]
    Unreachable {
        /// The socket that was tried.
        socket: String,
        /// What went wrong.
        reason: String,
    },
    /// The engine took longer than [`DOCKER_TIMEOUT`].
    #[error("Docker on {socket} did not answer {what} within {timeout:?}")]
    TimedOut {
        /// The socket that was tried.
        socket: String,
        /// The call that timed out (`/version`).
        what: &'static str,
        /// How long it was given.
        timeout: Duration,
    },
    /// `DOCKER_HOST` names something other than a unix socket.
    #[error("DOCKER_HOST={host} is not a unix socket (unix://...); the agent reads the local engine only")]
    NotLocal {
        /// The value of `DOCKER_HOST`.
        host: String,
    },
}

/// The engine's version and API version, the Compose plugin's version, and the containers
/// (running or not) of the Compose project `project`, or every container when `None`, sorted
/// by name.
pub async fn docker_facts(project: Option<&str>) -> Result<DockerFacts, FactsError> {
    docker_facts_at(&socket_from_env()?, project, DOCKER_TIMEOUT).await
}

/// The engine's and the Compose plugin's versions, for the
/// [`Fingerprint`](crate::protocol::Fingerprint); each is `None` when it cannot be read.
pub async fn docker_versions() -> (Option<String>, Option<String>) {
    let engine = async {
        let socket = socket_from_env().ok()?;
        let (_, version) = Engine::connect(&socket, DOCKER_TIMEOUT).await.ok()?;
        version.version
    };
    tokio::join!(engine, compose_version())
}

/// [`docker_facts`] from the engine at `socket` (a path, or a `unix://` address), each call
/// bounded by `timeout`.
async fn docker_facts_at(socket: &str, project: Option<&str>, timeout: Duration) -> Result<DockerFacts, FactsError> {
    let ((engine, version), compose_version) =
        tokio::try_join!(Engine::connect(socket, timeout), async { Ok(compose_version().await) })?;
    let mut containers: Vec<Container> = engine.containers(project).await?.into_iter().map(container).collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(DockerFacts {
        engine_version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
        compose_version,
        containers,
    })
}

/// The socket named by `DOCKER_HOST`, or the default one.
fn socket_from_env() -> Result<String, FactsError> {
    socket_from(std::env::var("DOCKER_HOST").ok().as_deref())
}

/// The socket named by a `DOCKER_HOST` of `host`: the default one when it is unset or empty.
fn socket_from(host: Option<&str>) -> Result<String, FactsError> {
    match host.filter(|host| !host.is_empty()) {
        None => Ok(DEFAULT_SOCKET.to_owned()),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) => Ok(path.to_owned()),
            None => Err(FactsError::NotLocal { host: host.to_owned() }),
        },
    }
}

/// A client for one request. A client is made per request rather than kept: making one does
/// no I/O (bollard keeps no idle connection to a unix socket anyway), the first call made on
/// it (`/version`) is needed for the facts and also picks the API version, and so an engine
/// upgraded, restarted or moved to another socket while the agent runs is simply found the
/// next time.
#[derive(Debug)]
struct Engine {
    docker: Docker,
    socket: String,
    timeout: Duration,
}

impl Engine {
    /// Connects with the newest of [`API_VERSIONS`] the engine accepts, and returns what
    /// its `/version` said.
    async fn connect(socket: &str, timeout: Duration) -> Result<(Self, SystemVersion), FactsError> {
        let socket = socket.strip_prefix("unix://").unwrap_or(socket);
        let mut last = None;
        for api in &API_VERSIONS {
            // bollard's own timeout, in whole seconds, backs ours up (see `call`).
            let docker = Docker::connect_with_unix(socket, timeout.as_secs().max(1), api)
                .map_err(|e| FactsError::Unreachable { socket: socket.to_owned(), reason: e.to_string() })?;
            let engine = Self { docker, socket: socket.to_owned(), timeout };
            match engine.call("/version", engine.docker.version()).await {
                Ok(version) => return Ok((engine, version)),
                // A 400 is how an engine refuses an API version: try the next one.
                Err(Call::Refused(e)) if is_bad_request(&e) => last = Some(e),
                Err(other) => return Err(engine.error(other)),
            }
        }
        let reason = last.map_or_else(String::new, |e| e.to_string());
        Err(FactsError::Unreachable { socket: socket.to_owned(), reason })
    }

    /// All the containers, or those labelled with the Compose project `project`.
    async fn containers(&self, project: Option<&str>) -> Result<Vec<ContainerSummary>, FactsError> {
        let mut filters = HashMap::new();
        if let Some(project) = project {
            filters.insert("label", vec![format!("{PROJECT_LABEL}={project}")]);
        }
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        self.call("/containers/json", self.docker.list_containers(Some(options))).await.map_err(|e| self.error(e))
    }

    async fn call<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, Call> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(bollard::errors::Error::RequestTimeoutError)) | Err(_) => Err(Call::TimedOut(what)),
            Ok(Err(e)) => Err(Call::Refused(e)),
        }
    }

    fn error(&self, call: Call) -> FactsError {
        let socket = self.socket.clone();
        match call {
            Call::TimedOut(what) => FactsError::TimedOut { socket, what, timeout: self.timeout },
            Call::Refused(e) => FactsError::Unreachable { socket, reason: e.to_string() },
        }
    }
}

/// How one call to the engine failed.
#[derive(Debug)]
enum Call {
    TimedOut(&'static str),
    Refused(bollard::errors::Error),
}

fn is_bad_request(error: &bollard::errors::Error) -> bool {
    matches!(error, bollard::errors::Error::DockerResponseServerError { status_code: 400, .. })
}

fn container(summary: ContainerSummary) -> Container {
    let name = summary.names.and_then(|names| names.into_iter().next()).unwrap_or_default();
    let service = summary.labels.and_then(|mut labels| labels.remove(SERVICE_LABEL)).unwrap_or_default();
    Container {
        name: name.strip_prefix('/').map(str::to_owned).unwrap_or(name),
        service,
        state: summary.state.map(|state| state.to_string()).unwrap_or_default(),
        status: summary.status.unwrap_or_default(),
    }
}

/// `docker compose version --short`, or `None` when the CLI or its Compose plugin is missing,
/// fails or hangs.
async fn compose_version() -> Option<String> {
    let output = Command::new("docker")
        .args(["compose", "version", "--short"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DOCKER_TIMEOUT, output).await.ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    let version = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!version.is_empty()).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_is_named_in_the_error() {
        let error = docker_facts_at("unix:///nonexistent.sock", None, DOCKER_TIMEOUT).await.unwrap_err();
        assert!(matches!(error, FactsError::Unreachable { .. }), "{error:?}");
        assert!(error.to_string().contains("/nonexistent.sock"), "{error}");
    }

    #[tokio::test]
    async fn a_socket_that_never_answers_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        // Accepts connections and never answers them.
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let _accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let socket = path.to_str().unwrap();
        let error = docker_facts_at(socket, None, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(error, FactsError::TimedOut { what: "/version", .. }), "{error:?}");
        assert!(error.to_string().contains(socket), "{error}");
    }

    #[test]
    fn docker_host_names_a_unix_socket_or_nothing() {
        assert_eq!(socket_from(None).unwrap(), DEFAULT_SOCKET);
        assert_eq!(socket_from(Some("")).unwrap(), DEFAULT_SOCKET);
        assert_eq!(socket_from(Some("unix:///run/user/1000/docker.sock")).unwrap(), "/run/user/1000/docker.sock");
        let error = socket_from(Some("tcp://10.0.0.2:2375")).unwrap_err();
        assert!(error.to_string().contains("tcp://10.0.0.2:2375"), "{error}");
    }

    #[test]
    fn a_container_is_read_from_its_summary() {
        let summary = ContainerSummary {
            names: Some(vec!["/web-1".into()]),
            labels: Some(HashMap::from([(SERVICE_LABEL.to_owned(), "web".to_owned())])),
            state: Some(bollard::models::ContainerSummaryStateEnum::EXITED),
            status: Some("Exited (0) 2 minutes ago".into()),
            ..Default::default()
        };
        let expected = Container {
            name: "web-1".into(),
            service: "web".into(),
            state: "exited".into(),
            status: "Exited (0) 2 minutes ago".into(),
        };
        assert_eq!(container(summary), expected);
        assert_eq!(container(ContainerSummary::default()).service, "");
    }
}
