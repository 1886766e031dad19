//! The machine deeplo is installed on, as `scripts/install` lays it out: where the binary,
//! unit, config, env file, keys and data live ([`Layout`]), the `deeplo` service under
//! systemd ([`systemd`]), the accounts in `/etc/passwd` and `/etc/group` ([`accounts`]),
//! and the operator's editor and terminal ([`editor`], [`prompt`]). The `health`,
//! `service`, `env`, `config edit`, `uninstall` and `update` verbs are built from these.

pub mod accounts;
pub mod editor;
mod layout;
pub mod prompt;
pub mod systemd;

pub use layout::Layout;

/// The service's unit name, system user and group.
pub const SERVICE: &str = "deeplo";

/// Runs `program args...` with the terminal attached; fails naming the program on a
/// non-zero exit.
pub fn run_attached(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
    if !status.success() {
        anyhow::bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user; the
/// workspace denies the `unsafe` a `geteuid` call would need).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether `program` is on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
