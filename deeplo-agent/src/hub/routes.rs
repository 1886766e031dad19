//! Routing the agent's replies to the requests waiting for them, on every transport of one
//! connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::protocol::{MAX_BUFFERED_OUTPUT_BYTES, MAX_CHUNK_BYTES, RequestId, Resume, Stream, ToAgent, ToDaemon};

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
/// its caller stopped waiting or its transport closed: its late replies are dropped), its
/// slot among the connection's requests in flight, freed by its last reply, and how far
/// its streams got, for a [`Resume`] after a reconnect.
#[derive(Debug)]
struct Route {
    owner: Owner,
    replies: Option<mpsc::Sender<ToDaemon>>,
    _slot: OwnedSemaphorePermit,
    /// The bytes of stdout and stderr passed on.
    received: [u64; 2],
    /// The bytes of input written to a socket.
    input_sent: u64,
    /// Whether its `StdinEnd` was written to a socket.
    input_ended: bool,
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
        let route =
            Route { owner, replies: Some(tx), _slot: slot, received: [0; 2], input_sent: 0, input_ended: false };
        table.routes.insert(id, route);
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
    /// counted and logged. Output is passed on once: the bytes of a chunk the request has
    /// already had (sent again after a reconnect) are cut off, and a chunk that starts past
    /// what it has had (output lost) is a violation.
    pub(super) async fn deliver(&self, mut message: ToDaemon) {
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
            let Some(route) = table.routes.get_mut(&id) else {
                drop(table);
                return self.violation(&message);
            };
            if let ToDaemon::Output { stream, offset, data, .. } = &mut message {
                let have = &mut route.received[stream_index(*stream)];
                if *offset > *have {
                    let gap = *offset - *have;
                    drop(table);
                    self.violations.send_modify(|n| *n += 1);
                    tracing::warn!(id = id.0, gap, "the agent's output skips bytes the daemon never had");
                    return;
                }
                let repeated = usize::try_from(*have - *offset).unwrap_or(usize::MAX);
                if repeated >= data.len() {
                    return;
                }
                data.drain(..repeated);
                *offset = *have;
                *have += data.len() as u64;
            }
            let replies = route.replies.clone();
            if last {
                table.routes.remove(&id);
            }
            replies
        };
        if let Some(tx) = replies {
            // An error means the caller is gone between `abandon` and now: nothing to do.
            let _ = tx.send(message).await;
        }
    }

    /// The ids of every request in flight (waited for or not).
    pub(super) fn in_flight(&self) -> Vec<RequestId> {
        let table = self.table.lock().unwrap();
        let mut ids: Vec<RequestId> = table.routes.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Every request in flight with how far it got, for a
    /// [`Reattach`](crate::protocol::ToAgent::Reattach) after a reconnect.
    pub(super) fn resumes(&self) -> Vec<Resume> {
        let table = self.table.lock().unwrap();
        let mut resumes: Vec<Resume> = table
            .routes
            .iter()
            .map(|(id, route)| Resume {
                id: *id,
                stdout: route.received[0],
                stderr: route.received[1],
                input: route.input_sent,
                input_ended: route.input_ended,
            })
            .collect();
        resumes.sort_by_key(|r| r.id);
        resumes
    }

    /// `message` was written to the agent's socket: counts the input it carries.
    pub(super) fn sent(&self, message: &ToAgent) {
        let (id, len, end) = match message {
            ToAgent::Stdin { id, data } => (id, data.len() as u64, false),
            ToAgent::StdinEnd { id } => (id, 0, true),
            _ => return,
        };
        if let Some(route) = self.table.lock().unwrap().routes.get_mut(id) {
            route.input_sent += len;
            route.input_ended |= end;
        }
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

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    fn output(offset: u64, data: &[u8]) -> ToDaemon {
        ToDaemon::Output { id: RequestId(1), stream: Stream::Stdout, offset, data: data.to_vec() }
    }

    #[tokio::test]
    async fn output_sent_again_is_passed_on_once_and_a_gap_is_a_violation() {
        let routes = Routes::default();
        let slot = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let mut replies = routes.register(RequestId(1), 1, &AtomicBool::new(false), slot).unwrap();
        routes.deliver(output(0, b"abc")).await;
        // After a reconnect: the agent starts over from an older offset.
        routes.deliver(output(1, b"bc")).await;
        routes.deliver(output(2, b"cde")).await;
        routes.deliver(output(5, b"")).await;
        assert_eq!(replies.recv().await, Some(output(0, b"abc")));
        assert_eq!(replies.recv().await, Some(output(3, b"de")));
        assert!(replies.try_recv().is_err(), "nothing else was passed on");
        assert_eq!(routes.resumes()[0].stdout, 5);
        assert_eq!(routes.violations(), 0);
        routes.deliver(output(9, b"lost before")).await;
        assert_eq!(routes.violations(), 1);
        assert!(replies.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_input_written_is_counted_for_a_resume() {
        let routes = Routes::default();
        let slot = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let _replies = routes.register(RequestId(4), 1, &AtomicBool::new(false), slot).unwrap();
        routes.sent(&ToAgent::Stdin { id: RequestId(4), data: vec![0; 10] });
        routes.sent(&ToAgent::Stdin { id: RequestId(4), data: vec![0; 5] });
        let resume = &routes.resumes()[0];
        assert_eq!((resume.input, resume.input_ended), (15, false));
        routes.sent(&ToAgent::StdinEnd { id: RequestId(4) });
        routes.sent(&ToAgent::Stdin { id: RequestId(99), data: vec![0; 5] });
        let resume = &routes.resumes()[0];
        assert_eq!((resume.id, resume.input, resume.input_ended), (RequestId(4), 15, true));
    }
}
