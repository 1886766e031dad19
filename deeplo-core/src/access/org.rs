//! Organization names: slugs that are safe in URLs, file names and log lines as they are.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The organization of every host, repo and project that names none.
pub const DEFAULT_ORG: &str = "default";

/// The longest organization name, in characters.
pub const MAX_ORG_LEN: usize = 63;

/// An organization name that is not a slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid organization name {0:?}: use 1 to 63 lowercase ASCII letters, digits and '-', starting and ending with a letter or digit"
)]
pub struct InvalidOrgName(pub String);

/// A validated organization name: lowercase ASCII letters, digits and `-`, 1 to
/// [`MAX_ORG_LEN`] characters, starting and ending with a letter or digit (`acme`,
/// `team-7`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OrgName(String);

impl OrgName {
    /// Validates and wraps a name.
    ///
    /// # Errors
    ///
    /// [`InvalidOrgName`] for anything but a slug.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidOrgName> {
        let name = name.into();
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let body = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if name.len() <= MAX_ORG_LEN && body && edge(name.chars().next()) && edge(name.chars().last()) {
            Ok(Self(name))
        } else {
            Err(InvalidOrgName(name))
        }
    }

    /// The organization every unassigned resource is in.
    pub fn default_org() -> Self {
        Self(DEFAULT_ORG.to_owned())
    }

    /// Whether it is [`DEFAULT_ORG`].
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_ORG
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for OrgName {
    fn default() -> Self {
        Self::default_org()
    }
}

impl fmt::Display for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for OrgName {
    type Err = InvalidOrgName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for OrgName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_only() {
        for good in ["default", "acme", "team-7", "a", "0", &"a".repeat(63)] {
            assert!(OrgName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme", "-acme", "acme-", "ac me", "acme/x", "ac.me", "ac_me", "é", &"a".repeat(64)] {
            assert_eq!(OrgName::new(bad), Err(InvalidOrgName(bad.to_owned())), "{bad}");
        }
        assert!(serde_json::from_str::<OrgName>("\"../x\"").is_err());
    }
}
