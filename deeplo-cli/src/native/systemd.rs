//! The `deeplo` unit under systemd: whether systemd runs here, and `systemctl` and
//! `journalctl` run with the terminal attached, through `sudo` when this user may not.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::bail;

use super::{SERVICE, accounts, is_root, on_path, run_attached};

/// Whether systemd is this machine's init system (the test `sd_booted` makes).
pub fn running() -> bool {
    on_path("systemctl") && Path::new("/run/systemd/system").is_dir()
}

/// Fails with a clear message where systemd is absent (a container, a machine with another
/// init): the service verbs have nothing to act on there.
pub fn require() -> anyhow::Result<()> {
    if running() {
        return Ok(());
    }
    bail!(
        "systemd is not running on this machine (no /run/systemd/system), so there is no {SERVICE} service to manage; \
         run `deeplo daemon` under your own supervisor, and `deeplo health` to check it"
    )
}

/// `systemctl ARGS... deeplo` exits 0 (`is-active`, `is-enabled`, `is-failed` with `--quiet`).
pub fn check(verb: &str) -> bool {
    Command::new("systemctl")
        .args([verb, "--quiet", SERVICE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the unit is known to systemd (installed), whatever its state.
pub fn installed() -> bool {
    Command::new("systemctl")
        .args(["show", "--property=LoadState", "--value", SERVICE])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "loaded")
}

/// `systemctl ARGS...` for a change (start, stop, enable...): as root directly, else
/// through `sudo`, which may ask for a password on the terminal.
pub fn privileged(args: &[&str]) -> anyhow::Result<()> {
    if is_root() {
        return run_attached("systemctl", args);
    }
    if !on_path("sudo") {
        bail!("systemctl {} needs root, and sudo is not installed: run it as root", args.join(" "));
    }
    let mut with_sudo = vec!["systemctl"];
    with_sudo.extend_from_slice(args);
    run_attached("sudo", &with_sudo)
}

/// `journalctl ARGS...`: directly for root and members of `systemd-journal` or `adm` (who
/// may read the system journal), else through `sudo`.
pub fn journal(args: &[&str]) -> anyhow::Result<()> {
    if is_root() || in_any_group(&["systemd-journal", "adm"]) {
        return run_attached("journalctl", args);
    }
    if !on_path("sudo") {
        bail!(
            "reading the system journal needs privileges, and sudo is not installed: \
             run it as root or join the systemd-journal group"
        );
    }
    let mut with_sudo = vec!["journalctl"];
    with_sudo.extend_from_slice(args);
    run_attached("sudo", &with_sudo)
}

/// Whether this process holds one of `groups` (its supplementary groups, from /proc).
fn in_any_group(groups: &[&str]) -> bool {
    let held: Vec<u32> = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Groups:")).map(str::to_owned))
        .map(|l| l.split_whitespace().skip(1).filter_map(|g| g.parse().ok()).collect())
        .unwrap_or_default();
    groups.iter().filter_map(|g| accounts::group(g).ok().flatten()).any(|g| held.contains(&g.gid))
}
