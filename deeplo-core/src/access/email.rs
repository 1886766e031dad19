//! Users' email addresses: the one identity of a user across organizations.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest address accepted (the limit of SMTP's forward path).
pub const MAX_EMAIL_LEN: usize = 254;

/// An address that cannot be a user's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid email address {given:?}: {why}")]
pub struct InvalidEmail {
    /// The address as given.
    pub given: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// A normalised email address: trimmed and lowercased, so that `Ada@Example.com ` and
/// `ada@example.com` are one user. Exactly one `@` with text on both sides, a dot-free or
/// dotted domain without empty labels, no whitespace or control characters, at most
/// [`MAX_EMAIL_LEN`] characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Normalises and validates an address.
    ///
    /// # Errors
    ///
    /// [`InvalidEmail`] saying what is wrong.
    pub fn new(given: &str) -> Result<Self, InvalidEmail> {
        let fail = |why| Err(InvalidEmail { given: given.to_owned(), why });
        let email = given.trim().to_lowercase();
        if email.is_empty() {
            return fail("it is empty");
        }
        if email.len() > MAX_EMAIL_LEN {
            return fail("it is longer than 254 characters");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("it holds whitespace or a control character");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return fail("it has no '@'");
        };
        if domain.contains('@') {
            return fail("it has more than one '@'");
        }
        if local.is_empty() || domain.is_empty() {
            return fail("it needs text on both sides of the '@'");
        }
        if domain.split('.').any(str::is_empty) {
            return fail("its domain has an empty label");
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Email {
    type Err = InvalidEmail;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised() {
        assert_eq!(Email::new("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        assert_eq!(Email::new("ada@example.com").unwrap(), Email::new("ADA@example.com").unwrap());
        assert!(Email::new("ci+deploy@localhost").is_ok());
    }

    #[test]
    fn refused_with_a_reason() {
        for (bad, why) in [
            ("", "it is empty"),
            ("ada", "it has no '@'"),
            ("a@b@c", "it has more than one '@'"),
            ("@example.com", "it needs text on both sides of the '@'"),
            ("ada@", "it needs text on both sides of the '@'"),
            ("ada@example..com", "its domain has an empty label"),
            ("a da@example.com", "it holds whitespace or a control character"),
        ] {
            assert_eq!(Email::new(bad).unwrap_err().why, why, "{bad}");
        }
        assert!(Email::new(&format!("{}@x.io", "a".repeat(250))).is_err());
    }
}
