//! The keeper: the small process between the agent and each command it runs
//! (`deeplo-agent keep`), so that the command outlives the agent.
//!
//! The agent could run a command as its own child, but then the command's output pipes and
//! its exit status die with the agent: a crash, an upgrade or a SIGKILL in the middle of a
//! deploy would lose the deploy. The keeper is started in a session of its own and does
//! nothing but hold what must survive, in the command's [spool entry](super::spool):
//!
//! - the command's standard output and error go straight to the files `stdout` and
//!   `stderr` (the agent reads them from any offset, as often as it reconnects);
//! - its standard input, when it takes one, is a pipe the keeper holds open and feeds from
//!   the unix socket `input.sock`, to which each agent connects in turn (see *Input*);
//! - its end is written to `status` (`code N` or `signal NAME`), before the keeper reaps
//!   it, so that a pid read while `status` is absent is still the command's.
//!
//! The keeper tells the agent that started it how the start went with one line on its
//! standard output (`ready PID`, or `error KIND MESSAGE`); the pipe then stays open until
//! the keeper exits, so that a live agent hears of the end at once instead of at its next
//! look at the files.
//!
//! # Input
//!
//! On each connection to `input.sock` the keeper first writes what it has: 8 bytes,
//! big-endian, the input received so far, then one byte, `1` when the input has ended. Then
//! the agent sends frames: `0`, a 4-byte big-endian length and that many bytes of input; or
//! `1`, the end (the command's stdin is closed). A connection that ends otherwise leaves the
//! input open for the next agent; one connection is served at a time, so the count a new
//! agent reads includes everything the one before it wrote. Input the command no longer
//! reads is counted and dropped. A command whose input stays open with no agent connected
//! for [`ORPHANED_INPUT_TIMEOUT`] is stopped.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use super::spool::{self, INPUT, Pids, STDERR, STDOUT};

/// How long a command whose input is still open may wait for an agent to connect to
/// `input.sock` before the keeper stops it (SIGTERM): the agent is gone for good, and a
/// command such as the deploy's lock holder would otherwise wait forever.
pub const ORPHANED_INPUT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What `deeplo-agent keep` is given.
#[derive(Debug, Clone)]
pub struct KeepArgs {
    /// The command's spool entry (created by the agent).
    pub dir: PathBuf,
    /// Whether the command takes standard input through `input.sock`.
    pub input: bool,
    /// The command's working directory.
    pub cwd: Option<PathBuf>,
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// Runs the keeper to the command's end. Its own exit status says nothing (the agent reads
/// the entry); what cannot be reported otherwise goes to the entry's `keeper.log` (its
/// standard error is nobody's: the agent that started it may be long gone).
pub fn keep(args: &KeepArgs) -> std::process::ExitCode {
    // Out of the agent's session and process group: a signal to the agent's group (a
    // terminal's Ctrl-C, a supervisor's kill) does not reach the commands.
    let _ = nix::unistd::setsid();
    let mut ready = std::io::stdout();
    let (mut child, listener) = match start(args) {
        Ok(started) => started,
        Err(Start { kind, message }) => {
            let _ = writeln!(ready, "error {kind} {}", message.replace('\n', " "));
            return std::process::ExitCode::FAILURE;
        }
    };
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let pids = Pids { keeper: std::process::id(), command: child.id(), boot: spool::boot_id() };
    if let Err(e) = spool::write_atomically(&args.dir, spool::PIDS, &pids.to_line()) {
        // Without it a new agent cannot tell the command is alive: stop it rather than
        // leave a command nobody can follow.
        let _ = kill(pid, Signal::SIGKILL);
        let _ = child.wait();
        let _ = writeln!(ready, "error other cannot write the pid file: {e}");
        return std::process::ExitCode::FAILURE;
    }
    if let (Some(listener), Some(stdin)) = (listener, child.stdin.take()) {
        let dir = args.dir.clone();
        std::thread::spawn(move || relay(&listener, stdin, pid, &dir));
    }
    let _ = writeln!(ready, "ready {}", child.id());
    let _ = ready.flush();
    let status = wait_without_reaping(pid);
    if let Err(e) = spool::write_atomically(&args.dir, spool::STATUS, &status) {
        note(&args.dir, &format!("cannot write the status: {e}"));
    }
    let _ = child.wait();
    let _ = std::fs::remove_file(args.dir.join(INPUT));
    std::process::ExitCode::SUCCESS
}

/// Why the command did not start: `not-found`, `denied` or `other`, and the error.
struct Start {
    kind: &'static str,
    message: String,
}

impl Start {
    fn other(what: &str, error: &std::io::Error) -> Self {
        Self { kind: "other", message: format!("{what}: {error}") }
    }
}

fn start(args: &KeepArgs) -> Result<(std::process::Child, Option<UnixListener>), Start> {
    let stdout = File::create(args.dir.join(STDOUT)).map_err(|e| Start::other("cannot create stdout", &e))?;
    let stderr = File::create(args.dir.join(STDERR)).map_err(|e| Start::other("cannot create stderr", &e))?;
    let listener = if args.input {
        Some(UnixListener::bind(args.dir.join(INPUT)).map_err(|e| Start::other("cannot listen for input", &e))?)
    } else {
        None
    };
    let mut command = std::process::Command::new(&args.program);
    command
        .args(&args.args)
        .stdin(if args.input { Stdio::piped() } else { Stdio::null() })
        .stdout(stdout)
        .stderr(stderr);
    if let Some(cwd) = &args.cwd {
        command.current_dir(cwd);
    }
    let child = command.spawn().map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => "not-found",
            std::io::ErrorKind::PermissionDenied => "denied",
            _ => "other",
        };
        Start { kind, message: e.to_string() }
    })?;
    Ok((child, listener))
}

