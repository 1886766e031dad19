//! Turning requests and planned jobs into scheduled runs: commit resolution, dedup, the
//! pending record, and the handle to wait on.

use jiff::Timestamp;

use super::{Engine, job};
use crate::access::{Actor, AuditEntry, Outcome};
use crate::config::{Config, Project};
use crate::dedup::{Decision, decide};
use crate::model::{CommitId, DeployStatus, Deployment, HostName, Pair, RunId, Trigger};
use crate::plan::Job;
use crate::progress::{Progress, ProgressEvent};
use crate::schedule::{JobHandle, JobKey};
use crate::store::HistoryQuery;
use crate::{Error, ErrorKind, Result};

/// A request to deploy a project (what `deeplo deploy` asks), for [`Engine::deploy`].
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The project's name in the config.
    pub project: String,
    /// One target host; `None` means every target of the project.
    pub host: Option<String>,
    /// A commit (full or abbreviated) or branch name; `None` means the branch head.
    pub commit: Option<String>,
    /// What asked for it, as recorded in the deployment (usually `manual`).
    pub trigger: Trigger,
    /// Deploy even when the same commit already succeeded or is under way.
    pub force: bool,
}

impl DeployRequest {
    /// A manual deploy of `project`'s branch head to every target, skipped for targets where
    /// that commit already succeeded or is under way; set the fields to narrow it.
    pub fn new(project: impl Into<String>) -> Self {
        Self { project: project.into(), host: None, commit: None, trigger: Trigger::Manual, force: false }
    }
}

/// What happened to one planned job.
#[derive(Debug)]
pub struct Submitted {
    /// The (project, host) pair of the job.
    pub pair: Pair,
    /// The full commit id it deploys.
    pub commit: CommitId,
    /// Queued (with a handle) or skipped (with the reason).
    pub outcome: SubmitOutcome,
}

/// Whether a job was queued or skipped by dedup.
///
/// Exhaustive on purpose: every reason not to run is a [`Decision`], which may grow.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// Scheduled: wait on the handle for the final record.
    Queued(DeployHandle),
    /// Dedup skipped it, for this reason (never [`Decision::Deploy`]).
    Skipped(Decision),
}

/// A scheduled run. Dropping the handle does not cancel the run.
#[derive(Debug)]
pub struct DeployHandle {
    /// The run's id: its record in the [`Store`](crate::Store) (saved `pending` already) and
    /// its run log.
    pub run: RunId,
    job: JobHandle<Deployment>,
}

impl DeployHandle {
    /// Waits for the run to end and returns its final record (also saved in the store). A
    /// failed deploy is `Ok` with a `failed` record.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] when the run was dropped before it started (cancelled, or
    /// the engine shut down) or its task panicked.
    pub async fn wait(self) -> Result<Deployment> {
        self.job
            .wait()
            .await
            .map_err(|e| Error::new(ErrorKind::Cancelled, "deploy", format!("run {} did not complete: {e}", self.run)))
    }

    /// Cancels the run: a queued run never starts; a running one stops during its current
    /// step and fails with a `cancelled` error. A cancelled run is not rolled back.
    pub fn cancel(&self) {
        self.job.cancel();
    }
}

