//! The `deeplo daemon` holding thousands of idle runner agents: its memory per connection,
//! its CPU at rest, and how long the agents take to connect.
//!
//! Why: an agent keeps one WebSocket open to the daemon for as long as its server lives,
//! so what an idle connection costs the daemon is what a fleet costs it. The target is
//! under 64 KiB of daemon memory per idle agent (5,000 agents in under 320 MiB), with the
//! CPU at rest close to the idle daemon's.
//!
//! The daemon is the real binary (`deeplo daemon`, built by this bench with its profile),
//! started with a config that deploys nothing and a fresh data directory that already holds one runner
//! token per agent, written as one token document before the daemon starts (issuing them
//! one by one through `RunnerTokenStore::issue` rewrites the whole document each time).
//! The agents are simulated in this process (`agent_scale/swarm.rs`): each one a
//! tokio-tungstenite client that upgrades on `/agent/v1/connect` with its bearer token,
//! sends a `Hello` with a realistic fingerprint, reads the `Welcome`, then sends a
//! `Heartbeat` every interval the welcome gives (`DEEPLO_AGENT_HEARTBEAT_INTERVAL`, 10 s
//! here as by default) and one `FingerprintUpdate` with its first heartbeat. They connect
//! at most `DEEPLO_BENCH_CONNECT_PARALLEL` (default 64) handshakes at a time, so that the
//! listener's backlog is never overrun. The open-file limit of this process (which the
//! daemon inherits) is raised to the largest agent count plus 1,024.
//!
//! For each agent count, on a daemon of its own:
//!
//! - idle: 2 s after the daemon is healthy, its `VmRSS` (`/proc/PID/status`) and its CPU
//!   (`utime + stime` of `/proc/PID/stat`) over a 10 s window, as a percentage of one
//!   core. This is the baseline, measured in the same run.
//! - connect: the time from the first TCP connect to the last welcome, and each agent's
//!   handshake (connect to welcome), median and 99th percentile.
//! - loaded: once every agent is welcomed and has sent its fingerprint, 3 heartbeat
//!   intervals later, the `VmRSS` and the CPU over the same 10 s window. Memory per agent
//!   = (loaded - idle) / N; the target is met below 64 KiB.
//! - after close: every agent closes; `VmRSS` 2 s later (what the daemon keeps).
//!
//! The daemon's `/metrics` and admin API give no count of connected agents (only the
//! configured hosts'), so the bench counts the welcomes its agents received, and checks
//! that the daemon closed none of them while they idled.
//!
//! Measured on a 2-core machine (release): 1,000 agents connected in 0.3 s and cost 22.9
//! KiB each; 5,000 connected in 5.6 s and cost 58.5 KiB each (the target is met at both);
//! CPU at rest 0.7% and 2.5% of one core, the idle daemon's 0.0 to 0.1%. Before the runner
//! token store kept its document in memory, every handshake parsed the whole document:
//! 5,000 agents took 84.7 s and cost 132 KiB each.
//!
//! `DEEPLO_BENCH_AGENTS` sets the agent counts (default `1000,5000`). The figures also go
//! to `<target dir>/bench/agent_scale.json`.
//!
//! `cargo bench -p deeplo-testbed --bench agent_scale` (Linux; no Docker or sshd needed).
//! To check it quickly: `DEEPLO_BENCH_AGENTS=100 cargo bench -p deeplo-testbed --bench
//! agent_scale --profile dev`.

#[path = "shared/build.rs"]
mod build;
#[path = "agent_scale/procfs.rs"]
mod procfs;
#[path = "agent_scale/report.rs"]
mod report;
#[path = "agent_scale/swarm.rs"]
mod swarm;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deeplo_core::model::HostName;
use deeplo_core::runner_token::{DOCUMENT, RunnerTokenRecord, RunnerTokens};
use deeplo_core::{FileStore, RunnerToken, RunnerTokenStore, Store};
use deeplo_testbed::GitRepo;
use deeplo_testbed::daemon::DaemonProcess;
use jiff::Timestamp;

use procfs::Memory;
use swarm::{Credential, Swarm};