/// Waits for the command to end and says how, leaving it a zombie (`WNOWAIT`): its pid
/// stays its own until the status is on disk.
fn wait_without_reaping(pid: Pid) -> String {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(WaitStatus::Exited(_, code)) => return spool::status_line(&crate::protocol::ExitStatus::Code(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                let name = signal.as_str().trim_start_matches("SIG").to_owned();
                return spool::status_line(&crate::protocol::ExitStatus::Signal(name));
            }
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => return spool::status_line(&crate::protocol::ExitStatus::Unknown),
        }
    }
}

/// Feeds the command's standard input from the agents that connect to `input.sock`, one
/// after the other, until one sends the end (see the module's *Input*).
fn relay(listener: &UnixListener, stdin: ChildStdin, command: Pid, dir: &Path) {
    let mut stdin = Some(stdin);
    let mut received: u64 = 0;
    loop {
        let Some(mut agent) = accept_within(listener, ORPHANED_INPUT_TIMEOUT) else {
            if stdin.is_some() {
                note(dir, &format!("no agent fed the input of pid {command} for 10 minutes; stopping it"));
                let _ = kill(command, Signal::SIGTERM);
            }
            return;
        };
        let mut header = received.to_be_bytes().to_vec();
        header.push(u8::from(stdin.is_none()));
        if agent.write_all(&header).is_err() || stdin.is_none() {
            continue;
        }
        feed(&mut agent, &mut stdin, &mut received);
    }
}

/// Reads the frames of one agent's connection into the command's stdin.
fn feed(agent: &mut UnixStream, stdin: &mut Option<ChildStdin>, received: &mut u64) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let mut tag = [0; 1];
        if agent.read_exact(&mut tag).is_err() {
            return;
        }
        match tag[0] {
            0 => {
                let mut len = [0; 4];
                if agent.read_exact(&mut len).is_err() {
                    return;
                }
                let mut left = u32::from_be_bytes(len) as usize;
                while left > 0 {
                    let want = left.min(buf.len());
                    let n = match agent.read(&mut buf[..want]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&buf[..n]).is_err()
                    {
                        // The command stopped reading: the rest of its input is moot.
                        *stdin = None;
                    }
                    *received += n as u64;
                    left -= n;
                }
            }
            1 => {
                stdin.take();
                return;
            }
            _ => return,
        }
    }
}

/// The next connection to `listener`, or `None` when none comes within `timeout` (or the
/// listener fails).
fn accept_within(listener: &UnixListener, timeout: Duration) -> Option<UnixStream> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return None,
            Ok(_) => return listener.accept().ok().map(|(stream, _)| stream),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}

/// Appends a line to the entry's `keeper.log`.
fn note(dir: &Path, line: &str) {
    if let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(spool::KEEPER_LOG)) {
        let _ = writeln!(log, "{line}");
    }
}
