//! The figures: medians, the table printed at the end, and the JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Measured, STATIC_FILES, Steps, Tool, WARMUP};

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) { (v[mid - 1] + v[mid]) / 2.0 } else { v[mid] }
}

fn medians(steps: &Steps) -> BTreeMap<&str, f64> {
    steps.iter().map(|(name, values)| (name.as_str(), median(values))).collect()
}

/// Step names in pipeline order; the script's own steps sit where they happen.
const STEP_ORDER: &[&str] = &[
    "fetch",
    "extract",
    "export",
    "connect",
    "precheck",
    "stage",
    "persist",
    "preflight",
    "swap",
    "up",
    "verify",
    "health",
    "cleanup",
    "close",
];

pub(crate) fn report(results: &[Measured], runs: usize) -> anyhow::Result<()> {
    let files = STATIC_FILES.len() + 2;
    println!("\ndeploy of {files} files, {WARMUP} warm-up + {runs} measured runs per tool, tools taking turns");
    println!(
        "{:>5} {:>7} {:>10} {:>10} {:>14} {:>14} {:>21}",
        "hosts", "workers", "deeplo", "script", "script/deeplo", "script+checks", "script+checks/deeplo"
    );
    for m in results {
        let [d, s, c] = m.tools.each_ref().map(|f| median(&f.ms));
        println!(
            "{:>5} {:>7} {:>7.0} ms {:>7.0} ms {:>14.2} {:>11.0} ms {:>21.2}",
            m.hosts,
            m.workers,
            d,
            s,
            s / d,
            c,
            c / d
        );
    }
    println!("(medians of the wall time of one deploy to every host; a ratio above 1 means deeplo is faster)");
    for m in results {
        let columns = m.tools.each_ref().map(|f| medians(&f.steps));
        println!("\nper-step medians, {} host(s), over every host and run (ms)", m.hosts);
        println!("{:<10} {:>8} {:>8} {:>14}", "step", "deeplo", "script", "script+checks");
        let cell =
            |c: &BTreeMap<&str, f64>, step: &str| c.get(step).map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        for step in STEP_ORDER {
            if columns.iter().any(|c| c.contains_key(step)) {
                let [d, s, c] = columns.each_ref().map(|c| cell(c, step));
                println!("{step:<10} {d:>8} {s:>8} {c:>14}");
            }
        }
    }
    let json = json!({
        "warmup": WARMUP,
        "runs": runs,
        "files": files,
        "results": results.iter().map(|m| {
            let tools: serde_json::Map<String, serde_json::Value> = Tool::ALL
                .iter()
                .zip(&m.tools)
                .map(|(tool, f)| {
                    let figures = json!({
                        "runs_ms": f.ms,
                        "median_ms": median(&f.ms),
                        "step_median_ms": medians(&f.steps),
                    });
                    (tool.name().to_owned(), figures)
                })
                .collect();
            let deeplo = median(&m.tools[0].ms);
            json!({
                "hosts": m.hosts,
                "engine_workers": m.workers,
                "tools": tools,
                "ratio_script_over_deeplo": median(&m.tools[1].ms) / deeplo,
                "ratio_script_checks_over_deeplo": median(&m.tools[2].ms) / deeplo,
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
