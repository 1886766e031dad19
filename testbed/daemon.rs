//! A `deeplo daemon` process for the daemon tests: the real binary, started with its own
//! data directory, config file, HTTP port and admin socket, and stopped (or killed) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::scenario::Scenario;

/// A running `deeplo daemon` with its own data, config, port and socket.
#[derive(Debug)]
pub struct DaemonProcess {
    child: Option<Child>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The HTTP port it listens on (webhooks, `/healthz`, run logs).
    pub http_port: u16,
    /// Its admin socket.
    pub socket: PathBuf,
    /// Its config file, which a test may rewrite to exercise reloads.
    pub config: PathBuf,
}

impl DaemonProcess {
    /// Writes `yaml` as the config file and starts `bin daemon` against the scenario's host.
    pub fn start(bin: &Path, scenario: &Scenario, yaml: &str, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let key = scenario.sshd.client_key().display().to_string();
        let mut env = vec![("DEEPLO_SSH_PRIVATE_KEY_FILE", key.as_str())];
        env.extend_from_slice(extra_env);
        Self::start_in(bin, scenario.tmp.path(), &scenario.data_dir(), yaml, &env)
    }

    /// Writes `yaml` as the config file in `dir` (where the log and the admin socket go too)
    /// and starts `bin daemon` on the data directory `data_dir`, with no SSH key: for a
    /// daemon that needs no host of its own, such as one that only serves agents.
    pub fn start_in(
        bin: &Path,
        dir: &Path,
        data_dir: &Path,
        yaml: &str,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let config = dir.join("config.yml");
        std::fs::write(&config, yaml)?;
        let mut env: Vec<(String, String)> = vec![
            ("DEEPLO_DATA_DIR".into(), data_dir.display().to_string()),
            ("DEEPLO_CONFIG_FILE".into(), config.display().to_string()),
            ("DEEPLO_HTTP_PORT".into(), free_port()?.to_string()),
            ("DEEPLO_UNIX_SOCKET".into(), dir.join("deeplo.sock").display().to_string()),
            ("DEEPLO_SSH_HOST_KEY_POLICY".into(), "accept-new".into()),
            ("DEEPLO_ENV_FILE".into(), dir.join("no-env-file").display().to_string()),
            ("DEEPLO_LOG_FORMAT".into(), "text".into()),
            ("DEEPLO_LOG_LEVEL".into(), "debug".into()),
            ("DEEPLO_SHUTDOWN_GRACE".into(), "30s".into()),
        ];
        for (k, v) in extra_env {
            env.retain(|(key, _)| key != k);
            env.push(((*k).into(), (*v).into()));
        }
        let http_port = env.iter().find(|(k, _)| k == "DEEPLO_HTTP_PORT").map(|(_, v)| v.parse()).transpose()?.unwrap();
        let socket = PathBuf::from(&env.iter().find(|(k, _)| k == "DEEPLO_UNIX_SOCKET").unwrap().1);
        let mut daemon =
            Self { child: None, bin: bin.to_owned(), env, log: dir.join("daemon.log"), http_port, socket, config };
        daemon.spawn()?;
        Ok(daemon)
    }

    /// Starts (again) with the same settings; output is appended to the same log.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("daemon")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        wait_for(Duration::from_secs(30), || self.http("GET", "/healthz").is_some_and(|(code, _)| code == 200))
            .map_err(|_| anyhow::anyhow!("the daemon did not become healthy; its log:\n{}", self.log()))
    }

    /// Runs `bin args...` with the daemon's environment (so the CLI finds its socket).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run deeplo")
    }

    /// [`cli`](Self::cli) with `input` on its standard input.
    pub fn cli_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(&self.bin)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run deeplo");
        child.stdin.take().expect("piped").write_all(input).expect("write the input");
        child.wait_with_output().expect("run deeplo")
    }

    /// The setting `key` it was started with, if any.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The base URL of its HTTP port: `https://localhost:PORT` when it serves TLS
    /// (`DEEPLO_TLS_CERT_FILE`, a certificate for `localhost`), else `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        match self.setting("DEEPLO_TLS_CERT_FILE") {
            Some(_) => format!("https://localhost:{}", self.http_port),
            None => format!("http://127.0.0.1:{}", self.http_port),
        }
    }

    /// `curl` against the HTTP port: `(status, body)`, `None` when nothing answers. Over
    /// TLS it trusts the daemon's own certificate only.
    pub fn http(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "5", "-X", method, "-w", "\n%{http_code}"]);
        if let Some(cert) = self.setting("DEEPLO_TLS_CERT_FILE") {
            curl.arg("--cacert").arg(cert);
        }
        let out = curl.arg(format!("{}{path}", self.base_url())).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        let code: u16 = code.trim().parse().ok()?;
        (code != 0).then(|| (code, body.to_owned()))
    }

    /// A request to the HTTP API with `token` as its bearer, handed to curl on its standard
    /// input (never on its command line, where `ps` shows it); a POST sends `{}`. The status
    /// and the body.
    ///
    /// # Panics
    ///
    /// When curl cannot run or answers nothing readable.
    pub fn api(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        self.api_with(method, path, token, "{}")
    }

    /// The same with `body` as the JSON body of a POST.
    ///
    /// # Panics
    ///
    /// As [`api`](Self::api).
    pub fn api_with(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        use std::io::Write as _;
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "10", "-X", method, "-w", "\n%{http_code}", "-H", "@-"]);
        if method == "POST" {
            curl.args(["-H", "Content-Type: application/json", "--data", body]);
        }
        if let Some(cert) = self.setting("DEEPLO_TLS_CERT_FILE") {
            curl.arg("--cacert").arg(cert);
        }
        let mut child = curl
            .arg(format!("{}{path}", self.base_url()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl runs");
        let header = token.map(|t| format!("Authorization: Bearer {t}\n")).unwrap_or_default();
        child.stdin.take().expect("curl's stdin").write_all(header.as_bytes()).expect("curl reads its headers");
        let out = child.wait_with_output().expect("curl ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').expect("curl wrote the status");
        (code.trim().parse().expect("a status"), body.to_owned())
    }

    /// Sends a signal (`libc` numbers: 9 KILL, 15 TERM, 1 HUP) and, for KILL and TERM, waits
    /// for the process to end; returns its exit status then.
    pub fn signal(&mut self, signal: &str) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
        if signal == "HUP" {
            return None;
        }
        let status = child.wait().ok();
        self.child = None;
        status
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything it has logged so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `wait_for` gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// Polls `check` every 100 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> Result<(), TimedOut> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(TimedOut)
}
