//! [`AgentTransport`]: deeplo-core's [`Transport`] over an agent's frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use deeplo_core::transport::OutputStream;
use deeplo_core::{
    Bundle, Capabilities, CommandOutput, EntryKind, ErrorKind, ExitStatus, OutputSink, RemoteCommand, Result, Transport,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::connection::{LOST, Link, check};
use super::routes::{Abandoned, Owner, Refused};
use super::status;
use crate::protocol::{DockerFacts, MAX_CHUNK_BYTES, RequestId, Stream, ToAgent, ToDaemon};

/// Runs commands and writes bundles on a server through its agent: one of the transports
/// an [`AgentConnection`](super::AgentConnection) hands out.
///
/// Its requests travel on the connection beside those of the connection's other
/// transports, with the connection's request ids and slots.
///
/// - Every message sent is first checked with [`validate`](crate::protocol::validate), so nothing leaves that
///   the agent would refuse: a command with a NUL byte in a word, or a bundle path that
///   leaves the directory, is [`ErrorKind::InvalidInput`].
/// - At most [`MAX_IN_FLIGHT_REQUESTS`](crate::protocol::MAX_IN_FLIGHT_REQUESTS) requests are in
///   flight on the connection; more wait for a slot. A request keeps its slot until its last
///   reply, even after its caller gave up.
/// - Standard input is read from the caller's `input` one chunk of at most
///   [`MAX_CHUNK_BYTES`] at a time, and the next chunk only once the previous one is
///   queued: while the agent is slow the input is not read. Output is read from the
///   connection meanwhile, so a command that fills its output never stalls its own input.
/// - Each request queues at most [`MAX_BUFFERED_OUTPUT_BYTES`](crate::protocol::MAX_BUFFERED_OUTPUT_BYTES)
///   of replies; a request whose caller does not take them stalls the routing of the whole
///   connection, as the [`OutputSink`] contract allows (a sink returns quickly).
/// - Dropping the future of a running command sends [`ToAgent::Cancel`]: the agent stops
///   the process (a stricter behaviour than the contract's minimum). Its late replies are
///   dropped.
/// - [`close`](Transport::close) does the same for every request of this transport, which
///   end with [`ErrorKind::Unreachable`], and refuses later ones; the connection and its
///   other transports go on.
/// - When the connection is lost, every request in flight, and every later one, fails with
///   [`ErrorKind::Unreachable`]. A connection that drops is only lost once the hub's grace
///   is over: until then its requests wait, and the agent that connects again takes up
///   their commands. A bundle write the new agent does not know (it died with the old one)
///   is written again, up to three times in all.
/// - Signals are named as [`signal_name`](super::signal_name) says.
#[derive(Debug)]
pub struct AgentTransport {
    link: Arc<Link>,
    owner: Owner,
    /// Set by `close`, under the lock of the connection's routes.
    closed: AtomicBool,
}

/// Why a request of a closed transport fails.
const CLOSED: &str = "the transport to the agent is closed";

/// Why a request's replies end before its last one.
const ENDED: &str = "the connection to the agent is lost, or the transport closed";

impl AgentTransport {
    pub(super) fn new(link: Arc<Link>, owner: Owner) -> Self {
        Self { link, owner, closed: AtomicBool::new(false) }
    }

    /// How many replies named no request in flight on the connection (each one a protocol
    /// violation), whichever transport's requests they were meant for.
    pub fn protocol_violations(&self) -> u64 {
        self.link.routes.violations()
    }

    /// The server's Docker engine as its agent reads it: engine, API and Compose versions,
    /// and the containers of the Compose project `project` (every container when `None`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unreachable`] when the connection is lost; [`ErrorKind::Io`] when the
    /// agent cannot reach Docker (its message says which socket it tried).
    pub async fn docker_facts(&self, project: Option<&str>) -> Result<DockerFacts> {
        const OP: &str = "docker facts";
        let project = project.map(str::to_owned);
        let mut request = self.start(OP, |id| ToAgent::DockerFacts { id, project }).await?;
        loop {
            match request.reply(OP).await? {
                ToDaemon::Facts { facts, .. } => return Ok(facts),
                ToDaemon::Failed { message, .. } => return Err(self.link.error(ErrorKind::Io, OP, message)),
                other => self.link.routes.violation(&other),
            }
        }
    }

    /// Registers a request and sends its first message.
    async fn start(&self, operation: &'static str, first: impl FnOnce(RequestId) -> ToAgent) -> Result<Request<'_>> {
        let first = first(RequestId(0));
        check(&first).map_err(|e| self.link.error(ErrorKind::InvalidInput, operation, e))?;
        let slot = self.link.slot().await.ok_or_else(|| self.link.unreachable(operation, LOST))?;
        let id = self.link.next_id();
        let replies = self.link.routes.register(id, self.owner, &self.closed, slot).map_err(|refused| {
            let why = match refused {
                Refused::Lost => LOST,
                Refused::Closed => CLOSED,
            };
            self.link.unreachable(operation, why)
        })?;
        let request = Request { link: &self.link, id, replies };
        self.link.send(operation, with_id(first, id)).await?;
        if self.closed.load(Ordering::Relaxed) {
            // Closed between the registration and the send: the close's `Cancel` may have
            // gone before the request, which this one follows.
            self.link.cancel(id);
        }
        Ok(request)
    }
}

/// `message` with its request id set to `id`.
fn with_id(message: ToAgent, new: RequestId) -> ToAgent {
    match message {
        ToAgent::Exec { program, args, env, cwd, stdin, .. } => {
            ToAgent::Exec { id: new, program, args, env, cwd, stdin }
        }
        ToAgent::WriteBundle { dir, .. } => ToAgent::WriteBundle { id: new, dir },
        ToAgent::DockerFacts { project, .. } => ToAgent::DockerFacts { id: new, project },
        other => other,
    }
}

/// A request in flight: its replies, and a `Cancel` to the agent when it is given up.
struct Request<'a> {
    link: &'a Link,
    id: RequestId,
    replies: mpsc::Receiver<ToDaemon>,
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if self.link.routes.abandon(self.id) == Abandoned::Pending {
            self.link.cancel(self.id);
        }
    }
}

