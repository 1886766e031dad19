//! The test bed of the benchmark: ten sshd "hosts", the project's repository, the engine,
//! and the two ways of deploying (deeplo, the script), each checked on every host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use deeplo_core::Engine;
use deeplo_core::known_hosts::HostKeyPolicy;
use deeplo_core::schedule::Limits;
use deeplo_testbed::scenario::{IMAGE, engine_builder};
use deeplo_testbed::{GitRepo, Sshd, SshdOptions, docker};

use super::{HOSTS, Measured, PROJECT, STATIC_FILES, SUBDIR, Steps, Tool, WARMUP, deploy_with_deeplo};

/// The hosts, the repository and the files they share.
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
    pub(crate) fn start() -> anyhow::Result<Self> {
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
        let data = self.tmp.path().join(format!("data-{hosts}"));
        Ok(engine_builder(&self.config_yaml(hosts), &data, &self.key, HostKeyPolicy::AcceptNew)?
            .limits(Limits { max_workers: workers, ..Limits::default() })
            .build()?)
    }

    pub(crate) fn measure(
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
