//! A small GitHub REST client: the few endpoints deeplo calls, with authentication,
//! bounded retries and errors that name the endpoint and status (never a token).
//!
//! `api_base` is configurable (GitHub Enterprise, or a local server in tests). Server
//! errors (5xx) and network failures are retried with exponential backoff up to
//! [`RetryPolicy::attempts`]; client errors (4xx) are answers, not accidents, and are
//! returned at once.

mod api;
mod http;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deeplo_core::{Error, ErrorKind, Result, Secret};
use jiff::Timestamp;
use serde::Deserialize;

pub use api::{CommitState, DeploymentState, NewCommitStatus, NewDeployment, NewDeploymentStatus};

use crate::app::{AppCredentials, CachedToken, TokenSource};

/// GitHub's public API.
pub const DEFAULT_API_BASE: &str = "https://api.github.com";
/// The REST API version requested.
pub const API_VERSION: &str = "2022-11-28";

/// How often and how patiently a failed request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 3, base_delay: Duration::from_millis(500) }
    }
}

impl RetryPolicy {
    fn delay(&self, failed_attempt: u32) -> Duration {
        self.base_delay.saturating_mul(2u32.saturating_pow(failed_attempt.saturating_sub(1)))
    }
}

/// Builds a [`GithubClient`].
#[derive(Debug)]
pub struct GithubClientBuilder {
    tokens: TokenSource,
    api_base: String,
    retry: RetryPolicy,
    timeout: Duration,
}

impl GithubClientBuilder {
    /// The API root, `https://api.github.com` by default; a trailing slash is ignored.
    pub fn api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into().trim_end_matches('/').to_owned();
        self
    }

    /// How failed requests are retried ([`RetryPolicy::default`] unless set).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The limit for one request (15 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// # Errors
    ///
    /// `Config` when the API root is not an `http(s)://` URL or the HTTP client cannot be
    /// set up.
    pub fn build(self) -> Result<GithubClient> {
        if !(self.api_base.starts_with("https://") || self.api_base.starts_with("http://")) {
            return Err(Error::new(
                ErrorKind::Config,
                "set up GitHub client",
                format!("the API URL must start with https:// or http://, got {:?}", self.api_base),
            ));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("deeplo/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, "set up GitHub client", e.to_string()))?;
        Ok(GithubClient {
            inner: Arc::new(Inner {
                http,
                api_base: self.api_base,
                retry: RetryPolicy { attempts: self.retry.attempts.max(1), ..self.retry },
                tokens: self.tokens,
                installations: Mutex::new(HashMap::new()),
                installation_tokens: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The GitHub REST client; cheap to clone (the caches are shared).
#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_base: String,
    retry: RetryPolicy,
    tokens: TokenSource,
    /// `owner/name` (lower case) -> installation id.
    installations: Mutex<HashMap<String, u64>>,
    /// Installation id -> token; a tokio mutex so one refresh runs at a time.
    installation_tokens: tokio::sync::Mutex<HashMap<u64, CachedToken>>,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient")
            .field("api_base", &self.inner.api_base)
            .field("tokens", &self.inner.tokens)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: Timestamp,
}

impl GithubClient {
    /// A builder for a client that authenticates with `tokens`, on `https://api.github.com`,
    /// with the default retries and a 15 s timeout per request.
    pub fn builder(tokens: TokenSource) -> GithubClientBuilder {
        GithubClientBuilder {
            tokens,
            api_base: DEFAULT_API_BASE.to_owned(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(15),
        }
    }

    /// The API root requests go to, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.inner.api_base
    }

    /// The token to act on `full_name` (`owner/name`) with: the static token, or a (cached)
    /// installation token of the App installation that covers the repository. The git
    /// source can use it to fetch private `https://github.com/` repositories.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a malformed name; for an App, the errors of the installation
    /// lookup and token requests (`NotFound` when the App is not installed on the repo).
    pub async fn token_for(&self, full_name: &str) -> Result<Secret> {
        check_full_name(full_name)?;
        let creds = match &self.inner.tokens {
            TokenSource::Static(token) => return Ok(token.clone()),
            TokenSource::App(creds) => creds,
        };
        let installation = match creds.installation_id() {
            Some(id) => id,
            None => self.installation_for(creds, full_name).await?,
        };
        let mut tokens = self.inner.installation_tokens.lock().await;
        if let Some(cached) = tokens.get(&installation)
            && cached.is_fresh(Timestamp::now())
        {
            return Ok(cached.token.clone());
        }
        let jwt = creds.jwt(Timestamp::now())?;
        let path = format!("/app/installations/{installation}/access_tokens");
        let minted: AccessToken = self.send_json(reqwest::Method::POST, &path, &jwt, None).await?;
        let token = Secret::new(minted.token);
        tokens.insert(installation, CachedToken::new(token.clone(), minted.expires_at));
        tracing::debug!(installation, expires_at = %minted.expires_at, "GitHub App installation token minted");
        Ok(token)
    }

    async fn installation_for(&self, creds: &AppCredentials, full_name: &str) -> Result<u64> {
        let key = full_name.to_ascii_lowercase();
        if let Some(id) = self.lock_installations().get(&key) {
            return Ok(*id);
        }
        let jwt = creds.jwt(Timestamp::now())?;
        let path = format!("/repos/{full_name}/installation");
        let found: Installation = self.send_json(reqwest::Method::GET, &path, &jwt, None).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    "github api",
                    format!("the GitHub App is not installed on {full_name} ({})", e.message()),
                )
            } else {
                e
            }
        })?;
        self.lock_installations().insert(key, found.id);
        Ok(found.id)
    }

    fn lock_installations(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.inner.installations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `owner/name` with the characters GitHub allows, so it can go into a URL path as is.
pub(crate) fn check_full_name(full_name: &str) -> Result<()> {
    let ok_part = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match full_name.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(()),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "github api",
            format!("{full_name:?} is not a GitHub repository name (owner/name)"),
        )),
    }
}
