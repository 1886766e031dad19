//! OpenSSH `known_hosts` files: one implementation for every SSH client in deeplo (the
//! deploy transport and the git source), so that both refuse and learn keys the same way.
//!
//! Supported: plain and hashed (`|1|salt|hash`) host entries, `[host]:port` for ports other
//! than 22, `*`/`?` wildcards, `!` negation and `@revoked` lines. `@cert-authority` lines
//! are ignored (certificates are not supported). There is no mode that accepts any key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;

use crate::{Error, ErrorKind, Result};

/// What to do with a host whose key is not recorded yet (`DEEPLO_SSH_HOST_KEY_POLICY`). A
/// changed key is refused under both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Record an unknown host's key on first contact; refuse a changed key.
    #[default]
    AcceptNew,
    /// Refuse any host whose key is not already recorded.
    Strict,
}

impl HostKeyPolicy {
    /// The setting's value: `accept-new` or `strict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AcceptNew => "accept-new",
            Self::Strict => "strict",
        }
    }
}

impl std::str::FromStr for HostKeyPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "accept-new" => Ok(Self::AcceptNew),
            "strict" => Ok(Self::Strict),
            other => Err(format!("unknown host key policy {other:?}: use \"accept-new\" or \"strict\"")),
        }
    }
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public host key: its algorithm name and its SSH wire-format blob. `Debug` shows the
/// algorithm and the [`fingerprint`](Self::fingerprint).
#[derive(Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The key type as SSH names it: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `rsa-sha2-512`...
    pub algorithm: String,
    /// The public key in SSH wire format (what base64 encodes in a known_hosts line).
    pub blob: Vec<u8>,
}

impl HostKey {
    /// From the blob alone: the algorithm is the blob's leading string.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the blob does not start with a length-prefixed
    /// UTF-8 algorithm name.
    pub fn from_blob(blob: Vec<u8>) -> Result<Self> {
        let algorithm = blob
            .get(..4)
            .map(|len| u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
            .and_then(|len| blob.get(4..4 + len))
            .and_then(|name| std::str::from_utf8(name).ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "read host key", "malformed public key blob"))?;
        Ok(Self { algorithm, blob })
    }

    /// From OpenSSH text: `ssh-ed25519 AAAA... [comment]`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the line has fewer than two words or the key is not
    /// valid base64.
    pub fn from_openssh(line: &str) -> Result<Self> {
        let mut parts = line.split_whitespace();
        let (Some(algorithm), Some(data)) = (parts.next(), parts.next()) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "read host key",
                format!("not a public key line: {line:?}"),
            ));
        };
        let blob = STANDARD.decode(data).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "read host key", format!("bad base64 in public key: {e}"))
        })?;
        Ok(Self { algorithm: algorithm.to_owned(), blob })
    }

    /// `SHA256:<base64>`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", STANDARD_NO_PAD.encode(sha2::Sha256::digest(&self.blob)))
    }

    /// `algorithm base64`, the key part of a known_hosts line.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.algorithm, STANDARD.encode(&self.blob))
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({} {})", self.algorithm, self.fingerprint())
    }
}

/// What [`KnownHosts::verify`] concluded about an accepted key. More verdicts may be added
/// (certificates, for instance), so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key was already recorded for the host.
    Known,
    /// The host was unknown and its key has been recorded (accept-new).
    Learned,
}

/// A known_hosts file and the policy for hosts it does not list: what an SSH client calls to
/// accept or refuse a server's key ([`KnownHosts::verify`]). The file is read on every call,
/// so edits take effect at once; a missing file is an empty one.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    policy: HostKeyPolicy,
}

struct Entry {
    marker: Option<String>,
    patterns: String,
    key: HostKey,
}

impl KnownHosts {
    /// Uses the file at `path` (created, with its directory, when a key is first learned)
    /// under `policy`. Nothing is read until the first call.
    pub fn new(path: impl Into<PathBuf>, policy: HostKeyPolicy) -> Self {
        Self { path: path.into(), policy }
    }

    /// The known_hosts file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy for unknown hosts.
    pub fn policy(&self) -> HostKeyPolicy {
        self.policy
    }

    /// The algorithms recorded for `host:port`, in file order, so a client
    /// can prefer them in negotiation; empty for an unknown host.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when the file exists but cannot be read.
    pub fn algorithms(&self, host: &str, port: u16) -> Result<Vec<String>> {
        let mut algos: Vec<String> = self
            .entries()?
            .into_iter()
            .filter(|e| e.marker.is_none() && host_matches(&e.patterns, host, port))
            .map(|e| e.key.algorithm)
            .collect();
        algos.dedup();
        Ok(algos)
    }

