//! `deeplo authorize [HOST...]`: installs the deploy key's public half into the SSH user's
//! `~/.ssh/authorized_keys` on each host that does not take the key yet, logging in once
//! with a password asked for on the terminal.
//!
//! The connection is deeplo's own, verified against the same known_hosts and policy as every
//! deploy, and the key is offered first: a host that takes it is left alone without a
//! prompt. Only the deploy key counts (never the operator's ssh-agent), since the daemon
//! will have nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use async_trait::async_trait;
use deeplo_core::config::{Config, Host};
use deeplo_core::{Connector, Discard, Error, ErrorKind, RemoteCommand, Secret, Transport};
use deeplo_ssh::{AuthMethod, PasswordPrompt, PasswordRequest, SshConnector, SshOptions};
use serde::Serialize;

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::output;

/// Authorizes the named hosts (every configured host when none is named) and prints one
/// line per host; fails when any host failed.
pub async fn run(ctx: &Context, names: &[String]) -> anyhow::Result<ExitCode> {
    // rpassword reads the password in raw mode and, on Ctrl-C, raises SIGINT itself before
    // it restores the terminal: with a handler in place that raise does not kill the process
    // with echo still off. The handler is process-wide from now on, so Ctrl-C anywhere else
    // in the run is honoured here.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        result = authorize_all(ctx, names) => result,
        _ = interrupt.recv() => Ok(interrupted()),
    }
}

fn interrupted() -> ExitCode {
    eprintln!("interrupted");
    ExitCode::from(130)
}

async fn authorize_all(ctx: &Context, names: &[String]) -> anyhow::Result<ExitCode> {
    let Some(key_file) = ctx.settings.ssh_private_key_file.clone() else {
        bail!("DEEPLO_SSH_PRIVATE_KEY_FILE is not set; nothing to authorize");
    };
    let loaded = ctx.load_config()?;
    let hosts = select_hosts(&loaded.config, names)?;
    let connector = key_only_connector(ctx, &key_file)?;
    let key = deploy_key(&key_file, &connector)?;
    let reachable = reachable_by_daemon(ctx).await;
    let prompt = TtyPrompt { public_key_file: public_key_file(&key_file), interrupted: AtomicBool::new(false) };

    let mut reports = Vec::new();
    for host in hosts {
        let result = if reachable.contains(host.name.as_str()) {
            Ok(Outcome::Skipped)
        } else {
            authorize_host(&connector, host, &key, &prompt).await
        };
        if prompt.interrupted.load(Ordering::Relaxed) {
            return Ok(interrupted());
        }
        let report = Report::new(host, result);
        if !ctx.json() {
            println!("{}", report.line());
        }
        reports.push(report);
    }
    if ctx.json() {
        output::json(&reports)?;
    }
    let failed = reports.iter().filter(|r| r.outcome == Outcome::Failed).count();
    if failed > 0 {
        bail!("{failed} host(s) failed to authorize");
    }
    Ok(ExitCode::SUCCESS)
}

/// The hosts named on the command line, in that order and each once, or every configured
/// host; an unknown name is an error before any host is contacted.
fn select_hosts<'a>(config: &'a Config, names: &[String]) -> anyhow::Result<Vec<&'a Host>> {
    if names.is_empty() {
        if config.hosts.is_empty() {
            bail!("no hosts configured");
        }
        return Ok(config.hosts.iter().collect());
    }
    let unknown: Vec<String> = names.iter().filter(|n| config.host(n).is_none()).map(|n| format!("{n:?}")).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = config.hosts.iter().map(|h| h.name.as_str()).collect();
        let what = if unknown.len() == 1 { "host" } else { "hosts" };
        let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
        bail!("{what} {} not found in config (hosts: {known})", unknown.join(", "));
    }
    let mut seen = BTreeSet::new();
    Ok(names.iter().filter(|n| seen.insert(n.as_str())).filter_map(|n| config.host(n)).collect())
}

/// The deploy connector, without the ssh-agent: a host that only takes one of the
/// operator's own keys is not one the daemon can reach.
fn key_only_connector(ctx: &Context, key_file: &Path) -> anyhow::Result<SshConnector> {
    let mut options = SshOptions::new(crate::wiring::known_hosts(&ctx.settings));
    options.private_key = Some(key_file.to_owned());
    options.passphrase_file = ctx.settings.ssh_key_passphrase_file.clone();
    options.agent_socket = None;
    Ok(SshConnector::new(options)?)
}

