//! The push event payload, and the pushes it asks for.
//!
//! Only the fields deeplo reads are parsed; the rest of GitHub's (large) payload is
//! ignored. Changed paths come from the `added`, `modified` and `removed` lists of the
//! `commits`. GitHub caps `commits` at 2048 entries and each list at 3000 files per
//! commit, and a force push or a new branch lists commits that say little about what
//! changed against the deployed commit: in all those cases the paths are
//! [`ChangedPaths::Unknown`] and every project of the repo is planned.

use std::collections::BTreeSet;

use deeplo_core::config::Config;
use deeplo_core::model::CommitId;
use deeplo_core::plan::ChangedPaths;
use serde::Deserialize;

use super::GithubPush;
use crate::repo_full_name;

/// At most this many commits are listed in a push payload; a list this long may be cut.
pub const MAX_COMMITS: usize = 2048;
/// At most this many files are listed per commit; a commit listing this many may be cut.
pub const MAX_FILES_PER_COMMIT: usize = 3000;

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// The parts of a `push` event deeplo reads.
#[derive(Debug, Clone, Deserialize)]
pub struct PushPayload {
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The head before the push, 40 hex digits; all zeros (or absent) when the push created
    /// the ref.
    #[serde(default)]
    pub before: Option<String>,
    /// The head after the push; all zeros when the push deleted the ref.
    pub after: String,
    /// The push created the ref.
    #[serde(default)]
    pub created: bool,
    /// The push deleted the ref (nothing to deploy).
    #[serde(default)]
    pub deleted: bool,
    /// The push rewrote history (`git push --force`).
    #[serde(default)]
    pub forced: bool,
    /// The repository pushed to.
    pub repository: PayloadRepository,
    /// `None` when the payload has no list (or `null`).
    #[serde(default)]
    pub commits: Option<Vec<PayloadCommit>>,
}

/// The repository of a push payload.
#[derive(Debug, Clone, Deserialize)]
pub struct PayloadRepository {
    /// `owner/name`.
    pub full_name: String,
}

/// One commit of a push payload: the paths it touched, relative to the repository root.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PayloadCommit {
    /// Files the commit added.
    #[serde(default)]
    pub added: Vec<String>,
    /// Files the commit changed.
    #[serde(default)]
    pub modified: Vec<String>,
    /// Files the commit deleted.
    #[serde(default)]
    pub removed: Vec<String>,
}

/// Why a payload was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError(pub String);

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PayloadError {}

impl PushPayload {
    /// Parses a push payload.
    ///
    /// # Errors
    ///
    /// The body is not JSON, lacks `ref`, `after` or `repository.full_name`, or `after` is
    /// not a commit id; the message says which, with serde's line and column.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let payload: Self =
            serde_json::from_slice(body).map_err(|e| PayloadError(format!("malformed push payload: {e}")))?;
        if CommitId::new(&payload.after).is_err() {
            return Err(PayloadError(format!(
                "malformed push payload: \"after\" is not a commit id: {:?}",
                payload.after
            )));
        }
        Ok(payload)
    }

    /// The branch pushed to, or `None` for tags and other refs.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// Whether the push deleted its ref (nothing to deploy).
    pub fn is_deletion(&self) -> bool {
        self.deleted || self.after == ZERO_SHA
    }

    /// The previous head, unless the push created the branch.
    pub fn before(&self) -> Option<CommitId> {
        if self.created {
            return None;
        }
        self.before.as_deref().filter(|b| *b != ZERO_SHA).and_then(|b| CommitId::new(b).ok())
    }

    /// The union of the files the listed commits added, modified or removed, sorted; or
    /// `Unknown` when the list is missing, possibly cut, or cannot describe the change.
    pub fn changed_paths(&self) -> ChangedPaths {
        let Some(commits) = &self.commits else {
            return ChangedPaths::Unknown;
        };
        let no_base = self.before().is_none();
        let cut = commits.len() >= MAX_COMMITS
            || commits.iter().any(|c| c.added.len() + c.modified.len() + c.removed.len() >= MAX_FILES_PER_COMMIT);
        // An empty list for a moved branch means GitHub listed nothing, not that nothing changed.
        if self.forced || no_base || cut || commits.is_empty() {
            return ChangedPaths::Unknown;
        }
        let paths: BTreeSet<&String> =
            commits.iter().flat_map(|c| c.added.iter().chain(&c.modified).chain(&c.removed)).collect();
        ChangedPaths::Known(paths.into_iter().cloned().collect())
    }

    /// One push per config repo entry this event is for: same repository (by
    /// [`repo_full_name`], case-insensitively), same branch, and a `trigger_mode` that takes
    /// webhooks. Tags, other refs and deletions ask for none.
    pub fn pushes(&self, config: &Config) -> Vec<GithubPush> {
        let Some(branch) = self.branch() else {
            return Vec::new();
        };
        if self.is_deletion() {
            return Vec::new();
        }
        let Ok(after) = CommitId::new(&self.after) else {
            return Vec::new();
        };
        let full_name = &self.repository.full_name;
        let matching = config.repos.iter().filter(|repo| {
            repo.trigger_mode.takes_webhooks()
                && repo.branch == branch
                && repo_full_name(&repo.url).is_some_and(|n| n.eq_ignore_ascii_case(full_name))
        });
        let changed = self.changed_paths();
        let before = self.before();
        matching
            .map(|repo| GithubPush {
                repo: repo.name.clone(),
                full_name: full_name.clone(),
                branch: branch.to_owned(),
                before: before.clone(),
                after: after.clone(),
                changed: changed.clone(),
                forced: self.forced,
            })
            .collect()
    }
}
