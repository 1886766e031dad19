//! The admin API, served on a Unix socket (`DEEPLO_UNIX_SOCKET`, mode 0660, group
//! `DEEPLO_ADMIN_GROUP` when set): file permissions are the access control, so nothing on
//! it is reachable from the network. The CLI verbs use it when the daemon runs.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v1/health` | version, uptime, queue, host states |
//! | GET | `/v1/deployments` | the latest record of every pair |
//! | GET | `/v1/runs?project=&host=&limit=` | records, newest first |
//! | GET | `/v1/runs/{id}` | one record |
//! | GET | `/v1/runs/{id}/log` | the run log (text) |
//! | POST | `/v1/deploy` `{project, host?, commit?, force?}` | 202 with the queued runs |
//! | POST | `/v1/rollback` `{project, host?, to?}` | 202 with the queued runs |
//! | GET | `/v1/containers` | `compose ps` of every host |
//! | POST | `/v1/refresh` | `compose ps` of every host, saved as the observed state |
//! | POST | `/v1/probe` | reachability of every host |
//! | POST | `/v1/reload` | re-reads the config file and applies it |
//! | POST | `/v1/servers/{host}/token` | issues the host's runner token, answered once (revokes the old one and closes the connection made with it) |
//! | DELETE | `/v1/servers/{host}/token` | revokes the host's runner token and closes its agent's connection |
//! | GET | `/v1/servers/tokens` | every host's token: prefix and dates, no secret |
//! | GET | `/v1/servers` | every server's record: state, since, last seen, agent, facts |
//! | GET | `/v1/servers/{host}` | one server's record and history (404 unless configured or decommissioned) |
//! | POST | `/v1/servers/{host}/decommission` | decommissions it for good: no more deploys, its agent refused |
//! | GET/POST | `/v1/env/{project}`, POST `/v1/env/{project}/unset` | a project's environment names; set, unset |
//! | GET | `/v1/orgs` | every organization: the directory's and the config's, with counts |
//! | POST | `/v1/orgs` `{name}` | creates one |
//! | GET | `/v1/users` | every user and their memberships |
//! | POST | `/v1/users` `{email, org, role, change?}` | adds a member (creating the user and org), or changes a role |
//! | POST | `/v1/users/remove` `{email, org}` | takes a member out of an organization |
//! | GET | `/v1/tokens?user=` | API tokens: id, name, user, scope, dates; never a secret |
//! | POST | `/v1/tokens` `{user, name, expires_in_secs?, org?, role?}` | creates one, answered once |
//! | DELETE | `/v1/tokens/{id}` | revokes one |
//! | GET | `/v1/audit?org=&limit=` | the audit log, newest first |
//!
//! No handler logs a request or answer body: the token answer holds a secret.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use deeplo_agent::protocol::CloseCode;
use deeplo_core::access::{Action, Actor, AuditEntry, Outcome};
use deeplo_core::engine::{SubmitOutcome, Submitted};
use deeplo_core::model::{HostName, ProjectName, RunId, Trigger};
use deeplo_core::{DeployRequest, ErrorKind, HistoryQuery, RunnerToken, TokenInfo};
use serde::{Deserialize, Serialize};

use super::Daemon;

pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/deployments", get(deployments))
        .route("/v1/runs", get(runs))
        .route("/v1/runs/{id}", get(run))
        .route("/v1/runs/{id}/log", get(run_log))
        .route("/v1/deploy", post(deploy))
        .route("/v1/rollback", post(rollback))
        .route("/v1/containers", get(containers))
        .route("/v1/refresh", post(refresh))
        .route("/v1/probe", post(probe))
        .route("/v1/reload", post(reload))
        .route("/v1/servers/{host}/token", post(issue_token).delete(revoke_token))
        .route("/v1/servers/tokens", get(list_tokens))
        .route("/v1/servers", get(super::servers::list))
        .route("/v1/servers/{host}", get(super::servers::show))
        .route("/v1/servers/{host}/decommission", post(super::servers::decommission))
        .route("/v1/env/{project}", get(super::env::list).post(super::env::set))
        .route("/v1/env/{project}/unset", post(super::env::unset))
        .route("/v1/secrets/rotate-key", post(super::env::rotate_key))
        .route("/v1/orgs", get(super::accounts::list_orgs).post(super::accounts::create_org))
        .route("/v1/users", get(super::accounts::list_users).post(super::accounts::set_member))
        .route("/v1/users/remove", post(super::accounts::remove_member))
        .route("/v1/tokens", get(super::accounts::list_tokens).post(super::accounts::create_token))
        .route("/v1/tokens/{id}", axum::routing::delete(super::accounts::revoke_token))
        .route("/v1/audit", get(super::accounts::audit))
        .with_state(daemon)
}

