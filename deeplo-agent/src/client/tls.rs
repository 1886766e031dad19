//! TLS for `wss://`: rustls with the ring provider, the system's roots or a CA file of the
//! administrator's, and an optional pin of the daemon's certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER encoding, as `--pin-sha256` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// Parses 64 hexadecimal digits, upper or lower case, with or without `:` between the
    /// bytes (`openssl x509 -fingerprint -sha256` prints them so).
    ///
    /// # Errors
    ///
    /// A message naming `--pin-sha256` for anything else.
    pub fn parse(text: &str) -> Result<Self, String> {
        let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
        let mut pin = [0u8; 32];
        hex::decode_to_slice(&digits, &mut pin)
            .map_err(|_| format!("--pin-sha256 {text:?}: expected the 64 hex digits of a SHA-256"))?;
        Ok(Self(pin))
    }

    /// The pin of `certificate`.
    pub fn of(certificate: &[u8]) -> Self {
        Self(Sha256::digest(certificate).into())
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The client configuration for `wss://`: roots from `ca_file` only when given, else the
/// system's (`rustls-native-certs`: the distribution's store, `/etc/ssl/certs` on Debian;
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` override it); the server's name is always verified,
/// and with `pin` the leaf certificate's digest must match it too.
///
/// # Errors
///
/// A message naming the file (or the system store) when no certificate can be read.
pub fn client_config(ca_file: Option<&Path>, pin: Option<Pin>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(match ca_file {
        Some(path) => file_roots(path)?,
        None => system_roots()?,
    });
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("TLS roots: {e}"))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let config = match pin {
        Some(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier { webpki, pin }))
            .with_no_client_auth(),
        None => builder.with_webpki_verifier(webpki).with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn file_roots(path: &Path) -> Result<RootCertStore, String> {
    let bad = |why: String| format!("--ca-file {}: {why}", path.display());
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| bad(e.to_string()))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "no root certificate in the system's store ({}); install ca-certificates or pass --ca-file",
            if errors.is_empty() { "it is empty".to_owned() } else { errors.join("; ") }
        ));
    }
    Ok(roots)
}

/// The webpki verifier (chain, name, validity), then the pin: pinning adds to the usual
/// checks, it does not replace them.
#[derive(Debug)]
struct PinnedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pin: Pin,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let actual = Pin::of(end_entity);
        if actual != self.pin {
            return Err(rustls::Error::General(format!(
                "certificate pin mismatch: the server's certificate has SHA-256 {actual}, --pin-sha256 expects {}",
                self.pin
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_with_or_without_colons() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(Pin::parse(&hex), Ok(Pin([0xab; 32])));
        assert_eq!(Pin::parse(&colons), Ok(Pin([0xab; 32])));
        assert_eq!(Pin([0xab; 32]).to_string(), hex);
        for bad in ["", "ab", &"ab".repeat(33), &"zz".repeat(32)] {
            assert!(Pin::parse(bad).unwrap_err().contains("--pin-sha256"), "{bad}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let message = client_config(Some(&path), None).unwrap_err();
        assert!(message.contains("--ca-file") && message.contains("ca.pem"), "{message}");
        let missing = client_config(Some(&dir.path().join("missing.pem")), None).unwrap_err();
        assert!(missing.contains("missing.pem"), "{missing}");
    }
}
