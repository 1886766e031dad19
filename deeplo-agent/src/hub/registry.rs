//! [`Hub`]: the daemon's register of connected agents, one connection per server.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deeplo_core::model::HostName;
use deeplo_core::{Error, ErrorKind, Result, RunnerTokenStore, Transport};
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::connection::AgentConnection;
use crate::protocol::{
    CloseCode, DEFAULT_HEARTBEAT_ALLOWANCE, DEFAULT_HEARTBEAT_INTERVAL_SECS, Fingerprint, ToAgent, ToDaemon,
};

/// How the hub treats its agents.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// How often agents send a heartbeat (the [`Welcome`](crate::protocol::Welcome) tells
    /// them); at least 1.
    pub heartbeat_interval_secs: u32,
    /// How many intervals may pass without a frame before the hub closes the connection
    /// with [`CloseCode::HeartbeatMissed`]; at least 1.
    pub heartbeat_allowance: u32,
    /// How long an agent has, once connected, to send its hello.
    pub hello_timeout: Duration,
    /// The daemon's release, told to agents in the welcome.
    pub daemon_version: String,
    /// How long the requests of a connection that dropped wait for the same agent to come
    /// back (`DEEPLO_AGENT_GRACE`): the agent keeps running them, and the new connection
    /// re-attaches to each by its id. Zero: they fail at once.
    pub grace: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval_secs: DEFAULT_HEARTBEAT_INTERVAL_SECS,
            heartbeat_allowance: DEFAULT_HEARTBEAT_ALLOWANCE,
            hello_timeout: Duration::from_secs(10),
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            grace: Duration::from_secs(90),
        }
    }
}

/// A connected agent, as the hub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentInfo {
    /// The host it serves (the one its token is bound to).
    pub host: HostName,
    /// Its release, from its hello.
    pub agent_version: String,
    /// The protocol version the connection speaks.
    pub protocol: u16,
    /// The server's facts, from the hello or the latest update.
    pub fingerprint: Fingerprint,
    /// When this connection was accepted.
    pub connected_at: Timestamp,
    /// When the last frame of the agent arrived.
    pub last_seen: Timestamp,
}

/// What happens to the hub's agents, for whoever tracks server states.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubEvent {
    /// An agent completed its hello and was welcomed.
    Connected(AgentInfo),
    /// An agent sent a new fingerprint.
    Fingerprint {
        /// Its host.
        host: HostName,
        /// The server's facts now.
        fingerprint: Fingerprint,
    },
    /// An agent's connection ended (not sent when a newer connection of the same host
    /// replaced it: the host stays connected).
    Disconnected {
        /// Its host.
        host: HostName,
        /// Why, for the server's history.
        reason: String,
    },
}

/// The daemon's register of connected agents: who may connect (runner tokens, hosts not
/// decommissioned), the connection of each host, and their news.
///
/// - One connection per host: a newer connection of the same host (the agent restarted, or
///   reconnected before the hub noticed the old one drop) replaces the older, which is
///   closed with [`CloseCode::Replaced`].
/// - [`transport`](Self::transport) hands out a transport to a host's agent, waiting a
///   little for one that is reconnecting.
/// - [`disconnect`](Self::disconnect) closes a host's connection with a code: a revoked
///   token, a decommissioned server.
/// - [`subscribe`](Self::subscribe) follows connects, fingerprints and disconnects.
///
/// Serving the WebSocket itself is [`router`](super::router)'s.
#[derive(Debug)]
pub struct Hub {
    pub(super) tokens: RunnerTokenStore,
    pub(super) options: HubOptions,
    agents: Mutex<HashMap<HostName, Registered>>,
    /// Connections that dropped with requests in flight, waiting out the grace.
    detached: Mutex<HashMap<HostName, Detached>>,
    decommissioned: Mutex<HashSet<HostName>>,
    next_generation: AtomicU64,
    events: broadcast::Sender<HubEvent>,
    /// Bumped on every new connection, for callers waiting for one.
    connected: watch::Sender<u64>,
    /// Bumped whenever a connection leaves the register.
    deregistered: watch::Sender<u64>,
}

