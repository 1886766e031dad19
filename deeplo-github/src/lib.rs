//! deeplo's GitHub integration: push webhooks in, deployment reports out.
//!
//! - [`webhook`]: the `POST /webhooks/github` route. It verifies the HMAC signature,
//!   drops repeated deliveries, matches the pushed repository and branch to the config's
//!   repo entries and hands [`GithubPush`]es to a [`PushSink`] that queues them.
//! - [`client`] and [`app`]: a small REST client authenticated by a static token or a
//!   GitHub App (installation tokens minted and cached in memory), with bounded retries.
//! - [`notifier`]: [`GithubNotifier`], a [`deeplo_core::Notifier`] that creates GitHub
//!   Deployments and commit statuses for every deploy.
//! - [`settings`]: the `DEEPLO_GITHUB_*` variables.
//!
//! ```no_run
//! # async fn wire(sink: std::sync::Arc<dyn deeplo_github::PushSink>) -> deeplo_core::Result<()> {
//! use deeplo_core::config::EnvMap;
//!
//! let settings = deeplo_github::settings_from_env(&EnvMap::from_process())?;
//! let mut app = axum::Router::new();
//! if let Some(webhooks) = deeplo_github::optional_router(settings.webhook_secret.clone(), sink) {
//!     app = app.merge(webhooks);
//! }
//! if let Some(notifier) = settings.notifier()? {
//!     // engine_builder.notifier(std::sync::Arc::new(notifier))
//! #   let _ = notifier;
//! }
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod client;
pub mod notifier;
mod repo_url;
pub mod settings;
pub mod webhook;

pub use app::{AppClaims, AppCredentials, TokenSource};
pub use client::{GithubClient, GithubClientBuilder, RetryPolicy};
pub use notifier::{GithubNotifier, NotifierOptions};
pub use repo_url::{github_full_name, repo_full_name};
pub use settings::{GithubSettings, settings_from_env};
pub use webhook::{GithubPush, PushPayload, PushSink, SinkBusy, WebhookState, optional_router, router};
