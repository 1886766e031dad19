//! `.dockerignore`: which files of an application's directory make its build context, read
//! as Docker reads it, so that what is ignored never leaves deeplo's machine.
//!
//! One pattern per line; `#` starts a comment line; a leading `!` makes an exception; a
//! leading `/` is dropped; `*` and `?` stay within one path segment and `**` spans any
//! number; a pattern that matches a directory excludes everything under it; the last
//! pattern that matches a path decides. The Dockerfile and the ignore file itself are
//! always sent (the builder needs them), as Docker does. A `<Dockerfile>.dockerignore`
//! beside the Dockerfile takes the place of the context's `.dockerignore`, as BuildKit's.

use globset::{GlobBuilder, GlobMatcher};

use crate::path::RelPath;
use crate::source::Bundle;
use crate::{Error, ErrorKind, Result};

struct Pattern {
    matcher: GlobMatcher,
    exception: bool,
}

/// The ignore file that applies to `dockerfile`: its own one, else the context's.
pub(crate) fn ignore_file(bundle: &Bundle, dockerfile: &RelPath) -> Option<(String, String)> {
    let own = format!("{}.dockerignore", dockerfile.as_str());
    for name in [own.as_str(), ".dockerignore"] {
        if let Some(crate::source::BundleEntry { kind: crate::source::EntryKind::File { data, .. }, .. }) =
            bundle.get(name)
        {
            return Some((name.to_owned(), String::from_utf8_lossy(data).into_owned()));
        }
    }
    None
}

/// Removes from `bundle` what its ignore file excludes; returns how many entries went.
pub(crate) fn filter(bundle: &mut Bundle, dockerfile: &RelPath) -> Result<usize> {
    let Some((name, text)) = ignore_file(bundle, dockerfile) else {
        return Ok(0);
    };
    let patterns = parse(&text).map_err(|e| Error::new(ErrorKind::InvalidInput, "extract", format!("{name}: {e}")))?;
    let before = bundle.entries.len();
    bundle.entries.retain(|e| {
        let path = e.path.as_str();
        path == dockerfile.as_str() || path == name || !excluded(&patterns, path)
    });
    Ok(before - bundle.entries.len())
}

fn parse(text: &str) -> std::result::Result<Vec<Pattern>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (exception, pattern) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let pattern = clean(pattern);
        if pattern.is_empty() {
            continue;
        }
        let glob = GlobBuilder::new(&pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("line {}: invalid pattern {line:?}: {}", n + 1, e.kind()))?;
        out.push(Pattern { matcher: glob.compile_matcher(), exception });
    }
    Ok(out)
}

/// A pattern as Docker cleans it: no leading `/` or `./`, no trailing `/`, no `.` segments.
fn clean(pattern: &str) -> String {
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    segments.join("/")
}

/// Whether the last pattern that matches `path` or one of its parent directories excludes it.
fn excluded(patterns: &[Pattern], path: &str) -> bool {
    let mut prefixes: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
    prefixes.push(path);
    let mut out = false;
    for p in patterns {
        if prefixes.iter().any(|prefix| p.matcher.is_match(prefix)) {
            out = !p.exception;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CommitId;
    use crate::source::{BundleEntry, EntryKind};

    fn bundle(files: &[(&str, &str)]) -> Bundle {
        let entries = files
            .iter()
            .map(|(p, data)| BundleEntry {
                path: RelPath::new(p).unwrap(),
                kind: EntryKind::File { data: bytes::Bytes::copy_from_slice(data.as_bytes()), executable: false },
            })
            .collect();
        Bundle { commit: CommitId::new("a".repeat(40)).unwrap(), entries }
    }

    fn kept(b: &Bundle) -> Vec<&str> {
        b.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn patterns_exceptions_directories_and_the_last_match() {
        let ignore = "# build output\n/target\n*.log\n**/secret*\nnode_modules/\ndocs\n!docs/keep.md\n";
        let mut b = bundle(&[
            (".dockerignore", ignore),
            ("Dockerfile", "FROM scratch"),
            ("app.log", ""),
            ("src/main.rs", ""),
            ("src/debug.log", ""),
            ("src/deep/secret.txt", ""),
            ("target/debug/app", ""),
            ("web/node_modules/x.js", ""),
            ("node_modules/y.js", ""),
            ("docs/a.md", ""),
            ("docs/keep.md", ""),
        ]);
        let removed = filter(&mut b, &RelPath::new("Dockerfile").unwrap()).unwrap();
        assert_eq!(
            kept(&b),
            [".dockerignore", "Dockerfile", "src/main.rs", "src/debug.log", "web/node_modules/x.js", "docs/keep.md"]
        );
        assert_eq!(removed, 5);
    }

    #[test]
    fn the_dockerfile_and_ignore_file_are_always_sent() {
        let mut b = bundle(&[(".dockerignore", "*\n"), ("Dockerfile", ""), ("a", "")]);
        filter(&mut b, &RelPath::new("Dockerfile").unwrap()).unwrap();
        assert_eq!(kept(&b), [".dockerignore", "Dockerfile"]);
    }

    #[test]
    fn a_dockerfile_own_ignore_file_takes_the_place_of_the_context_one() {
        let files = [
            (".dockerignore", "a\n"),
            ("docker/web.Dockerfile", ""),
            ("docker/web.Dockerfile.dockerignore", "b\n"),
            ("a", ""),
            ("b", ""),
        ];
        let mut b = bundle(&files);
        filter(&mut b, &RelPath::new("docker/web.Dockerfile").unwrap()).unwrap();
        assert_eq!(kept(&b), [".dockerignore", "docker/web.Dockerfile", "docker/web.Dockerfile.dockerignore", "a"]);
    }

    #[test]
    fn no_ignore_file_keeps_everything_and_a_bad_pattern_is_named() {
        let mut b = bundle(&[("Dockerfile", ""), ("a", "")]);
        assert_eq!(filter(&mut b, &RelPath::new("Dockerfile").unwrap()).unwrap(), 0);
        let mut b = bundle(&[(".dockerignore", "ok\n[z-a\n"), ("Dockerfile", "")]);
        let err = filter(&mut b, &RelPath::new("Dockerfile").unwrap()).unwrap_err();
        assert!(err.message().contains(".dockerignore: line 2"), "{err}");
    }
}
