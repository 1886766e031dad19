//! deeplo's agentless transport: [`SshConnector`] opens one SSH connection per deploy,
//! verified against known_hosts (accept-new or strict; a changed key is always refused) and
//! authenticated with a key file or ssh-agent; [`SshTransport`] runs each command on its own
//! channel and uploads a bundle as one `tar` stream (over SFTP on hosts without `tar`).
//! [`SshConnector::connect_with_password`] adds a password login for installing the key
//! (`deeplo authorize`).
//!
//! Connecting to a host and running a command on it (here against a real OpenSSH server the
//! test bed starts on 127.0.0.1):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sshd = deeplo_testbed::Sshd::start()?;
//! # let dir = tempfile::tempdir()?;
//! # let (known_hosts_file, key_file, port, user) =
//! #     (dir.path().join("known_hosts"), sshd.client_key(), sshd.port(), sshd.user());
//! use deeplo_core::config::{self, EnvMap};
//! use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
//! use deeplo_core::{Connector, Discard, RemoteCommand};
//! use deeplo_ssh::{SshConnector, SshOptions};
//!
//! // Host keys are recorded on first contact and checked on every later one.
//! let mut options = SshOptions::new(KnownHosts::new(known_hosts_file, HostKeyPolicy::AcceptNew));
//! options.private_key = Some(key_file);
//! let connector = SshConnector::new(options)?;
//!
//! // A host as the config file describes it.
//! let yaml = format!(
//!     "hosts: [{{name: web-1, address: 127.0.0.1, port: {port}, user: {user}, deploy_dir: /srv}}]\n\
//!      repos: [{{name: app, url: /srv/git/app.git}}]\n\
//!      projects: [{{name: site, repo: app, repo_subdir: ., targets: [web-1]}}]\n"
//! );
//! let loaded = config::parse(&yaml, &EnvMap::default()).map_err(|e| e.to_string())?;
//! let host = &loaded.config.hosts[0];
//!
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     let transport = connector.connect(host).await?;
//!     let output = transport.run(&RemoteCommand::new("echo").arg("hello from web-1"), &Discard).await?;
//!     assert!(output.status.success());
//!     assert_eq!(output.stdout_str(), "hello from web-1\n");
//!     transport.close().await
//! })?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

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
