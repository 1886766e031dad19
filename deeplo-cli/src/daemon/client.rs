//! Both ends of the admin socket: binding it for the daemon (mode 0660, optional group),
//! and the small HTTP/1.1 client the CLI verbs use to talk to a running daemon.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};

/// Binds the admin socket. A stale socket file (no daemon answering) is replaced; a live one
/// means another daemon runs, which is an error.
pub fn bind_socket(path: &Path, group: Option<&str>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {} for DEEPLO_UNIX_SOCKET", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another deeplo daemon is answering on {} (DEEPLO_UNIX_SOCKET)", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind {} (DEEPLO_UNIX_SOCKET)", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(group) = group {
        let gid = crate::native::accounts::group_id(group)?;
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("cannot give {} to group {group} (DEEPLO_ADMIN_GROUP)", path.display()))?;
    }
    Ok(listener)
}

/// A connection to a running daemon's admin socket.
#[derive(Debug)]
pub struct AdminClient {
    socket: PathBuf,
}

/// A non-2xx answer from the daemon.
#[derive(Debug, thiserror::Error)]
#[error("the daemon answered {status}: {message}")]
pub struct ApiFailure {
    pub status: StatusCode,
    pub message: String,
}

/// The daemon did not answer a connection.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the daemon at {0}")]
pub struct Unreachable(pub String);

impl AdminClient {
    /// `Some` when a daemon answers on `socket`; `None` when none runs (no socket, or a stale one).
    pub async fn connect(socket: &Path) -> Option<Self> {
        UnixStream::connect(socket).await.ok()?;
        Some(Self { socket: socket.to_owned() })
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.request(Method::GET, path, None).await?;
        serde_json::from_slice(&body).with_context(|| format!("unreadable answer from the daemon for {path}"))
    }

    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        let body = self.request(Method::POST, path, Some(serde_json::to_vec(body)?)).await?;
        serde_json::from_slice(&body).with_context(|| format!("unreadable answer from the daemon for {path}"))
    }

    pub async fn delete_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let body = self.request(Method::DELETE, path, None).await?;
        serde_json::from_slice(&body).with_context(|| format!("unreadable answer from the daemon for {path}"))
    }

    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Bytes> {
        self.request(Method::GET, path, None).await
    }

    async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> anyhow::Result<Bytes> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| anyhow::Error::new(e).context(Unreachable(self.socket.display().to_string())))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "deeplo")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ApiFailure { status, message }.into());
        }
        Ok(bytes)
    }
}
