//! `watch_paths`: glob patterns over repository paths, compiled once at config load.
//!
//! Semantics (tested below, case by case): `**` matches zero or more whole segments, so
//! `services/**` matches `services` itself and `a/**/b` matches `a/b`; `*` and `?` never
//! cross a `/`; character classes work and a broken one is a config error.

use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// A compiled list of patterns (a project's `watch_paths`). An empty list matches every
/// path. Build it with [`WatchPaths::new`]; the config does it at load.
#[derive(Clone)]
pub struct WatchPaths {
    patterns: Vec<String>,
    set: GlobSet,
}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {pattern:?}: {reason}")]
pub struct InvalidGlob {
    /// Index of the pattern in the list.
    pub index: usize,
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it, from the glob compiler (`unclosed character class`...).
    pub reason: String,
}

impl Default for WatchPaths {
    /// The empty list: every path is watched.
    fn default() -> Self {
        Self { patterns: Vec::new(), set: GlobSet::empty() }
    }
}

impl WatchPaths {
    /// Compiles every pattern and reports each one that fails.
    ///
    /// # Errors
    ///
    /// One [`InvalidGlob`] per pattern that does not compile, in list order.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, Vec<InvalidGlob>> {
        let mut builder = GlobSetBuilder::new();
        let mut errors = Vec::new();
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            for variant in variants(pattern) {
                match GlobBuilder::new(&variant).literal_separator(true).backslash_escape(true).build() {
                    Ok(glob) => {
                        builder.add(glob);
                    }
                    Err(err) => {
                        errors.push(InvalidGlob { index, pattern: pattern.to_owned(), reason: err.kind().to_string() });
                        break;
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let set = builder
            .build()
            .map_err(|err| vec![InvalidGlob { index: 0, pattern: String::new(), reason: err.to_string() }])?;
        Ok(Self { patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(), set })
    }

    /// The patterns as written (after `${VAR}` expansion).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether the list is empty (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the repository root) is watched.
    pub fn matches(&self, path: &str) -> bool {
        self.patterns.is_empty() || self.set.is_match(path.trim_start_matches("./"))
    }

    /// Whether any of `paths` is watched.
    pub fn matches_any<S: AsRef<str>>(&self, paths: &[S]) -> bool {
        self.patterns.is_empty() || paths.iter().any(|p| self.matches(p.as_ref()))
    }
}

/// The globs one pattern compiles to: `dir/**` also matches `dir` itself, which globset
/// alone does not do; a leading `./` is dropped.
fn variants(pattern: &str) -> Vec<String> {
    let pattern = pattern.trim_start_matches("./");
    let mut out = vec![pattern.to_owned()];
    if let Some(dir) = pattern.strip_suffix("/**")
        && !dir.is_empty()
    {
        out.push(dir.to_owned());
    }
    out
}

impl fmt::Debug for WatchPaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WatchPaths").field(&self.patterns).finish()
    }
}

impl PartialEq for WatchPaths {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Serialize for WatchPaths {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(s)
    }
}

/// Compiles the patterns again, as [`WatchPaths::new`] does.
impl<'de> Deserialize<'de> for WatchPaths {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let patterns = Vec::<String>::deserialize(d)?;
        Self::new(&patterns).map_err(|errors| {
            let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(shown.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, path: &str, want: bool) {
        let w = WatchPaths::new(&[pattern]).unwrap();
        assert_eq!(w.matches(path), want, "{pattern:?} vs {path:?}");
    }

    #[test]
    fn double_star_is_zero_or_more_segments() {
        let table = [
            ("services/**", "services", true),
            ("services/**", "services/a", true),
            ("services/**", "services/a/b/c.yml", true),
            ("services/**", "servicesx", false),
            ("services/**", "servicesx/a", false),
            ("services/**", "other/services/a", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/xb", false),
            ("**/*.yaml", "x.yaml", true),
            ("**/*.yaml", "d/x.yaml", true),
            ("**/*.yaml", "d/e/x.yaml", true),
            ("**/*.yaml", "x.yml", false),
            ("**", "anything/at/all", true),
        ];
        for (p, path, want) in table {
            check(p, path, want);
        }
    }

    #[test]
    fn single_star_and_question_stay_in_one_segment() {
        let table = [
            ("*.yaml", "x.yaml", true),
            ("*.yaml", "sub/x.yaml", false),
            ("?.go", "a.go", true),
            ("?.go", "ab.go", false),
            ("?.go", "/.go", false),
            ("deploy/*", "deploy/compose.yml", true),
            ("deploy/*", "deploy/sub/compose.yml", false),
            ("a*/b", "ax/b", true),
            ("a*/b", "a/x/b", false),
        ];
        for (p, path, want) in table {
            check(p, path, want);
        }
    }

    #[test]
    fn character_classes() {
        check("apps/[ab]/**", "apps/a/x", true);
        check("apps/[ab]/**", "apps/c/x", false);
        check("apps/[!ab]/x", "apps/c/x", true);
        check("v[0-9].txt", "v7.txt", true);
        check("v[0-9].txt", "vx.txt", false);
    }

    #[test]
    fn broken_class_is_an_error_naming_the_pattern() {
        let errs = WatchPaths::new(&["ok/**", "apps/[x"]).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].index, 1);
        assert_eq!(errs[0].pattern, "apps/[x");
        assert!(errs[0].to_string().starts_with("invalid glob \"apps/[x\": "), "{}", errs[0]);
    }

    #[test]
    fn empty_list_matches_everything() {
        let w = WatchPaths::new::<&str>(&[]).unwrap();
        assert!(w.matches("any/path"));
        assert!(w.matches_any::<&str>(&[]));
    }

    #[test]
    fn literal_paths_and_dot_slash() {
        check("deploy/compose.yml", "deploy/compose.yml", true);
        check("./deploy/**", "deploy/x", true);
        check("deploy/compose.yml", "deploy/compose.yaml", false);
    }
}
