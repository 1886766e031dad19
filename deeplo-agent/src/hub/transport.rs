//! [`AgentTransport`]: deeplo-core's [`Transport`] over an agent's frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use deeplo_core::transport::OutputStream;
use deeplo_core::{
    Bundle, Capabilities, CommandOutput, EntryKind, Error, ErrorKind, ExitStatus, OutputSink, RemoteCommand, Result,
    Transport,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::routes::{Abandoned, Routes};
use super::status;
use crate::protocol::{self, MAX_CHUNK_BYTES, MAX_IN_FLIGHT_REQUESTS, RequestId, Stream, ToAgent, ToDaemon};

/// Runs commands and writes bundles on a server through its agent.
///
/// It sends [`ToAgent`] messages to `outgoing` and reads the agent's [`ToDaemon`] replies
/// from `incoming`: a task routes each reply by its request id to the request waiting for
/// it, so that many commands run at once over the one connection.
///
/// - Every message sent is first checked with [`protocol::validate`], so nothing leaves that
///   the agent would refuse: a command with a NUL byte in a word, or a bundle path that
///   leaves the directory, is [`ErrorKind::InvalidInput`].
/// - At most [`MAX_IN_FLIGHT_REQUESTS`] requests are in flight; more wait for a slot. A
///   request keeps its slot until its last reply, even after its caller gave up.
/// - Standard input is read from the caller's `input` one chunk of at most
///   [`MAX_CHUNK_BYTES`] at a time, and the next chunk only once the previous one is
///   queued: while the agent is slow the input is not read. Output is read from the
///   connection meanwhile, so a command that fills its output never stalls its own input.
/// - Each request queues at most [`MAX_BUFFERED_OUTPUT_BYTES`](protocol::MAX_BUFFERED_OUTPUT_BYTES)
///   of replies; a request whose caller does not take them stalls the routing of the whole
///   connection, as the [`OutputSink`] contract allows (a sink returns quickly).
/// - Dropping the future of a running command sends [`ToAgent::Cancel`]: the agent stops
///   the process (a stricter behaviour than the contract's minimum). Its late replies are
///   dropped.
/// - A reply for no request in flight breaks the protocol: it is logged and counted
///   ([`protocol_violations`](Self::protocol_violations)); closing the connection for it
///   is the connection's business.
/// - When `incoming` closes (the connection is lost), every request in flight, and every
///   later one, fails with [`ErrorKind::Unreachable`].
/// - Signals are named as [`signal_name`](super::signal_name) says.
#[derive(Debug)]
pub struct AgentTransport {
    shared: Arc<Shared>,
    router: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    host: String,
    outgoing: mpsc::Sender<ToAgent>,
    routes: Routes,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
}

impl AgentTransport {
    /// A transport to the agent of `host` (the name used in errors), sending to `outgoing`
    /// and reading the replies from `incoming`. Request ids start at 1.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the routing task is spawned on it).
    pub fn new(host: impl Into<String>, outgoing: mpsc::Sender<ToAgent>, incoming: mpsc::Receiver<ToDaemon>) -> Self {
        let shared = Arc::new(Shared {
            host: host.into(),
            outgoing,
            routes: Routes::default(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT_REQUESTS)),
            next_id: AtomicU64::new(1),
        });
        let router = tokio::spawn(route(Arc::clone(&shared), incoming));
        Self { shared, router }
    }

    /// How many replies named no request in flight (each one a protocol violation).
    pub fn protocol_violations(&self) -> u64 {
        self.shared.routes.violations()
    }

    /// Registers a request and sends its first message.
    async fn start(&self, operation: &'static str, first: impl FnOnce(RequestId) -> ToAgent) -> Result<Request<'_>> {
        let first = first(RequestId(0));
        check(&first).map_err(|e| self.shared.error(ErrorKind::InvalidInput, operation, e))?;
        let slot = Arc::clone(&self.shared.slots).acquire_owned().await.map_err(|_| self.shared.lost(operation))?;
        let id = RequestId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let replies = self.shared.routes.register(id, slot).ok_or_else(|| self.shared.lost(operation))?;
        let request = Request { shared: &self.shared, id, replies };
        self.shared.send(operation, with_id(first, id)).await?;
        Ok(request)
    }
}

impl Drop for AgentTransport {
    fn drop(&mut self) {
        self.router.abort();
    }
}

/// Routes the agent's replies until the connection is lost, then ends every request.
async fn route(shared: Arc<Shared>, mut incoming: mpsc::Receiver<ToDaemon>) {
    while let Some(message) = incoming.recv().await {
        shared.routes.deliver(message).await;
    }
    tracing::debug!(host = %shared.host, "the connection to the agent is lost");
    shared.end_all();
}

impl Shared {
    fn error(&self, kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Error {
        Error::new(kind, operation, message).with_host(&self.host)
    }

    fn lost(&self, operation: &'static str) -> Error {
        self.error(ErrorKind::Unreachable, operation, "the connection to the agent is lost or closed")
    }

    async fn send(&self, operation: &'static str, message: ToAgent) -> Result<()> {
        check(&message).map_err(|e| self.error(ErrorKind::InvalidInput, operation, e))?;
        self.outgoing.send(message).await.map_err(|_| self.lost(operation))
    }

    /// Ends every request, asking the agent to stop those still running.
    fn end_all(&self) {
        self.slots.close();
        for id in self.routes.end_all() {
            self.cancel(id);
        }
    }

    /// Sends a [`ToAgent::Cancel`] without waiting (from `Drop`): at once when the channel
    /// has room, else from a task.
    fn cancel(&self, id: RequestId) {
        let Err(mpsc::error::TrySendError::Full(cancel)) = self.outgoing.try_send(ToAgent::Cancel { id }) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let outgoing = self.outgoing.clone();
            runtime.spawn(async move {
                let _ = outgoing.send(cancel).await;
            });
        }
    }
}

/// The protocol's own bounds, as the agent checks them.
fn check(message: &ToAgent) -> std::result::Result<(), String> {
    protocol::validate_to_agent(message)
}

/// `message` with its request id set to `id`.
fn with_id(message: ToAgent, new: RequestId) -> ToAgent {
    match message {
        ToAgent::Exec { program, args, env, cwd, stdin, .. } => {
            ToAgent::Exec { id: new, program, args, env, cwd, stdin }
        }
        ToAgent::WriteBundle { dir, .. } => ToAgent::WriteBundle { id: new, dir },
        other => other,
    }
}

/// A request in flight: its replies, and a `Cancel` to the agent when it is given up.
struct Request<'a> {
    shared: &'a Shared,
    id: RequestId,
    replies: mpsc::Receiver<ToDaemon>,
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if self.shared.routes.abandon(self.id) == Abandoned::Pending {
            self.shared.cancel(self.id);
        }
    }
}

