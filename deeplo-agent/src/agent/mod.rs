//! The agent's side of the protocol: the [`Executor`] that carries out the daemon's
//! requests on the server.
//!
//! The executor reads [`ToAgent`](crate::protocol::ToAgent) messages from one bounded
//! channel and writes [`ToDaemon`](crate::protocol::ToDaemon) messages to another; whatever
//! carries the frames (a WebSocket, or an in-memory pair in tests) decodes them into the first
//! and encodes them from the second. The executor knows nothing of the connection itself:
//! the handshake and heartbeats are the connection's business.
//!
//! Commands outlive the executor and the agent: each runs under a [`keeper`] process that
//! holds its input, output and end in the agent's [`spool`] on disk, from where a later
//! connection takes it up ([`ToAgent::Reattach`](crate::protocol::ToAgent::Reattach)).
//!
//! What the agent reports of the server is read by [`fingerprint::collect`] (sent at hello and
//! periodically) and [`facts::docker_facts`] (the local Docker engine, on request).

mod bundle;
mod command;
mod executor;
pub mod facts;
pub mod fingerprint;
pub mod keeper;
pub mod spool;

pub use executor::{Executor, TERMINATE_GRACE};
pub use keeper::{KeepArgs, keep};
pub use spool::Spool;
