//! A real OpenSSH server on 127.0.0.1, with a generated host key and a generated client key.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::run;

/// How to start an [`Sshd`].
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Listen on this port instead of a free one (to restart a "host" with a new key).
    pub port: Option<u16>,
    /// Host key type for `ssh-keygen -t` (`ed25519`, `ecdsa`, `rsa`).
    pub host_key_type: String,
    /// `SetEnv` entries for every session (`DOCKER_HOST=unix:///...` points a host at its engine).
    pub set_env: Vec<(String, String)>,
    /// Extra public keys to authorize besides the generated client key.
    pub authorized_keys: Vec<String>,
    /// Take passwords (checked against /etc/shadow: the server runs with `UsePAM no`).
    pub password_authentication: bool,
    /// Also read each user's own `~/.ssh/authorized_keys`, as a stock sshd does, before the
    /// server's generated file (which stays: the client key gets in as before).
    pub user_authorized_keys: bool,
}

impl Default for SshdOptions {
    fn default() -> Self {
        Self {
            port: None,
            host_key_type: "ed25519".into(),
            set_env: Vec::new(),
            authorized_keys: Vec::new(),
            password_authentication: false,
            user_authorized_keys: false,
        }
    }
}

/// A running `sshd -D`; killed on drop.
#[derive(Debug)]
pub struct Sshd {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Sshd {
    /// Starts a server with the default options.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(SshdOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: SshdOptions) -> anyhow::Result<Self> {
        let sshd = sshd_binary()?;
        std::fs::create_dir_all("/run/sshd").context("create /run/sshd (privilege separation dir)")?;
        let dir = tempfile::Builder::new().prefix("deeplo-sshd-").tempdir()?;
        let d = dir.path();
        keygen(&d.join("host_key"), &options.host_key_type)?;
        keygen(&d.join("client_key"), "ed25519")?;
        let mut authorized = std::fs::read_to_string(d.join("client_key.pub"))?;
        for key in &options.authorized_keys {
            authorized.push_str(key.trim());
            authorized.push('\n');
        }
        std::fs::write(d.join("authorized_keys"), authorized)?;
        let port = match options.port {
            Some(p) => p,
            None => free_port()?,
        };
        let sftp = ["/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("internal-sftp");
        let server_keys = d.join("authorized_keys").display().to_string();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
             AuthorizedKeysFile {ak}\nStrictModes no\nPasswordAuthentication {password}\n\
             KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n\
             Subsystem sftp {sftp}\nLogLevel VERBOSE\nMaxSessions 100\nMaxStartups 100:30:200\n\
             PerSourcePenalties no\n",
            hk = d.join("host_key").display(),
            pid = d.join("sshd.pid").display(),
            ak = if options.user_authorized_keys { format!(".ssh/authorized_keys {server_keys}") } else { server_keys },
            password = if options.password_authentication { "yes" } else { "no" },
        );
        if !options.set_env.is_empty() {
            let env: Vec<String> = options.set_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            config.push_str(&format!("SetEnv {}\n", env.join(" ")));
        }
        let config = strip_unsupported(&sshd, config, d)?;
        std::fs::write(d.join("sshd_config"), config)?;
        let log = std::fs::File::create(d.join("sshd.log"))?;
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", sshd.display()))?;
        let mut me = Self { port, dir, child: Some(child) };
        me.wait_ready()?;
        Ok(me)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("sshd exited at start ({status}): {}", self.log());
            }
            if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read;
                let mut stream = stream;
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut banner = [0u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("sshd did not answer on port {} within 10s: {}", self.port, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user sessions log in as (the user running the tests).
    pub fn user(&self) -> String {
        current_user()
    }

    /// The generated client private key (OpenSSH format, no passphrase).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The server's public host key line (`ssh-ed25519 AAAA...`).
    pub fn host_public_key(&self) -> anyhow::Result<String> {
        let line = std::fs::read_to_string(self.dir.path().join("host_key.pub"))?;
        let mut parts = line.split_whitespace();
        Ok(format!("{} {}", parts.next().unwrap_or_default(), parts.next().unwrap_or_default()))
    }

    /// The line a known_hosts file holds for this server.
    pub fn known_hosts_line(&self) -> anyhow::Result<String> {
        Ok(format!("[127.0.0.1]:{} {}", self.port, self.host_public_key()?))
    }

    /// The server's own log (useful in failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (the port is free again afterwards).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn sshd_binary() -> anyhow::Result<PathBuf> {
    for p in ["/usr/sbin/sshd", "/usr/local/sbin/sshd"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("OpenSSH's server (sshd) is not installed: run `bash .ci/install-deps` (apt-get install openssh-server)")
}

fn keygen(path: &Path, kind: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-N", "", "-C", "deeplo-test", "-t", kind]).arg("-f").arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    run(&mut cmd).map(|_| ())
}

/// Drops config lines this sshd version does not know (`PerSourcePenalties` is recent).
fn strip_unsupported(sshd: &Path, config: String, dir: &Path) -> anyhow::Result<String> {
    let probe = dir.join("probe_config");
    std::fs::write(&probe, &config)?;
    let out = Command::new(sshd).arg("-t").arg("-f").arg(&probe).output()?;
    if out.status.success() {
        return Ok(config);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let kept: Vec<&str> = config
        .lines()
        .filter(|line| {
            let key = line.split_whitespace().next().unwrap_or_default();
            !err.contains(&format!("Bad configuration option: {key}"))
                && !err.contains(&format!("Unsupported option {key}"))
        })
        .collect();
    Ok(kept.join("\n") + "\n")
}

fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| run(Command::new("id").arg("-un")).ok().map(|s| s.trim().to_owned()))
        .unwrap_or_else(|| "root".into())
}
