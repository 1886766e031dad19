//! The handlers of [`ROUTES`](super::ROUTES). Each one first asks the gate, then answers
//! only what belongs to the organization of its path.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use deeplo_core::access::{Action, AuditEntry, AuditQuery, Member, OrgName, Outcome, Role};
use deeplo_core::config::{Config, Project};
use deeplo_core::model::{Deployment, HostName, ProjectName, RunId, Trigger};
use deeplo_core::servers::ServerRecord;
use deeplo_core::vault::EnvEntry;
use deeplo_core::{DeployRequest, HistoryQuery};
use serde::{Deserialize, Serialize};

use super::error::{Code, Failure};
use super::gate::{Allowed, allow, authenticate};
use crate::daemon::Daemon;

type Answer<T> = Result<Json<T>, Failure>;

/// The most records one page of deployments holds.
const MAX_PAGE: usize = 500;

/// An organization the caller is in, with their role.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrgRole {
    pub name: OrgName,
    pub role: Role,
}

/// A project as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub name: ProjectName,
    pub repo: String,
    pub targets: Vec<HostName>,
    /// `compose` or `application`.
    pub kind: &'static str,
    pub auto_deploy: bool,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentsQuery {
    project: Option<String>,
    host: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `POST .../projects/{project}/deploy`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DeployBody {
    pub host: Option<String>,
    pub commit: Option<String>,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    limit: Option<usize>,
}

pub async fn no_route() -> Failure {
    Failure::new(Code::NotFound, "no such API route; see the OpenAPI file, docs/api/openapi.yaml")
}

/// The caller's organizations.
pub async fn orgs(State(daemon): State<Arc<Daemon>>, headers: HeaderMap) -> Answer<Vec<OrgRole>> {
    let caller = authenticate(&daemon, &headers).await?;
    let directory = daemon.accounts.directory();
    let user = directory.user(&caller.user).await?;
    let mut orgs = Vec::new();
    for org in user.map(|u| u.memberships.into_keys().collect::<Vec<_>>()).unwrap_or_default() {
        if let Some(role) = directory.role_of(&caller, &org).await? {
            orgs.push(OrgRole { name: org, role });
        }
    }
    Ok(Json(orgs))
}

pub async fn org(State(daemon): State<Arc<Daemon>>, headers: HeaderMap, Path(org): Path<String>) -> Answer<OrgRole> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadOrg, "org").await?;
    Ok(Json(OrgRole { name: allowed.org, role: allowed.role }))
}

pub async fn servers(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Answer<Vec<ServerRecord>> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadServers, "servers").await?;
    let config = daemon.engine.config();
    let mine = |host: &HostName| config.host(host.as_str()).is_some_and(|h| h.org == allowed.org);
    Ok(Json(daemon.engine.servers().list().into_iter().filter(|s| mine(&s.host)).collect()))
}

pub async fn projects(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Answer<Vec<ProjectSummary>> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadProjects, "projects").await?;
    let config = daemon.engine.config();
    let list = config
        .projects
        .iter()
        .filter(|p| p.org == allowed.org)
        .map(|p| ProjectSummary {
            name: p.name.clone(),
            repo: p.repo.to_string(),
            targets: p.targets.clone(),
            kind: if p.is_application() { "application" } else { "compose" },
            auto_deploy: p.auto_deploy,
        })
        .collect();
    Ok(Json(list))
}

/// The project `name` when it is in the caller's organization; a 404 otherwise.
fn project_in<'a>(config: &'a Config, allowed: &Allowed, name: &str) -> Result<&'a Project, Failure> {
    config.project(name).filter(|p| p.org == allowed.org).ok_or_else(|| Failure::not_found(format!("project {name}")))
}

pub async fn deployments(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(q): Query<DeploymentsQuery>,
) -> Answer<Vec<Deployment>> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadDeployments, "deployments").await?;
    let config = daemon.engine.config();
    let project = q.project.as_deref().map(|p| project_in(&config, &allowed, p).map(|p| p.name.clone())).transpose()?;
    let host = q
        .host
        .as_deref()
        .map(HostName::new)
        .transpose()
        .map_err(|e| Failure::new(Code::InvalidRequest, format!("host: {e}")))?;
    let limit = q.limit.unwrap_or(50).min(MAX_PAGE);
    let offset = q.offset.unwrap_or(0);
    let records = daemon.engine.store().history(&HistoryQuery { project, host, limit: None }).await?;
    let in_org = |r: &Deployment| config.project(r.project.as_str()).is_some_and(|p| p.org == allowed.org);
    Ok(Json(records.into_iter().filter(in_org).skip(offset).take(limit).collect()))
}

