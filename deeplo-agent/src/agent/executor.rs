//! The [`Executor`]: one per connection, it dispatches the daemon's requests to a task each.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::bundle::{self, BundlePart};
use super::command::{self, CommandRequest, Input};
use super::facts;
use super::spool::Spool;
use crate::protocol::{
    MAX_BUFFERED_OUTPUT_BYTES, MAX_CHUNK_BYTES, MAX_IN_FLIGHT_REQUESTS, RequestId, Resume, ToAgent, ToDaemon,
};

/// How long a cancelled command has between SIGTERM and SIGKILL.
pub const TERMINATE_GRACE: Duration = Duration::from_secs(10);

/// Chunks of standard input (or bundle entries) held for one request and not yet written:
/// [`MAX_BUFFERED_OUTPUT_BYTES`] worth of full chunks.
const REQUEST_QUEUE: usize = MAX_BUFFERED_OUTPUT_BYTES / MAX_CHUNK_BYTES;

/// Carries out the requests of one connection: runs commands, writes bundles, answers the
/// rest.
///
/// # Requests
///
/// - [`ToAgent::Exec`] runs the program directly (no shell) with the given arguments,
///   environment additions and working directory, under a [keeper](super::keeper) of its
///   own, so that it outlives this executor and the agent itself: its output goes to its
///   [spool](super::spool) entry, from where a task sends it as [`ToDaemon::Output`] chunks
///   of at most [`MAX_CHUNK_BYTES`], then one [`ToDaemon::Exited`]. Several commands run at
///   once, each independent. A program that is not found exits
///   127 with a `not found` line on stderr, and one that may not be executed exits 126, as
///   from a shell (the pipeline reads 127 as "not installed"); a missing working directory or
///   any other failure to start is [`ToDaemon::Failed`].
/// - [`ToAgent::Cancel`] sends the command SIGTERM, then SIGKILL after
///   [`TERMINATE_GRACE`]; it still ends with [`ToDaemon::Exited`]. A cancelled bundle
///   write is abandoned and answered by [`ToDaemon::Failed`].
/// - A bundle ([`ToAgent::WriteBundle`] and its entries) is written on a blocking thread and
///   answered, after [`ToAgent::BundleEnd`], by [`ToDaemon::BundleWritten`] or by
///   [`ToDaemon::Failed`] with the first error.
/// - [`ToAgent::DockerFacts`] reads the local engine ([`docker_facts`](super::facts::docker_facts))
///   in a task of its own, so that a slow engine holds up no other request, and is answered
///   by [`ToDaemon::Facts`], or by [`ToDaemon::Failed`] saying which socket did not answer.
///   Every call to the engine is bounded by [`DOCKER_TIMEOUT`](super::facts::DOCKER_TIMEOUT);
///   a [`Cancel`](ToAgent::Cancel) of it is ignored.
/// - [`ToAgent::Reattach`] takes up the commands of earlier connections (of this agent or
///   of one that ran before it) that the daemon still waits for: each is answered by
///   [`ToDaemon::Reattached`], then its output from the daemon's offsets and its end follow
///   as for a new command. A command whose input was partly lost on the way is stopped and
///   not resumed. The first reattach of a connection also stops the commands of earlier
///   connections that it does not name, nobody waiting for them, and clears out old
///   entries. Bundle writes and Docker facts are not resumed: the daemon asks again.
/// - [`ToAgent::Welcome`] concerns the connection and is ignored here.
///
/// An [`Exec`](ToAgent::Exec), [`WriteBundle`](ToAgent::WriteBundle) or
/// [`DockerFacts`](ToAgent::DockerFacts) beyond
/// [`MAX_IN_FLIGHT_REQUESTS`], or with an id already running, is answered by
/// [`ToDaemon::Failed`]. Bundle entries for an unknown id are answered by
/// [`ToDaemon::Failed`]; [`Stdin`](ToAgent::Stdin), [`StdinEnd`](ToAgent::StdinEnd) and
/// [`Cancel`](ToAgent::Cancel) for an unknown id are ignored, because they cross the end of
/// the command on the wire (the daemon sent them before it read `Exited`).
///
/// # Backpressure
///
/// Every frame goes out through the bounded `outgoing` channel, and a command's output is
/// read from its file only once the previous chunk has been queued: memory stays bounded
/// (one chunk per command and the channel's capacity) however fast a command writes, and
/// what the daemon has not read yet waits on disk. Standard input and bundle entries are
/// queued per request up to [`MAX_BUFFERED_OUTPUT_BYTES`]; past that the executor stops
/// reading `incoming` until the request catches up, which pushes back on the connection.
///
/// # Shutdown
///
/// [`run`](Self::run) returns when `incoming` closes (the connection is gone): bundle
/// writes are abandoned, and the commands go on under their keepers, for the next
/// connection to take up (or stop).
#[derive(Debug)]
pub struct Executor {
    outgoing: mpsc::Sender<ToDaemon>,
    spool: Arc<Spool>,
    requests: HashMap<RequestId, Running>,
    tasks: JoinSet<RequestId>,
    /// Whether the commands nobody waits for were stopped (at the first reattach).
    swept: bool,
}

