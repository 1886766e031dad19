//! One scheduled run, start to end: the record's life, the run log, notifications, the
//! pipeline, and the automatic rollback after a failure that left the host changed.

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;

use super::Inner;
use crate::ErrorKind;
use crate::model::Trigger;
use crate::model::{Deployment, Pair, RollbackRecord};
use crate::notify::{DeployEvent, DeployEventKind};
use crate::pipeline::{RunLog, Session, StepFailure, StepRunner, Target, deploy_application, deploy_commit};
use crate::progress::{Progress, ProgressEvent};
use crate::schedule::JobContext;

/// Runs one deployment and returns its final record (also saved in the store).
pub(crate) async fn run(inner: Arc<Inner>, mut record: Deployment, ctx: JobContext) -> Deployment {
    let config = inner.config.read().unwrap_or_else(|e| e.into_inner()).clone();
    // The project's environment values: delivered to its commands, and never written
    // anywhere, so the run's redactor learns each one.
    let env = match &inner.vault {
        Some(vault) => vault.values(record.project.as_str()).await,
        None => Ok(Vec::new()),
    };
    let mut redactor = inner.redactor.clone();
    for (_, value) in env.iter().flatten() {
        redactor.add(value.clone());
    }
    let log = RunLog::new(inner.store.clone(), record.id.clone(), redactor);
    let clock = Instant::now();
    let now = Timestamp::now();
    // Checked here rather than only at submit, so that a host decommissioned while its run
    // was queued is not touched either.
    if let Err(refused) = inner.accepts_deploys(&record.host).await {
        let _ = record.fail(now, refused.message());
        finish(&inner, &record, &log, None).await;
        return record;
    }
    if let Err(err) = record.start(now) {
        tracing::error!(run = %record.id, error = %err, "run cannot start");
        return record;
    }
    save(&inner, &record).await;
    let env = match env {
        Ok(env) => env,
        Err(err) => {
            let _ = record.fail(Timestamp::now(), format!("cannot open the project's environment values: {err}"));
            finish(&inner, &record, &log, None).await;
            return record;
        }
    };

    let project = config.project(record.project.as_str());
    let host = config.host(record.host.as_str());
    let repo = project.and_then(|p| config.repo(p.repo.as_str()));
    let (Some(project), Some(host), Some(repo)) = (project, host, repo) else {
        let _ = record.fail(Timestamp::now(), "the project or host is no longer in the config");
        finish(&inner, &record, &log, None).await;
        return record;
    };
    let target = Target { project, host, repo };

    log.raw(
        format!(
            "Run:      {}\nProject:  {}\nHost:     {} ({})\nCommit:   {}\nBranch:   {}\nSource:   {}\nStarted:  {}\n\n",
            record.id, project.name, host.name, host.address, record.commit, record.branch, record.trigger, now
        )
        .as_bytes(),
    );
    inner.notify(event(DeployEventKind::Started, &record, repo.url.clone())).await;

    let token = ctx.token();
    let reason = || ctx.reason().map(|r| r.to_string()).unwrap_or_else(|| "cancelled".into());
    let mut session = Session::new(
        inner.remembered_compose(&host.name),
        inner.scheduler.limits().lock_wait,
        format!("deeplo run {} of {} at {} (pid {})", record.id, record.commit.short(), now, std::process::id()),
    )
    .with_env(env);
    let commit = record.commit.clone();
    let reuse = record.trigger == Trigger::Rollback;
    let result = {
        let mut runner = StepRunner {
            record: &mut record,
            log: &log,
            progress: &inner.progress,
            cancel: &token,
            cancel_reason: &reason,
            prefix: "",
        };
        if project.is_application() {
            deploy_application(
                &mut runner,
                &mut session,
                target,
                inner.source.as_ref(),
                &inner.connector,
                &commit,
                reuse,
            )
            .await
        } else {
            deploy_commit(&mut runner, &mut session, target, inner.source.as_ref(), &inner.connector, &commit).await
        }
    };
    track_host(&inner, &record, &result).await;

    let kind = match result {
        Ok(()) => {
            let _ = record.succeed(Timestamp::now());
            log.line(format!("Deploy succeeded in {:.3}s", clock.elapsed().as_secs_f64()));
            DeployEventKind::Succeeded
        }
        Err(failure) => {
            let mut message = log.redact(&failure.error.to_string());
            let mut kind = DeployEventKind::Failed;
            let cancelled = failure.error.kind() == ErrorKind::Cancelled;
            if project.is_application() {
                // Nothing to roll back: the live release served all along.
                if !matches!(failure.step, crate::pipeline::Step::Drain | crate::pipeline::Step::Cleanup) && !cancelled
                {
                    message.push_str("; the live release, if any, kept serving");
                }
            } else if failure.step.needs_rollback_on_failure() && !cancelled {
                if !project.rollback {
                    message.push_str("; automatic rollback is off for this project");
                } else {
                    let pair = Pair::new(record.project.clone(), record.host.clone());
                    let good = inner.store.last_success(&pair).await.ok().flatten().map(|d| d.commit);
                    match good.filter(|c| *c != record.commit) {
                        None => message
                            .push_str("; no earlier successful deploy to roll back to, the project was left as it is"),
                        Some(good) => {
                            log.line(format!(
                                "rolling back to {}, the last commit that succeeded on this host",
                                good.short()
                            ));
                            let rolled = {
                                let mut runner = StepRunner {
                                    record: &mut record,
                                    log: &log,
                                    progress: &inner.progress,
                                    cancel: &token,
                                    cancel_reason: &reason,
                                    prefix: "rollback:",
                                };
                                deploy_commit(
                                    &mut runner,
                                    &mut session,
                                    target,
                                    inner.source.as_ref(),
                                    &inner.connector,
                                    &good,
                                )
                                .await
                            };
                            let error = rolled.as_ref().err().map(|f| log.redact(&f.error.to_string()));
                            match &error {
                                None => {
                                    message.push_str(&format!("; rolled back to {}", good.short()));
                                    kind = DeployEventKind::RolledBack;
                                }
                                Some(e) => message.push_str(&format!("; rollback to {} failed too: {e}", good.short())),
                            }
                            record.rollback = Some(RollbackRecord { to: good, succeeded: error.is_none(), error });
                        }
                    }
                }
            }
            let _ = record.fail(Timestamp::now(), message.clone());
            log.raw(b"\n");
            log.line(format!("Deploy FAILED in {:.3}s - {message}", clock.elapsed().as_secs_f64()));
            kind
        }
    };
    inner.remember_compose(&host.name, session.compose());
    session.close().await;
    finish(&inner, &record, &log, Some((kind, repo.url.clone()))).await;
    record
}

