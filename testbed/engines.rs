//! Extra Docker engines on this machine, so that several sshd "hosts" each deploy into an
//! engine of their own (`SshdOptions::set_env` with `DOCKER_HOST=unix:///...`), as real
//! servers do, instead of all sharing the local engine's containers, networks and ports.
//!
//! Each engine is a `dockerd` with its own socket, data root, exec root, pid file and
//! supervised containerd, its own bridge `deeplo-br<index>` (`10.199.<index>.1/24`), its own
//! address pool for compose networks (`10.<200+index>.0.0/16`) and no iptables rules, so it
//! never touches the local engine's `docker0` or rules. Its config file is
//! `/etc/docker/daemon.json` minus the keys set by flags here (the storage driver and log
//! settings a machine needs are kept). Needs root. On drop its containers and networks are
//! removed, the daemon stopped and the bridge deleted.
//!
//! No image can be pulled into these engines: build what a test needs in each one
//! ([`DockerEngine::build_busybox_image`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::{docker, run};

/// Engines get indices below this, which keeps their subnets inside 10.199.0.0/16 (bridges)
/// and 10.200.0.0/16 to 10.249.0.0/16 (compose networks).
pub const MAX_ENGINES: u8 = 50;

/// `daemon.json` keys that the flags of [`DockerEngine::start`] set (dockerd refuses a key
/// given both ways) or that would tie the engine to the local one.
const FLAG_KEYS: &[&str] = &[
    "data-root",
    "graph",
    "exec-root",
    "pidfile",
    "hosts",
    "bridge",
    "bip",
    "iptables",
    "ip-masq",
    "default-address-pools",
    "containerd",
    "containerd-namespace",
    "containerd-plugins-namespace",
];

/// A running extra `dockerd`; stopped (containers, networks and bridge removed) on drop.
#[derive(Debug)]
pub struct DockerEngine {
    index: u8,
    bridge: String,
    bridge_created: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl DockerEngine {
    /// Starts engine `index` (below [`MAX_ENGINES`]; it picks the bridge name and subnets,
    /// so two engines running at once need different indices) and waits until it answers.
    pub fn start(index: u8) -> anyhow::Result<Self> {
        if index >= MAX_ENGINES {
            bail!("engine index {index} is too large: at most {} extra engines", MAX_ENGINES);
        }
        require_root()?;
        let dockerd = dockerd_binary()?;
        let bridge = format!("deeplo-br{index}");
        if Path::new("/sys/class/net").join(&bridge).exists() {
            bail!(
                "the network interface {bridge} exists already (left by an earlier run that was killed?): \
                 once no dockerd uses it, remove it with `ip link delete {bridge}`"
            );
        }
        check_subnets_free(index)?;
        let dir = tempfile::Builder::new().prefix("deeplo-engine-").tempdir()?;
        let mut engine = Self { index, bridge, bridge_created: false, dir, child: None };
        engine.create_bridge()?;
        engine.write_config()?;
        engine.spawn(&dockerd)?;
        engine.wait_ready(Duration::from_secs(60))?;
        Ok(engine)
    }

    /// The `DOCKER_HOST` value that reaches this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// A `docker` command against this engine.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", self.host());
        cmd
    }

    /// Builds the busybox base image as `tag` in this engine.
    pub fn build_busybox_image(&self, tag: &str) -> anyhow::Result<()> {
        docker::build_busybox_image(tag, Some(&self.host()))
            .with_context(|| format!("build {tag} in engine {}", self.index))
    }

