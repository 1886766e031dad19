//! Client authentication: the key file first, then every key of the ssh-agent, and (only
//! when asked for) passwords.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deeplo_core::config::Host;
use russh::MethodKind;
use russh::client::{AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use crate::error::SshError;
use crate::host_key::Handler;
use crate::password::{AuthMethod, PASSWORD_ATTEMPTS, PasswordPrompt, PasswordRequest};

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

/// What offering the keys came to.
pub(crate) enum KeyOutcome {
    Accepted(AuthMethod),
    /// No key was accepted (or there was none to offer).
    Refused {
        error: SshError,
        /// The methods the server said it still accepts, when it was asked at all.
        methods: Option<Vec<MethodKind>>,
    },
}

/// Tries the key, then the agent's keys; fails naming what was tried.
pub(crate) async fn authenticate(
    handle: &mut Handle<Handler>,
    user: &str,
    addr: &str,
    key: Option<&Arc<PrivateKey>>,
    agent: Option<&PathBuf>,
) -> Result<AuthMethod, SshError> {
    match offer_keys(handle, user, addr, key, agent).await? {
        KeyOutcome::Accepted(method) => Ok(method),
        KeyOutcome::Refused { error, .. } => Err(error),
    }
}

/// Offers the key, then the agent's keys. `Err` only for a broken connection: a refusal is
/// [`KeyOutcome::Refused`], with what the server offers instead.
pub(crate) async fn offer_keys(
    handle: &mut Handle<Handler>,
    user: &str,
    addr: &str,
    key: Option<&Arc<PrivateKey>>,
    agent: Option<&PathBuf>,
) -> Result<KeyOutcome, SshError> {
    let mut tried = Vec::new();
    let mut methods = None;
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
        match result {
            AuthResult::Success => return Ok(KeyOutcome::Accepted(AuthMethod::KeyFile)),
            AuthResult::Failure { remaining_methods, .. } => methods = Some(remaining_methods.to_vec()),
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
                    match handle.authenticate_publickey_with(user, key, hash, &mut client).await {
                        Ok(AuthResult::Success) => return Ok(KeyOutcome::Accepted(AuthMethod::Agent)),
                        Ok(AuthResult::Failure { remaining_methods, .. }) => methods = Some(remaining_methods.to_vec()),
                        Err(_) => {}
                    }
                }
                tried.push(format!("{count} ssh-agent key(s)"));
            }
            Err(e) => tried.push(format!("ssh-agent at {} unreachable: {e}", socket.display())),
        }
    }
    let error = if tried.is_empty() {
        SshError::NoCredentials
    } else {
        SshError::AuthRefused { user: user.to_owned(), addr: addr.to_owned(), tried: tried.join(", ") }
    };
    Ok(KeyOutcome::Refused { error, methods })
}

/// Password authentication after the keys were refused (`refused`, with the methods the
/// server offers): up to [`PASSWORD_ATTEMPTS`] passwords from `prompt`, none when the
/// server does not take passwords at all.
pub(crate) async fn with_password(
    handle: &mut Handle<Handler>,
    host: &Host,
    addr: &str,
    refused: SshError,
    methods: Option<Vec<MethodKind>>,
    prompt: &dyn PasswordPrompt,
) -> Result<AuthMethod, deeplo_core::Error> {
    let user = host.user.as_str();
    let fail = |e: SshError| e.into_core("authenticate").with_host(&host.name);
    if let Some(methods) = &methods
        && !methods.contains(&MethodKind::Password)
    {
        return Err(fail(SshError::NoPassword { refused: refused.to_string(), offered: method_names(methods) }));
    }
    for attempt in 1..=PASSWORD_ATTEMPTS {
        let request = PasswordRequest {
            host: host.name.to_string(),
            user: user.to_owned(),
            address: host.address.clone(),
            port: host.port,
            attempt,
        };
        let password = prompt.password(&request).await.map_err(|e| e.with_host(&host.name))?;
        let result = handle
            .authenticate_password(user, password.expose())
            .await
            .map_err(|source| fail(SshError::Protocol { what: "password authentication", source }))?;
        match result {
            AuthResult::Success => return Ok(AuthMethod::Password),
            AuthResult::Failure { partial_success: true, remaining_methods } => {
                return Err(fail(SshError::MoreAuthRequired {
                    user: user.to_owned(),
                    addr: addr.to_owned(),
                    methods: method_names(&remaining_methods),
                }));
            }
            AuthResult::Failure { remaining_methods, .. } => {
                if !remaining_methods.contains(&MethodKind::Password) {
                    return Err(fail(SshError::PasswordRefused {
                        user: user.to_owned(),
                        addr: addr.to_owned(),
                        attempt,
                    }));
                }
            }
        }
    }
    Err(fail(SshError::PasswordRefused { user: user.to_owned(), addr: addr.to_owned(), attempt: PASSWORD_ATTEMPTS }))
}

fn method_names(methods: &[MethodKind]) -> String {
    if methods.is_empty() {
        return "none".into();
    }
    methods.iter().map(<&'static str>::from).collect::<Vec<_>>().join(", ")
}