/// What the executor keeps of a request in progress.
#[derive(Debug)]
enum Running {
    Command { input: Option<mpsc::Sender<Input>>, cancel: Option<oneshot::Sender<()>> },
    Bundle { parts: Option<mpsc::Sender<BundlePart>> },
    Facts,
}

impl Executor {
    /// An executor that sends its frames to `outgoing` and keeps its commands in `spool`.
    pub fn new(outgoing: mpsc::Sender<ToDaemon>, spool: Arc<Spool>) -> Self {
        Self { outgoing, spool, requests: HashMap::new(), tasks: JoinSet::new(), swept: false }
    }

    /// Carries out every request read from `incoming` until it closes; see the type's docs.
    pub async fn run(mut self, mut incoming: mpsc::Receiver<ToAgent>) {
        loop {
            tokio::select! {
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    Ok(id) => {
                        self.requests.remove(&id);
                    }
                    Err(e) => tracing::error!(error = %e, "a request task failed"),
                },
                message = incoming.recv() => match message {
                    Some(message) => self.handle(message).await,
                    None => break,
                },
            }
        }
        tracing::debug!(running = self.requests.len(), "connection closed; stopping its requests");
    }

    async fn handle(&mut self, message: ToAgent) {
        match message {
            ToAgent::Welcome(_) => {}
            ToAgent::Exec { id, program, args, env, cwd, stdin } => {
                self.start_command(CommandRequest { id, program, args, env, cwd, stdin }).await;
            }
            ToAgent::Stdin { id, data } => {
                if let Some(Running::Command { input: Some(tx), .. }) = self.requests.get(&id) {
                    // An error means the command has ended: the rest of its input is moot.
                    let _ = tx.send(Input::Data(data)).await;
                }
            }
            ToAgent::StdinEnd { id } => {
                if let Some(Running::Command { input, .. }) = self.requests.get_mut(&id)
                    && let Some(tx) = input.take()
                {
                    let _ = tx.send(Input::End).await;
                }
            }
            ToAgent::Cancel { id } => self.cancel(id),
            ToAgent::WriteBundle { id, dir } => self.start_bundle(id, dir).await,
            ToAgent::BundleFile { id, path, executable } => {
                self.bundle_part(id, BundlePart::File { path, executable }).await;
            }
            ToAgent::BundleData { id, data } => self.bundle_part(id, BundlePart::Data(data)).await,
            ToAgent::BundleSymlink { id, path, target } => {
                self.bundle_part(id, BundlePart::Symlink { path, target }).await;
            }
            ToAgent::BundleEnd { id } => self.bundle_part(id, BundlePart::End).await,
            ToAgent::DockerFacts { id, project } => self.start_facts(id, project).await,
            ToAgent::Reattach { requests } => self.reattach(requests).await,
        }
    }

    /// Why a new request cannot start, if it cannot.
    fn refuse(&self, id: RequestId) -> Option<String> {
        if self.requests.contains_key(&id) {
            Some(format!("request {} is already running", id.0))
        } else if self.requests.len() >= MAX_IN_FLIGHT_REQUESTS {
            Some(format!("more than {MAX_IN_FLIGHT_REQUESTS} requests in flight"))
        } else {
            None
        }
    }

    async fn start_command(&mut self, request: CommandRequest) {
        let id = request.id;
        if let Some(reason) = self.refuse(id) {
            return self.fail(id, reason).await;
        }
        let (input_tx, input_rx) = input_channel(request.stdin);
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let outgoing = self.outgoing.clone();
        let spool = Arc::clone(&self.spool);
        self.tasks.spawn(async move {
            command::run(spool, request, input_rx, cancel_rx, outgoing).await;
            id
        });
        self.requests.insert(id, Running::Command { input: input_tx, cancel: Some(cancel_tx) });
    }

    /// Takes up the commands the daemon names; the first time, stops those it does not.
    async fn reattach(&mut self, requests: Vec<Resume>) {
        if !self.swept {
            self.swept = true;
            let wanted: HashSet<RequestId> =
                requests.iter().map(|r| r.id).chain(self.requests.keys().copied()).collect();
            self.spool.sweep(&wanted);
        }
        for resume in requests {
            let id = resume.id;
            if self.requests.contains_key(&id) {
                self.send(ToDaemon::Reattached { id, running: true }).await;
                continue;
            }
            let (entry, socket) = match command::reattach(&self.spool, &resume).await {
                Ok(found) => found,
                Err(why) => {
                    tracing::warn!(id = id.0, "cannot resume a command: {why}");
                    self.send(ToDaemon::Reattached { id, running: false }).await;
                    continue;
                }
            };
            // The answer goes out before the command's first frame.
            self.send(ToDaemon::Reattached { id, running: true }).await;
            let (input_tx, input_rx) = input_channel(socket.is_some());
            let (cancel_tx, cancel_rx) = oneshot::channel();
            let outgoing = self.outgoing.clone();
            let from = [resume.stdout, resume.stderr];
            self.tasks.spawn(async move {
                command::resumed(id, entry, from, socket.zip(input_rx), cancel_rx, outgoing).await;
                id
            });
            self.requests.insert(id, Running::Command { input: input_tx, cancel: Some(cancel_tx) });
        }
    }

    async fn start_bundle(&mut self, id: RequestId, dir: String) {
        if let Some(reason) = self.refuse(id) {
            return self.fail(id, reason).await;
        }
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let outgoing = self.outgoing.clone();
        self.tasks.spawn(async move {
            bundle::write(id, dir, rx, outgoing).await;
            id
        });
        self.requests.insert(id, Running::Bundle { parts: Some(tx) });
    }

    async fn start_facts(&mut self, id: RequestId, project: Option<String>) {
        if let Some(reason) = self.refuse(id) {
            return self.fail(id, reason).await;
        }
        let outgoing = self.outgoing.clone();
        self.tasks.spawn(async move {
            let reply = match facts::docker_facts(project.as_deref()).await {
                Ok(facts) => ToDaemon::Facts { id, facts },
                Err(e) => ToDaemon::Failed { id, message: e.to_string() },
            };
            let _ = outgoing.send(reply).await;
            id
        });
        self.requests.insert(id, Running::Facts);
    }

    async fn bundle_part(&mut self, id: RequestId, part: BundlePart) {
        let end = matches!(part, BundlePart::End);
        match self.requests.get_mut(&id) {
            Some(Running::Bundle { parts }) => {
                // No sender left: the write was cancelled, or its end was already sent.
                if let Some(tx) = parts {
                    let _ = tx.send(part).await;
                    if end {
                        *parts = None;
                    }
                }
            }
            Some(_) => tracing::warn!(id = id.0, "a bundle entry for a request that takes none; ignored"),
            None => self.fail(id, format!("no bundle write {} in progress", id.0)).await,
        }
    }

    fn cancel(&mut self, id: RequestId) {
        match self.requests.get_mut(&id) {
            Some(Running::Command { cancel, .. }) => {
                if let Some(cancel) = cancel.take() {
                    let _ = cancel.send(());
                }
            }
            // Closing the entries without an end abandons the write.
            Some(Running::Bundle { parts }) => drop(parts.take()),
            // Reading the facts is bounded by its timeouts and changes nothing: let it end.
            Some(Running::Facts) | None => {}
        }
    }

    async fn fail(&self, id: RequestId, message: String) {
        self.send(ToDaemon::Failed { id, message }).await;
    }

    async fn send(&self, message: ToDaemon) {
        // A closed channel means the connection is gone; `run` ends when `incoming` closes.
        let _ = self.outgoing.send(message).await;
    }
}

/// The channel of a command's input, when it takes one.
fn input_channel(takes_input: bool) -> (Option<mpsc::Sender<Input>>, Option<mpsc::Receiver<Input>>) {
    if takes_input {
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}
