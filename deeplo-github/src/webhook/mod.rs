//! `POST /webhooks/github`: GitHub push webhooks in, [`GithubPush`]es out.
//!
//! The route only checks, parses and matches; what to deploy is decided elsewhere: the
//! [`PushSink`] enqueues the pushes (and answers at once), and whoever drains the queue
//! keeps the cursors and runs the planner. GitHub waits ten seconds at most for an answer,
//! so nothing slow happens here.
//!
//! # Answers
//!
//! | request | status |
//! |---|---|
//! | any method but `POST` | 405 |
//! | body over 10 MiB | 413 |
//! | `X-Hub-Signature-256` missing or wrong | 401 |
//! | `ping` (and every other event) | 204 |
//! | any other event but `push` (or no `X-GitHub-Event`) | 204 |
//! | an `X-GitHub-Delivery` id among the last 1000 answered | 204 |
//! | push payload that does not parse | 400, naming the problem |
//! | push that matches no repo entry: unknown repository, another branch, a repo with `trigger_mode: poll`, a tag, a branch deletion | 204, nothing submitted |
//! | push submitted to the sink | 202 |
//! | the sink's queue is full | 503, and the delivery id is not remembered so a redelivery is processed |
//!
//! Without a webhook secret the route must not be served at all: [`optional_router`]
//! returns `None` then.

mod deliveries;
mod payload;
mod signature;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use deeplo_core::Secret;
use deeplo_core::config::Config;
use deeplo_core::model::{CommitId, RepoName};
use deeplo_core::plan::{ChangedPaths, PushEvent};

pub use deliveries::CAPACITY as REMEMBERED_DELIVERIES;
pub use payload::{MAX_COMMITS, MAX_FILES_PER_COMMIT, PayloadCommit, PayloadError, PayloadRepository, PushPayload};
pub use signature::{sign, verify_signature};

/// The path the router serves.
pub const WEBHOOK_PATH: &str = "/webhooks/github";

/// The largest body accepted; GitHub caps payloads at 25 MB but a push payload of more
/// than 10 MiB is not one deeplo needs.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// A push to a watched branch of one config repo entry: enough to build a [`PushEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubPush {
    /// The config entry (`repos[].name`) the push matched.
    pub repo: RepoName,
    /// GitHub's `owner/name`, as the payload spells it.
    pub full_name: String,
    /// The branch pushed to (the name after `refs/heads/`).
    pub branch: String,
    /// The previous head; `None` when the push created the branch.
    pub before: Option<CommitId>,
    /// The new head.
    pub after: CommitId,
    /// The files the payload says changed, or [`ChangedPaths::Unknown`] when its lists may be
    /// cut short (the planner then diffs the commits itself).
    pub changed: ChangedPaths,
    /// Whether the push rewrote history.
    pub forced: bool,
}

impl GithubPush {
    /// The planner's view of this push.
    pub fn to_push_event(&self) -> PushEvent {
        PushEvent {
            repo: self.repo.clone(),
            branch: self.branch.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
            changed: self.changed.clone(),
        }
    }
}

/// The sink could not take the pushes now (its queue is full, or it is shutting down); the
/// webhook answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkBusy;

impl fmt::Display for SinkBusy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the push queue is full")
    }
}

impl std::error::Error for SinkBusy {}

/// Where accepted pushes go.
///
/// # Contract
///
/// [`submit`](PushSink::submit) only enqueues and returns at once; it takes all the pushes
/// of one delivery or none of them. [`config`](PushSink::config) is the config in force,
/// read once per delivery (so a reload applies to the next delivery).
#[async_trait]
pub trait PushSink: Send + Sync + fmt::Debug {
    /// The config in force: which repo entries and branches the pushes are matched against.
    fn config(&self) -> Arc<Config>;

    /// Queues the matched pushes of one delivery, all or none.
    ///
    /// # Errors
    ///
    /// [`SinkBusy`] when the pushes cannot be queued now.
    async fn submit(&self, pushes: Vec<GithubPush>) -> Result<(), SinkBusy>;
}

/// What the route needs: the secret, the sink and the delivery ids seen.
#[derive(Clone)]
pub struct WebhookState {
    secret: Secret,
    sink: Arc<dyn PushSink>,
    deliveries: Arc<deliveries::Deliveries>,
}

impl WebhookState {
    /// The state for a route that checks signatures with `secret` and queues into `sink`,
    /// remembering delivery ids (so a redelivery is dropped) in memory.
    pub fn new(secret: Secret, sink: Arc<dyn PushSink>) -> Self {
        Self { secret, sink, deliveries: Arc::new(deliveries::Deliveries::new()) }
    }
}

impl fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookState").field("secret", &self.secret).field("sink", &self.sink).finish_non_exhaustive()
    }
}

/// A router serving `POST /webhooks/github` (see the [module docs](self) for the answers).
/// Merge it into the daemon's router.
pub fn router(state: WebhookState) -> Router {
    Router::new().route(WEBHOOK_PATH, post(receive)).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}

/// [`router`] when a webhook secret is configured; `None` (serve nothing) otherwise.
pub fn optional_router(secret: Option<Secret>, sink: Arc<dyn PushSink>) -> Option<Router> {
    secret.map(|secret| router(WebhookState::new(secret, sink)))
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(sig) = header_str("x-hub-signature-256") else {
        tracing::warn!("webhook delivery without X-Hub-Signature-256 refused");
        return text(StatusCode::UNAUTHORIZED, "missing X-Hub-Signature-256 header");
    };
    if !signature::verify_signature(&state.secret, sig, &body) {
        tracing::warn!("webhook delivery with a wrong signature refused");
        return text(StatusCode::UNAUTHORIZED, "invalid X-Hub-Signature-256 signature");
    }
    match header_str("x-github-event") {
        Some("push") => {}
        event => {
            tracing::debug!(event = event.unwrap_or(""), "webhook event ignored");
            return StatusCode::NO_CONTENT.into_response();
        }
    }
    let delivery = header_str("x-github-delivery").filter(|d| !d.is_empty());
    if let Some(id) = delivery
        && !state.deliveries.claim(id)
    {
        tracing::info!(delivery = id, "repeated webhook delivery ignored");
        return StatusCode::NO_CONTENT.into_response();
    }
    let release = || {
        if let Some(id) = delivery {
            state.deliveries.release(id);
        }
    };
    let payload = match PushPayload::parse(&body) {
        Ok(payload) => payload,
        Err(err) => {
            release();
            tracing::warn!(delivery = delivery.unwrap_or(""), "{err}");
            return text(StatusCode::BAD_REQUEST, &err.0);
        }
    };
    let pushes = payload.pushes(&state.sink.config());
    if pushes.is_empty() {
        tracing::debug!(
            repo = %payload.repository.full_name,
            git_ref = %payload.git_ref,
            "push matches no watched branch"
        );
        return StatusCode::NO_CONTENT.into_response();
    }
    let count = pushes.len();
    match state.sink.submit(pushes).await {
        Ok(()) => {
            tracing::info!(
                repo = %payload.repository.full_name,
                git_ref = %payload.git_ref,
                after = %payload.after,
                entries = count,
                delivery = delivery.unwrap_or(""),
                "push accepted"
            );
            StatusCode::ACCEPTED.into_response()
        }
        Err(SinkBusy) => {
            release();
            tracing::warn!(delivery = delivery.unwrap_or(""), "push refused: the queue is full");
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, "the push queue is full; redeliver later");
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            response
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}
