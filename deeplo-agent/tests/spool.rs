//! Commands outlive their executor: a later executor on the same spool (the next
//! connection, or an agent started again) takes each one up from what the daemon has of it,
//! or stops it when nobody waits for it. Real keepers (the agent binary), real processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deeplo_agent::agent::{Executor, Spool};
use deeplo_agent::protocol::{ExitStatus, RequestId, Resume, Stream, ToAgent, ToDaemon};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const DEADLINE: Duration = Duration::from_secs(20);

/// A spool in a new temporary directory, its commands kept by the agent binary.
fn spool() -> (Arc<Spool>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(Spool::open(dir.path(), env!("CARGO_BIN_EXE_deeplo-agent")).unwrap()), dir)
}

/// One executor, as one connection would run it.
struct Agent {
    to: mpsc::Sender<ToAgent>,
    from: mpsc::Receiver<ToDaemon>,
    task: JoinHandle<()>,
}

impl Agent {
    fn start(spool: &Arc<Spool>) -> Self {
        let (to, incoming) = mpsc::channel(64);
        let (outgoing, from) = mpsc::channel(64);
        let task = tokio::spawn(Executor::new(outgoing, Arc::clone(spool)).run(incoming));
        Self { to, from, task }
    }

    async fn send(&self, message: ToAgent) {
        self.to.send(message).await.unwrap();
    }

    async fn recv(&mut self) -> ToDaemon {
        tokio::time::timeout(DEADLINE, self.from.recv()).await.expect("a frame in time").expect("the executor runs")
    }

    /// Its connection ends: the executor goes, its commands stay.
    async fn gone(self) {
        let Self { to, from, task } = self;
        drop((to, from));
        tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
    }
}

/// What the daemon keeps of one command: each stream, checked to arrive in order.
#[derive(Default)]
struct Copy {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
}

