//! The figures: the table printed at the end, and the JSON file.

use serde_json::{Value, json};

use super::procfs::Memory;
use super::{CPU_WINDOW, Case, HEARTBEAT, SETTLE_HEARTBEATS, TARGET_KIB_PER_AGENT, build};

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The `q` quantile (0 to 1) of `values`, nearest rank.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

impl Case {
    /// Daemon memory per agent, KiB: the growth of `VmRSS` over the idle baseline, per agent.
    fn kib_per_agent(&self) -> f64 {
        (self.loaded.vm_rss as f64 - self.idle.vm_rss as f64) / self.agents as f64
    }

    fn anon_kib_per_agent(&self) -> f64 {
        (self.loaded.rss_anon as f64 - self.idle.rss_anon as f64) / self.agents as f64
    }

    fn target_met(&self) -> bool {
        self.kib_per_agent() < TARGET_KIB_PER_AGENT
    }
}

pub(crate) fn report(profile: &str, parallel: usize, open_files: u64, cases: &[Case]) -> anyhow::Result<()> {
    println!(
        "\nidle agents held by the deeplo daemon ({profile} profile), heartbeat every {}s, {parallel} handshakes at a \
         time, open-file limit {open_files}",
        HEARTBEAT.as_secs()
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>9} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "agents", "connect", "per s", "hs p50", "hs p99", "RSS idle", "RSS N", "KiB/agt", "target", "CPU idle", "CPU N"
    );
    for c in cases {
        let verdict = if c.target_met() { "met" } else { "MISSED" };
        println!(
            "{:>6} {:>8.2} s {:>10.0} {:>7.1} ms {:>6.1} ms {:>6.1} MiB {:>5.1} MiB {:>9.1} {:>3.0} {verdict:<6} {:>8.2}% {:>8.2}%",
            c.agents,
            c.connect_s,
            c.agents as f64 / c.connect_s,
            build::median(&c.handshake_ms),
            quantile(&c.handshake_ms, 0.99),
            mib(c.idle.vm_rss),
            mib(c.loaded.vm_rss),
            c.kib_per_agent(),
            TARGET_KIB_PER_AGENT,
            c.idle_cpu,
            c.loaded_cpu,
        );
    }
    println!(
        "(connect: first TCP connect to last welcome; hs: one agent's connect to welcome; RSS N and CPU N {SETTLE_HEARTBEATS} \
         heartbeats after the last fingerprint; CPU over {}s as % of one core; target: KiB/agent < {TARGET_KIB_PER_AGENT:.0})",
        CPU_WINDOW.as_secs()
    );
    for c in cases {
        println!(
            "\n{} agents: {} welcomes counted, {} fingerprint updates, {} heartbeats, {} closed by the daemon; \
             anon {:.1} KiB/agent; daemon threads {} idle, {} loaded; VmHWM {:.1} MiB; RSS after every agent closed \
             {:.1} MiB; tokens written in {:.2} s",
            c.agents,
            c.welcomed,
            c.fingerprints,
            c.heartbeats,
            c.closed,
            c.anon_kib_per_agent(),
            c.idle.threads,
            c.loaded.threads,
            mib(c.loaded.vm_hwm),
            mib(c.after_close.vm_rss),
            c.tokens_s,
        );
    }
    build::write_json("agent_scale", &to_json(profile, parallel, cases))
}

fn memory(m: &Memory) -> Value {
    json!({
        "vm_rss_kib": m.vm_rss,
        "vm_hwm_kib": m.vm_hwm,
        "rss_anon_kib": m.rss_anon,
        "rss_file_kib": m.rss_file,
        "threads": m.threads,
    })
}

fn to_json(profile: &str, parallel: usize, cases: &[Case]) -> Value {
    let results: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "agents": c.agents,
                "welcomes_counted": c.welcomed,
                "fingerprint_updates": c.fingerprints,
                "heartbeats": c.heartbeats,
                "closed_by_daemon": c.closed,
                "tokens_written_s": c.tokens_s,
                "connect_all_s": c.connect_s,
                "handshake_ms": {
                    "median": build::median(&c.handshake_ms),
                    "p99": quantile(&c.handshake_ms, 0.99),
                    "max": quantile(&c.handshake_ms, 1.0),
                },
                "idle": memory(&c.idle),
                "loaded": memory(&c.loaded),
                "after_close": memory(&c.after_close),
                "kib_per_agent": c.kib_per_agent(),
                "anon_kib_per_agent": c.anon_kib_per_agent(),
                "target_kib_per_agent": TARGET_KIB_PER_AGENT,
                "target_met": c.target_met(),
                "cpu_percent_of_one_core": { "idle": c.idle_cpu, "loaded": c.loaded_cpu },
            })
        })
        .collect();
    json!({
        "profile": profile,
        "heartbeat_interval_s": HEARTBEAT.as_secs(),
        "settle_heartbeats": SETTLE_HEARTBEATS,
        "cpu_window_s": CPU_WINDOW.as_secs(),
        "connect_parallel": parallel,
        "results": results,
    })
}