/// The record `id` when its project is in the caller's organization; a 404 otherwise.
async fn record_in(daemon: &Daemon, allowed: &Allowed, id: &str) -> Result<Deployment, Failure> {
    let missing = || Failure::not_found(format!("deployment {id}"));
    let id = RunId::parse(id).map_err(|_| missing())?;
    let record = daemon.engine.store().get(&id).await?.ok_or_else(missing)?;
    let config = daemon.engine.config();
    project_in(&config, allowed, record.project.as_str()).map_err(|_| missing())?;
    Ok(record)
}

pub async fn deployment(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer<Deployment> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadDeployments, "deployment").await?;
    Ok(Json(record_in(&daemon, &allowed, &id).await?))
}

pub async fn deployment_log(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadLogs, "log").await?;
    let record = record_in(&daemon, &allowed, &id).await?;
    let log = daemon.engine.store().read_log(&record.id).await?.unwrap_or_default();
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Ok((headers, log).into_response())
}

pub async fn deploy(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let target = format!("project {project}");
    let allowed = allow(&daemon, &headers, &org, Action::Deploy, &target).await?;
    project_in(&daemon.engine.config(), &allowed, &project)?;
    let body: DeployBody = optional_json_body(&body)?;
    let request =
        DeployRequest { project, host: body.host, commit: body.commit, trigger: Trigger::Manual, force: body.force };
    let result = daemon.engine.deploy(request).await;
    audited(&daemon, &allowed, Action::Deploy, target, Outcome::of(&result)).await?;
    let (status, runs) = crate::daemon::admin::queued(result?);
    Ok((status, runs).into_response())
}

/// `POST .../projects/{project}/rollback`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RollbackBody {
    pub host: Option<String>,
    /// A commit; the pair's previous good one by default.
    pub to: Option<String>,
}

pub async fn rollback(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let target = format!("project {project}");
    let allowed = allow(&daemon, &headers, &org, Action::Rollback, &target).await?;
    project_in(&daemon.engine.config(), &allowed, &project)?;
    let body: RollbackBody = optional_json_body(&body)?;
    let result = daemon.engine.rollback(&project, body.host.as_deref(), body.to.as_deref()).await;
    audited(&daemon, &allowed, Action::Rollback, target, Outcome::of(&result)).await?;
    let (status, runs) = crate::daemon::admin::queued(result?);
    Ok((status, runs).into_response())
}

/// A JSON body, read once the caller is known to be allowed (so that a refusal never
/// depends on what the body holds).
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::new(Code::InvalidRequest, format!("the request body: {e}")))
}

/// The same, where no body at all means the defaults.
fn optional_json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { json_body(body) }
}

/// Writes the audit entry of an allowed action with its outcome.
async fn audited(
    daemon: &Daemon,
    allowed: &Allowed,
    action: Action,
    target: String,
    outcome: Outcome,
) -> Result<(), Failure> {
    let entry = AuditEntry {
        at: jiff::Timestamp::now(),
        actor: allowed.actor(),
        org: Some(allowed.org.clone()),
        action: action.as_str().into(),
        target,
        outcome,
    };
    Ok(daemon.accounts.audit(entry).await?)
}

pub async fn env_set(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> Answer<crate::daemon::Changed> {
    let allowed = allow(&daemon, &headers, &org, Action::ManageEnv, &format!("project {project} env")).await?;
    let body: crate::daemon::SetValues = json_body(&body)?;
    let names: Vec<String> = body.values.keys().cloned().collect();
    let target = format!("project {project} env {}", names.join(", "));
    project_in(&daemon.engine.config(), &allowed, &project)?;
    let values: Vec<(String, String)> = body.values.into_iter().collect();
    let result = daemon.vault.set(&project, &values, jiff::Timestamp::now()).await;
    audited(&daemon, &allowed, Action::ManageEnv, target, Outcome::of(&result)).await?;
    result?;
    Ok(Json(crate::daemon::Changed { project, names }))
}

pub async fn env_unset(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, project)): Path<(String, String)>,
    body: Bytes,
) -> Answer<crate::daemon::Changed> {
    let allowed = allow(&daemon, &headers, &org, Action::ManageEnv, &format!("project {project} env")).await?;
    let body: crate::daemon::UnsetNames = json_body(&body)?;
    let target = format!("project {project} env {} removed", body.names.join(", "));
    project_in(&daemon.engine.config(), &allowed, &project)?;
    let result = daemon.vault.unset(&project, &body.names).await;
    audited(&daemon, &allowed, Action::ManageEnv, target, Outcome::of(&result)).await?;
    Ok(Json(crate::daemon::Changed { project, names: result? }))
}

