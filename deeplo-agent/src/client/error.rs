//! [`ClientError`]: why the agent could not start, why a connection ended, and whether
//! connecting again can help.

use std::io;

use crate::protocol::{CloseCode, VersionMismatch};

/// Why [`Client::run`](super::Client::run) stopped, or why one connection ended. Most are
/// retried; [`is_final`](Self::is_final) tells which are not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A bad flag or file (URL, token file, CA file, pin): fix the configuration.
    #[error("{0}")]
    Config(String),
    /// The TCP connection to the daemon (or its proxy) failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// `host:port`, or the proxy's.
        target: String,
        /// The socket's error.
        source: io::Error,
    },
    /// The HTTP proxy refused the tunnel or answered nonsense.
    #[error("proxy {proxy}: {reason}")]
    Proxy {
        /// The proxy's `host:port`.
        proxy: String,
        /// Its status line, or what went wrong.
        reason: String,
    },
    /// The TLS handshake failed: an unknown certificate authority, a certificate for another
    /// name, a pin mismatch (the message names both digests).
    #[error("TLS with {server}: {source}")]
    Tls {
        /// The server name verified.
        server: String,
        /// The handshake's error.
        source: io::Error,
    },
    /// The daemon answered the WebSocket upgrade with an HTTP error. 401 and 403 (the token
    /// was refused) are final.
    #[error("{}", rejected_message(*status, reason))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The status line's reason phrase, or the start of the body.
        reason: String,
    },
    /// The WebSocket upgrade failed otherwise (not a WebSocket endpoint, bad answer).
    #[error("WebSocket upgrade failed: {0}")]
    Upgrade(String),
    /// No [`Welcome`](crate::protocol::Welcome) in time after the hello.
    #[error("the daemon sent no welcome within {0} seconds")]
    NoWelcome(u64),
    /// The daemon chose a protocol version this agent does not speak.
    #[error(transparent)]
    Version(#[from] VersionMismatch),
    /// The daemon broke the protocol; the agent closed with `code`.
    #[error("the daemon broke the protocol ({detail}); closed with {}", code.as_u16())]
    Violation {
        /// The code the agent closed with.
        code: CloseCode,
        /// What the daemon sent.
        detail: String,
    },
    /// The daemon closed the connection. Final when the code says retrying cannot help
    /// ([`CloseCode::should_retry`]: a bad token, a decommissioned or replaced server).
    #[error("{}", closed_message(*code, reason))]
    Closed {
        /// The close code, `None` without a close frame.
        code: Option<u16>,
        /// The close frame's reason.
        reason: String,
    },
    /// The connection broke without a close frame (network error, end of stream).
    #[error("connection lost: {0}")]
    Lost(String),
}

impl ClientError {
    /// Whether connecting again cannot help: the daemon refused this agent for good (close
    /// codes 4401, 4409, 4410; HTTP 401 or 403 on the upgrade), or the configuration is bad.
    pub fn is_final(&self) -> bool {
        match self {
            Self::Config(_) => true,
            Self::Rejected { status, .. } => matches!(status, 401 | 403),
            Self::Closed { code, .. } => code.and_then(CloseCode::from_u16).is_some_and(|c| !c.should_retry()),
            _ => false,
        }
    }

    /// Whether the daemon itself refused this agent for good (as opposed to a bad
    /// configuration): the binary exits with a status of its own for it, which its systemd
    /// unit does not restart.
    pub fn is_refusal(&self) -> bool {
        self.is_final() && !matches!(self, Self::Config(_))
    }
}

fn rejected_message(status: u16, reason: &str) -> String {
    match status {
        401 | 403 => format!(
            "the daemon refused the runner token (HTTP {status} {reason} on the upgrade); register the agent \
             again and put the new token in the token file"
        ),
        _ => format!("the daemon answered the upgrade with HTTP {status} {reason}"),
    }
}

fn closed_message(code: Option<u16>, reason: &str) -> String {
    match code {
        None => "the daemon closed the connection without a close code".to_owned(),
        Some(code) if CloseCode::from_u16(code).is_some_and(|c| !c.should_retry()) => {
            format!("the daemon refused this agent (close code {code}): {reason:?}")
        }
        Some(code) => format!("the daemon closed the connection (close code {code}): {reason:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u16) -> ClientError {
        ClientError::Closed { code: Some(code), reason: "why".into() }
    }

    #[test]
    fn final_ends() {
        for code in [4401, 4409, 4410] {
            assert!(closed(code).is_final() && closed(code).is_refusal(), "{code}");
            assert!(closed(code).to_string().contains("refused this agent (close code"), "{code}");
        }
        for code in [1000, 1001, 1006, 1009, 4400, 4408, 4426, 4501, 4999] {
            assert!(!closed(code).is_final(), "{code}");
        }
        assert!(!ClientError::Closed { code: None, reason: String::new() }.is_final());
        let rejected = |status| ClientError::Rejected { status, reason: "Unauthorized".into() };
        assert!(rejected(401).is_final() && rejected(403).is_refusal());
        assert!(!rejected(502).is_final());
        assert!(rejected(401).to_string().contains("register the agent again"));
        let config = ClientError::Config("bad".into());
        assert!(config.is_final() && !config.is_refusal());
    }

    #[test]
    fn the_daemons_reason_is_quoted() {
        assert_eq!(closed(4401).to_string(), "the daemon refused this agent (close code 4401): \"why\"");
    }
}