const DEFAULT_AGENTS: &str = "1000,5000";
/// The heartbeat interval the daemon gives its agents (its default).
const HEARTBEAT: Duration = Duration::from_secs(10);
const HEARTBEAT_ALLOWANCE: &str = "3";
/// How long the daemon idles after its start before the baseline is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// Heartbeat intervals between the last fingerprint and the loaded readings.
const SETTLE_HEARTBEATS: u32 = 3;
/// The window over which CPU is measured.
const CPU_WINDOW: Duration = Duration::from_secs(10);
/// How long after the agents close the last memory is read.
const CLOSE_SETTLE: Duration = Duration::from_secs(2);
/// The target: daemon memory per idle agent.
const TARGET_KIB_PER_AGENT: f64 = 64.0;
/// A daemon that deploys nothing: the config needs a host and a repository, but no
/// project uses them. The host is none of the agents' (their tokens need no entry).
fn config_yaml(repo: &Path) -> String {
    format!(
        "hosts:\n  - name: configured-host\n    transport: agent\n    deploy_dir: /srv/deeplo\n\
         repos:\n  - name: app\n    url: {}\n    branch: main\nprojects: []\n",
        repo.display()
    )
}

/// The figures of one agent count.
#[derive(Debug)]
struct Case {
    agents: usize,
    idle: Memory,
    idle_cpu: f64,
    loaded: Memory,
    loaded_cpu: f64,
    after_close: Memory,
    tokens_s: f64,
    connect_s: f64,
    handshake_ms: Vec<f64>,
    welcomed: usize,
    fingerprints: usize,
    heartbeats: usize,
    closed: usize,
}

fn main() -> anyhow::Result<()> {
    let counts = agent_counts()?;
    let parallel = build::env_number("DEEPLO_BENCH_CONNECT_PARALLEL", 64)?.max(1);
    let most = counts.iter().copied().max().unwrap_or(0) as u64;
    let open_files = procfs::raise_open_files(most + 1024)?;
    let work = tempfile::Builder::new().prefix("deeplo-bench-bin-").tempdir()?;
    let built = build::build("deeplo-cli", "deeplo")?;
    let bin = work.path().join("deeplo");
    // Other builds sharing the target directory may replace the original while this runs.
    std::fs::copy(&built, &bin).with_context(|| format!("copy {}", built.display()))?;
    let profile = build::bench_profile()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut cases = Vec::new();
    for agents in counts {
        eprintln!("{agents} agents: a daemon of their own, {parallel} handshakes at a time");
        cases.push(measure(&rt, &bin, agents, parallel).with_context(|| format!("the case of {agents} agents"))?);
    }
    report::report(&profile, parallel, open_files, &cases)
}

fn measure(rt: &tokio::runtime::Runtime, bin: &Path, agents: usize, parallel: usize) -> anyhow::Result<Case> {
    let dir = tempfile::Builder::new().prefix("deeplo-bench-agents-").tempdir()?;
    let data = dir.path().join("data");
    let clock = Instant::now();
    let credentials = rt.block_on(issue_tokens(&data, agents))?;
    let tokens_s = clock.elapsed().as_secs_f64();
    let interval = format!("{}s", HEARTBEAT.as_secs());
    let env = [
        ("DEEPLO_AGENT_HEARTBEAT_INTERVAL", interval.as_str()),
        ("DEEPLO_AGENT_HEARTBEAT_ALLOWANCE", HEARTBEAT_ALLOWANCE),
        ("DEEPLO_LOG_LEVEL", "info"),
    ];
    let repo = GitRepo::init(&dir.path().join("repo"), "main")?;
    repo.write("README", "nothing to deploy\n")?;
    repo.commit("empty")?;
    let daemon = DaemonProcess::start_in(bin, dir.path(), &data, &config_yaml(repo.path()), &env)?;
    let pid = daemon.pid().context("the daemon is not running")?;
    std::thread::sleep(IDLE_SETTLE);
    let idle = procfs::memory(pid)?;
    eprintln!("  idle: {:.1} MiB; CPU over {CPU_WINDOW:?}", idle.vm_rss as f64 / 1024.0);
    let idle_cpu = procfs::cpu_percent(pid, CPU_WINDOW)?;

    let swarm = rt
        .block_on(Swarm::connect(daemon.http_port, &credentials, parallel))
        .with_context(|| format!("the daemon's log ends:\n{}", log_tail(&daemon)))?;
    eprintln!("  {agents} agents welcomed in {:.2} s; waiting for their fingerprints", swarm.connect_all.as_secs_f64());
    wait_fingerprints(&swarm, agents, &daemon)?;
    eprintln!("  every fingerprint sent; settling for {SETTLE_HEARTBEATS} heartbeats, then CPU over {CPU_WINDOW:?}");
    std::thread::sleep(HEARTBEAT * SETTLE_HEARTBEATS);
    let loaded = procfs::memory(pid)?;
    let loaded_cpu = procfs::cpu_percent(pid, CPU_WINDOW)?;
    let counters = Arc::clone(&swarm.counters);
    let closed = counters.closed.load(Ordering::Relaxed);
    if closed > 0 {
        bail!("the daemon closed {closed} idle agent(s); its log ends:\n{}", log_tail(&daemon));
    }
    let (connect_all, handshake_ms) = (swarm.connect_all, swarm.handshake_ms.clone());
    rt.block_on(swarm.stop());
    std::thread::sleep(CLOSE_SETTLE);
    let after_close = procfs::memory(pid)?;
    Ok(Case {
        agents,
        idle,
        idle_cpu,
        loaded,
        loaded_cpu,
        after_close,
        tokens_s,
        connect_s: connect_all.as_secs_f64(),
        handshake_ms,
        welcomed: counters.welcomed.load(Ordering::Relaxed),
        fingerprints: counters.fingerprints.load(Ordering::Relaxed),
        heartbeats: counters.heartbeats.load(Ordering::Relaxed),
        closed,
    })
}

