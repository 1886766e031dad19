//! deeplo against an expert OpenSSH deploy script and against a floor with no SSH at all,
//! on the same hosts in the same run.
//!
//! Why: deeplo speaks SSH itself (russh + SFTP) instead of driving the `ssh` binary, and a
//! deploy tool that is slower than the shell script an expert writes would be hard to
//! justify; the floor says how much of a deploy is the work itself (git, tar, Compose,
//! Docker), so what is left is the cost of reaching a host and of the tool.
//!
//! Three tools deploy the same project, each a new commit every run:
//!
//! - `deeplo`: the [`Engine`] with the file store, the git source and the SSH connector,
//!   deploying every host at once (`DEEPLO_BENCH_MAX_WORKERS`, default the host count).
//! - `script` (`benches/openssh-deploy.sh`): per host one ControlMaster connection; the
//!   project as `git archive COMMIT:SUBDIR` (made once) piped into `ssh host sh -c STAGE`
//!   (repair, empty staging, `tar -x`); then one `ssh host sh -c DEPLOY`: persist `.env`,
//!   `compose config -q`, swap, `compose up`, `compose ps` showing a running container,
//!   cleanup. Both scripts are fixed text, their data positional parameters. Every host
//!   in parallel.
//! - `floor` (the same script with `--local`): the same archive and the same two scripts
//!   run by the local `sh` for every host in parallel, without SSH.
//!
//! The hosts are 10 real `sshd` on 127.0.0.1 sharing this machine's Docker engine; each
//! has its own `deploy_dir` and `compose_project_prefix` so their compose projects stay
//! apart. The project is a busybox web server (no published port, no healthcheck) with a
//! few static files. The cases (`DEEPLO_BENCH_CASES`, default `1,10,500files`):
//!
//! - `N`: N hosts (1 to 10), the project of 6 files;
//! - `Ffiles`: 1 host, a project of F files (F - 6 small pages under `www/pages/`);
//! - `NxFfiles`: both.
//!
//! Tools take turns, rotating who goes first, with one warm-up and `DEEPLO_BENCH_RUNS`
//! (default 5) measured runs each; after each tool's run every host must serve the new
//! commit. `DEEPLO_BENCH_TOOLS` (default `deeplo,script,floor`) picks the tools. The
//! report gives per case the three medians, deeplo/script (target at most 0.90), deeplo
//! minus floor (target at most 500 ms on 1 host) and every tool's per-step medians; the
//! figures also go to `<target dir>/bench/deploy_vs_openssh.json`.
//!
//! `cargo bench -p deeplo-testbed --bench deploy_vs_openssh` (needs Docker, sshd, git).

#[path = "deploy_vs_openssh/bed.rs"]
mod bed;
#[path = "shared/build.rs"]
#[allow(dead_code, reason = "this bench uses only some of the shared helpers")]
mod build;
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

/// Hosts started: the most a case can use.
const HOSTS: usize = 10;
const WARMUP: usize = 1;
const PROJECT: &str = "site";
/// The small project's directory in the repository; a project of F files lives in
/// `deploy-Ffiles`.
const SUBDIR: &str = "deploy";
const DEFAULT_CASES: &str = "1,10,500files";

/// The project's files besides compose.yml (www/index.html changes every run).
const STATIC_FILES: &[(&str, &str)] = &[
    ("www/style.css", "body { font-family: sans-serif; margin: 2em; }\n"),
    ("www/app.js", "document.title = 'deeplo bench';\n"),
    ("www/about.html", "<h1>About</h1>\n"),
    ("www/img/logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>\n"),
];

/// Files of the small project: compose.yml, www/index.html and [`STATIC_FILES`].
const SMALL_FILES: usize = STATIC_FILES.len() + 2;

/// Step timings of one tool: step name -> durations in ms (one per host per run).
type Steps = BTreeMap<String, Vec<f64>>;

fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        // `RUST_LOG=deeplo_ssh=debug` shows every remote command and upload with its time.
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let runs: usize = env_number("DEEPLO_BENCH_RUNS", 5)?.max(1);
    let cases = cases()?;
    let tools = tools()?;
    scenario::ensure_image()?;
    let bed = Bed::start(&cases).context("start the test bed")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut results = Vec::new();
    let outcome = (|| {
        for case in &cases {
            let workers = env_number("DEEPLO_BENCH_MAX_WORKERS", case.hosts)?.max(1);
            eprintln!(
                "case {}: {} host(s), {} files, {WARMUP} warm-up + {runs} measured runs per tool, {workers} engine worker(s)",
                case.name, case.hosts, case.files
            );
            results.push(bed.measure(&rt, case, &tools, workers, runs)?);
        }
        anyhow::Ok(())
    })();
    bed.remove_projects();
    outcome?;
    report::report(&results, runs)
}

/// What deploys: deeplo, the script an expert writes with OpenSSH, and the same steps run
/// locally without SSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Deeplo,
    Script,
    Floor,
}

impl Tool {
    const ALL: [Tool; 3] = [Tool::Deeplo, Tool::Script, Tool::Floor];

    fn name(self) -> &'static str {
        match self {
            Tool::Deeplo => "deeplo",
            Tool::Script => "script",
            Tool::Floor => "floor",
        }
    }

    fn index(self) -> usize {
        Tool::ALL.iter().position(|t| *t == self).unwrap_or_default()
    }
}

/// A setting measured: how many hosts, how big a project.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Case {
    /// As given in `DEEPLO_BENCH_CASES` (`1`, `10`, `500files`).
    name: String,
    hosts: usize,
    /// Files of the project, compose.yml included.
    files: usize,
}

impl Case {
    /// `N`, `Ffiles` or `NxFfiles`.
    fn parse(text: &str) -> anyhow::Result<Self> {
        let name = text.trim().to_owned();
        let (hosts, files) = match name.strip_suffix("files") {
            None => (name.as_str(), None),
            Some(rest) => match rest.split_once('x') {
                Some((hosts, files)) => (hosts, Some(files)),
                None => ("1", Some(rest)),
            },
        };
        let hosts = match hosts.parse() {
            Ok(n) if (1..=HOSTS).contains(&n) => n,
            _ => bail!("case {name:?}: expected 1 to {HOSTS} hosts"),
        };
        let files = match files.map(str::parse) {
            None => SMALL_FILES,
            Some(Ok(n)) if n >= SMALL_FILES => n,
            Some(_) => bail!("case {name:?}: expected a file count of at least {SMALL_FILES}"),
        };
        Ok(Self { name, hosts, files })
    }

    /// The project's directory in the repository.
    fn subdir(&self) -> String {
        if self.files == SMALL_FILES { SUBDIR.to_owned() } else { format!("{SUBDIR}-{}files", self.files) }
    }
}

/// One tool's figures in one case: wall times of the measured runs and step times.
#[derive(Default)]
struct Figures {
    ms: Vec<f64>,
    steps: Steps,
}

/// The figures of one case, indexed like [`Tool::ALL`] (empty for a tool not run).
struct Measured {
    case: Case,
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

/// The cases to measure: `DEEPLO_BENCH_CASES` (such as `10` or `1,500files`), else all three.
fn cases() -> anyhow::Result<Vec<Case>> {
    let list = std::env::var("DEEPLO_BENCH_CASES").unwrap_or_else(|_| DEFAULT_CASES.to_owned());
    let cases: Vec<Case> = list
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .map(Case::parse)
        .collect::<anyhow::Result<_>>()
        .with_context(|| format!("DEEPLO_BENCH_CASES={list:?} (such as {DEFAULT_CASES:?})"))?;
    if cases.is_empty() {
        bail!("DEEPLO_BENCH_CASES={list:?} names no case (such as {DEFAULT_CASES:?})");
    }
    Ok(cases)
}

/// The tools to run: `DEEPLO_BENCH_TOOLS` (such as `script,floor`), else all three.
fn tools() -> anyhow::Result<Vec<Tool>> {
    let Ok(list) = std::env::var("DEEPLO_BENCH_TOOLS") else { return Ok(Tool::ALL.to_vec()) };
    let mut tools = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match Tool::ALL.iter().find(|t| t.name() == name) {
            Some(tool) if !tools.contains(tool) => tools.push(*tool),
            Some(_) => {}
            None => bail!("DEEPLO_BENCH_TOOLS={list:?}: {name:?} is none of deeplo, script, floor"),
        }
    }
    if tools.is_empty() {
        bail!("DEEPLO_BENCH_TOOLS={list:?} names no tool (deeplo, script, floor)");
    }
    Ok(tools)
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}
