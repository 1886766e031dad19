//! How requests to GitHub are authenticated: a static token, or a GitHub App.
//!
//! A GitHub App signs a short JWT (RS256) with its private key, looks up the installation
//! that covers a repository (`GET /repos/{owner}/{repo}/installation`) and trades the JWT
//! for an installation access token (`POST /app/installations/{id}/access_tokens`) that
//! lasts an hour. Tokens live in memory only, are used until one minute before they
//! expire, and never reach a log, a file or `Debug` output.
//!
//! The JWT is signed through `jsonwebtoken` with its `aws_lc_rs` backend: no other crate in
//! the dependency graph may enable its `rust_crypto` backend too, or signing panics.

use std::fmt;

use deeplo_core::{Error, ErrorKind, Result, Secret};
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// How long before `expires_at` an installation token is replaced.
pub const TOKEN_REFRESH_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// The JWT's `iat` is set this far in the past, against clock drift (GitHub's advice).
const JWT_BACKDATE_SECS: i64 = 60;
/// The JWT's lifetime from `iat`; GitHub refuses more than ten minutes.
const JWT_LIFETIME_SECS: i64 = 600;

/// Where the token for a request comes from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// A personal access token or any other fixed token (`DEEPLO_GITHUB_TOKEN_FILE`).
    Static(Secret),
    /// A GitHub App: tokens are minted per installation.
    App(AppCredentials),
}

/// A GitHub App's id and private key, and optionally the one installation to use.
#[derive(Clone)]
pub struct AppCredentials {
    issuer: String,
    key: EncodingKey,
    installation_id: Option<u64>,
}

/// The claims GitHub reads from an App JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppClaims {
    /// Issued at, in Unix seconds (set a minute in the past, for clock drift).
    pub iat: i64,
    /// Expiry, in Unix seconds (GitHub accepts at most ten minutes after `iat`).
    pub exp: i64,
    /// The App id (or its client id).
    pub iss: String,
}

impl AppCredentials {
    /// Credentials from the App id (or client id) and the private key in PEM form (PKCS#1
    /// as GitHub hands it out, or PKCS#8). The key is tried once here, so a bad key fails
    /// at startup rather than at the first deploy.
    ///
    /// # Errors
    ///
    /// `Config` when the id is empty or the key is not a usable RSA private key.
    pub fn from_pem(app_id: impl Into<String>, private_key_pem: &[u8], installation_id: Option<u64>) -> Result<Self> {
        let issuer = app_id.into().trim().to_owned();
        if issuer.is_empty() || issuer.contains(char::is_whitespace) {
            return Err(Error::new(ErrorKind::Config, "load GitHub App", "the App id is empty or contains spaces"));
        }
        let key = EncodingKey::from_rsa_pem(private_key_pem).map_err(|e| {
            Error::new(ErrorKind::Config, "load GitHub App", format!("the private key is not an RSA PEM key: {e}"))
        })?;
        let credentials = Self { issuer, key, installation_id };
        credentials.jwt(Timestamp::now()).map_err(|e| {
            Error::new(ErrorKind::Config, "load GitHub App", format!("the private key cannot sign: {}", e.message()))
        })?;
        Ok(credentials)
    }

    /// The App id as it goes into `iss`.
    pub fn app_id(&self) -> &str {
        &self.issuer
    }

    /// The installation fixed in the settings, if any (otherwise it is looked up per repo).
    pub fn installation_id(&self) -> Option<u64> {
        self.installation_id
    }

    /// The claims of a JWT made at `now`: issued a minute ago, valid for ten minutes from then.
    pub fn claims(&self, now: Timestamp) -> AppClaims {
        let iat = now.as_second() - JWT_BACKDATE_SECS;
        AppClaims { iat, exp: iat + JWT_LIFETIME_SECS, iss: self.issuer.clone() }
    }

    /// A signed JWT for the App endpoints.
    ///
    /// # Errors
    ///
    /// `Auth` when signing fails.
    pub fn jwt(&self, now: Timestamp) -> Result<Secret> {
        let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &self.claims(now), &self.key)
            .map_err(|e| Error::new(ErrorKind::Auth, "sign GitHub App JWT", e.to_string()))?;
        Ok(Secret::new(token))
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.issuer)
            .field("private_key", &"***")
            .field("installation_id", &self.installation_id)
            .finish()
    }
}

/// An installation token and when to stop using it.
#[derive(Clone, Debug)]
pub(crate) struct CachedToken {
    pub(crate) token: Secret,
    pub(crate) refresh_at: Timestamp,
}

impl CachedToken {
    pub(crate) fn new(token: Secret, expires_at: Timestamp) -> Self {
        let refresh_at = expires_at.checked_sub(TOKEN_REFRESH_MARGIN).unwrap_or(expires_at);
        Self { token, refresh_at }
    }

    pub(crate) fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.refresh_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_githubs_rules() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let creds =
            AppCredentials { issuer: "123".into(), key: EncodingKey::from_secret(b"unused"), installation_id: None };
        let c = creds.claims(now);
        assert_eq!(c.iat, 1_700_000_000 - 60);
        assert!(c.exp - now.as_second() <= 600);
        assert_eq!(c.iss, "123");
    }

    #[test]
    fn refuses_a_bad_key_or_id() {
        let e = AppCredentials::from_pem("1", b"not a key", None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("private key"), "{e}");
        assert!(AppCredentials::from_pem(" ", b"", None).unwrap_err().to_string().contains("App id"));
    }

    #[test]
    fn cached_tokens_are_replaced_a_minute_early() {
        let expires = Timestamp::from_second(1_700_003_600).unwrap();
        let t = CachedToken::new(Secret::new("ghs_x"), expires);
        assert!(t.is_fresh(Timestamp::from_second(1_700_003_539).unwrap()));
        assert!(!t.is_fresh(Timestamp::from_second(1_700_003_540).unwrap()));
        assert!(!format!("{t:?}").contains("ghs_x"));
    }
}
