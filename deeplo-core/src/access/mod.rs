//! Who may do what: organizations, users, their roles, API tokens and the audit log.
//!
//! Every host, repo and project belongs to one organization (`org:` in the config,
//! `default` when unset). A user is a normalised email address with a [`Role`] in any
//! number of organizations; they act through API tokens, each narrowed if wished to one
//! organization and a highest role. Whether a role allows an [`Action`] is the pure
//! function [`allowed`]; the [`Directory`] answers which role a caller has in an
//! organization; every mutating action goes to the audit log ([`AuditEntry`]).
//!
//! A resource of an organization the caller has no role in is answered as if it did not
//! exist: the API says 404 for both, so that names of other organizations' resources do
//! not leak.

mod accounts;
mod api_token;
mod audit;
mod authorize;
mod directory;
mod email;
mod org;
mod role;

pub use accounts::Accounts;
pub use api_token::{API_TOKEN_PREFIX, ApiToken, TokenId};
pub use audit::{Actor, AuditEntry, AuditQuery, Outcome};
pub use authorize::{Denied, authorize};
pub use directory::{
    AccessDocument, Caller, DOCUMENT, Directory, LAST_USE_PRECISION, MAX_TOKEN_NAME_LEN, Member, NewToken, OrgRecord,
    Refusal, StoredToken, TokenRecord, UserInfo, UserRecord,
};
pub use email::{Email, InvalidEmail, MAX_EMAIL_LEN};
pub use org::{DEFAULT_ORG, InvalidOrgName, MAX_ORG_LEN, OrgName};
pub use role::{Action, Role, UnknownRole, allowed};

#[cfg(test)]
mod tests;
