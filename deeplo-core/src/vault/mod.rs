//! The projects' environment values, sealed at rest: the [`EnvVault`].
//!
//! Each value is sealed with XChaCha20-Poly1305 under a master key that lives in a file of
//! its own (`DEEPLO_SECRETS_KEY_FILE`, created mode 0600 at first use), never in the store.
//! The associated data binds a value to its project and variable name, so a ciphertext
//! copied to another project or name, or altered, does not open. The store holds one
//! document ([`DOCUMENT`]): the id of the key that sealed it, and per project each
//! variable's nonce, ciphertext and the time it was set.
//!
//! Values leave the vault only as [`Secret`]s, for a deploy ([`EnvVault::values`]); the
//! listing shows names and dates alone.
//!
//! # Rotating the key
//!
//! [`EnvVault::rotate_key`] takes three steps, each one atomic on disk:
//!
//! 1. a new key is written to `KEYFILE.next`;
//! 2. every value is sealed again under it and the document saved at once, with the new
//!    key's id;
//! 3. `KEYFILE.next` is renamed over `KEYFILE`.
//!
//! Killed after 1, the document still names the old key, which the key file holds: nothing
//! changed (the next rotation writes a new `.next`). Killed after 2, the document names the
//! key in `.next`: the next use of the vault finishes step 3 before anything else. No value
//! is ever readable under neither file.
//!
//! ```
//! # async fn example() -> deeplo_core::Result<()> {
//! use std::sync::Arc;
//! use deeplo_core::{FileStore, vault::EnvVault};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(FileStore::open(&dir.path().join("store"), jiff::Timestamp::now())?);
//! let vault = EnvVault::new(store, dir.path().join("secrets.key"));
//! vault.set("web", &[("API_TOKEN".into(), "s3cret".into())], jiff::Timestamp::now()).await?;
//! let values = vault.values("web").await?;
//! assert_eq!(values[0].1.expose(), "s3cret");
//! assert_eq!(format!("{:?}", values[0].1), "***");
//! # Ok(())
//! # }
//! ```

mod key;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use key::{MasterKey, Sealed};

use crate::{Error, ErrorKind, Result, Secret, Store};

/// The name of the store document that holds the sealed values.
pub const DOCUMENT: &str = "env";

/// The longest value accepted (64 KiB): an environment variable, not a file store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// One variable as listings show it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvEntry {
    /// The variable's name.
    pub name: String,
    /// When its value was last set.
    pub set_at: Timestamp,
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotated {
    /// The id of the key before.
    pub old_key: String,
    /// The id of the key now.
    pub new_key: String,
    /// How many values were sealed again.
    pub values: usize,
}

/// The document as stored.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Document {
    /// The key that sealed every value; `None` while there are none.
    key_id: Option<String>,
    projects: BTreeMap<String, BTreeMap<String, StoredValue>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredValue {
    #[serde(flatten)]
    sealed: Sealed,
    set_at: Timestamp,
}

/// Where a rotation stops, for the tests of a rotation killed midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    NextKeyWritten,
    DocumentSaved,
    Done,
}

