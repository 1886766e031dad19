//! An application deploy (a Dockerfile built on the host, swapped blue-green behind the
//! proxy) next to a Compose deploy, in the same run, over each transport.
//!
//! Why: an application does more than a Compose project (a `docker build`, a new container
//! beside the old one, a health check from inside the `deeplo` network, a proxy reload),
//! and this says what that costs, and in which steps, when the build is served from
//! Docker's cache, as it is for most pushes.
//!
//! Three kinds of deploy, each on a scenario of its own (`testbed::scenario`: a real sshd on
//! 127.0.0.1, a git repository, an engine with the real file store and git source), reached
//! over SSH and through the real `deeplo-agent`, all on this machine's Docker engine:
//! - `compose`: the busybox web project under `deploy/`; every run commits a new page;
//! - `app-cached`: the application of `testbed::apps` (the busybox image, `COPY www`, the
//!   real Caddy proxy); every run commits a change to a file its `.dockerignore` leaves
//!   out, so the build context is the same and every layer comes from the cache;
//! - `app-page`: the same application, every run commits a new page, so `docker build`
//!   runs the `COPY` layer again (the base image is cached).
//!
//! The applications drain for 0 s (the default is 5 s: a configured wait for requests in
//! flight to the old release, not work). The time is from the request to the record; the
//! deployed commit must then be the one served (the new page, or the release's container).
//! The sides take turns at going first; one warm-up and `DEEPLO_BENCH_RUNS` (default 5)
//! measured runs each. The report gives every side's median and the median of every step;
//! the figures also go to `<target dir>/bench/app_vs_compose.json`.
//!
//! Measured on a 2-core machine (release, medians of 5): over SSH, compose 1,371 ms,
//! app-cached 2,100 ms (1.53x), app-page 4,975 ms; through the agent, compose 1,118 ms,
//! app-cached 1,388 ms (1.24x), app-page 4,297 ms. A cached build is 0.5 s (`docker build`
//! checking its cache); the `COPY` layer of a new page is 3.4 s of the 5 on this machine's
//! fuse-overlayfs; precheck (the proxy), start, health, switch and drain are 0.1 to 0.4 s
//! each.
//!
//! `cargo bench -p deeplo-testbed --bench app_vs_compose` (needs Docker, sshd, git, curl,
//! caddy). To check it quickly: `DEEPLO_BENCH_RUNS=1 cargo bench -p deeplo-testbed --bench
//! app_vs_compose --profile dev`.

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
use deeplo_testbed::apps::{self, App};
use deeplo_testbed::scenario::{self, Scenario, Target, Via};
use serde_json::{Value, json};

const WARMUP: usize = 1;
/// How long the deployed commit may take to be served (checked, not timed).
const SERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Steps in the order the pipelines run them (Compose, then the application's own).
const STEP_ORDER: &[&str] = &[
    "fetch",
    "extract",
    "connect",
    "precheck",
    "stage",
    "persist",
    "preflight",
    "swap",
    "build",
    "start",
    "up",
    "verify",
    "health",
    "switch",
    "drain",
    "cleanup",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Compose,
    AppCached,
    AppPage,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Compose, Kind::AppCached, Kind::AppPage];

    fn name(self) -> &'static str {
        match self {
            Kind::Compose => "compose",
            Kind::AppCached => "app-cached",
            Kind::AppPage => "app-page",
        }
    }
}

/// Step timings of one side: step name -> durations in ms, one per run.
type Steps = BTreeMap<String, Vec<f64>>;

/// One kind of deploy over one transport: its setting and figures.
struct Side {
    kind: Kind,
    via: Via,
    scenario: Scenario,
    /// The application, for the two application kinds.
    app: Option<App>,
    target: Target,
    ms: Vec<f64>,
    steps: Steps,
}

impl Side {
    fn label(&self) -> String {
        format!("{} {}", self.kind.name(), self.via.name())
    }

    fn project(&self) -> &str {
        if self.app.is_some() { "site" } else { &self.scenario.project }
    }
}

