//! Commit ids.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits. `Display` shows it
/// whole, `Debug` only its [`short`](Self::short) form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CommitId(String);

/// Why a commit id was refused; holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid commit id {0:?}: expected 40 or 64 hexadecimal digits")]
pub struct InvalidCommitId(
    /// The refused text.
    pub String,
);

impl CommitId {
    /// Parses a full commit id; upper-case hex is accepted and stored lower-case.
    ///
    /// # Errors
    ///
    /// [`InvalidCommitId`] unless `id` is exactly 40 or 64 hex digits (an abbreviation or a
    /// branch name is refused; resolve it through the [`Source`](crate::Source) first).
    pub fn new(id: impl AsRef<str>) -> Result<Self, InvalidCommitId> {
        let id = id.as_ref();
        if (id.len() == 40 || id.len() == 64) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(id.to_ascii_lowercase()))
        } else {
            Err(InvalidCommitId(id.to_owned()))
        }
    }

    /// The full id, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first eight digits, as shown to people.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }

    /// Whether `prefix` (at least 4 hex digits) abbreviates this id.
    pub fn starts_with(&self, prefix: &str) -> bool {
        prefix.len() >= 4 && self.0.starts_with(&prefix.to_ascii_lowercase())
    }
}

/// Whether `s` looks like an abbreviated or full commit id (4 to 64 hex digits), to tell a
/// commit given by a user from a branch name. A branch may also look like one (`cafe`).
pub fn is_commit_prefix(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitId({})", self.short())
    }
}

impl std::str::FromStr for CommitId {
    type Err = InvalidCommitId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for CommitId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_ids_only() {
        let id = CommitId::new("A".repeat(40)).unwrap();
        assert_eq!(id.as_str(), "a".repeat(40));
        assert_eq!(id.short(), "aaaaaaaa");
        assert!(CommitId::new("a".repeat(64)).is_ok());
        for bad in ["", "abc", &"g".repeat(40), &"a".repeat(41)] {
            assert!(CommitId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        let id = CommitId::new(format!("deadbeef{}", "0".repeat(32))).unwrap();
        assert!(id.starts_with("DEADbe"));
        assert!(!id.starts_with("dea"));
        assert!(is_commit_prefix("dead"));
        assert!(!is_commit_prefix("main"));
    }
}
