//! The directory's operations as an actor does them: each one done on the [`Directory`]
//! and written to the audit log with its outcome, so that no caller (the admin socket, the
//! HTTP API, an embedder's own server) can change the directory without leaving a trace.
//!
//! Permissions are the caller's business before it calls in: the machine's root on the
//! admin socket may do everything, an API caller what [`allowed`](super::allowed) lets it.

use std::sync::Arc;

use jiff::Timestamp;

use super::{Actor, ApiToken, AuditEntry, Directory, Email, NewToken, OrgName, Outcome, Role, TokenId, TokenRecord};
use crate::{Error, ErrorKind, Result, Store};

/// The [`Directory`] of a store, with every change audited.
#[derive(Debug, Clone)]
pub struct Accounts {
    directory: Directory,
    store: Arc<dyn Store>,
}

impl Accounts {
    /// The accounts kept in `store`; keep one per store in a process (see [`Directory`]).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { directory: Directory::new(Arc::clone(&store)), store }
    }

    /// The directory, to read.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Writes one audit entry.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn audit(&self, entry: AuditEntry) -> Result<()> {
        self.store.append_audit(&entry).await
    }

    /// The audit log's entries that `query` selects, newest first.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn audit_log(&self, query: &super::AuditQuery) -> Result<Vec<AuditEntry>> {
        self.store.audit(query).await
    }

    /// Audits `result` as the outcome of `action` on `target`, and hands it back.
    async fn audited<T>(
        &self,
        actor: &Actor,
        org: Option<&OrgName>,
        action: &str,
        target: String,
        now: Timestamp,
        result: Result<T>,
    ) -> Result<T> {
        let outcome = Outcome::of(&result);
        let entry =
            AuditEntry { at: now, actor: actor.clone(), org: org.cloned(), action: action.into(), target, outcome };
        self.audit(entry).await?;
        result
    }

    /// Creates an organization; `false` when it already was.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn create_org(&self, actor: &Actor, org: &OrgName, now: Timestamp) -> Result<bool> {
        let result = self.directory.create_org(org, now).await;
        self.audited(actor, Some(org), "create_org", format!("org {org}"), now, result).await
    }

    /// Adds `email` to `org` with `role` (the user and the organization are created when
    /// new), or changes their role there; returns the role they had.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn add_member(
        &self,
        actor: &Actor,
        email: &Email,
        org: &OrgName,
        role: Role,
        now: Timestamp,
    ) -> Result<Option<Role>> {
        let result = async {
            self.directory.create_org(org, now).await?;
            self.directory.set_member(email, org, role, now).await
        }
        .await;
        let target = format!("user {email} as {role}");
        self.audited(actor, Some(org), super::Action::ManageMembers.as_str(), target, now, result).await
    }

    /// Changes the role of a member of `org`; returns the role they had.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when they are not a member; the store's errors.
    pub async fn change_role(
        &self,
        actor: &Actor,
        email: &Email,
        org: &OrgName,
        role: Role,
        now: Timestamp,
    ) -> Result<Role> {
        let result = async {
            match self.directory.role(email, org).await? {
                None => Err(not_a_member(email, org)),
                Some(before) => {
                    self.directory.set_member(email, org, role, now).await?;
                    Ok(before)
                }
            }
        }
        .await;
        let target = format!("user {email} as {role}");
        self.audited(actor, Some(org), super::Action::ManageMembers.as_str(), target, now, result).await
    }

    /// Takes `email` out of `org`; returns the role they had.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when they are not a member; the store's errors.
    pub async fn remove_member(&self, actor: &Actor, email: &Email, org: &OrgName, now: Timestamp) -> Result<Role> {
        let result =
            async { self.directory.remove_member(email, org).await?.ok_or_else(|| not_a_member(email, org)) }.await;
        let target = format!("user {email} removed");
        self.audited(actor, Some(org), super::Action::ManageMembers.as_str(), target, now, result).await
    }

    /// Creates an API token; the returned token is the only copy of its text, and neither the
    /// audit log nor any error holds it.
    ///
    /// # Errors
    ///
    /// See [`Directory::create_token`].
    pub async fn create_token(&self, actor: &Actor, new: &NewToken, now: Timestamp) -> Result<(ApiToken, TokenRecord)> {
        let result = self.directory.create_token(new, now).await;
        let target = match &result {
            Ok((_, record)) => format!("token {} of {}", record.id, new.user),
            Err(_) => format!("a token of {}", new.user),
        };
        self.audited(actor, new.org.as_ref(), "create_token", target, now, result).await
    }

    /// Revokes the token `id`; returns its record as it was.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when no valid token has that id; the store's errors.
    pub async fn revoke_token(&self, actor: &Actor, id: &TokenId, now: Timestamp) -> Result<TokenRecord> {
        let result = async {
            self.directory
                .revoke_token(id, now)
                .await?
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "revoke an API token", format!("no valid token {id}")))
        }
        .await;
        let org = result.as_ref().ok().and_then(|r| r.org.clone());
        self.audited(actor, org.as_ref(), "revoke_token", format!("token {id}"), now, result).await
    }
}

fn not_a_member(email: &Email, org: &OrgName) -> Error {
    Error::new(ErrorKind::NotFound, "change a membership", format!("{email} is not a member of {org}"))
}
