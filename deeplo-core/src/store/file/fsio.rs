//! The few file operations the store is built on: private directories, atomic replacement,
//! reads that tell a missing file from a broken one.
//!
//! An atomic write goes to a temporary file in the same directory, is flushed to disk, renamed
//! over the target and the directory is flushed too: after a crash the target holds the old
//! contents or the new ones, never a mix. Temporary files carry [`TEMP_PREFIX`] so that the
//! next open can sweep what a crash left behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::{Error, ErrorKind, Result};

/// The start of every temporary file name.
pub(super) const TEMP_PREFIX: &str = ".deeplo-tmp-";

/// Creates a directory and its parents, readable by the owner only.
pub(super) fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| Error::io("create data directory", path.display(), e))
}

/// Options for a new file readable by the owner only.
pub(super) fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Replaces `path` with `data`, atomically and durably.
pub(super) fn write_atomic(path: &Path, data: &[u8], operation: &'static str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!("{TEMP_PREFIX}{name}-{:08x}", rand::random::<u32>()));
    let result = (|| -> io::Result<()> {
        let mut file = private_file().write(true).create_new(true).open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(operation, path.display(), e)
    })
}

/// Flushes a directory's entries (a rename or a removal) to disk.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a whole file; `None` when it does not exist.
pub(super) fn read_optional(path: &Path, operation: &'static str) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(operation, path, e.to_string()).with_source(e)),
    }
}

/// Removes a file; `false` when it was already gone.
pub(super) fn remove_if_present(path: &Path, operation: &'static str) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(operation, path.display(), e)),
    }
}

/// Removes the temporary files that an interrupted write left in `dir`.
pub(super) fn sweep_temp_files(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read data directory", dir.display(), e))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            remove_if_present(&entry.path(), "remove temporary file")?;
        }
    }
    Ok(())
}

/// The error for data the store cannot read: it names the file and says what is wrong.
pub(super) fn unreadable(operation: &'static str, path: &Path, problem: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Store, operation, format!("{}: {problem}", path.display())).with_path(path.display())
}

/// Pretty JSON, as people read these files too.
pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T, operation: &'static str) -> Result<Vec<u8>> {
    let mut data = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::new(ErrorKind::Store, operation, format!("cannot encode JSON: {e}")))?;
    data.push(b'\n');
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"one", "t").unwrap();
        write_atomic(&path, b"two", "t").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("x.json");
        let err = write_atomic(&path, b"one", "write record").unwrap_err();
        assert!(err.to_string().contains("missing/x.json"), "{err}");
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("{TEMP_PREFIX}a.json-1234")), b"x").unwrap();
        fs::write(dir.path().join("keep.json"), b"x").unwrap();
        sweep_temp_files(dir.path()).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("keep.json")]);
    }
}
