//! One request to the API, tried again on 5xx and network failures.
//!
//! Every error names the method and path (`POST /repos/o/r/deployments`) and the status,
//! with GitHub's own `message` when it sent one. The token goes only into the
//! `Authorization` header, marked sensitive; a body that echoes it is redacted before it
//! reaches an error.

use deeplo_core::{Error, ErrorKind, Redactor, Result, Secret};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::{API_VERSION, GithubClient};

const OPERATION: &str = "github api";

/// How one attempt ended.
enum Attempt {
    Done(StatusCode, Vec<u8>),
    /// Worth another try (5xx, network).
    Retry(Error),
    Fail(Error),
}

impl GithubClient {
    /// Sends a request authenticated with `token` and decodes a 2xx JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &Secret,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let (status, bytes) = self.send(method.clone(), path, token, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                OPERATION,
                format!("{method} {path}: HTTP {status}: unexpected response: {e}"),
            )
        })
    }

    /// Sends a request; any 2xx is returned with its body, anything else is an error.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: &Secret,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let retry = self.inner.retry;
        let mut attempt = 1;
        loop {
            match self.attempt(&method, path, token, body).await {
                Attempt::Done(status, bytes) => return Ok((status, bytes)),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(err) if attempt >= retry.attempts => {
                    let message = format!("{} (after {attempt} attempts)", err.message());
                    return Err(Error::new(err.kind(), OPERATION, message).temporary(true));
                }
                Attempt::Retry(err) => {
                    tracing::debug!(attempt, "{err}; trying again");
                    tokio::time::sleep(retry.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, method: &Method, path: &str, token: &Secret, body: Option<&serde_json::Value>) -> Attempt {
        let url = format!("{}{path}", self.inner.api_base);
        let Ok(mut auth) = HeaderValue::from_str(&format!("Bearer {}", token.expose())) else {
            return Attempt::Fail(Error::new(
                ErrorKind::Auth,
                OPERATION,
                format!("{method} {path}: the token holds characters that cannot go into a header"),
            ));
        };
        auth.set_sensitive(true);
        let mut request = self
            .inner
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Retry(network_error(method, path, &e)),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => return Attempt::Retry(network_error(method, path, &e)),
        };
        if status.is_success() {
            return Attempt::Done(status, bytes);
        }
        let detail = Redactor::new([token.clone()]).redact(&github_message(&bytes)).into_owned();
        let message = format!("{method} {path}: HTTP {}{detail}", status.as_u16());
        let kind = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Auth,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            s if s.is_server_error() => ErrorKind::Unreachable,
            _ => ErrorKind::InvalidInput,
        };
        let err = Error::new(kind, OPERATION, message);
        if status.is_server_error() { Attempt::Retry(err) } else { Attempt::Fail(err) }
    }
}

fn network_error(method: &Method, path: &str, e: &reqwest::Error) -> Error {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Unreachable };
    // reqwest's message carries the URL, which holds no secret; its source says why.
    let cause = std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default();
    Error::new(kind, OPERATION, format!("{method} {path}: {e}{cause}")).temporary(true)
}

/// `: <message>` from GitHub's error JSON, or the start of a text body; empty when none.
fn github_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct GithubError {
        message: String,
    }
    let text = match serde_json::from_slice::<GithubError>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let text: String = text.chars().take(300).collect();
    if text.is_empty() { String::new() } else { format!(": {text}") }
}
