//! The crate's private errors, mapped into `deeplo_core::Error` at the boundary.

use deeplo_core::{Error, ErrorKind};

/// What went wrong inside the SSH transport.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SshError {
    #[error("cannot read private key {path}: {source}")]
    Key { path: String, source: russh::keys::Error },
    #[error("cannot read passphrase file {path}: {source}")]
    Passphrase { path: String, source: std::io::Error },
    #[error("connect to {addr} timed out after {secs}s")]
    ConnectTimeout { addr: String, secs: u64 },
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: russh::Error },
    #[error("{user}@{addr} refused every key offered ({tried})")]
    AuthRefused { user: String, addr: String, tried: String },
    #[error("{refused}, and it does not take passwords (it offers: {offered})")]
    NoPassword { refused: String, offered: String },
    #[error("{user}@{addr} refused the password ({attempt} attempt(s))")]
    PasswordRefused { user: String, addr: String, attempt: u32 },
    #[error("{user}@{addr} accepted the password but asks for more ({methods}), which deeplo does not support")]
    MoreAuthRequired { user: String, addr: String, methods: String },
    #[error("no key to authenticate with: set DEEPLO_SSH_PRIVATE_KEY_FILE or run an ssh-agent (SSH_AUTH_SOCK)")]
    NoCredentials,
    #[error("{what}: {source}")]
    Protocol { what: &'static str, source: russh::Error },
    #[error("cannot write the bundle into {dir}: tar failed: {output}")]
    Extract { dir: String, output: String },
    #[error("cannot pack the bundle: {0}")]
    Pack(std::io::Error),
    #[error("sftp {what} {path}: {source}")]
    Sftp { what: &'static str, path: String, source: russh_sftp::client::error::Error },
}

impl SshError {
    pub(crate) fn into_core(self, operation: &'static str) -> Error {
        let kind = match &self {
            Self::Key { .. } | Self::Passphrase { .. } | Self::NoCredentials => ErrorKind::Config,
            Self::ConnectTimeout { .. } | Self::Connect { .. } | Self::Protocol { .. } => ErrorKind::Unreachable,
            Self::AuthRefused { .. }
            | Self::NoPassword { .. }
            | Self::PasswordRefused { .. }
            | Self::MoreAuthRequired { .. } => ErrorKind::Auth,
            Self::Sftp { .. } | Self::Extract { .. } | Self::Pack(_) => ErrorKind::Io,
        };
        let message = self.to_string();
        Error::new(kind, operation, message).with_source(self)
    }
}
