//! The daemon's side of the protocol: [`AgentConnection`], one agent's connection, and the
//! [`AgentTransport`]s it hands out, deeplo-core's [`Transport`](deeplo_core::Transport)
//! over that agent's frames.
//!
//! The connection writes [`ToAgent`](crate::protocol::ToAgent) messages to one bounded
//! channel and reads [`ToDaemon`](crate::protocol::ToDaemon) messages from another; whatever
//! carries the frames (a WebSocket, or an in-memory pair in tests) encodes the first and
//! decodes the second.

mod connection;
mod routes;
mod status;
mod transport;

pub use connection::AgentConnection;
pub use status::signal_name;
pub use transport::AgentTransport;
