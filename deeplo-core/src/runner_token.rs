//! Runner tokens: the credential a runner agent presents when it connects out to the daemon.
//!
//! A token is 32 random bytes from the operating system's generator, written as `dplr_`
//! followed by their base64url encoding without padding (48 characters in all), so that a
//! leaked token is recognisable in secret scans. It is shown once, when issued; the store
//! keeps only its SHA-256 digest ([`TokenHash`]) and a visible prefix that tells tokens apart
//! in listings. Each host has at most one valid token: issuing a new one replaces the old.
//!
//! The records live in one store document ([`DOCUMENT`]) through
//! [`Store::load_document`] / [`Store::save_document`], so every store backend holds them
//! without a trait method of its own. [`RunnerTokenStore`] serializes its read-modify-write
//! cycles; the daemon keeps one for its store (a store has one writing process: the file
//! store's lock sees to that).
//!
//! ```
//! use deeplo_core::runner_token::{RunnerToken, verify};
//!
//! let token = RunnerToken::generate();
//! assert!(token.secret().expose().starts_with("dplr_"));
//! assert_eq!(format!("{token:?}"), "RunnerToken(***)");
//! let hash = token.hash();
//! assert!(verify(token.secret().expose(), &hash));
//! assert!(!verify("dplr_not-a-token", &hash));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::HostName;
use crate::{Error, ErrorKind, Result, Secret, Store, constant_time_eq};

/// What every runner token starts with.
pub const TOKEN_PREFIX: &str = "dplr_";

/// The name of the store document that holds the runner token records.
pub const DOCUMENT: &str = "runner_tokens";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters of base64url (no padding) for [`TOKEN_BYTES`] bytes.
const ENCODED_LEN: usize = 43;
/// Characters after [`TOKEN_PREFIX`] kept visible in listings.
const VISIBLE_LEN: usize = 8;

/// A freshly generated runner token. `Debug` and `Display` print `***`; the text is reached
/// through [`secret`](Self::secret), once, to hand it to the operator.
#[derive(Clone)]
pub struct RunnerToken(Secret);

impl RunnerToken {
    /// A new token from 32 bytes of the operating system's random generator.
    ///
    /// # Panics
    ///
    /// When the operating system's generator fails, which leaves nothing safe to fall back on.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random generator failed");
        Self(Secret::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// The token text (`dplr_...`).
    pub fn secret(&self) -> &Secret {
        &self.0
    }

    /// The visible part kept in listings: the first 8 characters after `dplr_`.
    pub fn prefix(&self) -> &str {
        &self.0.expose()[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + VISIBLE_LEN]
    }

    /// The digest to store in place of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose())
    }
}

impl fmt::Debug for RunnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunnerToken(***)")
    }
}

impl fmt::Display for RunnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The SHA-256 digest of a token's text, as lowercase hex: what the store keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// The digest of `token` (the whole text, `dplr_` included).
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// The digest as hex.
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is no secret, but there is no reason to spread it through logs either.
        f.write_str("TokenHash(..)")
    }
}

/// Whether `presented` has the shape of a runner token: `dplr_` and 43 characters of
/// base64url without padding that decode to 32 bytes.
fn well_formed(presented: &str) -> bool {
    let Some(encoded) = presented.strip_prefix(TOKEN_PREFIX) else {
        return false;
    };
    encoded.len() == ENCODED_LEN && URL_SAFE_NO_PAD.decode(encoded).is_ok_and(|b| b.len() == TOKEN_BYTES)
}

/// Whether `presented` is the token whose digest is `stored`; digests are compared in
/// constant time. A malformed token is `false`, like a wrong one, and is not logged.
pub fn verify(presented: &str, stored: &TokenHash) -> bool {
    if !well_formed(presented) {
        return false;
    }
    constant_time_eq(TokenHash::of(presented).as_hex().as_bytes(), stored.as_hex().as_bytes())
}

/// What the store keeps about a host's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerTokenRecord {
    /// The digest of the token.
    pub hash: TokenHash,
    /// The first 8 characters after `dplr_`.
    pub prefix: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it was revoked; `None` while valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// The [`DOCUMENT`]: one record per host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerTokens {
    /// The record of each host that was ever issued a token (the latest one).
    #[serde(default)]
    pub hosts: BTreeMap<HostName, RunnerTokenRecord>,
}

/// A token as listed: no hash, no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The host the token is bound to.
    pub host: HostName,
    /// The first 8 characters after `dplr_`.
    pub prefix: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it was revoked; `None` while valid.
    pub revoked_at: Option<Timestamp>,
}

