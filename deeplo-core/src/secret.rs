//! Secrets: a type that never prints its value, and a redactor for text that might hold one.

use std::fmt;
use std::sync::Arc;

/// A secret value (token, webhook secret, passphrase). `Debug` and `Display` print `***`;
/// the value is reached only through [`Secret::expose`]. Cloning is cheap (shared).
///
/// Its `==` takes a time that depends only on the lengths of the two values (see
/// [`constant_time_eq`]), so comparing a secret with one taken from a request tells an
/// attacker nothing about how much of it was right.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Secret {}

/// Whether `a` and `b` hold the same bytes, in a time that depends only on their lengths
/// (every byte is compared, whatever the first difference): for tokens and digests taken
/// from requests. Different lengths are told apart at once; a length is not a secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Secret {
    /// Wraps a value, as given (no trimming).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// Reads a secret from a file, trimming surrounding whitespace (a trailing newline).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) or
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the file cannot be read (the error names
    /// it), [`ErrorKind::Config`](crate::ErrorKind::Config) when it holds only whitespace.
    pub fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| crate::Error::io("read secret file", path.display(), e))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(crate::Error::new(
                crate::ErrorKind::Config,
                "read secret file",
                format!("{} is empty", path.display()),
            ));
        }
        Ok(Self::new(value))
    }

    /// The value itself: only for the code that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replaces every known secret in a text with `***` (run logs, error messages). Values
/// shorter than 6 bytes are not masked, since they would mask ordinary words. `Debug` shows
/// only how many secrets it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
}

impl Redactor {
    /// A redactor for `secrets` (those shorter than 6 bytes are dropped).
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        // Short values would mask ordinary words; a real secret is never that short.
        let mut secrets: Vec<Secret> = secrets.into_iter().filter(|s| s.expose().len() >= 6).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        Self { secrets }
    }

    /// Adds one more secret to mask (ignored when shorter than 6 bytes).
    pub fn add(&mut self, secret: Secret) {
        let mut all = std::mem::take(&mut self.secrets);
        all.push(secret);
        *self = Self::new(all);
    }

    /// Whether it masks nothing, so that [`redact`](Self::redact) returns every text as is.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every occurrence of every secret replaced by `***`; borrowed when there
    /// is nothing to replace. A secret that contains another is masked whole.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if !self.secrets.iter().any(|s| text.contains(s.expose())) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = text.to_owned();
        for s in &self.secrets {
            out = out.replace(s.expose(), "***");
        }
        std::borrow::Cow::Owned(out)
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s, Secret::new(s.expose()));
        assert_ne!(s, Secret::new(format!("{}x", s.expose())));
        assert!(constant_time_eq(b"token-1", b"token-1"));
        assert!(!constant_time_eq(b"token-1", b"token-2"));
        assert!(!constant_time_eq(b"token", b"token-1"));
        assert!(constant_time_eq(b"", b""));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn redacts_every_occurrence() {
        let r = Redactor::new([Secret::new("tok_abcdef"), Secret::new("tok_abcdef_longer"), Secret::new("abc")]);
        assert_eq!(r.redact("a tok_abcdef_longer b tok_abcdef c abc"), "a *** b *** c abc");
        assert!(matches!(r.redact("nothing"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn from_file_trims_and_refuses_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "value123\n").unwrap();
        assert_eq!(Secret::from_file(&p).unwrap().expose(), "value123");
        std::fs::write(&p, "\n").unwrap();
        assert!(Secret::from_file(&p).unwrap_err().to_string().contains("is empty"));
    }
}
