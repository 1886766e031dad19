//! `deeplo update --from FILE`: replaces the installed binary with a built one. The new file
//! must run and answer `version` as deeplo does before it goes in; the swap is one rename,
//! so the path always holds a whole binary; the old one is kept beside it (`deeplo.old`)
//! until the new one has started, and put back if the service does not come up on it.
//! Downloading a release is not possible from here: without `--from` the verb says how to
//! build one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cli::UpdateArgs;
use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::native::{Layout, SERVICE, is_root, systemd};

const HOW_TO_BUILD: &str = "deeplo update installs a binary you give it; it cannot download a release.
Build one and pass it:
  cargo build --release -p deeplo-cli
  sudo deeplo update --from target/release/deeplo
or, from a checkout, reinstall with: sudo scripts/install --build";

pub async fn run(ctx: &Context, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let Some(from) = &args.from else {
        if let Some(version) = &args.version {
            eprintln!("cannot download deeplo {version}.");
        }
        eprintln!("{HOW_TO_BUILD}");
        return Ok(ExitCode::FAILURE);
    };
    if args.version.is_some() {
        bail!("--version downloads a release, which this build cannot do; --from installs the file given");
    }
    let layout = Layout::new(args.root.as_deref());
    let installed = layout.binary();
    if !installed.exists() {
        bail!("no deeplo installed at {}: install it with scripts/install", installed.display());
    }
    if layout.is_system() && !is_root() {
        bail!("update replaces {}: run it as root (sudo deeplo update --from ...)", installed.display());
    }
    let new_version = version_of(from).await?;
    if !args.force && same_contents(from, &installed)? {
        println!(
            "deeplo {new_version} is already installed. Run 'deeplo update --from {} --force' to reinstall.",
            from.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let old_version = version_of(&installed).await.unwrap_or_else(|_| "(unknown)".into());
    println!("Updating deeplo {old_version} to {new_version}...");

    let old = swap_in(from, &installed).await?;
    println!("✓ Installed {} (the previous binary kept as {})", installed.display(), old.display());
    refresh_completions(&layout, &installed).await;

    let service = layout.is_system() && systemd::running() && systemd::installed();
    if service {
        systemd::privileged(&["daemon-reload"])?;
        if systemd::check("is-active") {
            println!("Restarting {SERVICE} service...");
            if let Err(err) = restart_on(ctx, &new_version).await {
                std::fs::rename(&old, &installed).context("cannot put the previous binary back")?;
                let _ = systemd::privileged(&["restart", SERVICE]);
                bail!(
                    "the service did not come up on the new binary ({err:#}); the previous one is back in {} \
                     and restarted: see `deeplo service logs`",
                    installed.display()
                );
            }
            println!("✓ Restarted {SERVICE} (version {new_version} answering)");
        }
    } else if layout.is_system() && AdminClient::connect(&ctx.settings.unix_socket).await.is_some() {
        println!("A daemon answers on {}: restart it to run the new binary.", ctx.settings.unix_socket.display());
    }
    std::fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    println!();
    println!("deeplo updated to {new_version}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `FILE version` (10 s at most) and returns the version it prints as `deeplo X`.
async fn version_of(file: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(file).with_context(|| format!("cannot use {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    let running = tokio::process::Command::new(file)
        .arg("version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .map_err(|_| anyhow::anyhow!("{} did not answer `version` within 10 s", file.display()))?
        .with_context(|| format!("{} does not run here", file.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.trim().strip_prefix("deeplo ") {
        Some(version) if output.status.success() && !version.is_empty() && !version.contains(char::is_whitespace) => {
            Ok(version.to_owned())
        }
        _ => bail!(
            "{} is not a deeplo binary: `version` answered {:?} ({})",
            file.display(),
            stdout.trim(),
            output.status
        ),
    }
}

fn same_contents(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    Ok(std::fs::read(a)? == std::fs::read(b)?)
}

/// Copies `from` beside `installed`, checks the copy runs, keeps the current binary as
/// `deeplo.old` (a hard link, so the path never goes missing) and renames the copy over it.
async fn swap_in(from: &Path, installed: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = installed.parent().context("the installed binary has no directory")?;
    let staged = dir.join(".deeplo.new");
    let old = dir.join("deeplo.old");
    std::fs::copy(from, &staged).with_context(|| format!("cannot copy {} to {}", from.display(), staged.display()))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))?;
    if let Err(err) = version_of(&staged).await {
        let _ = std::fs::remove_file(&staged);
        return Err(err.context("the copied binary does not run"));
    }
    match std::fs::remove_file(&old) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", old.display()));
        }
        _ => {}
    }
    if std::fs::hard_link(installed, &old).is_err() {
        std::fs::copy(installed, &old)
            .with_context(|| format!("cannot keep {} as {}", installed.display(), old.display()))?;
    }
    std::fs::rename(&staged, installed)
        .with_context(|| format!("cannot move {} to {}", staged.display(), installed.display()))?;
    Ok(old)
}

/// Regenerates the completion files that exist, from the new binary.
async fn refresh_completions(layout: &Layout, binary: &Path) {
    for (shell, file) in layout.completions() {
        if !file.exists() {
            continue;
        }
        let output = tokio::process::Command::new(binary).args(["completion", &shell.to_string()]).output().await;
        if let Ok(output) = output
            && output.status.success()
            && std::fs::write(&file, &output.stdout).is_ok()
        {
            println!("✓ Refreshed {}", file.display());
        }
    }
}

/// Restarts the service and waits (30 s) for the daemon to answer with `version`.
async fn restart_on(ctx: &Context, version: &str) -> anyhow::Result<()> {
    systemd::privileged(&["restart", SERVICE])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::from("no answer on the admin socket");
    while Instant::now() < deadline {
        if let Some(client) = AdminClient::connect(&ctx.settings.unix_socket).await {
            match client.get_json::<serde_json::Value>("/v1/health").await {
                Ok(health) if health.get("version").and_then(|v| v.as_str()) == Some(version) => return Ok(()),
                Ok(health) => last = format!("the daemon answers as version {}", health["version"]),
                Err(e) => last = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("{last} after 30 s")
}
