//! The one decision every API route asks for: may this caller do this action in this
//! organization? A caller with no role there is told the resource is not found, so that
//! another organization's names do not leak; a member whose role is too low is told no.

use super::{Action, Caller, Directory, OrgName, Role, allowed};
use crate::Result;

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The caller has no role in the organization (or their token is narrowed to another):
    /// answered as if the resource did not exist.
    NotFound,
    /// The caller's role there is below the action's minimum.
    Forbidden {
        /// The role the caller acts with.
        role: Role,
        /// The lowest role allowed.
        needed: Role,
    },
}

/// The role `caller` acts with in `org` when it allows `action`, or why not.
///
/// # Errors
///
/// The store's errors (a refusal is the `Ok(Err(_))` answer).
pub async fn authorize(
    directory: &Directory,
    caller: &Caller,
    org: &OrgName,
    action: Action,
) -> Result<std::result::Result<Role, Denied>> {
    Ok(match directory.role_of(caller, org).await? {
        None => Err(Denied::NotFound),
        Some(role) if allowed(role, action) => Ok(role),
        Some(role) => Err(Denied::Forbidden { role, needed: action.minimum() }),
    })
}
