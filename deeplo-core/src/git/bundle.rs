//! Reading a project's files at a commit straight from the object database.

use std::collections::BTreeMap;

use bytes::Bytes;
use git2::{ObjectType, Repository, Tree, TreeEntry};

use crate::model::CommitId;
use crate::path::RelPath;
use crate::source::{Bundle, BundleEntry, BundleRequest, EntryKind};
use crate::{Error, ErrorKind, Result};

const MODE_EXECUTABLE: i32 = 0o100755;
const MODE_SYMLINK: i32 = 0o120000;
const MODE_SUBMODULE: i32 = 0o160000;

/// Builds the bundle of `request` at `commit`.
pub(crate) fn read(repo: &Repository, commit: &CommitId, request: BundleRequest<'_>) -> Result<Bundle> {
    let oid = git2::Oid::from_str(commit.as_str()).map_err(|e| git_err("read commit", e))?;
    let root = repo.find_commit(oid).and_then(|c| c.tree()).map_err(|_| {
        Error::new(ErrorKind::NotFound, "extract", format!("commit {} not found in the mirror", commit.short()))
    })?;
    let mut entries = BTreeMap::new();
    for path in request.required.iter().chain(request.extra) {
        let full = request.subdir.join(path);
        if full.is_root() {
            // The whole repository (an application's build context at the root).
            collect_tree(repo, &root, &full, request.subdir, &mut entries, commit)?;
            continue;
        }
        if path.is_root() {
            // The whole project directory (an application's build context).
            let tree = root
                .get_path(std::path::Path::new(full.as_str()))
                .and_then(|e| e.to_object(repo))
                .and_then(|o| o.peel_to_tree())
                .map_err(|_| {
                    Error::new(ErrorKind::NotFound, "extract", format!("{full}/ not found at {}", commit.short()))
                })?;
            collect_tree(repo, &tree, &full, request.subdir, &mut entries, commit)?;
            continue;
        }
        let entry = root.get_path(std::path::Path::new(full.as_str())).map_err(|_| {
            Error::new(ErrorKind::NotFound, "extract", format!("{full} not found at {}", commit.short()))
        })?;
        collect(repo, &entry, &full, request.subdir, &mut entries, commit)?;
    }
    Ok(Bundle { commit: commit.clone(), entries: entries.into_values().collect() })
}

/// Adds one tree entry (a file, a symlink, or a directory's files) to `out`.
fn collect(
    repo: &Repository,
    entry: &TreeEntry<'_>,
    full: &RelPath,
    subdir: &RelPath,
    out: &mut BTreeMap<RelPath, BundleEntry>,
    commit: &CommitId,
) -> Result<()> {
    let rel = full.strip_prefix(subdir).unwrap_or_else(|| full.clone());
    match entry.kind() {
        Some(ObjectType::Tree) => {
            let tree = entry.to_object(repo).and_then(|o| o.peel_to_tree()).map_err(|e| git_err("read tree", e))?;
            collect_tree(repo, &tree, full, subdir, out, commit)
        }
        Some(ObjectType::Blob) => {
            let blob = entry.to_object(repo).and_then(|o| o.peel_to_blob()).map_err(|e| git_err("read file", e))?;
            let kind = if entry.filemode() == MODE_SYMLINK {
                let target = String::from_utf8_lossy(blob.content()).into_owned();
                check_link(&rel, &target)?;
                EntryKind::Symlink { target }
            } else {
                EntryKind::File {
                    data: Bytes::copy_from_slice(blob.content()),
                    executable: entry.filemode() == MODE_EXECUTABLE,
                }
            };
            out.insert(rel.clone(), BundleEntry { path: rel, kind });
            Ok(())
        }
        _ if entry.filemode() == MODE_SUBMODULE => Err(Error::new(
            ErrorKind::InvalidInput,
            "extract",
            format!(
                "{full} is a git submodule at {}; submodules cannot be deployed, list the files instead",
                commit.short()
            ),
        )),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "extract",
            format!("{full} at {} is not a file or directory", commit.short()),
        )),
    }
}

fn collect_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    dir: &RelPath,
    subdir: &RelPath,
    out: &mut BTreeMap<RelPath, BundleEntry>,
    commit: &CommitId,
) -> Result<()> {
    for entry in tree.iter() {
        let name = entry.name().ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "extract", format!("a file name under {dir} is not UTF-8"))
        })?;
        let child = RelPath::new(name)
            .map(|n| dir.join(&n))
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "extract", format!("bad file name under {dir}: {e}")))?;
        collect(repo, &entry, &child, subdir, out, commit)?;
    }
    Ok(())
}

/// Refuses a symlink whose target leaves the project directory.
fn check_link(link: &RelPath, target: &str) -> Result<()> {
    let escapes = || {
        Error::new(
            ErrorKind::InvalidInput,
            "extract",
            format!(
                "symlink {link} points to {target:?}, outside the project directory; only links within it can be deployed"
            ),
        )
    };
    if target.starts_with('/') {
        return Err(escapes());
    }
    let parent = link.parent();
    let mut depth: Vec<&str> = parent.segments().collect();
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return Err(escapes());
                }
            }
            s => depth.push(s),
        }
    }
    Ok(())
}

fn git_err(operation: &'static str, e: git2::Error) -> Error {
    Error::new(ErrorKind::Git, operation, e.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_may_not_leave_the_project() {
        let link = |p: &str| RelPath::new(p).unwrap();
        assert!(check_link(&link("a/b"), "c").is_ok());
        assert!(check_link(&link("a/b"), "../c").is_ok());
        assert!(check_link(&link("a/b"), "./x/../y").is_ok());
        assert!(check_link(&link("a/b"), "../../c").is_err());
        assert!(check_link(&link("b"), "../c").is_err());
        assert!(check_link(&link("b"), "/etc/passwd").is_err());
    }
}
