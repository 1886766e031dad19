//! A runner agent for the scenario tests: the real `deeplo-agent` binary, connected to an
//! agent hub served on a local port, as a daemon serves it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deeplo_agent::hub::{Hub, HubOptions, router};
use deeplo_core::model::HostName;
use deeplo_core::{FileStore, RunnerTokenStore};

/// The `deeplo-agent` binary of this build: next to the test executables' `deps` directory.
///
/// # Errors
///
/// When it is not built (a test run of another package alone does not build it).
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).ok_or_else(|| anyhow::anyhow!("no target directory"))?;
    let bin = profile_dir.join("deeplo-agent");
    if !bin.is_file() {
        anyhow::bail!(
            "{} is not built: run `cargo build -p deeplo-agent` (the workspace's test run builds it)",
            bin.display()
        );
    }
    Ok(bin)
}

/// A hub on 127.0.0.1 with its own token store, and one agent process connected to it.
#[derive(Debug)]
pub struct AgentBed {
    /// The hub the agent connects to; a connector for the engine is built on it.
    pub hub: Arc<Hub>,
    /// The host the agent serves.
    pub host: HostName,
    /// The agent process.
    pub agent: AgentProcess,
    server: tokio::task::JoinHandle<()>,
    _store: tempfile::TempDir,
}

impl AgentBed {
    /// Starts a hub (heartbeats every second) and an agent of `host` whose token, log and
    /// files live under `dir`, and waits for its hello.
    ///
    /// # Errors
    ///
    /// When the binary is missing, or the agent does not connect within 30 s (the error
    /// holds its log).
    pub async fn start(host: &HostName, dir: &Path) -> anyhow::Result<Self> {
        let store_dir = tempfile::Builder::new().prefix("hub-").tempdir_in(dir)?;
        let store = Arc::new(FileStore::open(store_dir.path(), jiff::Timestamp::now())?);
        let tokens = RunnerTokenStore::new(store);
        let token = tokens.issue(host, jiff::Timestamp::now()).await?;
        let token_file = dir.join(format!("{host}.token"));
        std::fs::write(&token_file, format!("{}\n", token.secret().expose()))?;
        let options = HubOptions { heartbeat_interval_secs: 1, heartbeat_allowance: 5, ..HubOptions::default() };
        let hub = Hub::new(tokens, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let served = Arc::clone(&hub);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router(served)).await;
        });
        let agent = AgentProcess::start(&agent_binary()?, &url, &token_file, dir.join(format!("{host}.agent.log")))?;
        let bed = Self { hub, host: host.clone(), agent, server, _store: store_dir };
        bed.wait_connected(Duration::from_secs(30)).await?;
        Ok(bed)
    }

    /// Waits until the agent is connected (again).
    ///
    /// # Errors
    ///
    /// When it is not within `timeout`; the error holds the agent's log.
    pub async fn wait_connected(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.hub.agent(&self.host).is_none() {
            if Instant::now() > deadline {
                anyhow::bail!("the agent of {} did not connect; its log:\n{}", self.host, self.agent.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for AgentBed {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A `deeplo-agent run` process, killed on drop.
#[derive(Debug)]
pub struct AgentProcess {
    child: Option<Child>,
    bin: PathBuf,
    url: String,
    token_file: PathBuf,
    log: PathBuf,
}

impl AgentProcess {
    /// Starts `bin run --url URL --token-file FILE`, logging (at debug) to `log`.
    ///
    /// # Errors
    ///
    /// When it cannot be spawned.
    pub fn start(bin: &Path, url: &str, token_file: &Path, log: PathBuf) -> anyhow::Result<Self> {
        let mut process =
            Self { child: None, bin: bin.to_owned(), url: url.to_owned(), token_file: token_file.to_owned(), log };
        process.spawn()?;
        Ok(process)
    }

    /// Starts it (again) with the same arguments; output is appended to the same log.
    ///
    /// # Errors
    ///
    /// When it cannot be spawned.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .args(["run", "--url", &self.url, "--token-file"])
            .arg(&self.token_file)
            // Beside the log, the same for every start: a restarted agent takes up the
            // commands of the one before.
            .arg("--state-dir")
            .arg(self.log.with_extension("state"))
            .env("DEEPLO_AGENT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILLs it (no close frame, no cleanup: the commands it ran go on under their
    /// keepers, for the next start to take up or stop) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
