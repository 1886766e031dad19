//! Relative paths that cannot escape their base.
//!
//! Paths from the config and from repositories are joined onto remote deploy directories
//! and into bundles, so they are checked once, here: not absolute, no `..` segment, no NUL.
//! `.` segments, repeated slashes and a trailing slash are normalised away.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A normalised relative path with `/` separators; the empty path means "the base itself".
///
/// Built only by [`RelPath::new`] (or deserialized, which validates the same way), so it is
/// never absolute, never has a `..` segment or a NUL byte, and joining it onto a directory
/// never leaves that directory. `Display` shows the empty path as `.`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

/// Why a path was refused by [`RelPath::new`]; each variant holds the path as given. More
/// checks may be added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPath {
    /// It starts with `/`.
    #[error("{0:?} is absolute; use a path relative to its base")]
    Absolute(String),
    /// One of its segments is `..`.
    #[error("{0:?} has a '..' segment; paths may not leave their base directory")]
    ParentSegment(String),
    /// It contains a NUL byte.
    #[error("{0:?} holds a NUL byte")]
    Nul(String),
}

impl RelPath {
    /// The empty path.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Validates and normalises `path`: `.` segments, repeated slashes and a trailing slash
    /// are dropped (`./deploy//web/` becomes `deploy/web`; `.` and `""` become the root).
    ///
    /// # Errors
    ///
    /// [`InvalidPath`] when `path` is absolute, has a `..` segment or holds a NUL byte.
    pub fn new(path: &str) -> Result<Self, InvalidPath> {
        if path.contains('\0') {
            return Err(InvalidPath::Nul(path.to_owned()));
        }
        if path.starts_with('/') {
            return Err(InvalidPath::Absolute(path.to_owned()));
        }
        let mut segments = Vec::new();
        for segment in path.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(InvalidPath::ParentSegment(path.to_owned())),
                s => segments.push(s),
            }
        }
        Ok(Self(segments.join("/")))
    }

    /// The normalised path; empty for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty path, the base itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// `self/other`, either side possibly empty.
    pub fn join(&self, other: &RelPath) -> RelPath {
        match (self.is_root(), other.is_root()) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => RelPath(format!("{}/{}", self.0, other.0)),
        }
    }

    /// The path relative to `base` when it lies under it (or is it).
    pub fn strip_prefix(&self, base: &RelPath) -> Option<RelPath> {
        if base.is_root() {
            return Some(self.clone());
        }
        if self.0 == base.0 {
            return Some(RelPath::root());
        }
        self.0.strip_prefix(&base.0).and_then(|rest| rest.strip_prefix('/')).map(|rest| RelPath(rest.to_owned()))
    }

    /// Whether `self` is `base` or lies under it.
    pub fn starts_with(&self, base: &RelPath) -> bool {
        self.strip_prefix(base).is_some()
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The directory holding this path (empty for a top-level entry).
    pub fn parent(&self) -> RelPath {
        match self.0.rsplit_once('/') {
            Some((parent, _)) => RelPath(parent.to_owned()),
            None => RelPath::root(),
        }
    }
}

/// Validates like [`RelPath::new`]: a stored path is trusted no more than a configured one.
impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str(".") } else { f.write_str(&self.0) }
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelPath({:?})", self.0)
    }
}

/// Joins a relative path onto an absolute remote directory.
pub(crate) fn remote_join(base: &str, rel: &RelPath) -> String {
    let base = base.trim_end_matches('/');
    if rel.is_root() {
        if base.is_empty() { "/".to_owned() } else { base.to_owned() }
    } else {
        format!("{base}/{}", rel.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let cases = [
            ("", ""),
            (".", ""),
            ("./", ""),
            ("deploy/", "deploy"),
            ("./deploy//web/.", "deploy/web"),
            ("a b/$(x)", "a b/$(x)"),
        ];
        for (input, want) in cases {
            assert_eq!(RelPath::new(input).unwrap().as_str(), want, "{input:?}");
        }
    }

    #[test]
    fn refuses_escapes() {
        assert!(matches!(RelPath::new("/etc"), Err(InvalidPath::Absolute(_))));
        assert!(matches!(RelPath::new("a/../b"), Err(InvalidPath::ParentSegment(_))));
        assert!(matches!(RelPath::new(".."), Err(InvalidPath::ParentSegment(_))));
        assert!(matches!(RelPath::new("a\0b"), Err(InvalidPath::Nul(_))));
        // A segment that merely starts with dots is a file name, not a traversal.
        assert!(RelPath::new("..hidden/x").is_ok());
    }

    #[test]
    fn joins_and_strips() {
        let base = RelPath::new("deploy").unwrap();
        let file = RelPath::new("compose.yml").unwrap();
        let full = base.join(&file);
        assert_eq!(full.as_str(), "deploy/compose.yml");
        assert_eq!(full.strip_prefix(&base).unwrap(), file);
        assert!(RelPath::new("deployx/a").unwrap().strip_prefix(&base).is_none());
        assert_eq!(RelPath::root().join(&file), file);
        assert_eq!(full.parent(), base);
        assert_eq!(remote_join("/srv/apps/", &base), "/srv/apps/deploy");
        assert_eq!(remote_join("/srv", &RelPath::root()), "/srv");
    }
}
