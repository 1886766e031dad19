//! The admin routes of organizations, users, memberships, API tokens and the audit log:
//! how the machine's root makes the first admin and their token. Every change is done
//! through [`Accounts`](deeplo_core::access::Accounts) as [`Actor::Root`] and audited; a
//! token's text is answered once, when created, and never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use deeplo_core::access::{
    Actor, AuditEntry, AuditQuery, Email, NewToken, OrgName, Role, TokenId, TokenRecord, UserInfo,
};
use deeplo_core::config::Config;
use serde::{Deserialize, Serialize};

use super::Daemon;
use super::admin::ApiError;

/// An organization as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrgSummary {
    pub name: OrgName,
    /// Its members.
    pub members: usize,
    /// Its hosts and projects in the config in force.
    pub hosts: usize,
    pub projects: usize,
}

/// `POST /v1/orgs`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateOrg {
    pub name: String,
}

/// `POST /v1/orgs`: whether it was new.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrgCreated {
    pub name: OrgName,
    pub created: bool,
}

/// `POST /v1/users` (add, or change a role with `change: true`) and `POST /v1/users/remove`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MembershipBody {
    pub email: String,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Only change the role of an existing member.
    #[serde(default)]
    pub change: bool,
}

/// What a membership change did.
#[derive(Debug, Serialize, Deserialize)]
pub struct MembershipChanged {
    pub email: Email,
    pub org: OrgName,
    /// The role now; `None` once removed.
    pub role: Option<Role>,
    /// The role before; `None` for a new member.
    pub before: Option<Role>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateToken {
    pub user: String,
    pub name: String,
    /// Seconds until it expires; none for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `POST /v1/tokens`: the token, once.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenCreated {
    pub token: String,
    pub record: TokenRecord,
}

#[derive(Debug, Deserialize)]
pub struct TokensQuery {
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    org: Option<String>,
    limit: Option<usize>,
}

fn bad(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

fn email(text: &str) -> Result<Email, ApiError> {
    Email::new(text).map_err(|e| bad(e.to_string()))
}

fn org(text: &str) -> Result<OrgName, ApiError> {
    OrgName::new(text).map_err(|e| bad(e.to_string()))
}

fn role(text: Option<&str>) -> Result<Role, ApiError> {
    text.ok_or_else(|| bad("a role is required: viewer, developer, manager or admin".into()))?
        .parse()
        .map_err(|e: deeplo_core::access::UnknownRole| bad(e.to_string()))
}

/// Every organization: those of the directory and those the config names.
pub fn org_summaries(config: &Config, users: &[UserInfo], created: impl Iterator<Item = OrgName>) -> Vec<OrgSummary> {
    fn entry<'a>(orgs: &'a mut BTreeMap<OrgName, OrgSummary>, name: &OrgName) -> &'a mut OrgSummary {
        orgs.entry(name.clone()).or_insert_with(|| OrgSummary { name: name.clone(), members: 0, hosts: 0, projects: 0 })
    }
    let mut orgs = BTreeMap::new();
    for name in created {
        entry(&mut orgs, &name);
    }
    for host in &config.hosts {
        entry(&mut orgs, &host.org).hosts += 1;
    }
    for project in &config.projects {
        entry(&mut orgs, &project.org).projects += 1;
    }
    for name in users.iter().flat_map(|u| u.memberships.keys()) {
        entry(&mut orgs, name).members += 1;
    }
    orgs.into_values().collect()
}

pub async fn list_orgs(State(daemon): State<Arc<Daemon>>) -> Result<Json<Vec<OrgSummary>>, ApiError> {
    let directory = daemon.accounts.directory();
    let users = directory.users().await?;
    let created = directory.snapshot().await?.orgs.keys().cloned().collect::<Vec<_>>();
    Ok(Json(org_summaries(&daemon.engine.config(), &users, created.into_iter())))
}

