//! Server states in the daemon: the bridge from the agent hub's events to the engine's
//! [`ServerRegistry`], and the admin routes that list, show and decommission servers.
//!
//! The registry decides; this module only maps hub events and HTTP onto it. An agent
//! host's `last_seen` is answered from the hub while its agent is connected (the registry
//! keeps heartbeats out of the store, so its own value may be older).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use deeplo_agent::hub::{AgentInfo, Hub, HubEvent};
use deeplo_agent::protocol::Fingerprint;
use deeplo_core::Engine;
use deeplo_core::config::HostTransport;
use deeplo_core::model::{HostName, HostState};
use deeplo_core::servers::{ServerDetail, ServerFacts, ServerRecord, ServerRegistry};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::Daemon;
use super::admin::ApiError;

/// `POST /v1/servers/{host}/decommission`.
#[derive(Debug, Deserialize, Serialize)]
pub struct Decommissioned {
    pub host: String,
    /// `false` when it already was decommissioned.
    pub changed: bool,
    pub server: ServerDetail,
}

/// Loads the stored server states, has the hub refuse the agents of decommissioned hosts,
/// and starts following the hub. Call it before the hub's route serves, so that no
/// connection goes unseen.
pub async fn start(engine: &Engine, hub: &Arc<Hub>) -> deeplo_core::Result<()> {
    engine.load_servers().await?;
    for record in engine.servers().list() {
        if record.state == HostState::Decommissioned {
            hub.decommission(&record.host);
        }
    }
    let events = hub.subscribe();
    tokio::spawn(follow(engine.servers().clone(), hub.clone(), events));
    Ok(())
}

/// Feeds the registry until the hub goes away.
async fn follow(servers: Arc<ServerRegistry>, hub: Arc<Hub>, mut events: tokio::sync::broadcast::Receiver<HubEvent>) {
    loop {
        let now = Timestamp::now();
        let saved = match events.recv().await {
            Ok(HubEvent::Connected(agent)) => connected(&servers, &agent, now).await,
            Ok(HubEvent::Fingerprint { host, fingerprint }) => {
                servers.agent_facts(&host, facts(&fingerprint), now);
                Ok(())
            }
            Ok(HubEvent::Disconnected { host, reason }) => {
                servers.agent_disconnected(&host, &reason, now).await.map(drop)
            }
            Ok(_) => Ok(()),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "server states fell behind the agent hub; resyncing");
                resync(&servers, &hub, now).await
            }
            Err(RecvError::Closed) => return,
        };
        if let Err(err) = saved {
            tracing::error!(error = %err, "cannot save a server's state");
        }
    }
}

async fn connected(servers: &ServerRegistry, agent: &AgentInfo, now: Timestamp) -> deeplo_core::Result<()> {
    let facts = Some(facts(&agent.fingerprint));
    servers.agent_connected(&agent.host, &agent.agent_version, facts, now).await?;
    servers.seen(&agent.host, agent.last_seen);
    Ok(())
}

/// After missed events: every connected agent is active, and an agent host that is active
/// without a connection is not.
async fn resync(servers: &ServerRegistry, hub: &Hub, now: Timestamp) -> deeplo_core::Result<()> {
    let agents = hub.agents();
    for agent in &agents {
        connected(servers, agent, now).await?;
    }
    for record in servers.list() {
        let gone = !agents.iter().any(|a| a.host == record.host);
        if gone && record.transport == HostTransport::Agent && record.state == HostState::Active {
            servers.agent_disconnected(&record.host, "not connected (found on a resync)", now).await?;
        }
    }
    Ok(())
}

/// The agent's fingerprint as core's facts (core does not depend on the agent crate).
pub fn facts(f: &Fingerprint) -> ServerFacts {
    ServerFacts {
        os: f.os.clone(),
        kernel: f.kernel.clone(),
        arch: f.arch.clone(),
        docker_version: f.docker_version.clone(),
        compose_version: f.compose_version.clone(),
        disk_free_bytes: f.disk_free_bytes,
        memory_bytes: f.memory_bytes,
    }
}

/// `record` with the hub's live `last_seen` when its agent is connected.
fn live(hub: &Hub, mut record: ServerRecord) -> ServerRecord {
    if let Some(agent) = hub.agent(&record.host) {
        record.last_seen = Some(record.last_seen.map_or(agent.last_seen, |seen| seen.max(agent.last_seen)));
    }
    record
}

fn host_name(host: &str) -> Result<HostName, ApiError> {
    HostName::new(host).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("host: {e}")))
}

fn detail(daemon: &Daemon, host: &HostName) -> Result<ServerDetail, ApiError> {
    let mut detail = daemon.engine.servers().detail(host).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("host {host} is not in the config and was never decommissioned"))
    })?;
    detail.record = live(&daemon.hub, detail.record);
    Ok(detail)
}

/// `GET /v1/servers`.
pub async fn list(State(daemon): State<Arc<Daemon>>) -> Json<Vec<ServerRecord>> {
    Json(daemon.engine.servers().list().into_iter().map(|r| live(&daemon.hub, r)).collect())
}

/// `GET /v1/servers/{host}`.
pub async fn show(State(daemon): State<Arc<Daemon>>, Path(host): Path<String>) -> Result<Json<ServerDetail>, ApiError> {
    Ok(Json(detail(&daemon, &host_name(&host)?)?))
}

/// `POST /v1/servers/{host}/decommission`.
pub async fn decommission(
    State(daemon): State<Arc<Daemon>>,
    Path(host): Path<String>,
) -> Result<Json<Decommissioned>, ApiError> {
    let name = host_name(&host)?;
    Ok(Json(decommission_host(&daemon, &name).await?))
}

/// Decommissions `host` for good, refusing and closing its agent.
pub(super) async fn decommission_host(daemon: &Daemon, name: &HostName) -> Result<Decommissioned, ApiError> {
    let transition = daemon.engine.servers().decommission(name, Timestamp::now()).await?;
    // Refused from now on, and closed if connected; also when it already was decommissioned,
    // in case an earlier call saved the state but failed before reaching the hub.
    daemon.hub.decommission(name);
    if transition.is_some() {
        tracing::info!(host = %name, "server decommissioned");
    }
    Ok(Decommissioned { host: name.to_string(), changed: transition.is_some(), server: detail(daemon, name)? })
}
