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
//!
//! What the route does with each delivery, step by step: check its signature, parse the
//! push, and match it to the config's repo entries.
//!
//! ```
//! use deeplo_core::Secret;
//! use deeplo_core::config::{self, EnvMap};
//! use deeplo_core::plan::ChangedPaths;
//! use deeplo_github::PushPayload;
//! use deeplo_github::webhook::{sign, verify_signature};
//!
//! let secret = Secret::new("the webhook secret");
//! let body = br#"{
//!   "ref": "refs/heads/main",
//!   "before": "1111111111111111111111111111111111111111",
//!   "after": "2222222222222222222222222222222222222222",
//!   "repository": {"full_name": "acme/shop"},
//!   "commits": [{"added": [], "modified": ["deploy/compose.yml"], "removed": []}]
//! }"#;
//! // GitHub sends this in X-Hub-Signature-256; anything else is refused.
//! let header = sign(&secret, body);
//! assert!(verify_signature(&secret, &header, body));
//! assert!(!verify_signature(&secret, &header, b"{\"ref\": \"tampered\"}"));
//! assert!(!verify_signature(&Secret::new("a guess"), &header, body));
//!
//! let yaml = "
//! hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]
//! repos: [{name: shop, url: 'https://github.com/acme/shop.git', trigger_mode: webhook}]
//! projects: [{name: site, repo: shop, repo_subdir: deploy, targets: [web-1]}]
//! ";
//! let config = config::parse(yaml, &EnvMap::default()).expect("valid config").config;
//! let payload = PushPayload::parse(body)?;
//! let pushes = payload.pushes(&config);
//! assert_eq!(pushes.len(), 1);
//! assert_eq!(pushes[0].repo.as_str(), "shop");
//! assert_eq!(pushes[0].branch, "main");
//! assert_eq!(pushes[0].changed, ChangedPaths::Known(vec!["deploy/compose.yml".into()]));
//! # Ok::<(), deeplo_github::webhook::PayloadError>(())
//! ```

#![warn(missing_docs)]

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
pub use webhook::{
    GithubPush, PushPayload, PushSink, SinkBusy, WebhookState, optional_router, router, sign, verify_signature,
};