/// Writes one valid runner token per agent (hosts `agent-00000`...) into a new store in
/// `data`, as one token document, and lets the store go so that the daemon can lock it.
async fn issue_tokens(data: &Path, agents: usize) -> anyhow::Result<Vec<Credential>> {
    let now = Timestamp::now();
    let store: Arc<dyn Store> = Arc::new(FileStore::open(data, now)?);
    let mut doc = RunnerTokens::default();
    let mut credentials = Vec::with_capacity(agents);
    for i in 0..agents {
        let host = HostName::new(format!("agent-{i:05}"))?;
        let token = RunnerToken::generate();
        let record = RunnerTokenRecord {
            hash: token.hash(),
            prefix: token.prefix().to_owned(),
            issued_at: now,
            revoked_at: None,
        };
        doc.hosts.insert(host.clone(), record);
        credentials.push(Credential { host: host.to_string(), token: token.secret().expose().to_owned() });
    }
    store.save_document(DOCUMENT, &serde_json::to_value(&doc)?).await?;
    // Read back through the token store, as the daemon will.
    if let Some(first) = credentials.first() {
        let found = RunnerTokenStore::new(Arc::clone(&store)).authenticate(&first.token).await?;
        if found.as_ref().map(HostName::as_str) != Some(first.host.as_str()) {
            bail!("the token document written is not read back as {}: {found:?}", first.host);
        }
    }
    Ok(credentials)
}

/// Waits until every agent has sent its fingerprint (with its first heartbeat, within one
/// interval of its welcome).
fn wait_fingerprints(swarm: &Swarm, agents: usize, daemon: &DaemonProcess) -> anyhow::Result<()> {
    let deadline = Instant::now() + HEARTBEAT * 3;
    loop {
        let sent = swarm.counters.fingerprints.load(Ordering::Relaxed);
        if sent == agents {
            return Ok(());
        }
        let closed = swarm.counters.closed.load(Ordering::Relaxed);
        if closed > 0 || Instant::now() > deadline {
            bail!(
                "{sent} of {agents} fingerprints sent, {closed} closed; the daemon's log ends:\n{}",
                log_tail(daemon)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last lines of the daemon's log, for errors.
fn log_tail(daemon: &DaemonProcess) -> String {
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The agent counts: `DEEPLO_BENCH_AGENTS` (such as `1000` or `1000,5000`), else both.
fn agent_counts() -> anyhow::Result<Vec<usize>> {
    let list = std::env::var("DEEPLO_BENCH_AGENTS").unwrap_or_else(|_| DEFAULT_AGENTS.to_owned());
    list.split(',')
        .filter(|n| !n.trim().is_empty())
        .map(|n| match n.trim().parse() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("DEEPLO_BENCH_AGENTS={list:?}: expected agent counts such as {DEFAULT_AGENTS:?}"),
        })
        .collect()
}
