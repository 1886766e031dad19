//! Building the engine's parts from the settings: the file store, the git source, the SSH
//! connector. The only place that knows which implementations the binary uses.

use std::sync::Arc;

use anyhow::Context as _;
use deeplo_agent::hub::HubOptions;
use deeplo_core::config::Settings;
use deeplo_core::git::{GitAuth, TokenProvider};
use deeplo_core::known_hosts::KnownHosts;
use deeplo_core::schedule::Limits;
use deeplo_core::vault::EnvVault;
use deeplo_core::{Engine, FileStore, GitSource, Secret};
use deeplo_ssh::{SshConnector, SshOptions};

use crate::context::Context;

pub fn known_hosts(settings: &Settings) -> KnownHosts {
    KnownHosts::new(settings.ssh_known_hosts.clone(), settings.ssh_host_key_policy)
}

/// The git mirror source; `https_token` answers for private HTTPS remotes (the GitHub App).
pub fn git_source(settings: &Settings, https_token: Option<TokenProvider>) -> anyhow::Result<GitSource> {
    let passphrase = match &settings.ssh_key_passphrase_file {
        Some(path) => Some(Secret::from_file(path)?),
        None => None,
    };
    Ok(GitSource::new(
        settings.data_dir.join("repos"),
        GitAuth {
            private_key: settings.ssh_private_key_file.clone(),
            passphrase,
            known_hosts: known_hosts(settings),
            https_token,
        },
    ))
}

pub fn connector(settings: &Settings) -> anyhow::Result<SshConnector> {
    let mut options = SshOptions::new(known_hosts(settings));
    options.private_key = settings.ssh_private_key_file.clone();
    options.passphrase_file = settings.ssh_key_passphrase_file.clone();
    Ok(SshConnector::new(options)?)
}

/// The agent hub's options from the settings.
pub fn hub_options(settings: &Settings) -> HubOptions {
    HubOptions {
        heartbeat_interval_secs: u32::try_from(settings.agent_heartbeat_interval.as_secs()).unwrap_or(u32::MAX).max(1),
        heartbeat_allowance: settings.agent_heartbeat_allowance,
        grace: settings.agent_grace,
        ..HubOptions::default()
    }
}

pub fn store(ctx: &Context) -> anyhow::Result<Arc<FileStore>> {
    let dir = &ctx.settings.data_dir;
    let store = FileStore::open(dir, jiff::Timestamp::now())
        .with_context(|| format!("cannot open the data directory {} (DEEPLO_DATA_DIR)", dir.display()))?;
    Ok(Arc::new(store))
}

pub fn limits(settings: &Settings) -> Limits {
    Limits {
        max_workers: settings.max_workers,
        max_per_host: settings.max_host_concurrency,
        job_timeout: settings.deploy_timeout,
        ..Limits::default()
    }
}

/// The engine for in-process verbs, on the config file of `ctx`.
pub async fn engine(ctx: &Context) -> anyhow::Result<Engine> {
    let loaded = ctx.load_config()?;
    let store = store(ctx)?;
    Ok(Engine::builder()
        .config(loaded.config)
        .source(Arc::new(git_source(&ctx.settings, None)?))
        .connector(Arc::new(connector(&ctx.settings)?))
        .vault(EnvVault::new(store.clone(), &ctx.settings.secrets_key_file))
        .store(store)
        .limits(limits(&ctx.settings))
        .build()?)
}
