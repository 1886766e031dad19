//! A transport of your own: deeplo deploying to the machine it runs on, with no SSH at all.
//!
//! The engine reaches hosts only through the [`Connector`] and [`Transport`] traits, so a
//! single-machine setup (a CI runner, a lab box, a home server) can plug in a transport that
//! runs each command with `tokio::process` and writes bundles with `tokio::fs`. Everything
//! else (the pipeline, locks, health gates, rollback, records) is the same as over SSH.
//!
//! Run it with `cargo run --example local_transport` (needs Docker with Compose and
//! busybox-static, as the tests do: `bash .ci/install-deps`); `cargo test --example
//! local_transport` runs it as a test. The test bed commits a small Compose project to a
//! repository in a temporary directory; the host's `deploy_dir` is a directory there too.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use deeplo_core::config::{self, EnvMap, Host};
use deeplo_core::engine::SubmitOutcome;
use deeplo_core::git::GitAuth;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::DeployStatus;
use deeplo_core::transport::OutputStream;
use deeplo_core::{
    Bundle, Capabilities, CommandOutput, Connector, DeployRequest, Engine, EntryKind, Error, ErrorKind, ExitStatus,
    FileStore, GitSource, OutputSink, RemoteCommand, Result, Transport,
};
use deeplo_testbed::scenario::Scenario;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Connects to this machine only: a config host that names another address is refused, so
/// a config written for SSH cannot silently deploy to the wrong machine.
#[derive(Debug)]
struct LocalConnector;

#[async_trait]
impl Connector for LocalConnector {
    async fn connect(&self, host: &Host) -> Result<Box<dyn Transport>> {
        if !matches!(host.address.as_str(), "localhost" | "127.0.0.1" | "::1") {
            return Err(Error::new(
                ErrorKind::Config,
                "connect",
                format!("the local transport reaches this machine only, not {}", host.address),
            )
            .with_host(&host.name));
        }
        Ok(Box::new(LocalTransport))
    }
}

/// Runs commands as child processes of this one.
#[derive(Debug)]
struct LocalTransport;

