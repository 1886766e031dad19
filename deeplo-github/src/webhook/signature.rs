//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the webhook secret, hex-encoded
//! after `sha256=`. Compared in constant time, so a forger learns nothing from how long a
//! refusal takes.

use deeplo_core::Secret;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Whether `header` (an `X-Hub-Signature-256` value, `sha256=<hex>`) is the signature of
/// `body` under `secret`. Compared in constant time; a header of another form, or not hex,
/// is simply `false`.
pub fn verify_signature(secret: &Secret, header: &str, body: &[u8]) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The header value GitHub would send for `body`: for tests and for tools that replay
/// deliveries.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_own_signature_only() {
        let secret = Secret::new("It's a Secret to Everybody");
        // The example from GitHub's documentation on validating deliveries.
        let sig = sign(&secret, b"Hello, World!");
        assert_eq!(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        assert!(verify_signature(&secret, &sig, b"Hello, World!"));
        assert!(!verify_signature(&secret, &sig, b"Hello, World?"));
        assert!(!verify_signature(&Secret::new("other"), &sig, b"Hello, World!"));
        assert!(!verify_signature(&secret, &sig.replace("sha256=", "sha1="), b"Hello, World!"));
        assert!(!verify_signature(&secret, "sha256=zz", b"Hello, World!"));
        assert!(!verify_signature(&secret, "sha256=", b"Hello, World!"));
    }
}
