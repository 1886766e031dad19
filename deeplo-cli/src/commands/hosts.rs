//! `deeplo probe`, `deeplo deploys containers` and `deeplo refresh`: looking at hosts.

use std::process::ExitCode;

use deeplo_core::engine::HostObservation;
use jiff::Timestamp;
use serde::Serialize;

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::output;

/// OK/FAIL per host with the reason; exit 1 when any host failed.
pub async fn probe(ctx: &Context) -> anyhow::Result<ExitCode> {
    let results = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => super::remote::probe(&client).await?,
        None => crate::wiring::engine(ctx).await?.probe().await,
    };
    let failed = results.iter().filter(|r| !r.ok).count();
    if ctx.json() {
        output::json(&results)?;
    } else if results.is_empty() {
        println!("No hosts configured.");
    } else {
        for r in &results {
            match &r.error {
                None => println!(
                    "OK    {:<20}  {} ({}, {} ms)",
                    r.host,
                    r.address,
                    r.compose.as_deref().unwrap_or(""),
                    r.millis
                ),
                Some(e) => println!("FAIL  {:<20}  {e}", r.host),
            }
        }
        if failed > 0 {
            println!("{failed} host(s) unreachable");
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The document `refresh` stores: what was running where, and when it was seen.
#[derive(Serialize)]
struct Observed<'a> {
    observed_at: Timestamp,
    hosts: &'a [HostObservation],
}

/// `compose ps` on every host; with `store`, the result is kept as the observed state
/// (never as a deploy record).
pub async fn containers(ctx: &Context, store: bool) -> anyhow::Result<ExitCode> {
    let hosts = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => super::remote::containers(&client, store).await?,
        None => {
            let engine = crate::wiring::engine(ctx).await?;
            let hosts = engine.observe().await;
            if store {
                let doc = serde_json::to_value(Observed { observed_at: Timestamp::now(), hosts: &hosts })?;
                engine.store().save_document("observed", &doc).await?;
            }
            hosts
        }
    };
    let errors = hosts.iter().filter(|h| h.error.is_some()).count()
        + hosts.iter().flat_map(|h| &h.projects).filter(|p| p.error.is_some()).count();
    if ctx.json() {
        output::json(&hosts)?;
    } else if hosts.is_empty() {
        println!("No hosts configured.");
    } else {
        let mut rows = Vec::new();
        for h in &hosts {
            if let Some(e) = &h.error {
                eprintln!("ERROR  {}: {e}", h.host);
            }
            for p in &h.projects {
                if let Some(e) = &p.error {
                    eprintln!("ERROR  {}/{}: {e}", p.project, h.host);
                }
                for r in &p.releases {
                    rows.push(vec![
                        p.project.to_string(),
                        h.host.to_string(),
                        r.container.clone(),
                        r.state.clone(),
                        format!(
                            "{} release of {}",
                            if r.live { "live" } else { "kept" },
                            &r.commit[..r.commit.len().min(8)]
                        ),
                    ]);
                }
                if p.services.is_empty() && p.releases.is_empty() && p.error.is_none() {
                    rows.push(vec![
                        p.project.to_string(),
                        h.host.to_string(),
                        "(none)".into(),
                        "-".into(),
                        "not deployed".into(),
                    ]);
                }
                for s in &p.services {
                    rows.push(vec![
                        p.project.to_string(),
                        h.host.to_string(),
                        s.service.clone(),
                        s.state.clone(),
                        s.status.clone(),
                    ]);
                }
            }
        }
        print!("{}", output::table(&["PROJECT", "HOST", "SERVICE", "STATE", "STATUS"], &rows));
        if store {
            println!("Observed state saved.");
        }
    }
    if errors > 0 {
        eprintln!("one or more hosts could not be reached");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
