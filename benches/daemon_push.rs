//! The `deeplo daemon` from a push to the new version being served, against the same change
//! brought up by hand, and the daemon's idle memory.
//!
//! Why: what a user of a push-to-deploy daemon waits for is the time between `git push` and
//! the new version answering, and the Go tool of the same name sets the bar: 3.45 s to one
//! host and 6.0 s to five, measured earlier on this kind of machine (it cannot run here, so
//! those are constants). deeplo's targets are at most 0.60x and 0.50x of them. The floor
//! shows how much of deeplo's time is Docker's own: the same change applied by hand, with
//! no deeplo at all, one local `docker compose up --detach --force-recreate` per host (all
//! at once), timed to serving the same way. deeplo - floor is what deeplo adds (polling,
//! git, SSH, staging, checks).
//!
//! The daemon is the real binary (`deeplo daemon`, built by this bench with its profile,
//! or `DEEPLO_BIN`), with the repository in poll mode every 200 ms and
//! `DEEPLO_MAX_WORKERS` set to the host count. Each run commits a new `www/index.html` to
//! the watched repository and sends `GET /` to the project's busybox httpd on every host
//! (a request every 20 ms, overlapping) until each answers the new content; the floor's
//! runs take turns with deeplo's. One host is an sshd on this machine's engine; with five,
//! each host is an sshd whose sessions use an engine of their own (`testbed::engines`,
//! `SetEnv DOCKER_HOST=`), as five servers would, and whose httpd listens on a port of its
//! own (`SetEnv WEB_PORT=`; host networking, see `bed::compose_yaml` for why).
//!
//! The idle memory is the daemon's `VmRSS` (`/proc/PID/status`) with one repository, one
//! host and one project, after its first deploy and 5 s of idling (polling goes on); the
//! Go tool's is 16 MiB.
//!
//! `DEEPLO_BENCH_RUNS` (default 5) sets the measured runs per host count, after one warm-up
//! (the median is reported); `DEEPLO_BENCH_HOSTS` the host counts (default `1,5`). The
//! figures also go to `<target dir>/bench/daemon_push.json`.
//!
//! `cargo bench -p deeplo-testbed --bench daemon_push` (needs Docker, sshd, git, curl; root
//! for the extra engines of the five-host case). To check it quickly:
//! `DEEPLO_BENCH_RUNS=1 cargo bench -p deeplo-testbed --bench daemon_push --profile dev`.

#[path = "daemon_push/bed.rs"]
mod bed;
#[path = "shared/build.rs"]
#[allow(dead_code, reason = "this bench uses only some of the shared helpers")]
mod build;
#[path = "daemon_push/probe.rs"]
mod probe;
#[path = "daemon_push/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deeplo_testbed::daemon::{DaemonProcess, wait_for};
use deeplo_testbed::scenario;
use jiff::Timestamp;
use serde_json::Value;

use bed::Bed;

const WARMUP: usize = 1;
const POLL_INTERVAL: &str = "200ms";
const PROJECT: &str = "daemon-push";
/// The floor's compose project, beside deeplo's on the same engines.
const FLOOR_PROJECT: &str = "daemon-push-floor";
const SUBDIR: &str = "deploy";
const MAX_HOSTS: usize = 5;
/// How long a deploy may take to be served (and recorded) before the bench gives up.
const SERVE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the daemon idles after its first deploy before its memory is read.
const IDLE: Duration = Duration::from_secs(5);

/// The project's files besides compose.yml (www/index.html changes every run).
const STATIC_FILES: &[(&str, &str)] = &[
    ("www/style.css", "body { font-family: sans-serif; margin: 2em; }\n"),
    ("www/app.js", "document.title = 'deeplo bench';\n"),
    ("www/about.html", "<h1>About</h1>\n"),
];

/// The Go tool's push-to-served time at a host count, and deeplo's target as a fraction of it.
#[derive(Debug, Clone, Copy)]
struct Reference {
    hosts: usize,
    go_ms: f64,
    target_ratio: f64,
}

const REFERENCES: &[Reference] = &[
    Reference { hosts: 1, go_ms: 3450.0, target_ratio: 0.60 },
    Reference { hosts: 5, go_ms: 6000.0, target_ratio: 0.50 },
];

/// The Go tool's idle RSS, which is also deeplo's target.
const GO_IDLE_RSS_MIB: f64 = 16.0;

/// Phase times of deeplo's runs: name -> ms (one per host per run), measured from the commit
/// (`detected`, `up done`, `finished`) or as step durations.
type Phases = BTreeMap<String, Vec<f64>>;

