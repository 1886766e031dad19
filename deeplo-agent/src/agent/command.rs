//! One [`ToAgent::Exec`](crate::protocol::ToAgent::Exec): the child process, its pipes and
//! its end.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use super::executor::TERMINATE_GRACE;
use crate::protocol::{ExitStatus, MAX_CHUNK_BYTES, RequestId, Stream, ToDaemon};

/// The fields of an [`Exec`](crate::protocol::ToAgent::Exec).
#[derive(Debug)]
pub(super) struct CommandRequest {
    pub id: RequestId,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub stdin: bool,
}

/// Runs the command to its end (or until `cancel` fires) and sends its frames: output
/// chunks, then `Exited`, or one `Failed` when it could not start.
pub(super) async fn run(
    request: CommandRequest,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    cancel: oneshot::Receiver<()>,
    outgoing: mpsc::Sender<ToDaemon>,
) {
    let id = request.id;
    let child = match spawn(&request) {
        Ok(child) => child,
        Err(e) => return answer_spawn_error(&request, &e, &outgoing).await,
    };
    let status = supervise(id, child, stdin, cancel, &outgoing).await;
    let _ = outgoing.send(ToDaemon::Exited { id, status }).await;
}

fn spawn(request: &CommandRequest) -> std::io::Result<Child> {
    let mut command = Command::new(&request.program);
    command
        .args(&request.args)
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(if request.stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    command.spawn()
}

/// A program that is not found or not executable ends as it would from a shell (127, 126,
/// with the shell's line on stderr); anything else is `Failed`.
async fn answer_spawn_error(request: &CommandRequest, error: &std::io::Error, outgoing: &mpsc::Sender<ToDaemon>) {
    let id = request.id;
    let program = &request.program;
    let cwd_missing = request.cwd.as_deref().is_some_and(|cwd| !Path::new(cwd).is_dir());
    let (code, line) = match error.kind() {
        _ if cwd_missing => {
            let cwd = request.cwd.as_deref().unwrap_or_default();
            let message = format!("cannot start {program}: working directory {cwd} does not exist");
            let _ = outgoing.send(ToDaemon::Failed { id, message }).await;
            return;
        }
        std::io::ErrorKind::NotFound => (127, format!("deeplo-agent: {program}: not found\n")),
        std::io::ErrorKind::PermissionDenied => (126, format!("deeplo-agent: {program}: Permission denied\n")),
        _ => {
            let message = format!("cannot start {program}: {error}");
            let _ = outgoing.send(ToDaemon::Failed { id, message }).await;
            return;
        }
    };
    let _ = outgoing.send(ToDaemon::Output { id, stream: Stream::Stderr, data: line.into_bytes() }).await;
    let _ = outgoing.send(ToDaemon::Exited { id, status: ExitStatus::Code(code) }).await;
}

/// Forwards the input, streams the output, and waits for the end or the cancel.
async fn supervise(
    id: RequestId,
    mut child: Child,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    cancel: oneshot::Receiver<()>,
    outgoing: &mpsc::Sender<ToDaemon>,
) -> ExitStatus {
    // Resolves only on a cancel: a dropped sender (the executor going away) never does.
    let cancel = async {
        if cancel.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(cancel);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("both output pipes are requested at spawn");
    };
    let pipe = child.stdin.take();
    let streams = async {
        tokio::join!(pump(id, stdout, Stream::Stdout, outgoing), pump(id, stderr, Stream::Stderr, outgoing));
    };
    let input = async {
        if let (Some(pipe), Some(chunks)) = (pipe, stdin) {
            feed(pipe, chunks).await;
        }
        std::future::pending::<()>().await;
    };
    // Input is fed only while the output is open; the command's end closes its stdin.
    tokio::select! {
        () = streams => {}
        () = input => {}
        () = &mut cancel => return terminate(&mut child).await,
    }
    tokio::select! {
        status = child.wait() => status.map_or(ExitStatus::Unknown, convert_status),
        () = &mut cancel => terminate(&mut child).await,
    }
}

/// Reads one output stream to its end, a chunk at a time: the next read waits until the
/// chunk is queued (the backpressure).
async fn pump(id: RequestId, mut pipe: impl AsyncRead + Unpin, stream: Stream, outgoing: &mpsc::Sender<ToDaemon>) {
    let mut buf = vec![0; MAX_CHUNK_BYTES];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if outgoing.send(ToDaemon::Output { id, stream, data: buf[..n].to_vec() }).await.is_err() {
            return;
        }
    }
}

/// Writes the chunks to the command's stdin, closing it when they end. A command that stops
/// reading loses the rest.
async fn feed(mut pipe: ChildStdin, mut chunks: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = chunks.recv().await {
        if pipe.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = pipe.shutdown().await;
    drop(pipe);
    // Drain what still comes, so the executor never waits on a command that stopped reading.
    while chunks.recv().await.is_some() {}
}

/// SIGTERM, then SIGKILL after [`TERMINATE_GRACE`].
async fn terminate(child: &mut Child) -> ExitStatus {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(TERMINATE_GRACE, child.wait()).await {
            return status.map_or(ExitStatus::Unknown, convert_status);
        }
    }
    let _ = child.kill().await;
    child.wait().await.map_or(ExitStatus::Unknown, convert_status)
}

/// A process status as the protocol carries it: the code, or the signal's name without
/// `SIG` (`TERM`), or its number when the name is unknown.
fn convert_status(status: std::process::ExitStatus) -> ExitStatus {
    if let Some(code) = status.code() {
        return ExitStatus::Code(code);
    }
    match status.signal() {
        Some(number) => ExitStatus::Signal(
            Signal::try_from(number)
                .map_or_else(|_| number.to_string(), |signal| signal.as_str().trim_start_matches("SIG").to_owned()),
        ),
        None => ExitStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(convert_status(std::process::ExitStatus::from_raw(3 << 8)), ExitStatus::Code(3));
        assert_eq!(convert_status(std::process::ExitStatus::from_raw(15)), ExitStatus::Signal("TERM".into()));
        assert_eq!(convert_status(std::process::ExitStatus::from_raw(9)), ExitStatus::Signal("KILL".into()));
    }
}
