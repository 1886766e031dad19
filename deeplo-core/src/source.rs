//! The git side of a deploy: where commits come from.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::config::Repo;
use crate::model::CommitId;
use crate::path::RelPath;

/// What to read from a commit for one project ([`Source::bundle`]); the fields borrow from
/// the project's config entry.
#[derive(Debug, Clone, Copy)]
pub struct BundleRequest<'a> {
    /// The project's directory in the repository; nothing outside it is read.
    pub subdir: &'a RelPath,
    /// Files relative to `subdir` that must exist (the compose files).
    pub required: &'a [RelPath],
    /// Files or directories relative to `subdir` (the extra files); a directory brings every
    /// file under it, and [`RelPath::root`] the whole of `subdir` (an application's build
    /// context). A missing one is an error too: the config names it.
    pub extra: &'a [RelPath],
}

/// What a [`BundleEntry`] is: the two kinds of git tree entry a deploy can carry.
///
/// Deliberately exhaustive: a [`Transport`](crate::Transport) must write every kind a bundle
/// holds, so a new kind should fail to compile in each transport rather than be skipped.
#[derive(Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File {
        /// The file's content.
        data: Bytes,
        /// Whether git stores it with mode 100755 (written with mode 0755, else 0644).
        executable: bool,
    },
    /// A symbolic link.
    Symlink {
        /// The link's target as stored in git (relative or absolute text); a target that
        /// leaves the project directory never reaches a bundle.
        target: String,
    },
}

impl fmt::Debug for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { data, executable } => {
                write!(f, "File({} bytes{})", data.len(), if *executable { ", executable" } else { "" })
            }
            Self::Symlink { target } => write!(f, "Symlink({target:?})"),
        }
    }
}

/// A file or symlink of a bundle, at a path relative to the project directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    /// Where the entry goes, relative to the project directory (no `..`, not absolute).
    pub path: RelPath,
    /// A file with its content, or a symlink with its target.
    pub kind: EntryKind,
}

/// The files of one project at one commit, read from the object database; paths are
/// relative to the project's `repo_subdir`, sorted, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The commit the files were read at.
    pub commit: CommitId,
    /// The files and symlinks; directories are implied (see [`directories`](Self::directories)).
    pub entries: Vec<BundleEntry>,
}

impl Bundle {
    /// The directories that must exist for the entries, parents first.
    pub fn directories(&self) -> Vec<RelPath> {
        let mut dirs = std::collections::BTreeSet::new();
        for entry in &self.entries {
            let mut parent = entry.path.parent();
            while !parent.is_root() {
                let next = parent.parent();
                dirs.insert(parent);
                parent = next;
            }
        }
        // BTreeSet order puts "a" before "a/b": parents first.
        dirs.into_iter().collect()
    }

    /// Total bytes of file content (a symlink counts the length of its target).
    pub fn size(&self) -> usize {
        self.entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::File { data, .. } => data.len(),
                EntryKind::Symlink { target } => target.len(),
            })
            .sum()
    }

    /// The entry at `path` (relative to the project directory, as in [`BundleEntry::path`]).
    pub fn get(&self, path: &str) -> Option<&BundleEntry> {
        self.entries.iter().find(|e| e.path.as_str() == path)
    }
}

/// Where commits come from: a repository, its branch heads, the paths a push changed and the
/// files of a project at a commit.
///
/// # Contract
///
/// - [`head`](Source::head) asks the remote for the branch head without downloading objects
///   (`git ls-remote`); it does not change the local mirror.
/// - [`fetch`](Source::fetch) makes sure the commit (or the branch head) is in the local
///   mirror, fetching incrementally, and returns the commit id it ensured.
/// - [`changed_paths`](Source::changed_paths), [`is_ancestor`](Source::is_ancestor),
///   [`resolve`](Source::resolve) and [`bundle`](Source::bundle) read the local mirror only;
///   call `fetch` first.
/// - A renamed file counts as both its old and new path; the order of the paths does not
///   matter (callers sort and dedup).
/// - [`is_ancestor`](Source::is_ancestor) fails with
///   [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when a commit is not in the mirror:
///   the trigger reads that as "history rewritten" and plans the target as changed.
/// - [`resolve`](Source::resolve) tries a branch name first, then a (possibly abbreviated)
///   commit id; an ambiguous prefix is
///   [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
/// - A bundle holds only paths under the project directory, sorted, without duplicates; a
///   symlink whose target leaves the project directory is refused; file modes (the
///   executable bit) and symlinks are kept. A missing required or extra file is an error,
///   never an incomplete bundle.
/// - Every method may be called concurrently, for the same repo too (the engine runs
///   several deploys and polls at once); an implementation serialises what must be.
///
/// # Errors
///
/// [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable) (temporary) when the remote
/// cannot be reached, [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for a missing
/// commit, branch or file (`<path> not found at <first 8 of sha>`),
/// [`ErrorKind::HostKey`](crate::ErrorKind::HostKey) / [`ErrorKind::Auth`](crate::ErrorKind::Auth)
/// for refused SSH remotes, [`ErrorKind::Git`](crate::ErrorKind::Git) otherwise.
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// The commit the remote branch points at now.
    async fn head(&self, repo: &Repo) -> Result<CommitId>;

    /// Ensures `commit` (or the branch head when `None`) is in the mirror; returns it.
    async fn fetch(&self, repo: &Repo, commit: Option<&CommitId>) -> Result<CommitId>;

    /// Paths (relative to the repository root) that differ between two commits.
    async fn changed_paths(&self, repo: &Repo, from: &CommitId, to: &CommitId) -> Result<Vec<String>>;

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    async fn is_ancestor(&self, repo: &Repo, ancestor: &CommitId, descendant: &CommitId) -> Result<bool>;

    /// Expands an abbreviated commit id (or a branch name) against the mirror.
    async fn resolve(&self, repo: &Repo, rev: &str) -> Result<CommitId>;

    /// The files of one project at `commit`.
    async fn bundle(&self, repo: &Repo, commit: &CommitId, request: BundleRequest<'_>) -> Result<Bundle>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_parents_first() {
        let file = |p: &str| BundleEntry {
            path: RelPath::new(p).unwrap(),
            kind: EntryKind::File { data: Bytes::from_static(b"x"), executable: false },
        };
        let bundle = Bundle {
            commit: CommitId::new("a".repeat(40)).unwrap(),
            entries: vec![file("compose.yml"), file("conf/nginx/site.conf"), file("conf/a.txt")],
        };
        let dirs: Vec<String> = bundle.directories().iter().map(|d| d.to_string()).collect();
        assert_eq!(dirs, ["conf", "conf/nginx"]);
        assert_eq!(bundle.size(), 3);
    }
}
