//! [`SshConnector`]: opens one verified, authenticated SSH connection per deploy.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deeplo_core::config::Host;
use deeplo_core::{Connector, Error, ErrorKind, Result, Transport};
use russh::client::Handle;
use russh::keys::PrivateKey;

use crate::auth::{self, KeyOutcome};
use crate::config::SshOptions;
use crate::error::SshError;
use crate::host_key::{Handler, preferred_algorithms};
use crate::password::{AuthMethod, PasswordPrompt};
use crate::transport::SshTransport;

/// Connects to hosts over SSH.
pub struct SshConnector {
    options: SshOptions,
    key: Option<Arc<PrivateKey>>,
}

impl std::fmt::Debug for SshConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshConnector").field("options", &self.options).finish_non_exhaustive()
    }
}

impl SshConnector {
    /// Reads and decrypts the key file now: a wrong passphrase or an unreadable key is an
    /// error here, naming the file, not at the first deploy.
    pub fn new(options: SshOptions) -> Result<Self> {
        let key = match &options.private_key {
            Some(path) => Some(
                auth::load_key(path, options.passphrase_file.as_deref()).map_err(|e| e.into_core("load SSH key"))?,
            ),
            None => None,
        };
        Ok(Self { options, key })
    }

    /// The options it was made with (key file, known_hosts, timeouts).
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    /// The public half of the key file as one OpenSSH line (`ssh-ed25519 AAAA... comment`),
    /// derived from the private key: what an `authorized_keys` line for it holds. `None`
    /// without a key file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the key cannot be encoded (a key type OpenSSH's format
    /// does not know).
    pub fn public_key(&self) -> Result<Option<String>> {
        let Some(key) = &self.key else { return Ok(None) };
        key.public_key().to_openssh().map(Some).map_err(|e| {
            Error::new(ErrorKind::Config, "encode public key", format!("cannot encode the key's public half: {e}"))
        })
    }

    /// Connects as [`Connector::connect`] does (the same host key verification, then the key
    /// file and the agent's keys), and when the host refuses every key, falls back to
    /// password authentication: up to [`PASSWORD_ATTEMPTS`](crate::PASSWORD_ATTEMPTS)
    /// passwords from `prompt`, in the same connection. Says which method got in, so a
    /// caller can tell a host that already takes the key from one that needed a password.
    ///
    /// `prompt` is not called when a key is accepted, nor when the server does not offer
    /// password authentication at all.
    ///
    /// # Errors
    ///
    /// Those of [`Connector::connect`] ([`ErrorKind::HostKey`] for a refused host key,
    /// [`ErrorKind::Unreachable`]...), with the host's name in the context; [`ErrorKind::Auth`]
    /// when the keys were refused and the server takes no passwords, refused every password,
    /// or asks for a further method after the password; and whatever error `prompt` returned.
    pub async fn connect_with_password(
        &self,
        host: &Host,
        prompt: &dyn PasswordPrompt,
    ) -> Result<(SshTransport, AuthMethod)> {
        let started = std::time::Instant::now();
        let mut handle = self.handshake(host).await?;
        let addr = format!("{}:{}", host.address, host.port);
        let outcome =
            auth::offer_keys(&mut handle, &host.user, &addr, self.key.as_ref(), self.options.agent_socket.as_ref())
                .await
                .map_err(|e| e.into_core("authenticate").with_host(&host.name))?;
        let method = match outcome {
            KeyOutcome::Accepted(method) => method,
            KeyOutcome::Refused { error, methods } => {
                auth::with_password(&mut handle, host, &addr, error, methods, prompt).await?
            }
        };
        tracing::debug!(host = %host.name, target = %format!("{}@{addr}", host.user), ?method, millis = started.elapsed().as_millis() as u64, "connected");
        Ok((self.transport(handle, host), method))
    }

    /// TCP, the SSH handshake and the host key check against known_hosts.
    async fn handshake(&self, host: &Host) -> Result<Handle<Handler>> {
        let addr = format!("{}:{}", host.address, host.port);
        let refusal = Arc::new(Mutex::new(None::<Error>));
        let handler = Handler {
            host: host.address.clone(),
            port: host.port,
            known_hosts: self.options.known_hosts.clone(),
            refusal: refusal.clone(),
        };
        let recorded = self.options.known_hosts.algorithms(&host.address, host.port).unwrap_or_default();
        let config = russh::client::Config {
            keepalive_interval: Some(self.options.keepalive_interval),
            keepalive_max: self.options.keepalive_max,
            nodelay: true,
            preferred: russh::Preferred { key: Cow::Owned(preferred_algorithms(&recorded)), ..Default::default() },
            ..Default::default()
        };
        let connecting = russh::client::connect(Arc::new(config), (host.address.as_str(), host.port), handler);
        match tokio::time::timeout(self.options.connect_timeout, connecting).await {
            Err(_) => {
                let secs = self.options.connect_timeout.as_secs();
                Err(SshError::ConnectTimeout { addr, secs }.into_core("connect").with_host(&host.name))
            }
            Ok(Err(source)) => {
                if let Some(refused) = refusal.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(refused.with_host(&host.name));
                }
                Err(SshError::Connect { addr, source }.into_core("connect").with_host(&host.name))
            }
            Ok(Ok(handle)) => Ok(handle),
        }
    }

    fn transport(&self, handle: Handle<Handler>, host: &Host) -> SshTransport {
        SshTransport::new(handle, host.name.to_string(), sftp_timeout(&self.options))
    }
}

#[async_trait]
impl Connector for SshConnector {
    async fn connect(&self, host: &Host) -> Result<Box<dyn Transport>> {
        let started = std::time::Instant::now();
        let mut handle = self.handshake(host).await?;
        let addr = format!("{}:{}", host.address, host.port);
        let user_addr = format!("{}@{addr}", host.user);
        auth::authenticate(&mut handle, &host.user, &addr, self.key.as_ref(), self.options.agent_socket.as_ref())
            .await
            .map_err(|e| e.into_core("authenticate").with_host(&host.name))?;
        tracing::debug!(host = %host.name, target = %user_addr, millis = started.elapsed().as_millis() as u64, "connected");
        Ok(Box::new(self.transport(handle, host)))
    }
}

/// The wait for one SFTP answer: as long as the keepalives take to declare the connection
/// dead (a minute by default), not russh-sftp's 10 seconds, since on a busy host starting
/// `sftp-server` alone can take longer, and OpenSSH's `sftp` would simply wait.
fn sftp_timeout(options: &SshOptions) -> Duration {
    let keepalive = options.keepalive_interval.saturating_mul(u32::try_from(options.keepalive_max).unwrap_or(u32::MAX));
    keepalive.max(Duration::from_secs(10))
}