/// The figures of one host count.
struct Case {
    hosts: usize,
    deeplo_ms: Vec<f64>,
    floor_ms: Vec<f64>,
    phases: Phases,
}

/// Lines of `/proc/PID/status` about memory, in KiB, and the thread count.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStatus {
    vm_rss: u64,
    vm_hwm: u64,
    rss_anon: u64,
    rss_file: u64,
    threads: u64,
}

/// The daemon's memory idle after its first deploy, and after the measured runs.
struct Memory {
    idle: ProcStatus,
    after_runs: ProcStatus,
}

/// The deeplo binary and what it is (the profile it was built with, or where it came from).
struct Binary {
    path: PathBuf,
    description: String,
}

fn main() -> anyhow::Result<()> {
    let runs = env_number("DEEPLO_BENCH_RUNS", 5)?.max(1);
    let counts = host_counts()?;
    let work = tempfile::Builder::new().prefix("deeplo-bench-bin-").tempdir()?;
    let binary = deeplo_binary(work.path())?;
    scenario::ensure_image()?;
    let mut cases = Vec::new();
    let mut memory = None;
    for hosts in counts {
        eprintln!("{hosts} host(s): starting the hosts");
        let bed = Bed::start(hosts).with_context(|| format!("start the test bed for {hosts} host(s)"))?;
        eprintln!("{hosts} host(s): {WARMUP} warm-up + {runs} measured runs, deeplo and the floor taking turns");
        let (case, mem) = measure(&bed, &binary.path, runs)?;
        cases.push(case);
        memory = memory.or(mem);
    }
    report::report(&binary.description, runs, &cases, memory.as_ref())
}

/// Starts the daemon on `bed`, waits for its first deploy, reads its idle memory (one host
/// only), then times `WARMUP + runs` pushes of deeplo and of the floor.
fn measure(bed: &Bed, bin: &Path, runs: usize) -> anyhow::Result<(Case, Option<Memory>)> {
    let hosts = bed.hosts();
    let workers = hosts.to_string();
    let env = [("DEEPLO_MAX_WORKERS", workers.as_str()), ("DEEPLO_LOG_LEVEL", "info")];
    let daemon = DaemonProcess::start(bin, &bed.scenario, &bed.config_yaml(), &env)?;
    let (sha, content) = &bed.first;
    bed.wait_deeplo(content, || Ok(()))
        .with_context(|| format!("the first deploy was not served; the daemon's log:\n{}", daemon.log()))?;
    wait_recorded(&daemon, sha, hosts)?;
    bed.check_engines()?;
    let idle = if hosts == 1 {
        std::thread::sleep(IDLE);
        Some(proc_status(&daemon)?)
    } else {
        None
    };
    let mut case = Case { hosts, deeplo_ms: Vec::new(), floor_ms: Vec::new(), phases: Phases::new() };
    for run in 0..WARMUP + runs {
        let measured = run >= WARMUP;
        let label = if measured { "" } else { " (warm-up)" };
        // Take turns at going first, so that neither always finds a warmer machine.
        for turn in 0..2 {
            if (run + turn) % 2 == 0 {
                let (sha, content) = bed.commit()?;
                let committed = Timestamp::now();
                let clock = Instant::now();
                bed.wait_deeplo(&content, || Ok(()))
                    .with_context(|| format!("run {run} was not served; the daemon's log:\n{}", daemon.log()))?;
                let ms = clock.elapsed().as_secs_f64() * 1e3;
                let records = wait_recorded(&daemon, &sha, hosts)?;
                eprintln!("  run {run}{label} deeplo: {ms:.0} ms");
                if measured {
                    case.deeplo_ms.push(ms);
                    add_phases(&mut case.phases, committed, &records);
                }
            } else {
                let ms = bed.floor_push(run)?;
                eprintln!("  run {run}{label} floor: {ms:.0} ms");
                if measured {
                    case.floor_ms.push(ms);
                }
            }
        }
    }
    let memory = match idle {
        Some(idle) => Some(Memory { idle, after_runs: proc_status(&daemon)? }),
        None => None,
    };
    Ok((case, memory))
}