fn main() -> anyhow::Result<()> {
    let runs = build::env_number("DEEPLO_BENCH_RUNS", 5)?.max(1);
    build::build("deeplo-agent", "deeplo-agent")?;
    deeplo_testbed::agent::agent_binary()?;
    scenario::ensure_image()?;
    apps::ensure_caddy_image()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut sides = Vec::new();
    for via in [Via::Ssh, Via::Agent] {
        for kind in Kind::ALL {
            sides.push(rt.block_on(side(kind, via))?);
        }
    }
    eprintln!("{WARMUP} warm-up + {runs} measured runs per side, taking turns at going first");
    for run in 0..WARMUP + runs {
        let measured = run >= WARMUP;
        for turn in 0..sides.len() {
            let count = sides.len();
            let side = &mut sides[(run + turn) % count];
            let (ms, record) = rt.block_on(deploy_once(side, run))?;
            let label = if measured { "" } else { " (warm-up)" };
            eprintln!("  run {run}{label} {}: {ms:.0} ms", side.label());
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

/// A scenario and an engine for `kind` over `via` (the warm-up run makes the first
/// release).
async fn side(kind: Kind, via: Via) -> anyhow::Result<Side> {
    let scenario = Scenario::new(&format!("bench-{}-{}", kind.name(), via.name()))?;
    let (app, yaml) = match kind {
        Kind::Compose => (None, scenario.config_yaml_via(via, "")),
        Kind::AppCached | Kind::AppPage => {
            let app = App::new(&format!("bench{}", kind.name().replace('-', "")), via);
            let yaml = app.yaml(&scenario, via, "").replacen("drain: 1s", "drain: 0s", 1);
            app.commit_version(&scenario.repo, "first", &apps::web_dockerfile(8080, ""))?;
            (Some(app), yaml)
        }
    };
    let target = scenario.engine_via(via, &yaml).await?;
    Ok(Side { kind, via, scenario, app, target, ms: Vec::new(), steps: Steps::new() })
}

/// Commits this side's change, deploys it, and checks that it is served; returns the wall
/// time of the deploy and its record.
async fn deploy_once(side: &Side, run: usize) -> anyhow::Result<(f64, Deployment)> {
    let content = format!("run {run} of {}\n", side.label());
    let repo = &side.scenario.repo;
    let page = match side.kind {
        Kind::Compose => {
            repo.write("deploy/www/index.html", &content)?;
            Some(content)
        }
        Kind::AppCached => {
            repo.write("web/notes/run.txt", &content)?;
            None
        }
        Kind::AppPage => {
            repo.write("web/www/index.html", &content)?;
            Some(content)
        }
    };
    let sha = repo.commit(&format!("run {run}"))?;
    let clock = Instant::now();
    let record = deploy(&side.target.engine, side.project()).await?;
    let ms = clock.elapsed().as_secs_f64() * 1e3;
    if record.status != DeployStatus::Succeeded {
        let log = side.target.engine.store().read_log(&record.id).await?.unwrap_or_default();
        bail!("the deploy of {} failed: {:?}\n{}", side.label(), record.error, String::from_utf8_lossy(&log));
    }
    if record.commit.as_str() != sha {
        bail!("the deploy of {} took commit {}, not {sha}", side.label(), record.commit);
    }
    let deadline = Instant::now() + SERVE_TIMEOUT;
    loop {
        let served = served(side, &sha);
        let want = page.as_deref();
        let ok = match (&served, want) {
            (Some(body), Some(page)) => body == page,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if ok {
            break;
        }
        if Instant::now() > deadline {
            bail!("after the deploy of {}, {served:?} is served, not {want:?} of {sha}", side.label());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((ms, record))
}

/// What the side serves now: the page, once the release of `sha` is the one running for
/// an application.
fn served(side: &Side, sha: &str) -> Option<String> {
    let Some(app) = &side.app else { return side.scenario.fetch_site() };
    let live = format!("{}-{}", app.name, &sha[..8]);
    let running = apps::containers(&app.name).into_iter().any(|(name, state)| name == live && state == "running");
    let (status, body) = apps::get(app.port, "/").ok()?;
    (running && status == 200).then_some(body)
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
    println!(
        "\none deploy of a new commit to one host: Compose, and an application with its build cached or its page \
         changed (bench profile: {profile}), {WARMUP} warm-up + {runs} measured runs each"
    );
    println!("{:<18} {:>10} {:>10} {:>10} {:>12}", "side", "median", "min", "max", "vs compose");
    for side in sides {
        let min = side.ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = side.ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let compose = compose_of(sides, side.via).map_or(f64::NAN, |c| build::median(&c.ms));
        let median = build::median(&side.ms);
        println!("{:<18} {median:>7.0} ms {min:>7.0} ms {max:>7.0} ms {:>11.2}x", side.label(), median / compose);
    }
    let names = step_names(sides);
    println!("\nper-step medians (ms)");
    print!("{:<10}", "step");
    for side in sides {
        print!(" {:>16}", side.label());
    }
    println!();
    for name in &names {
        print!("{name:<10}");
        for side in sides {
            print!(" {:>16}", steps::show_ms(step_median(side, name)));
        }
        println!();
    }
    let json = json!({
        "profile": profile,
        "warmup": WARMUP,
        "runs": runs,
        "sides": sides.iter().map(side_json).collect::<Vec<Value>>(),
    });
    build::write_json("app_vs_compose", &json)
}

fn compose_of(sides: &[Side], via: Via) -> Option<&Side> {
    sides.iter().find(|s| s.kind == Kind::Compose && s.via == via)
}

/// Every step any side recorded: the known ones in pipeline order, then the rest.
fn step_names(sides: &[Side]) -> Vec<String> {
    steps::ordered_steps(sides.iter().flat_map(|s| s.steps.keys()), STEP_ORDER)
}

fn step_median(side: &Side, name: &str) -> f64 {
    side.steps.get(name).map_or(f64::NAN, |v| build::median(v))
}

fn side_json(side: &Side) -> Value {
    let steps: serde_json::Map<String, Value> =
        side.steps.iter().map(|(name, v)| (name.clone(), json!(build::median(v)))).collect();
    json!({
        "kind": side.kind.name(),
        "via": side.via.name(),
        "ms": side.ms,
        "median_ms": build::median(&side.ms),
        "step_median_ms": steps,
    })
}
