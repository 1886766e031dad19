//! One bundle write: [`ToAgent::WriteBundle`](crate::protocol::ToAgent::WriteBundle) and its
//! entries, written on a blocking thread.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::protocol::{RequestId, ToDaemon};

/// An entry frame of a bundle, as the executor passes it on.
#[derive(Debug)]
pub(super) enum BundlePart {
    File { path: String, executable: bool },
    Data(Vec<u8>),
    Symlink { path: String, target: String },
    End,
}

/// Writes the bundle `id` under `dir` from `parts` and answers `BundleWritten`, or `Failed`
/// with the first error (once the end came, or at once when `parts` closes without it: a
/// cancel).
pub(super) async fn write(
    id: RequestId,
    dir: String,
    parts: mpsc::Receiver<BundlePart>,
    outgoing: mpsc::Sender<ToDaemon>,
) {
    let result = tokio::task::spawn_blocking(move || BundleWriter::new(PathBuf::from(dir)).write(parts)).await;
    let reply = match result {
        Ok(Ok(())) => ToDaemon::BundleWritten { id },
        Ok(Err(message)) => ToDaemon::Failed { id, message },
        Err(e) => ToDaemon::Failed { id, message: format!("the bundle writer stopped: {e}") },
    };
    let _ = outgoing.send(reply).await;
}

/// The file being written: its final path and the temporary file beside it.
struct OpenFile {
    path: PathBuf,
    partial: PathBuf,
    file: fs::File,
    mode: u32,
}

struct BundleWriter {
    dir: PathBuf,
    /// The symlinks this bundle wrote: a later entry never goes through one.
    links: HashSet<PathBuf>,
    open: Option<OpenFile>,
}

impl BundleWriter {
    fn new(dir: PathBuf) -> Self {
        Self { dir, links: HashSet::new(), open: None }
    }

    fn write(mut self, mut parts: mpsc::Receiver<BundlePart>) -> Result<(), String> {
        let mut first_error = DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.dir)
            .err()
            .map(|e| format!("cannot create {}: {e}", self.dir.display()));
        while let Some(part) = parts.blocking_recv() {
            let end = matches!(part, BundlePart::End);
            if first_error.is_none() {
                first_error = self.apply(part).err();
            }
            if end {
                self.discard();
                return first_error.map_or(Ok(()), Err);
            }
        }
        self.discard();
        Err(first_error.unwrap_or_else(|| "the bundle write was cancelled".into()))
    }

    /// Removes the temporary file of a write that failed or was abandoned.
    fn discard(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = fs::remove_file(&open.partial);
        }
    }

    fn apply(&mut self, part: BundlePart) -> Result<(), String> {
        match part {
            BundlePart::File { path, executable } => {
                self.finish()?;
                self.open_file(&path, if executable { 0o755 } else { 0o644 })
            }
            BundlePart::Data(data) => match &mut self.open {
                Some(open) => {
                    open.file.write_all(&data).map_err(|e| format!("cannot write {}: {e}", open.path.display()))
                }
                None => Err("bundle data before any file".into()),
            },
            BundlePart::Symlink { path, target } => {
                self.finish()?;
                self.symlink(&path, &target)
            }
            BundlePart::End => self.finish(),
        }
    }

    /// Creates the missing parents of `path` (a bundle path) and returns where it goes.
    /// A parent that is a symlink this bundle wrote is refused; one left by an earlier
    /// deploy is replaced by a directory, as the bundle now says.
    fn prepare(&self, path: &str) -> Result<PathBuf, String> {
        let mut current = self.dir.clone();
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            current.push(part);
            if parts.peek().is_none() {
                break;
            }
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if self.links.contains(&current) {
                        return Err(format!("{path}: its parent {} is a symlink of this bundle", current.display()));
                    }
                    fs::remove_file(&current).map_err(|e| io_error("remove", &current, &e))?;
                    make_dir(&current)?;
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(format!("{path}: its parent {} is not a directory", current.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_dir(&current)?,
                Err(e) => return Err(io_error("inspect", &current, &e)),
            }
        }
        Ok(current)
    }

    /// Opens a temporary file beside `path`; [`finish`](Self::finish) renames it over the
    /// path, which replaces whatever is there (a file or a symlink) without following it.
    fn open_file(&mut self, path: &str, mode: u32) -> Result<(), String> {
        let target = self.prepare(path)?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = target.with_file_name(format!(".{name}.deeplo-partial"));
        remove_if_present(&partial)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&partial)
            .map_err(|e| io_error("create", &partial, &e))?;
        self.open = Some(OpenFile { path: target, partial, file, mode });
        Ok(())
    }

    /// Closes the file being written, gives it its mode (whatever the umask) and moves it into
    /// place.
    fn finish(&mut self) -> Result<(), String> {
        let Some(open) = self.open.take() else { return Ok(()) };
        let OpenFile { path, partial, file, mode } = open;
        file.set_permissions(Permissions::from_mode(mode)).map_err(|e| io_error("chmod", &partial, &e))?;
        drop(file);
        fs::rename(&partial, &path).map_err(|e| io_error("replace", &path, &e))?;
        self.links.remove(&path);
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<(), String> {
        let link = self.prepare(path)?;
        remove_if_present(&link)?;
        std::os::unix::fs::symlink(target, &link).map_err(|e| io_error("create symlink", &link, &e))?;
        self.links.insert(link);
        Ok(())
    }
}

fn make_dir(path: &Path) -> Result<(), String> {
    DirBuilder::new().mode(0o755).create(path).map_err(|e| io_error("create", path, &e))?;
    fs::set_permissions(path, Permissions::from_mode(0o755)).map_err(|e| io_error("chmod", path, &e))
}

/// Removes a file or symlink at `path`; a directory there is an error (not deleted).
fn remove_if_present(path: &Path) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(format!("{} is a directory", path.display())),
        Ok(_) => fs::remove_file(path).map_err(|e| io_error("remove", path, &e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("inspect", path, &e)),
    }
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> String {
    format!("cannot {action} {}: {error}", path.display())
}