impl Engine {
    /// Resolves a request into jobs (project, target hosts, commit) and submits them, one per
    /// target host, through dedup (see [`submit`](Self::submit)).
    ///
    /// The commit is fetched into the mirror first: the branch head when none is given, a
    /// full id as it is, anything else resolved after fetching the branch.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a project not in the config, a host that is not one
    /// of its targets or one that is decommissioned (asked for by name: a decommissioned
    /// target reached through the project alone gets a failed run), [`ErrorKind::Config`] when its repo is missing, the
    /// [`Source`](crate::Source)'s errors for the fetch and the resolution, and those of
    /// [`submit`](Self::submit).
    pub async fn deploy(&self, request: DeployRequest) -> Result<Vec<Submitted>> {
        let config = self.config();
        let project = find_project(&config, &request.project)?;
        let hosts = targets(project, request.host.as_deref())?;
        if request.host.is_some() {
            for host in &hosts {
                self.inner.accepts_deploys(host).await?;
            }
        }
        let repo = config.repo(project.repo.as_str()).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "deploy",
                format!("repo \"{}\" of project \"{}\" is not configured", project.repo, project.name),
            )
        })?;
        let commit = match request.commit.as_deref() {
            None => self.inner.source.fetch(repo, None).await?,
            Some(rev) => match CommitId::new(rev) {
                Ok(full) => self.inner.source.fetch(repo, Some(&full)).await?,
                Err(_) => {
                    self.inner.source.fetch(repo, None).await?;
                    self.inner.source.resolve(repo, rev).await?
                }
            },
        };
        let jobs: Vec<Job> =
            hosts.into_iter().map(|host| Job { project: project.name.clone(), host, commit: commit.clone() }).collect();
        self.submit(&jobs, request.trigger, request.force).await
    }

    /// Takes a project back to an earlier good commit: `to` when given, else, per host, the
    /// last successful commit before the one deployed now. `host` limits it to one target.
    /// Rollbacks are forced (dedup does not skip them) and recorded with the trigger
    /// `rollback`.
    ///
    /// # Errors
    ///
    /// As [`deploy`](Self::deploy), and [`ErrorKind::NotFound`] when a host has no earlier
    /// successful deploy to go back to (nothing is submitted then).
    pub async fn rollback(&self, project: &str, host: Option<&str>, to: Option<&str>) -> Result<Vec<Submitted>> {
        let config = self.config();
        let project = find_project(&config, project)?;
        let hosts = targets(project, host)?;
        if host.is_some() {
            for target in &hosts {
                self.inner.accepts_deploys(target).await?;
            }
        }
        let mut jobs = Vec::new();
        for host in hosts {
            let pair = Pair::new(project.name.clone(), host.clone());
            let commit = match to {
                Some(rev) => {
                    let repo = config.repo(project.repo.as_str()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::Config,
                            "rollback",
                            format!("repo \"{}\" is not configured", project.repo),
                        )
                    })?;
                    match CommitId::new(rev) {
                        Ok(full) => full,
                        Err(_) => self.inner.source.resolve(repo, rev).await?,
                    }
                }
                None => self.previous_good(&pair).await?,
            };
            jobs.push(Job { project: pair.project, host: pair.host, commit });
        }
        self.submit(&jobs, Trigger::Rollback, true).await
    }

    /// The newest successful commit of a pair other than the one it runs now.
    async fn previous_good(&self, pair: &Pair) -> Result<CommitId> {
        let current = self.inner.store.last_success(pair).await?.map(|d| d.commit);
        let query = HistoryQuery { project: Some(pair.project.clone()), host: Some(pair.host.clone()), limit: None };
        let history = self.inner.store.history(&query).await?;
        history
            .into_iter()
            .filter(|d| d.status == DeployStatus::Succeeded)
            .map(|d| d.commit)
            .find(|c| Some(c) != current.as_ref())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "rollback",
                    format!(
                        "no earlier successful deploy of project \"{}\" on host \"{}\" to roll back to",
                        pair.project, pair.host
                    ),
                )
            })
    }

    /// Dedups planned jobs against the store, records the ones to run as pending and hands
    /// them to the scheduler; `force` skips dedup. Returns one [`Submitted`] per job, in
    /// order. Jobs must name a project and a host of the config in force, or their run fails
    /// at its start; so does the run of a job whose host is decommissioned, before any step
    /// (its failed record says why).
    ///
    /// # Errors
    ///
    /// The store's errors, and [`ErrorKind::QueueFull`] / [`ErrorKind::ShuttingDown`] from
    /// the scheduler: the refused job's record is saved as failed, and the jobs before it
    /// stay queued (their handles are lost with the error; dedup sees them as in flight).
    pub async fn submit(&self, jobs: &[Job], trigger: Trigger, force: bool) -> Result<Vec<Submitted>> {
        let config = self.config();
        let _guard = self.inner.submit_lock.lock().await;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let pair = job.pair();
            let latest = self.inner.store.latest(&pair).await?;
            let decision = decide(job, latest.as_ref(), force);
            if !decision.is_deploy() {
                out.push(Submitted { pair, commit: job.commit.clone(), outcome: SubmitOutcome::Skipped(decision) });
                continue;
            }
            let branch = config
                .project(job.project.as_str())
                .and_then(|p| config.repo(p.repo.as_str()))
                .map(|r| r.branch.clone())
                .unwrap_or_default();
            let record = Deployment::new(
                pair.project.clone(),
                pair.host.clone(),
                job.commit.clone(),
                branch,
                trigger,
                Timestamp::now(),
            );
            let run = record.id.clone();
            let inner = self.inner.clone();
            let job_record = record.clone();
            // The pending record is saved before the job can start, so that the job's own
            // saves (same id) always come after it.
            self.inner.store.save(&record).await?;
            let submitted =
                self.inner.scheduler.submit(JobKey { pair: pair.clone() }, move |ctx| job::run(inner, job_record, ctx));
            let handle = match submitted {
                Ok(handle) => handle,
                Err(err) => {
                    let mut refused = record;
                    let _ = refused.fail(Timestamp::now(), format!("not scheduled: {}", err.message()));
                    self.inner.store.save(&refused).await?;
                    return Err(err);
                }
            };
            if let Some(entry) = system_audit(&config, trigger, &pair, &job.commit, &run) {
                // The deploy is queued: a failed audit write is reported, not made its failure.
                if let Err(e) = self.inner.store.append_audit(&entry).await {
                    tracing::warn!(run = %run, error = %e, "cannot write the audit entry of a deploy");
                }
            }
            let _ = self.inner.progress.send(Progress {
                run: run.clone(),
                pair: pair.clone(),
                commit: job.commit.clone(),
                event: ProgressEvent::Queued,
            });
            out.push(Submitted {
                pair,
                commit: job.commit.clone(),
                outcome: SubmitOutcome::Queued(DeployHandle { run, job: handle }),
            });
        }
        Ok(out)
    }
}

