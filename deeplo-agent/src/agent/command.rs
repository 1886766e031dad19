//! One [`ToAgent::Exec`](crate::protocol::ToAgent::Exec): started under a keeper, its
//! output followed in its spool entry, its input fed to the keeper, and, after a reconnect,
//! taken up again from where the daemon's copy ends.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::ChildStdout;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::executor::TERMINATE_GRACE;
use super::spool::{Entry, INPUT, STDERR, STDOUT, Spool, State};
use crate::protocol::{ExitStatus, MAX_CHUNK_BYTES, RequestId, Resume, Stream, ToDaemon};

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

/// What the executor passes on of a command's standard input.
#[derive(Debug)]
pub(super) enum Input {
    /// A chunk.
    Data(Vec<u8>),
    /// The end: the command's stdin is closed. A channel that closes without it leaves the
    /// input open for the next connection.
    End,
}

/// How long a keeper has to say that its command started, and an input socket to answer.
const KEEPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest and longest pause between two looks at a command's files. The pause
/// doubles while nothing comes and starts over when output does; the end of a command is
/// heard at once from its keeper when this agent started it.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Chunks read from one stream before the other gets its turn.
const CHUNKS_PER_TURN: usize = 16;

/// Starts the command and follows it to its end (or until `cancel` fires), sending its
/// frames: output chunks, then `Exited`, or one `Failed` when it could not start.
pub(super) async fn run(
    spool: Arc<Spool>,
    request: CommandRequest,
    input: Option<mpsc::Receiver<Input>>,
    cancel: oneshot::Receiver<()>,
    outgoing: mpsc::Sender<ToDaemon>,
) {
    let id = request.id;
    let entry = spool.entry(id);
    match launch(&spool, &entry, &request).await {
        Ok(Launched { notice, socket }) => {
            if let (Some(socket), Some(input)) = (socket, input) {
                tokio::spawn(feed(socket, input));
            }
            follow(id, &entry, [0, 0], Some(notice), cancel, &outgoing).await;
        }
        Err(answer) => {
            entry.remove();
            for frame in answer.frames(id, &request.program) {
                let _ = outgoing.send(frame).await;
            }
        }
    }
}

/// Takes up a command of an earlier connection as `resume` describes what the daemon has
/// of it; on success the command's output from there follows with [`follow`] (fed with the
/// returned socket while its input is open).
pub(super) async fn reattach(spool: &Spool, resume: &Resume) -> Result<(Entry, Option<UnixStream>), String> {
    let entry = spool.entry(resume.id);
    match entry.state() {
        State::Lost => Err("the agent has no such command, or lost its end (the machine restarted?)".into()),
        State::Ended(_) => Ok((entry, None)),
        State::Running(_) if !entry.takes_input() => Ok((entry, None)),
        State::Running(_) => {
            let (mut socket, received, ended) = match connect_input(&entry.path(INPUT)).await {
                Ok(connected) => connected,
                // The command ended between the look and now, or its keeper is gone.
                Err(_) if entry.status().is_some() => return Ok((entry, None)),
                Err(e) => return Err(format!("cannot reach the command's input: {e}")),
            };
            if received != resume.input {
                entry.stop();
                return Err(format!(
                    "the command received {received} bytes of input of the {} the daemon sent; the rest is lost",
                    resume.input
                ));
            }
            if ended {
                return Ok((entry, None));
            }
            if resume.input_ended {
                let _ = socket.write_all(&[1]).await;
                return Ok((entry, None));
            }
            Ok((entry, Some(socket)))
        }
    }
}

/// Follows a command taken up by [`reattach`], feeding it `input` through its socket while
/// its input is open.
pub(super) async fn resumed(
    id: RequestId,
    entry: Entry,
    from: [u64; 2],
    input: Option<(UnixStream, mpsc::Receiver<Input>)>,
    cancel: oneshot::Receiver<()>,
    outgoing: mpsc::Sender<ToDaemon>,
) {
    if let Some((socket, input)) = input {
        tokio::spawn(feed(socket, input));
    }
    follow(id, &entry, from, None, cancel, &outgoing).await;
}

/// A started command: the keeper's pipe, which ends when the keeper does, and the input
/// socket when the command takes input.
struct Launched {
    notice: BufReader<ChildStdout>,
    socket: Option<UnixStream>,
}

