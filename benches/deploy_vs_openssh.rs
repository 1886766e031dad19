//! deeplo against a hand-written OpenSSH deploy script, on the same hosts in the same run.
//!
//! Why: deeplo speaks SSH itself (russh + SFTP) instead of driving the `ssh` binary, and a
//! deploy tool that is slower than the obvious shell script would be hard to justify. So
//! this deploys one project with both, to 1 host and to 10 hosts, and prints both medians,
//! their ratio and where deeplo's time goes step by step.
//!
//! The hosts are 10 real `sshd` on 127.0.0.1 sharing this machine's Docker engine; each
//! has its own `deploy_dir` and `compose_project_prefix` so their compose projects stay
//! apart. The project is a busybox web server (no published port, no healthcheck) with a
//! few static files. Every run deploys a new commit. The script
//! (`benches/openssh-deploy.sh`) opens one ControlMaster connection per host, uploads with
//! `sftp -b` and runs the same compose commands as deeplo's pipeline. A third variant,
//! `script+checks`, adds the two checks deeplo makes and a bare script skips (`docker
//! compose version` before touching anything; the service still running a second after
//! `up`), so that the same work is compared as well.
//!
//! `DEEPLO_BENCH_RUNS` (default 5) sets the measured runs per tool and host count, after
//! one warm-up; `DEEPLO_BENCH_HOSTS` the host counts (default `1,10`);
//! `DEEPLO_BENCH_MAX_WORKERS` the engine's worker limit (default: the host count, so that
//! both tools deploy every host at once). The figures also go to
//! `<target dir>/bench/deploy_vs_openssh.json`.
//!
//! `cargo bench -p deeplo-testbed --bench deploy_vs_openssh` (needs Docker, sshd, git).

#[path = "deploy_vs_openssh/bed.rs"]
mod bed;
#[path = "deploy_vs_openssh/report.rs"]
mod report;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail};
use deeplo_core::engine::SubmitOutcome;
use deeplo_core::model::{DeployStatus, Trigger};
use deeplo_core::{DeployRequest, Engine};
use deeplo_testbed::scenario;

use bed::Bed;

/// Hosts started; the host counts measured are 1 and this.
const HOSTS: usize = 10;
const WARMUP: usize = 1;
const PROJECT: &str = "site";
const SUBDIR: &str = "deploy";

/// The project's files besides compose.yml (www/index.html changes every run).
const STATIC_FILES: &[(&str, &str)] = &[
    ("www/style.css", "body { font-family: sans-serif; margin: 2em; }\n"),
    ("www/app.js", "document.title = 'deeplo bench';\n"),
    ("www/about.html", "<h1>About</h1>\n"),
    ("www/img/logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>\n"),
];

/// Step timings of one tool: step name -> durations in ms (one per host per run).
type Steps = BTreeMap<String, Vec<f64>>;

fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        // `RUST_LOG=deeplo_ssh=debug` shows every remote command and upload with its time.
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let runs: usize = env_number("DEEPLO_BENCH_RUNS", 5)?.max(1);
    scenario::ensure_image()?;
    let bed = Bed::start().context("start the test bed")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut results = Vec::new();
    let outcome = (|| {
        for hosts in host_counts()? {
            let workers = env_number("DEEPLO_BENCH_MAX_WORKERS", hosts)?.max(1);
            eprintln!("{hosts} host(s): {WARMUP} warm-up + {runs} measured runs per tool, {workers} engine worker(s)");
            results.push(bed.measure(&rt, hosts, workers, runs)?);
        }
        anyhow::Ok(())
    })();
    bed.remove_projects();
    outcome?;
    report::report(&results, runs)
}

/// What deploys: deeplo, the script as a careful person writes it, and the script with the
/// two checks deeplo makes on top (so that the same work is compared too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Deeplo,
    Script,
    ScriptChecks,
}

impl Tool {
    const ALL: [Tool; 3] = [Tool::Deeplo, Tool::Script, Tool::ScriptChecks];

    fn name(self) -> &'static str {
        match self {
            Tool::Deeplo => "deeplo",
            Tool::Script => "script",
            Tool::ScriptChecks => "script+checks",
        }
    }
}

/// One tool's figures at one host count: wall times of the measured runs and step times.
#[derive(Default)]
struct Figures {
    ms: Vec<f64>,
    steps: Steps,
}

/// The figures of one host count, indexed like [`Tool::ALL`].
struct Measured {
    hosts: usize,
    workers: usize,
    tools: [Figures; 3],
}

/// Deploys the branch head to every target; returns the wall time and the records' steps.
async fn deploy_with_deeplo(engine: &Engine) -> anyhow::Result<(f64, Steps)> {
    let request =
        DeployRequest { project: PROJECT.into(), host: None, commit: None, trigger: Trigger::Manual, force: true };
    let clock = Instant::now();
    let submitted = engine.deploy(request).await?;
    let mut records = Vec::new();
    for s in submitted {
        match s.outcome {
            SubmitOutcome::Queued(handle) => records.push(handle.wait().await?),
            SubmitOutcome::Skipped(why) => bail!("{} was skipped: {why:?}", s.pair.host),
        }
    }
    let ms = clock.elapsed().as_secs_f64() * 1e3;
    let mut steps = Steps::new();
    for record in &records {
        if record.status != DeployStatus::Succeeded {
            let log = engine.store().read_log(&record.id).await?.unwrap_or_default();
            bail!("deeplo failed on {}: {:?}\n{}", record.host, record.error, String::from_utf8_lossy(&log));
        }
        for step in &record.steps {
            steps.entry(step.name.clone()).or_default().push(step.duration_ms as f64);
        }
    }
    Ok((ms, steps))
}

/// The host counts to measure: `DEEPLO_BENCH_HOSTS` (such as `10` or `1,10`), else 1 and 10.
fn host_counts() -> anyhow::Result<Vec<usize>> {
    let Ok(list) = std::env::var("DEEPLO_BENCH_HOSTS") else { return Ok(vec![1, HOSTS]) };
    list.split(',')
        .map(|n| match n.trim().parse() {
            Ok(n) if (1..=HOSTS).contains(&n) => Ok(n),
            _ => bail!("DEEPLO_BENCH_HOSTS={list:?}: expected host counts from 1 to {HOSTS}, such as \"1,10\""),
        })
        .collect()
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}
