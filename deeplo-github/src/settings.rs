//! The GitHub settings, from `DEEPLO_*` environment variables.
//!
//! The Go tool's names are kept: `DEEPLO_GITHUB_WEBHOOK_SECRET_FILE` (turns the webhook on),
//! `DEEPLO_GITHUB_TOKEN_FILE` (turns reporting on), `DEEPLO_GITHUB_ENVIRONMENT` (prefix of
//! environment names), `DEEPLO_GITHUB_ENVIRONMENT_HOST` (`true`: one environment per host
//! and project) and `DEEPLO_PUBLIC_URL` (log links). A GitHub App replaces the token with
//! `DEEPLO_GITHUB_APP_ID`, `DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE` and optionally
//! `DEEPLO_GITHUB_APP_INSTALLATION_ID`; `DEEPLO_GITHUB_API_URL` points at GitHub Enterprise.
//!
//! As in the Go tool an empty variable means unset. Unlike it, a value that does not parse
//! is an error naming the variable, and the secret files are read here, so a missing or
//! empty file stops the daemon at startup.

use std::fmt;
use std::path::Path;

use deeplo_core::config::{Diagnostic, EnvMap};
use deeplo_core::{Error, ErrorKind, Result, Secret};

use crate::app::{AppCredentials, TokenSource};
use crate::client::{DEFAULT_API_BASE, GithubClient};
use crate::notifier::{GithubNotifier, NotifierOptions};

/// Everything the GitHub integration reads from the environment.
#[derive(Clone)]
pub struct GithubSettings {
    /// The webhook secret; `None` means the webhook route is not served.
    pub webhook_secret: Option<Secret>,
    /// How API requests authenticate; `None` means nothing is reported.
    pub tokens: Option<TokenSource>,
    /// `DEEPLO_GITHUB_ENVIRONMENT`: put before every environment name (`prod` gives
    /// `prod/site`), without surrounding slashes.
    pub environment_prefix: Option<String>,
    /// `DEEPLO_GITHUB_ENVIRONMENT_HOST`: one environment per host and project
    /// (`[prefix/]host/project`) instead of one per project.
    pub environment_host: bool,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    /// Without a trailing slash.
    pub api_base: String,
}

impl fmt::Debug for GithubSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubSettings")
            .field("webhook_secret", &self.webhook_secret)
            .field("tokens", &self.tokens)
            .field("environment_prefix", &self.environment_prefix)
            .field("environment_host", &self.environment_host)
            .field("public_url", &self.public_url)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// [`GithubSettings::from_env`] with every problem in one [`Error`] of kind `Config`.
///
/// # Errors
///
/// One line per variable that is wrong, each naming the variable.
pub fn settings_from_env(env: &EnvMap) -> Result<GithubSettings> {
    GithubSettings::from_env(env).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Error::new(ErrorKind::Config, "read GitHub settings", lines.join("; "))
    })
}

impl GithubSettings {
    /// Reads the settings and the files they point to.
    ///
    /// # Errors
    ///
    /// One [`Diagnostic`] per problem; its path is the variable's name.
    pub fn from_env(env: &EnvMap) -> std::result::Result<Self, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let get = |var: &str| env.non_empty(var).map(str::trim).filter(|v| !v.is_empty());

