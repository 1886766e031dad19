//! `deeplo deploys state|history|logs`: what the store remembers.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use deeplo_core::model::{Deployment, HostName, ProjectName, RunId};
use deeplo_core::{HistoryQuery, Store as _};

use crate::context::Context;
use crate::daemon::client::{AdminClient, ApiFailure};
use crate::output;

pub async fn state(ctx: &Context) -> anyhow::Result<ExitCode> {
    let records: Vec<Deployment> = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.get_json("/v1/deployments").await?,
        None => crate::wiring::store(ctx)?.latest_all().await?,
    };
    if ctx.json() {
        output::json(&records)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("No deployments recorded yet.");
        println!("Trigger one with `deeplo deploy PROJECT`, by pushing to a tracked branch, or wait for the poller.");
        return Ok(ExitCode::SUCCESS);
    }
    use output::Column::*;
    print!("{}", output::records_table(&records, &[Project, Host, Status, Commit, Trigger, When]));
    Ok(ExitCode::SUCCESS)
}

pub async fn history(
    ctx: &Context,
    project: Option<&str>,
    host: Option<&str>,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let query = HistoryQuery {
        project: project.map(ProjectName::new).transpose().context("--project")?,
        host: host.map(HostName::new).transpose().context("--host")?,
        limit: Some(limit),
    };
    let records: Vec<Deployment> = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => {
            let mut path = format!("/v1/runs?limit={limit}");
            if let Some(p) = &query.project {
                path.push_str(&format!("&project={p}"));
            }
            if let Some(h) = &query.host {
                path.push_str(&format!("&host={h}"));
            }
            client.get_json(&path).await?
        }
        None => crate::wiring::store(ctx)?.history(&query).await?,
    };
    print_history(ctx, &records)
}

pub fn print_history(ctx: &Context, records: &[Deployment]) -> anyhow::Result<ExitCode> {
    if ctx.json() {
        output::json(&records)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("No runs recorded yet.");
        return Ok(ExitCode::SUCCESS);
    }
    use output::Column::*;
    print!("{}", output::records_table(records, &[Id, Project, Host, Status, Commit, Trigger, When]));
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(ctx: &Context, run: &str) -> anyhow::Result<ExitCode> {
    let id = RunId::parse(run).map_err(|e| anyhow::anyhow!("{e}; see `deeplo deploys history` for run ids"))?;
    let log = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => match client.get_bytes(&format!("/v1/runs/{id}/log")).await {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(err) if err.downcast_ref::<ApiFailure>().is_some_and(|f| f.status.as_u16() == 404) => None,
            Err(err) => return Err(err),
        },
        None => crate::wiring::store(ctx)?.read_log(&id).await?,
    };
    match log {
        Some(text) => {
            use std::io::Write;
            std::io::stdout().write_all(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("run log not found: {run}; see `deeplo deploys history` for run ids"),
    }
}