/// Why a command did not start, as the daemon is told.
enum NotStarted {
    /// As from a shell: 127 for a program not found, 126 for one not executable.
    Shell(i32, &'static str),
    /// Anything else: [`ToDaemon::Failed`].
    Failed(String),
}

impl NotStarted {
    fn frames(self, id: RequestId, program: &str) -> Vec<ToDaemon> {
        match self {
            Self::Shell(code, what) => vec![
                ToDaemon::Output {
                    id,
                    stream: Stream::Stderr,
                    offset: 0,
                    data: format!("deeplo-agent: {program}: {what}\n").into_bytes(),
                },
                ToDaemon::Exited { id, status: ExitStatus::Code(code) },
            ],
            Self::Failed(message) => vec![ToDaemon::Failed { id, message }],
        }
    }
}

async fn launch(spool: &Spool, entry: &Entry, request: &CommandRequest) -> Result<Launched, NotStarted> {
    let program = &request.program;
    if let Some(cwd) = request.cwd.as_deref().filter(|cwd| !Path::new(cwd).is_dir()) {
        return Err(NotStarted::Failed(format!("cannot start {program}: working directory {cwd} does not exist")));
    }
    entry.create().map_err(|e| NotStarted::Failed(format!("cannot start {program}: the spool entry: {e}")))?;
    let mut keeper = tokio::process::Command::new(spool.keeper());
    keeper.arg("keep").arg("--dir").arg(entry.dir());
    if request.stdin {
        keeper.arg("--input");
    }
    if let Some(cwd) = &request.cwd {
        keeper.arg("--cwd").arg(cwd);
    }
    keeper
        .arg("--")
        .arg(program)
        .args(&request.args)
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = keeper.spawn().map_err(|e| {
        NotStarted::Failed(format!("cannot start {program}: cannot run the keeper {}: {e}", spool.keeper().display()))
    })?;
    let Some(stdout) = child.stdout.take() else { unreachable!("the keeper's stdout is piped") };
    // The keeper outlives this handle; Tokio reaps it when it exits.
    drop(child);
    let mut notice = BufReader::new(stdout);
    let mut line = String::new();
    let said = tokio::time::timeout(KEEPER_TIMEOUT, notice.read_line(&mut line)).await;
    let line = match said {
        Ok(Ok(n)) if n > 0 => line.trim_end().to_owned(),
        Ok(_) => return Err(NotStarted::Failed(format!("cannot start {program}: the keeper ended without a word"))),
        Err(_) => return Err(NotStarted::Failed(format!("cannot start {program}: the keeper did not answer"))),
    };
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("ready"), _, _) => {}
        (Some("error"), Some("not-found"), _) => return Err(NotStarted::Shell(127, "not found")),
        (Some("error"), Some("denied"), _) => return Err(NotStarted::Shell(126, "Permission denied")),
        (Some("error"), _, message) => {
            return Err(NotStarted::Failed(format!("cannot start {program}: {}", message.unwrap_or_default())));
        }
        _ => return Err(NotStarted::Failed(format!("cannot start {program}: the keeper said {line:?}"))),
    }
    let socket = if request.stdin {
        match connect_input(&entry.path(INPUT)).await {
            Ok((socket, _, _)) => Some(socket),
            // Ended already (its keeper gone with the socket): its input is moot.
            Err(_) if entry.status().is_some() => None,
            Err(e) => return Err(NotStarted::Failed(format!("cannot feed the input of {program}: {e}"))),
        }
    } else {
        None
    };
    Ok(Launched { notice, socket })
}

