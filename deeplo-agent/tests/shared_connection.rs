//! Several [`AgentTransport`]s on one [`AgentConnection`](deeplo_agent::hub::AgentConnection)
//! to a real [`Executor`](deeplo_agent::agent::Executor), as the engine opens them for one
//! server: they run at once, close alone, share the connection's request ids and its loss.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deeplo_agent::hub::AgentTransport;
use deeplo_core::{CommandOutput, Discard, ErrorKind, RemoteCommand, Result, Transport};
use tokio::task::JoinHandle;

/// Runs `script` with `args` on `transport` in a task of its own.
fn spawn_run(
    transport: &Arc<AgentTransport>,
    script: &'static str,
    args: Vec<String>,
) -> JoinHandle<Result<CommandOutput>> {
    let transport = Arc::clone(transport);
    tokio::spawn(async move { transport.run(&RemoteCommand::script(script, args), &Discard).await })
}

/// A command that writes its pid to `pid_file` and sleeps for 30 s.
fn sleeper(transport: &Arc<AgentTransport>, pid_file: &Path) -> JoinHandle<Result<CommandOutput>> {
    spawn_run(transport, "echo $$ > \"$1\"; exec sleep 30", vec![pid_file.display().to_string()])
}

/// The pid `pid_file` holds, once it holds one.
async fn pid(pid_file: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(pid) = std::fs::read_to_string(pid_file)
            && pid.ends_with('\n')
        {
            return pid.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn gone(pid: &str) {
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc.exists() {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn unreachable(run: JoinHandle<Result<CommandOutput>>) {
    let err = tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
}

#[tokio::test]
async fn transports_of_one_connection_run_commands_at_once() {
    let wire = common::connect("shared");
    let transports = [Arc::new(wire.connection.transport()), Arc::new(wire.connection.transport())];
    let started = Instant::now();
    let runs: Vec<_> =
        (0..8).map(|i| (i, spawn_run(&transports[i % 2], "sleep 1; echo \"$1\"", vec![i.to_string()]))).collect();
    for (i, run) in runs {
        assert_eq!(run.await.unwrap().unwrap().stdout_str(), format!("{i}\n"));
    }
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert_eq!(wire.connection.protocol_violations(), 0);
}

#[tokio::test]
async fn closing_a_transport_ends_only_its_own_commands() {
    let wire = common::connect("shared");
    let closing = Arc::new(wire.connection.transport());
    let other = Arc::new(wire.connection.transport());
    let dir = tempfile::tempdir().unwrap();
    let (closing_pid, other_pid) = (dir.path().join("closing"), dir.path().join("other"));
    let closing_run = sleeper(&closing, &closing_pid);
    let other_run = spawn_run(&other, "echo $$ > \"$1\"; sleep 1; echo done", vec![other_pid.display().to_string()]);
    let closing_pid = pid(&closing_pid).await;
    pid(&other_pid).await;

    closing.close().await.unwrap();
    unreachable(closing_run).await;
    gone(&closing_pid).await;
    let later = closing.run(&RemoteCommand::new("true"), &Discard).await.unwrap_err();
    assert_eq!(later.kind(), ErrorKind::Unreachable);

    let out = other_run.await.unwrap().unwrap();
    assert_eq!(out.stdout_str(), "done\n");
    assert!(other.run(&RemoteCommand::new("true"), &Discard).await.unwrap().status.success());
    let fresh = wire.connection.transport();
    assert!(fresh.run(&RemoteCommand::new("true"), &Discard).await.unwrap().status.success());
    assert!(!wire.connection.is_lost());
    // The cancelled command's late replies are expected, not violations.
    assert_eq!(wire.connection.protocol_violations(), 0);
}

#[tokio::test]
async fn request_ids_are_unique_on_the_connection() {
    let wire = common::connect("shared");
    let transports: Vec<_> = (0..3).map(|_| Arc::new(wire.connection.transport())).collect();
    let runs: Vec<_> = (0..15).map(|i| spawn_run(&transports[i % 3], "echo \"$1\"", vec![i.to_string()])).collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    for transport in &transports {
        transport.run(&RemoteCommand::new("true"), &Discard).await.unwrap();
    }
    let started = wire.started.lock().unwrap().clone();
    assert_eq!(started.len(), 18);
    let distinct: HashSet<_> = started.iter().collect();
    assert_eq!(distinct.len(), started.len(), "{started:?}");
    // The last three ran one after the other: their ids follow the connection's order.
    assert!(started[15] < started[16] && started[16] < started[17], "{started:?}");
}

#[tokio::test]
async fn a_lost_connection_ends_the_commands_of_every_transport() {
    let wire = common::connect("shared");
    let lost = wire.connection.lost();
    let transports = [Arc::new(wire.connection.transport()), Arc::new(wire.connection.transport())];
    let dir = tempfile::tempdir().unwrap();
    let pid_files = [dir.path().join("a"), dir.path().join("b")];
    let runs: Vec<_> = transports.iter().zip(&pid_files).map(|(t, file)| sleeper(t, file)).collect();
    for file in &pid_files {
        pid(file).await;
    }
    assert!(!wire.connection.is_lost());

    wire.to_daemon.abort();
    for run in runs {
        unreachable(run).await;
    }
    tokio::time::timeout(Duration::from_secs(5), lost).await.unwrap();
    assert!(wire.connection.is_lost());
    for transport in &transports {
        let err = transport.run(&RemoteCommand::new("true"), &Discard).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unreachable);
    }
    let later = wire.connection.transport();
    let err = later.run(&RemoteCommand::new("true"), &Discard).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(later.close().await.is_ok());
}

#[tokio::test]
async fn dropping_the_connection_loses_it() {
    let wire = common::connect("shared");
    let transport = Arc::new(wire.connection.transport());
    let dir = tempfile::tempdir().unwrap();
    let run = sleeper(&transport, &dir.path().join("pid"));
    pid(&dir.path().join("pid")).await;
    drop(wire.connection);
    unreachable(run).await;
    let err = transport.run(&RemoteCommand::new("true"), &Discard).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
}
