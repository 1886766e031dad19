//! A whole deploy setting for end-to-end tests: a real sshd as the host, a git repository
//! with a busybox web server as the Compose project, a data directory, and an engine built
//! from the real file store, git source and SSH connector.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use deeplo_core::config::{self, EnvMap};
use deeplo_core::git::GitAuth;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::{Engine, EngineBuilder, FileStore, GitSource};
use deeplo_ssh::{SshConnector, SshOptions};

use crate::{GitRepo, Sshd, docker, free_port};

/// The image every test service runs: `FROM scratch` plus busybox (sh, httpd, wget).
pub const IMAGE: &str = "deeplo-testbed-busybox";

/// Builds [`IMAGE`] once per process.
pub fn ensure_image() -> anyhow::Result<()> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            docker::require_engine().map_err(|e| e.to_string())?;
            docker::build_busybox_image(IMAGE, None).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A compose file serving `./www` on `127.0.0.1:port`, plus extra service keys. `init:
/// true`: httpd as PID 1 ignores SIGTERM, so every recreate would wait out Docker's 10s stop
/// timeout.
pub fn compose_file(port: u16, extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n    init: true\n    volumes: [\"./www:/www:ro\"]\n    ports: [\"127.0.0.1:{port}:8080\"]\n{extra}"
    )
}

/// Which transport a scenario deploys through: the same scenarios run once per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The host's sshd.
    Ssh,
    /// The `deeplo-agent` binary on the host, connected to a hub.
    Agent,
}

impl Via {
    /// `ssh` or `agent`, for project names that keep the two runs apart.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Agent => "agent",
        }
    }
}

/// An engine and, when it deploys through the agent, the agent and its hub (which live as
/// long as it does).
#[derive(Debug)]
pub struct Target {
    /// The engine.
    pub engine: Engine,
    /// The agent of the host, for [`Via::Agent`].
    pub agent: Option<crate::agent::AgentBed>,
}

impl std::ops::Deref for Target {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// One end-to-end setting. Containers of its compose project are removed on drop.
#[derive(Debug)]
pub struct Scenario {
    /// Holds the data dir, the deploy dir and the repository; removed on drop.
    pub tmp: tempfile::TempDir,
    /// The host.
    pub sshd: Sshd,
    /// The repository the project is committed to.
    pub repo: GitRepo,
    /// The project's name (and compose project name).
    pub project: String,
    /// The port the web service publishes on 127.0.0.1.
    pub web_port: u16,
}

impl Scenario {
    /// Starts the host and commits version 1 of the site under `deploy/`.
    pub fn new(project: &str) -> anyhow::Result<Self> {
        Self::new_with(project, crate::SshdOptions::default())
    }

    /// The same with a host started with `options` (its sessions' environment, say).
    pub fn new_with(project: &str, options: crate::SshdOptions) -> anyhow::Result<Self> {
        ensure_image()?;
        let tmp = tempfile::Builder::new().prefix("deeplo-e2e-").tempdir()?;
        let sshd = Sshd::start_with(options)?;
        let repo = GitRepo::init(&tmp.path().join("repo"), "main")?;
        let web_port = free_port()?;
        repo.write("deploy/compose.yml", compose_file(web_port, ""))?;
        repo.write("deploy/www/index.html", "version 1\n")?;
        repo.commit("version 1")?;
        docker::remove_project(project);
        Ok(Self { tmp, sshd, repo, project: project.to_owned(), web_port })
    }

    /// The engine's data directory (store, mirrors, known_hosts).
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// The deploy_dir of the host.
    pub fn deploy_dir(&self) -> PathBuf {
        self.tmp.path().join("srv")
    }

    /// The live directory of the project.
    pub fn live_dir(&self) -> PathBuf {
        self.deploy_dir().join(&self.project)
    }

    /// A config with one host (this sshd) and the project; `project_extra` is appended to
    /// the project entry (indented YAML lines).
    pub fn config_yaml(&self, project_extra: &str) -> String {
        format!(
            "hosts:\n  - name: h1\n    address: 127.0.0.1\n    port: {port}\n    user: {user}\n    deploy_dir: {dir}\n\
             repos:\n  - name: app\n    url: {url}\n    branch: main\n\
             projects:\n  - name: {project}\n    repo: app\n    repo_subdir: deploy\n    targets: [h1]\n    extra_files: [www]\n{project_extra}",
            port = self.sshd.port(),
            user = self.sshd.user(),
            dir = self.deploy_dir().display(),
            url = self.repo.path().display(),
            project = self.project,
        )
    }

    /// [`config_yaml`](Self::config_yaml) for a host reached `via` a transport: for the
    /// agent, the host entry says `transport: agent` and gives no address, port or user.
    pub fn config_yaml_via(&self, via: Via, project_extra: &str) -> String {
        let yaml = self.config_yaml(project_extra);
        match via {
            Via::Ssh => yaml,
            Via::Agent => {
                let ssh_part =
                    format!("    address: 127.0.0.1\n    port: {}\n    user: {}\n", self.sshd.port(), self.sshd.user());
                yaml.replacen(&ssh_part, "    transport: agent\n", 1)
            }
        }
    }

