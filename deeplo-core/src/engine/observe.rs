//! Looking at hosts without deploying: `probe` (can we reach it, does it have docker and
//! compose) and `observe` (what compose says is running, per project).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Engine;
use crate::config::{Config, Host};
use crate::model::{HostName, ProjectName};
use crate::path::remote_join;
use crate::pipeline::{
    ComposeCommand, ReleaseState, RemoteDirs, ServiceState, detect_compose, project_name, ps, releases_on,
};
use crate::{Error, ErrorKind, Result};

/// Whether a host answered, from [`Engine::probe`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The host's name in the config.
    pub host: HostName,
    /// Where it was reached: `user@address:port`.
    pub address: String,
    /// Connected, authenticated, and a compose command was found.
    pub ok: bool,
    /// Why not, when `ok` is false (unreachable, refused key, no docker, timed out...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The compose command found there, as one line (`docker compose`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<String>,
    /// How long the probe took, in milliseconds.
    pub millis: u64,
}

/// What runs on one host, from [`Engine::observe`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostObservation {
    /// The host's name in the config.
    pub host: HostName,
    /// Why the host could not be looked at (connect, compose command, timeout); `projects`
    /// is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One entry per project that targets the host, in config order.
    pub projects: Vec<ProjectObservation>,
}

/// What compose reports for one project on one host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectObservation {
    /// The project's name in the config.
    pub project: ProjectName,
    /// Why `compose ps` failed for this project; `services` is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its containers, as `compose ps` lists them (empty when nothing runs, and for an
    /// application).
    pub services: Vec<ServiceState>,
    /// An application's releases, newest first: the live one and those kept for a
    /// rollback (empty for a Compose project).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseState>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

impl Engine {
    /// Connects to every host of the config in parallel and checks for docker and compose,
    /// each within 15 seconds; moves each host's state in [`servers`](Self::servers). One result per
    /// host, in config order; failures are in the results, never an error.
    pub async fn probe(&self) -> Vec<ProbeResult> {
        let config = self.config();
        let probes = config.hosts.iter().map(|host| async move {
            let start = Instant::now();
            let result = tokio::time::timeout(PROBE_TIMEOUT, self.probe_one(host)).await.unwrap_or_else(|_| {
                Err(Error::new(ErrorKind::Timeout, "probe", format!("no answer within {}s", PROBE_TIMEOUT.as_secs())))
            });
            let why = result.as_ref().err().map(|e| e.message().to_owned());
            self.inner.track_host(&host.name, why.as_deref()).await;
            let (ok, error, compose) = match result {
                Ok(compose) => (true, None, Some(compose.words.join(" "))),
                Err(e) => (false, Some(e.to_string()), None),
            };
            ProbeResult {
                host: host.name.clone(),
                address: format!("{}@{}:{}", host.user, host.address, host.port),
                ok,
                error,
                compose,
                millis: start.elapsed().as_millis() as u64,
            }
        });
        futures::future::join_all(probes).await
    }

    async fn probe_one(&self, host: &Host) -> Result<ComposeCommand> {
        let transport = self.inner.connector.connect(host).await?;
        let compose = detect_compose(transport.as_ref(), host).await;
        let _ = transport.close().await;
        compose
    }

    /// Runs `compose ps` for every project on every host, hosts in parallel (each within 30
    /// seconds). One observation per host, in config order; failures are in the
    /// observations, never an error. Changes nothing on the hosts.
    pub async fn observe(&self) -> Vec<HostObservation> {
        let config = self.config();
        let looks = config.hosts.iter().map(|host| {
            let config = &config;
            async move {
                match tokio::time::timeout(PROBE_TIMEOUT * 2, self.observe_host(config, host)).await {
                    Ok(Ok(projects)) => HostObservation { host: host.name.clone(), error: None, projects },
                    Ok(Err(e)) => {
                        HostObservation { host: host.name.clone(), error: Some(e.to_string()), projects: Vec::new() }
                    }
                    Err(_) => HostObservation {
                        host: host.name.clone(),
                        error: Some("timed out".into()),
                        projects: Vec::new(),
                    },
                }
            }
        });
        futures::future::join_all(looks).await
    }

    async fn observe_host(&self, config: &Config, host: &Host) -> Result<Vec<ProjectObservation>> {
        let projects: Vec<_> = config.projects.iter().filter(|p| p.targets.contains(&host.name)).collect();
        if projects.is_empty() {
            return Ok(Vec::new());
        }
        let transport = self.inner.connector.connect(host).await?;
        // A host that runs only applications needs no compose command.
        let compose = match projects.iter().any(|p| !p.is_application()) {
            true => Some(detect_compose(transport.as_ref(), host).await?),
            false => None,
        };
        let mut out = Vec::new();
        for project in projects {
            let compose = match (&compose, project.is_application()) {
                (Some(compose), false) => compose,
                _ => {
                    out.push(match releases_on(transport.as_ref(), host, project).await {
                        Ok(releases) => ProjectObservation {
                            project: project.name.clone(),
                            error: None,
                            services: Vec::new(),
                            releases,
                        },
                        Err(e) => ProjectObservation {
                            project: project.name.clone(),
                            error: Some(e.message().to_owned()),
                            services: Vec::new(),
                            releases: Vec::new(),
                        },
                    });
                    continue;
                }
            };
            let dirs = RemoteDirs::new(remote_join(&host.deploy_dir, &project.deploy_subdir));
            let files: Vec<String> = project.compose_files.iter().map(|f| f.as_str().to_owned()).collect();
            let name = project_name(&project.name, host.compose_project_prefix.as_deref());
            let result = ps(transport.as_ref(), compose, &name, &dirs.live, &files).await;
            out.push(match result {
                Ok(services) => {
                    ProjectObservation { project: project.name.clone(), error: None, services, releases: Vec::new() }
                }
                Err(e) => ProjectObservation {
                    project: project.name.clone(),
                    error: Some(e.message().to_owned()),
                    services: Vec::new(),
                    releases: Vec::new(),
                },
            });
        }
        let _ = transport.close().await;
        Ok(out)
    }
}
