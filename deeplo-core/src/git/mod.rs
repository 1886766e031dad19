//! The embedded git source: bare mirrors under `DEEPLO_DATA_DIR/repos/`, read with libgit2.
//!
//! Every remote URL form works (local paths, `file://`, `ssh://`, scp-style, `https://`);
//! SSH remotes use the configured key (or ssh-agent) and the shared known_hosts policy, so a
//! changed host key is refused here exactly as it is for deploy connections. Operations on
//! one mirror are serialised (libgit2 does not support concurrent fetches into one
//! repository); different mirrors proceed in parallel. All libgit2 work runs on the
//! blocking thread pool.

mod bundle;
mod remote;

pub use remote::{GitAuth, TokenProvider};
pub(crate) use remote::{redact_url, slug};

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use git2::{Direction, FetchOptions, FetchPrune, Oid, Repository};

use crate::config::Repo;
use crate::model::CommitId;
use crate::source::{Bundle, BundleRequest, Source};
use crate::{Error, ErrorKind, Result};
use remote::{Callbacks, map_error};

/// A [`Source`] backed by local bare mirrors, one per remote URL (repo entries that share a
/// URL share a mirror). Cheap to clone; clones share the mirrors and their locks.
///
/// Mirrors are created on first use and fetched incrementally (every branch, pruned, no
/// tags). Keep one `GitSource` per mirrors directory: two of them (or two processes) on the
/// same directory do not serialise with each other.
#[derive(Debug, Clone)]
pub struct GitSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    mirrors: PathBuf,
    auth: GitAuth,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl GitSource {
    /// Mirrors live under `mirrors` (created when first needed).
    pub fn new(mirrors: impl Into<PathBuf>, auth: GitAuth) -> Self {
        Self { inner: Arc::new(Inner { mirrors: mirrors.into(), auth, locks: Mutex::new(HashMap::new()) }) }
    }

    /// Where the mirror of `url` lives: `mirrors` joined with a name derived from the URL as
    /// the Go tool derives it (scheme and `user@` dropped, `.git` trimmed, characters other
    /// than ASCII letters, digits, `.` and `-` made `_`), so existing mirrors carry over.
    pub fn mirror_path(&self, url: &str) -> PathBuf {
        self.inner.mirrors.join(slug(url))
    }

    /// Runs `f` on the repo's mirror, alone among operations on that mirror, off the async
    /// threads.
    async fn with_mirror<T, F>(&self, repo: &Repo, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Repository, &Repo) -> Result<T> + Send + 'static,
    {
        let key = slug(&repo.url);
        let lock = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key).or_default().clone()
        };
        let _guard = lock.lock().await;
        let inner = self.inner.clone();
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || {
            let mirror = open_mirror(&inner.mirrors, &repo.url)?;
            f(&inner, &mirror, &repo).map_err(|e| e.with_repo(&repo.name))
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Git, "git", format!("the git task failed: {e}")))?
    }
}

fn open_mirror(dir: &Path, url: &str) -> Result<Repository> {
    let path = dir.join(slug(url));
    if path.join("HEAD").exists() {
        return Repository::open_bare(&path).map_err(|e| map_error("open mirror", url, e));
    }
    std::fs::create_dir_all(&path).map_err(|e| Error::io("create mirror", path.display(), e))?;
    Repository::init_bare(&path).map_err(|e| map_error("create mirror", url, e))
}

fn oid(commit: &CommitId) -> Result<Oid> {
    Oid::from_str(commit.as_str()).map_err(|e| Error::new(ErrorKind::InvalidInput, "git", e.message().to_owned()))
}

fn commit_id(oid: Oid) -> CommitId {
    // A git object id is always 40 or 64 hex digits.
    CommitId::new(oid.to_string()).unwrap_or_else(|_| unreachable!("git oid {oid} is not hex"))
}

fn has_commit(repo: &Repository, commit: &CommitId) -> bool {
    oid(commit).is_ok_and(|o| repo.find_commit(o).is_ok())
}

/// `git ls-remote` for one branch.
fn remote_head(inner: &Inner, mirror: &Repository, repo: &Repo) -> Result<CommitId> {
    let callbacks = Callbacks::new();
    let mut remote = mirror.remote_anonymous(&repo.url).map_err(|e| map_error("ls-remote", &repo.url, e))?;
    let connection = remote
        .connect_auth(Direction::Fetch, Some(callbacks.build(&inner.auth, &repo.url)), None)
        .map_err(|e| callbacks.error("ls-remote", &repo.url, e))?;
    let wanted = format!("refs/heads/{}", repo.branch);
    let heads = connection.list().map_err(|e| map_error("ls-remote", &repo.url, e))?;
    heads.iter().find(|h| h.name() == wanted).map(|h| commit_id(h.oid())).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            "ls-remote",
            format!("branch \"{}\" not found in {}", repo.branch, redact_url(&repo.url)),
        )
    })
}

