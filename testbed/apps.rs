//! Applications for the scenario tests: the Caddy proxy image built from the machine's own
//! `caddy` binary (images cannot be pulled here), a web application's Dockerfile on the
//! busybox image, a load client that counts every answer through a deploy, and cleanup.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::run;

/// The proxy image the tests configure as `proxy_image`.
pub const CADDY_IMAGE: &str = "deeplo-testbed-caddy";

/// Builds [`CADDY_IMAGE`] once per process: `FROM scratch` with Debian's `caddy` binary, the
/// loader and libraries `ldd` lists for it, and busybox (for `wget`, which deeplo's health
/// probes run in the proxy, as in the official `caddy:2` image).
pub fn ensure_caddy_image() -> anyhow::Result<()> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_caddy_image(CADDY_IMAGE).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_caddy_image(tag: &str) -> anyhow::Result<()> {
    crate::docker::require_engine()?;
    let caddy =
        which("caddy").context("caddy is not installed: run `bash .ci/install-deps` (apt-get install caddy)")?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let mut files = vec![caddy.clone(), crate::docker::busybox_path()?.to_owned()];
    let ldd = run(Command::new("ldd").arg(&caddy))?;
    for line in ldd.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`.
        let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            files.push(PathBuf::from(path));
        }
    }
    for file in &files {
        let to = root.join(file.strip_prefix("/")?);
        std::fs::create_dir_all(to.parent().unwrap_or(&root))?;
        std::fs::copy(file, &to).with_context(|| format!("copy {}", file.display()))?;
    }
    // busybox sits at /bin/busybox; caddy at /usr/bin/caddy, both in PATH.
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n")?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY root/ /\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/usr/bin:/bin\n",
    )?;
    run(Command::new("docker").args(["build", "-q", "-t", tag]).arg(dir.path())).map(|_| ())
}

fn which(program: &str) -> anyhow::Result<PathBuf> {
    let path = run(Command::new("sh").arg("-c").arg("command -v \"$0\"").arg(program))?;
    let path = path.trim();
    if path.is_empty() {
        bail!("{program} not found in PATH");
    }
    Ok(PathBuf::from(path))
}

/// A Dockerfile for a web application on the busybox test image that serves `www/` on
/// port 8080; `extra` goes before the command (a `RUN` that fails, say). The shell in front
/// of httpd stops at SIGTERM, so that a drained release stops at once.
pub fn web_dockerfile(port: u16, extra: &str) -> String {
    format!(
        "FROM {image}\nCOPY www /www\n{extra}CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo \\\"$GREETING\\\" >/www/greeting.txt; httpd -f -p {port} -h /www & wait\"]\n",
        image = crate::scenario::IMAGE,
    )
}

/// Removes every container of an application and the proxy of a host prefix.
pub fn remove_app(app: &str, proxy: &str) {
    let ids = run(Command::new("docker").args(["ps", "-aq", "--filter"]).arg(format!("label=deeplo.app={app}")))
        .unwrap_or_default();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = run(Command::new("docker").args(["rm", "-f"]).args(&ids));
    }
    let _ = run(Command::new("docker").args(["rm", "-f", proxy]));
}

/// The containers of an application: (name, state), sorted by name.
pub fn containers(app: &str) -> Vec<(String, String)> {
    let out = run(Command::new("docker")
        .args(["ps", "-a", "--filter"])
        .arg(format!("label=deeplo.app={app}"))
        .args(["--format", "{{.Names}} {{.State}}"]))
    .unwrap_or_default();
    let mut v: Vec<(String, String)> =
        out.lines().filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned()))).collect();
    v.sort();
    v
}

/// Whether the image `tag` is on the engine.
pub fn image_exists(tag: &str) -> bool {
    run(Command::new("docker").args(["image", "inspect", tag])).is_ok()
}

/// One GET of `http://127.0.0.1:port/path`: the status code and the body.
pub fn get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("no status line")?;
    Ok((status, body.to_owned()))
}

/// Counts of a [`Load`]'s answers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// 200 answers by body (`version 1\n`: 120).
    pub ok: std::collections::BTreeMap<String, u64>,
    /// Every other outcome, with what it was (a status, a connection error).
    pub failed: Vec<String>,
}