/// An error answer: `{"error": "..."}` with a status that fits the kind.
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// An answer with `status` and `message`.
    pub fn new(status: StatusCode, message: String) -> Self {
        Self(status, message)
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.0
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<deeplo_core::Error> for ApiError {
    fn from(err: deeplo_core::Error) -> Self {
        let status = match err.kind() {
            ErrorKind::InvalidInput | ErrorKind::Config => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::QueueFull | ErrorKind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, err.to_string())
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    started_at: jiff::Timestamp,
    queued: usize,
    running: usize,
    hosts: std::collections::BTreeMap<String, String>,
}

async fn health(State(daemon): State<Arc<Daemon>>) -> Json<Health> {
    let stats = daemon.engine.scheduler().stats();
    let hosts = daemon.engine.host_states().into_iter().map(|(h, s)| (h.to_string(), format!("{s:?}"))).collect();
    Json(Health {
        status: if daemon.stopping() { "stopping" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        started_at: daemon.started_at,
        queued: stats.queued,
        running: stats.running,
        hosts,
    })
}

async fn deployments(State(daemon): State<Arc<Daemon>>) -> ApiResult<impl IntoResponse> {
    Ok(Json(daemon.engine.store().latest_all().await?))
}

#[derive(Deserialize)]
struct RunsQuery {
    project: Option<String>,
    host: Option<String>,
    limit: Option<usize>,
}

async fn runs(State(daemon): State<Arc<Daemon>>, Query(q): Query<RunsQuery>) -> ApiResult<impl IntoResponse> {
    let query = HistoryQuery {
        project: q.project.map(ProjectName::new).transpose().map_err(|e| bad_request(format!("project: {e}")))?,
        host: q.host.map(HostName::new).transpose().map_err(|e| bad_request(format!("host: {e}")))?,
        limit: q.limit,
    };
    Ok(Json(daemon.engine.store().history(&query).await?))
}

fn run_id(id: &str) -> ApiResult<RunId> {
    RunId::parse(id).map_err(|e| ApiError(StatusCode::NOT_FOUND, e.to_string()))
}

async fn run(State(daemon): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let id = run_id(&id)?;
    match daemon.engine.store().get(&id).await? {
        Some(record) => Ok(Json(record)),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("run {id} not found"))),
    }
}

async fn run_log(State(daemon): State<Arc<Daemon>>, Path(id): Path<String>) -> ApiResult<Vec<u8>> {
    let id = run_id(&id)?;
    daemon
        .engine
        .store()
        .read_log(&id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("run {id} has no log")))
}

