//! [`SshOptions`]: how the connector authenticates, verifies hosts and keeps connections alive.

use std::path::PathBuf;
use std::time::Duration;

use deeplo_core::known_hosts::KnownHosts;

/// Options for [`SshConnector`](crate::SshConnector).
#[derive(Clone)]
pub struct SshOptions {
    /// An OpenSSH private key (ed25519, ECDSA or RSA), tried first.
    pub private_key: Option<PathBuf>,
    /// A file holding the key's passphrase (a trailing newline is ignored).
    pub passphrase_file: Option<PathBuf>,
    /// An ssh-agent socket whose keys are tried after the key file (`SSH_AUTH_SOCK`).
    pub agent_socket: Option<PathBuf>,
    /// Where host keys are checked and, under accept-new, recorded.
    pub known_hosts: KnownHosts,
    /// Time to open the TCP connection and finish the SSH handshake.
    pub connect_timeout: Duration,
    /// Keepalive probes on an idle connection, so a dead host is noticed mid-deploy.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the connection is given up. `keepalive_interval *
    /// keepalive_max` (at least 10s) is also how long one SFTP request may wait.
    pub keepalive_max: usize,
}

impl SshOptions {
    /// Defaults: no key file, the agent from `SSH_AUTH_SOCK` if set, 10s connect timeout,
    /// a keepalive every 15s, dropped after 4 unanswered.
    pub fn new(known_hosts: KnownHosts) -> Self {
        Self {
            private_key: None,
            passphrase_file: None,
            agent_socket: std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()).map(PathBuf::from),
            known_hosts,
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 4,
        }
    }
}

impl std::fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths only: the passphrase itself is never held here.
        f.debug_struct("SshOptions")
            .field("private_key", &self.private_key)
            .field("passphrase_file", &self.passphrase_file)
            .field("agent_socket", &self.agent_socket)
            .field("known_hosts", &self.known_hosts)
            .field("connect_timeout", &self.connect_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("keepalive_max", &self.keepalive_max)
            .finish()
    }
}
