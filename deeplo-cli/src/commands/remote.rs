//! The verbs when a daemon runs: they go through its admin socket (the daemon owns the data
//! directory), and print the same tables as the in-process verbs.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use deeplo_core::engine::{HostObservation, ProbeResult};
use deeplo_core::model::{DeployStatus, Deployment};

use crate::context::Context;
use crate::daemon::QueuedRun;
use crate::daemon::client::AdminClient;
use crate::output;

/// Prints what the daemon queued; with `wait`, follows every run to its end (exit 1 when
/// any failed).
pub async fn follow_queued(
    ctx: &Context,
    client: &AdminClient,
    runs: Vec<QueuedRun>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    if !wait {
        if ctx.json() {
            output::json(&runs)?;
        } else {
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.project.clone(),
                        r.host.clone(),
                        r.status.clone(),
                        r.commit.chars().take(7).collect(),
                        r.run.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!("{}", output::table(&["PROJECT", "HOST", "STATUS", "COMMIT", "RUN"], &rows));
            println!("Follow with `deeplo deploys logs RUN`, or pass --wait.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = runs.iter().filter_map(|r| r.run.clone()).collect();
    let mut finals: BTreeMap<String, Deployment> = BTreeMap::new();
    let mut shown: BTreeSet<(String, String)> = BTreeSet::new();
    while finals.len() < ids.len() {
        let pending: Vec<String> = ids.iter().filter(|id| !finals.contains_key(*id)).cloned().collect();
        for id in &pending {
            let record: Deployment = client.get_json(&format!("/v1/runs/{id}")).await?;
            if !ctx.json() {
                for step in &record.steps {
                    if shown.insert((id.clone(), step.name.clone())) {
                        eprintln!(
                            "{}@{}: {} {} ({} ms)",
                            record.project,
                            record.host,
                            step.name,
                            format!("{:?}", step.outcome).to_lowercase(),
                            step.duration_ms
                        );
                    }
                }
            }
            if record.status.is_terminal() {
                finals.insert(id.clone(), record);
            }
        }
        if finals.len() < ids.len() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let records: Vec<Deployment> = finals.into_values().collect();
    let failed = records.iter().filter(|d| d.status == DeployStatus::Failed).count();
    if ctx.json() {
        output::json(&records)?;
    } else {
        use output::Column::*;
        print!("{}", output::records_table(&records, &[Project, Host, Status, Commit, Run, Error]));
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub async fn probe(client: &AdminClient) -> anyhow::Result<Vec<ProbeResult>> {
    client.post_json("/v1/probe", &serde_json::json!({})).await
}

pub async fn containers(client: &AdminClient, store: bool) -> anyhow::Result<Vec<HostObservation>> {
    if store {
        client.post_json("/v1/refresh", &serde_json::json!({})).await
    } else {
        client.get_json("/v1/containers").await
    }
}