fn public_key_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// The public half from `KEY.pub`, or derived from the private key when there is no such
/// file. A `.pub` that is not the private key's half is refused: installing it would let
/// nobody in.
fn deploy_key(key_file: &Path, connector: &SshConnector) -> anyhow::Result<PublicKey> {
    let pub_file = public_key_file(key_file);
    let derived = connector.public_key()?.map(|line| PublicKey::parse(&line)).transpose();
    let derived = derived.map_err(|why| anyhow::anyhow!("the public half of {}: {why}", key_file.display()))?;
    match std::fs::read_to_string(&pub_file) {
        Ok(text) => {
            let key = PublicKey::parse(&text).map_err(|why| anyhow::anyhow!("{} {why}", pub_file.display()))?;
            if let Some(derived) = derived
                && derived.blob != key.blob
            {
                bail!(
                    "{} is not the public half of {}: regenerate it with `ssh-keygen -y -f {} > {}`",
                    pub_file.display(),
                    key_file.display(),
                    key_file.display(),
                    pub_file.display()
                );
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => derived.ok_or_else(|| {
            anyhow::anyhow!("{} is missing and {} holds no key", pub_file.display(), key_file.display())
        }),
        Err(e) => bail!("cannot read {}: {e}", pub_file.display()),
    }
}

/// An OpenSSH public key, checked to be one line of `TYPE BASE64 [COMMENT]`, so that what is
/// appended to authorized_keys is exactly one key line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PublicKey {
    /// The line to append.
    line: String,
    /// The base64 key data: what tells one key from another, whatever the comment or options.
    blob: String,
}

impl PublicKey {
    fn parse(text: &str) -> Result<Self, String> {
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        let line = match lines[..] {
            [line] => line,
            [] => return Err("holds no public key".into()),
            _ => return Err("holds more than one line; a public key file holds one key".into()),
        };
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err("holds control characters".into());
        }
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            return Err("is not an OpenSSH public key (TYPE BASE64 [COMMENT])".into());
        };
        if !["ssh-", "ecdsa-", "sk-"].iter().any(|p| kind.starts_with(p)) {
            return Err(format!("starts with {kind:?}, not a key type such as ssh-ed25519"));
        }
        if blob.len() < 16 || !blob.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
            return Err("holds no base64 key data after the key type".into());
        }
        Ok(Self { line: line.to_owned(), blob: blob.to_owned() })
    }
}

