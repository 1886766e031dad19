//! The handlers of [`ROUTES`](super::ROUTES). Each one first asks the gate, then answers
//! only what belongs to the organization of its path.

use std::sync::Arc;

use axum::Json;
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
    body: Option<Json<DeployBody>>,
) -> Result<Response, Failure> {
    let target = format!("project {project}");
    let allowed = allow(&daemon, &headers, &org, Action::Deploy, &target).await?;
    project_in(&daemon.engine.config(), &allowed, &project)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let request =
        DeployRequest { project, host: body.host, commit: body.commit, trigger: Trigger::Manual, force: body.force };
    let result = daemon.engine.deploy(request).await;
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Failed { message: e.to_string() },
    };
    let entry = AuditEntry {
        at: jiff::Timestamp::now(),
        actor: allowed.actor(),
        org: Some(allowed.org.clone()),
        action: Action::Deploy.as_str().into(),
        target,
        outcome,
    };
    daemon.accounts.audit(entry).await?;
    let (status, runs) = crate::daemon::admin::queued(result?);
    Ok((status, runs).into_response())
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
