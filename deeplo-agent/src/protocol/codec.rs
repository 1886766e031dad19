//! Frames to bytes and back: [`encode`], [`decode`] and the [`ProtocolError`] they return.

use super::close::CloseCode;
use super::limits::{MAX_FRAME_BYTES, validate};
use super::messages::{Direction, Frame, ToAgent, ToDaemon};

/// Why a frame was refused, by the side that refused it; each maps to the close code that
/// tells the peer ([`close_code`](Self::close_code)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("a frame of {size} bytes is larger than the limit of {MAX_FRAME_BYTES}")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The bytes are not a frame (bad varint, bad UTF-8, cut short, unknown direction...).
    #[error("malformed frame: {reason}")]
    Malformed {
        /// What the parser found.
        reason: String,
    },
    /// A whole frame was read and bytes are left after it.
    #[error("{count} bytes after the end of a frame")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A message kind this build does not know: the peer is newer and sent a kind of a
    /// version that was not negotiated.
    #[error("unknown {direction:?} message kind {index} (this build knows {known}); the peer is newer")]
    UnknownMessage {
        /// Which enum the index was read for.
        direction: Direction,
        /// The variant index read.
        index: u32,
        /// How many kinds this build knows for that direction.
        known: usize,
    },
    /// A well-formed frame that breaks a bound of [`validate`](super::validate).
    #[error("invalid {kind} frame: {reason}")]
    Invalid {
        /// The message kind.
        kind: &'static str,
        /// The bound it breaks.
        reason: String,
    },
    /// A frame that only the receiving side itself may send.
    #[error("a {kind} frame came from the wrong side")]
    WrongDirection {
        /// The message kind.
        kind: &'static str,
    },
}

impl ProtocolError {
    /// The close code to end the connection with after this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::TooLarge { .. } => CloseCode::MessageTooBig,
            Self::UnknownMessage { .. } => CloseCode::UnknownMessage,
            Self::Malformed { .. }
            | Self::TrailingBytes { .. }
            | Self::Invalid { .. }
            | Self::WrongDirection { .. } => CloseCode::ProtocolViolation,
        }
    }
}

/// Encodes `frame` as the payload of one WebSocket binary message.
///
/// # Errors
///
/// [`ProtocolError::Invalid`] when the frame breaks a bound its peer would refuse,
/// [`ProtocolError::TooLarge`] when it encodes to more than [`MAX_FRAME_BYTES`] (split the
/// data into chunks of [`MAX_CHUNK_BYTES`](super::MAX_CHUNK_BYTES)).
pub fn encode(frame: &Frame) -> Result<Vec<u8>, ProtocolError> {
    validate(frame).map_err(|reason| ProtocolError::Invalid { kind: frame.kind(), reason })?;
    let bytes = postcard::to_stdvec(frame).map_err(|e| ProtocolError::Malformed { reason: e.to_string() })?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge { size: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes the payload of one WebSocket binary message into a frame.
///
/// # Errors
///
/// In the order checked: [`ProtocolError::TooLarge`] (before parsing),
/// [`ProtocolError::UnknownMessage`] for a kind this build does not know,
/// [`ProtocolError::Malformed`], [`ProtocolError::TrailingBytes`], and
/// [`ProtocolError::Invalid`] for a frame that breaks a bound.
pub fn decode(bytes: &[u8]) -> Result<Frame, ProtocolError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge { size: bytes.len() });
    }
    check_kind(bytes)?;
    let (frame, rest) =
        postcard::take_from_bytes::<Frame>(bytes).map_err(|e| ProtocolError::Malformed { reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes { count: rest.len() });
    }
    validate(&frame).map_err(|reason| ProtocolError::Invalid { kind: frame.kind(), reason })?;
    Ok(frame)
}

/// Reads the two variant indexes that open every frame (direction, then kind) and tells an
/// unknown kind apart: postcard's own error for it is the same as for any other bad value.
fn check_kind(bytes: &[u8]) -> Result<(), ProtocolError> {
    let (direction, rest) = read_varint(bytes)?;
    let (direction, known) = match direction {
        0 => (Direction::ToAgent, ToAgent::KINDS.len()),
        1 => (Direction::ToDaemon, ToDaemon::KINDS.len()),
        other => return Err(ProtocolError::Malformed { reason: format!("unknown direction {other}") }),
    };
    let (index, _) = read_varint(rest)?;
    if index as usize >= known {
        return Err(ProtocolError::UnknownMessage { direction, index, known });
    }
    Ok(())
}

/// One postcard varint (LEB128: 7 bits a byte, low first, high bit set on all but the last)
/// of a `u32` variant index, at most 5 bytes.
fn read_varint(bytes: &[u8]) -> Result<(u32, &[u8]), ProtocolError> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = u32::try_from(value)
                .map_err(|_| ProtocolError::Malformed { reason: "variant index over u32".into() })?;
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(ProtocolError::Malformed { reason: "missing or bad variant index".into() })
}

#[cfg(test)]
mod tests;
