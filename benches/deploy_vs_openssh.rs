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
//! `sftp -b` and runs the same compose commands as deeplo's pipeline.
//!
//! `DEEPLO_BENCH_RUNS` (default 5) sets the measured runs per tool and host count, after
//! one warm-up; `DEEPLO_BENCH_HOSTS` the host counts (default `1,10`);
//! `DEEPLO_BENCH_MAX_WORKERS` the engine's worker limit (default: the host count, so that
//! both tools deploy every host at once). The figures also go to
//! `<target dir>/bench/deploy_vs_openssh.json`.
//!
//! `cargo bench -p deeplo-testbed --bench deploy_vs_openssh` (needs Docker, sshd, git).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use deeplo_core::config::{self, EnvMap};
use deeplo_core::engine::SubmitOutcome;
use deeplo_core::git::GitAuth;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::{DeployStatus, Trigger};
use deeplo_core::schedule::Limits;
use deeplo_core::{DeployRequest, Engine, FileStore, GitSource};
use deeplo_ssh::{SshConnector, SshOptions};
use deeplo_testbed::scenario::{self, IMAGE};
use deeplo_testbed::{GitRepo, Sshd, SshdOptions, docker};
use serde_json::json;

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
    report(&results, runs)
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

/// The hosts, the repository and the files they share.
struct Bed {
    tmp: tempfile::TempDir,
    sshds: Vec<Sshd>,
    repo: GitRepo,
    /// Host 0's client key, authorized on every host.
    key: PathBuf,
    /// Every host's key, for the script's strict checking.
    known_hosts: PathBuf,
    commits: std::cell::Cell<usize>,
}

