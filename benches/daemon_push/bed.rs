//! The setting of one host count: the hosts (an sshd each, on the local engine for one
//! host, on an engine of its own each for more), the watched repository, the daemon's
//! config, and the floor: the same change brought up by hand with `docker compose`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use deeplo_testbed::engines::DockerEngine;
use deeplo_testbed::scenario::{IMAGE, Scenario};
use deeplo_testbed::{GitRepo, Sshd, SshdOptions, docker, free_port, run};

use super::probe::wait_served;
use super::{FLOOR_PROJECT, POLL_INTERVAL, PROJECT, STATIC_FILES, SUBDIR};

/// The project's compose file: httpd on `127.0.0.1:$WEB_PORT` in the host's network, the
/// port coming from the session's environment (each host's sshd sets `WEB_PORT`), so that
/// one project serves on a port of its own per host.
///
/// Host networking, not a published port: a request sent while the container starts goes
/// through Docker's port proxy to the container's address before its interface answers
/// ARP, and the kernel asks again only after `retrans_time_ms` (1 s); every request queued
/// meanwhile waits for it, so probing a published port adds up to a second of the probe's
/// own making to each run. `init: true`: httpd as PID 1 ignores SIGTERM, so without an
/// init every recreate would wait out Docker's 10 s stop timeout.
fn compose_yaml() -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"127.0.0.1:${{WEB_PORT:?set by the host's sshd}}\", \"-h\", \"/www\"]\n    init: true\n    network_mode: host\n    volumes: [\"./www:/www:ro\"]\n"
    )
}

/// One host: where its engine is and the ports deeplo's and the floor's projects serve on.
struct Host {
    /// `DOCKER_HOST` of its engine; `None`: this machine's own engine.
    docker_host: Option<String>,
    port: u16,
    floor_port: u16,
}

pub(crate) struct Bed {
    /// Declared first so that they go first on drop: their containers stop before the
    /// directories they mount are deleted.
    engines: Vec<DockerEngine>,
    /// Host 0's sshd (its client key is authorized on every host), the repository and the
    /// daemon's directory, in the shape `DaemonProcess` takes.
    pub(crate) scenario: Scenario,
    others: Vec<Sshd>,
    hosts: Vec<Host>,
    commits: std::cell::Cell<usize>,
    /// The commit made at start and its index.html: what the daemon deploys first.
    pub(crate) first: (String, String),
}

impl Bed {
    pub(crate) fn start(hosts: usize) -> anyhow::Result<Self> {
        let engines = if hosts > 1 { start_engines(hosts)? } else { Vec::new() };
        let tmp = tempfile::Builder::new().prefix("deeplo-bench-daemon-").tempdir()?;
        let mut ports = Vec::new();
        let mut host_list = Vec::new();
        for i in 0..hosts {
            let port = fresh_port(&mut ports)?;
            let floor_port = fresh_port(&mut ports)?;
            host_list.push(Host { docker_host: engines.get(i).map(DockerEngine::host), port, floor_port });
        }
        let mut sshds: Vec<Sshd> = Vec::new();
        for host in &host_list {
            let mut set_env = vec![("WEB_PORT".to_owned(), host.port.to_string())];
            if let Some(docker_host) = &host.docker_host {
                set_env.push(("DOCKER_HOST".to_owned(), docker_host.clone()));
            }
            let authorized_keys = match sshds.first() {
                Some(first) => vec![std::fs::read_to_string(first.dir().join("client_key.pub"))?],
                None => Vec::new(),
            };
            sshds.push(Sshd::start_with(SshdOptions { set_env, authorized_keys, ..Default::default() })?);
        }
        let repo = GitRepo::init(&tmp.path().join("repo"), "main")?;
        repo.write(&format!("{SUBDIR}/compose.yml"), compose_yaml())?;
        for (path, content) in STATIC_FILES {
            repo.write(&format!("{SUBDIR}/{path}"), content)?;
        }
        let first = sshds.remove(0);
        let scenario = Scenario { tmp, sshd: first, repo, project: PROJECT.into(), web_port: host_list[0].port };
        let mut bed = Self {
            engines,
            scenario,
            others: sshds,
            hosts: host_list,
            commits: std::cell::Cell::new(0),
            first: Default::default(),
        };
        if bed.engines.is_empty() {
            docker::remove_project(PROJECT);
            docker::remove_project(FLOOR_PROJECT);
        }
        bed.first = bed.commit()?;
        Ok(bed)
    }

    pub(crate) fn hosts(&self) -> usize {
        self.hosts.len()
    }

    fn sshd(&self, i: usize) -> &Sshd {
        if i == 0 { &self.scenario.sshd } else { &self.others[i - 1] }
    }

    fn deploy_dir(&self, i: usize) -> PathBuf {
        self.scenario.tmp.path().join("hosts").join(format!("h{i}"))
    }

