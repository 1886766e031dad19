//! The test bed of the benchmark: ten sshd "hosts", the projects' repository, the engine,
//! and the three ways of deploying (deeplo, the script, the floor), each checked on every
//! host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use deeplo_core::Engine;
use deeplo_core::known_hosts::HostKeyPolicy;
use deeplo_core::schedule::Limits;
use deeplo_testbed::scenario::{IMAGE, engine_builder};
use deeplo_testbed::{GitRepo, Sshd, SshdOptions, docker};

use super::{Case, HOSTS, Measured, PROJECT, SMALL_FILES, STATIC_FILES, Steps, Tool, WARMUP, deploy_with_deeplo};

/// Pages per directory under `www/pages/` in a project of many files.
const PAGES_PER_DIR: usize = 25;

/// The hosts, the repository (one project directory per file count) and the files they share.
pub(crate) struct Bed {
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
    pub(crate) fn start(cases: &[Case]) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new().prefix("deeplo-bench-").tempdir()?;
        let first = Sshd::start_with(host_options())?;
        let public = std::fs::read_to_string(first.dir().join("client_key.pub"))?;
        let mut sshds = vec![first];
        for _ in 1..HOSTS {
            sshds.push(Sshd::start_with(SshdOptions { authorized_keys: vec![public.clone()], ..host_options() })?);
        }
        let key = sshds[0].client_key();
        let known_hosts = tmp.path().join("known_hosts");
        let lines: Vec<String> = sshds.iter().map(Sshd::known_hosts_line).collect::<anyhow::Result<_>>()?;
        std::fs::write(&known_hosts, lines.join("\n") + "\n")?;
        let repo = GitRepo::init(&tmp.path().join("repo"), "main")?;
        for case in cases {
            write_project(&repo, case)?;
        }
        let bed = Self { tmp, sshds, repo, key, known_hosts, commits: std::cell::Cell::new(0) };
        bed.repo.commit("the projects")?;
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

    /// Commits a new www/index.html in the case's project; returns its content.
    fn commit(&self, case: &Case) -> anyhow::Result<String> {
        let n = self.commits.get() + 1;
        self.commits.set(n);
        let content = format!("<h1>run {n}</h1>\n");
        self.repo.write(&format!("{}/www/index.html", case.subdir()), &content)?;
        self.repo.commit(&format!("run {n}"))?;
        Ok(content)
    }

    fn config_yaml(&self, case: &Case) -> String {
        let mut yaml = String::from("hosts:\n");
        for i in 0..case.hosts {
            yaml.push_str(&format!(
                "  - name: {name}\n    address: 127.0.0.1\n    port: {port}\n    user: {user}\n    deploy_dir: {dir}\n    compose_project_prefix: {name}-\n",
                name = Self::name(i),
                port = self.sshds[i].port(),
                user = self.sshds[i].user(),
                dir = self.deploy_dir(i).display(),
            ));
        }
        let targets: Vec<String> = (0..case.hosts).map(Self::name).collect();
        yaml.push_str(&format!(
            "repos:\n  - name: app\n    url: {url}\n    branch: main\n\
             projects:\n  - name: {PROJECT}\n    repo: app\n    repo_subdir: {subdir}\n    targets: [{targets}]\n    extra_files: [www]\n    persist_files: []\n",
            url = self.repo.path().display(),
            subdir = case.subdir(),
            targets = targets.join(", "),
        ));
        yaml
    }

    /// An engine like the scenario tests' (file store, git source, SSH connector).
    fn engine(&self, case: &Case, workers: usize) -> anyhow::Result<Engine> {
        let data = self.tmp.path().join(format!("data-{}", case.name));
        Ok(engine_builder(&self.config_yaml(case), &data, &self.key, HostKeyPolicy::AcceptNew)?
            .limits(Limits { max_workers: workers, ..Limits::default() })
            .build()?)
    }