/// `POST .../members`: add a member or change their role.
#[derive(Debug, Deserialize, Serialize)]
pub struct MemberBody {
    pub email: String,
    pub role: String,
}

pub async fn set_member(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> Answer<Member> {
    let allowed = allow(&daemon, &headers, &org, Action::ManageMembers, "members").await?;
    let body: MemberBody = json_body(&body)?;
    let email =
        deeplo_core::access::Email::new(&body.email).map_err(|e| Failure::new(Code::InvalidRequest, e.to_string()))?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: deeplo_core::access::UnknownRole| Failure::new(Code::InvalidRequest, e.to_string()))?;
    daemon.accounts.add_member(&allowed.actor(), &email, &allowed.org, role, jiff::Timestamp::now()).await?;
    Ok(Json(Member { email, role }))
}

pub async fn env_names(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, project)): Path<(String, String)>,
) -> Answer<Vec<EnvEntry>> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadEnvNames, "env").await?;
    project_in(&daemon.engine.config(), &allowed, &project)?;
    Ok(Json(daemon.vault.list(&project).await?))
}

pub async fn remove_member(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, email)): Path<(String, String)>,
) -> Answer<Member> {
    let allowed = allow(&daemon, &headers, &org, Action::ManageMembers, &format!("user {email} removed")).await?;
    let email =
        deeplo_core::access::Email::new(&email).map_err(|e| Failure::new(Code::InvalidRequest, e.to_string()))?;
    let role = daemon.accounts.remove_member(&allowed.actor(), &email, &allowed.org, jiff::Timestamp::now()).await?;
    Ok(Json(Member { email, role }))
}

pub async fn members(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Answer<Vec<Member>> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadMembers, "members").await?;
    Ok(Json(daemon.accounts.directory().members(&allowed.org).await?))
}

pub async fn audit(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(q): Query<AuditParams>,
) -> Answer<Vec<AuditEntry>> {
    let allowed = allow(&daemon, &headers, &org, Action::ReadAudit, "audit").await?;
    let query = AuditQuery { org: Some(allowed.org), since: None, limit: Some(q.limit.unwrap_or(100).min(MAX_PAGE)) };
    Ok(Json(daemon.accounts.audit_log(&query).await?))
}

/// The host `name` when it is in the caller's organization; a 404 otherwise.
fn host_in(config: &Config, allowed: &Allowed, name: &str) -> Result<HostName, Failure> {
    config
        .host(name)
        .filter(|h| h.org == allowed.org)
        .map(|h| h.name.clone())
        .ok_or_else(|| Failure::not_found(format!("server {name}")))
}

pub async fn issue_runner_token(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, host)): Path<(String, String)>,
) -> Answer<crate::daemon::IssuedToken> {
    let target = format!("host {host} runner token");
    let allowed = allow(&daemon, &headers, &org, Action::ManageRunnerTokens, &target).await?;
    let host = host_in(&daemon.engine.config(), &allowed, &host)?;
    let result = crate::daemon::admin::issue_runner_token(&daemon, &host).await;
    audited(&daemon, &allowed, Action::ManageRunnerTokens, format!("{target} issued"), Outcome::of(&result)).await?;
    Ok(Json(result?))
}

pub async fn revoke_runner_token(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, host)): Path<(String, String)>,
) -> Answer<crate::daemon::RevokedToken> {
    let target = format!("host {host} runner token");
    let allowed = allow(&daemon, &headers, &org, Action::ManageRunnerTokens, &target).await?;
    let name = host_in(&daemon.engine.config(), &allowed, &host)?;
    let result = crate::daemon::admin::revoke_runner_token(&daemon, &name).await;
    audited(&daemon, &allowed, Action::ManageRunnerTokens, format!("{target} revoked"), Outcome::of(&result)).await?;
    Ok(Json(crate::daemon::RevokedToken { host, revoked: result? }))
}

pub async fn decommission(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Path((org, host)): Path<(String, String)>,
) -> Answer<crate::daemon::servers::Decommissioned> {
    let target = format!("host {host}");
    let allowed = allow(&daemon, &headers, &org, Action::Decommission, &target).await?;
    let name = host_in(&daemon.engine.config(), &allowed, &host)?;
    let result = crate::daemon::servers::decommission_host(&daemon, &name).await;
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Failed { message: e.message().to_owned() },
    };
    audited(&daemon, &allowed, Action::Decommission, target, outcome).await?;
    Ok(Json(result?))
}
