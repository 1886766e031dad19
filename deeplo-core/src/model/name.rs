//! Validated names for hosts, repos and projects.
//!
//! Names end up in remote paths, compose project names, file names in the data directory and
//! log lines, so they are restricted to a set that is safe in all of them without quoting:
//! ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most
//! [`MAX_NAME_LEN`] characters.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest name accepted, in bytes (names are ASCII, so also in characters).
pub const MAX_NAME_LEN: usize = 128;

/// A sentence that says which names are allowed, for error messages.
pub(crate) const NAME_RULE: &str =
    "use ASCII letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters";

/// Why a name was refused; its message says which names are allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {name:?}: {NAME_RULE}")]
pub struct InvalidName {
    /// The refused name, as given.
    pub name: String,
}

/// Checks a name against [`NAME_RULE`].
pub(crate) fn validate_name(name: &str) -> Result<(), InvalidName> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && name.len() <= MAX_NAME_LEN { Ok(()) } else { Err(InvalidName { name: name.to_owned() }) }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            ///
            /// [`InvalidName`] unless the name is 1 to [`MAX_NAME_LEN`] ASCII letters,
            /// digits, `.`, `_` and `-`, starting with a letter or digit.
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
                let name = name.into();
                validate_name(&name)?;
                Ok(Self(name))
            }

            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The name of a host (`hosts[].name`).
    HostName
);
name_type!(
    /// The name of a repository entry (`repos[].name`).
    RepoName
);
name_type!(
    /// The name of a project (`projects[].name`).
    ProjectName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_names() {
        for ok in ["web-1", "a", "A.b_c-d", "9lives", &"x".repeat(128)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_unsafe_names() {
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "_x",
            ".hidden",
            "a b",
            "a/b",
            "$(touch /tmp/x)",
            "a'b",
            "a\"b",
            "a;b",
            "a\nb",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deserialize_validates() {
        let ok: HostName = serde_json::from_str("\"web-1\"").unwrap();
        assert_eq!(ok, "web-1");
        let err = serde_json::from_str::<HostName>("\"a b\"").unwrap_err();
        assert!(err.to_string().contains("invalid name"), "{err}");
    }
}