fn event(kind: DeployEventKind, record: &Deployment, repo_url: String) -> DeployEvent {
    DeployEvent { kind, deployment: record.clone(), repo_url }
}

async fn save(inner: &Inner, record: &Deployment) {
    if let Err(err) = inner.store.save(record).await {
        tracing::error!(run = %record.id, error = %err, "cannot save deployment record");
    }
}

async fn finish(inner: &Inner, record: &Deployment, log: &RunLog, notify: Option<(DeployEventKind, String)>) {
    log.flush(true).await;
    save(inner, record).await;
    let _ = inner.progress.send(Progress {
        run: record.id.clone(),
        pair: Pair::new(record.project.clone(), record.host.clone()),
        commit: record.commit.clone(),
        event: ProgressEvent::Finished { status: record.status, error: record.error.clone() },
    });
    match record.error.as_deref() {
        None => {
            tracing::info!(run = %record.id, project = %record.project, host = %record.host, commit = record.commit.short(), "deploy succeeded")
        }
        Some(e) => {
            tracing::warn!(run = %record.id, project = %record.project, host = %record.host, commit = record.commit.short(), error = e, "deploy failed")
        }
    }
    if let Some((kind, url)) = notify {
        inner.notify(event(kind, record, url)).await;
    }
}

/// Reachable once connected; unreachable when the connect step failed for a network reason.
async fn track_host(inner: &Inner, record: &Deployment, result: &Result<(), StepFailure>) {
    let connected =
        record.steps.iter().any(|s| s.name == "connect" && s.outcome == crate::model::StepOutcome::Succeeded);
    match result {
        Err(f) if f.error.kind() == ErrorKind::Unreachable && !connected => {
            inner.track_host(&record.host, Some(f.error.message())).await
        }
        _ if connected => inner.track_host(&record.host, None).await,
        _ => {}
    }
}