/// The projects' environment values in a store, sealed under the master key in `key_file`;
/// see the [module docs](self). Its read-modify-write cycles are serialized (one vault per
/// store, as for [`RunnerTokenStore`](crate::RunnerTokenStore)).
#[derive(Debug, Clone)]
pub struct EnvVault {
    store: Arc<dyn Store>,
    key_file: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl EnvVault {
    /// The vault in `store`, its key in `key_file` (created at first use).
    pub fn new(store: Arc<dyn Store>, key_file: impl Into<PathBuf>) -> Self {
        Self { store, key_file: key_file.into(), lock: Arc::new(Mutex::new(())) }
    }

    /// The master key file.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Sets each `(name, value)` of `project`, replacing an earlier value.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a name that is not an environment variable's
    /// (`[A-Za-z_][A-Za-z0-9_]*`) or a value over [`MAX_VALUE_BYTES`] or holding a NUL byte,
    /// naming the variable; store and key file errors.
    pub async fn set(&self, project: &str, values: &[(String, String)], now: Timestamp) -> Result<()> {
        for (name, value) in values {
            check_name(name)?;
            check_value(name, value)?;
        }
        let _guard = self.lock.lock().await;
        let (mut doc, key) = self.load().await?;
        let vars = doc.projects.entry(project.to_owned()).or_default();
        for (name, value) in values {
            vars.insert(name.clone(), StoredValue { sealed: key.seal(project, name, value), set_at: now });
        }
        doc.key_id = Some(key.id().to_owned());
        self.save(&doc).await
    }

    /// Removes the variables `names` of `project`; returns those that were set.
    ///
    /// # Errors
    ///
    /// Store and key file errors.
    pub async fn unset(&self, project: &str, names: &[String]) -> Result<Vec<String>> {
        let _guard = self.lock.lock().await;
        let (mut doc, _key) = self.load().await?;
        let mut removed = Vec::new();
        if let Some(vars) = doc.projects.get_mut(project) {
            for name in names {
                if vars.remove(name).is_some() {
                    removed.push(name.clone());
                }
            }
            if vars.is_empty() {
                doc.projects.remove(project);
            }
        }
        if !removed.is_empty() {
            self.save(&doc).await?;
        }
        Ok(removed)
    }

    /// The variables of `project`, by name: names and dates, never values.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn list(&self, project: &str) -> Result<Vec<EnvEntry>> {
        let doc = self.document().await?;
        Ok(doc
            .projects
            .get(project)
            .map(|vars| vars.iter().map(|(name, v)| EnvEntry { name: name.clone(), set_at: v.set_at }).collect())
            .unwrap_or_default())
    }

    /// Every value of `project`, opened, by name: what a deploy delivers.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when a value does not open (naming it, never its value); store
    /// and key file errors.
    pub async fn values(&self, project: &str) -> Result<Vec<(String, Secret)>> {
        let _guard = self.lock.lock().await;
        let doc = self.document().await?;
        // A project without values asks nothing of the key (nor creates one).
        let Some(vars) = doc.projects.get(project).filter(|vars| !vars.is_empty()) else { return Ok(Vec::new()) };
        let key = self.key_for(&doc)?;
        vars.iter().map(|(name, v)| Ok((name.clone(), Secret::new(key.open(project, name, &v.sealed)?)))).collect()
    }

    /// Seals every value again under a new master key and replaces the key file; safe to
    /// kill at any point (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// Store and key file errors, and a value that does not open under the current key
    /// (then nothing changes).
    pub async fn rotate_key(&self) -> Result<Rotated> {
        self.rotate_until(Until::Done).await
    }