    /// The bridge the engine's default network uses.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The daemon's own log (useful in failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default()
    }

    /// Removes the engine's containers and networks, stops the daemon and deletes the bridge.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.remove_everything();
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.unmount_leftovers();
        }
        if self.bridge_created {
            let _ = run(Command::new("ip").args(["link", "delete", &self.bridge]));
            self.bridge_created = false;
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("docker.sock")
    }

    fn create_bridge(&mut self) -> anyhow::Result<()> {
        let ip = |args: &[&str]| run(Command::new("ip").args(args)).map(|_| ());
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        self.bridge_created = true;
        ip(&["addr", "add", &format!("10.199.{}.1/24", self.index), "dev", &self.bridge])?;
        ip(&["link", "set", &self.bridge, "up"])
    }

    /// `/etc/docker/daemon.json` without the keys the flags set.
    fn write_config(&self) -> anyhow::Result<()> {
        let main = match std::fs::read_to_string("/etc/docker/daemon.json") {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}".to_owned(),
            Err(e) => return Err(e).context("read /etc/docker/daemon.json"),
        };
        let config = without_keys(&main, FLAG_KEYS).context("/etc/docker/daemon.json")?;
        Ok(std::fs::write(self.path("daemon.json"), config + "\n")?)
    }

    fn spawn(&mut self, dockerd: &Path) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.path("dockerd.log"))?;
        let child = Command::new(dockerd)
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.path("data"))
            .arg("--exec-root")
            .arg(self.path("exec"))
            .arg("--pidfile")
            .arg(self.path("docker.pid"))
            .arg("--config-file")
            .arg(self.path("daemon.json"))
            .args(["--iptables=false", "--ip-masq=false", "--bridge", &self.bridge])
            .arg("--default-address-pool")
            .arg(format!("base=10.{}.0.0/16,size=24", 200 + u16::from(self.index)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", dockerd.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("dockerd of engine {} exited at start ({status}): {}", self.index, self.log());
            }
            if run(self.docker().args(["version", "--format", "{{.Server.Version}}"])).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("dockerd of engine {} did not answer within {timeout:?}: {}", self.index, self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Containers first (nothing of theirs stays mounted), then the compose networks, whose
    /// bridges would otherwise outlive the engine.
    fn remove_everything(&self) {
        let ids = run(self.docker().args(["ps", "-aq"])).unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = run(self.docker().args(["rm", "-f", "-v"]).args(&ids));
        }
        let _ = run(self.docker().args(["network", "prune", "-f"]));
    }

    /// Whatever the daemon left mounted under its directories (a killed daemon leaves its
    /// layers mounted), so that the directory can be deleted.
    fn unmount_leftovers(&self) {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut points: Vec<&str> =
            mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|p| p.starts_with(&root)).collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = run(Command::new("umount").args(["-l", point]));
        }
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn require_root() -> anyhow::Result<()> {
    let uid = run(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!("an extra Docker engine needs root (it starts dockerd and creates a bridge): run as root");
    }
    Ok(())
}

fn dockerd_binary() -> anyhow::Result<PathBuf> {
    for p in ["/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!("dockerd is not installed: run `bash .ci/install-deps` (it installs and starts the Docker engine)")
}

/// Fails when a route of this machine already covers the engine's subnets.
fn check_subnets_free(index: u8) -> anyhow::Result<()> {
    let routes = run(Command::new("ip").args(["-o", "-4", "route", "show"]))?;
    let bridge = format!("10.199.{index}.");
    let pool = format!("10.{}.", 200 + u16::from(index));
    if let Some(line) = routes.lines().find(|l| l.starts_with(&bridge) || l.starts_with(&pool)) {
        bail!("engine {index}'s subnets (10.199.{index}.0/24, {pool}0.0/16) are in use on this machine: {line}");
    }
    Ok(())
}

/// The JSON object `json` without the top-level members named in `drop` (a small scanner:
/// the test bed has no JSON library, and `daemon.json` is one flat object).
fn without_keys(json: &str, drop: &[&str]) -> anyhow::Result<String> {
    let inner = json
        .trim()
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(|| anyhow!("expected a JSON object, got {json:?}"))?;
    let mut members = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0u32, false, false, 0);
    for (i, c) in inner.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.checked_sub(1).ok_or_else(|| anyhow!("unbalanced {c:?} in {json:?}"))?,
            ',' if depth == 0 => {
                members.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&inner[start..]);
    let kept: Vec<&str> = members
        .into_iter()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .filter(|m| {
            let key = m.split_once(':').map(|(k, _)| k.trim().trim_matches('"'));
            !key.is_some_and(|k| drop.contains(&k))
        })
        .collect();
    Ok(format!("{{{}}}", kept.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::without_keys;

    #[test]
    fn drops_only_the_named_top_level_keys() {
        let main = r#"{"data-root": "/var/lib/docker", "storage-driver": "fuse-overlayfs", "mtu": 1400,
            "log-opts": {"max-size": "10m", "data-root": "x,y"}, "labels": ["a,b", "c\"d"], "bip": "172.17.0.1/16"}"#;
        let got = without_keys(main, &["data-root", "bip"]).unwrap();
        assert_eq!(
            got,
            r#"{"storage-driver": "fuse-overlayfs", "mtu": 1400, "log-opts": {"max-size": "10m", "data-root": "x,y"}, "labels": ["a,b", "c\"d"]}"#
        );
        assert_eq!(without_keys(" {} ", &["data-root"]).unwrap(), "{}");
        assert_eq!(without_keys(r#"{"data-root": "/d"}"#, &["data-root"]).unwrap(), "{}");
        assert!(without_keys("[1]", &[]).is_err());
    }
}
