//! Opening a file in the operator's editor: `$VISUAL`, else `$EDITOR`, else `vi`, or
//! `sudoedit` when the file is not writable by this user (a root-owned file in /etc).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::on_path;

/// How a file was opened, for the "Opening PATH with ..." line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Editor {
    /// The operator's own editor command.
    Own(String),
    /// `sudo -e`, which edits a copy and writes it back as root.
    SudoEdit,
}

impl std::fmt::Display for Editor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Own(cmd) => f.write_str(cmd),
            Self::SudoEdit => f.write_str("sudoedit"),
        }
    }
}

/// The editor for `path`: the operator's when they may write the file, `sudoedit` otherwise.
pub fn choose(path: &Path) -> Editor {
    if writable(path) { Editor::Own(own_editor()) } else { Editor::SudoEdit }
}

fn own_editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".into())
}

fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// Opens `path` and waits for the editor to exit. The editor command is run by `sh`, as
/// git runs it, so that `EDITOR="code --wait"` works; the path goes in as a parameter,
/// never as shell text.
pub fn open(path: &Path, editor: &Editor) -> anyhow::Result<()> {
    let status = match editor {
        Editor::Own(cmd) => Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} \"$@\""))
            .arg(cmd)
            .arg(path)
            .status()
            .with_context(|| format!("cannot start the editor {cmd:?}"))?,
        Editor::SudoEdit => {
            if !on_path("sudo") {
                bail!("{} is not writable by you and sudo is not installed: edit it as root", path.display());
            }
            Command::new("sudo").arg("-e").arg(path).status().context("cannot run sudoedit")?
        }
    };
    if !status.success() {
        bail!("the editor ({editor}) exited with an error ({status}); {} is as the editor left it", path.display());
    }
    Ok(())
}
