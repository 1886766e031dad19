//! The test bed: real programs for deeplo's scenario tests, benchmarks, examples and demo.
//!
//! Nothing here is a fake: [`Sshd`] runs OpenSSH's server on 127.0.0.1 with a generated
//! host key, [`GitRepo`] drives the `git` command line, [`docker`] builds images from the
//! static busybox binary against the local engine, and [`UnixUser`] is a real account for
//! password logins. When something the tests need is missing, the error says how to
//! install or start it (`bash .ci/install-deps`), so a test that needs Docker never
//! silently passes without it.

#![warn(missing_docs)]

pub mod agent;
pub mod apps;
pub mod daemon;
pub mod docker;
pub mod engines;
mod git;
pub mod scenario;
mod sshd;
mod users;

pub use git::GitRepo;
pub use sshd::{Sshd, SshdOptions, free_port};
pub use users::UnixUser;

/// Runs a command and returns its stdout, failing with its stderr when it exits non-zero.
pub fn run(cmd: &mut std::process::Command) -> anyhow::Result<String> {
    let out = cmd.output().map_err(|e| anyhow::anyhow!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first file under `dir` (recursively) that holds `needle`: for tests that prove a
/// secret never reached the disk.
pub fn file_holding(dir: &std::path::Path, needle: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = file_holding(&path, needle) {
                return Some(found);
            }
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            return Some(path);
        }
    }
    None
}
