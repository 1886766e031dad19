//! [`AgentConnection`]: one agent's connection, shared by every transport to its server.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use deeplo_core::{Error, ErrorKind, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::routes::{Owner, Routes};
use super::transport::AgentTransport;
use crate::protocol::{self, MAX_IN_FLIGHT_REQUESTS, RequestId, Resume, ToAgent, ToDaemon};

/// The daemon's end of one agent's connection: the channel pair its frames travel on, and
/// the [`AgentTransport`]s that share it.
///
/// There is one connection per agent, but the engine opens a transport per deploy (and
/// probes and observers open their own), several at once for one server. The connection
/// owns what the protocol keeps per connection, so that its transports cannot disagree:
///
/// - A task reads `incoming` and routes each reply by its request id to the request waiting
///   for it, whichever transport started it.
/// - Request ids are numbered for the whole connection from a random start and never
///   reused, as [`RequestId`] requires; the random start keeps the ids of a restarted
///   daemon apart from those of the one before it, still in the agent's spool.
/// - At most [`MAX_IN_FLIGHT_REQUESTS`] requests are in flight on the connection, all its
///   transports together; more wait for a slot.
/// - A reply for no request in flight breaks the protocol: it is logged and counted
///   ([`protocol_violations`](Self::protocol_violations)); closing the connection for it is
///   the caller's decision.
/// - When `incoming` closes, the connection is lost ([`is_lost`](Self::is_lost),
///   [`lost`](Self::lost)): every request in flight on every transport, and every later one,
///   fails with [`ErrorKind::Unreachable`]. Dropping the connection loses it too.
///
/// [`transport`](Self::transport) hands out any number of transports; closing one ends
/// only its own requests.
#[derive(Debug)]
pub struct AgentConnection {
    link: Arc<Link>,
    router: JoinHandle<()>,
}

impl AgentConnection {
    /// The connection to the agent of `host` (the name used in errors), sending to
    /// `outgoing` and reading the replies from `incoming`.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the routing task is spawned on it).
    pub fn new(host: impl Into<String>, outgoing: mpsc::Sender<ToAgent>, incoming: mpsc::Receiver<ToDaemon>) -> Self {
        let link = Arc::new(Link {
            host: host.into(),
            outgoing,
            routes: Routes::default(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT_REQUESTS)),
            next_id: AtomicU64::new(1 + (rand::random::<u64>() >> 16)),
            next_owner: AtomicU64::new(1),
            lost: watch::Sender::new(false),
        });
        let router = tokio::spawn(route(Arc::clone(&link), incoming));
        Self { link, router }
    }

    /// A new transport over this connection, beside any others. Once the connection is
    /// lost, its commands fail with [`ErrorKind::Unreachable`].
    pub fn transport(&self) -> AgentTransport {
        let owner = self.link.next_owner.fetch_add(1, Ordering::Relaxed);
        AgentTransport::new(Arc::clone(&self.link), owner)
    }

    /// The host this connection's agent runs on.
    pub fn host(&self) -> &str {
        self.link.host()
    }

    /// Whether the connection is lost.
    pub fn is_lost(&self) -> bool {
        *self.link.lost.borrow()
    }

    /// Resolves once the connection is lost (at once if it is already); it does not borrow
    /// the connection, so that a task can watch it.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut lost = self.link.lost.subscribe();
        async move {
            // An error means the connection is gone, which loses it too.
            let _ = lost.wait_for(|lost| *lost).await;
        }
    }

    /// Resolves at the first reply that named no request in flight (a protocol violation),
    /// for the carrier that closes the connection for it; it does not borrow the connection.
    pub fn violated(&self) -> impl Future<Output = ()> + Send + 'static {
        self.link.routes.violated()
    }

    /// The requests in flight on this connection, all its transports together.
    pub fn in_flight(&self) -> Vec<RequestId> {
        self.link.routes.in_flight()
    }

    /// The requests in flight with how far each got: what a new socket's
    /// [`Reattach`](ToAgent::Reattach) names.
    pub fn resumes(&self) -> Vec<Resume> {
        self.link.routes.resumes()
    }

    /// `message` was written to the agent's socket (the writer's report): the input counts
    /// that a [`Resume`] carries.
    pub fn sent(&self, message: &ToAgent) {
        self.link.routes.sent(message);
    }

    /// Ends the request `id` as lost (its caller gets [`ErrorKind::Unreachable`]): after a
    /// reconnect, the agent said it no longer runs it.
    pub fn end_request(&self, id: RequestId) -> bool {
        self.link.routes.end(id)
    }

    /// How many replies named no request in flight on this connection (each one a protocol
    /// violation).
    pub fn protocol_violations(&self) -> u64 {
        self.link.routes.violations()
    }
}

