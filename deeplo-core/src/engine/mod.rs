//! The [`Engine`]: the config, the backends and the scheduler put together. Library users
//! build one with [`EngineBuilder`] and call [`Engine::deploy`], [`Engine::submit`] (for
//! planned jobs), [`Engine::handle_head`] (for new branch heads), [`Engine::rollback`],
//! [`Engine::probe`], [`Engine::observe`] and [`Engine::apply_config`].

mod job;
mod observe;
mod reload;
mod reload_report;
mod submit;

pub use observe::{HostObservation, ProbeResult, ProjectObservation};
pub use reload_report::{ReloadFailure, ReloadReport, TornDown};
pub use submit::{DeployHandle, DeployRequest, SubmitOutcome, Submitted};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::model::{HostName, HostState};
use crate::notify::{DeployEvent, Notifier};
use crate::pipeline::ComposeCommand;
use crate::progress::Progress;
use crate::schedule::{Limits, Scheduler, ShutdownReport};
use crate::secret::{Redactor, Secret};
use crate::servers::ServerRegistry;
use crate::source::Source;
use crate::store::Store;
use crate::transport::Connector;
use crate::vault::EnvVault;
use crate::{Error, ErrorKind, Result};

/// Builds an [`Engine`] from its parts; [`build`](Self::build) fails when a required part is
/// missing.
///
/// Required: a [`config`](Self::config), a [`source`](Self::source) (the embedded
/// [`GitSource`](crate::GitSource)), a [`connector`](Self::connector) (`deeplo_ssh`'s, or
/// your own) and a [`store`](Self::store) (the embedded [`FileStore`](crate::FileStore)).
/// Optional, with their defaults: [`notifier`](Self::notifier) (none),
/// [`limits`](Self::limits) ([`Limits::default`]), [`secret`](Self::secret) (none),
/// [`notify_timeout`](Self::notify_timeout) (30 seconds) and [`vault`](Self::vault) (none:
/// projects get no environment values).
///
/// ```no_run
/// use std::sync::Arc;
///
/// use deeplo_core::config::{self, EnvMap};
/// use deeplo_core::git::GitAuth;
/// use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
/// use deeplo_core::schedule::Limits;
/// use deeplo_core::{Connector, Engine, FileStore, GitSource};
///
/// # fn demo(connector: Arc<dyn Connector>) -> deeplo_core::Result<()> {
/// let data = std::path::Path::new("/var/lib/deeplo");
/// let loaded = config::load(&data.join("config.yml"), &EnvMap::default())?;
/// let known_hosts = KnownHosts::new(data.join("known_hosts"), HostKeyPolicy::AcceptNew);
/// let auth = GitAuth { private_key: None, passphrase: None, known_hosts, https_token: None };
/// let engine = Engine::builder()
///     .config(loaded.config)
///     .store(Arc::new(FileStore::open(data, jiff::Timestamp::now())?))
///     .source(Arc::new(GitSource::new(data.join("repos"), auth)))
///     .connector(connector) // deeplo_ssh::SshConnector, or your own Connector
///     .limits(Limits { max_per_host: 2, ..Limits::default() })
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct EngineBuilder {
    config: Option<Config>,
    source: Option<Arc<dyn Source>>,
    connector: Option<Arc<dyn Connector>>,
    store: Option<Arc<dyn Store>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    limits: Option<Limits>,
    secrets: Vec<Secret>,
    notify_timeout: Option<Duration>,
    vault: Option<EnvVault>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder").finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// An empty builder (the same as [`Engine::builder`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The validated config to start with (required); later changes go through
    /// [`Engine::apply_config`] or [`Engine::set_config`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Where commits come from (required).
    pub fn source(mut self, source: Arc<dyn Source>) -> Self {
        self.source = Some(source);
        self
    }

    /// How hosts are reached (required).
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Where records, run logs, cursors and the applied config live (required). Open it
    /// before building: a file store marks the runs an earlier process left unfinished.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds a notifier; several may be added.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Concurrency limits, queue size, per-deploy timeout and lock wait (default:
    /// [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// A value that must never appear in run logs or teardown output (a token, a webhook
    /// secret); every occurrence is masked. Several may be added.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// The projects' environment values, delivered to each deploy of a project (to the
    /// environment of its compose commands) and taught to the run's redactor.
    pub fn vault(mut self, vault: EnvVault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// How long one notifier may take per event before it is given up on (default 30s).
    pub fn notify_timeout(mut self, timeout: Duration) -> Self {
        self.notify_timeout = Some(timeout);
        self
    }

    /// The engine, with an empty scheduler and every configured host provisioning until
    /// [`Engine::load_servers`] reads what the store knows. Spawns nothing: the scheduler
    /// starts jobs on the current tokio runtime as they are submitted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the config, source, connector or store was not given
    /// (the message names which).
    pub fn build(self) -> Result<Engine> {
        let missing = |what: &str| {
            Error::new(ErrorKind::InvalidInput, "build engine", format!("no {what} given to EngineBuilder"))
        };
        let (progress, _) = broadcast::channel(1024);
        let config = self.config.ok_or_else(|| missing("config"))?;
        let store = self.store.ok_or_else(|| missing("store"))?;
        let servers = Arc::new(ServerRegistry::new(store.clone()));
        servers.sync(&config, Timestamp::now());
        Ok(Engine {
            inner: Arc::new(Inner {
                config: RwLock::new(Arc::new(config)),
                source: self.source.ok_or_else(|| missing("source"))?,
                connector: self.connector.ok_or_else(|| missing("connector"))?,
                store,
                notifiers: self.notifiers,
                scheduler: Scheduler::new(self.limits.unwrap_or_default()),
                progress,
                redactor: Redactor::new(self.secrets),
                vault: self.vault,
                notify_timeout: self.notify_timeout.unwrap_or(Duration::from_secs(30)),
                servers,
                compose_commands: Mutex::new(HashMap::new()),
                submit_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

/// The deployment engine: the config in force, the backends, the scheduler and the live
/// progress of every run. Cheap to clone; clones share everything.
///
/// Build one with [`Engine::builder`] (see [`EngineBuilder`] for the parts and their
/// defaults), then:
///
/// - deploy: [`deploy`](Self::deploy) (a project, at a branch head or a commit),
///   [`submit`](Self::submit) (jobs from [`plan`](crate::plan::plan)),
///   [`handle_head`](Self::handle_head) (a new branch head, as the poller and webhooks do),
///   [`rollback`](Self::rollback);
/// - watch: [`progress`](Self::progress), the [`Store`] for records and logs;
/// - look at hosts: [`probe`](Self::probe), [`observe`](Self::observe),
///   [`servers`](Self::servers) (every server's state and history, loaded from the store by
///   [`load_servers`](Self::load_servers)), [`host_states`](Self::host_states);
/// - change the config: [`apply_config`](Self::apply_config) at start and on each reload;
/// - stop: [`shutdown`](Self::shutdown).
///
/// Every method that runs a deploy needs a tokio runtime.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    config: RwLock<Arc<Config>>,
    source: Arc<dyn Source>,
    connector: Arc<dyn Connector>,
    store: Arc<dyn Store>,
    notifiers: Vec<Arc<dyn Notifier>>,
    scheduler: Scheduler,
    progress: broadcast::Sender<Progress>,
    redactor: Redactor,
    vault: Option<EnvVault>,
    notify_timeout: Duration,
    servers: Arc<ServerRegistry>,
    /// The compose command found on each host, so that only a host's first deploy (or one
    /// after the command stopped running) looks for it.
    compose_commands: Mutex<HashMap<HostName, ComposeCommand>>,
    /// Serialises dedup decisions with the pending records they write, so that two triggers
    /// of one commit cannot both decide to deploy it.
    submit_lock: tokio::sync::Mutex<()>,
}

impl Engine {
    /// Starts building an engine; see [`EngineBuilder`].
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new (already validated) config in force; runs already started keep theirs.
    ///
    /// Nothing is torn down or redeployed: [`apply_config`](Self::apply_config) does that,
    /// and keeps the baseline it compares with up to date.
    pub fn set_config(&self, config: Config) {
        self.inner.servers.sync(&config, Timestamp::now());
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    /// The store the engine was built with (records, run logs, cursors).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The source the engine was built with.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.inner.source
    }

    /// The scheduler, for its [`stats`](Scheduler::stats), [`limits`](Scheduler::limits)
    /// and queued or running [`jobs`](Scheduler::jobs).
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// Live progress of every run from now on. The channel holds 1024 events; a receiver
    /// that falls further behind gets [`RecvError::Lagged`](broadcast::error::RecvError::Lagged)
    /// and loses the oldest, and never slows a deploy down.
    pub fn progress(&self) -> broadcast::Receiver<Progress> {
        self.inner.progress.subscribe()
    }

    /// The state of every server [`servers`](Self::servers) lists: each configured host
    /// (provisioning until first reached) and each decommissioned one.
    pub fn host_states(&self) -> HashMap<HostName, HostState> {
        self.inner.servers.states()
    }

    /// Every server's record and history: moved by deploys and probes here, by the agent
    /// hub's events in the daemon, and by [`ServerRegistry::decommission`].
    pub fn servers(&self) -> &Arc<ServerRegistry> {
        &self.inner.servers
    }

    /// Reads the stored server records (see [`ServerRegistry::load`]), gives every host of
    /// the config in force one and saves them, so that a new host's `since` survives a
    /// restart. The daemon calls it at start, before serving; without it the records are
    /// read at the first deploy or state change, and listings show only the config's hosts,
    /// provisioning, until then.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the store fails or the document cannot be read.
    pub async fn load_servers(&self) -> Result<()> {
        self.inner.servers.load().await?;
        self.inner.servers.sync(&self.config(), Timestamp::now());
        self.inner.servers.save().await
    }

    /// Stops intake, drops queued runs, waits up to `grace` for running deploys, then
    /// cancels them and waits for them to save their failed records
    /// (see [`Scheduler::shutdown`]).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.inner.scheduler.shutdown(grace).await
    }
}

impl Inner {
    fn remembered_compose(&self, host: &HostName) -> Option<ComposeCommand> {
        self.compose_commands.lock().unwrap_or_else(|e| e.into_inner()).get(host).cloned()
    }

    fn remember_compose(&self, host: &HostName, compose: Option<&ComposeCommand>) {
        let mut known = self.compose_commands.lock().unwrap_or_else(|e| e.into_inner());
        match compose {
            Some(c) => known.insert(host.clone(), c.clone()),
            None => known.remove(host),
        };
    }

    /// Records that `host` answered (`None`) or could not be reached (`Some(why)`). A store
    /// failure is logged, never the deploy's or probe's: the state holds in memory.
    async fn track_host(&self, host: &HostName, unreachable: Option<&str>) {
        let now = Timestamp::now();
        let saved = match unreachable {
            None => self.servers.reached(host, now).await,
            Some(why) => self.servers.unreachable(host, why, now).await,
        };
        if let Err(err) = saved {
            tracing::error!(host = %host, error = %err, "cannot save the server's state");
        }
    }

    /// `Err` when `host` takes no deploys because it was decommissioned (as stored: the
    /// document is read first when it was not yet).
    async fn accepts_deploys(&self, host: &HostName) -> Result<()> {
        if let Err(err) = self.servers.ensure_loaded().await {
            tracing::error!(error = %err, "cannot read the stored server states");
        }
        if !self.servers.is_decommissioned(host) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            "deploy",
            format!(
                "host {host} is decommissioned (deeplo servers decommission) and takes no deploys; \
                 remove it from the projects' targets"
            ),
        )
        .with_host(host))
    }

    /// Sends an event to every notifier, concurrently, each bounded by the timeout; a
    /// failure is logged and never reaches the deploy.
    async fn notify(&self, event: DeployEvent) {
        let sends = self.notifiers.iter().map(|n| {
            let event = &event;
            async move {
                match tokio::time::timeout(self.notify_timeout, n.notify(event)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(notifier = n.name(), run = %event.deployment.id, error = %err, "notifier failed")
                    }
                    Err(_) => tracing::warn!(notifier = n.name(), run = %event.deployment.id, "notifier timed out"),
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}
