//! What the agent benches share: the binaries they run, built with the bench's own profile,
//! their settings from the environment, and where their JSON goes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

/// Builds `bin` of `package` with the profile this bench was built with (a no-op when it is
/// up to date) and returns the executable cargo names. It lands next to this bench's
/// `deps` directory, where [`deeplo_testbed::agent::agent_binary`] looks for the agent.
pub(crate) fn build(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let profile = bench_profile()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    eprintln!("building {package}'s {bin} binary ({profile} profile)");
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin, "--profile", &profile])
        .args(["--message-format", "json-render-diagnostics", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo build")?;
    if !out.status.success() {
        bail!("cargo build -p {package} --bin {bin} --profile {profile} failed ({})", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo build named no {bin} executable"))
}

/// The cargo profile of this bench binary, from its directory (`target/<dir>/deps/`):
/// `debug` is the dev profile, any other directory is named after its profile.
pub(crate) fn bench_profile() -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .with_context(|| format!("no profile directory above {}", exe.display()))?;
    Ok(if dir == "debug" { "dev".into() } else { dir.into() })
}

/// `name` as a number, `default` when it is unset or empty.
pub(crate) fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

/// The median of `values` (NaN for none).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) { (v[mid - 1] + v[mid]) / 2.0 } else { v[mid] }
}

/// Writes `json` to `<target dir>/bench/<name>.json` and says where.
pub(crate) fn write_json(name: &str, json: &Value) -> anyhow::Result<()> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(json)? + "\n")?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
