//! API tokens: the credential a person or a CI job presents to the HTTP API.
//!
//! A token is 32 random bytes from the operating system's generator, written as `dplu_`
//! followed by their base64url encoding without padding (48 characters in all), like the
//! runner tokens (`dplr_`), so that secret scanners tell the two kinds apart. It is shown
//! once, when created; the store keeps only its SHA-256 digest and its [`TokenId`], the
//! first 8 characters after `dplu_`, which tells tokens apart in listings and names one to
//! revoke. A presented token is looked up by its id (read from its own text) and its digest
//! is then compared with the stored one in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};

use crate::{Secret, TokenHash};

/// What every API token starts with.
pub const API_TOKEN_PREFIX: &str = "dplu_";

const TOKEN_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;
const ID_LEN: usize = 8;

/// A freshly generated API token. `Debug` and `Display` print `***`; the text is reached
/// through [`secret`](Self::secret), once, to hand it to its user.
#[derive(Clone)]
pub struct ApiToken(Secret);

impl ApiToken {
    /// A new token from 32 bytes of the operating system's random generator.
    ///
    /// # Panics
    ///
    /// When the operating system's generator fails, which leaves nothing safe to fall back on.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random generator failed");
        Self(Secret::new(format!("{API_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// The token text (`dplu_...`).
    pub fn secret(&self) -> &Secret {
        &self.0
    }

    /// Its public id: the first 8 characters after `dplu_`.
    pub fn id(&self) -> TokenId {
        id_of(self.0.expose())
    }

    /// The digest to store in place of the token.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The public id of an API token: 8 characters of base64url, not secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(String);

impl TokenId {
    /// An id as given by a caller (`deeplo tokens revoke ID`); `None` unless it has the shape
    /// of one (8 base64url characters), so that nothing else is ever looked up or logged.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == ID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The public id of a [`well_formed`] token's text.
pub(super) fn id_of(token: &str) -> TokenId {
    TokenId(token[API_TOKEN_PREFIX.len()..API_TOKEN_PREFIX.len() + ID_LEN].to_owned())
}

/// Whether `presented` has the shape of an API token: `dplu_` and 43 characters of
/// base64url without padding that decode to 32 bytes.
pub fn well_formed(presented: &str) -> bool {
    let Some(encoded) = presented.strip_prefix(API_TOKEN_PREFIX) else {
        return false;
    };
    encoded.len() == ENCODED_LEN && URL_SAFE_NO_PAD.decode(encoded).is_ok_and(|b| b.len() == TOKEN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_id_and_redaction() {
        let token = ApiToken::generate();
        let text = token.secret().expose();
        assert!(text.starts_with("dplu_") && text.len() == 48, "{text}");
        assert!(well_formed(text));
        assert_eq!(token.id().as_str(), &text[5..13]);
        assert_eq!(TokenId::parse(token.id().as_str()), Some(token.id()));
        assert_eq!(format!("{token:?} {token}"), "ApiToken(***) ***");
        assert_ne!(ApiToken::generate().secret().expose(), text);
    }

    #[test]
    fn malformed() {
        let token = ApiToken::generate();
        let text = token.secret().expose();
        assert!(!well_formed(&text.replacen("dplu_", "dplr_", 1)));
        assert!(!well_formed(&text[..47]));
        assert!(!well_formed(&format!("{text}A")));
        assert!(!well_formed(&text.replacen(&text[5..6], "*", 1)));
        assert!(TokenId::parse("abc").is_none());
        assert!(TokenId::parse("abcd/../").is_none());
    }
}