pub async fn create_org(
    State(daemon): State<Arc<Daemon>>,
    Json(body): Json<CreateOrg>,
) -> Result<Json<OrgCreated>, ApiError> {
    let name = org(&body.name)?;
    let created = daemon.accounts.create_org(&Actor::Root, &name, jiff::Timestamp::now()).await?;
    Ok(Json(OrgCreated { name, created }))
}

pub async fn list_users(State(daemon): State<Arc<Daemon>>) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(daemon.accounts.directory().users().await?))
}

pub async fn set_member(
    State(daemon): State<Arc<Daemon>>,
    Json(body): Json<MembershipBody>,
) -> Result<Json<MembershipChanged>, ApiError> {
    let (email, org, role) = (email(&body.email)?, org(&body.org)?, role(body.role.as_deref())?);
    let now = jiff::Timestamp::now();
    let before = if body.change {
        Some(daemon.accounts.change_role(&Actor::Root, &email, &org, role, now).await?)
    } else {
        daemon.accounts.add_member(&Actor::Root, &email, &org, role, now).await?
    };
    tracing::info!(user = %email, org = %org, role = %role, "membership set");
    Ok(Json(MembershipChanged { email, org, role: Some(role), before }))
}

pub async fn remove_member(
    State(daemon): State<Arc<Daemon>>,
    Json(body): Json<MembershipBody>,
) -> Result<Json<MembershipChanged>, ApiError> {
    let (email, org) = (email(&body.email)?, org(&body.org)?);
    let before = daemon.accounts.remove_member(&Actor::Root, &email, &org, jiff::Timestamp::now()).await?;
    tracing::info!(user = %email, org = %org, "membership removed");
    Ok(Json(MembershipChanged { email, org, role: None, before: Some(before) }))
}

/// The token request as the directory takes it.
pub fn new_token(body: &CreateToken, now: jiff::Timestamp) -> Result<NewToken, ApiError> {
    let expires_at = match body.expires_in_secs {
        None => None,
        Some(secs) => {
            let secs = i64::try_from(secs).map_err(|_| bad(format!("expires_in_secs {secs} is too large")))?;
            Some(now.checked_add(jiff::SignedDuration::from_secs(secs)).map_err(|e| bad(format!("expiry: {e}")))?)
        }
    };
    Ok(NewToken {
        user: email(&body.user)?,
        name: body.name.clone(),
        expires_at,
        org: body.org.as_deref().map(org).transpose()?,
        max_role: body.role.as_deref().map(|r| role(Some(r))).transpose()?,
    })
}

pub async fn create_token(
    State(daemon): State<Arc<Daemon>>,
    Json(body): Json<CreateToken>,
) -> Result<Json<TokenCreated>, ApiError> {
    let now = jiff::Timestamp::now();
    let new = new_token(&body, now)?;
    let (token, record) = daemon.accounts.create_token(&Actor::Root, &new, now).await?;
    tracing::info!(user = %record.user, token = %record.id, "API token created");
    Ok(Json(TokenCreated { token: token.secret().expose().to_owned(), record }))
}

pub async fn list_tokens(
    State(daemon): State<Arc<Daemon>>,
    Query(q): Query<TokensQuery>,
) -> Result<Json<Vec<TokenRecord>>, ApiError> {
    let user = q.user.as_deref().map(email).transpose()?;
    Ok(Json(daemon.accounts.directory().tokens(user.as_ref()).await?))
}

pub async fn revoke_token(
    State(daemon): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<TokenRecord>, ApiError> {
    let id =
        TokenId::parse(&id).ok_or_else(|| bad("a token id is 8 characters, as `deeplo tokens list` shows".into()))?;
    let record = daemon.accounts.revoke_token(&Actor::Root, &id, jiff::Timestamp::now()).await?;
    tracing::info!(user = %record.user, token = %record.id, "API token revoked");
    Ok(Json(record))
}

pub async fn audit(
    State(daemon): State<Arc<Daemon>>,
    Query(q): Query<AuditParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let query = AuditQuery { org: q.org.as_deref().map(org).transpose()?, since: None, limit: q.limit };
    Ok(Json(daemon.accounts.audit_log(&query).await?))
}
