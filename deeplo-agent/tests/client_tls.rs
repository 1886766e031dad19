//! The agent over `wss://` to a TLS server of the test's own, with a self-signed
//! certificate made for the test: trusted through `--ca-file`, refused for another name,
//! and pinned.

mod client_support;

use std::sync::Arc;

use client_support::{Daemon, TokenFile, Upgrade, options, spawn, token_file};
use deeplo_agent::client::{Client, ClientError, ClientOptions, Pin};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A TLS daemon whose certificate is for `name`, and the certificate's DER and PEM.
struct TlsDaemon {
    daemon: Daemon,
    der: Vec<u8>,
    ca_file: std::path::PathBuf,
}

async fn tls_daemon(name: &str, token: &TokenFile) -> TlsDaemon {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let ca_file = token.dir.path().join("ca.pem");
    std::fs::write(&ca_file, certified.cert.pem()).unwrap();
    TlsDaemon { daemon: Daemon::start(Some(Arc::new(config)), Upgrade::Accept).await, der, ca_file }
}

fn wss_options(tls: &TlsDaemon, token: &TokenFile, pin: Option<String>) -> ClientOptions {
    let mut options = options(&format!("wss://localhost:{}", tls.daemon.port), token);
    options.ca_file = Some(tls.ca_file.clone());
    options.pin_sha256 = pin;
    options
}

async fn one_attempt(options: ClientOptions) -> ClientError {
    let end = Client::new(options.build().unwrap()).connect_once(std::future::pending()).await;
    assert!(!end.welcomed);
    end.result.unwrap_err()
}

#[tokio::test]
async fn a_certificate_from_the_ca_file_is_trusted() {
    let token = token_file();
    let mut tls = tls_daemon("localhost", &token).await;
    let mut agent = spawn(wss_options(&tls, &token, None));
    let mut conn = tls.daemon.next().await;
    assert_eq!(conn.path, "/agent/v1/connect");
    conn.welcome(5).await;
    agent.stop();
    assert_eq!(conn.expect_close().await.0, 1000);
    agent.finished().await.unwrap();
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let token = token_file();
    let tls = tls_daemon("deeplo.test", &token).await;
    let err = one_attempt(wss_options(&tls, &token, None)).await;
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(!err.is_final(), "{err}");
    let message = err.to_string();
    assert!(message.contains("localhost") && message.contains("not valid for name"), "{message}");
}

#[tokio::test]
async fn a_wrong_pin_is_refused_naming_both_digests() {
    let token = token_file();
    let tls = tls_daemon("localhost", &token).await;
    let wrong = "00".repeat(32);
    let err = one_attempt(wss_options(&tls, &token, Some(wrong.clone()))).await;
    let message = err.to_string();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(message.contains("pin mismatch"), "{message}");
    assert!(message.contains(&wrong) && message.contains(&Pin::of(&tls.der).to_string()), "{message}");
}

#[tokio::test]
async fn the_right_pin_is_accepted() {
    let token = token_file();
    let mut tls = tls_daemon("localhost", &token).await;
    // As `openssl x509 -fingerprint -sha256` prints it: upper case, colons.
    let hex = Pin::of(&tls.der).to_string().to_uppercase();
    let pin = hex.as_bytes().chunks(2).map(|pair| std::str::from_utf8(pair).unwrap()).collect::<Vec<_>>().join(":");
    let mut agent = spawn(wss_options(&tls, &token, Some(pin)));
    let mut conn = tls.daemon.next().await;
    conn.welcome(5).await;
    agent.stop();
    assert_eq!(conn.expect_close().await.0, 1000);
    agent.finished().await.unwrap();
}