/// Connects to a keeper's input socket: the socket, the bytes of input the command has
/// received, and whether its input has ended.
async fn connect_input(path: &Path) -> std::io::Result<(UnixStream, u64, bool)> {
    let connect = async {
        let mut socket = UnixStream::connect(path).await?;
        let mut header = [0; 9];
        socket.read_exact(&mut header).await?;
        let received = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
        Ok((socket, received, header[8] == 1))
    };
    tokio::time::timeout(KEEPER_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the keeper did not answer")))
}

/// Passes the command's input on to its keeper, a frame per chunk, and the end when it
/// comes. When the channel closes first (the connection is gone) the socket is dropped
/// and the input stays open for the next connection. When the keeper stops reading (the
/// command ended) the rest is drained and dropped.
async fn feed(mut socket: UnixStream, mut input: mpsc::Receiver<Input>) {
    while let Some(next) = input.recv().await {
        let written = match next {
            Input::Data(data) => {
                let mut frame = Vec::with_capacity(5 + data.len());
                frame.push(0);
                frame.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
                frame.extend_from_slice(&data);
                socket.write_all(&frame).await
            }
            Input::End => {
                let _ = socket.write_all(&[1]).await;
                break;
            }
        };
        if written.is_err() {
            break;
        }
    }
    drop(socket);
    while input.recv().await.is_some() {}
}

/// Sends the command's output from the offsets `from` (stdout, stderr) as it comes, then
/// its end. `notice` is the keeper's pipe, when this agent started it: its end means the
/// command's. A cancel sends the command SIGTERM, then SIGKILL after [`TERMINATE_GRACE`].
async fn follow(
    id: RequestId,
    entry: &Entry,
    from: [u64; 2],
    mut notice: Option<BufReader<ChildStdout>>,
    cancel: oneshot::Receiver<()>,
    outgoing: &mpsc::Sender<ToDaemon>,
) {
    let mut streams = match Streams::open(entry, from) {
        Ok(streams) => streams,
        Err(e) => {
            let message = format!("cannot read the command's output under {}: {e}", entry.dir().display());
            let _ = outgoing.send(ToDaemon::Failed { id, message }).await;
            return;
        }
    };
    // Resolves only on a cancel: a dropped sender (the executor going away) never does.
    let cancel = async {
        if cancel.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(cancel);
    let mut cancelled = false;
    let mut kill_at: Option<Instant> = None;
    let mut pause = FIRST_PAUSE;
    loop {
        // The status first: once it is there, all the output is in the files.
        let ended = entry.status();
        match streams.send_new(id, outgoing).await {
            Err(()) => return,
            Ok(true) => pause = FIRST_PAUSE,
            Ok(false) => pause = (pause * 2).min(LONGEST_PAUSE),
        }
        if let Some(status) = ended {
            // A turn reads a bounded amount of each stream: the rest, to the end.
            loop {
                match streams.send_new(id, outgoing).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(()) => return,
                }
            }
            let _ = outgoing.send(ToDaemon::Exited { id, status }).await;
            return;
        }
        if kill_at.is_some_and(|at| Instant::now() >= at) {
            entry.signal(Signal::SIGKILL);
            kill_at = None;
        }
        let mut byte = [0; 64];
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            read = async { notice.as_mut().expect("guarded").read(&mut byte).await }, if notice.is_some() => {
                if !matches!(read, Ok(n) if n > 0) {
                    // The keeper exited: the status is on disk (or lost with it).
                    notice = None;
                    pause = FIRST_PAUSE;
                    if entry.status().is_none() && entry.state() == State::Lost {
                        let _ = outgoing.send(ToDaemon::Exited { id, status: ExitStatus::Unknown }).await;
                        return;
                    }
                }
            }
            () = &mut cancel, if !cancelled => {
                cancelled = true;
                entry.signal(Signal::SIGTERM);
                kill_at = Some(Instant::now() + TERMINATE_GRACE);
            }
        }
    }
}

/// The command's two output files, each read from where the daemon's copy ends.
struct Streams {
    files: [(std::fs::File, u64, Stream); 2],
    buf: Vec<u8>,
}

impl Streams {
    fn open(entry: &Entry, from: [u64; 2]) -> std::io::Result<Self> {
        let open = |name: &str, offset: u64, stream: Stream| -> std::io::Result<(std::fs::File, u64, Stream)> {
            let mut file = std::fs::File::open(entry.path(name))?;
            file.seek(SeekFrom::Start(offset))?;
            Ok((file, offset, stream))
        };
        let files = [open(STDOUT, from[0], Stream::Stdout)?, open(STDERR, from[1], Stream::Stderr)?];
        Ok(Self { files, buf: vec![0; MAX_CHUNK_BYTES] })
    }

    /// Sends what the files gained since the last look; whether there was any. `Err` when
    /// the connection is gone.
    ///
    /// The reads are of small local files the command just wrote, in the page cache: they
    /// are done in place rather than on the blocking pool.
    async fn send_new(&mut self, id: RequestId, outgoing: &mpsc::Sender<ToDaemon>) -> Result<bool, ()> {
        let mut any = false;
        for (file, offset, stream) in &mut self.files {
            for _ in 0..CHUNKS_PER_TURN {
                let n = match file.read(&mut self.buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let frame = ToDaemon::Output { id, stream: *stream, offset: *offset, data: self.buf[..n].to_vec() };
                *offset += n as u64;
                any = true;
                if outgoing.send(frame).await.is_err() {
                    return Err(());
                }
            }
        }
        Ok(any)
    }
}