impl Drop for AgentConnection {
    fn drop(&mut self) {
        self.router.abort();
        self.link.end_all();
    }
}

/// Routes the agent's replies until the connection is lost, then ends every request.
async fn route(link: Arc<Link>, mut incoming: mpsc::Receiver<ToDaemon>) {
    while let Some(message) = incoming.recv().await {
        link.routes.deliver(message).await;
    }
    tracing::debug!(host = %link.host, "the connection to the agent is lost");
    link.end_all();
}

/// What the connection and its transports share.
#[derive(Debug)]
pub(super) struct Link {
    host: String,
    outgoing: mpsc::Sender<ToAgent>,
    pub(super) routes: Routes,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    next_owner: AtomicU64,
    lost: watch::Sender<bool>,
}

impl Link {
    /// The host the agent runs on.
    pub(super) fn host(&self) -> &str {
        &self.host
    }

    /// Whether the connection is lost.
    pub(super) fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// An error of `operation` on this connection's host.
    pub(super) fn error(&self, kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Error {
        Error::new(kind, operation, message).with_host(&self.host)
    }

    /// The error of a request that cannot go on: the connection is lost, or its transport
    /// closed.
    pub(super) fn unreachable(&self, operation: &'static str, why: &str) -> Error {
        self.error(ErrorKind::Unreachable, operation, why.to_owned())
    }

    /// A slot among the requests in flight, waiting for one; `None` once the connection is
    /// lost.
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// The next request id of the connection.
    pub(super) fn next_id(&self) -> RequestId {
        RequestId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The channel to the agent, for a caller that reserves room before it has a message.
    pub(super) fn outgoing(&self) -> &mpsc::Sender<ToAgent> {
        &self.outgoing
    }

    /// Sends `message` once it passes the protocol's own checks.
    pub(super) async fn send(&self, operation: &'static str, message: ToAgent) -> Result<()> {
        check(&message).map_err(|e| self.error(ErrorKind::InvalidInput, operation, e))?;
        self.outgoing.send(message).await.map_err(|_| self.unreachable(operation, LOST))
    }

    /// The connection is lost: marks it so first (whoever sees a request fail then finds the
    /// connection lost), then ends every request, asking the agent to stop those still
    /// running should it still listen.
    fn end_all(&self) {
        self.lost.send_replace(true);
        self.slots.close();
        for id in self.routes.end_all() {
            self.cancel(id);
        }
    }

    /// Closes the transport `owner`: ends its requests and asks the agent to stop them.
    pub(super) fn close(&self, owner: Owner, closed: &AtomicBool) {
        for id in self.routes.close(owner, closed) {
            self.cancel(id);
        }
    }

    /// Sends a [`ToAgent::Cancel`] without waiting (from `Drop`): at once when the channel
    /// has room, else from a task.
    pub(super) fn cancel(&self, id: RequestId) {
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

/// Why a request of a lost connection fails.
pub(super) const LOST: &str = "the connection to the agent is lost";

/// The protocol's own bounds, as the agent checks them.
pub(super) fn check(message: &ToAgent) -> std::result::Result<(), String> {
    protocol::validate_to_agent(message)
}
