//! Routing the agent's replies to the requests waiting for them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::protocol::{MAX_BUFFERED_OUTPUT_BYTES, MAX_CHUNK_BYTES, RequestId, ToDaemon};

/// Replies queued for one request and not yet taken: [`MAX_BUFFERED_OUTPUT_BYTES`] of full
/// output chunks.
pub(super) const REPLY_QUEUE: usize = MAX_BUFFERED_OUTPUT_BYTES / MAX_CHUNK_BYTES;

/// The requests in flight on one connection.
#[derive(Debug, Default)]
pub(super) struct Routes {
    table: Mutex<Table>,
    violations: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    /// No request gets an answer any more: the connection is lost, or the transport closed.
    ended: bool,
    routes: HashMap<RequestId, Route>,
}

/// One request in flight: where its replies go (none once its caller stopped waiting: its
/// late replies are dropped), and its slot among the requests in flight, freed by its last
/// reply.
#[derive(Debug)]
struct Route {
    replies: Option<mpsc::Sender<ToDaemon>>,
    _slot: OwnedSemaphorePermit,
}

/// Whether a request was still waiting when its caller gave up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Abandoned {
    /// Its last reply had not come: the agent should stop it.
    Pending,
    /// It had ended already.
    Ended,
}

impl Routes {
    /// Registers the request `id`; `None` once the routes have ended.
    pub(super) fn register(&self, id: RequestId, slot: OwnedSemaphorePermit) -> Option<mpsc::Receiver<ToDaemon>> {
        let mut table = self.table.lock().unwrap();
        if table.ended {
            return None;
        }
        let (tx, rx) = mpsc::channel(REPLY_QUEUE);
        table.routes.insert(id, Route { replies: Some(tx), _slot: slot });
        Some(rx)
    }

    /// The caller of `id` stopped waiting; its replies still to come are dropped.
    pub(super) fn abandon(&self, id: RequestId) -> Abandoned {
        let mut table = self.table.lock().unwrap();
        match table.routes.get_mut(&id) {
            Some(route) => {
                route.replies = None;
                Abandoned::Pending
            }
            None => Abandoned::Ended,
        }
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
            if table.ended {
                // Late replies after a close: their requests were given up.
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

    /// Counts and logs a frame that breaks the protocol.
    pub(super) fn violation(&self, message: &ToDaemon) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(kind = message.kind(), id = ?message.request_id(), "the agent sent a reply no request expects");
    }

    /// How many protocol violations [`violation`](Self::violation) counted.
    pub(super) fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }

    /// Ends every request (their callers see their replies end) and refuses new ones; the
    /// ids that were still waiting are returned.
    pub(super) fn end_all(&self) -> Vec<RequestId> {
        let mut table = self.table.lock().unwrap();
        table.ended = true;
        table.routes.drain().filter(|(_, route)| route.replies.is_some()).map(|(id, _)| id).collect()
    }
}
