//! An [`AgentTransport`] driving a real [`Executor`] (real
//! processes, real files) over in-memory channels; every frame goes through `encode` and
//! `decode` as on the wire.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deeplo_agent::agent::Executor;
use deeplo_agent::hub::{AgentConnection, AgentTransport};
use deeplo_agent::protocol::{self, RequestId, Resume, ToAgent, ToDaemon};
use deeplo_core::model::CommitId;
use deeplo_core::path::RelPath;
use deeplo_core::transport::OutputStream;
use deeplo_core::{
    Bundle, BundleEntry, Discard, EntryKind, ErrorKind, ExitStatus, OutputSink, RemoteCommand, Transport,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A transport and the connection it shares; aborting `to_daemon` loses the connection.
struct Link {
    transport: Arc<AgentTransport>,
    to_daemon: JoinHandle<()>,
    _connection: AgentConnection,
    _state: tempfile::TempDir,
}

fn connect() -> Link {
    let wire = common::connect("agent-test");
    let transport = Arc::new(wire.connection.transport());
    Link { transport, to_daemon: wire.to_daemon, _connection: wire.connection, _state: wire.state }
}

fn sh(script: &'static str) -> RemoteCommand {
    RemoteCommand::script(script, Vec::<String>::new())
}

/// Keeps every chunk, and says when one arrives.
#[derive(Default)]
struct Recorder {
    chunks: Mutex<Vec<(OutputStream, Vec<u8>)>>,
    arrived: tokio::sync::Notify,
}

impl OutputSink for Recorder {
    fn output(&self, stream: OutputStream, data: &[u8]) {
        self.chunks.lock().unwrap().push((stream, data.to_vec()));
        self.arrived.notify_one();
    }
}

#[tokio::test]
async fn exit_codes_as_a_shell_gives_them() {
    let link = connect();
    let ok = link.transport.run(&RemoteCommand::new("true"), &Discard).await.unwrap();
    assert_eq!(ok.status, ExitStatus::Code(0));
    let three = link.transport.run(&sh("echo oops >&2; exit 3"), &Discard).await.unwrap();
    assert_eq!(three.status, ExitStatus::Code(3));
    assert_eq!(three.stderr_str(), "oops\n");
    let missing = link.transport.run(&RemoteCommand::new("deeplo-no-such-program"), &Discard).await.unwrap();
    assert_eq!(missing.status, ExitStatus::Code(127));
    assert!(missing.stderr_str().contains("deeplo-no-such-program: not found"), "{}", missing.stderr_str());
    let killed = link.transport.run(&sh("kill -TERM $$"), &Discard).await.unwrap();
    assert_eq!(killed.status, ExitStatus::Signal("TERM"));
    assert_eq!(link.transport.protocol_violations(), 0);
}

#[tokio::test]
async fn words_reach_the_program_unchanged() {
    let link = connect();
    let words = ["a b", "$(id)", "it's", ""];
    let command = RemoteCommand::new("printf").arg("%s|").args(words);
    let out = link.transport.run(&command, &Discard).await.unwrap();
    assert_eq!(out.stdout_str(), "a b|$(id)|it's||");
}

#[tokio::test]
async fn output_streams_while_the_command_runs_and_input_follows() {
    let link = connect();
    let recorder = Recorder::default();
    let (mut writer, mut reader) = tokio::io::duplex(1024);
    let command = sh("echo ready; read answer; echo \"got $answer\"");
    let run = link.transport.run_with_input(&command, &mut reader, &recorder);
    let drive = async {
        // The command waits for its input: "ready" can only come while it runs.
        loop {
            recorder.arrived.notified().await;
            let seen = recorder.chunks.lock().unwrap().iter().any(|(_, data)| data.starts_with(b"ready"));
            if seen {
                break;
            }
        }
        writer.write_all(b"go\n").await.unwrap();
        drop(writer);
    };
    let (out, ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(run, drive) }).await.unwrap();
    let out = out.unwrap();
    assert_eq!(out.status, ExitStatus::Code(0));
    assert_eq!(out.stdout_str(), "ready\ngot go\n");
    let streamed: Vec<u8> = recorder.chunks.lock().unwrap().iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(streamed, out.stdout);
}