/// `POST /v1/deploy`.
#[derive(Debug, Deserialize, Serialize)]
pub struct DeployBody {
    pub project: String,
    pub host: Option<String>,
    pub commit: Option<String>,
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/rollback`.
#[derive(Debug, Deserialize, Serialize)]
pub struct RollbackBody {
    pub project: String,
    pub host: Option<String>,
    pub to: Option<String>,
}

/// One pair of a deploy or rollback answer.
#[derive(Debug, Deserialize, Serialize)]
pub struct QueuedRun {
    pub project: String,
    pub host: String,
    pub commit: String,
    /// `queued` or `skipped`.
    pub status: String,
    pub run: Option<String>,
    pub reason: Option<String>,
}

pub(super) fn queued(submitted: Vec<Submitted>) -> (StatusCode, Json<Vec<QueuedRun>>) {
    let runs = submitted
        .into_iter()
        .map(|s| {
            let (status, run, reason) = match s.outcome {
                SubmitOutcome::Queued(handle) => ("queued", Some(handle.run.to_string()), None),
                SubmitOutcome::Skipped(decision) => ("skipped", None, Some(format!("{decision:?}"))),
            };
            QueuedRun {
                project: s.pair.project.to_string(),
                host: s.pair.host.to_string(),
                commit: s.commit.to_string(),
                status: status.into(),
                run,
                reason,
            }
        })
        .collect();
    (StatusCode::ACCEPTED, Json(runs))
}

async fn deploy(State(daemon): State<Arc<Daemon>>, Json(body): Json<DeployBody>) -> ApiResult<impl IntoResponse> {
    let project = body.project.clone();
    let submitted = daemon
        .engine
        .deploy(DeployRequest {
            project: body.project,
            host: body.host,
            commit: body.commit,
            trigger: Trigger::Manual,
            force: body.force,
        })
        .await;
    audit_as_root(&daemon, Action::Deploy, &project, &submitted).await?;
    Ok(queued(submitted?))
}

async fn rollback(State(daemon): State<Arc<Daemon>>, Json(body): Json<RollbackBody>) -> ApiResult<impl IntoResponse> {
    let submitted = daemon.engine.rollback(&body.project, body.host.as_deref(), body.to.as_deref()).await;
    audit_as_root(&daemon, Action::Rollback, &body.project, &submitted).await?;
    Ok(queued(submitted?))
}

/// The audit entry of a deploy or rollback asked for on the admin socket.
async fn audit_as_root(
    daemon: &Daemon,
    action: Action,
    project: &str,
    result: &deeplo_core::Result<Vec<Submitted>>,
) -> ApiResult<()> {
    let entry = AuditEntry {
        at: jiff::Timestamp::now(),
        actor: Actor::Root,
        org: daemon.engine.config().project(project).map(|p| p.org.clone()),
        action: action.as_str().into(),
        target: format!("project {project}"),
        outcome: Outcome::of(result),
    };
    Ok(daemon.accounts.audit(entry).await?)
}

async fn containers(State(daemon): State<Arc<Daemon>>) -> impl IntoResponse {
    Json(daemon.engine.observe().await)
}

async fn refresh(State(daemon): State<Arc<Daemon>>) -> ApiResult<impl IntoResponse> {
    let hosts = daemon.engine.observe().await;
    let doc = serde_json::json!({ "observed_at": jiff::Timestamp::now(), "hosts": &hosts });
    daemon.engine.store().save_document("observed", &doc).await?;
    Ok(Json(hosts))
}

async fn probe(State(daemon): State<Arc<Daemon>>) -> impl IntoResponse {
    Json(daemon.engine.probe().await)
}

async fn reload(State(daemon): State<Arc<Daemon>>) -> ApiResult<impl IntoResponse> {
    match super::reload::reload(&daemon, "admin API").await {
        Ok(report) => Ok(Json(report)),
        Err(problems) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, problems)),
    }
}

/// `POST /v1/servers/{host}/token`: the only answer that ever holds the token's text.
#[derive(Deserialize, Serialize)]
pub struct IssuedToken {
    pub host: String,
    /// The token itself (`dplr_...`), shown this once.
    pub token: String,
    pub prefix: String,
    pub issued_at: jiff::Timestamp,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("host", &self.host)
            .field("token", &"***")
            .field("prefix", &self.prefix)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

impl IssuedToken {
    pub fn new(host: &HostName, token: &RunnerToken, issued_at: jiff::Timestamp) -> Self {
        Self {
            host: host.to_string(),
            token: token.secret().expose().to_owned(),
            prefix: token.prefix().to_owned(),
            issued_at,
        }
    }
}

/// `DELETE /v1/servers/{host}/token`.
#[derive(Debug, Deserialize, Serialize)]
pub struct RevokedToken {
    pub host: String,
    /// Whether a valid token was revoked (`false`: the host had none).
    pub revoked: bool,
}

/// `host` as a host name (400 when it is not one) of the config in force (404 otherwise).
fn configured_host(daemon: &Daemon, host: &str) -> ApiResult<HostName> {
    let name = HostName::new(host).map_err(|e| bad_request(format!("host: {e}")))?;
    if daemon.engine.config().host(host).is_none() {
        return Err(unknown_host(host));
    }
    Ok(name)
}

fn unknown_host(host: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("host {host} is not in the config in force"))
}

async fn issue_token(State(daemon): State<Arc<Daemon>>, Path(host): Path<String>) -> ApiResult<impl IntoResponse> {
    let host = configured_host(&daemon, &host)?;
    Ok(Json(issue_runner_token(&daemon, &host).await?))
}

/// Issues a new runner token for `host` and closes the connection made with the old one.
pub(super) async fn issue_runner_token(daemon: &Daemon, host: &HostName) -> deeplo_core::Result<IssuedToken> {
    let now = jiff::Timestamp::now();
    let token = daemon.runner_tokens.issue(host, now).await?;
    tracing::info!(host = %host, prefix = token.prefix(), "runner token issued");
    // The old token is no longer valid: neither is a connection made with it.
    daemon.hub.disconnect(host, CloseCode::BadToken);
    Ok(IssuedToken::new(host, &token, now))
}

/// Revokes the runner token of `host` and closes its agent's connection; whether it had one.
pub(super) async fn revoke_runner_token(daemon: &Daemon, host: &HostName) -> deeplo_core::Result<bool> {
    let revoked = daemon.runner_tokens.revoke(host, jiff::Timestamp::now()).await?;
    if revoked {
        tracing::info!(host = %host, "runner token revoked");
        daemon.hub.disconnect(host, CloseCode::BadToken);
    }
    Ok(revoked)
}

/// A host gone from the config may still hold a token: revoking it is allowed, so only a
/// host that is neither configured nor holding a token is 404.
async fn revoke_token(State(daemon): State<Arc<Daemon>>, Path(host): Path<String>) -> ApiResult<impl IntoResponse> {
    let name = HostName::new(host.as_str()).map_err(|e| bad_request(format!("host: {e}")))?;
    let revoked = revoke_runner_token(&daemon, &name).await?;
    if !revoked && daemon.engine.config().host(&host).is_none() {
        return Err(unknown_host(&host));
    }
    Ok(Json(RevokedToken { host, revoked }))
}

async fn list_tokens(State(daemon): State<Arc<Daemon>>) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(daemon.runner_tokens.list().await?))
}
