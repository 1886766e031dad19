//! [`Layout`]: every path of a native install, under a root (`/` on a real machine, a
//! scratch directory for an image being built or a test).

use std::path::{Path, PathBuf};

/// Where a native install keeps each of its parts, as the Go tool's installer lays them out.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The install under `root` (`None` is `/`).
    pub fn new(root: Option<&Path>) -> Self {
        Self { root: root.map_or_else(|| PathBuf::from("/"), Path::to_path_buf) }
    }

    /// Whether this is the running machine's own install (systemd and the daemon's socket
    /// concern only that one).
    pub fn is_system(&self) -> bool {
        self.root == Path::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn at(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    pub fn binary(&self) -> PathBuf {
        self.at("/usr/local/bin/deeplo")
    }

    pub fn unit_file(&self) -> PathBuf {
        self.at("/etc/systemd/system/deeplo.service")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.at("/etc/deeplo")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.at("/var/lib/deeplo")
    }

    /// The shell completion files the installer writes where the shell's directory exists.
    pub fn completions(&self) -> Vec<(clap_complete::Shell, PathBuf)> {
        use clap_complete::Shell;
        vec![
            (Shell::Bash, self.at("/usr/share/bash-completion/completions/deeplo")),
            (Shell::Zsh, self.at("/usr/share/zsh/site-functions/_deeplo")),
            (Shell::Fish, self.at("/usr/share/fish/vendor_completions.d/deeplo.fish")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sit_under_the_root() {
        let system = Layout::new(None);
        assert!(system.is_system());
        assert_eq!(system.binary(), Path::new("/usr/local/bin/deeplo"));
        let scratch = Layout::new(Some(Path::new("/tmp/img")));
        assert!(!scratch.is_system());
        assert_eq!(scratch.unit_file(), Path::new("/tmp/img/etc/systemd/system/deeplo.service"));
        assert_eq!(scratch.data_dir(), Path::new("/tmp/img/var/lib/deeplo"));
    }
}
