//! One connection's way to the daemon: TCP, through a proxy's tunnel when the environment
//! names one, TLS for `wss://`, then the WebSocket upgrade with the agent's credentials.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::config::ClientConfig;
use super::error::ClientError;
use crate::protocol::MAX_FRAME_BYTES;

/// How long connecting (TCP, proxy, TLS, upgrade) may take before the attempt is given up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The header that names the server, when the agent is given `--host`.
pub const HOST_HEADER: &str = "Deeplo-Agent-Host";

/// This build's release, as the agent reports it in its hello and `User-Agent`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Any stream the WebSocket can run over: plain TCP or TLS, direct or tunnelled.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The agent's WebSocket.
pub(super) type Socket = WebSocketStream<Box<dyn Io>>;

/// Opens the WebSocket, within [`CONNECT_TIMEOUT`].
pub(super) async fn open(config: &ClientConfig) -> Result<Socket, ClientError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, open_unbounded(config)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Lost(format!(
            "connecting to {} took longer than {} seconds",
            config.endpoint,
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

async fn open_unbounded(config: &ClientConfig) -> Result<Socket, ClientError> {
    let endpoint = &config.endpoint;
    let proxy = config.proxy.proxy_for(endpoint)?;
    let (host, port) = match &proxy {
        Some(proxy) => (proxy.host().to_owned(), proxy.port()),
        None => (endpoint.host().to_owned(), endpoint.port()),
    };
    let mut tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|source| ClientError::Connect {
        target: proxy.as_ref().map_or_else(|| endpoint.authority(), |p| format!("proxy {}", p.address())),
        source,
    })?;
    // Frames are small and interactive (output chunks, heartbeats): no Nagle delay.
    let _ = tcp.set_nodelay(true);
    if let Some(proxy) = &proxy {
        tracing::debug!(proxy = %proxy.address(), "tunnelling through the proxy");
        proxy.tunnel(&mut tcp, endpoint).await?;
    }
    let stream: Box<dyn Io> = match &config.tls {
        Some(tls) => {
            let server = endpoint.host().to_owned();
            let name = ServerName::try_from(server.clone())
                .map_err(|e| ClientError::Config(format!("--url: {server:?} is not a TLS server name: {e}")))?;
            let stream = TlsConnector::from(tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|source| ClientError::Tls { server, source })?;
            Box::new(stream)
        }
        None => Box::new(tcp),
    };
    upgrade(config, stream).await
}

async fn upgrade(config: &ClientConfig, stream: Box<dyn Io>) -> Result<Socket, ClientError> {
    let request = request(config)?;
    let limits =
        WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES)).max_frame_size(Some(MAX_FRAME_BYTES));
    match tokio_tungstenite::client_async_with_config(request, stream, Some(limits)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let status = response.status();
            let reason = status.canonical_reason().unwrap_or("").to_owned();
            Err(ClientError::Rejected { status: status.as_u16(), reason })
        }
        Err(e) => Err(ClientError::Upgrade(e.to_string())),
    }
}

/// The upgrade request: the standard WebSocket headers, then `Authorization: Bearer`,
/// `User-Agent` and, with `--host`, [`HOST_HEADER`].
fn request(config: &ClientConfig) -> Result<Request, ClientError> {
    let bad = |e: &dyn std::fmt::Display| ClientError::Config(format!("--url {}: {e}", config.endpoint));
    let mut request = config.endpoint.to_string().into_client_request().map_err(|e| bad(&e))?;
    let headers = request.headers_mut();
    // Checked printable ASCII when read, so these cannot fail; the error never quotes it.
    let mut authorization = HeaderValue::try_from(format!("Bearer {}", config.token.expose()))
        .map_err(|_| ClientError::Config("the runner token cannot go in an HTTP header".into()))?;
    authorization.set_sensitive(true);
    headers.insert("Authorization", authorization);
    let agent = HeaderValue::try_from(format!("deeplo-agent/{AGENT_VERSION}")).map_err(|e| bad(&e))?;
    headers.insert("User-Agent", agent);
    if let Some(host) = &config.host {
        let value = HeaderValue::try_from(host.as_str())
            .map_err(|_| ClientError::Config(format!("--host {host:?} cannot go in an HTTP header")))?;
        headers.insert(HOST_HEADER, value);
    }
    Ok(request)
}