impl Copy {
    /// Takes one frame of `id`; panics on a chunk that does not follow what it has.
    fn take(&mut self, id: RequestId, frame: ToDaemon) {
        match frame {
            ToDaemon::Output { id: got, stream, offset, data } if got == id => {
                let have = match stream {
                    Stream::Stdout => &mut self.stdout,
                    Stream::Stderr => &mut self.stderr,
                };
                assert_eq!(offset, have.len() as u64, "a {stream:?} chunk at {offset} after {} bytes", have.len());
                have.extend(data);
            }
            ToDaemon::Exited { id: got, status } if got == id => self.status = Some(status),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn resume(&self, id: RequestId, input: u64, input_ended: bool) -> Resume {
        Resume { id, stdout: self.stdout.len() as u64, stderr: self.stderr.len() as u64, input, input_ended }
    }
}

fn exec(id: RequestId, script: &str, stdin: bool) -> ToAgent {
    ToAgent::Exec { id, program: "sh".into(), args: vec!["-c".into(), script.into()], env: vec![], cwd: None, stdin }
}

fn entry(state: &Path, id: RequestId) -> PathBuf {
    state.join("commands").join(id.0.to_string())
}

/// Starts `script` on an executor that then goes, leaving the command running.
async fn leave_running(spool: &Arc<Spool>, state: &Path, id: RequestId, script: &str, stdin: bool) {
    let first = Agent::start(spool);
    first.send(exec(id, script, stdin)).await;
    until("the keeper starts", || entry(state, id).join("pids").exists()).await;
    first.gone().await;
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_later_executor_takes_up_a_command_its_input_and_its_output() {
    let (spool, _state) = spool();
    let id = RequestId(5);
    let mut first = Agent::start(&spool);
    first.send(exec(id, r#"echo start; read line; echo "got $line"; seq 1 50000; echo done >&2; exit 4"#, true)).await;
    let mut copy = Copy::default();
    while copy.stdout != b"start\n" {
        copy.take(id, first.recv().await);
    }
    first.gone().await;

    let mut second = Agent::start(&spool);
    second.send(ToAgent::Reattach { requests: vec![copy.resume(id, 0, false)] }).await;
    assert_eq!(second.recv().await, ToDaemon::Reattached { id, running: true });
    second.send(ToAgent::Stdin { id, data: b"hello\n".to_vec() }).await;
    second.send(ToAgent::StdinEnd { id }).await;
    while copy.status.is_none() {
        copy.take(id, second.recv().await);
    }
    let numbers: String = (1..=50000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(copy.stdout).unwrap(), format!("start\ngot hello\n{numbers}"));
    assert_eq!(copy.stderr, b"done\n");
    assert_eq!(copy.status, Some(ExitStatus::Code(4)));
}

#[tokio::test]
async fn a_command_that_ended_meanwhile_is_told_whole() {
    let (spool, state) = spool();
    let id = RequestId(6);
    let first = Agent::start(&spool);
    first.send(exec(id, "echo out; echo err >&2; exit 3", false)).await;
    until("the command ends", || entry(state.path(), id).join("status").exists()).await;
    // Nothing of it reached the daemon.
    first.gone().await;

    let mut second = Agent::start(&spool);
    second.send(ToAgent::Reattach { requests: vec![Copy::default().resume(id, 0, false)] }).await;
    assert_eq!(second.recv().await, ToDaemon::Reattached { id, running: true });
    let mut copy = Copy::default();
    while copy.status.is_none() {
        copy.take(id, second.recv().await);
    }
    assert_eq!((copy.stdout.as_slice(), copy.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    assert_eq!(copy.status, Some(ExitStatus::Code(3)));
}

#[tokio::test]
async fn a_command_whose_input_was_lost_is_stopped_not_resumed() {
    let (spool, state) = spool();
    let id = RequestId(7);
    leave_running(&spool, state.path(), id, "cat >/dev/null", true).await;

    let mut second = Agent::start(&spool);
    // The daemon sent 10 bytes the command never received.
    second.send(ToAgent::Reattach { requests: vec![Copy::default().resume(id, 10, false)] }).await;
    assert_eq!(second.recv().await, ToDaemon::Reattached { id, running: false });
    let status = entry(state.path(), id).join("status");
    until("the command is stopped", || std::fs::read_to_string(&status).is_ok_and(|s| s == "signal TERM\n")).await;
}

#[tokio::test]
async fn the_first_reattach_stops_what_nobody_waits_for_and_unknown_ids_are_not_resumed() {
    let (spool, state) = spool();
    let (orphan, unknown) = (RequestId(8), RequestId(9));
    leave_running(&spool, state.path(), orphan, "exec sleep 30", false).await;

    let mut second = Agent::start(&spool);
    second.send(ToAgent::Reattach { requests: vec![Copy::default().resume(unknown, 0, false)] }).await;
    assert_eq!(second.recv().await, ToDaemon::Reattached { id: unknown, running: false });
    let status = entry(state.path(), orphan).join("status");
    until("the orphan is stopped", || std::fs::read_to_string(&status).is_ok_and(|s| s == "signal TERM\n")).await;
}

#[tokio::test]
async fn a_program_that_is_not_found_ends_as_from_a_shell() {
    let (spool, state) = spool();
    let id = RequestId(10);
    let mut agent = Agent::start(&spool);
    let exec = ToAgent::Exec {
        id,
        program: "deeplo-no-such-program".into(),
        args: vec![],
        env: vec![],
        cwd: None,
        stdin: true,
    };
    agent.send(exec).await;
    let mut copy = Copy::default();
    while copy.status.is_none() {
        copy.take(id, agent.recv().await);
    }
    assert_eq!(copy.status, Some(ExitStatus::Code(127)));
    assert!(String::from_utf8_lossy(&copy.stderr).contains("not found"), "{:?}", copy.stderr);
    assert!(!entry(state.path(), id).exists(), "the entry of a command that never ran is removed");
}
