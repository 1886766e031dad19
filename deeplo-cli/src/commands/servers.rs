//! `deeplo servers token|revoke`: the runner tokens that agents on servers authenticate with.
//!
//! Through the daemon's admin socket when it runs (the daemon owns the store), else on the
//! store in this process. The token's text is printed once, on stdout alone, so that
//! `deeplo servers token web-1 > FILE` keeps it out of the terminal; nothing logs it.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use deeplo_core::RunnerTokenStore;
use deeplo_core::model::HostName;

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::daemon::{IssuedToken, RevokedToken};
use crate::output;

/// Issues a new runner token for `host` (revoking the old one) and prints it once.
pub async fn token(ctx: &Context, host: &str) -> anyhow::Result<ExitCode> {
    let name = HostName::new(host).context("HOST")?;
    let issued: IssuedToken = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.post_json(&token_path(&name), &serde_json::json!({})).await?,
        None => {
            configured(ctx, &name)?;
            let tokens = RunnerTokenStore::new(crate::wiring::store(ctx)?);
            let now = jiff::Timestamp::now();
            IssuedToken::new(&name, &tokens.issue(&name, now).await?, now)
        }
    };
    if ctx.json() {
        output::json(&issued)?;
        return Ok(ExitCode::SUCCESS);
    }
    let url = ctx.settings.public_url.clone().unwrap_or_else(|| format!("http://DAEMON:{}", ctx.settings.http_port));
    eprintln!("Runner token for {} (prefix {}), issued {}:", issued.host, issued.prefix, issued.issued_at);
    println!("{}", issued.token);
    eprintln!("It is shown once: deeplo keeps only its hash. An earlier token of {} no longer works.", issued.host);
    eprintln!("On {}, put it in a file that only the agent's user can read (mode 0600), then run:", issued.host);
    eprintln!("  deeplo-agent run --url {url} --token-file FILE");
    Ok(ExitCode::SUCCESS)
}

/// Revokes the runner token of `host`; says whether there was one.
pub async fn revoke(ctx: &Context, host: &str) -> anyhow::Result<ExitCode> {
    let name = HostName::new(host).context("HOST")?;
    let revoked = match AdminClient::connect(&ctx.settings.unix_socket).await {
        Some(client) => client.delete_json::<RevokedToken>(&token_path(&name)).await?.revoked,
        None => {
            let tokens = RunnerTokenStore::new(crate::wiring::store(ctx)?);
            let revoked = tokens.revoke(&name, jiff::Timestamp::now()).await?;
            // A host gone from the config may still hold a token; only revoking nothing is an error.
            if !revoked {
                configured(ctx, &name)?;
            }
            revoked
        }
    };
    if ctx.json() {
        output::json(&RevokedToken { host: name.to_string(), revoked })?;
    } else if revoked {
        println!("Revoked the runner token of {name}; its agent can no longer connect.");
    } else {
        println!("{name} had no valid runner token; nothing revoked.");
    }
    Ok(ExitCode::SUCCESS)
}

fn token_path(host: &HostName) -> String {
    format!("/v1/servers/{host}/token")
}

/// Fails unless `host` is in the config file.
fn configured(ctx: &Context, host: &HostName) -> anyhow::Result<()> {
    if ctx.load_config()?.config.host(host.as_str()).is_none() {
        bail!("host {host} is not in the config ({}); add it to hosts first", ctx.config_path.display());
    }
    Ok(())
}