impl Request<'_> {
    /// The next reply; the connection's loss is an error.
    async fn reply(&mut self, operation: &'static str) -> Result<ToDaemon> {
        self.replies.recv().await.ok_or_else(|| self.shared.lost(operation))
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
                        return Err(self.shared.error(ErrorKind::RemoteCommand, OP, format!("{command}: {message}")));
                    }
                    other => self.shared.routes.violation(&other),
                },
                permit = self.shared.outgoing.reserve(), if queued.is_some() => match (permit, queued.take()) {
                    (Ok(permit), Some(message)) => {
                        check(&message).map_err(|e| self.shared.error(ErrorKind::InvalidInput, OP, e))?;
                        permit.send(message);
                    }
                    _ => return Err(self.shared.lost(OP)),
                },
                read = input.read(&mut buf), if input_open && queued.is_none() => {
                    queued = Some(match read {
                        Ok(n) if n > 0 => ToAgent::Stdin { id, data: buf[..n].to_vec() },
                        Ok(_) => {
                            input_open = false;
                            ToAgent::StdinEnd { id }
                        }
                        Err(e) => {
                            tracing::debug!(host = %self.shared.host, error = %e, "standard input not fully read");
                            input_open = false;
                            ToAgent::StdinEnd { id }
                        }
                    });
                }
            }
        }
    }

    async fn write_bundle(&self, dir: &str, bundle: &Bundle) -> Result<()> {
        const OP: &str = "write bundle";
        let mut request = self.start(OP, |id| ToAgent::WriteBundle { id, dir: dir.to_owned() }).await?;
        let id = request.id;
        let sending = async {
            for entry in &bundle.entries {
                let path = entry.path.as_str().to_owned();
                match &entry.kind {
                    EntryKind::File { data, executable } => {
                        self.shared.send(OP, ToAgent::BundleFile { id, path, executable: *executable }).await?;
                        for chunk in data.chunks(MAX_CHUNK_BYTES) {
                            self.shared.send(OP, ToAgent::BundleData { id, data: chunk.to_vec() }).await?;
                        }
                    }
                    EntryKind::Symlink { target } => {
                        self.shared.send(OP, ToAgent::BundleSymlink { id, path, target: target.clone() }).await?;
                    }
                }
            }
            self.shared.send(OP, ToAgent::BundleEnd { id }).await
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
                    return Err(self.shared.error(ErrorKind::Io, OP, format!("cannot write under {dir}: {message}")));
                }
                other => self.shared.routes.violation(&other),
            }
            reply = request.reply(OP).await?;
        }
    }

    async fn close(&self) -> Result<()> {
        self.shared.end_all();
        Ok(())
    }
}
