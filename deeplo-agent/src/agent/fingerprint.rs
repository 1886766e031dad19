//! The server's [`Fingerprint`], as the agent reports it at hello and every minute.

use std::path::Path;

use super::facts::docker_versions;
use crate::protocol::Fingerprint;

/// How often the agent sends a fresh fingerprint.
pub const FINGERPRINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the server's facts: the distribution from `/etc/os-release`, the kernel release,
/// the architecture, the free space of the file system that holds `deploy_dir` (or its
/// nearest existing parent) and the total memory. A fact that cannot be read is left
/// empty (`None`, or `"unknown"` for the words), never an error: the fingerprint informs,
/// it does not gate the connection. The Docker and Compose versions are left `None`:
/// [`collect`] fills them in.
pub fn read_host(deploy_dir: &Path) -> Fingerprint {
    Fingerprint {
        os: os_release(&std::fs::read_to_string("/etc/os-release").unwrap_or_default()),
        kernel: first_line("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_owned(),
        docker_version: None,
        compose_version: None,
        disk_free_bytes: disk_free(deploy_dir),
        memory_bytes: mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()),
    }
}

/// The fingerprint the agent sends, at hello and every [`FINGERPRINT_INTERVAL`]: the
/// server's facts from [`read_host`] with the Docker engine's and the Compose plugin's
/// versions from [`docker_versions`]. Never an error either: a Docker that does not answer
/// leaves its versions `None`, after at most [`DOCKER_TIMEOUT`](super::facts::DOCKER_TIMEOUT).
pub async fn collect(deploy_dir: &Path) -> Fingerprint {
    let (docker_version, compose_version) = collect_docker().await;
    Fingerprint { docker_version, compose_version, ..read_host(deploy_dir) }
}

/// The Docker engine's and the Compose plugin's versions, for a caller that reads the
/// host's own facts elsewhere (on a blocking thread).
pub async fn collect_docker() -> (Option<String>, Option<String>) {
    docker_versions().await
}

/// `PRETTY_NAME` of an os-release file (unquoted), else `NAME`, else `"unknown"`.
fn os_release(text: &str) -> String {
    let value = |key: &str| {
        text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('=')).map(|v| v.trim().trim_matches('"'))
    };
    value("PRETTY_NAME").or_else(|| value("NAME")).filter(|v| !v.is_empty()).unwrap_or("unknown").to_owned()
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().next().map(str::trim).map(str::to_owned))
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Free bytes (for an unprivileged user) on the file system of `dir`, or of its nearest
/// existing parent when `dir` is not created yet.
fn disk_free(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let stat = nix::sys::statvfs::statvfs(existing).ok()?;
    stat.blocks_available().checked_mul(stat.fragment_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_prefers_the_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(os_release(text), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_release("NAME=Alpine\n"), "Alpine");
        assert_eq!(os_release(""), "unknown");
    }

    #[test]
    fn memory_is_read_in_bytes() {
        assert_eq!(mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16384 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn the_real_host_has_a_kernel_memory_and_disk() {
        let fingerprint = read_host(Path::new("/nonexistent/deeplo/deploys"));
        assert_ne!(fingerprint.kernel, "unknown");
        assert!(fingerprint.memory_bytes.unwrap() > 0);
        assert!(fingerprint.disk_free_bytes.is_some());
        assert_eq!(fingerprint.arch, std::env::consts::ARCH);
    }
}