    /// The daemon's config: every host, the repository polled every [`POLL_INTERVAL`], the
    /// project on every host.
    pub(crate) fn config_yaml(&self) -> String {
        let mut yaml = String::from("hosts:\n");
        for i in 0..self.hosts() {
            let sshd = self.sshd(i);
            yaml.push_str(&format!(
                "  - name: h{i}\n    address: 127.0.0.1\n    port: {port}\n    user: {user}\n    deploy_dir: {dir}\n",
                port = sshd.port(),
                user = sshd.user(),
                dir = self.deploy_dir(i).display(),
            ));
        }
        let targets: Vec<String> = (0..self.hosts()).map(|i| format!("h{i}")).collect();
        yaml.push_str(&format!(
            "repos:\n  - name: app\n    url: {url}\n    branch: main\n    trigger_mode: poll\n    poll_interval: {POLL_INTERVAL}\n\
             projects:\n  - name: {PROJECT}\n    repo: app\n    repo_subdir: {SUBDIR}\n    targets: [{targets}]\n    extra_files: [www]\n    persist_files: []\n",
            url = self.scenario.repo.path().display(),
            targets = targets.join(", "),
        ));
        yaml
    }

    /// Commits a new www/index.html; returns the commit and the content.
    pub(crate) fn commit(&self) -> anyhow::Result<(String, String)> {
        let n = self.commits.get();
        self.commits.set(n + 1);
        let content = format!("<h1>deeplo {n}</h1>\n");
        self.scenario.repo.write(&format!("{SUBDIR}/www/index.html"), &content)?;
        let sha = self.scenario.repo.commit(&format!("version {n}"))?;
        Ok((sha, content))
    }

    /// Waits until every host serves `content` on deeplo's ports; `check` runs each round
    /// and can give up early.
    pub(crate) fn wait_deeplo(&self, content: &str, check: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
        let ports: Vec<u16> = self.hosts.iter().map(|h| h.port).collect();
        wait_served(&ports, content, check)
    }

    /// Fails unless every extra engine runs deeplo's project, once: each host's sessions
    /// really reach their own engine.
    pub(crate) fn check_engines(&self) -> anyhow::Result<()> {
        for (i, engine) in self.engines.iter().enumerate() {
            let label = format!("label=com.docker.compose.project={PROJECT}");
            let ids = run(engine.docker().args(["ps", "-q", "--filter"]).arg(label))?;
            let count = ids.split_whitespace().count();
            if count != 1 {
                bail!("engine {i} runs {count} containers of {PROJECT}, expected 1: does h{i}'s sshd set DOCKER_HOST?");
            }
        }
        Ok(())
    }

    /// The floor of run `n`: the new files written beside the last ones (as deeplo stages
    /// them), then one `docker compose up` per host, all at once; the time until every
    /// host serves them, in ms.
    pub(crate) fn floor_push(&self, n: usize) -> anyhow::Result<f64> {
        let content = format!("<h1>floor {n}</h1>\n");
        let clock = Instant::now();
        let mut children = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let dir = self.scenario.tmp.path().join("floor").join(format!("h{i}-{}", n % 2));
            write_project(&dir, &content)?;
            let mut cmd = Command::new("docker");
            if let Some(docker_host) = &host.docker_host {
                cmd.env("DOCKER_HOST", docker_host);
            }
            cmd.env("WEB_PORT", host.floor_port.to_string())
                .args(["compose", "--project-name", FLOOR_PROJECT, "--project-directory"])
                .arg(&dir)
                .arg("-f")
                .arg(dir.join("compose.yml"))
                .args(["up", "--detach", "--force-recreate"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            children.push(cmd.spawn().context("run docker compose")?);
        }
        let ports: Vec<u16> = self.hosts.iter().map(|h| h.floor_port).collect();
        wait_served(&ports, &content, || check_children(&mut children))?;
        let ms = clock.elapsed().as_secs_f64() * 1e3;
        for child in children {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!("docker compose up failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
            }
        }
        Ok(ms)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // The extra engines remove everything of theirs when they stop; the scenario
        // removes deeplo's project from the local engine.
        if self.engines.is_empty() {
            docker::remove_project(FLOOR_PROJECT);
        }
    }
}

/// One engine per host, each with the test image built in it.
fn start_engines(hosts: usize) -> anyhow::Result<Vec<DockerEngine>> {
    let mut engines = Vec::new();
    for i in 0..hosts {
        let index = u8::try_from(i)?;
        let engine = DockerEngine::start(index).with_context(|| format!("start engine {index}"))?;
        engine.build_busybox_image(IMAGE)?;
        engines.push(engine);
    }
    Ok(engines)
}

/// A free port that is not one of `taken` (which it joins).
fn fresh_port(taken: &mut Vec<u16>) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let port = free_port()?;
        if !taken.contains(&port) {
            taken.push(port);
            return Ok(port);
        }
    }
    bail!("no free port found")
}

/// The project's files as a person would lay them out by hand.
fn write_project(dir: &Path, index: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let files = STATIC_FILES.iter().copied().chain([("www/index.html", index)]);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(&path, content)?;
    }
    Ok(std::fs::write(dir.join("compose.yml"), compose_yaml())?)
}

fn check_children(children: &mut [Child]) -> anyhow::Result<()> {
    for child in children.iter_mut() {
        if let Some(status) = child.try_wait()?
            && !status.success()
        {
            let mut err = String::new();
            if let Some(stderr) = child.stderr.as_mut() {
                let _ = stderr.read_to_string(&mut err);
            }
            bail!("docker compose up failed ({status}): {err}");
        }
    }
    Ok(())
}
