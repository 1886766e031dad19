//! The figures: medians, the tables printed at the end, and the JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::build::median;
use super::{Measured, Steps, Tool, WARMUP};

/// deeplo's wall time over the script's should be at most this.
const RATIO_TARGET: f64 = 0.90;
/// deeplo's wall time minus the floor's, on 1 host, should be at most this (ms).
const FLOOR_GAP_TARGET_MS: f64 = 500.0;

/// Step names of every tool in the order they happen; a name not here (a step a tool adds
/// later, `rollback:` steps) is listed after them, never dropped.
const STEP_ORDER: &[&str] = &[
    "fetch",     // deeplo: the commit into the mirror
    "extract",   // deeplo: the project's files read from it
    "archive",   // script, floor: `git archive`, once for all hosts
    "connect",   // deeplo, script
    "precheck",  // deeplo before its pipeline's rewrite
    "stage",     // the files into the staging directory
    "persist",   // `.env` kept from the live directory
    "preflight", // `compose config`
    "swap",      // live -> old, staging -> live
    "up",        // `compose up`
    "verify",    // script, floor: `compose ps` shows a running container
    "health",    // deeplo: the health gate
    "cleanup",   // old removed
    "close",     // script: the ControlMaster closed
];

fn medians(steps: &Steps) -> BTreeMap<&str, f64> {
    steps.iter().map(|(name, values)| (name.as_str(), median(values))).collect()
}

/// The steps any tool reported: those of [`STEP_ORDER`] in its order, then the others.
fn step_names(m: &Measured) -> Vec<&str> {
    let mut names: Vec<&str> =
        STEP_ORDER.iter().copied().filter(|s| m.tools.iter().any(|f| f.steps.contains_key(*s))).collect();
    let mut others: Vec<&str> =
        m.tools.iter().flat_map(|f| f.steps.keys()).map(String::as_str).filter(|s| !STEP_ORDER.contains(s)).collect();
    others.sort_unstable();
    others.dedup();
    names.extend(others);
    names
}

/// The three medians of a case, indexed like [`Tool::ALL`] (NaN for a tool not run).
fn wall_medians(m: &Measured) -> [f64; 3] {
    m.tools.each_ref().map(|f| median(&f.ms))
}

fn ratio(m: &Measured) -> f64 {
    let w = wall_medians(m);
    w[Tool::Deeplo.index()] / w[Tool::Script.index()]
}

fn floor_gap(m: &Measured) -> f64 {
    let w = wall_medians(m);
    w[Tool::Deeplo.index()] - w[Tool::Floor.index()]
}

/// `ok` or `over` when the target applies, nothing otherwise.
fn verdict(value: f64, target: Option<f64>) -> &'static str {
    match target {
        Some(_) if value.is_nan() => "",
        Some(t) if value <= t => "ok",
        Some(_) => "over",
        None => "",
    }
}

fn floor_gap_target(m: &Measured) -> Option<f64> {
    (m.case.hosts == 1).then_some(FLOOR_GAP_TARGET_MS)
}

fn ms_cell(v: f64) -> String {
    if v.is_nan() { "-".to_owned() } else { format!("{v:.0} ms") }
}

pub(crate) fn report(results: &[Measured], runs: usize) -> anyhow::Result<()> {
    println!("\ndeploys, {WARMUP} warm-up + {runs} measured runs per tool, tools taking turns");
    println!(
        "{:<10} {:>5} {:>5} {:>7} {:>10} {:>10} {:>10} {:>15} {:>15}",
        "case", "hosts", "files", "workers", "deeplo", "script", "floor", "deeplo/script", "deeplo-floor"
    );
    for m in results {
        let [d, s, f] = wall_medians(m).map(ms_cell);
        let r = ratio(m);
        let ratio_cell = if r.is_nan() { "-".to_owned() } else { format!("{r:.2} {}", verdict(r, Some(RATIO_TARGET))) };
        let g = floor_gap(m);
        let gap_cell =
            if g.is_nan() { "-".to_owned() } else { format!("{g:.0} ms {}", verdict(g, floor_gap_target(m))) };
        println!(
            "{:<10} {:>5} {:>5} {:>7} {d:>10} {s:>10} {f:>10} {:>15} {:>15}",
            m.case.name,
            m.case.hosts,
            m.case.files,
            m.workers,
            ratio_cell.trim_end(),
            gap_cell.trim_end()
        );
    }
    println!(
        "(medians of the wall time of one deploy to every host; targets: deeplo/script <= {RATIO_TARGET:.2}, \
         deeplo-floor <= {FLOOR_GAP_TARGET_MS:.0} ms on 1 host)"
    );
    for m in results {
        let columns = m.tools.each_ref().map(|f| medians(&f.steps));
        println!(
            "\nper-step medians, case {} ({} host(s), {} files), over every host and run (ms)",
            m.case.name, m.case.hosts, m.case.files
        );
        println!("{:<12} {:>8} {:>8} {:>8}", "step", "deeplo", "script", "floor");
        let cell =
            |c: &BTreeMap<&str, f64>, step: &str| c.get(step).map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        for step in step_names(m) {
            let [d, s, f] = columns.each_ref().map(|c| cell(c, step));
            println!("{step:<12} {d:>8} {s:>8} {f:>8}");
        }
    }
    write_json(results, runs)
}

fn write_json(results: &[Measured], runs: usize) -> anyhow::Result<()> {
    let json = json!({
        "warmup": WARMUP,
        "runs": runs,
        "targets": {
            "deeplo_over_script_max": RATIO_TARGET,
            "deeplo_minus_floor_max_ms_on_1_host": FLOOR_GAP_TARGET_MS,
        },
        "results": results.iter().map(|m| {
            let tools: serde_json::Map<String, serde_json::Value> = Tool::ALL
                .iter()
                .zip(&m.tools)
                .filter(|(_, f)| !f.ms.is_empty())
                .map(|(tool, f)| {
                    let figures = json!({
                        "runs_ms": f.ms,
                        "median_ms": median(&f.ms),
                        "step_median_ms": medians(&f.steps),
                    });
                    (tool.name().to_owned(), figures)
                })
                .collect();
            json!({
                "case": m.case.name,
                "hosts": m.case.hosts,
                "files": m.case.files,
                "engine_workers": m.workers,
                "tools": tools,
                "ratio_deeplo_over_script": ratio(m),
                "deeplo_minus_floor_ms": floor_gap(m),
            })
        }).collect::<Vec<_>>(),
    });
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("deploy_vs_openssh.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
