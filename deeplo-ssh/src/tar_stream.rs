//! A bundle as one tar stream for `tar -x` on the host: one command and one round trip
//! whatever the number of files, where SFTP pays several round trips per file.

use deeplo_core::{Bundle, EntryKind, RemoteCommand};
use tar::{Builder, EntryType, Header};

use crate::error::SshError;

/// The archive: directories 0755 (parents first), files 0644 or 0755, symlinks as links.
/// Paths longer than ustar allows get GNU long-name entries, which GNU and busybox tar read.
pub(crate) fn archive(bundle: &Bundle) -> Result<Vec<u8>, SshError> {
    let mut builder = Builder::new(Vec::with_capacity(bundle.size() + 1024 * (bundle.entries.len() + 2)));
    let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let header = |kind: EntryType, mode: u32, size: u64| {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(mtime);
        h
    };
    for dir in bundle.directories() {
        let mut h = header(EntryType::Directory, 0o755, 0);
        builder.append_data(&mut h, format!("{}/", dir.as_str()), std::io::empty()).map_err(SshError::Pack)?;
    }
    for entry in &bundle.entries {
        match &entry.kind {
            EntryKind::File { data, executable } => {
                let mut h = header(EntryType::Regular, if *executable { 0o755 } else { 0o644 }, data.len() as u64);
                builder.append_data(&mut h, entry.path.as_str(), data.as_ref()).map_err(SshError::Pack)?;
            }
            EntryKind::Symlink { target } => {
                let mut h = header(EntryType::Symlink, 0o777, 0);
                builder.append_link(&mut h, entry.path.as_str(), target).map_err(SshError::Pack)?;
            }
        }
    }
    builder.into_inner().map_err(SshError::Pack)
}

/// Creates `dir` and extracts standard input into it, with the archive's modes exactly
/// (`-p`: not masked by the login's umask) and without trying to set owners.
pub(crate) fn extract(dir: &str) -> RemoteCommand {
    const SCRIPT: &str = r#"command -v tar >/dev/null 2>&1 || exit 127
mkdir -p -- "$1" && exec tar -x -p --no-same-owner -f - -C "$1""#;
    RemoteCommand::script(SCRIPT, [dir])
}

#[cfg(test)]
mod tests {
    use super::*;
    use deeplo_core::BundleEntry;
    use deeplo_core::model::CommitId;
    use deeplo_core::path::RelPath;

    #[test]
    fn a_real_tar_extracts_files_modes_links_and_long_names() {
        let long = format!("{}/file.txt", "d".repeat(120));
        let file = |path: &str, data: &str, executable| BundleEntry {
            path: RelPath::new(path).unwrap(),
            kind: EntryKind::File { data: bytes::Bytes::from(data.to_owned()), executable },
        };
        let bundle = Bundle {
            commit: CommitId::new("0123456789abcdef0123456789abcdef01234567").unwrap(),
            entries: vec![
                file("compose.yml", "services: {}\n", false),
                file("bin/run.sh", "#!/bin/sh\n", true),
                file(&long, "long\n", false),
                BundleEntry {
                    path: RelPath::new("www/link").unwrap(),
                    kind: EntryKind::Symlink { target: "../compose.yml".into() },
                },
            ],
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out dir");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(extract(&dir.display().to_string()).to_shell())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&archive(&bundle).unwrap()).unwrap();
        assert!(child.wait().unwrap().success());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(std::fs::read_to_string(dir.join("compose.yml")).unwrap(), "services: {}\n");
        assert_eq!(mode("compose.yml"), 0o644);
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("bin"), 0o755);
        assert_eq!(std::fs::read_to_string(dir.join(&long)).unwrap(), "long\n");
        assert_eq!(std::fs::read_link(dir.join("www/link")).unwrap().to_str(), Some("../compose.yml"));
    }
}