/// Issues, revokes, checks and lists runner tokens in a [`Store`].
///
/// Its read-modify-write cycles on [`DOCUMENT`] are serialized by a lock it holds, so
/// concurrent calls on one `RunnerTokenStore` never lose an update. Keep one per store in a
/// process (the daemon holds one); two of them on the same store could overwrite each
/// other's updates.
///
/// It keeps the document in memory once read, and its own updates with it: an agent's
/// connect costs no store read (a daemon with 5,000 agents would otherwise parse the whole
/// document for each of their handshakes). So the store's document must change only
/// through this `RunnerTokenStore` while it lives, which the one-writer rule above gives.
#[derive(Debug, Clone)]
pub struct RunnerTokenStore {
    store: Arc<dyn Store>,
    lock: Arc<tokio::sync::Mutex<()>>,
    cached: Arc<std::sync::Mutex<Option<Arc<RunnerTokens>>>>,
}

impl RunnerTokenStore {
    /// Runner tokens kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, lock: Arc::new(tokio::sync::Mutex::new(())), cached: Arc::default() }
    }

    /// The document: from memory once read.
    async fn current(&self) -> Result<Arc<RunnerTokens>> {
        if let Some(doc) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(doc);
        }
        let doc = Arc::new(load(self.store.as_ref()).await?);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&doc));
        Ok(doc)
    }

    /// Saves `doc` and keeps it as the document in memory.
    async fn replace(&self, doc: RunnerTokens) -> Result<()> {
        save(self.store.as_ref(), &doc).await?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(doc));
        Ok(())
    }

    /// Issues a new token for `host` at `now`, replacing (and so revoking) any earlier one.
    /// The returned token is the only copy of its text.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn issue(&self, host: &HostName, now: Timestamp) -> Result<RunnerToken> {
        let _guard = self.lock.lock().await;
        let mut doc = RunnerTokens::clone(&*self.current().await?);
        let token = RunnerToken::generate();
        let record = RunnerTokenRecord {
            hash: token.hash(),
            prefix: token.prefix().to_owned(),
            issued_at: now,
            revoked_at: None,
        };
        doc.hosts.insert(host.clone(), record);
        self.replace(doc).await?;
        Ok(token)
    }

    /// Revokes the token of `host` at `now`; `false` when it had no valid token.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn revoke(&self, host: &HostName, now: Timestamp) -> Result<bool> {
        let _guard = self.lock.lock().await;
        let mut doc = RunnerTokens::clone(&*self.current().await?);
        match doc.hosts.get_mut(host) {
            Some(record) if record.revoked_at.is_none() => {
                record.revoked_at = Some(now);
                self.replace(doc).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether `presented` is the valid token of `host`: `false` for a revoked token, a host
    /// without one, another host's token or a malformed one.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn check(&self, host: &HostName, presented: &str) -> Result<bool> {
        let doc = self.current().await?;
        Ok(doc.hosts.get(host).is_some_and(|r| r.revoked_at.is_none() && verify(presented, &r.hash)))
    }

    /// The host whose valid token `presented` is, if any: how an agent that presents only
    /// its token is told which host it is. The presented token's digest is compared with
    /// every valid record, each in constant time, without stopping at a match.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<HostName>> {
        let doc = self.current().await?;
        if !well_formed(presented) {
            return Ok(None);
        }
        let digest = TokenHash::of(presented);
        let mut found = None;
        for (host, record) in &doc.hosts {
            let matches = constant_time_eq(digest.as_hex().as_bytes(), record.hash.as_hex().as_bytes());
            if matches && record.revoked_at.is_none() {
                found = Some(host.clone());
            }
        }
        Ok(found)
    }

    /// Every host's token, sorted by host, revoked ones included; never a hash.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(infos(RunnerTokens::clone(&*self.current().await?)))
    }
}

/// Whether `presented` is the valid token of `host` in `store` (see
/// [`RunnerTokenStore::check`]); reads only, so it needs no lock.
///
/// # Errors
///
/// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
pub async fn check(store: &dyn Store, host: &HostName, presented: &str) -> Result<bool> {
    let doc = load(store).await?;
    Ok(doc.hosts.get(host).is_some_and(|r| r.revoked_at.is_none() && verify(presented, &r.hash)))
}

/// Every host's token in `store` (see [`RunnerTokenStore::list`]).
///
/// # Errors
///
/// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
pub async fn list(store: &dyn Store) -> Result<Vec<TokenInfo>> {
    Ok(infos(load(store).await?))
}

fn infos(doc: RunnerTokens) -> Vec<TokenInfo> {
    doc.hosts
        .into_iter()
        .map(|(host, r)| TokenInfo { host, prefix: r.prefix, issued_at: r.issued_at, revoked_at: r.revoked_at })
        .collect()
}

async fn load(store: &dyn Store) -> Result<RunnerTokens> {
    match store.load_document(DOCUMENT).await? {
        None => Ok(RunnerTokens::default()),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            Error::new(ErrorKind::Store, "load runner tokens", format!("the {DOCUMENT} document is unreadable: {e}"))
        }),
    }
}

async fn save(store: &dyn Store, doc: &RunnerTokens) -> Result<()> {
    let value = serde_json::to_value(doc)
        .map_err(|e| Error::new(ErrorKind::Store, "save runner tokens", format!("cannot encode {DOCUMENT}: {e}")))?;
    store.save_document(DOCUMENT, &value).await
}

#[cfg(test)]
mod tests;