/// Waits until the daemon has recorded a succeeded run of `sha` on each of `hosts`; returns
/// those records (from `deeplo deploys history -o json`).
fn wait_recorded(daemon: &DaemonProcess, sha: &str, hosts: usize) -> anyhow::Result<Vec<Value>> {
    let mut done = Vec::new();
    let mut failed = None;
    let outcome = wait_for(SERVE_TIMEOUT, || {
        let out = daemon.cli(&["deploys", "history", "--limit", "100", "-o", "json"]);
        let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
        let mine: Vec<Value> = records.into_iter().filter(|r| r["commit"] == sha).collect();
        if let Some(bad) = mine.iter().find(|r| r["status"] == "failed") {
            failed = Some(bad.clone());
            return true;
        }
        let finished = mine.len() == hosts && mine.iter().all(|r| r["status"] == "succeeded");
        if finished {
            done = mine;
        }
        finished
    });
    if let Some(bad) = failed {
        bail!("the deploy of {sha} failed: {bad:#}\nthe daemon's log:\n{}", daemon.log());
    }
    if outcome.is_err() {
        bail!("no succeeded run of {sha} on {hosts} host(s) within {SERVE_TIMEOUT:?}; the log:\n{}", daemon.log());
    }
    Ok(done)
}

/// Where deeplo's time went on each host: from the commit to the run's creation (the poll
/// saw it), each step, and from the commit to the end of `up` and of the run.
fn add_phases(phases: &mut Phases, committed: Timestamp, records: &[Value]) {
    let since_commit = |value: &Value| -> Option<f64> {
        let at: Timestamp = value.as_str()?.parse().ok()?;
        Some(at.duration_since(committed).as_secs_f64() * 1e3)
    };
    for record in records {
        let mut push = |name: &str, ms: Option<f64>| {
            if let Some(ms) = ms {
                phases.entry(name.to_owned()).or_default().push(ms);
            }
        };
        push("detected (from commit)", since_commit(&record["created_at"]));
        for step in record["steps"].as_array().into_iter().flatten() {
            let name = step["name"].as_str().unwrap_or("?");
            let duration = step["duration_ms"].as_f64();
            push(name, duration);
            if name == "up" {
                let end = since_commit(&step["started_at"]).zip(duration).map(|(start, d)| start + d);
                push("up done (from commit)", end);
            }
        }
        push("finished (from commit)", since_commit(&record["finished_at"]));
    }
}

fn proc_status(daemon: &DaemonProcess) -> anyhow::Result<ProcStatus> {
    let pid = daemon.pid().context("the daemon is not running")?;
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let mut status = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let number = value.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        match key {
            "VmRSS" => status.vm_rss = number,
            "VmHWM" => status.vm_hwm = number,
            "RssAnon" => status.rss_anon = number,
            "RssFile" => status.rss_file = number,
            "Threads" => status.threads = number,
            _ => {}
        }
    }
    if status.vm_rss == 0 {
        bail!("no VmRSS in {path} (has the daemon exited?):\n{text}");
    }
    Ok(status)
}

/// `DEEPLO_BIN`, else the `deeplo` binary of `deeplo-cli` built now with the profile this
/// bench was built with, copied into `work` (other builds sharing the target directory may
/// replace the original while the bench runs).
fn deeplo_binary(work: &Path) -> anyhow::Result<Binary> {
    if let Some(path) = std::env::var_os("DEEPLO_BIN") {
        let description = format!("DEEPLO_BIN={}", path.to_string_lossy());
        return Ok(Binary { path: path.into(), description });
    }
    let profile = build::bench_profile()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    eprintln!("building deeplo-cli's deeplo binary ({profile} profile)");
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", "deeplo-cli", "--bin", "deeplo", "--profile", &profile])
        .args(["--message-format", "json-render-diagnostics", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo build")?;
    if !out.status.success() {
        bail!("cargo build -p deeplo-cli --bin deeplo failed ({}); or set DEEPLO_BIN to a deeplo binary", out.status);
    }
    let built = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "deeplo")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build named no deeplo executable")?;
    let path = work.join("deeplo");
    std::fs::copy(&built, &path).with_context(|| format!("copy {}", built.display()))?;
    Ok(Binary { path, description: format!("{profile} profile") })
}

/// The host counts to measure: `DEEPLO_BENCH_HOSTS` (such as `5` or `1,5`), else 1 and 5.
fn host_counts() -> anyhow::Result<Vec<usize>> {
    let Ok(list) = std::env::var("DEEPLO_BENCH_HOSTS") else { return Ok(vec![1, MAX_HOSTS]) };
    list.split(',')
        .map(|n| match n.trim().parse() {
            Ok(n) if (1..=MAX_HOSTS).contains(&n) => Ok(n),
            _ => bail!("DEEPLO_BENCH_HOSTS={list:?}: expected host counts from 1 to {MAX_HOSTS}, such as \"1,5\""),
        })
        .collect()
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}
