//! Every server's state, kept live, stored and listed: the [`ServerRegistry`].
//!
//! A host moves through [`HostState`]'s machine on what the engine and the agent hub see:
//! a connect that succeeds ([`ServerRegistry::reached`]), one that fails
//! ([`unreachable`](ServerRegistry::unreachable)), an agent's hello, fingerprint and
//! goodbye ([`agent_connected`](ServerRegistry::agent_connected),
//! [`agent_facts`](ServerRegistry::agent_facts),
//! [`agent_disconnected`](ServerRegistry::agent_disconnected)), and the operator's
//! [`decommission`](ServerRegistry::decommission), which is final. A move the machine does
//! not allow is ignored (logged at debug level), so events may arrive in any order.
//!
//! Every transition is saved, with the record of every host, in one store document
//! ([`DOCUMENT`]) through [`Store::save_document`], with the last [`HISTORY_LIMIT`]
//! transitions of each host. What changes without a transition (`last_seen`, an agent's
//! facts) stays in memory until the next transition saves it anyway: thousands of agents
//! that report every minute cost no store writes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> deeplo_core::Result<()> {
//! use std::sync::Arc;
//!
//! use deeplo_core::config::{self, EnvMap};
//! use deeplo_core::model::{HostName, HostState};
//! use deeplo_core::servers::ServerRegistry;
//! use deeplo_core::FileStore;
//!
//! let yaml = "hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]
//! repos: [{name: app, url: /srv/git/app.git}]";
//! let config = config::parse(yaml, &EnvMap::default()).expect("valid config").config;
//! let dir = tempfile::tempdir().unwrap();
//! let now = jiff::Timestamp::now();
//! let registry = ServerRegistry::new(Arc::new(FileStore::open(dir.path(), now)?));
//! registry.sync(&config, now);
//! let web = HostName::new("web-1").unwrap();
//! assert_eq!(registry.get(&web).unwrap().state, HostState::Provisioning);
//! registry.reached(&web, now).await?;
//! registry.decommission(&web, now).await?;
//! registry.reached(&web, now).await?; // final: nothing moves it any more
//! assert_eq!(registry.get(&web).unwrap().state, HostState::Decommissioned);
//! assert_eq!(registry.history(&web).len(), 2);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{Config, HostTransport};
use crate::model::{HostName, HostState};
use crate::{Error, ErrorKind, Result, Store};

/// The name of the store document that holds every server's record and history.
pub const DOCUMENT: &str = "servers";

/// Transitions kept per host; older ones are dropped.
pub const HISTORY_LIMIT: usize = 100;

/// What a server's agent reports about the machine it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFacts {
    /// The operating system (`linux`).
    pub os: String,
    /// The kernel release.
    pub kernel: String,
    /// The CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Docker's server version, when Docker answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// The compose plugin's version, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_version: Option<String>,
    /// Free bytes on the filesystem of the agent's work directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_bytes: Option<u64>,
    /// The machine's memory, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// One server as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The host's name in the config.
    pub host: HostName,
    /// How it is reached, as the config in force says.
    #[serde(default)]
    pub transport: HostTransport,
    /// Its state.
    pub state: HostState,
    /// Since when it is in that state.
    pub since: Timestamp,
    /// When it was last heard from: a connect that succeeded, an agent's message.
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    /// The version of its agent, once one connected.
    #[serde(default)]
    pub agent_version: Option<String>,
    /// What its agent last reported.
    #[serde(default)]
    pub facts: Option<ServerFacts>,
    /// Why it is in its state (the last connect error, how its agent went away).
    #[serde(default)]
    pub reason: Option<String>,
}

