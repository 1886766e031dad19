//! What the bench reads of the daemon in `/proc`, and the open-file limit it raises.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Lines of `/proc/PID/status` about memory, in KiB, and the thread count.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    pub(crate) vm_rss: u64,
    pub(crate) vm_hwm: u64,
    pub(crate) rss_anon: u64,
    pub(crate) rss_file: u64,
    pub(crate) threads: u64,
}

pub(crate) fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let mut memory = Memory::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let number = value.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        match key {
            "VmRSS" => memory.vm_rss = number,
            "VmHWM" => memory.vm_hwm = number,
            "RssAnon" => memory.rss_anon = number,
            "RssFile" => memory.rss_file = number,
            "Threads" => memory.threads = number,
            _ => {}
        }
    }
    if memory.vm_rss == 0 {
        bail!("no VmRSS in {path} (has the daemon exited?):\n{text}");
    }
    Ok(memory)
}

/// The process's user + system CPU time so far, in clock ticks (`utime`, `stime` of
/// `/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = text.rsplit_once(')').map(|(_, rest)| rest).context("no ')' in /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the whole line, utime 14, stime 15.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields.get(n - 3).and_then(|f| f.parse().ok()).with_context(|| format!("no field {n} in {path}"))
    };
    Ok(field(14)? + field(15)?)
}

/// The clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The process's CPU use over `window`, as a percentage of one core.
pub(crate) fn cpu_percent(pid: u32, window: Duration) -> anyhow::Result<f64> {
    let per_second = ticks_per_second();
    let (before, clock) = (cpu_ticks(pid)?, Instant::now());
    std::thread::sleep(window);
    let used = cpu_ticks(pid)?.saturating_sub(before) as f64 / per_second;
    Ok(100.0 * used / clock.elapsed().as_secs_f64())
}

/// Raises this process's open-file limit to at least `wanted` (its children, the daemon
/// among them, inherit it): the soft limit up to the hard one, and the hard one too when
/// that is not enough and the process may (root). Returns the soft limit now.
pub(crate) fn raise_open_files(wanted: u64) -> anyhow::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= wanted {
        return Ok(soft);
    }
    let new_hard = hard.max(wanted);
    setrlimit(Resource::RLIMIT_NOFILE, wanted, new_hard).with_context(|| {
        format!(
            "cannot raise the open-file limit from {soft} (hard {hard}) to {wanted}: run `ulimit -n {wanted}` first"
        )
    })?;
    Ok(wanted)
}