        let webhook_secret = secret_file(&get, "DEEPLO_GITHUB_WEBHOOK_SECRET_FILE", &mut errors);
        let token = secret_file(&get, "DEEPLO_GITHUB_TOKEN_FILE", &mut errors);
        let app = read_app(&get, &mut errors);
        if token.is_some() && app.is_some() {
            errors.push(Diagnostic::error(
                "DEEPLO_GITHUB_APP_ID",
                "set either DEEPLO_GITHUB_TOKEN_FILE or the GitHub App variables, not both",
            ));
        }
        let tokens = match (token, app) {
            (Some(token), _) => Some(TokenSource::Static(token)),
            (None, Some(app)) => Some(TokenSource::App(app)),
            (None, None) => None,
        };
        let environment_host = match get("DEEPLO_GITHUB_ENVIRONMENT_HOST") {
            None => false,
            Some(v) => parse_bool(v).unwrap_or_else(|| {
                errors.push(Diagnostic::error(
                    "DEEPLO_GITHUB_ENVIRONMENT_HOST",
                    format!("expected true or false, got {v:?}"),
                ));
                false
            }),
        };
        let public_url = url(&get, "DEEPLO_PUBLIC_URL", &mut errors);
        let api_base = url(&get, "DEEPLO_GITHUB_API_URL", &mut errors).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let settings = Self {
            webhook_secret,
            tokens,
            environment_prefix: get("DEEPLO_GITHUB_ENVIRONMENT").map(|p| p.trim_matches('/').to_owned()),
            environment_host,
            public_url,
            api_base,
        };
        if errors.is_empty() { Ok(settings) } else { Err(errors) }
    }

    /// The API client, when a token or an App is configured.
    ///
    /// # Errors
    ///
    /// The client cannot be set up (see [`GithubClientBuilder::build`](crate::GithubClientBuilder::build)).
    pub fn client(&self) -> Result<Option<GithubClient>> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        GithubClient::builder(tokens.clone()).api_base(&self.api_base).build().map(Some)
    }

    /// The notifier, when a token or an App is configured.
    ///
    /// # Errors
    ///
    /// As [`client`](Self::client).
    pub fn notifier(&self) -> Result<Option<GithubNotifier>> {
        Ok(self.client()?.map(|client| GithubNotifier::new(client, self.notifier_options())))
    }

    /// Naming and links for the notifier. With `DEEPLO_GITHUB_API_URL` set, the reported
    /// host is the API's host without a leading `api.` (GitHub Enterprise).
    pub fn notifier_options(&self) -> NotifierOptions {
        let github_host = if self.api_base == DEFAULT_API_BASE {
            "github.com".to_owned()
        } else {
            let rest = self.api_base.split_once("://").map_or(self.api_base.as_str(), |(_, r)| r);
            let host = rest.split(['/', ':']).next().unwrap_or(rest);
            host.strip_prefix("api.").unwrap_or(host).to_owned()
        };
        NotifierOptions {
            environment_prefix: self.environment_prefix.clone(),
            environment_host: self.environment_host,
            public_url: self.public_url.clone(),
            github_host,
        }
    }
}

type Get<'a> = &'a dyn Fn(&str) -> Option<&'a str>;

fn secret_file(get: Get<'_>, var: &str, errors: &mut Vec<Diagnostic>) -> Option<Secret> {
    let path = get(var)?;
    Secret::from_file(Path::new(path))
        .map_err(|e| errors.push(Diagnostic::error(var, format!("cannot read the secret: {}", e.message()))))
        .ok()
}

fn url(get: Get<'_>, var: &str, errors: &mut Vec<Diagnostic>) -> Option<String> {
    let v = get(var)?;
    if v.starts_with("https://") || v.starts_with("http://") {
        Some(v.trim_end_matches('/').to_owned())
    } else {
        errors.push(Diagnostic::error(var, format!("expected an http:// or https:// URL, got {v:?}")));
        None
    }
}

fn read_app(get: Get<'_>, errors: &mut Vec<Diagnostic>) -> Option<AppCredentials> {
    let mut fail = |var: &str, message: String| errors.push(Diagnostic::error(var, message));
    let id = get("DEEPLO_GITHUB_APP_ID");
    let key_file = get("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE");
    let installation = get("DEEPLO_GITHUB_APP_INSTALLATION_ID");
    let installation = match installation.map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => {
            fail(
                "DEEPLO_GITHUB_APP_INSTALLATION_ID",
                format!("expected a positive number, got {:?}", installation.unwrap_or_default()),
            );
            None
        }
    };
    let (id, key_file) = match (id, key_file) {
        (None, None) => {
            if installation.is_some() {
                fail("DEEPLO_GITHUB_APP_ID", "required when DEEPLO_GITHUB_APP_INSTALLATION_ID is set".into());
            }
            return None;
        }
        (Some(_), None) => {
            fail("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE", "required when DEEPLO_GITHUB_APP_ID is set".into());
            return None;
        }
        (None, Some(_)) => {
            fail("DEEPLO_GITHUB_APP_ID", "required when DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE is set".into());
            return None;
        }
        (Some(id), Some(key_file)) => (id, key_file),
    };
    let pem = match std::fs::read(key_file) {
        Ok(pem) => pem,
        Err(e) => {
            fail("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE", format!("cannot read {key_file}: {e}"));
            return None;
        }
    };
    AppCredentials::from_pem(id, &pem, installation)
        .map_err(|e| fail("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE", format!("{key_file}: {}", e.message())))
        .ok()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}
