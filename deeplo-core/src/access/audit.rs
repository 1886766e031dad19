//! The audit log: one entry for every mutating action, who did it and how it ended.
//!
//! Entries are appended through [`Store::append_audit`](crate::Store::append_audit) and
//! never changed or removed; [`Store::audit`](crate::Store::audit) reads them back, newest
//! first. An entry never holds a secret: a token is named by its public id.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Email, OrgName, TokenId};

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A user, through one of their API tokens.
    User {
        /// The user.
        email: Email,
        /// The token they presented.
        token: TokenId,
    },
    /// The machine's root, through the daemon's admin socket.
    Root,
    /// The daemon itself: webhooks, polling, reconciliation.
    System,
    /// Someone whose token did not authenticate (only refusals have one).
    Anonymous,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User { email, token } => write!(f, "{email} (token {token})"),
            Actor::Root => f.write_str("root (admin socket)"),
            Actor::System => f.write_str("system"),
            Actor::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// It was done.
    Ok,
    /// The caller was not allowed to (or not authenticated).
    Denied,
    /// It was allowed and failed; the message is redacted.
    Failed {
        /// What went wrong.
        message: String,
    },
}

impl Outcome {
    /// How `result` ended: [`Ok`](Outcome::Ok), or [`Failed`](Outcome::Failed) with its
    /// error's message.
    pub fn of<T, E: fmt::Display>(result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Failed { message: e.to_string() },
        }
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// The organization it concerned; `None` for what belongs to none (a user's own token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgName>,
    /// What: an [`Action`](super::Action) name, or one of the directory's own
    /// (`create_org`, `create_token`, `revoke_token`, `authenticate`).
    pub action: String,
    /// On what, such as `project site`, `host h1`, `user ada@example.com`.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// Which entries [`Store::audit`](crate::Store::audit) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries of this organization; `None` means every entry.
    pub org: Option<OrgName>,
    /// Only entries at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many entries (the newest, after the filters); `None` means all.
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Whether `entry` passes the filters (not the limit).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.org.as_ref().is_none_or(|org| entry.org.as_ref() == Some(org))
            && self.since.is_none_or(|since| entry.at >= since)
    }
}