/// One move of a host's state, as kept in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The host that moved.
    pub host: HostName,
    /// The state it left.
    pub from: HostState,
    /// The state it entered.
    pub to: HostState,
    /// When.
    pub at: Timestamp,
    /// Why, when known.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A record with its history, oldest transition first (what `deeplo servers show` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDetail {
    /// The record.
    #[serde(flatten)]
    pub record: ServerRecord,
    /// Its last transitions (at most [`HISTORY_LIMIT`]), oldest first.
    pub history: Vec<Transition>,
}

/// One host in the [`DOCUMENT`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    record: ServerRecord,
    #[serde(default)]
    history: VecDeque<Transition>,
}

/// The [`DOCUMENT`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    #[serde(default)]
    hosts: BTreeMap<HostName, Entry>,
}

#[derive(Debug, Default)]
struct State {
    hosts: BTreeMap<HostName, Entry>,
    /// The hosts of the config last given to [`ServerRegistry::sync`].
    configured: BTreeSet<HostName>,
    /// Whether the stored document was read: no save may happen before.
    loaded: bool,
}

impl State {
    /// Configured hosts, and decommissioned ones that are no longer (so that a retired
    /// server stays visible): what is listed and shown.
    fn visible(&self, host: &HostName, entry: &Entry) -> bool {
        self.configured.contains(host) || entry.record.state == HostState::Decommissioned
    }
}

/// Every server's record and history, in memory, saved to a [`Store`] on each transition.
///
/// Its saves are serialized by a lock it holds, and each writes the whole [`DOCUMENT`] from
/// memory, read from the store before the first save: keep one per store in a process (the
/// engine holds one, see [`Engine::servers`](crate::Engine::servers)).
pub struct ServerRegistry {
    store: Arc<dyn Store>,
    state: Mutex<State>,
    save_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ServerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRegistry").finish_non_exhaustive()
    }
}

/// What a transition does to a record besides its state.
type Update<'a> = &'a (dyn Fn(&mut ServerRecord) + Send + Sync);

