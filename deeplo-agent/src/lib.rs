//! deeplo's runner agent: a small program on a server that connects out to the daemon over a
//! WebSocket, so that a server behind NAT or a firewall without an open SSH port can still be
//! deployed to. The daemon runs the same pipeline through it as over SSH: commands with
//! standard input and streamed output, bundle writes, Docker facts.
//!
//! This crate holds the versioned wire protocol between the agent and the daemon
//! ([`protocol`]): the messages, their encoding, the limits both sides keep, the close codes
//! and the reconnect backoff. Both programs are built on it; a second implementation of
//! either side can be written from its documentation. Over it, the two ends of a connection,
//! each speaking to bounded channels of messages so that any carrier of frames fits:
//! [`agent::Executor`] runs the requests on the server, and [`hub::AgentConnection`] is the
//! daemon's end, handing out [`hub::AgentTransport`]s, its [`Transport`](deeplo_core::Transport)
//! through the agent, as many at once as the engine opens.
//!
//! [`client`] is the program that runs on the server: it connects out to the daemon, says
//! hello and runs an executor for each connection, reconnecting with backoff.
//!
//! A frame is one WebSocket binary message holding the postcard encoding of a
//! [`Frame`](protocol::Frame): requests from the daemon ([`ToAgent`](protocol::ToAgent)), each
//! with a [`RequestId`](protocol::RequestId), and the agent's replies that carry it back
//! ([`ToDaemon`](protocol::ToDaemon)).
//!
//! ```
//! use deeplo_agent::protocol::{self, Frame, RequestId, ToAgent};
//!
//! let request = ToAgent::Exec {
//!     id: RequestId(1),
//!     program: "docker".into(),
//!     args: vec!["compose".into(), "ps".into()],
//!     env: vec![],
//!     cwd: Some("/srv/deeplo/web".into()),
//!     stdin: false,
//! };
//! let bytes = protocol::encode(&Frame::from(request.clone()))?;
//! // ...sent as one binary WebSocket message, and on the agent:
//! let received = protocol::decode(&bytes)?.into_to_agent()?;
//! assert_eq!(received, request);
//! # Ok::<(), protocol::ProtocolError>(())
//! ```

#![warn(missing_docs)]

pub mod agent;
pub mod client;
pub mod hub;
pub mod protocol;