/// A connection whose socket dropped with requests in flight: its channels, for the next
/// socket of the same host to carry on.
#[derive(Debug)]
pub(super) struct Detached {
    pub(super) connection: Arc<AgentConnection>,
    /// The messages for the agent not yet written (the writer gave it back).
    pub(super) outgoing: mpsc::Receiver<ToAgent>,
    /// Where the agent's replies go.
    pub(super) to_daemon: mpsc::Sender<ToDaemon>,
    generation: u64,
}

/// One host's connection in the register.
#[derive(Debug)]
struct Registered {
    generation: u64,
    connection: Arc<AgentConnection>,
    live: Arc<Live>,
    /// Tells the connection's task to close with this code.
    kick: Option<oneshot::Sender<CloseCode>>,
}

/// What changes while a connection lives.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) info: Mutex<AgentInfo>,
    /// Milliseconds since the epoch of the last frame; read without the lock.
    pub(super) last_seen_ms: AtomicI64,
}

impl Live {
    pub(super) fn new(info: AgentInfo) -> Self {
        let last_seen_ms = AtomicI64::new(info.last_seen.as_millisecond());
        Self { info: Mutex::new(info), last_seen_ms }
    }

    pub(super) fn seen(&self, at: Timestamp) {
        self.last_seen_ms.store(at.as_millisecond(), Ordering::Relaxed);
    }

    fn snapshot(&self) -> AgentInfo {
        let mut info = self.info.lock().unwrap().clone();
        if let Ok(at) = Timestamp::from_millisecond(self.last_seen_ms.load(Ordering::Relaxed)) {
            info.last_seen = at;
        }
        info
    }
}

/// A connection's place in the register, returned by [`Hub::register`]; the connection's
/// task hands it back to [`Hub::deregister`] when it ends.
#[derive(Debug)]
pub(super) struct Registration {
    pub(super) host: HostName,
    generation: u64,
}

impl Hub {
    /// A hub whose agents authenticate with the runner tokens of `tokens`.
    pub fn new(tokens: RunnerTokenStore, options: HubOptions) -> Arc<Self> {
        Arc::new(Self {
            tokens,
            options,
            agents: Mutex::new(HashMap::new()),
            detached: Mutex::new(HashMap::new()),
            decommissioned: Mutex::new(HashSet::new()),
            next_generation: AtomicU64::new(1),
            events: broadcast::channel(1024).0,
            connected: watch::Sender::new(0),
            deregistered: watch::Sender::new(0),
        })
    }

    /// The hub's options.
    pub fn options(&self) -> &HubOptions {
        &self.options
    }

