//! The master key: 32 random bytes in a file of its own, and the AEAD that seals a value
//! with it.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind, Result};

/// What a key file starts with: the format, so that another file is not taken for a key.
const HEADER: &str = "deeplo-secrets-key-v1";

/// A master key. `Debug` shows only its id.
pub struct MasterKey {
    key: Key,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// A value sealed under a master key: its nonce and the ciphertext with its tag, both base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// 24 random bytes.
    pub nonce: String,
    /// The value encrypted, followed by its 16-byte tag.
    pub ciphertext: String,
}

impl MasterKey {
    /// A new key from the operating system's generator.
    ///
    /// # Panics
    ///
    /// When the operating system's generator fails, which leaves nothing safe to fall back on.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random generator failed");
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new().chain_update(b"deeplo master key id\0").chain_update(bytes).finalize();
        Self { key: Key::from(bytes), id: hex::encode(&digest[..8]) }
    }

    /// Tells keys apart (in the store, next to what it sealed) without saying anything of
    /// the key: 16 hex digits of a SHA-256 of it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key in `path`, `None` when there is no such file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a file that is not a key (naming it), [`ErrorKind::Io`] when
    /// it cannot be read.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read the secrets key", path.display(), e)),
        };
        let bad = || {
            Error::new(
                ErrorKind::Config,
                "read the secrets key",
                format!("{} is not a deeplo secrets key (`{HEADER} <base64 of 32 bytes>`)", path.display()),
            )
        };
        let encoded = text.trim().strip_prefix(HEADER).ok_or_else(bad)?.trim();
        let bytes: [u8; 32] = STANDARD.decode(encoded).ok().and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
        Ok(Some(Self::from_bytes(bytes)))
    }

    /// Writes the key to a new file `path`, mode 0600, synced to disk.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when the file exists already or cannot be written.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let io = |e| Error::io("write the secrets key", path.display(), e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
        writeln!(file, "{HEADER} {}", STANDARD.encode(self.key.as_slice())).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Seals `value`, bound to `project` and `name`: opened with another project or name,
    /// or under another key, it fails.
    pub fn seal(&self, project: &str, name: &str, value: &str) -> Sealed {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.try_fill_bytes(&mut nonce).expect("the operating system's random generator failed");
        let aad = associated_data(project, name);
        let ciphertext = XChaCha20Poly1305::new(&self.key)
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value.as_bytes(), aad: &aad })
            .expect("sealing a value of any size under a valid key cannot fail");
        Sealed { nonce: STANDARD.encode(nonce), ciphertext: STANDARD.encode(ciphertext) }
    }

    /// Opens what [`seal`](Self::seal) sealed for `project` and `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] naming the project and variable (never the value) when the value
    /// was sealed for another project or name, under another key, or was altered.
    pub fn open(&self, project: &str, name: &str, sealed: &Sealed) -> Result<String> {
        let refused = || {
            Error::new(
                ErrorKind::Store,
                "open a secret",
                format!(
                    "the value of {name} in project {project} does not open under key {}: it was sealed for \
                     another project or name, under another key, or altered",
                    self.id
                ),
            )
        };
        let nonce: [u8; 24] =
            STANDARD.decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(refused)?;
        let ciphertext = STANDARD.decode(&sealed.ciphertext).map_err(|_| refused())?;
        let aad = associated_data(project, name);
        let plain = XChaCha20Poly1305::new(&self.key)
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &aad })
            .map_err(|_| refused())?;
        String::from_utf8(plain).map_err(|_| refused())
    }
}

/// What a value is bound to: the format, its project and its name, each ended by a NUL
/// (neither a project nor a variable name holds one).
fn associated_data(project: &str, name: &str) -> Vec<u8> {
    let mut aad = b"deeplo env v1\0".to_vec();
    aad.extend_from_slice(project.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_where_it_was_sealed() {
        let key = MasterKey::generate();
        let sealed = key.seal("web", "DATABASE_URL", "postgres://u:p@db/x");
        assert_eq!(key.open("web", "DATABASE_URL", &sealed).unwrap(), "postgres://u:p@db/x");
        assert!(!sealed.ciphertext.contains("postgres"));
        for (project, name) in [("api", "DATABASE_URL"), ("web", "OTHER"), ("we", "bDATABASE_URL")] {
            let err = key.open(project, name, &sealed).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Store);
            assert!(!err.to_string().contains("postgres"), "{err}");
        }
        assert!(MasterKey::generate().open("web", "DATABASE_URL", &sealed).is_err(), "another key");
        let mut altered = sealed.clone();
        altered.ciphertext.replace_range(0..2, if altered.ciphertext.starts_with("AA") { "AB" } else { "AA" });
        assert!(key.open("web", "DATABASE_URL", &altered).is_err(), "altered");
        // Two seals of one value differ (random nonces).
        assert_ne!(key.seal("web", "A", "v"), key.seal("web", "A", "v"));
    }

    #[test]
    fn a_key_file_reads_back_and_a_stranger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secrets.key");
        assert!(MasterKey::read(&path).unwrap().is_none());
        let key = MasterKey::generate();
        key.write_new(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = MasterKey::read(&path).unwrap().unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(format!("{again:?}"), format!("MasterKey({})", key.id()));
        assert!(key.write_new(&path).is_err(), "never overwritten");
        std::fs::write(dir.path().join("other"), "hello").unwrap();
        let err = MasterKey::read(&dir.path().join("other")).unwrap_err();
        assert!(err.to_string().contains("is not a deeplo secrets key"), "{err}");
    }
}
