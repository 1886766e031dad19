//! `deeplo config check`, `config edit` and `config reload`.

use std::process::ExitCode;

use deeplo_core::config::{self, Diagnostic, Severity};
use serde::Serialize;

use crate::context::Context;
use crate::native::{editor, prompt};
use crate::output;

#[derive(Serialize)]
struct Report<'a> {
    path: String,
    valid: bool,
    errors: Vec<Item<'a>>,
    warnings: Vec<Item<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repos: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    projects: Option<usize>,
}

#[derive(Serialize)]
struct Item<'a> {
    path: &'a str,
    message: &'a str,
}

/// Prints each error and warning with its path, then the verdict; exit 1 when invalid.
pub fn check(ctx: &Context) -> anyhow::Result<ExitCode> {
    let valid = report(ctx)?;
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `config edit`: opens the file, then runs `config check`; offers to reopen it while it is
/// invalid.
pub fn edit(ctx: &Context) -> anyhow::Result<ExitCode> {
    let path = &ctx.config_path;
    if !path.exists() {
        anyhow::bail!("config file not found: {}\n  set DEEPLO_CONFIG_FILE or create the file", path.display());
    }
    let editor = editor::choose(path);
    loop {
        println!("Opening {} with {editor}...", path.display());
        editor::open(path, &editor)?;
        if report(ctx)? {
            println!();
            println!("Edited {}", path.display());
            println!();
            println!("Next steps:");
            println!("  deeplo config reload     apply the changes without restarting the daemon");
            println!("  deeplo service restart   or restart the service");
            return Ok(ExitCode::SUCCESS);
        }
        if !prompt::yes_no(&format!("{} is invalid. Reopen it?", path.display()), true) {
            println!("Left {} invalid: a reload keeps the running config, a start refuses it.", path.display());
            return Ok(ExitCode::FAILURE);
        }
    }
}

/// Prints the check's findings and verdict; `true` when the config is valid.
fn report(ctx: &Context) -> anyhow::Result<bool> {
    let path = ctx.config_path.display().to_string();
    let (diagnostics, counts): (Vec<Diagnostic>, Option<(usize, usize, usize)>) =
        match config::load(&ctx.config_path, &ctx.env) {
            Ok(loaded) => {
                let c = &loaded.config;
                (loaded.warnings.clone(), Some((c.hosts.len(), c.repos.len(), c.projects.len())))
            }
            Err(errors) => (errors.diagnostics, None),
        };
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    let warnings: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.severity == Severity::Warning).collect();
    let valid = counts.is_some() && errors.is_empty();

    if ctx.json() {
        fn item<'a>(d: &&'a Diagnostic) -> Item<'a> {
            Item { path: d.path.as_str(), message: d.message.as_str() }
        }
        output::json(&Report {
            path,
            valid,
            errors: errors.iter().map(item).collect(),
            warnings: warnings.iter().map(item).collect(),
            hosts: counts.map(|c| c.0),
            repos: counts.map(|c| c.1),
            projects: counts.map(|c| c.2),
        })?;
    } else {
        for d in &errors {
            println!("ERROR  {:<45}  {}", d.path, d.message);
        }
        for d in &warnings {
            println!("WARN   {:<45}  {}", d.path, d.message);
        }
        match counts {
            Some((h, r, p)) if valid => {
                let mut line = format!("Config OK: {path} ({h} host(s), {r} repo(s), {p} project(s))");
                if !warnings.is_empty() {
                    line.push_str(&format!(", {} warning(s)", warnings.len()));
                }
                println!("{line}");
            }
            _ => println!("Config INVALID: {} error(s) in {path}", errors.len()),
        }
    }
    Ok(valid)
}

/// `deeplo config reload`: asks the running daemon to re-read its config file.
pub async fn reload(ctx: &Context) -> anyhow::Result<ExitCode> {
    let Some(client) = crate::daemon::client::AdminClient::connect(&ctx.settings.unix_socket).await else {
        anyhow::bail!(
            "no deeplo daemon answers on {} (DEEPLO_UNIX_SOCKET); a config change applies the next time it starts",
            ctx.settings.unix_socket.display()
        );
    };
    let report: serde_json::Value = client.post_json("/v1/reload", &serde_json::json!({})).await?;
    if ctx.json() {
        output::json(&report)?;
    } else {
        println!("Config reloaded.");
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
