//! The password fallback's public side: who supplies passwords ([`PasswordPrompt`]) and how
//! a connection ended up authenticated ([`AuthMethod`]).
//!
//! Passwords exist here for one job: getting the deploy key onto a host that does not take
//! it yet (`deeplo authorize`). Deploys never ask for one. The crate never reads a terminal
//! itself: the caller decides where a password comes from.

use async_trait::async_trait;
use deeplo_core::{Result, Secret};

/// How many passwords [`SshConnector::connect_with_password`](crate::SshConnector::connect_with_password)
/// asks for before giving up on a host, as OpenSSH's `NumberOfPasswordPrompts`.
pub const PASSWORD_ATTEMPTS: u32 = 3;

/// How a connection was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// The key file of [`SshOptions::private_key`](crate::SshOptions::private_key).
    KeyFile,
    /// A key of the ssh-agent at [`SshOptions::agent_socket`](crate::SshOptions::agent_socket).
    Agent,
    /// A password from the caller's [`PasswordPrompt`].
    Password,
}

/// What a [`PasswordPrompt`] is asked for: the account on one host, and which try this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRequest {
    /// The host's name in the config.
    pub host: String,
    /// The SSH user.
    pub user: String,
    /// The address connected to, as configured.
    pub address: String,
    /// The SSH port.
    pub port: u16,
    /// 1 for the first try; a larger number means the previous password was refused.
    pub attempt: u32,
}

/// Supplies passwords for password authentication (a terminal prompt, a secret store...).
///
/// # Contract
///
/// Called at most [`PASSWORD_ATTEMPTS`] times per connection, one call at a time, only
/// after the server refused every key and only when it offers password authentication.
/// The password is sent to the server and dropped; it is never logged.
///
/// ```no_run
/// use async_trait::async_trait;
/// use deeplo_core::{Result, Secret};
/// use deeplo_ssh::{PasswordPrompt, PasswordRequest};
///
/// /// The password kept in a file, for a machine with nobody at a terminal.
/// struct FromFile(std::path::PathBuf);
///
/// #[async_trait]
/// impl PasswordPrompt for FromFile {
///     async fn password(&self, _: &PasswordRequest) -> Result<Secret> {
///         Secret::from_file(&self.0)
///     }
/// }
/// ```
#[async_trait]
pub trait PasswordPrompt: Send + Sync {
    /// The password for `request.user` at `request.address`.
    ///
    /// # Errors
    ///
    /// Any error (no terminal to ask on, the person gave up) ends the attempts on this
    /// host; the connect returns it as it is, with the host added to its context.
    async fn password(&self, request: &PasswordRequest) -> Result<Secret>;
}
