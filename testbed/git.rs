//! Real git repositories, driven by the `git` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::run;

/// A non-bare repository with a work tree, for tests to commit into.
#[derive(Debug)]
pub struct GitRepo {
    path: PathBuf,
}

impl GitRepo {
    /// `git init` at `path` with `branch` as the initial branch.
    pub fn init(path: &Path, branch: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        let repo = Self { path: path.to_owned() };
        repo.git(&["init", "-q", "-b", branch])?;
        repo.git(&["config", "user.name", "deeplo test"])?;
        repo.git(&["config", "user.email", "test@deeplo.invalid"])?;
        repo.git(&["config", "commit.gpgsign", "false"])?;
        Ok(repo)
    }

    /// The repository's working directory (also its URL for the config).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file (creating parent directories) in the work tree.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let path = self.path.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("write {}", path.display()))
    }

    /// Removes a file from the work tree.
    pub fn remove(&self, rel: &str) -> anyhow::Result<()> {
        Ok(std::fs::remove_file(self.path.join(rel))?)
    }

    /// Stages everything and commits; returns the new commit id.
    pub fn commit(&self, message: &str) -> anyhow::Result<String> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "--allow-empty", "-m", message])?;
        self.head()
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> anyhow::Result<String> {
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// Runs `git` in the repository and returns its stdout.
    pub fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new("git").arg("-C").arg(&self.path).args(args))
    }
}