    /// Follows the hub's news. A receiver that falls more than 1,024 events behind misses
    /// the oldest ([`broadcast`]'s rule); the register itself ([`agents`](Self::agents)) is
    /// the truth.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.events.subscribe()
    }

    /// Every connected agent, sorted by host.
    pub fn agents(&self) -> Vec<AgentInfo> {
        let agents = self.agents.lock().unwrap();
        let mut out: Vec<AgentInfo> = agents.values().map(|r| r.live.snapshot()).collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// How many agents are connected now.
    pub fn connected_count(&self) -> usize {
        self.agents.lock().unwrap().len()
    }

    /// The agent of `host`, when it is connected.
    pub fn agent(&self, host: &HostName) -> Option<AgentInfo> {
        self.agents.lock().unwrap().get(host).map(|r| r.live.snapshot())
    }

    /// The connection of `host`'s agent, when it is connected.
    pub fn connection(&self, host: &HostName) -> Option<Arc<AgentConnection>> {
        self.agents.lock().unwrap().get(host).map(|r| Arc::clone(&r.connection))
    }

    /// A transport to `host` through its agent. When no agent of `host` is connected, waits
    /// up to `wait` for one (an agent that is reconnecting).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unreachable`] when no agent of `host` connects in time, naming the host
    /// and what to check.
    pub async fn transport(&self, host: &HostName, wait: Duration) -> Result<Box<dyn Transport>> {
        let mut connected = self.connected.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(connection) = self.connection(host).filter(|c| !c.is_lost()) {
                return Ok(Box::new(connection.transport()));
            }
            let changed = tokio::time::timeout_at(deadline, connected.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return Err(Error::new(
                    ErrorKind::Unreachable,
                    "connect",
                    format!(
                        "no agent of host {host} is connected (the host's transport is agent): check that \
                         deeplo-agent runs on it, with the token from `deeplo servers token {host}` and the \
                         daemon's URL"
                    ),
                )
                .with_host(host.as_str()));
            }
        }
    }

    /// Closes the connection of `host`'s agent with `code`; `false` when none is connected.
    pub fn disconnect(&self, host: &HostName, code: CloseCode) -> bool {
        let mut agents = self.agents.lock().unwrap();
        match agents.get_mut(host).and_then(|r| r.kick.take()) {
            Some(kick) => kick.send(code).is_ok(),
            None => false,
        }
    }

    /// Marks `host` decommissioned: its agent is refused from now on (closed with
    /// [`CloseCode::Decommissioned`], at once if it is connected).
    pub fn decommission(&self, host: &HostName) {
        self.decommissioned.lock().unwrap().insert(host.clone());
        self.disconnect(host, CloseCode::Decommissioned);
    }

    /// Whether `host` is decommissioned.
    pub fn is_decommissioned(&self, host: &HostName) -> bool {
        self.decommissioned.lock().unwrap().contains(host)
    }

    /// Enters a welcomed connection, replacing (and closing) any older one of its host.
    pub(super) fn register(
        &self,
        connection: Arc<AgentConnection>,
        live: Arc<Live>,
        kick: oneshot::Sender<CloseCode>,
    ) -> Registration {
        let info = live.snapshot();
        let host = info.host.clone();
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let old = self
            .agents
            .lock()
            .unwrap()
            .insert(host.clone(), Registered { generation, connection, live, kick: Some(kick) });
        if let Some(mut old) = old {
            tracing::info!(host = %host, "a newer connection of the agent replaces the older one");
            if let Some(kick) = old.kick.take() {
                let _ = kick.send(CloseCode::Replaced);
            }
        }
        self.connected.send_modify(|n| *n += 1);
        let _ = self.events.send(HubEvent::Connected(info));
        Registration { host, generation }
    }

    /// Removes an ended connection, unless a newer one replaced it already.
    pub(super) fn deregister(&self, registration: Registration, reason: String) {
        let mut agents = self.agents.lock().unwrap();
        if agents.get(&registration.host).is_some_and(|r| r.generation == registration.generation) {
            agents.remove(&registration.host);
            drop(agents);
            self.deregistered.send_modify(|n| *n += 1);
            let _ = self.events.send(HubEvent::Disconnected { host: registration.host, reason });
        }
    }

    /// Keeps the connection of `registration` for [`HubOptions::grace`], for the host's next
    /// socket to [`adopt`](Self::adopt); past the grace it is dropped, which fails its
    /// requests as unreachable.
    pub(super) fn detach(
        self: &Arc<Self>,
        registration: &Registration,
        connection: Arc<AgentConnection>,
        outgoing: mpsc::Receiver<ToAgent>,
        to_daemon: mpsc::Sender<ToDaemon>,
    ) {
        let host = registration.host.clone();
        let generation = registration.generation;
        tracing::info!(host = %host, requests = connection.in_flight().len(), grace = ?self.options.grace,
            "the agent's connection dropped; its requests wait for it to come back");
        let old = self
            .detached
            .lock()
            .unwrap()
            .insert(host.clone(), Detached { connection, outgoing, to_daemon, generation });
        drop(old);
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(hub.options.grace).await;
            let mut detached = hub.detached.lock().unwrap();
            if detached.get(&host).is_some_and(|d| d.generation == generation) {
                tracing::warn!(host = %host, "the agent did not come back within the grace; its requests fail");
                detached.remove(&host);
            }
        });
    }

    /// For a new socket of `host`: closes an older connection still registered (it may not
    /// have noticed its peer is gone) and waits briefly for it to leave, then takes the
    /// connection that dropped with requests in flight, if one waits.
    pub(super) async fn adopt(&self, host: &HostName) -> Option<Detached> {
        let mut left = self.deregistered.subscribe();
        if self.disconnect(host, CloseCode::Replaced) {
            let wait = async {
                while self.agents.lock().unwrap().contains_key(host) {
                    if left.changed().await.is_err() {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
        }
        self.detached.lock().unwrap().remove(host)
    }

    /// Passes on an agent's new fingerprint.
    pub(super) fn fingerprint(&self, host: &HostName, fingerprint: Fingerprint) {
        let _ = self.events.send(HubEvent::Fingerprint { host: host.clone(), fingerprint });
    }
}
