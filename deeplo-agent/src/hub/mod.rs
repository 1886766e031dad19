//! The daemon's side of the protocol: [`AgentTransport`], deeplo-core's
//! [`Transport`](deeplo_core::Transport) over an agent's frames.
//!
//! The transport writes [`ToAgent`](crate::protocol::ToAgent) messages to one bounded
//! channel and reads [`ToDaemon`](crate::protocol::ToDaemon) messages from another; whatever
//! carries the frames (a WebSocket, or an in-memory pair in tests) encodes the first and
//! decodes the second.

mod routes;
mod status;
mod transport;

pub use status::signal_name;
pub use transport::AgentTransport;
