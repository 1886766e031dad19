//! The same deploy through the runner agent and over SSH, in the same run.
//!
//! Why: a host reached through `deeplo-agent` is deployed over the WebSocket the agent
//! keeps open to the daemon, with no SSH handshake per deploy and no remote shell between
//! deeplo and each command; the agent should be faster for that, and this says by how
//! much, and in which steps.
//!
//! Two scenarios of the testbed (`testbed::scenario`), alike but for the transport: each a
//! real sshd on 127.0.0.1, a git repository with the busybox web project under `deploy/`,
//! and an engine with the real file store and git source. One engine deploys through
//! `Via::Agent` (the real `deeplo-agent` binary connected to a hub of its own, as the
//! end-to-end tests run it), the other through `Via::Ssh` (russh + SFTP to the sshd). Both
//! hosts use this machine's Docker engine, each with its own compose project and port.
//!
//! Every run commits a new `www/index.html` to each scenario's repository and deploys it
//! (a manual, forced deploy of the branch head); the time is from the request to the
//! record, and the site must then serve the new commit's page (`Scenario::fetch_site`).
//! The two transports take turns at going first; one warm-up and `DEEPLO_BENCH_RUNS`
//! (default 5) measured runs each. The report gives both medians, agent/ssh (the agent is
//! expected below 1), and the median of every step of the records; the figures also go to
//! `<target dir>/bench/agent_vs_ssh.json`.
//!
//! Measured on a 2-core machine (release): agent 1,674 ms, SSH 2,569 ms (agent/ssh 0.65);
//! the difference is in `stage` (73 against 748 ms), `persist` (6 against 290) and
//! `connect` (0 against 41).
//!
//! `cargo bench -p deeplo-testbed --bench agent_vs_ssh` (needs Docker, sshd, git, curl).
//! The bench builds `deeplo-agent` with its own profile first (`cargo build --release -p
//! deeplo-agent` does the same), where `testbed::agent::agent_binary` finds it. To check it
//! quickly: `DEEPLO_BENCH_RUNS=1 cargo bench -p deeplo-testbed --bench agent_vs_ssh
//! --profile dev`.

#[path = "shared/build.rs"]
mod build;
#[path = "shared/steps.rs"]
mod steps;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deeplo_core::engine::SubmitOutcome;
use deeplo_core::model::{DeployStatus, Deployment, Trigger};
use deeplo_core::{DeployRequest, Engine};
use deeplo_testbed::scenario::{self, Scenario, Target, Via};
use serde_json::{Value, json};

const WARMUP: usize = 1;
const VIAS: [Via; 2] = [Via::Agent, Via::Ssh];
/// How long the site may take to serve a deployed commit (checked, not timed).
const SERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Steps in the order the pipeline runs them.
const STEP_ORDER: &[&str] = &[
    "fetch",
    "extract",
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
];

/// Step timings of one transport: step name -> durations in ms, one per run.
type Steps = BTreeMap<String, Vec<f64>>;

/// One transport's setting and figures.
struct Side {
    via: Via,
    scenario: Scenario,
    target: Target,
    ms: Vec<f64>,
    steps: Steps,
}

fn main() -> anyhow::Result<()> {
    let runs = build::env_number("DEEPLO_BENCH_RUNS", 5)?.max(1);
    build::build("deeplo-agent", "deeplo-agent")?;
    deeplo_testbed::agent::agent_binary()?;
    scenario::ensure_image()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut sides = Vec::new();
    for via in VIAS {
        let scenario = Scenario::new(&format!("bench-{}", via.name()))?;
        let target = rt.block_on(scenario.engine_via(via, &scenario.config_yaml_via(via, "")))?;
        sides.push(Side { via, scenario, target, ms: Vec::new(), steps: Steps::new() });
    }
    eprintln!("{WARMUP} warm-up + {runs} measured runs per transport, taking turns at going first");
    for run in 0..WARMUP + runs {
        let measured = run >= WARMUP;
        for turn in 0..sides.len() {
            let side = &mut sides[(run + turn) % VIAS.len()];
            let (ms, record) = rt.block_on(deploy_once(side, run))?;
            let label = if measured { "" } else { " (warm-up)" };
            eprintln!("  run {run}{label} {}: {ms:.0} ms", side.via.name());
            if measured {
                side.ms.push(ms);
                for step in &record.steps {
                    side.steps.entry(step.name.clone()).or_default().push(step.duration_ms as f64);
                }
            }
        }
    }
    report(&build::bench_profile()?, runs, &sides)
}