impl Counts {
    /// Every answer.
    pub fn total(&self) -> u64 {
        self.ok.values().sum::<u64>() + self.failed.len() as u64
    }
}

/// An HTTP client hitting one address in a loop, on its own thread, until stopped.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    counts: Arc<Mutex<Counts>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts hitting `http://127.0.0.1:port/`.
    pub fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let thread = {
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let answer = get(port, "/");
                    let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                    match answer {
                        Ok((200, body)) => *c.ok.entry(body).or_default() += 1,
                        Ok((code, body)) => c.failed.push(format!("{code}: {body}")),
                        Err(e) => c.failed.push(e.to_string()),
                    }
                }
            })
        };
        Self { stop, counts, thread: Some(thread) }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the client and returns its counts.
    pub fn stop(mut self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.counts()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Writes the files of version `text` of the web application under `dir` of `repo`.
pub fn write_web_app(repo: &crate::GitRepo, dir: &Path, text: &str, dockerfile: &str) -> anyhow::Result<()> {
    let at = |p: &str| dir.join(p).display().to_string();
    repo.write(&at("Dockerfile"), dockerfile)?;
    repo.write(&at("www/index.html"), format!("{text}\n"))?;
    repo.write(&at(".dockerignore"), "notes/\n")?;
    repo.write(&at("notes/big.txt"), "left out of the build context by .dockerignore\n")?;
    Ok(())
}

/// A scenario's application `site` on host `h1`, with names of its own on the engine (a
/// host prefix, so that tests running at once have their own proxies); its containers and
/// proxy are removed on drop.
#[derive(Debug)]
pub struct App {
    /// The host's `compose_project_prefix`.
    pub prefix: String,
    /// The application's name on the host: the prefix and `site`.
    pub name: String,
    /// The host port the proxy serves it on (`listen: 127.0.0.1:port`).
    pub port: u16,
}

impl App {
    /// Names for the test `test` deploying `via` a transport.
    pub fn new(test: &str, via: crate::scenario::Via) -> Self {
        let prefix = format!("{test}-{}-", via.name());
        let app = Self { name: format!("{prefix}site"), prefix, port: crate::free_port().unwrap_or(18080) };
        remove_app(&app.name, &app.proxy());
        app
    }

    /// The proxy container of the test's host.
    pub fn proxy(&self) -> String {
        format!("{}deeplo-proxy", self.prefix)
    }

    /// A config with host `h1` (reached `via` a transport, proxy image [`CADDY_IMAGE`]) and
    /// the application `site` built from `web/Dockerfile`; `extra` is appended to the
    /// project entry.
    pub fn yaml(&self, s: &crate::scenario::Scenario, via: crate::scenario::Via, extra: &str) -> String {
        let reach = match via {
            crate::scenario::Via::Ssh => {
                format!("    address: 127.0.0.1\n    port: {}\n    user: {}\n", s.sshd.port(), s.sshd.user())
            }
            crate::scenario::Via::Agent => "    transport: agent\n".to_owned(),
        };
        format!(
            "hosts:\n  - name: h1\n{reach}    deploy_dir: {dir}\n    compose_project_prefix: {prefix}\n    proxy_image: {CADDY_IMAGE}\n\
             repos:\n  - name: app\n    url: {url}\n    branch: main\n\
             projects:\n  - name: site\n    repo: app\n    repo_subdir: web\n    targets: [h1]\n    dockerfile: Dockerfile\n\
             \x20   container_port: 8080\n    listen: 127.0.0.1:{port}\n    drain: 1s\n    keep_releases: 2\n\
             \x20   health_check: {{retries: 4, interval: 0.5s}}\n{extra}",
            dir = s.deploy_dir().display(),
            prefix = self.prefix,
            url = s.repo.path().display(),
            port = self.port,
        )
    }

    /// The image of the release of `commit`.
    pub fn image(&self, commit: &str) -> String {
        format!("deeplo/{}:{}", self.name.replace('_', "-"), &commit[..12])
    }

    /// Commits version `text` of the application (serving on `port` in its container).
    pub fn commit_version(&self, repo: &crate::GitRepo, text: &str, dockerfile: &str) -> anyhow::Result<String> {
        write_web_app(repo, Path::new("web"), text, dockerfile)?;
        repo.commit(text)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        remove_app(&self.name, &self.proxy());
    }
}
