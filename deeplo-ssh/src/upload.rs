//! Writing a bundle over SFTP: directories first, then files and links several at a time,
//! since on small files the round trips, not the bytes, are what costs.

use deeplo_core::{Bundle, EntryKind};
use futures::TryStreamExt;
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::error::SshError;

/// Files in flight at once.
const PARALLEL: usize = 16;

pub(crate) async fn write_bundle(sftp: &SftpSession, dir: &str, bundle: &Bundle) -> Result<(), SshError> {
    mkdir_p(sftp, dir).await?;
    for sub in bundle.directories() {
        mkdir(sftp, &format!("{dir}/{sub}")).await?;
    }
    futures::stream::iter(bundle.entries.iter().map(Ok))
        .try_for_each_concurrent(PARALLEL, |entry| async move {
            let path = format!("{dir}/{}", entry.path);
            match &entry.kind {
                EntryKind::File { data, executable } => write_file(sftp, &path, data, *executable).await,
                EntryKind::Symlink { target } => {
                    let _ = sftp.remove_file(path.clone()).await;
                    // OpenSSH's sftp-server takes the two paths of SSH_FXP_SYMLINK in the
                    // opposite order from the draft, so the target goes first here.
                    sftp.symlink(target.clone(), path.clone()).await.map_err(|source| SshError::Sftp {
                        what: "symlink",
                        path,
                        source,
                    })
                }
            }
        })
        .await
}

async fn write_file(sftp: &SftpSession, path: &str, data: &[u8], executable: bool) -> Result<(), SshError> {
    let mode = if executable { 0o755 } else { 0o644 };
    let attrs = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
    let sftp_err = |what, source| SshError::Sftp { what, path: path.to_owned(), source };
    let mut file = sftp
        .open_with_flags_and_attributes(path, OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE, attrs)
        .await
        .map_err(|e| sftp_err("create", e))?;
    file.write_all(data).await.map_err(|e| sftp_err("write", SftpError::IO(e.to_string())))?;
    file.shutdown().await.map_err(|e| sftp_err("close", SftpError::IO(e.to_string())))?;
    // The open mode is masked by the server's umask, and an existing file keeps its old
    // mode: set it explicitly.
    let attrs = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
    sftp.set_metadata(path, attrs).await.map_err(|e| sftp_err("chmod", e))
}

async fn mkdir(sftp: &SftpSession, path: &str) -> Result<(), SshError> {
    match sftp.create_dir(path).await {
        Ok(()) => Ok(()),
        Err(SftpError::Status(s)) if s.status_code == StatusCode::Failure => match sftp.metadata(path).await {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(SshError::Sftp { what: "mkdir", path: path.to_owned(), source: SftpError::Status(s) }),
        },
        Err(source) => Err(SshError::Sftp { what: "mkdir", path: path.to_owned(), source }),
    }
}

/// Creates `path` and its missing parents.
async fn mkdir_p(sftp: &SftpSession, path: &str) -> Result<(), SshError> {
    if matches!(sftp.metadata(path).await, Ok(m) if m.is_dir()) {
        return Ok(());
    }
    let mut prefix = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        prefix.push('/');
        prefix.push_str(segment);
        if !matches!(sftp.metadata(prefix.as_str()).await, Ok(m) if m.is_dir()) {
            mkdir(sftp, &prefix).await?;
        }
    }
    Ok(())
}