    async fn rotate_until(&self, until: Until) -> Result<Rotated> {
        let _guard = self.lock.lock().await;
        let (mut doc, old) = self.load().await?;
        let new = MasterKey::generate();
        let next = self.next_key_file();
        match std::fs::remove_file(&next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("rotate the secrets key", next.display(), e));
            }
            _ => {}
        }
        new.write_new(&next)?;
        sync_dir(&self.key_file);
        if until == Until::NextKeyWritten {
            return Ok(Rotated { old_key: old.id().to_owned(), new_key: new.id().to_owned(), values: 0 });
        }
        let mut values = 0;
        for (project, vars) in &mut doc.projects {
            for (name, stored) in vars.iter_mut() {
                let value = old.open(project, name, &stored.sealed)?;
                stored.sealed = new.seal(project, name, &value);
                values += 1;
            }
        }
        doc.key_id = Some(new.id().to_owned());
        self.save(&doc).await?;
        let rotated = Rotated { old_key: old.id().to_owned(), new_key: new.id().to_owned(), values };
        if until == Until::DocumentSaved {
            return Ok(rotated);
        }
        self.finish_rotation()?;
        tracing::info!(old_key = %rotated.old_key, new_key = %rotated.new_key, values, "rotated the secrets key");
        Ok(rotated)
    }

    fn next_key_file(&self) -> PathBuf {
        let mut name = self.key_file.file_name().unwrap_or_default().to_os_string();
        name.push(".next");
        self.key_file.with_file_name(name)
    }

    /// Step 3 of a rotation: the new key replaces the old.
    fn finish_rotation(&self) -> Result<()> {
        std::fs::rename(self.next_key_file(), &self.key_file)
            .map_err(|e| Error::io("rotate the secrets key", self.key_file.display(), e))?;
        sync_dir(&self.key_file);
        Ok(())
    }

    async fn document(&self) -> Result<Document> {
        match self.store.load_document(DOCUMENT).await? {
            None => Ok(Document::default()),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                Error::new(ErrorKind::Store, "read the environment values", format!("the {DOCUMENT} document: {e}"))
            }),
        }
    }

    async fn save(&self, doc: &Document) -> Result<()> {
        let value = serde_json::to_value(doc).expect("the document serializes");
        self.store.save_document(DOCUMENT, &value).await
    }

    /// The document and the key that opens it (see [`key_for`](Self::key_for)).
    async fn load(&self) -> Result<(Document, MasterKey)> {
        let doc = self.document().await?;
        let key = self.key_for(&doc)?;
        Ok((doc, key))
    }

    /// The key that opens `doc`: the key file's, or the one a rotation left in `.next` (the
    /// rotation is then finished), or a new one when there is neither key nor value yet.
    fn key_for(&self, doc: &Document) -> Result<MasterKey> {
        let current = MasterKey::read(&self.key_file)?;
        let Some(wanted) = doc.key_id.as_deref() else {
            return self.current_or_new(current);
        };
        let found = current.as_ref().map_or_else(|| "no key file".to_owned(), |k| format!("key {}", k.id()));
        if let Some(key) = current.filter(|k| k.id() == wanted) {
            return Ok(key);
        }
        if let Some(next) = MasterKey::read(&self.next_key_file())?.filter(|k| k.id() == wanted) {
            tracing::warn!(key = %wanted, "finishing a key rotation that was interrupted");
            self.finish_rotation()?;
            return Ok(next);
        }
        Err(Error::new(
            ErrorKind::Config,
            "open the environment values",
            format!(
                "the store's values were sealed with key {wanted}, but {} holds {found}: restore the key file \
                 from its backup (DEEPLO_SECRETS_KEY_FILE)",
                self.key_file.display()
            ),
        ))
    }

    fn current_or_new(&self, current: Option<MasterKey>) -> Result<MasterKey> {
        if let Some(key) = current {
            return Ok(key);
        }
        let key = MasterKey::generate();
        key.write_new(&self.key_file)?;
        sync_dir(&self.key_file);
        tracing::warn!(
            file = %self.key_file.display(),
            key = %key.id(),
            "created the secrets key: back it up, the projects' environment values cannot be read without it"
        );
        Ok(key)
    }
}

/// Syncs the directory of `file`, so that a rename or creation in it survives a crash.
fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

/// Whether `name` is an environment variable's name.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] naming it.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let good = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if good {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "set an environment value",
            format!("{name:?} is not a variable name: letters, digits and `_`, not starting with a digit"),
        ))
    }
}

fn check_value(name: &str, value: &str) -> Result<()> {
    let problem = if value.len() > MAX_VALUE_BYTES {
        format!("the value of {name} is {} bytes, more than {MAX_VALUE_BYTES}", value.len())
    } else if value.contains('\0') {
        format!("the value of {name} holds a NUL byte, which no environment can carry")
    } else {
        return Ok(());
    };
    Err(Error::new(ErrorKind::InvalidInput, "set an environment value", problem))
}

#[cfg(test)]
mod tests;
