//! Planning one new head of a branch against every target's own last good commit.

use std::collections::BTreeSet;

use serde::Serialize;

use super::cursor_key;
use crate::config::{Config, Project};
use crate::engine::{Engine, Submitted};
use crate::model::{CommitId, DeployStatus, Pair, RepoName, Trigger};
use crate::plan::Job;
use crate::{ErrorKind, Result};

/// A head to plan, for one or more repo entries that share a URL and branch, for
/// [`Engine::handle_head`].
#[derive(Debug, Clone)]
pub struct HeadRequest {
    /// The repo entries (`repos[].name`) that watch this URL and branch; the first one that
    /// is still in the config gives the cursor key and is fetched. Names no longer in the
    /// config are ignored.
    pub repos: Vec<RepoName>,
    /// The new head of the branch.
    pub head: CommitId,
    /// Paths a webhook payload says changed between `.0` (its `before`) and `head`; used for
    /// targets whose last good commit is exactly `.0`, instead of a diff of the mirror.
    pub hint: Option<(CommitId, Vec<String>)>,
    /// What saw the head (`webhook`, `poll`, `reconcile`), recorded in each deployment.
    pub trigger: Trigger,
    /// Plan even when the cursor is already at `head` (start-up, a repo seen for the first time).
    pub ignore_cursor: bool,
    /// Deploy every target not already at `head`, whatever changed (the first webhook of a
    /// repo with no cursor: there is no telling what the targets missed).
    pub deploy_all: bool,
}

/// Why a target is deployed. Serialized in `snake_case`. More reasons may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TargetReason {
    /// Never deployed successfully.
    FirstDeploy,
    /// A watched path changed since the target's last good commit (or that commit is gone
    /// from the mirror, or the request said [`deploy_all`](HeadRequest::deploy_all)).
    Changed,
    /// Nothing watched changed, but the target's last deploy failed: a new head retries it.
    RetryFailed,
}

/// One target the head deploys to.
#[derive(Debug, Clone, Serialize)]
pub struct TargetPlan {
    /// The job: the target's project and host, at the new head.
    pub job: Job,
    /// Why it is deployed.
    pub reason: TargetReason,
}

/// What became of a head, from [`Engine::handle_head`].
#[derive(Debug)]
pub struct HeadOutcome {
    /// The head that was planned.
    pub head: CommitId,
    /// The cursor was already at this head: nothing was planned.
    pub already_handled: bool,
    /// The head is behind the cursor or behind a target's last good commit (a late delivery,
    /// a force push back): those targets were left alone.
    pub stale_targets: usize,
    /// The targets to deploy and why, before dedup.
    pub planned: Vec<TargetPlan>,
    /// What the engine did with each planned job (queued, or skipped by dedup), in the
    /// order of `planned`.
    pub submitted: Vec<Submitted>,
}

impl Engine {
    /// Fetches `head`, plans it for every target of the requested repo entries' projects
    /// (those with `auto_deploy` on) and submits the jobs; then moves the cursor to `head`
    /// (never backwards).
    ///
    /// # Errors
    ///
    /// A failed fetch or a refused submission (queue full, shutting down) returns the error
    /// with the cursor untouched, so the next poll or redelivery tries again; dedup keeps the
    /// jobs already submitted from running twice.
    pub async fn handle_head(&self, request: HeadRequest) -> Result<HeadOutcome> {
        let config = self.config();
        let repos: Vec<_> = request.repos.iter().filter_map(|name| config.repo(name.as_str())).collect();
        let Some(first) = repos.first() else {
            return Ok(empty(request.head, false));
        };
        let key = cursor_key(first);
        let store = self.store();
        let cursor = store.cursor(&key).await?;
        if !request.ignore_cursor && cursor.as_ref() == Some(&request.head) {
            return Ok(empty(request.head, true));
        }
        let source = self.source();
        source.fetch(first, Some(&request.head)).await?;

        let mut planned = Vec::new();
        let mut stale_targets = 0;
        for repo in &repos {
            // A project with auto_deploy off is deployed only on request, as `plan` says.
            for project in config.projects_of(&repo.name).filter(|p| p.auto_deploy) {
                for host in &project.targets {
                    let pair = Pair::new(project.name.clone(), host.clone());
                    match self.plan_target(&config, project, &pair, &request).await? {
                        Verdict::Deploy(reason) => planned.push(TargetPlan {
                            job: Job { project: pair.project, host: pair.host, commit: request.head.clone() },
                            reason,
                        }),
                        Verdict::Stale => stale_targets += 1,
                        Verdict::Skip => {}
                    }
                }
            }
        }
        let jobs: Vec<Job> = planned.iter().map(|p| p.job.clone()).collect();
        let submitted = self.submit(&jobs, request.trigger, false).await?;

        let behind = match &cursor {
            Some(c) if c != &request.head => source.is_ancestor(first, &request.head, c).await.unwrap_or(false),
            _ => false,
        };
        if !behind {
            store.set_cursor(&key, &request.head).await?;
        }
        tracing::info!(
            repo = %first.name, head = %request.head.short(), planned = planned.len(), stale_targets,
            "head planned"
        );
        Ok(HeadOutcome { head: request.head, already_handled: false, stale_targets, planned, submitted })
    }

    async fn plan_target(&self, config: &Config, project: &Project, pair: &Pair, req: &HeadRequest) -> Result<Verdict> {
        let store = self.store();
        let Some(good) = store.last_success(pair).await? else {
            return Ok(Verdict::Deploy(TargetReason::FirstDeploy));
        };
        if good.commit == req.head {
            return Ok(Verdict::Skip);
        }
        if req.deploy_all {
            return Ok(Verdict::Deploy(TargetReason::Changed));
        }
        let Some(repo) = config.repo(project.repo.as_str()) else {
            return Ok(Verdict::Skip);
        };
        let source = self.source();
        // The last good commit may be gone from the mirror (a force push): diff unknown.
        let paths = match source.is_ancestor(repo, &req.head, &good.commit).await {
            Ok(true) => return Ok(Verdict::Stale),
            Ok(false) => match &req.hint {
                Some((before, paths)) if before == &good.commit => Some(paths.clone()),
                _ => Some(source.changed_paths(repo, &good.commit, &req.head).await?),
            },
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        let changed = match paths {
            None => true,
            Some(paths) => {
                let unique: BTreeSet<String> = paths.into_iter().collect();
                let paths: Vec<String> = unique.into_iter().collect();
                !paths.is_empty() && project.watch_paths.matches_any(&paths)
            }
        };
        if changed {
            return Ok(Verdict::Deploy(TargetReason::Changed));
        }
        let latest = store.latest(pair).await?;
        if latest.is_some_and(|l| l.status == DeployStatus::Failed) {
            return Ok(Verdict::Deploy(TargetReason::RetryFailed));
        }
        Ok(Verdict::Skip)
    }
}

enum Verdict {
    Deploy(TargetReason),
    Stale,
    Skip,
}

fn empty(head: CommitId, already_handled: bool) -> HeadOutcome {
    HeadOutcome { head, already_handled, stale_targets: 0, planned: Vec::new(), submitted: Vec::new() }
}