impl Bed {
    fn start() -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new().prefix("deeplo-bench-").tempdir()?;
        let first = Sshd::start()?;
        let public = std::fs::read_to_string(first.dir().join("client_key.pub"))?;
        let mut sshds = vec![first];
        for _ in 1..HOSTS {
            sshds.push(Sshd::start_with(SshdOptions { authorized_keys: vec![public.clone()], ..Default::default() })?);
        }
        let key = sshds[0].client_key();
        let known_hosts = tmp.path().join("known_hosts");
        let lines: Vec<String> = sshds.iter().map(Sshd::known_hosts_line).collect::<anyhow::Result<_>>()?;
        std::fs::write(&known_hosts, lines.join("\n") + "\n")?;
        let repo = GitRepo::init(&tmp.path().join("repo"), "main")?;
        // `init: true`: httpd as PID 1 ignores SIGTERM, so without an init every recreate
        // would wait out Docker's 10s stop timeout and drown what is being measured.
        let compose = format!(
            "services:\n  web:\n    image: {IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n    init: true\n    volumes: [\"./www:/www:ro\"]\n"
        );
        repo.write(&format!("{SUBDIR}/compose.yml"), compose)?;
        for (path, content) in STATIC_FILES {
            repo.write(&format!("{SUBDIR}/{path}"), content)?;
        }
        let bed = Self { tmp, sshds, repo, key, known_hosts, commits: std::cell::Cell::new(0) };
        bed.commit()?;
        bed.remove_projects();
        Ok(bed)
    }

    fn name(i: usize) -> String {
        format!("h{i}")
    }

    fn deploy_dir(&self, i: usize) -> PathBuf {
        self.tmp.path().join("hosts").join(Self::name(i))
    }

    fn compose_project(i: usize) -> String {
        format!("{}-{PROJECT}", Self::name(i))
    }

    /// Commits a new www/index.html; returns its content.
    fn commit(&self) -> anyhow::Result<String> {
        let n = self.commits.get() + 1;
        self.commits.set(n);
        let content = format!("<h1>run {n}</h1>\n");
        self.repo.write(&format!("{SUBDIR}/www/index.html"), &content)?;
        self.repo.commit(&format!("run {n}"))?;
        Ok(content)
    }

    fn config_yaml(&self, hosts: usize) -> String {
        let mut yaml = String::from("hosts:\n");
        for i in 0..hosts {
            yaml.push_str(&format!(
                "  - name: {name}\n    address: 127.0.0.1\n    port: {port}\n    user: {user}\n    deploy_dir: {dir}\n    compose_project_prefix: {name}-\n",
                name = Self::name(i),
                port = self.sshds[i].port(),
                user = self.sshds[i].user(),
                dir = self.deploy_dir(i).display(),
            ));
        }
        let targets: Vec<String> = (0..hosts).map(Self::name).collect();
        yaml.push_str(&format!(
            "repos:\n  - name: app\n    url: {url}\n    branch: main\n\
             projects:\n  - name: {PROJECT}\n    repo: app\n    repo_subdir: {SUBDIR}\n    targets: [{targets}]\n    extra_files: [www]\n    persist_files: []\n",
            url = self.repo.path().display(),
            targets = targets.join(", "),
        ));
        yaml
    }

    /// An engine like the scenario tests' (file store, git source, SSH connector).
    fn engine(&self, hosts: usize, workers: usize) -> anyhow::Result<Engine> {
        let loaded = config::parse(&self.config_yaml(hosts), &EnvMap::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let data = self.tmp.path().join(format!("data-{hosts}"));
        let known_hosts = KnownHosts::new(data.join("known_hosts"), HostKeyPolicy::AcceptNew);
        let store = FileStore::open(&data, jiff::Timestamp::now())?;
        let source = GitSource::new(
            data.join("repos"),
            GitAuth { private_key: None, passphrase: None, known_hosts: known_hosts.clone(), https_token: None },
        );
        let mut options = SshOptions::new(known_hosts);
        options.private_key = Some(self.key.clone());
        options.agent_socket = None;
        Ok(Engine::builder()
            .config(loaded.config)
            .source(Arc::new(source))
            .connector(Arc::new(SshConnector::new(options)?))
            .store(Arc::new(store))
            .limits(Limits { max_workers: workers, ..Limits::default() })
            .build()?)
    }

    fn measure(
        &self,
        rt: &tokio::runtime::Runtime,
        hosts: usize,
        workers: usize,
        runs: usize,
    ) -> anyhow::Result<Measured> {
        let engine = self.engine(hosts, workers)?;
        let hosts_file = self.tmp.path().join(format!("hosts-{hosts}.tsv"));
        let lines: Vec<String> = (0..hosts)
            .map(|i| {
                let s = &self.sshds[i];
                let dir = self.deploy_dir(i);
                format!("127.0.0.1\t{}\t{}\t{}\t{}", s.port(), s.user(), dir.display(), Self::compose_project(i))
            })
            .collect();
        std::fs::write(&hosts_file, lines.join("\n") + "\n")?;
        let mut m = Measured { hosts, workers, tools: Default::default() };
        for run in 0..WARMUP + runs {
            let measured = run >= WARMUP;
            // Rotate which tool goes first, so that none always finds a warmer machine.
            for k in 0..Tool::ALL.len() {
                let index = (run + k) % Tool::ALL.len();
                let tool = Tool::ALL[index];
                let content = self.commit()?;
                let (ms, steps) = match tool {
                    Tool::Deeplo => rt.block_on(deploy_with_deeplo(&engine))?,
                    Tool::Script => self.deploy_with_script(&hosts_file, false)?,
                    Tool::ScriptChecks => self.deploy_with_script(&hosts_file, true)?,
                };
                self.check_live(hosts, &content)?;
                eprintln!("  run {run}{} {}: {ms:.0} ms", if measured { "" } else { " (warm-up)" }, tool.name());
                if measured {
                    let figures = &mut m.tools[index];
                    figures.ms.push(ms);
                    for (name, values) in steps {
                        figures.steps.entry(name).or_default().extend(values);
                    }
                }
            }
        }
        Ok(m)
    }

    fn deploy_with_script(&self, hosts_file: &Path, checks: bool) -> anyhow::Result<(f64, Steps)> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/openssh-deploy.sh");
        let commit = self.repo.head()?;
        let mut cmd = Command::new("bash");
        cmd.env("OPENSSH_DEPLOY_CHECKS", if checks { "1" } else { "0" })
            .arg(&script)
            .arg(self.repo.path())
            .arg(&commit)
            .arg(SUBDIR)
            .arg(&self.key)
            .arg(&self.known_hosts)
            .arg(PROJECT)
            .arg(hosts_file);
        let clock = Instant::now();
        let out = cmd.output().with_context(|| format!("run {}", script.display()))?;
        let ms = clock.elapsed().as_secs_f64() * 1e3;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("the script failed ({}): {}{stdout}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        let mut steps = Steps::new();
        for line in stdout.lines() {
            let mut fields = line.split('\t');
            if let (Some(_), Some(step), Some(value)) = (fields.next(), fields.next(), fields.next()) {
                steps.entry(step.to_owned()).or_default().push(value.parse()?);
            }
        }
        Ok((ms, steps))
    }

    /// Every host serves the content just committed (the hosts share this filesystem).
    fn check_live(&self, hosts: usize, content: &str) -> anyhow::Result<()> {
        for i in 0..hosts {
            let path = self.deploy_dir(i).join(PROJECT).join("www/index.html");
            let live = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
            if live != content {
                bail!("{} holds {live:?}, expected {content:?}", path.display());
            }
        }
        Ok(())
    }

    fn remove_projects(&self) {
        for i in 0..HOSTS {
            docker::remove_project(&Self::compose_project(i));
        }
    }
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

fn report(results: &[Measured], runs: usize) -> anyhow::Result<()> {
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
