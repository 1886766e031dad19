//! The GitHub side of the daemon, from the `DEEPLO_GITHUB_*` settings: the webhook secret,
//! the reporting notifier, and the App token the git source uses for private
//! `https://github.com/...` repositories.

use std::sync::Arc;

use anyhow::Context as _;
use deeplo_core::Secret;
use deeplo_core::config::EnvMap;
use deeplo_core::git::TokenProvider;
use deeplo_github::{GithubNotifier, GithubSettings, github_full_name};

#[derive(Debug)]
pub struct GithubParts {
    pub webhook_secret: Option<Secret>,
    pub notifier: Option<Arc<GithubNotifier>>,
    pub settings: GithubSettings,
}

impl GithubParts {
    pub fn from_env(env: &EnvMap) -> anyhow::Result<Self> {
        let settings = deeplo_github::settings_from_env(env).context("GitHub settings")?;
        let notifier = settings.notifier().context("GitHub reporting")?.map(Arc::new);
        Ok(Self { webhook_secret: settings.webhook_secret.clone(), notifier, settings })
    }

    /// The token for fetching `https://<github host>/owner/repo` remotes, when reporting is on.
    /// The git source calls it from a blocking thread, where waiting on the runtime is allowed.
    pub fn token_provider(&self) -> Option<TokenProvider> {
        let client = self.notifier.as_ref()?.client().clone();
        let host = self.settings.notifier_options().github_host;
        let runtime = tokio::runtime::Handle::current();
        Some(Arc::new(move |url: &str| {
            let full_name = github_full_name(url, &host)?;
            match runtime.block_on(client.token_for(&full_name)) {
                Ok(token) => Some(token),
                Err(err) => {
                    tracing::warn!(repo = %full_name, error = %err, "no GitHub token for fetching");
                    None
                }
            }
        }))
    }
}
