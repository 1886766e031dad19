//! `deeplo daemon`: the engine running unattended. It polls, takes GitHub webhooks, serves
//! run logs, metrics and the admin API, reloads its config, and on start recovers what an
//! earlier process left: runs that were going when it died are marked interrupted and
//! deployed again.

mod accounts;
mod admin;
pub mod api;
pub mod client;
mod env;
mod github;
mod http;
mod intake;
mod logging;
mod metrics;
mod reload;
mod retention;
pub mod servers;
mod tls;

pub use accounts::{
    CreateOrg, CreateToken, MembershipBody, MembershipChanged, OrgCreated, OrgSummary, TokenCreated, new_token,
    org_summaries,
};
pub use admin::{DeployBody, IssuedToken, QueuedRun, RevokedToken, RollbackBody};
pub use env::{Changed, SetValues, UnsetNames};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use deeplo_agent::hub::{Hub, HubConnector};
use deeplo_core::config::EnvMap;
use deeplo_core::plan::Job;
use deeplo_core::trigger::Poller;
use deeplo_core::vault::EnvVault;
use deeplo_core::{Engine, RunnerTokenStore};
use jiff::Timestamp;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use metrics::Metrics;

/// What the HTTP and admin handlers share.
#[derive(Debug)]
pub struct Daemon {
    pub engine: Engine,
    /// The runner tokens in the engine's store; one per process, so updates never race.
    pub runner_tokens: RunnerTokenStore,
    /// The projects' environment values in the engine's store; one per process.
    pub vault: EnvVault,
    /// Organizations, users and API tokens in the engine's store; one per process.
    pub accounts: deeplo_core::access::Accounts,
    /// The connected runner agents.
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub started_at: Timestamp,
    config_path: PathBuf,
    env: EnvMap,
    stopping: AtomicBool,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Daemon {
    /// Intake has stopped (SIGTERM): health answers 503, webhooks are refused.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    logging::init(&ctx.settings);
    let settings = &ctx.settings;
    let loaded = ctx.load_config()?;
    let store = crate::wiring::store(ctx)?;
    let interrupted = store.interrupted_at_open().to_vec();
    let github = github::GithubParts::from_env(&ctx.env)?;
    let source = crate::wiring::git_source(settings, github.token_provider())?;
    let runner_tokens = RunnerTokenStore::new(store.clone());
    let hub = Hub::new(runner_tokens.clone(), crate::wiring::hub_options(settings));
    let connector = HubConnector::new(hub.clone(), Arc::new(crate::wiring::connector(settings)?));
    // One vault for the engine (which delivers the values) and the admin routes (which
    // change them): its updates are serialized.
    let vault = EnvVault::new(store.clone(), &settings.secrets_key_file);
    let mut builder = Engine::builder()
        .vault(vault.clone())
        .config(loaded.config.clone())
        .source(Arc::new(source))
        .connector(Arc::new(connector))
        .store(store.clone())
        .limits(crate::wiring::limits(settings));
    if let Some(secret) = &github.webhook_secret {
        builder = builder.secret(secret.clone());
    }
    if let Some(notifier) = &github.notifier {
        builder = builder.notifier(notifier.clone());
    }
    let engine = builder.build()?;
    let daemon = Arc::new(Daemon {
        engine: engine.clone(),
        runner_tokens,
        accounts: deeplo_core::access::Accounts::new(store.clone()),
        vault,
        hub: hub.clone(),
        metrics: Arc::new(Metrics::default()),
        started_at: Timestamp::now(),
        config_path: ctx.config_path.clone(),
        env: ctx.env.clone(),
        stopping: AtomicBool::new(false),
        reload_lock: tokio::sync::Mutex::new(()),
    });
    daemon.metrics.spawn_listener(&engine);
    servers::start(&engine, &hub).await?;
    let cancel = CancellationToken::new();

    let tls = match (&settings.tls_cert_file, &settings.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    // Listeners first, so that a port or socket problem stops the start before any deploy.
    let http = tokio::net::TcpListener::bind(("0.0.0.0", settings.http_port))
        .await
        .with_context(|| format!("cannot listen on port {} (DEEPLO_HTTP_PORT)", settings.http_port))?;
    let http_addr = http.local_addr()?;
    let admin = client::bind_socket(&settings.unix_socket, settings.admin_group.as_deref())?;
    tracing::info!(
        http = %http_addr, tls = tls.is_some(), socket = %settings.unix_socket.display(), config = %ctx.config_path.display(),
        data_dir = %settings.data_dir.display(), "deeplo daemon started"
    );

    let report = reload::apply(&engine, loaded.config.clone()).await?;
    tracing::info!(report = %report, "config in force");
    redeploy_interrupted(&engine, &interrupted).await;

    let mut routes = http::router(daemon.clone()).merge(deeplo_agent::hub::router(hub));
    let intake = intake::Intake::spawn(engine.clone(), daemon.metrics.clone(), cancel.clone());
    match deeplo_github::optional_router(github.webhook_secret.clone(), intake) {
        Some(webhook) => routes = routes.merge(webhook),
        None => tracing::info!("no DEEPLO_GITHUB_WEBHOOK_SECRET_FILE: the GitHub webhook route is off"),
    }
    let http_task = match &tls {
        Some(acceptor) => tokio::spawn(tls::serve(http, routes, acceptor.clone(), cancel.clone())),
        None => tokio::spawn(serve_http(http, routes, cancel.clone())),
    };
    let admin_task = tokio::spawn(serve_admin(admin, admin::router(daemon.clone()), cancel.clone()));
    let poller = tokio::spawn(Poller::new(engine.clone()).run(cancel.clone()));
    reload::spawn_watchers(daemon.clone(), Duration::from_secs(2), cancel.clone())?;
    retention::spawn(engine.clone(), settings.log_retention_days, cancel.clone());

    wait_for_stop().await?;
    tracing::info!(grace = ?settings.shutdown_grace, "stopping: no new work; waiting for running deploys");
    daemon.stopping.store(true, Ordering::Relaxed);
    cancel.cancel();
    let _ = poller.await;
    let shutdown = engine.shutdown(settings.shutdown_grace).await;
    tracing::info!(
        finished = shutdown.finished,
        cancelled = shutdown.cancelled,
        dropped = shutdown.dropped,
        "deeplo daemon stopped"
    );
    let _ = http_task.await;
    let _ = admin_task.await;
    let _ = std::fs::remove_file(&settings.unix_socket);
    Ok(ExitCode::SUCCESS)
}

/// Runs that a dead process left going are deployed again at their commit.
async fn redeploy_interrupted(engine: &Engine, interrupted: &[deeplo_core::model::Deployment]) {
    if interrupted.is_empty() {
        return;
    }
    let jobs: Vec<Job> = interrupted
        .iter()
        .filter(|d| engine.config().project(d.project.as_str()).is_some_and(|p| p.targets.contains(&d.host)))
        .map(|d| Job { project: d.project.clone(), host: d.host.clone(), commit: d.commit.clone() })
        .collect();
    tracing::warn!(runs = interrupted.len(), redeploying = jobs.len(), "runs interrupted by the last stop");
    if let Err(err) = engine.submit(&jobs, deeplo_core::model::Trigger::Reconcile, false).await {
        tracing::error!(error = %err, "cannot redeploy interrupted runs");
    }
}

async fn serve_http(listener: tokio::net::TcpListener, router: axum::Router, cancel: CancellationToken) {
    let stop = async move { cancel.cancelled().await };
    if let Err(err) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
        tracing::error!(error = %err, "HTTP server failed");
    }
}

async fn serve_admin(listener: tokio::net::UnixListener, router: axum::Router, cancel: CancellationToken) {
    let stop = async move { cancel.cancelled().await };
    if let Err(err) = axum::serve(listener, router).with_graceful_shutdown(stop).await {
        tracing::error!(error = %err, "admin socket server failed");
    }
}

async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