    /// Accepts `key` for `host:port` or refuses it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::HostKey`] when the key is revoked, differs from a recorded key, or the
    /// host is unknown under the strict policy: the message names the host, the offered
    /// key's fingerprint and the file to edit. [`ErrorKind::Io`] when the file cannot be read
    /// or written.
    pub fn verify(&self, host: &str, port: u16, key: &HostKey) -> Result<Verdict> {
        let entries = self.entries()?;
        let matching: Vec<&Entry> = entries.iter().filter(|e| host_matches(&e.patterns, host, port)).collect();
        let shown = host_pattern(host, port);
        if matching.iter().any(|e| e.marker.as_deref() == Some("@revoked") && e.key == *key) {
            return Err(self.refusal(&shown, key, "the key is marked @revoked"));
        }
        let recorded: Vec<&Entry> = matching.into_iter().filter(|e| e.marker.is_none()).collect();
        if recorded.iter().any(|e| e.key == *key) {
            return Ok(Verdict::Known);
        }
        if !recorded.is_empty() {
            let known: Vec<String> =
                recorded.iter().map(|e| format!("{} {}", e.key.algorithm, e.key.fingerprint())).collect();
            return Err(self.refusal(
                &shown,
                key,
                &format!(
                    "it differs from the recorded key ({}); the host key changed or someone is intercepting the connection",
                    known.join(", ")
                ),
            ));
        }
        match self.policy {
            HostKeyPolicy::Strict => {
                Err(self.refusal(&shown, key, "the host is not in known_hosts and the policy is strict"))
            }
            HostKeyPolicy::AcceptNew => {
                self.learn(host, port, key)?;
                Ok(Verdict::Learned)
            }
        }
    }

    fn refusal(&self, shown: &str, key: &HostKey, why: &str) -> Error {
        Error::new(
            ErrorKind::HostKey,
            "verify host key",
            format!(
                "refusing {shown}: offered {} key {}: {why}; if the change is expected, edit {} (or run `ssh-keygen -R '{shown}' -f {}`)",
                key.algorithm,
                key.fingerprint(),
                self.path.display(),
                self.path.display()
            ),
        )
        .with_host(shown)
    }

    /// Appends a line for the host, under an exclusive lock, unless another process just did.
    fn learn(&self, host: &str, port: u16, key: &HostKey) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("create known_hosts directory", parent.display(), e))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path).map_err(|e| Error::io("open known_hosts", self.path.display(), e))?;
        file.lock().map_err(|e| Error::io("lock known_hosts", self.path.display(), e))?;
        let again = self.entries()?;
        if again.iter().any(|e| e.marker.is_none() && host_matches(&e.patterns, host, port) && e.key == *key) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut line = String::new();
        if !text.is_empty() && !text.ends_with('\n') {
            line.push('\n');
        }
        line.push_str(&format!("{} {}\n", host_pattern(host, port), key.to_openssh()));
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io("write known_hosts", self.path.display(), e))?;
        tracing::info!(host = %host_pattern(host, port), fingerprint = %key.fingerprint(), file = %self.path.display(), "recorded new host key");
        Ok(())
    }

    fn entries(&self) -> Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read known_hosts", self.path.display(), e)),
        };
        Ok(text.lines().filter_map(parse_line).collect())
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let m = first.to_owned();
        first = fields.next()?;
        Some(m)
    } else {
        None
    };
    let algorithm = fields.next()?;
    let data = fields.next()?;
    let blob = STANDARD.decode(data).ok()?;
    Some(Entry { marker, patterns: first.to_owned(), key: HostKey { algorithm: algorithm.to_owned(), blob } })
}

/// How OpenSSH names a host in known_hosts: `host` on port 22, `[host]:port` otherwise.
fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 { host.to_owned() } else { format!("[{host}]:{port}") }
}

fn host_matches(patterns: &str, host: &str, port: u16) -> bool {
    let name = host_pattern(host, port);
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, &name);
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, &name) {
                return false;
            }
        } else if wildcard(pattern, &name) {
            matched = true;
        }
    }
    matched
}

fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` and `?` wildcards, case-insensitive as OpenSSH host names are.
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests;
