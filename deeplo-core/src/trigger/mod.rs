//! Triggers: what turns a new branch head into deploys, for the poller, the webhook and the
//! daemon's start-up reconcile alike.
//!
//! Every target is planned against its *own* last successful commit, not against the
//! previous head, so a target that missed a push (host down, failed deploy, added later)
//! catches up on the next head, and a revert pair (A -> B -> A) deploys nothing to a target
//! still at A. A per-(URL, branch) cursor in the store remembers the last head handled, so
//! that a head is planned once however many deliveries or polls report it, and a commit
//! deployed through a webhook is not deployed again by the poller in `hybrid` mode.

mod head;
mod poll;

pub use head::{HeadOutcome, HeadRequest, TargetPlan, TargetReason};
pub use poll::{PollGroup, Poller, poll_groups};

use crate::config::Repo;

/// The store key of the cursor of a repo's branch: shared by every repo entry with the same
/// URL and branch, and by the poller and the webhook.
pub fn cursor_key(repo: &Repo) -> String {
    format!("{}#{}", repo.url, repo.branch)
}
