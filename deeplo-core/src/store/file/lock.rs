//! One process per data directory.
//!
//! Two daemons writing the same records would undo each other's index, and a run marked
//! interrupted by one could still be going in the other. The store therefore takes an
//! exclusive, non-blocking `flock` on `deeplo.lock` (the file the Go tool locks too, so the
//! two exclude each other as well) and holds it until it is dropped. The lock belongs to the
//! open file, so a second open in the same process is refused like one in another process.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::fsio::private_file;
use crate::{Error, ErrorKind, Result};

/// The held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    pub(super) fn acquire(path: &Path) -> Result<Self> {
        let mut file = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("lock data directory", path.display(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                };
                return Err(Error::new(
                    ErrorKind::Locked,
                    "lock data directory",
                    format!(
                        "{} is locked by another deeplo process{holder}: only one daemon may use a data \
                         directory; stop it or point DEEPLO_DATA_DIR elsewhere",
                        path.display()
                    ),
                )
                .with_path(path.display()));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock data directory", path.display(), e)),
        }
        // Who holds the lock, for the message above; the lock itself does not depend on it.
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| Error::io("lock data directory", path.display(), e))?;
        Ok(Self { _file: file, path: path.to_path_buf() })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deeplo.lock");
        let first = DirLock::acquire(&path).unwrap();
        let err = DirLock::acquire(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.to_string().contains("deeplo.lock"), "{err}");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        DirLock::acquire(&path).unwrap();
    }
}