    /// The script's hosts file: address, port, user, deploy_dir, compose project.
    fn hosts_file(&self, case: &Case) -> anyhow::Result<PathBuf> {
        let path = self.tmp.path().join(format!("hosts-{}.tsv", case.hosts));
        let lines: Vec<String> = (0..case.hosts)
            .map(|i| {
                let s = &self.sshds[i];
                let dir = self.deploy_dir(i);
                format!("127.0.0.1\t{}\t{}\t{}\t{}", s.port(), s.user(), dir.display(), Self::compose_project(i))
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    }

    pub(crate) fn measure(
        &self,
        rt: &tokio::runtime::Runtime,
        case: &Case,
        tools: &[Tool],
        workers: usize,
        runs: usize,
    ) -> anyhow::Result<Measured> {
        // Built only when deeplo is measured, so that the baselines run without it.
        let engine = if tools.contains(&Tool::Deeplo) { Some(self.engine(case, workers)?) } else { None };
        let hosts_file = self.hosts_file(case)?;
        let mut m = Measured { case: case.clone(), workers, tools: Default::default() };
        for run in 0..WARMUP + runs {
            let measured = run >= WARMUP;
            // Rotate which tool goes first, so that none always finds a warmer machine.
            for k in 0..tools.len() {
                let tool = tools[(run + k) % tools.len()];
                let content = self.commit(case)?;
                let (ms, steps) = match (tool, &engine) {
                    (Tool::Deeplo, Some(engine)) => rt.block_on(deploy_with_deeplo(engine))?,
                    (Tool::Deeplo, None) => bail!("no engine was built"),
                    (Tool::Script, _) => self.deploy_with_script(case, &hosts_file, false)?,
                    (Tool::Floor, _) => self.deploy_with_script(case, &hosts_file, true)?,
                };
                self.check_live(case.hosts, &content).with_context(|| format!("after {}", tool.name()))?;
                eprintln!("  run {run}{} {}: {ms:.0} ms", if measured { "" } else { " (warm-up)" }, tool.name());
                if measured {
                    let figures = &mut m.tools[tool.index()];
                    figures.ms.push(ms);
                    for (name, values) in steps {
                        figures.steps.entry(name).or_default().extend(values);
                    }
                }
            }
        }
        Ok(m)
    }

    /// Runs `benches/openssh-deploy.sh` (with `--local` for the floor).
    fn deploy_with_script(&self, case: &Case, hosts_file: &Path, local: bool) -> anyhow::Result<(f64, Steps)> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/openssh-deploy.sh");
        let commit = self.repo.head()?;
        let mut cmd = Command::new("bash");
        cmd.arg(&script);
        if local {
            cmd.arg("--local");
        }
        cmd.arg(self.repo.path())
            .arg(&commit)
            .arg(case.subdir())
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
        Ok((ms, steps_from_marks(&stdout)?))
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

    pub(crate) fn remove_projects(&self) {
        for i in 0..HOSTS {
            docker::remove_project(&Self::compose_project(i));
        }
    }
}

/// The hosts' sshd options. `SHLVL=1`: bash as built by Debian sources `~/.bashrc` in
/// every command sshd runs when it believes itself a top-level shell, and the `.bashrc` of
/// a developer's account (pyenv, nvm, ...) then adds 100 ms or more to each remote
/// command of every tool: a figure about this machine's account, not about the tools. A
/// server's account does not do that (Debian's skeleton `.bashrc` returns at once when
/// not interactive); with the variable set, bash counts itself nested and skips the file.
fn host_options() -> SshdOptions {
    SshdOptions { set_env: vec![("SHLVL".into(), "1".into())], ..SshdOptions::default() }
}

/// Writes the case's project under its directory: compose.yml, [`STATIC_FILES`], and as
/// many small pages as it takes to reach the case's file count (www/index.html, written
/// by every run's commit, included).
fn write_project(repo: &GitRepo, case: &Case) -> anyhow::Result<()> {
    let subdir = case.subdir();
    // `init: true`: httpd as PID 1 ignores SIGTERM, so without an init every recreate
    // would wait out Docker's 10s stop timeout and drown what is being measured.
    let compose = format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n    init: true\n    volumes: [\"./www:/www:ro\"]\n"
    );
    repo.write(&format!("{subdir}/compose.yml"), compose)?;
    repo.write(&format!("{subdir}/www/index.html"), "<h1>run 0</h1>\n")?;
    for (path, content) in STATIC_FILES {
        repo.write(&format!("{subdir}/{path}"), content)?;
    }
    for n in 0..case.files - SMALL_FILES {
        let dir = n / PAGES_PER_DIR;
        repo.write(&format!("{subdir}/www/pages/{dir:02}/page-{n:04}.html"), format!("<p>page {n}</p>\n"))?;
    }
    Ok(())
}

/// Step durations from the script's marks, `<project>\t<mark>\t<ms since the epoch>`: a
/// mark ends the step of its name, begun at the project's previous mark (`begin` starts
/// the first).
fn steps_from_marks(stdout: &str) -> anyhow::Result<Steps> {
    let mut last: std::collections::HashMap<&str, u64> = Default::default();
    let mut steps = Steps::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [project, mark, ms] = fields[..] else { bail!("the script printed {line:?}, not a mark") };
        let ms: u64 = ms.trim().parse().with_context(|| format!("the script printed {line:?}, not a mark"))?;
        if mark != "begin" {
            let Some(start) = last.get(project) else { bail!("mark {line:?} before {project}'s begin") };
            steps.entry(mark.to_owned()).or_default().push(ms.saturating_sub(*start) as f64);
        }
        last.insert(project, ms);
    }
    Ok(steps)
}
