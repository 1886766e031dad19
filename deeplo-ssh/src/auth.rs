//! Client authentication: the key file first, then every key of the ssh-agent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use crate::error::SshError;
use crate::host_key::Handler;

/// Loads (and decrypts) the key file once, up front, so a bad key is reported before any
/// host is contacted.
pub(crate) fn load_key(path: &Path, passphrase_file: Option<&Path>) -> Result<Arc<PrivateKey>, SshError> {
    let passphrase = match passphrase_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|source| SshError::Passphrase { path: p.display().to_string(), source })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        None => None,
    };
    russh::keys::load_secret_key(path, passphrase.as_deref())
        .map(Arc::new)
        .map_err(|source| SshError::Key { path: path.display().to_string(), source })
}

/// Tries the key, then the agent's keys; fails naming what was tried.
pub(crate) async fn authenticate(
    handle: &mut Handle<Handler>,
    user: &str,
    addr: &str,
    key: Option<&Arc<PrivateKey>>,
    agent: Option<&PathBuf>,
) -> Result<(), SshError> {
    let mut tried = Vec::new();
    if let Some(key) = key {
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|source| SshError::Protocol { what: "negotiate RSA signature hash", source })?
            .flatten();
        let result = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
            .await
            .map_err(|source| SshError::Protocol { what: "public key authentication", source })?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!("key file ({})", key.algorithm()));
    }
    if let Some(socket) = agent {
        match AgentClient::connect_uds(socket).await {
            Ok(mut client) => {
                let identities = client.request_identities().await.unwrap_or_default();
                let count = identities.len();
                for identity in identities {
                    let AgentIdentity::PublicKey { key, .. } = identity else { continue };
                    let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
                    if let Ok(result) = handle.authenticate_publickey_with(user, key, hash, &mut client).await
                        && result.success()
                    {
                        return Ok(());
                    }
                }
                tried.push(format!("{count} ssh-agent key(s)"));
            }
            Err(e) => tried.push(format!("ssh-agent at {} unreachable: {e}", socket.display())),
        }
    }
    if tried.is_empty() {
        return Err(SshError::NoCredentials);
    }
    Err(SshError::AuthRefused { user: user.to_owned(), addr: addr.to_owned(), tried: tried.join(", ") })
}