    /// An engine on `yaml` deploying `via` a transport: over SSH as [`engine`](Self::engine),
    /// or through a real agent of host `h1` connected to a hub of its own.
    pub async fn engine_via(&self, via: Via, yaml: &str) -> anyhow::Result<Target> {
        let store = Arc::new(FileStore::open(&self.data_dir(), jiff::Timestamp::now())?);
        self.engine_via_with(via, yaml, move |b| b.store(store)).await
    }

    /// The same with an environment vault in the engine's store, its master key in
    /// `key_file`; the vault is returned to set values with.
    pub async fn engine_via_vault(
        &self,
        via: Via,
        yaml: &str,
        key_file: &Path,
    ) -> anyhow::Result<(Target, deeplo_core::vault::EnvVault)> {
        let store = Arc::new(FileStore::open(&self.data_dir(), jiff::Timestamp::now())?);
        let vault = deeplo_core::vault::EnvVault::new(store.clone(), key_file);
        let given = vault.clone();
        let target = self.engine_via_with(via, yaml, move |b| b.store(store).vault(given)).await?;
        Ok((target, vault))
    }

    async fn engine_via_with(
        &self,
        via: Via,
        yaml: &str,
        adjust: impl FnOnce(EngineBuilder) -> EngineBuilder,
    ) -> anyhow::Result<Target> {
        let data = self.data_dir();
        let builder = adjust(engine_builder_parts(yaml, &data, &self.sshd.client_key(), HostKeyPolicy::AcceptNew)?);
        match via {
            Via::Ssh => Ok(Target { engine: builder.build()?, agent: None }),
            Via::Agent => {
                let host = deeplo_core::model::HostName::new("h1")?;
                let agent = crate::agent::AgentBed::start(&host, self.tmp.path()).await?;
                let ssh = ssh_connector(&data, &self.sshd.client_key(), HostKeyPolicy::AcceptNew)?;
                let connector = deeplo_agent::hub::HubConnector::new(Arc::clone(&agent.hub), Arc::new(ssh));
                Ok(Target { engine: builder.connector(Arc::new(connector)).build()?, agent: Some(agent) })
            }
        }
    }

    /// An engine on `yaml` with the real store, git source and SSH connector.
    pub fn engine(&self, yaml: &str) -> anyhow::Result<Engine> {
        self.engine_with(yaml, HostKeyPolicy::AcceptNew)
    }

    /// The same with a host key policy of the test's choosing.
    pub fn engine_with(&self, yaml: &str, policy: HostKeyPolicy) -> anyhow::Result<Engine> {
        Ok(engine_builder(yaml, &self.data_dir(), &self.sshd.client_key(), policy)?.build()?)
    }

    /// What the site answers now (`curl` on the published port).
    pub fn fetch_site(&self) -> Option<String> {
        let out = std::process::Command::new("curl")
            .args(["-fsS", "--max-time", "3"])
            .arg(format!("http://127.0.0.1:{}/", self.web_port))
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        docker::remove_project(&self.project);
    }
}

/// An engine builder on `yaml` with the real parts: the file store and git mirrors under
/// `data`, and the SSH connector logging in with `key` (no agent).
pub fn engine_builder(yaml: &str, data: &Path, key: &Path, policy: HostKeyPolicy) -> anyhow::Result<EngineBuilder> {
    let store = FileStore::open(data, jiff::Timestamp::now())?;
    Ok(engine_builder_parts(yaml, data, key, policy)?.store(Arc::new(store)))
}

/// [`engine_builder`] without a store, for a caller that gives its own.
fn engine_builder_parts(yaml: &str, data: &Path, key: &Path, policy: HostKeyPolicy) -> anyhow::Result<EngineBuilder> {
    let loaded = config::parse(yaml, &EnvMap::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let known_hosts = KnownHosts::new(data.join("known_hosts"), policy);
    let source = GitSource::new(
        data.join("repos"),
        GitAuth { private_key: None, passphrase: None, known_hosts, https_token: None },
    );
    Ok(Engine::builder()
        .config(loaded.config)
        .source(Arc::new(source))
        .connector(Arc::new(ssh_connector(data, key, policy)?)))
}

/// The SSH connector of [`engine_builder`]: known hosts under `data`, logging in with `key`.
pub fn ssh_connector(data: &Path, key: &Path, policy: HostKeyPolicy) -> anyhow::Result<SshConnector> {
    let mut options = SshOptions::new(KnownHosts::new(data.join("known_hosts"), policy));
    options.private_key = Some(key.to_owned());
    options.agent_socket = None;
    Ok(SshConnector::new(options)?)
}

/// Every file under `dir` with its content and mode, to compare a directory before and
/// after (byte for byte).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let data = if meta.file_type().is_symlink() {
                    std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()
                } else {
                    std::fs::read(&path).unwrap()
                };
                out.push((path.strip_prefix(dir).unwrap().to_owned(), data, meta.permissions().mode()));
            }
        }
    }
    out.sort();
    out
}