#[async_trait]
impl Transport for LocalTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities { symlinks: true, file_modes: true, streaming_output: true }
    }

    async fn run_with_input(
        &self,
        command: &RemoteCommand,
        input: &mut (dyn AsyncRead + Send + Unpin),
        sink: &dyn OutputSink,
    ) -> Result<CommandOutput> {
        // The words go to exec as they are: no shell, so nothing to quote.
        let spawned = tokio::process::Command::new(&command.program)
            .args(&command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            // What a shell answers for a missing program, which the pipeline reads as such.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let message = format!("{}: not found\n", command.program);
                sink.output(OutputStream::Stderr, message.as_bytes());
                return Ok(CommandOutput { status: ExitStatus::Code(127), stdout: Vec::new(), stderr: message.into() });
            }
            Err(e) => return Err(Error::new(ErrorKind::Io, "run", format!("cannot start {command}: {e}"))),
        };
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::new(ErrorKind::Io, "run", "the child's pipes are missing"));
        };
        // Input is fed while the command runs; once the command has ended the rest is not read.
        let mut feed = std::pin::pin!(async move {
            let _ = tokio::io::copy(input, &mut stdin).await;
        });
        let mut run = std::pin::pin!(async {
            tokio::join!(
                forward(stdout, OutputStream::Stdout, sink),
                forward(stderr, OutputStream::Stderr, sink),
                child.wait()
            )
        });
        let mut fed = false;
        let (stdout, stderr, status) = loop {
            tokio::select! {
                () = &mut feed, if !fed => fed = true,
                done = &mut run => break done,
            }
        };
        let status = status.map_err(|e| Error::new(ErrorKind::Io, "run", format!("{command}: {e}")))?;
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal_name(signal)),
            (None, None) => ExitStatus::Unknown,
        };
        Ok(CommandOutput { status, stdout: stdout?, stderr: stderr? })
    }

    async fn write_bundle(&self, dir: &str, bundle: &Bundle) -> Result<()> {
        let io = |path: &Path, e: std::io::Error| {
            Error::new(ErrorKind::Io, "write bundle", format!("{}: {e}", path.display()))
        };
        let root = Path::new(dir);
        tokio::fs::create_dir_all(root).await.map_err(|e| io(root, e))?;
        for sub in bundle.directories() {
            let path = root.join(sub.as_str());
            tokio::fs::create_dir_all(&path).await.map_err(|e| io(&path, e))?;
        }
        for entry in &bundle.entries {
            let path = root.join(entry.path.as_str());
            match tokio::fs::symlink_metadata(&path).await {
                Ok(meta) if meta.is_symlink() || !meta.is_dir() => {
                    tokio::fs::remove_file(&path).await.map_err(|e| io(&path, e))?;
                }
                _ => {}
            }
            match &entry.kind {
                EntryKind::File { data, executable } => {
                    tokio::fs::write(&path, data).await.map_err(|e| io(&path, e))?;
                    let mode = if *executable { 0o755 } else { 0o644 };
                    tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                        .await
                        .map_err(|e| io(&path, e))?;
                }
                EntryKind::Symlink { target } => {
                    tokio::fs::symlink(target, &path).await.map_err(|e| io(&path, e))?;
                }
            }
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// Copies one output stream to the sink as it arrives, and keeps it.
async fn forward(mut from: impl AsyncRead + Unpin, stream: OutputStream, sink: &dyn OutputSink) -> Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = from.read(&mut buf).await.map_err(|e| Error::new(ErrorKind::Io, "run", format!("read output: {e}")))?;
        if n == 0 {
            return Ok(all);
        }
        sink.output(stream, &buf[..n]);
        all.extend_from_slice(&buf[..n]);
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "HUP",
        2 => "INT",
        9 => "KILL",
        15 => "TERM",
        _ => "other",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A repository with a Compose project; the test bed's sshd is there but unused.
    let bed = Scenario::new("local-transport-example")?;
    let yaml = bed.config_yaml("");
    let loaded = config::parse(&yaml, &EnvMap::default()).map_err(|e| anyhow::anyhow!("{e}"))?;

    let data = bed.data_dir();
    let known_hosts = KnownHosts::new(data.join("known_hosts"), HostKeyPolicy::AcceptNew);
    let engine = Engine::builder()
        .config(loaded.config)
        .store(Arc::new(FileStore::open(&data, jiff::Timestamp::now())?))
        .source(Arc::new(GitSource::new(
            data.join("repos"),
            GitAuth { private_key: None, passphrase: None, known_hosts, https_token: None },
        )))
        .connector(Arc::new(LocalConnector))
        .build()?;

    let submitted = engine.deploy(DeployRequest::new(bed.project.clone())).await?;
    for s in submitted {
        let SubmitOutcome::Queued(handle) = s.outcome else { anyhow::bail!("{} was not queued", s.pair.project) };
        let record = handle.wait().await?;
        let steps: Vec<&str> = record.steps.iter().map(|step| step.name.as_str()).collect();
        println!("{} on {}: {} ({})", record.project, record.host, record.status, steps.join(", "));
        anyhow::ensure!(record.status == DeployStatus::Succeeded, "the deploy failed: {:?}", record.error);
    }
    let site = bed.fetch_site();
    println!("the site answers: {site:?}");
    anyhow::ensure!(site.as_deref() == Some("version 1\n"), "the site does not serve version 1");
    engine.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn deploys_through_the_local_transport() {
        super::main().unwrap();
    }

    #[tokio::test]
    async fn the_local_transport_keeps_the_contract() {
        // No lost-connection check: commands are child processes, there is no connection.
        deeplo_core::transport::conformance::run_all(
            || async { Ok(Box::new(super::LocalTransport) as Box<dyn super::Transport>) },
            None,
        )
        .await;
    }
}
