//! The agent's side of the protocol: the [`Executor`] that carries out the daemon's
//! requests on the server.
//!
//! The executor reads [`ToAgent`](crate::protocol::ToAgent) messages from one bounded
//! channel and writes [`ToDaemon`](crate::protocol::ToDaemon) messages to another; whatever
//! carries the frames (a WebSocket, or an in-memory pair in tests) decodes them into the first
//! and encodes them from the second. The executor knows nothing of the connection itself:
//! the handshake and heartbeats are the connection's business.
//!
//! What the agent reports of the server is read by [`fingerprint::collect`] (sent at hello and
//! periodically) and [`facts::docker_facts`] (the local Docker engine, on request).

mod bundle;
mod command;
mod executor;
pub mod facts;
pub mod fingerprint;

pub use executor::{Executor, TERMINATE_GRACE};