#[tokio::test]
async fn stdin_is_echoed_whole() {
    let link = connect();
    let input: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let out = link.transport.run_with_input(&RemoteCommand::new("cat"), &mut input.as_slice(), &Discard).await.unwrap();
    assert_eq!(out.status, ExitStatus::Code(0));
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input);
}

#[tokio::test]
async fn large_output_arrives_complete() {
    let link = connect();
    let size = 8 * 1024 * 1024;
    let command = RemoteCommand::new("head").args(["-c", &size.to_string(), "/dev/urandom"]);
    let recorder = Recorder::default();
    let out = link.transport.run(&command, &recorder).await.unwrap();
    assert_eq!(out.status, ExitStatus::Code(0));
    assert_eq!(out.stdout.len(), size);
    let chunks = recorder.chunks.lock().unwrap();
    assert!(chunks.iter().all(|(_, d)| d.len() <= protocol::MAX_CHUNK_BYTES));
    assert_eq!(chunks.iter().map(|(_, d)| d.len()).sum::<usize>(), size);
}

#[tokio::test]
async fn commands_run_concurrently() {
    let link = connect();
    let started = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..8 {
        let transport = Arc::clone(&link.transport);
        runs.spawn(async move {
            let command = RemoteCommand::script("sleep 1; echo \"$1\"", [i.to_string()]);
            (i, transport.run(&command, &Discard).await.unwrap())
        });
    }
    let mut seen = Vec::new();
    while let Some(done) = runs.join_next().await {
        let (i, out) = done.unwrap();
        assert_eq!(out.stdout_str(), format!("{i}\n"));
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn dropping_a_command_stops_its_process() {
    let link = connect();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let command = RemoteCommand::script("echo $$ > \"$1\"; exec sleep 30", [pid_file.display().to_string()]);
    let run = link.transport.run(&command, &Discard);
    assert!(tokio::time::timeout(Duration::from_millis(500), run).await.is_err());
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc.exists() {
        assert!(Instant::now() < deadline, "process {pid} still runs after the cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The late `Exited` of the cancelled command is expected, not a violation.
    let after = link.transport.run(&RemoteCommand::new("true"), &Discard).await.unwrap();
    assert!(after.status.success());
    assert_eq!(link.transport.protocol_violations(), 0);
}

fn entry(path: &str, kind: EntryKind) -> BundleEntry {
    BundleEntry { path: RelPath::new(path).unwrap(), kind }
}

fn file(path: &str, data: &'static [u8], executable: bool) -> BundleEntry {
    entry(path, EntryKind::File { data: Bytes::from_static(data), executable })
}

fn bundle(entries: Vec<BundleEntry>) -> Bundle {
    Bundle { commit: CommitId::new("a".repeat(40)).unwrap(), entries }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn bundles_keep_modes_and_symlinks_and_replace_files() {
    let link = connect();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("srv/app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), b"old content that is longer").unwrap();
    std::fs::set_permissions(dir.join("compose.yaml"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let big: &'static [u8] = Box::leak(vec![7u8; 3 * protocol::MAX_CHUNK_BYTES + 5].into_boxed_slice());
    let entries = vec![
        file("bin/run.sh", b"#!/bin/sh\necho run\n", true),
        file("compose.yaml", b"services: {}\n", false),
        file("data/big.bin", big, false),
        file("data/empty", b"", false),
        entry("current", EntryKind::Symlink { target: "compose.yaml".into() }),
    ];
    link.transport.write_bundle(dir.to_str().unwrap(), &bundle(entries)).await.unwrap();
    assert_eq!(std::fs::read(dir.join("bin/run.sh")).unwrap(), b"#!/bin/sh\necho run\n");
    assert_eq!(mode(&dir.join("bin/run.sh")), 0o755);
    assert_eq!(mode(&dir.join("bin")), 0o755);
    assert_eq!(std::fs::read(dir.join("compose.yaml")).unwrap(), b"services: {}\n");
    assert_eq!(mode(&dir.join("compose.yaml")), 0o644);
    assert_eq!(std::fs::read(dir.join("data/big.bin")).unwrap(), big);
    assert_eq!(std::fs::read(dir.join("data/empty")).unwrap(), b"");
    assert_eq!(std::fs::read_link(dir.join("current")).unwrap(), std::path::Path::new("compose.yaml"));
    let run = link.transport.run(&RemoteCommand::new(dir.join("bin/run.sh").to_str().unwrap()), &Discard).await;
    assert_eq!(run.unwrap().stdout_str(), "run\n");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains("partial")), "{leftovers:?}");

    // The same bundle again: every file is replaced, the symlink too.
    let again =
        vec![file("compose.yaml", b"v2\n", false), entry("current", EntryKind::Symlink { target: "bin".into() })];
    link.transport.write_bundle(dir.to_str().unwrap(), &bundle(again)).await.unwrap();
    assert_eq!(std::fs::read(dir.join("compose.yaml")).unwrap(), b"v2\n");
    assert_eq!(std::fs::read_link(dir.join("current")).unwrap(), std::path::Path::new("bin"));
}

#[tokio::test]
async fn a_bundle_never_writes_through_its_own_symlink() {
    let link = connect();
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let dir = root.path().join("app");
    let entries = vec![
        entry("escape", EntryKind::Symlink { target: outside.display().to_string() }),
        file("escape/owned", b"x", false),
    ];
    let err = link.transport.write_bundle(dir.to_str().unwrap(), &bundle(entries)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(!outside.join("owned").exists());
}

#[tokio::test]
async fn a_lost_connection_ends_every_request_as_unreachable() {
    let link = connect();
    let transport = Arc::clone(&link.transport);
    let running = tokio::spawn(async move { transport.run(&RemoteCommand::new("sleep").arg("30"), &Discard).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    link.to_daemon.abort();
    let err = tokio::time::timeout(Duration::from_secs(5), running).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(err.is_temporary());
    let later = link.transport.run(&RemoteCommand::new("true"), &Discard).await.unwrap_err();
    assert_eq!(later.kind(), ErrorKind::Unreachable);
}

/// The executor alone, for the answers the transport never asks for.
#[tokio::test]
async fn the_executor_answers_what_it_does_not_do() {
    let (to_agent, incoming) = mpsc::channel(64);
    let (outgoing, mut from_agent) = mpsc::channel(64);
    let (spool, _state) = common::spool();
    tokio::spawn(Executor::new(outgoing, spool).run(incoming));
    to_agent.send(ToAgent::BundleEnd { id: RequestId(8) }).await.unwrap();
    assert!(matches!(from_agent.recv().await, Some(ToDaemon::Failed { id: RequestId(8), .. })));
    to_agent.send(ToAgent::Cancel { id: RequestId(9) }).await.unwrap();
    let resume = Resume { id: RequestId(10), stdout: 0, stderr: 0, input: 0, input_ended: false };
    to_agent.send(ToAgent::Reattach { requests: vec![resume] }).await.unwrap();
    assert_eq!(from_agent.recv().await, Some(ToDaemon::Reattached { id: RequestId(10), running: false }));
    let exec = ToAgent::Exec {
        id: RequestId(11),
        program: "pwd".into(),
        args: vec![],
        env: vec![("DEEPLO_X".into(), "1".into())],
        cwd: Some("/no/such/dir".into()),
        stdin: false,
    };
    to_agent.send(exec).await.unwrap();
    match from_agent.recv().await {
        Some(ToDaemon::Failed { id: RequestId(11), message }) => assert!(message.contains("/no/such/dir"), "{message}"),
        other => panic!("{other:?}"),
    }
    let exec = ToAgent::Exec {
        id: RequestId(12),
        program: "sh".into(),
        args: vec!["-c".into(), "pwd; echo $DEEPLO_X".into()],
        env: vec![("DEEPLO_X".into(), "1".into())],
        cwd: Some("/".into()),
        stdin: false,
    };
    to_agent.send(exec).await.unwrap();
    let mut stdout = Vec::new();
    loop {
        match from_agent.recv().await {
            Some(ToDaemon::Output { id: RequestId(12), stream: protocol::Stream::Stdout, data, .. }) => {
                stdout.extend(data)
            }
            Some(ToDaemon::Exited { id: RequestId(12), status }) => {
                assert_eq!(status, protocol::ExitStatus::Code(0));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(stdout, b"/\n1\n");
}