/// Commits a new page, deploys it, and checks that the site serves it; returns the wall
/// time of the deploy and its record.
async fn deploy_once(side: &Side, run: usize) -> anyhow::Result<(f64, Deployment)> {
    let content = format!("run {run} through {}\n", side.via.name());
    side.scenario.repo.write("deploy/www/index.html", &content)?;
    let sha = side.scenario.repo.commit(&format!("run {run}"))?;
    let clock = Instant::now();
    let record = deploy(&side.target.engine, &side.scenario.project).await?;
    let ms = clock.elapsed().as_secs_f64() * 1e3;
    if record.status != DeployStatus::Succeeded {
        let log = side.target.engine.store().read_log(&record.id).await?.unwrap_or_default();
        bail!("the deploy through {} failed: {:?}\n{}", side.via.name(), record.error, String::from_utf8_lossy(&log));
    }
    if record.commit.as_str() != sha {
        bail!("the deploy through {} took commit {}, not {sha}", side.via.name(), record.commit);
    }
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let served = side.scenario.fetch_site();
        if served.as_deref() == Some(content.as_str()) {
            break;
        }
        if Instant::now() > deadline {
            bail!("after the deploy through {}, the site serves {served:?}, not {content:?}", side.via.name());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((ms, record))
}

/// A forced deploy of the branch head to the project's one host, waited for.
async fn deploy(engine: &Engine, project: &str) -> anyhow::Result<Deployment> {
    let request =
        DeployRequest { project: project.into(), host: None, commit: None, trigger: Trigger::Manual, force: true };
    let mut records = Vec::new();
    for submitted in engine.deploy(request).await? {
        match submitted.outcome {
            SubmitOutcome::Queued(handle) => records.push(handle.wait().await?),
            SubmitOutcome::Skipped(why) => bail!("{} was skipped: {why:?}", submitted.pair.host),
        }
    }
    records.pop().context("the deploy queued no run")
}

fn report(profile: &str, runs: usize, sides: &[Side]) -> anyhow::Result<()> {
    let find = |via: Via| sides.iter().find(|s| s.via == via);
    let (Some(agent), Some(ssh)) = (find(Via::Agent), find(Via::Ssh)) else { bail!("a transport was not measured") };
    let (a, s) = (build::median(&agent.ms), build::median(&ssh.ms));
    let verdict = if a < s { "faster" } else { "NOT faster" };
    println!(
        "\none deploy of a new commit to one host, through the agent and over SSH (bench profile: {profile}), \
         {WARMUP} warm-up + {runs} measured runs each"
    );
    println!("{:>6} {:>10} {:>10} {:>10}", "via", "median", "min", "max");
    for side in [agent, ssh] {
        let min = side.ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = side.ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!("{:>6} {:>7.0} ms {min:>7.0} ms {max:>7.0} ms", side.via.name(), build::median(&side.ms));
    }
    println!("agent/ssh {:.2}: the agent is {verdict} (agent - ssh = {:.0} ms)", a / s, a - s);
    println!("\nper-step medians (ms)");
    println!("{:<18} {:>8} {:>8} {:>9}", "step", "agent", "ssh", "agent-ssh");
    for name in step_names(sides) {
        let (sa, ss) = (step_median(agent, &name), step_median(ssh, &name));
        println!("{name:<18} {:>8} {:>8} {:>9}", steps::show_ms(sa), steps::show_ms(ss), steps::show_ms(sa - ss));
    }
    let json = json!({
        "profile": profile,
        "warmup": WARMUP,
        "runs": runs,
        "agent": side_json(agent),
        "ssh": side_json(ssh),
        "ratio_agent_over_ssh": a / s,
        "agent_faster": a < s,
    });
    build::write_json("agent_vs_ssh", &json)
}

/// Every step either transport recorded: the known ones in pipeline order, then the rest.
fn step_names(sides: &[Side]) -> Vec<String> {
    steps::ordered_steps(sides.iter().flat_map(|s| s.steps.keys()), STEP_ORDER)
}

fn step_median(side: &Side, name: &str) -> f64 {
    side.steps.get(name).map_or(f64::NAN, |v| build::median(v))
}

fn side_json(side: &Side) -> Value {
    let steps: BTreeMap<&str, f64> = side.steps.iter().map(|(k, v)| (k.as_str(), build::median(v))).collect();
    json!({ "runs_ms": side.ms, "median_ms": build::median(&side.ms), "step_median_ms": steps })
}