impl ServerRegistry {
    /// An empty registry saving to `store`; [`load`](Self::load) what it holds, then
    /// [`sync`](Self::sync) with the config.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, state: Mutex::new(State::default()), save_lock: tokio::sync::Mutex::new(()) }
    }

    /// Reads the [`DOCUMENT`] into memory: a stored record replaces the one in memory (the
    /// store knows more than a process that has just started); hosts only in memory stay.
    /// A transition or [`save`](Self::save) before it reads the document first, so that
    /// nothing stored is lost; calling it early only makes the stored states known sooner.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn load(&self) -> Result<()> {
        let _guard = self.save_lock.lock().await;
        self.load_locked().await
    }

    /// [`load`](Self::load) unless done already.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub async fn ensure_loaded(&self) -> Result<()> {
        let _guard = self.save_lock.lock().await;
        self.ensure_loaded_locked().await
    }

    async fn ensure_loaded_locked(&self) -> Result<()> {
        if self.lock().loaded {
            return Ok(());
        }
        self.load_locked().await
    }

    /// Reads the document; the caller holds `save_lock`.
    async fn load_locked(&self) -> Result<()> {
        let stored = self.store.load_document(DOCUMENT).await?;
        let doc: Document = match stored {
            None => Document::default(),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                Error::new(ErrorKind::Store, "load servers", format!("the {DOCUMENT} document is unreadable: {e}"))
            })?,
        };
        let mut state = self.lock();
        state.hosts.extend(doc.hosts);
        state.loaded = true;
        Ok(())
    }

    /// Gives every host of `config` a record (provisioning since `now` when new) with the
    /// transport the config says. Hosts gone from the config keep their record, unlisted
    /// unless decommissioned. In memory only: nothing here is a transition.
    pub fn sync(&self, config: &Config, now: Timestamp) {
        let mut state = self.lock();
        state.configured = config.hosts.iter().map(|h| h.name.clone()).collect();
        for host in &config.hosts {
            let entry = state.hosts.entry(host.name.clone()).or_insert_with(|| Entry {
                record: ServerRecord {
                    host: host.name.clone(),
                    transport: host.transport,
                    state: HostState::Provisioning,
                    since: now,
                    last_seen: None,
                    agent_version: None,
                    facts: None,
                    reason: None,
                },
                history: VecDeque::new(),
            });
            entry.record.transport = host.transport;
        }
    }

    /// Writes the [`DOCUMENT`] from memory: what [`sync`](Self::sync) added is saved too
    /// (a new host's `since`, a changed transport), which transitions do anyway.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn save(&self) -> Result<()> {
        let _guard = self.save_lock.lock().await;
        self.ensure_loaded_locked().await?;
        let doc = encode(&self.lock().hosts)?;
        self.store.save_document(DOCUMENT, &doc).await
    }

    /// A connect to `host` succeeded (a deploy's or a probe's): active.
    ///
    /// # Errors
    ///
    /// The store's errors when the transition cannot be saved; it holds in memory, and the
    /// next save carries it.
    pub async fn reached(&self, host: &HostName, now: Timestamp) -> Result<Option<Transition>> {
        self.transition(host, HostState::Active, Some("reached".into()), now, &|r| r.last_seen = Some(now)).await
    }

    /// A connect to `host` failed for a network reason: unreachable.
    ///
    /// # Errors
    ///
    /// As [`reached`](Self::reached).
    pub async fn unreachable(&self, host: &HostName, reason: &str, now: Timestamp) -> Result<Option<Transition>> {
        self.transition(host, HostState::Unreachable, Some(reason.to_owned()), now, &|_| {}).await
    }

    /// `host`'s agent connected (its hello was accepted): active, with its version and,
    /// when it sent them, its facts.
    ///
    /// # Errors
    ///
    /// As [`reached`](Self::reached).
    pub async fn agent_connected(
        &self,
        host: &HostName,
        agent_version: &str,
        facts: Option<ServerFacts>,
        now: Timestamp,
    ) -> Result<Option<Transition>> {
        let reason = format!("agent {agent_version} connected");
        let update = |r: &mut ServerRecord| {
            r.last_seen = Some(now);
            r.agent_version = Some(agent_version.to_owned());
            if facts.is_some() {
                r.facts = facts.clone();
            }
        };
        self.transition(host, HostState::Active, Some(reason), now, &update).await
    }

    /// `host`'s agent reported its facts: kept in memory only (see the module docs).
    pub fn agent_facts(&self, host: &HostName, facts: ServerFacts, now: Timestamp) {
        self.touch(host, |r| {
            r.last_seen = Some(now);
            r.facts = Some(facts);
        });
    }

    /// `host` was heard from (an agent's heartbeat): memory only.
    pub fn seen(&self, host: &HostName, now: Timestamp) {
        self.touch(host, |r| r.last_seen = Some(now));
    }

    /// `host`'s agent went away: unreachable, with the reason.
    ///
    /// # Errors
    ///
    /// As [`reached`](Self::reached).
    pub async fn agent_disconnected(
        &self,
        host: &HostName,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<Transition>> {
        let reason = format!("agent disconnected: {reason}");
        self.transition(host, HostState::Unreachable, Some(reason), now, &|_| {}).await
    }

    /// Retires `host` for good: decommissioned, which takes no deploys and never changes
    /// again. `None` when it already was.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for a host neither configured nor decommissioned; the
    /// store's errors when it cannot be saved (it holds in memory).
    pub async fn decommission(&self, host: &HostName, now: Timestamp) -> Result<Option<Transition>> {
        if self.get(host).is_none() {
            return Err(Error::new(ErrorKind::NotFound, "decommission", format!("host {host} is not in the config"))
                .with_host(host));
        }
        self.transition(host, HostState::Decommissioned, Some("decommissioned".into()), now, &|_| {}).await
    }

    /// Every configured host's record, and those of decommissioned hosts no longer
    /// configured, sorted by host.
    pub fn list(&self) -> Vec<ServerRecord> {
        let state = self.lock();
        state.hosts.iter().filter(|(h, e)| state.visible(h, e)).map(|(_, e)| e.record.clone()).collect()
    }

    /// `host`'s record, when [`list`](Self::list) has it.
    pub fn get(&self, host: &HostName) -> Option<ServerRecord> {
        self.detail(host).map(|d| d.record)
    }

    /// `host`'s last transitions, oldest first; empty for an unknown host.
    pub fn history(&self, host: &HostName) -> Vec<Transition> {
        self.detail(host).map(|d| d.history).unwrap_or_default()
    }

    /// `host`'s record and history, when [`list`](Self::list) has it.
    pub fn detail(&self, host: &HostName) -> Option<ServerDetail> {
        let state = self.lock();
        let entry = state.hosts.get(host).filter(|e| state.visible(host, e))?;
        Some(ServerDetail { record: entry.record.clone(), history: entry.history.iter().cloned().collect() })
    }

    /// The state of every listed host.
    pub fn states(&self) -> HashMap<HostName, HostState> {
        self.list().into_iter().map(|r| (r.host, r.state)).collect()
    }

    /// Whether `host` is decommissioned (and so takes no deploys).
    pub fn is_decommissioned(&self, host: &HostName) -> bool {
        self.lock().hosts.get(host).is_some_and(|e| e.record.state == HostState::Decommissioned)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a change that is no transition. A decommissioned record is left as it is.
    fn touch(&self, host: &HostName, change: impl FnOnce(&mut ServerRecord)) {
        let mut state = self.lock();
        match state.hosts.get_mut(host) {
            Some(entry) if entry.record.state != HostState::Decommissioned => change(&mut entry.record),
            Some(_) => {}
            None => tracing::debug!(host = %host, "event for a host without a record ignored"),
        }
    }

    /// Applies `update` and moves `host` to `to` when the machine allows it; a transition
    /// is added to the history and saved with the whole document. A decommissioned record
    /// is left as it is.
    async fn transition(
        &self,
        host: &HostName,
        to: HostState,
        reason: Option<String>,
        now: Timestamp,
        update: Update<'_>,
    ) -> Result<Option<Transition>> {
        // Held across the save, so that saves land in the order their snapshots were taken.
        let _guard = self.save_lock.lock().await;
        self.ensure_loaded_locked().await?;
        let (transition, doc) = {
            let mut state = self.lock();
            let Some(entry) = state.hosts.get_mut(host) else {
                tracing::debug!(host = %host, to = %to, "event for a host without a record ignored");
                return Ok(None);
            };
            let from = entry.record.state;
            if from == HostState::Decommissioned {
                return Ok(None);
            }
            update(&mut entry.record);
            if from == to {
                entry.record.reason = reason;
                return Ok(None);
            }
            if let Err(err) = from.transition(to) {
                tracing::debug!(host = %host, error = %err, "host state unchanged");
                return Ok(None);
            }
            let transition = Transition { host: host.clone(), from, to, at: now, reason: reason.clone() };
            entry.record.state = to;
            entry.record.since = now;
            entry.record.reason = reason;
            entry.history.push_back(transition.clone());
            while entry.history.len() > HISTORY_LIMIT {
                entry.history.pop_front();
            }
            (transition, encode(&state.hosts)?)
        };
        tracing::info!(host = %host, from = %transition.from, to = %transition.to, "host state changed");
        self.store.save_document(DOCUMENT, &doc).await?;
        Ok(Some(transition))
    }
}

fn encode(hosts: &BTreeMap<HostName, Entry>) -> Result<serde_json::Value> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        hosts: &'a BTreeMap<HostName, Entry>,
    }
    serde_json::to_value(Borrowed { hosts })
        .map_err(|e| Error::new(ErrorKind::Store, "save servers", format!("cannot encode {DOCUMENT}: {e}")))
}

#[cfg(test)]
mod tests;
