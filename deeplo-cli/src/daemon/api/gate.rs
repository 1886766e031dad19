//! Who is calling, and whether they may: the bearer token checked against the directory,
//! then the caller's role in the organization of the path against the route's action.
//! A refused mutating action is written to the audit log; a refused read is not (a
//! scanner would fill the log), and neither is ever logged with its token.

use axum::http::HeaderMap;
use deeplo_core::access::{Action, Actor, AuditEntry, Caller, Denied, OrgName, Outcome, Role, authorize};

use super::error::{Code, Failure};
use crate::daemon::Daemon;

/// A caller allowed to do an action in an organization.
pub struct Allowed {
    pub caller: Caller,
    pub org: OrgName,
    /// The role they act with there.
    pub role: Role,
}

impl Allowed {
    pub fn actor(&self) -> Actor {
        Actor::User { email: self.caller.user.clone(), token: self.caller.token.clone() }
    }
}

/// The caller the request's bearer token authenticates.
pub async fn authenticate(daemon: &Daemon, headers: &HeaderMap) -> Result<Caller, Failure> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(Failure::new(Code::Unauthenticated, "an API token is required: Authorization: Bearer <token>"));
    };
    let presented = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = presented else {
        return Err(Failure::new(Code::Unauthenticated, "the Authorization header must be `Bearer <token>`"));
    };
    match daemon.accounts.directory().authenticate(presented, jiff::Timestamp::now()).await? {
        Ok(caller) => Ok(caller),
        Err(refusal) => {
            tracing::info!(reason = refusal.as_str(), "API token refused");
            Err(Failure::new(Code::Unauthenticated, "the API token is not valid: unknown, expired or revoked"))
        }
    }
}

/// Authenticates the request and checks that its caller may do `action` in `org`.
pub async fn allow(
    daemon: &Daemon,
    headers: &HeaderMap,
    org: &str,
    action: Action,
    target: &str,
) -> Result<Allowed, Failure> {
    let caller = authenticate(daemon, headers).await?;
    // A name that cannot be an organization is one the caller is not in.
    let Ok(org) = OrgName::new(org) else {
        return Err(Failure::not_found(format!("organization {org:?}")));
    };
    match authorize(daemon.accounts.directory(), &caller, &org, action).await? {
        Ok(role) => Ok(Allowed { caller, org, role }),
        Err(denied) => {
            if action.mutates() {
                let entry = AuditEntry {
                    at: jiff::Timestamp::now(),
                    actor: Actor::User { email: caller.user.clone(), token: caller.token.clone() },
                    org: Some(org.clone()),
                    action: action.as_str().to_owned(),
                    target: target.to_owned(),
                    outcome: Outcome::Denied,
                };
                daemon.accounts.audit(entry).await?;
            }
            Err(match denied {
                Denied::NotFound => Failure::not_found(format!("organization {org}")),
                Denied::Forbidden { role, needed } => Failure::new(
                    Code::Forbidden,
                    format!("{action} in {org} needs the role {needed} or higher; this token acts as {role}"),
                ),
            })
        }
    }
}
