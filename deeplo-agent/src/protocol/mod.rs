//! The wire protocol between `deeplo-agent` and the daemon, version [`PROTOCOL_VERSION`].
//!
//! # Connection
//!
//! The agent opens one WebSocket to the daemon per server and authenticates with its runner
//! token during the upgrade. Its first frame is [`ToDaemon::Hello`]; the daemon answers
//! [`ToAgent::Welcome`] with the version both speak ([`negotiate`]) or closes with a
//! [`CloseCode`]. Then the daemon sends requests, each with a fresh [`RequestId`], and the
//! agent answers each with frames that carry the same id; requests run concurrently and
//! their frames interleave. The agent sends [`ToDaemon::Heartbeat`] every
//! [`Welcome::heartbeat_interval_secs`]. Either side that finds the other breaking the
//! protocol closes with the code of the [`ProtocolError`]
//! ([`ProtocolError::close_code`]). After a close the agent waits
//! [`reconnect_delay`] and connects again unless [`CloseCode::should_retry`] says no; on the
//! new connection the daemon's first request names those of the earlier connections it
//! still waits for ([`ToAgent::Reattach`]).
//!
//! # Wire format
//!
//! One frame is one WebSocket binary message (text messages are a protocol violation),
//! at most [`MAX_FRAME_BYTES`]: the [postcard](https://postcard.jamesmunns.com/wire-format)
//! encoding of a [`Frame`], with nothing before or after it. In brief:
//!
//! - an enum is its variant index as a varint (LEB128: 7 bits a byte, least significant
//!   first, high bit set on every byte but the last; a reader accepts needless continuation
//!   bytes, a writer sends the shortest form), then the variant's fields; so a frame
//!   opens with the direction (`0` [`ToAgent`], `1` [`ToDaemon`]) and the kind (the
//!   position in [`ToAgent::KINDS`] or [`ToDaemon::KINDS`]);
//! - a struct or struct-like variant is its fields in declaration order, nothing between;
//! - `u16`, `u32`, `u64` are varints; `i32` is zigzag-encoded then a varint; `bool` one byte
//!   `0` or `1`; `Option` one byte `0` (none) or `1` then the value;
//! - `String` and `Vec<u8>` are a varint length then the bytes (UTF-8 for strings); any other
//!   `Vec` a varint count then the elements; a tuple its elements in order.
//!
//! For example `ToAgent::StdinEnd { id: RequestId(300) }` is `00 03 ac 02`, and
//! `ToDaemon::Heartbeat` is `01 01`.
//!
//! Variant order is part of the protocol: new kinds are appended, never inserted or
//! reordered, and the fields of a released message never change. A kind this build does not
//! know is [`ProtocolError::UnknownMessage`] (the peer is newer), told apart from other bad
//! input. [`decode`] also refuses trailing bytes and frames that break the bounds of
//! [`validate`].

mod backoff;
mod close;
mod codec;
mod limits;
mod messages;
mod version;

pub use backoff::{RECONNECT_BASE, RECONNECT_CAP, reconnect_delay};
pub use close::CloseCode;
pub use codec::{ProtocolError, decode, encode};
pub use limits::{
    DEFAULT_HEARTBEAT_ALLOWANCE, DEFAULT_HEARTBEAT_INTERVAL_SECS, MAX_ARGS, MAX_BUFFERED_OUTPUT_BYTES, MAX_CHUNK_BYTES,
    MAX_ENV, MAX_FRAME_BYTES, MAX_IN_FLIGHT_REQUESTS, validate, validate_to_agent, validate_to_daemon,
};
pub use messages::{
    Container, Direction, DockerFacts, ExitStatus, Fingerprint, Frame, Hello, RequestId, Resume, Stream, ToAgent,
    ToDaemon, Welcome,
};
pub use version::{OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION, Side, VersionMismatch, accept_welcome, negotiate};
