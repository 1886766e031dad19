//! Real Unix accounts, for tests that log in with a password: created with `useradd -m`,
//! given a password with `chpasswd`, and removed with their home on drop. Creating users
//! needs root, which the tests run as.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// A Unix user that exists for one test (`dpl` and a random suffix), deleted on drop.
#[derive(Debug)]
pub struct UnixUser {
    name: String,
    home: PathBuf,
    password: String,
}

impl UnixUser {
    /// Creates the user with a home directory, `/bin/sh` as its shell, a random password and
    /// the given supplementary groups (`docker`, to reach the engine).
    pub fn create(groups: &[&str]) -> anyhow::Result<Self> {
        if crate::run(Command::new("id").arg("-u"))?.trim() != "0" {
            bail!("creating a Unix user for the test needs root (useradd); run the tests as root");
        }
        let name = format!("dpl{:08x}", random() as u32);
        let password = format!("pw-{:016x}", random());
        let mut useradd = Command::new("useradd");
        useradd.args(["-m", "-s", "/bin/sh"]);
        if !groups.is_empty() {
            useradd.arg("-G").arg(groups.join(","));
        }
        useradd.arg(&name);
        retry_locked(|| output(&mut useradd, None)).with_context(|| format!("create user {name}"))?;
        // From here on, drop removes the user whatever fails next.
        let mut user = Self { name, home: PathBuf::new(), password };
        let entry = crate::run(Command::new("getent").args(["passwd", &user.name]))?;
        user.home = PathBuf::from(entry.trim().split(':').nth(5).unwrap_or_default());
        let line = format!("{}:{}\n", user.name, user.password);
        retry_locked(|| output(&mut Command::new("chpasswd"), Some(&line)))
            .with_context(|| format!("set the password of {}", user.name))?;
        Ok(user)
    }

    /// The login name (`dpl` and eight hex digits).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The password set with `chpasswd` (random, not a secret: the account lives for one test).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The home directory (`/home/NAME`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `~/.ssh/authorized_keys`, as sshd reads it by default.
    pub fn authorized_keys(&self) -> PathBuf {
        self.home.join(".ssh/authorized_keys")
    }
}

impl Drop for UnixUser {
    fn drop(&mut self) {
        // -f: a session of the user that outlives the test's sshd must not keep the account.
        let mut userdel = Command::new("userdel");
        userdel.args(["-r", "-f", &self.name]);
        if let Err(e) = retry_locked(|| output(&mut userdel, None)) {
            eprintln!("cannot remove test user {}: {e:#}", self.name);
        }
    }
}

/// Runs a command, with `input` on its stdin, failing with its stderr.
fn output(cmd: &mut Command, input: Option<&str>) -> anyhow::Result<()> {
    let mut child = cmd
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?} (the passwd package provides it)"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Tests running side by side edit /etc/passwd and /etc/shadow at once; the shadow tools
/// refuse while another holds the lock ("cannot lock /etc/passwd; try again later").
fn retry_locked(mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match op() {
            Err(e) if tries < 100 && format!("{e:#}").contains("lock") => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50 + random() % 100));
            }
            other => return other,
        }
    }
}

fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish()
}