/// The hosts a running daemon already reaches (with the deploy key: it has no other); none
/// when no daemon answers, or its probe fails.
async fn reachable_by_daemon(ctx: &Context) -> BTreeSet<String> {
    let Some(client) = AdminClient::connect(&ctx.settings.unix_socket).await else {
        return BTreeSet::new();
    };
    match super::remote::probe(&client).await {
        Ok(results) => results.into_iter().filter(|r| r.ok).map(|r| r.host.to_string()).collect(),
        Err(e) => {
            eprintln!("warning: the daemon's probe failed ({e:#}); checking every host from here");
            BTreeSet::new()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Authorized,
    Skipped,
    Failed,
}

/// One host's result, as printed.
#[derive(Debug, Serialize)]
struct Report {
    host: String,
    /// `USER@ADDRESS`.
    target: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Report {
    fn new(host: &Host, result: Result<Outcome, String>) -> Self {
        let (outcome, error) = match result {
            Ok(outcome) => (outcome, None),
            Err(e) => (Outcome::Failed, Some(e)),
        };
        Self { host: host.name.to_string(), target: format!("{}@{}", host.user, host.address), outcome, error }
    }

    fn line(&self) -> String {
        let Self { host, target, .. } = self;
        match self.outcome {
            Outcome::Authorized => format!("✓ authorized {host} ({target})"),
            Outcome::Skipped => format!("{host} ({target}) already authorized, skipping"),
            Outcome::Failed => {
                format!("authorize failed for {host} ({target}): {}", self.error.as_deref().unwrap_or("unknown error"))
            }
        }
    }
}

/// Appends the key (`$1`) unless a key line already holds its key data (`$2`), whatever its
/// comment or options; commented-out lines do not count. Says `added` or `found`.
const INSTALL_SCRIPT: &str = r#"set -e
umask 077
cd
mkdir -p .ssh
chmod 700 .ssh
touch .ssh/authorized_keys
chmod 600 .ssh/authorized_keys
key=$1
blob=$2
set -f
while IFS= read -r line || [ -n "$line" ]; do
  set -- $line
  case ${1-} in '#'*) continue ;; esac
  for word in "$@"; do
    if [ "$word" = "$blob" ]; then
      echo found
      exit 0
    fi
  done
done < .ssh/authorized_keys
if [ -s .ssh/authorized_keys ] && [ -n "$(tail -c 1 .ssh/authorized_keys)" ]; then
  printf '\n' >> .ssh/authorized_keys
fi
printf '%s\n' "$key" >> .ssh/authorized_keys
echo added
"#;

fn install_command(key: &PublicKey) -> RemoteCommand {
    RemoteCommand::script(INSTALL_SCRIPT, [key.line.as_str(), key.blob.as_str()])
}

/// Connects (key first, then passwords), installs the key when a password was needed, and
/// checks that the key alone now gets in. `Err` is the reason shown for the host.
async fn authorize_host(
    connector: &SshConnector,
    host: &Host,
    key: &PublicKey,
    prompt: &TtyPrompt,
) -> Result<Outcome, String> {
    let (transport, method) = connector.connect_with_password(host, prompt).await.map_err(|e| reason(&e))?;
    if method != AuthMethod::Password {
        let _ = transport.close().await;
        return Ok(Outcome::Skipped);
    }
    let installed = transport.run(&install_command(key), &Discard).await;
    let _ = transport.close().await;
    let out = installed.map_err(|e| reason(&e))?;
    if !out.status.success() {
        return Err(format!("installing the key failed ({}): {}", out.status, out.tail(4)));
    }
    let done = match out.stdout_str().lines().last() {
        Some("added") => "added the key to",
        Some("found") => "found the key in",
        _ => return Err(format!("unexpected answer from the install script: {}", out.tail(4))),
    };
    match connector.connect(host).await {
        Ok(transport) => {
            let _ = transport.close().await;
            Ok(Outcome::Authorized)
        }
        Err(e) => Err(format!(
            "{done} ~/.ssh/authorized_keys, but the host still refuses the key ({}): check that sshd reads that \
             file (AuthorizedKeysFile) and the modes of the home directory (StrictModes)",
            reason(&e)
        )),
    }
}

/// An error as shown on a host's line: the host is on the line already.
fn reason(e: &Error) -> String {
    format!("{}: {}", e.operation(), e.message())
}

/// Asks for passwords on the controlling terminal, echo off, as OpenSSH does.
#[derive(Debug)]
struct TtyPrompt {
    /// Named in the advice when there is no terminal.
    public_key_file: PathBuf,
    /// Ctrl-C at the prompt: the run stops (the signal alone may be seen a moment later).
    interrupted: AtomicBool,
}

#[async_trait]
impl PasswordPrompt for TtyPrompt {
    async fn password(&self, request: &PasswordRequest) -> deeplo_core::Result<Secret> {
        let target = format!("{}@{}", request.user, request.address);
        if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") {
            return Err(Error::new(
                ErrorKind::Auth,
                "ask for the password",
                format!(
                    "the host refused the deploy key and there is no terminal to ask for {target}'s password on \
                     (/dev/tty: {e}): run `deeplo authorize` in a terminal, or append {} to ~/.ssh/authorized_keys \
                     of {} on the host by hand",
                    self.public_key_file.display(),
                    request.user
                ),
            ));
        }
        let mut text = String::new();
        if request.attempt > 1 {
            text.push_str("Permission denied, please try again.\n");
        }
        text.push_str(&format!("{target}'s password: "));
        let read = tokio::task::spawn_blocking(move || rpassword::prompt_password(text)).await;
        let failed = |message: String| Error::new(ErrorKind::Auth, "ask for the password", message);
        match read {
            Ok(Ok(password)) => Ok(Secret::new(password)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                self.interrupted.store(true, Ordering::Relaxed);
                Err(Error::new(ErrorKind::Cancelled, "ask for the password", "interrupted"))
            }
            Ok(Err(e)) => Err(failed(format!("cannot read {target}'s password from the terminal: {e}"))),
            Err(e) => Err(failed(format!("the password prompt failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests;
