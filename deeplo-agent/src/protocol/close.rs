//! Why a connection ended: the WebSocket close codes both sides send, and whether the agent
//! should connect again.

/// A WebSocket close code of this protocol: 1009 from RFC 6455, the others in the range
/// 4000–4999 that RFC 6455 leaves to applications (numbered after the HTTP status of the
/// same meaning). The close frame carries [`as_u16`](Self::as_u16) and
/// [`reason`](Self::reason).
///
/// A connection that ends without a close frame, or with a code not listed here (1001 when a
/// daemon restarts, 1006 when the network drops), is retried like the retryable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1009: a frame larger than [`MAX_FRAME_BYTES`](super::MAX_FRAME_BYTES).
    MessageTooBig,
    /// 4400: a malformed frame, a reply to no request, a frame from the wrong side, a frame
    /// out of order (anything before the handshake ends).
    ProtocolViolation,
    /// 4401: the runner token is unknown, expired or revoked. Not retried.
    BadToken,
    /// 4408: no heartbeat within the allowance.
    HeartbeatMissed,
    /// 4409: a newer connection of the same server took over.
    Replaced,
    /// 4410: the server is decommissioned. Not retried.
    Decommissioned,
    /// 4426: no protocol version both sides speak.
    VersionMismatch,
    /// 4501: a message kind the receiver does not know.
    UnknownMessage,
}

impl CloseCode {
    /// Every close code, for tables and tests.
    pub const ALL: [CloseCode; 8] = [
        Self::MessageTooBig,
        Self::ProtocolViolation,
        Self::BadToken,
        Self::HeartbeatMissed,
        Self::Replaced,
        Self::Decommissioned,
        Self::VersionMismatch,
        Self::UnknownMessage,
    ];

    /// The number in the close frame.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::MessageTooBig => 1009,
            Self::ProtocolViolation => 4400,
            Self::BadToken => 4401,
            Self::HeartbeatMissed => 4408,
            Self::Replaced => 4409,
            Self::Decommissioned => 4410,
            Self::VersionMismatch => 4426,
            Self::UnknownMessage => 4501,
        }
    }

    /// The close code with this number; `None` for a code of another meaning (retry those).
    pub fn from_u16(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_u16() == code)
    }

    /// The close frame's reason text: at most 123 bytes, as RFC 6455 allows. It says what
    /// to do; a [`VersionMismatch`](super::VersionMismatch) has a longer message of its own
    /// for the logs of the side that found it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MessageTooBig => "frame larger than 1 MiB",
            Self::ProtocolViolation => "protocol violation; reconnecting (report a bug if it repeats)",
            Self::BadToken => "runner token unknown, expired or revoked; register the agent again with a new token",
            Self::HeartbeatMissed => "no heartbeat in time; reconnecting",
            Self::Replaced => "replaced by a newer connection of the same server",
            Self::Decommissioned => "server decommissioned; the agent stops",
            Self::VersionMismatch => "no common protocol version; upgrade the older of agent and daemon",
            Self::UnknownMessage => "unknown message kind; upgrade the older of agent and daemon",
        }
    }

    /// Whether the agent connects again (after [`reconnect_delay`](super::reconnect_delay)):
    /// yes, except for a bad token and a decommissioned server, which retrying cannot fix,
    /// and a replaced connection: a newer agent of the same server took over, and two agents
    /// retrying would replace each other for ever.
    pub fn should_retry(self) -> bool {
        !matches!(self, Self::BadToken | Self::Decommissioned | Self::Replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_are_distinct() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_u16(code.as_u16()), Some(code));
            let n = code.as_u16();
            assert!(n == 1009 || (4000..=4999).contains(&n), "{code:?} = {n}");
        }
        let mut numbers: Vec<u16> = CloseCode::ALL.iter().map(|c| c.as_u16()).collect();
        numbers.dedup();
        assert_eq!(numbers.len(), CloseCode::ALL.len());
        assert_eq!(CloseCode::from_u16(1000), None);
        assert_eq!(CloseCode::from_u16(1006), None);
        assert_eq!(CloseCode::from_u16(4999), None);
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        for code in CloseCode::ALL {
            assert!(!code.reason().is_empty());
            assert!(code.reason().len() <= 123, "{code:?}: {} bytes", code.reason().len());
        }
    }

    #[test]
    fn only_token_and_decommission_are_final() {
        let final_codes: Vec<CloseCode> = CloseCode::ALL.into_iter().filter(|c| !c.should_retry()).collect();
        assert_eq!(final_codes, [CloseCode::BadToken, CloseCode::Replaced, CloseCode::Decommissioned]);
    }
}
