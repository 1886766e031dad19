//! The daemon's side of the protocol.
//!
//! - [`Hub`]: the register of connected agents (one connection per server), who may
//!   connect, and their news; [`router`] is its WebSocket route for the daemon's HTTP
//!   server, and [`HubConnector`] the daemon's connector, agent hosts through the hub.
//! - [`AgentConnection`]: one agent's connection, and the [`AgentTransport`]s it hands out,
//!   deeplo-core's [`Transport`](deeplo_core::Transport) over that agent's frames.
//!
//! The connection writes [`ToAgent`](crate::protocol::ToAgent) messages to one bounded
//! channel and reads [`ToDaemon`](crate::protocol::ToDaemon) messages from another; the
//! WebSocket route encodes the first and decodes the second (in tests, an in-memory pair
//! may do it instead).

mod connection;
mod connector;
mod registry;
mod route;
mod routes;
mod socket;
mod status;
mod transport;

pub use connection::AgentConnection;
pub use connector::{AGENT_CONNECT_WAIT, HubConnector};
pub use registry::{AgentInfo, Hub, HubEvent, HubOptions};
pub use route::{CONNECT_PATH, HOST_HEADER, router};
pub use status::signal_name;
pub use transport::AgentTransport;