/// Fetches every branch into the mirror, pruning deleted ones.
fn fetch_all(inner: &Inner, mirror: &Repository, repo: &Repo) -> Result<()> {
    let callbacks = Callbacks::new();
    let mut remote = mirror.remote_anonymous(&repo.url).map_err(|e| map_error("fetch", &repo.url, e))?;
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks.build(&inner.auth, &repo.url));
    options.prune(FetchPrune::On);
    options.download_tags(git2::AutotagOption::None);
    remote
        .fetch(&["+refs/heads/*:refs/heads/*"], Some(&mut options), None)
        .map_err(|e| callbacks.error("fetch", &repo.url, e))
}

fn local_branch(mirror: &Repository, repo: &Repo) -> Result<CommitId> {
    let reference = format!("refs/heads/{}", repo.branch);
    mirror.refname_to_id(&reference).map(commit_id).map_err(|_| {
        Error::new(
            ErrorKind::NotFound,
            "fetch",
            format!("branch \"{}\" not found in {}", repo.branch, redact_url(&repo.url)),
        )
    })
}

#[async_trait]
impl Source for GitSource {
    async fn head(&self, repo: &Repo) -> Result<CommitId> {
        self.with_mirror(repo, remote_head).await
    }

    async fn fetch(&self, repo: &Repo, commit: Option<&CommitId>) -> Result<CommitId> {
        let commit = commit.cloned();
        self.with_mirror(repo, move |inner, mirror, repo| match commit {
            Some(c) if has_commit(mirror, &c) => Ok(c),
            Some(c) => {
                fetch_all(inner, mirror, repo)?;
                if has_commit(mirror, &c) {
                    Ok(c)
                } else {
                    Err(Error::new(
                        ErrorKind::NotFound,
                        "fetch",
                        format!("commit {} not found in {} after fetch", c.short(), redact_url(&repo.url)),
                    ))
                }
            }
            None => {
                fetch_all(inner, mirror, repo)?;
                local_branch(mirror, repo)
            }
        })
        .await
    }

    async fn changed_paths(&self, repo: &Repo, from: &CommitId, to: &CommitId) -> Result<Vec<String>> {
        let (from, to) = (from.clone(), to.clone());
        self.with_mirror(repo, move |_, mirror, _| {
            let tree = |c: &CommitId| -> Result<git2::Tree<'_>> {
                mirror.find_commit(oid(c)?).and_then(|c| c.tree()).map_err(|_| {
                    Error::new(ErrorKind::NotFound, "diff", format!("commit {} not found in the mirror", c.short()))
                })
            };
            let (old, new) = (tree(&from)?, tree(&to)?);
            let mut diff = mirror
                .diff_tree_to_tree(Some(&old), Some(&new), None)
                .map_err(|e| Error::new(ErrorKind::Git, "diff", e.message().to_owned()))?;
            let mut find = git2::DiffFindOptions::new();
            find.renames(true).copies(true);
            diff.find_similar(Some(&mut find))
                .map_err(|e| Error::new(ErrorKind::Git, "diff", e.message().to_owned()))?;
            let mut paths = BTreeSet::new();
            for delta in diff.deltas() {
                for file in [delta.old_file(), delta.new_file()] {
                    if let Some(p) = file.path().and_then(Path::to_str) {
                        paths.insert(p.to_owned());
                    }
                }
            }
            Ok(paths.into_iter().collect())
        })
        .await
    }

    async fn is_ancestor(&self, repo: &Repo, ancestor: &CommitId, descendant: &CommitId) -> Result<bool> {
        let (a, d) = (ancestor.clone(), descendant.clone());
        self.with_mirror(repo, move |_, mirror, _| {
            if a == d {
                return Ok(true);
            }
            mirror
                .graph_descendant_of(oid(&d)?, oid(&a)?)
                .map_err(|e| Error::new(ErrorKind::NotFound, "ancestry", e.message().to_owned()))
        })
        .await
    }

    async fn resolve(&self, repo: &Repo, rev: &str) -> Result<CommitId> {
        if rev.is_empty() || rev.starts_with('-') {
            return Err(Error::new(ErrorKind::InvalidInput, "resolve", format!("{rev:?} is not a commit or branch")));
        }
        let rev = rev.to_owned();
        self.with_mirror(repo, move |_, mirror, repo| {
            let object = mirror
                .revparse_single(&format!("refs/heads/{rev}"))
                .or_else(|_| mirror.revparse_single(&rev))
                .map_err(|e| {
                    let kind = if e.code() == git2::ErrorCode::Ambiguous {
                        ErrorKind::InvalidInput
                    } else {
                        ErrorKind::NotFound
                    };
                    Error::new(
                        kind,
                        "resolve",
                        format!("{rev:?} is not a commit or branch of {}: {}", redact_url(&repo.url), e.message()),
                    )
                })?;
            let commit = object.peel_to_commit().map_err(|_| {
                Error::new(ErrorKind::InvalidInput, "resolve", format!("{rev:?} does not name a commit"))
            })?;
            Ok(commit_id(commit.id()))
        })
        .await
    }

    async fn bundle(&self, repo: &Repo, commit: &CommitId, request: BundleRequest<'_>) -> Result<Bundle> {
        let commit = commit.clone();
        let subdir = request.subdir.clone();
        let required = request.required.to_vec();
        let extra = request.extra.to_vec();
        self.with_mirror(repo, move |_, mirror, _| {
            bundle::read(mirror, &commit, BundleRequest { subdir: &subdir, required: &required, extra: &extra })
        })
        .await
    }
}
