//! `deeplo uninstall [--purge]`: reverses `scripts/install`. The service is stopped and
//! disabled, the unit, binary and shell completions removed; the config, keys, data and the
//! `deeplo` user and group only with `--purge` or a yes to the question (end of input is no).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::cli::UninstallArgs;
use crate::native::{Layout, SERVICE, accounts, is_root, prompt, run_attached, systemd};

pub fn run(args: &UninstallArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::new(args.root.as_deref());
    if layout.is_system() && !is_root() {
        bail!("uninstall removes system files and the service: run it as root (sudo deeplo uninstall)");
    }
    let mut purge = args.purge;
    if !purge {
        println!("This will stop and remove the deeplo service and binary.");
        purge = prompt::yes_no("Also remove config, data, and the deeplo user and group?", false);
    }
    println!("Uninstalling deeplo{}...", root_note(&layout));

    let service_here = layout.is_system() && systemd::running();
    if service_here {
        if systemd::check("is-active") {
            systemd::privileged(&["stop", SERVICE]).context("stop the deeplo service")?;
            println!("✓ Stopped {SERVICE}");
        }
        if systemd::check("is-enabled") {
            systemd::privileged(&["disable", SERVICE]).context("disable the deeplo service")?;
            println!("✓ Disabled {SERVICE}");
        }
        if systemd::check("is-failed") {
            let _ = systemd::privileged(&["reset-failed", SERVICE]);
        }
    } else if layout.is_system() {
        println!("  systemd is not running here: no service to stop");
    }

    if remove_file(&layout.unit_file())? && service_here {
        systemd::privileged(&["daemon-reload"])?;
    }
    remove_file(&layout.binary())?;
    for (_, file) in layout.completions() {
        remove_file(&file)?;
    }

    if !purge {
        println!();
        println!("deeplo uninstalled. Config and data preserved:");
        println!("{}  {}", layout.config_dir().display(), layout.data_dir().display());
        println!();
        println!("Remove them with: deeplo uninstall --purge");
        println!("(the deeplo system user and group also remain)");
        return Ok(ExitCode::SUCCESS);
    }
    for dir in [layout.config_dir(), layout.data_dir()] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            println!("✓ Removed {}", dir.display());
        }
    }
    remove_account(&layout)?;
    println!();
    println!("deeplo fully purged.");
    println!();
    println!("Note: deployed projects and the deploy key authorized on your hosts are not touched");
    println!("by uninstall; remove those on each host if needed.");
    Ok(ExitCode::SUCCESS)
}

fn root_note(layout: &Layout) -> String {
    if layout.is_system() { String::new() } else { format!(" under {}", layout.root().display()) }
}

/// Removes `path` if it exists; `true` when it did.
fn remove_file(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            println!("✓ Removed {}", path.display());
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// `userdel` and `groupdel` (with `--prefix` for another root); the group usually goes with
/// the user, so its removal is only a fallback.
fn remove_account(layout: &Layout) -> anyhow::Result<()> {
    let root = layout.root();
    let prefix: Vec<&str> = if layout.is_system() { Vec::new() } else { vec!["--prefix", path_str(root)?] };
    if accounts::user_in(root, SERVICE)?.is_some() {
        let mut args = prefix.clone();
        args.push(SERVICE);
        run_attached("userdel", &args)?;
        println!("✓ Removed system user {SERVICE}");
    }
    if accounts::groups_in(root)?.iter().any(|g| g.name == SERVICE) {
        let mut args = prefix;
        args.push(SERVICE);
        run_attached("groupdel", &args)?;
        println!("✓ Removed system group {SERVICE}");
    }
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("{} is not valid UTF-8", path.display()))
}
