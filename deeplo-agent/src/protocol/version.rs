//! Protocol versions and the handshake's choice of one.
//!
//! The agent offers the newest version it speaks in [`Hello::protocol`]; the daemon answers
//! with the version both speak from then on in [`Welcome::protocol`] ([`negotiate`]), or
//! closes with [`CloseCode::VersionMismatch`]. The agent checks the daemon's choice with
//! [`accept_welcome`]. A message kind added in version N is only sent on a connection that
//! negotiated N or later.

use std::fmt;

use super::close::CloseCode;
use super::messages::{Hello, Welcome};

/// The newest protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The oldest protocol version this build still speaks.
pub const OLDEST_PROTOCOL_VERSION: u16 = 1;

/// Agent or daemon, as in "upgrade the agent".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `deeplo-agent` on the server.
    Agent,
    /// The `deeplo daemon`.
    Daemon,
}

impl Side {
    /// `"agent"` or `"daemon"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Daemon => "daemon",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Agent => "agent (deeplo-agent on the server)",
            Self::Daemon => "daemon (deeplo daemon)",
        })
    }
}

/// No version both sides speak. The message names both versions and the side to upgrade,
/// so that it reads the same in the agent's log and in the daemon's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "protocol version mismatch: the agent speaks version {agent}, the daemon version {daemon} \
     (this {found} speaks {OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}); upgrade the {upgrade}",
    found = .found_by.name()
)]
pub struct VersionMismatch {
    /// The agent's version: the one it offered, or the one the daemon chose that it refused.
    pub agent: u16,
    /// The daemon's version: the newest it speaks, or the one it chose.
    pub daemon: u16,
    /// The side that found the mismatch (this build).
    pub found_by: Side,
    /// The side that is too old.
    pub upgrade: Side,
}

impl VersionMismatch {
    /// The close code to end the connection with.
    pub fn close_code(&self) -> CloseCode {
        CloseCode::VersionMismatch
    }
}

/// The daemon's choice: the newer version both speak, the lower of the agent's offer and
/// [`PROTOCOL_VERSION`], to put in [`Welcome::protocol`].
///
/// # Errors
///
/// [`VersionMismatch`] (upgrade the agent) when the agent's newest version is older than
/// [`OLDEST_PROTOCOL_VERSION`].
pub fn negotiate(hello: &Hello) -> Result<u16, VersionMismatch> {
    if hello.protocol < OLDEST_PROTOCOL_VERSION {
        return Err(VersionMismatch {
            agent: hello.protocol,
            daemon: PROTOCOL_VERSION,
            found_by: Side::Daemon,
            upgrade: Side::Agent,
        });
    }
    Ok(hello.protocol.min(PROTOCOL_VERSION))
}

/// The agent's check of the daemon's choice: the version in `welcome`, if this build speaks
/// it.
///
/// # Errors
///
/// [`VersionMismatch`] when the daemon chose a version this agent no longer speaks (upgrade
/// the daemon) or one newer than it offered (a daemon bug; upgrading the daemon is the fix
/// too).
pub fn accept_welcome(welcome: &Welcome) -> Result<u16, VersionMismatch> {
    if (OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&welcome.protocol) {
        return Ok(welcome.protocol);
    }
    Err(VersionMismatch {
        agent: PROTOCOL_VERSION,
        daemon: welcome.protocol,
        found_by: Side::Agent,
        upgrade: Side::Daemon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Fingerprint;

    fn hello(protocol: u16) -> Hello {
        let fingerprint = Fingerprint {
            os: "Debian GNU/Linux 12".into(),
            kernel: "6.1.0".into(),
            arch: "x86_64".into(),
            docker_version: None,
            compose_version: None,
            disk_free_bytes: None,
            memory_bytes: None,
        };
        Hello { protocol, agent_version: "0.1.0".into(), fingerprint }
    }

    fn welcome(protocol: u16) -> Welcome {
        Welcome { protocol, daemon_version: "0.1.0".into(), heartbeat_interval_secs: 5, heartbeat_allowance: 3 }
    }

    #[test]
    fn same_or_newer_agent_gets_the_daemons_version() {
        assert_eq!(negotiate(&hello(PROTOCOL_VERSION)), Ok(PROTOCOL_VERSION));
        assert_eq!(negotiate(&hello(PROTOCOL_VERSION + 7)), Ok(PROTOCOL_VERSION));
        assert_eq!(negotiate(&hello(u16::MAX)), Ok(PROTOCOL_VERSION));
    }

    #[test]
    fn too_old_agent_is_told_to_upgrade() {
        let err = negotiate(&hello(OLDEST_PROTOCOL_VERSION - 1)).unwrap_err();
        assert_eq!(err.upgrade, Side::Agent);
        assert_eq!(err.close_code(), CloseCode::VersionMismatch);
        let message = err.to_string();
        assert!(message.contains("agent speaks version 0"), "{message}");
        let range = format!("(this daemon speaks {OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION})");
        assert!(message.contains(&range), "{message}");
        assert!(message.contains(&format!("daemon version {PROTOCOL_VERSION}")), "{message}");
        assert!(message.ends_with("upgrade the agent (deeplo-agent on the server)"), "{message}");
    }

    #[test]
    fn agent_accepts_only_versions_it_speaks() {
        assert_eq!(accept_welcome(&welcome(PROTOCOL_VERSION)), Ok(PROTOCOL_VERSION));
        let err = accept_welcome(&welcome(0)).unwrap_err();
        assert_eq!((err.agent, err.daemon, err.upgrade), (PROTOCOL_VERSION, 0, Side::Daemon));
        assert!(err.to_string().ends_with("upgrade the daemon (deeplo daemon)"), "{err}");
        assert!(accept_welcome(&welcome(PROTOCOL_VERSION + 1)).is_err());
    }
}
