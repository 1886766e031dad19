//! Routing the agent's replies to the requests waiting for them, on every transport of one
//! connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::protocol::{MAX_BUFFERED_OUTPUT_BYTES, MAX_CHUNK_BYTES, RequestId, ToDaemon};

/// Replies queued for one request and not yet taken: [`MAX_BUFFERED_OUTPUT_BYTES`] of full
/// output chunks.
pub(super) const REPLY_QUEUE: usize = MAX_BUFFERED_OUTPUT_BYTES / MAX_CHUNK_BYTES;

/// Which transport of the connection a request belongs to.
pub(super) type Owner = u64;

/// The requests in flight on one connection, whichever transport started them.
#[derive(Debug, Default)]
pub(super) struct Routes {
    table: Mutex<Table>,
    /// How many violations so far; watched by whoever closes the connection for one.
    violations: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Table {
    /// No request gets an answer any more: the connection is lost.
    lost: bool,
    routes: HashMap<RequestId, Route>,
}

/// One request in flight: the transport that started it, where its replies go (none once
/// its caller stopped waiting or its transport closed: its late replies are dropped), and
/// its slot among the connection's requests in flight, freed by its last reply.
#[derive(Debug)]
struct Route {
    owner: Owner,
    replies: Option<mpsc::Sender<ToDaemon>>,
    _slot: OwnedSemaphorePermit,
}

/// Why a request could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The connection is lost.
    Lost,
    /// The request's transport is closed.
    Closed,
}

/// Whether a request was still waiting when its caller gave up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Abandoned {
    /// Its last reply had not come and nobody had asked the agent to stop it yet.
    Pending,
    /// It had ended, or had been given up already (its transport closed).
    Ended,
}

impl Routes {
    /// Registers the request `id` of the transport `owner`, unless the connection is lost or
    /// `closed` (the owner's flag, only changed under the table's lock) is set.
    pub(super) fn register(
        &self,
        id: RequestId,
        owner: Owner,
        closed: &AtomicBool,
        slot: OwnedSemaphorePermit,
    ) -> Result<mpsc::Receiver<ToDaemon>, Refused> {
        let mut table = self.table.lock().unwrap();
        if table.lost {
            return Err(Refused::Lost);
        }
        if closed.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        let (tx, rx) = mpsc::channel(REPLY_QUEUE);
        table.routes.insert(id, Route { owner, replies: Some(tx), _slot: slot });
        Ok(rx)
    }

    /// The caller of `id` stopped waiting; its replies still to come are dropped.
    pub(super) fn abandon(&self, id: RequestId) -> Abandoned {
        let mut table = self.table.lock().unwrap();
        match table.routes.get_mut(&id).and_then(|route| route.replies.take()) {
            Some(_) => Abandoned::Pending,
            None => Abandoned::Ended,
        }
    }

    /// Closes the transport `owner`: sets `closed` so that it registers nothing more, and
    /// gives up its requests (their callers see their replies end). The ids given up are
    /// returned; their routes stay until their last reply, so that late replies are not
    /// taken for violations and their slots are freed only once the agent is done.
    pub(super) fn close(&self, owner: Owner, closed: &AtomicBool) -> Vec<RequestId> {
        let mut table = self.table.lock().unwrap();
        closed.store(true, Ordering::Relaxed);
        table
            .routes
            .iter_mut()
            .filter(|(_, route)| route.owner == owner)
            .filter_map(|(id, route)| route.replies.take().map(|_| *id))
            .collect()
    }

    /// Passes one reply of the agent on to the request it names, waiting while that
    /// request's queue is full. A reply for no request in flight is a protocol violation,
    /// counted and logged.
    pub(super) async fn deliver(&self, message: ToDaemon) {
        let Some(id) = message.request_id() else {
            // Hello, Heartbeat, FingerprintUpdate: the connection's business, not a request's.
            return;
        };
        let last = matches!(
            message,
            ToDaemon::Exited { .. } | ToDaemon::Failed { .. } | ToDaemon::BundleWritten { .. } | ToDaemon::Facts { .. }
        );
        let replies = {
            let mut table = self.table.lock().unwrap();
            if table.lost {
                return;
            }
            let found = table.routes.get(&id).map(|route| route.replies.clone());
            if last {
                table.routes.remove(&id);
            }
            found
        };
        match replies {
            Some(Some(tx)) => {
                // An error means the caller is gone between `abandon` and now: nothing to do.
                let _ = tx.send(message).await;
            }
            Some(None) => {}
            None => self.violation(&message),
        }
    }

    /// The ids of every request in flight (waited for or not), for a
    /// [`Reattach`](crate::protocol::ToAgent::Reattach) after a reconnect.
    pub(super) fn in_flight(&self) -> Vec<RequestId> {
        let table = self.table.lock().unwrap();
        let mut ids: Vec<RequestId> = table.routes.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Ends the request `id` without a last reply (its caller sees its replies end): the
    /// agent no longer knows it. `false` when it was not in flight.
    pub(super) fn end(&self, id: RequestId) -> bool {
        self.table.lock().unwrap().routes.remove(&id).is_some()
    }

    /// Counts and logs a frame that breaks the protocol.
    pub(super) fn violation(&self, message: &ToDaemon) {
        self.violations.send_modify(|n| *n += 1);
        tracing::warn!(kind = message.kind(), id = ?message.request_id(), "the agent sent a reply no request expects");
    }

    /// How many protocol violations [`violation`](Self::violation) counted.
    pub(super) fn violations(&self) -> u64 {
        *self.violations.borrow()
    }

    /// Resolves at the first violation (at once if there was one already).
    pub(super) fn violated(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut violations = self.violations.subscribe();
        async move {
            if violations.wait_for(|n| *n > 0).await.is_err() {
                // The routes are gone with their connection: no violation will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The connection is lost: ends every request of every transport (their callers see
    /// their replies end) and refuses new ones; the ids that were still waiting are returned.
    pub(super) fn end_all(&self) -> Vec<RequestId> {
        let mut table = self.table.lock().unwrap();
        table.lost = true;
        table.routes.drain().filter(|(_, route)| route.replies.is_some()).map(|(id, _)| id).collect()
    }
}
