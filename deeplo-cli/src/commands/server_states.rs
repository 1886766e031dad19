//! `deeplo servers list|show|decommission`: every server's state, its agent's facts and
//! its history.
//!
//! Through the daemon's admin socket when it runs (it owns the store, and knows the live
//! state of connected agents); else on the store in this process, with the states last
//! saved. Decommissioning without a daemon is safe: the daemon loads the state at its
//! start and refuses the server's agent from then on.

use std::process::ExitCode;

use anyhow::Context as _;
use deeplo_core::model::HostName;
use deeplo_core::servers::{ServerDetail, ServerFacts, ServerRecord, ServerRegistry};
use jiff::Timestamp;

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::daemon::servers::Decommissioned;
use crate::output;

/// A table of every server.
pub async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let records: Vec<ServerRecord> = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.get_json("/v1/servers").await?,
        None => registry(ctx).await?.list(),
    };
    if ctx.json() {
        output::json(&records)?;
    } else if records.is_empty() {
        println!("No servers configured.");
    } else {
        print!("{}", table(&records, Timestamp::now()));
    }
    Ok(ExitCode::SUCCESS)
}

/// One server's record, facts and history.
pub async fn show(ctx: &Context, host: &str) -> anyhow::Result<ExitCode> {
    let name = HostName::new(host).context("HOST")?;
    let detail: ServerDetail = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.get_json(&format!("/v1/servers/{name}")).await?,
        None => registry(ctx).await?.detail(&name).with_context(|| unknown(ctx, &name))?,
    };
    if ctx.json() {
        output::json(&detail)?;
    } else {
        print!("{}", describe(&detail, Timestamp::now()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Decommissions a server for good.
pub async fn decommission(ctx: &Context, host: &str) -> anyhow::Result<ExitCode> {
    let name = HostName::new(host).context("HOST")?;
    let answer: Decommissioned = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.post_json(&format!("/v1/servers/{name}/decommission"), &serde_json::json!({})).await?,
        None => {
            let registry = registry(ctx).await?;
            registry.detail(&name).with_context(|| unknown(ctx, &name))?;
            let transition = registry.decommission(&name, Timestamp::now()).await?;
            let server = registry.detail(&name).with_context(|| unknown(ctx, &name))?;
            Decommissioned { host: name.to_string(), changed: transition.is_some(), server }
        }
    };
    if ctx.json() {
        output::json(&answer)?;
    } else if answer.changed {
        println!("Decommissioned {name}: it takes no more deploys and its agent is refused.");
        println!("Nothing on the server was stopped; remove {name} from the projects' targets and from hosts.");
    } else {
        println!("{name} was already decommissioned (since {}).", answer.server.record.since);
    }
    Ok(ExitCode::SUCCESS)
}

/// The registry of the data directory, for the config file's hosts.
async fn registry(ctx: &Context) -> anyhow::Result<ServerRegistry> {
    let config = ctx.load_config()?.config;
    let registry = ServerRegistry::new(crate::wiring::store(ctx)?);
    registry.load().await?;
    registry.sync(&config, Timestamp::now());
    Ok(registry)
}

fn unknown(ctx: &Context, host: &HostName) -> String {
    format!("host {host} is not in the config ({}) and was never decommissioned", ctx.config_path.display())
}

fn table(records: &[ServerRecord], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.host.to_string(),
                r.transport.to_string(),
                r.state.as_str().to_uppercase(),
                output::relative_time(r.since, now),
                r.last_seen.map_or_else(|| "-".into(), |t| output::relative_time(t, now)),
                r.agent_version.clone().unwrap_or_else(|| "-".into()),
                r.facts.as_ref().and_then(|f| f.docker_version.clone()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(&["NAME", "TRANSPORT", "STATE", "SINCE", "LAST-SEEN", "AGENT", "DOCKER"], &rows)
}

fn describe(detail: &ServerDetail, now: Timestamp) -> String {
    let r = &detail.record;
    let when = |t: Timestamp| format!("{} ({})", seconds(t), output::relative_time(t, now));
    let mut lines = vec![
        ("Server", r.host.to_string()),
        ("Transport", r.transport.to_string()),
        ("State", format!("{} since {}", r.state.as_str().to_uppercase(), when(r.since))),
    ];
    if let Some(reason) = &r.reason {
        lines.push(("Reason", reason.clone()));
    }
    lines.push(("Last seen", r.last_seen.map_or_else(|| "never".into(), when)));
    if let Some(version) = &r.agent_version {
        lines.push(("Agent", version.clone()));
    }
    if let Some(facts) = &r.facts {
        lines.extend(fact_lines(facts));
    }
    let mut out: String = lines.iter().map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:"))).collect();
    out.push_str("\nHistory:\n");
    if detail.history.is_empty() {
        out.push_str("  no transition yet\n");
        return out;
    }
    let rows: Vec<Vec<String>> = detail
        .history
        .iter()
        .rev()
        .map(|t| {
            vec![
                seconds(t.at).to_string(),
                t.from.as_str().to_uppercase(),
                t.to.as_str().to_uppercase(),
                t.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    for line in output::table(&["AT", "FROM", "TO", "REASON"], &rows).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

fn fact_lines(f: &ServerFacts) -> Vec<(&'static str, String)> {
    let unknown = || "unknown".to_owned();
    vec![
        ("OS", f.os.clone()),
        ("Kernel", format!("{} ({})", f.kernel, f.arch)),
        ("Docker", f.docker_version.clone().unwrap_or_else(unknown)),
        ("Compose", f.compose_version.clone().unwrap_or_else(unknown)),
        ("Disk free", f.disk_free_bytes.map_or_else(unknown, bytes)),
        ("Memory", f.memory_bytes.map_or_else(unknown, bytes)),
    ]
}

/// `t` to the second: sub-second digits only make the lines longer.
fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Bytes in GiB (or MiB below one GiB), one decimal.
fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let n = n as f64;
    if n >= 1024.0 * MIB { format!("{:.1} GiB", n / (1024.0 * MIB)) } else { format!("{:.1} MiB", n / MIB) }
}
