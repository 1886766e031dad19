//! [`SshConnector`]: opens one verified, authenticated SSH connection per deploy.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deeplo_core::config::Host;
use deeplo_core::{Connector, Error, Result, Transport};
use russh::keys::PrivateKey;

use crate::auth;
use crate::config::SshOptions;
use crate::error::SshError;
use crate::host_key::{Handler, preferred_algorithms};
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

    pub fn options(&self) -> &SshOptions {
        &self.options
    }
}

#[async_trait]
impl Connector for SshConnector {
    async fn connect(&self, host: &Host) -> Result<Box<dyn Transport>> {
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
        let started = std::time::Instant::now();
        let connecting = russh::client::connect(Arc::new(config), (host.address.as_str(), host.port), handler);
        let connected = tokio::time::timeout(self.options.connect_timeout, connecting).await;
        let mut handle = match connected {
            Err(_) => {
                let secs = self.options.connect_timeout.as_secs();
                return Err(SshError::ConnectTimeout { addr, secs }.into_core("connect").with_host(&host.name));
            }
            Ok(Err(source)) => {
                if let Some(refused) = refusal.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(refused.with_host(&host.name));
                }
                return Err(SshError::Connect { addr, source }.into_core("connect").with_host(&host.name));
            }
            Ok(Ok(handle)) => handle,
        };
        let user_addr = format!("{}@{addr}", host.user);
        auth::authenticate(&mut handle, &host.user, &addr, self.key.as_ref(), self.options.agent_socket.as_ref())
            .await
            .map_err(|e| e.into_core("authenticate").with_host(&host.name))?;
        tracing::debug!(host = %host.name, target = %user_addr, millis = started.elapsed().as_millis() as u64, "connected");
        Ok(Box::new(SshTransport::new(handle, host.name.to_string(), sftp_timeout(&self.options))))
    }
}

/// The wait for one SFTP answer: as long as the keepalives take to declare the connection
/// dead (a minute by default), not russh-sftp's 10 seconds, since on a busy host starting
/// `sftp-server` alone can take longer, and OpenSSH's `sftp` would simply wait.
fn sftp_timeout(options: &SshOptions) -> Duration {
    let keepalive = options.keepalive_interval.saturating_mul(u32::try_from(options.keepalive_max).unwrap_or(u32::MAX));
    keepalive.max(Duration::from_secs(10))
}
