//! `deeplo deploy` and `deeplo rollback`, run in this process: a live line per host with
//! the current step, then a summary; the exit status is 1 when any pair failed.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use deeplo_core::engine::{SubmitOutcome, Submitted};
use deeplo_core::model::{DeployStatus, Deployment, Pair};
use deeplo_core::progress::{Progress, ProgressEvent};
use deeplo_core::{DeployRequest, Engine};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::daemon::{DeployBody, RollbackBody};
use crate::output;

/// One pair's outcome, for the summary and `-o json`.
#[derive(Serialize)]
struct Outcome {
    project: String,
    host: String,
    commit: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<Deployment>,
}

pub async fn deploy(
    ctx: &Context,
    project: &str,
    host: Option<&str>,
    commit: Option<&str>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(client) = AdminClient::connect(&ctx.settings.unix_socket).await {
        let body = DeployBody {
            project: project.to_owned(),
            host: host.map(str::to_owned),
            commit: commit.map(str::to_owned),
            force: true,
        };
        let runs = client.post_json("/v1/deploy", &body).await?;
        return super::remote::follow_queued(ctx, &client, runs, wait).await;
    }
    let engine = crate::wiring::engine(ctx).await?;
    let progress = engine.progress();
    let submitted = engine
        .deploy(DeployRequest {
            project: project.to_owned(),
            host: host.map(str::to_owned),
            commit: commit.map(str::to_owned),
            trigger: deeplo_core::model::Trigger::Manual,
            force: true,
        })
        .await?;
    follow(ctx, &engine, submitted, progress).await
}

pub async fn rollback(ctx: &Context, project: &str, host: Option<&str>, to: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(client) = AdminClient::connect(&ctx.settings.unix_socket).await {
        let body =
            RollbackBody { project: project.to_owned(), host: host.map(str::to_owned), to: to.map(str::to_owned) };
        let runs = client.post_json("/v1/rollback", &body).await?;
        return super::remote::follow_queued(ctx, &client, runs, true).await;
    }
    let engine = crate::wiring::engine(ctx).await?;
    let progress = engine.progress();
    let submitted = engine.rollback(project, host, to).await?;
    follow(ctx, &engine, submitted, progress).await
}

/// Shows live progress until every submitted run ends, then the summary.
async fn follow(
    ctx: &Context,
    engine: &Engine,
    submitted: Vec<Submitted>,
    progress: broadcast::Receiver<Progress>,
) -> anyhow::Result<ExitCode> {
    let live = !ctx.json() && std::io::stderr().is_terminal();
    let bars =
        MultiProgress::with_draw_target(if live { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut lines: HashMap<Pair, ProgressBar> = HashMap::new();
    for s in &submitted {
        let bar = bars.add(ProgressBar::new_spinner().with_style(style.clone()));
        bar.set_prefix(format!("{}@{}", s.pair.project, s.pair.host));
        bar.set_message(format!("{} queued", s.commit.short()));
        bar.enable_steady_tick(Duration::from_millis(120));
        lines.insert(s.pair.clone(), bar);
    }
    let watcher = tokio::spawn(watch(progress, lines.clone(), live));

    let mut outcomes = Vec::new();
    for s in submitted {
        let base = |status: &str| Outcome {
            project: s.pair.project.to_string(),
            host: s.pair.host.to_string(),
            commit: s.commit.to_string(),
            status: status.to_owned(),
            run: None,
            error: None,
            rolled_back_to: None,
            record: None,
        };
        let outcome = match s.outcome {
            SubmitOutcome::Skipped(decision) => Outcome { error: Some(format!("{decision:?}")), ..base("skipped") },
            SubmitOutcome::Queued(handle) => {
                let run = handle.run.to_string();
                match handle.wait().await {
                    Ok(record) => Outcome {
                        run: Some(run),
                        status: record.status.to_string(),
                        error: record.error.clone(),
                        rolled_back_to: record.rollback.as_ref().filter(|r| r.succeeded).map(|r| r.to.to_string()),
                        record: Some(record),
                        ..base("")
                    },
                    Err(e) => Outcome { run: Some(run), error: Some(e.to_string()), ..base("failed") },
                }
            }
        };
        if let Some(bar) = lines.get(&s.pair) {
            bar.finish_with_message(match &outcome.error {
                None => format!("{} {}", s.commit.short(), outcome.status),
                Some(e) => format!("{} {}: {}", s.commit.short(), outcome.status, e),
            });
        }
        outcomes.push(outcome);
    }
    watcher.abort();
    let _ = bars.clear();
    let _ = engine.shutdown(Duration::from_secs(1)).await;

    let failed = outcomes.iter().filter(|o| o.status == DeployStatus::Failed.as_str()).count();
    if ctx.json() {
        output::json(&outcomes)?;
    } else {
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|o| {
                vec![
                    o.project.clone(),
                    o.host.clone(),
                    o.status.clone(),
                    o.commit[..7].to_owned(),
                    o.run.clone().unwrap_or_else(|| "-".into()),
                    o.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print!("{}", output::table(&["PROJECT", "HOST", "STATUS", "COMMIT", "RUN", "ERROR"], &rows));
        if failed > 0 {
            println!("{failed} of {} deploy(s) failed; see `deeplo deploys logs RUN` for details", outcomes.len());
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Moves each pair's line to the step it is at.
async fn watch(mut rx: broadcast::Receiver<Progress>, lines: HashMap<Pair, ProgressBar>, live: bool) {
    loop {
        match rx.recv().await {
            Ok(p) => {
                let Some(bar) = lines.get(&p.pair) else { continue };
                let text = match &p.event {
                    ProgressEvent::Queued => format!("{} queued", p.commit.short()),
                    ProgressEvent::StepStarted { step } => format!("{} {step}...", p.commit.short()),
                    ProgressEvent::StepFinished { step, outcome, duration_ms } => {
                        format!("{} {step} {outcome:?} ({duration_ms} ms)", p.commit.short()).to_lowercase()
                    }
                    ProgressEvent::Finished { status, .. } => format!("{} {status}", p.commit.short()),
                    _ => continue,
                };
                if !live && let ProgressEvent::StepFinished { .. } = &p.event {
                    eprintln!("{}@{}: {text}", p.pair.project, p.pair.host);
                }
                bar.set_message(text);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
