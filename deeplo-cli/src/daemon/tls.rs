//! HTTPS on the daemon's HTTP port (`DEEPLO_TLS_CERT_FILE`, `DEEPLO_TLS_KEY_FILE`): so that
//! agents reach it with `wss://` without a proxy in front.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for the certificate chain in `cert` and the private key in `key` (PEM).
///
/// # Errors
///
/// A file that cannot be read or holds no certificate or key, or a key that does not match
/// the certificate; each names the file and the variable that points to it.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read {} (DEEPLO_TLS_CERT_FILE)", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} (DEEPLO_TLS_CERT_FILE) is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} (DEEPLO_TLS_CERT_FILE) holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {} (DEEPLO_TLS_KEY_FILE)", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("DEEPLO_TLS_KEY_FILE does not match the certificate of DEEPLO_TLS_CERT_FILE")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` over TLS on `listener` until `cancel`: HTTP/1.1 with upgrades (the
/// agents' WebSockets). A client that fails its handshake is dropped and logged at debug.
pub async fn serve(listener: TcpListener, router: Router, acceptor: TlsAcceptor, cancel: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => return tracing::debug!(peer = %peer, error = %err, "TLS handshake failed"),
                Err(_) => return tracing::debug!(peer = %peer, "TLS handshake timed out"),
            };
            let connection =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(peer = %peer, error = %err, "HTTPS connection ended with an error");
                    }
                }
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
