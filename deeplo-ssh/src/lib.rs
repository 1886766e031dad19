//! deeplo's agentless transport: [`SshConnector`] opens one SSH connection per deploy,
//! verified against known_hosts (accept-new or strict; a changed key is always refused) and
//! authenticated with a key file or ssh-agent; [`SshTransport`] runs each command on its own
//! channel and uploads a bundle as one `tar` stream (over SFTP on hosts without `tar`).
//! [`SshConnector::connect_with_password`] falls back to passwords from a caller's
//! [`PasswordPrompt`], to install the key on a host that does not take it yet.
//!
//! ```no_run
//! use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
//! use deeplo_ssh::{SshConnector, SshOptions};
//!
//! let mut options = SshOptions::new(KnownHosts::new("/var/lib/deeplo/known_hosts", HostKeyPolicy::AcceptNew));
//! options.private_key = Some("/etc/deeplo/id_ed25519".into());
//! let connector = SshConnector::new(options)?;
//! # Ok::<(), deeplo_core::Error>(())
//! ```

mod auth;
mod config;
mod connector;
mod error;
mod host_key;
mod password;
mod tar_stream;
mod transport;
mod upload;

pub use config::SshOptions;
pub use connector::SshConnector;
pub use password::{AuthMethod, PASSWORD_ATTEMPTS, PasswordPrompt, PasswordRequest};
pub use transport::SshTransport;
