//! `deeplo env set|unset|list PROJECT` and `deeplo secrets rotate-key`: the projects'
//! environment values, sealed in the store ([`EnvVault`]) and delivered at deploy time.
//!
//! Through the daemon's admin socket when it runs (the daemon owns the store), else on the
//! store in this process. A value is given as `KEY=VALUE`, read from a dotenv file
//! (`--from-file`), or, for a bare `KEY`, read from standard input so that it sits in no
//! shell history; no command ever prints one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use deeplo_core::vault::{EnvEntry, EnvVault, Rotated};

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::daemon::{Changed, SetValues, UnsetNames};
use crate::output;

/// `deeplo env set PROJECT KEY=VALUE... [KEY] [--from-file FILE]`.
pub async fn set(ctx: &Context, project: &str, args: &[String], from_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let values = gather(args, from_file, &mut std::io::stdin())?;
    if values.is_empty() {
        bail!("nothing to set: give KEY=VALUE, a KEY whose value comes on stdin, or --from-file FILE");
    }
    let changed: Changed = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.post_json(&path(project), &SetValues { values }).await?,
        None => {
            configured(ctx, project)?;
            let names = values.keys().cloned().collect();
            let values: Vec<(String, String)> = values.into_iter().collect();
            vault(ctx)?.set(project, &values, jiff::Timestamp::now()).await?;
            Changed { project: project.to_owned(), names }
        }
    };
    if ctx.json() {
        output::json(&changed)?;
    } else {
        println!("Set {} in {}; the next deploy delivers it.", changed.names.join(", "), changed.project);
    }
    Ok(ExitCode::SUCCESS)
}

/// `deeplo env unset PROJECT KEY...`.
pub async fn unset(ctx: &Context, project: &str, names: &[String]) -> anyhow::Result<ExitCode> {
    let changed: Changed = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => {
            let body = UnsetNames { names: names.to_vec() };
            client.post_json(&format!("{}/unset", path(project)), &body).await?
        }
        None => Changed { project: project.to_owned(), names: vault(ctx)?.unset(project, names).await? },
    };
    if ctx.json() {
        output::json(&changed)?;
    } else if changed.names.is_empty() {
        println!("{project} had none of {}; nothing removed.", names.join(", "));
    } else {
        println!("Removed {} from {project}.", changed.names.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `deeplo env list PROJECT`: names and when each was set, never values.
pub async fn list(ctx: &Context, project: &str) -> anyhow::Result<ExitCode> {
    let entries: Vec<EnvEntry> = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.get_json(&path(project)).await?,
        None => {
            configured(ctx, project)?;
            vault(ctx)?.list(project).await?
        }
    };
    if ctx.json() {
        output::json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = jiff::Timestamp::now();
    let rows: Vec<Vec<String>> =
        entries.iter().map(|e| vec![e.name.clone(), output::relative_time(e.set_at, now)]).collect();
    print!("{}", output::table(&["NAME", "SET"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `deeplo secrets rotate-key`.
pub async fn rotate_key(ctx: &Context) -> anyhow::Result<ExitCode> {
    let rotated: Rotated = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.post_json("/v1/secrets/rotate-key", &serde_json::json!({})).await?,
        None => vault(ctx)?.rotate_key().await?,
    };
    if ctx.json() {
        output::json(&rotated)?;
    } else {
        println!(
            "Sealed {} value(s) again under key {} (was {}); back up {} now: the old key opens nothing any more.",
            rotated.values,
            rotated.new_key,
            rotated.old_key,
            ctx.settings.secrets_key_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn path(project: &str) -> String {
    format!("/v1/env/{project}")
}

fn vault(ctx: &Context) -> anyhow::Result<EnvVault> {
    Ok(EnvVault::new(crate::wiring::store(ctx)?, &ctx.settings.secrets_key_file))
}

fn configured(ctx: &Context, project: &str) -> anyhow::Result<()> {
    if ctx.load_config()?.config.project(project).is_none() {
        bail!("project {project} is not in the config ({})", ctx.config_path.display());
    }
    Ok(())
}

/// The values of the arguments: `KEY=VALUE` words, a dotenv file, and at most one bare
/// `KEY` whose value is `stdin`, whole, less one trailing newline. A later one wins.
fn gather(
    args: &[String],
    from_file: Option<&Path>,
    stdin: &mut dyn std::io::Read,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    if let Some(file) = from_file {
        let pairs =
            deeplo_core::config::load_env_file(file).with_context(|| format!("--from-file {}", file.display()))?;
        values.extend(pairs);
    }
    let mut bare = None;
    for arg in args {
        match arg.split_once('=') {
            Some((key, value)) => {
                values.insert(key.to_owned(), value.to_owned());
            }
            None if bare.is_some() => bail!("only one KEY can take its value from stdin; give the others as KEY=VALUE"),
            None => bare = Some(arg.clone()),
        }
    }
    if let Some(key) = bare {
        let mut value = String::new();
        stdin.read_to_string(&mut value).with_context(|| format!("reading the value of {key} from stdin"))?;
        let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value).to_owned();
        values.insert(key, value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_from_words_a_file_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.env");
        std::fs::write(&file, "A=from-file\nB=\"quoted value\"\n").unwrap();
        let args = ["A=from-word".to_owned(), "C".to_owned(), "D=x=y".to_owned()];
        let values = gather(&args, Some(&file), &mut "secret\n".as_bytes()).unwrap();
        let expected = [("A", "from-word"), ("B", "quoted value"), ("C", "secret"), ("D", "x=y")];
        assert_eq!(values, expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        let err = gather(&["A".into(), "B".into()], None, &mut "".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("only one KEY"), "{err}");
    }
}