/// The audit entry of a deploy the daemon itself started (a webhook, a poll, a
/// reconciliation), made by no user: people's deploys are audited where their identity is
/// known (the API, the admin socket).
fn system_audit(config: &Config, trigger: Trigger, pair: &Pair, commit: &CommitId, run: &RunId) -> Option<AuditEntry> {
    if !matches!(trigger, Trigger::Webhook | Trigger::Poll | Trigger::Reconcile) {
        return None;
    }
    Some(AuditEntry {
        at: Timestamp::now(),
        actor: Actor::System,
        org: config.project(pair.project.as_str()).map(|p| p.org.clone()),
        action: "deploy".into(),
        target: format!(
            "project {} on {} at {} ({}, run {run})",
            pair.project,
            pair.host,
            commit.short(),
            trigger.as_str()
        ),
        outcome: Outcome::Ok,
    })
}

fn find_project<'a>(config: &'a Config, name: &str) -> Result<&'a Project> {
    config.project(name).ok_or_else(|| {
        let names: Vec<&str> = config.projects.iter().map(|p| p.name.as_str()).collect();
        Error::new(
            ErrorKind::InvalidInput,
            "deploy",
            format!("project \"{name}\" is not in the config (projects: {})", names.join(", ")),
        )
    })
}

fn targets(project: &Project, host: Option<&str>) -> Result<Vec<HostName>> {
    match host {
        None => Ok(project.targets.clone()),
        Some(h) => match project.targets.iter().find(|t| t.as_str() == h) {
            Some(t) => Ok(vec![t.clone()]),
            None => Err(Error::new(
                ErrorKind::InvalidInput,
                "deploy",
                format!("host \"{h}\" is not a target of project \"{}\"", project.name),
            )),
        },
    }
}
