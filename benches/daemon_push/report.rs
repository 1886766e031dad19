//! The figures: medians, the table printed at the end, and the JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::build::median;
use super::{Case, GO_IDLE_RSS_MIB, IDLE, Memory, POLL_INTERVAL, ProcStatus, REFERENCES, Reference, WARMUP};

fn reference(hosts: usize) -> Option<Reference> {
    REFERENCES.iter().copied().find(|r| r.hosts == hosts)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Phase names in the order they happen (steps as the pipeline runs them).
const PHASE_ORDER: &[&str] = &[
    "detected (from commit)",
    "fetch",
    "extract",
    "connect",
    "precheck",
    "stage",
    "persist",
    "preflight",
    "swap",
    "up",
    "up done (from commit)",
    "verify",
    "health",
    "cleanup",
    "finished (from commit)",
];

pub(crate) fn report(binary: &str, runs: usize, cases: &[Case], memory: Option<&Memory>) -> anyhow::Result<()> {
    println!(
        "\ncommit -> new version served, deeplo daemon polling every {POLL_INTERVAL} (binary: {binary}), \
         {WARMUP} warm-up + {runs} measured runs"
    );
    println!(
        "{:>5} {:>10} {:>10} {:>13} {:>10} {:>10} {:>8}",
        "hosts", "deeplo", "floor", "deeplo-floor", "Go tool", "deeplo/Go", "target"
    );
    for case in cases {
        let (d, f) = (median(&case.deeplo_ms), median(&case.floor_ms));
        let (go, ratio, target) = match reference(case.hosts) {
            Some(r) => {
                let verdict = if d / r.go_ms <= r.target_ratio { "met" } else { "MISSED" };
                (
                    format!("{:.0} ms", r.go_ms),
                    format!("{:.2}", d / r.go_ms),
                    format!("<={:.2} {verdict}", r.target_ratio),
                )
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!("{:>5} {d:>7.0} ms {f:>7.0} ms {:>10.0} ms {go:>10} {ratio:>10} {target:>8}", case.hosts, d - f);
    }
    println!("(medians; floor: the same change by hand, `docker compose up` per host at once; Go tool: constants)");
    for case in cases {
        println!("\ndeeplo's phases, {} host(s), medians over every host and run (ms)", case.hosts);
        let known = PHASE_ORDER.iter().copied().filter(|name| case.phases.contains_key(*name));
        let others = case.phases.keys().map(String::as_str).filter(|name| !PHASE_ORDER.contains(name));
        for name in known.chain(others) {
            println!("{name:<24} {:>7.0}", median(&case.phases[name]));
        }
    }
    if let Some(m) = memory {
        let rss = mib(m.idle.vm_rss);
        let verdict = if rss <= GO_IDLE_RSS_MIB { "met" } else { "MISSED" };
        println!(
            "\nidle daemon (1 repo, 1 host, 1 project; deployed once, then {}s idle): VmRSS {rss:.1} MiB \
             (anon {:.1}, file {:.1}), VmHWM {:.1} MiB, {} threads; Go tool {GO_IDLE_RSS_MIB:.0} MiB, target <= that: {verdict}",
            IDLE.as_secs(),
            mib(m.idle.rss_anon),
            mib(m.idle.rss_file),
            mib(m.idle.vm_hwm),
            m.idle.threads,
        );
        println!(
            "after the measured runs: VmRSS {:.1} MiB, VmHWM {:.1} MiB, {} threads",
            mib(m.after_runs.vm_rss),
            mib(m.after_runs.vm_hwm),
            m.after_runs.threads
        );
    } else {
        println!("\nidle memory: not measured (it is read in the 1-host case)");
    }
    write_json(&to_json(binary, runs, cases, memory))
}

fn to_json(binary: &str, runs: usize, cases: &[Case], memory: Option<&Memory>) -> Value {
    let results: Vec<Value> = cases
        .iter()
        .map(|case| {
            let (d, f) = (median(&case.deeplo_ms), median(&case.floor_ms));
            let phases: BTreeMap<&str, f64> = case.phases.iter().map(|(k, v)| (k.as_str(), median(v))).collect();
            let go = reference(case.hosts).map(|r| {
                json!({
                    "go_ms": r.go_ms,
                    "ratio_deeplo_over_go": d / r.go_ms,
                    "target_ratio": r.target_ratio,
                    "target_met": d / r.go_ms <= r.target_ratio,
                })
            });
            json!({
                "hosts": case.hosts,
                "max_workers": case.hosts,
                "deeplo": { "runs_ms": case.deeplo_ms, "median_ms": d },
                "floor": { "runs_ms": case.floor_ms, "median_ms": f },
                "deeplo_minus_floor_ms": d - f,
                "go_tool": go,
                "deeplo_phase_median_ms": phases,
            })
        })
        .collect();
    let status = |s: &ProcStatus| {
        json!({
            "vm_rss_kib": s.vm_rss,
            "vm_hwm_kib": s.vm_hwm,
            "rss_anon_kib": s.rss_anon,
            "rss_file_kib": s.rss_file,
            "threads": s.threads,
        })
    };
    let memory = memory.map(|m| {
        json!({
            "idle_seconds": IDLE.as_secs(),
            "idle": status(&m.idle),
            "after_runs": status(&m.after_runs),
            "go_tool_mib": GO_IDLE_RSS_MIB,
            "target_met": mib(m.idle.vm_rss) <= GO_IDLE_RSS_MIB,
        })
    });
    json!({
        "binary": binary,
        "poll_interval": POLL_INTERVAL,
        "warmup": WARMUP,
        "runs": runs,
        "results": results,
        "idle_memory": memory,
    })
}

fn write_json(json: &Value) -> anyhow::Result<()> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("daemon_push.json");
    std::fs::write(&path, serde_json::to_string_pretty(json)? + "\n")?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