impl Request<'_> {
    /// The next reply; the connection's loss is an error.
    async fn reply(&mut self, operation: &'static str) -> Result<ToDaemon> {
        // The connection's loss and the transport's close both end the replies.
        self.replies.recv().await.ok_or_else(|| self.link.unreachable(operation, ENDED))
    }
}

#[async_trait]
impl Transport for AgentTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities { symlinks: true, file_modes: true, streaming_output: true }
    }

    async fn run_with_input(
        &self,
        command: &RemoteCommand,
        input: &mut (dyn AsyncRead + Send + Unpin),
        sink: &dyn OutputSink,
    ) -> Result<CommandOutput> {
        const OP: &str = "run command";
        let exec = |id| ToAgent::Exec {
            id,
            program: command.program.clone(),
            args: command.args.clone(),
            env: Vec::new(),
            cwd: None,
            stdin: true,
        };
        let mut request = self.start(OP, exec).await?;
        let id = request.id;
        let mut output = CommandOutput { status: ExitStatus::Unknown, stdout: Vec::new(), stderr: Vec::new() };
        let mut buf = vec![0; MAX_CHUNK_BYTES];
        let mut input_open = true;
        let mut queued: Option<ToAgent> = None;
        loop {
            tokio::select! {
                reply = request.reply(OP) => match reply? {
                    ToDaemon::Output { stream, data, .. } => {
                        let (stream, all) = match stream {
                            Stream::Stdout => (OutputStream::Stdout, &mut output.stdout),
                            Stream::Stderr => (OutputStream::Stderr, &mut output.stderr),
                        };
                        sink.output(stream, &data);
                        all.extend_from_slice(&data);
                    }
                    ToDaemon::Exited { status, .. } => {
                        output.status = status::convert(&status);
                        return Ok(output);
                    }
                    ToDaemon::Failed { message, .. } => {
                        return Err(self.link.error(ErrorKind::RemoteCommand, OP, format!("{command}: {message}")));
                    }
                    other => self.link.routes.violation(&other),
                },
                permit = self.link.outgoing().reserve(), if queued.is_some() => match (permit, queued.take()) {
                    (Ok(permit), Some(message)) => {
                        check(&message).map_err(|e| self.link.error(ErrorKind::InvalidInput, OP, e))?;
                        permit.send(message);
                    }
                    _ => return Err(self.link.unreachable(OP, LOST)),
                },
                read = input.read(&mut buf), if input_open && queued.is_none() => {
                    queued = Some(match read {
                        Ok(n) if n > 0 => ToAgent::Stdin { id, data: buf[..n].to_vec() },
                        Ok(_) => {
                            input_open = false;
                            ToAgent::StdinEnd { id }
                        }
                        Err(e) => {
                            tracing::debug!(host = %self.link.host(), error = %e, "standard input not fully read");
                            input_open = false;
                            ToAgent::StdinEnd { id }
                        }
                    });
                }
            }
        }
    }

    async fn write_bundle(&self, dir: &str, bundle: &Bundle) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.write_bundle_once(dir, bundle).await {
                Err(e) if attempt < BUNDLE_ATTEMPTS && self.lost_only_the_request(&e) => {
                    tracing::info!(host = %self.link.host(), dir, "the agent lost a bundle write across a reconnect; writing it again");
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn close(&self) -> Result<()> {
        self.link.close(self.owner, &self.closed);
        Ok(())
    }
}

/// How many times a bundle is written when the agent loses the write across a reconnect.
const BUNDLE_ATTEMPTS: u32 = 3;

impl AgentTransport {
    /// Whether `error` ended a request that the agent no longer knew after a reconnect,
    /// while the connection and this transport go on: one that can simply be asked again.
    fn lost_only_the_request(&self, error: &deeplo_core::Error) -> bool {
        error.kind() == ErrorKind::Unreachable && !self.closed.load(Ordering::Relaxed) && !self.link.is_lost()
    }

    /// One attempt of [`write_bundle`](Transport::write_bundle): the agent does not keep a
    /// bundle write across its own restart, but writing it again replaces every file.
    async fn write_bundle_once(&self, dir: &str, bundle: &Bundle) -> Result<()> {
        const OP: &str = "write bundle";
        let mut request = self.start(OP, |id| ToAgent::WriteBundle { id, dir: dir.to_owned() }).await?;
        let id = request.id;
        let sending = async {
            for entry in &bundle.entries {
                let path = entry.path.as_str().to_owned();
                match &entry.kind {
                    EntryKind::File { data, executable } => {
                        self.link.send(OP, ToAgent::BundleFile { id, path, executable: *executable }).await?;
                        for chunk in data.chunks(MAX_CHUNK_BYTES) {
                            self.link.send(OP, ToAgent::BundleData { id, data: chunk.to_vec() }).await?;
                        }
                    }
                    EntryKind::Symlink { target } => {
                        self.link.send(OP, ToAgent::BundleSymlink { id, path, target: target.clone() }).await?;
                    }
                }
            }
            self.link.send(OP, ToAgent::BundleEnd { id }).await
        };
        // The agent may answer before the end (a failure): stop sending then.
        let early = tokio::select! {
            sent = sending => {
                sent?;
                None
            }
            reply = request.reply(OP) => Some(reply?),
        };
        let mut reply = match early {
            Some(reply) => reply,
            None => request.reply(OP).await?,
        };
        loop {
            match reply {
                ToDaemon::BundleWritten { .. } => return Ok(()),
                ToDaemon::Failed { message, .. } => {
                    return Err(self.link.error(ErrorKind::Io, OP, format!("cannot write under {dir}: {message}")));
                }
                other => self.link.routes.violation(&other),
            }
            reply = request.reply(OP).await?;
        }
    }
}
