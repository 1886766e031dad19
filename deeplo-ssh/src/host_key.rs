//! The russh client handler: it checks the server's host key against known_hosts and keeps
//! the refusal, so that `connect` can report it instead of russh's generic error.

use std::sync::{Arc, Mutex};

use deeplo_core::known_hosts::{HostKey, KnownHosts};
use deeplo_core::{Error, ErrorKind};
use russh::keys::{Algorithm, HashAlg, PublicKeyOrCertificate};

pub(crate) struct Handler {
    pub host: String,
    pub port: u16,
    pub known_hosts: KnownHosts,
    pub refusal: Arc<Mutex<Option<Error>>>,
}

impl Handler {
    fn refuse(&self, error: Error) -> bool {
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        false
    }
}

impl russh::client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(self.refuse(Error::new(
                ErrorKind::HostKey,
                "verify host key",
                format!(
                    "{} presented a host certificate; deeplo checks plain host keys against known_hosts only",
                    self.host
                ),
            )));
        };
        let blob = match key.to_bytes() {
            Ok(blob) => blob,
            Err(e) => {
                return Ok(self.refuse(Error::new(
                    ErrorKind::HostKey,
                    "verify host key",
                    format!("unreadable host key: {e}"),
                )));
            }
        };
        let verdict = HostKey::from_blob(blob).and_then(|k| self.known_hosts.verify(&self.host, self.port, &k));
        match verdict {
            Ok(_) => Ok(true),
            Err(e) => Ok(self.refuse(e)),
        }
    }
}

/// The host key algorithms to offer, those already recorded for the host first, so that a
/// host known by its RSA key is not refused because an ed25519 key was negotiated.
pub(crate) fn preferred_algorithms(recorded: &[String]) -> Vec<Algorithm> {
    let defaults: &[Algorithm] = &russh::Preferred::DEFAULT.key;
    let mut out: Vec<Algorithm> = Vec::new();
    for name in recorded {
        let algos = if name == "ssh-rsa" {
            vec![Algorithm::Rsa { hash: Some(HashAlg::Sha512) }, Algorithm::Rsa { hash: Some(HashAlg::Sha256) }]
        } else {
            name.parse::<Algorithm>().into_iter().collect()
        };
        for a in algos {
            if defaults.contains(&a) && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    for a in defaults {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_algorithms_come_first() {
        let algos = preferred_algorithms(&["ssh-rsa".into()]);
        assert_eq!(algos[0], Algorithm::Rsa { hash: Some(HashAlg::Sha512) });
        assert!(algos.contains(&Algorithm::Ed25519));
        let algos = preferred_algorithms(&[]);
        assert_eq!(algos, russh::Preferred::DEFAULT.key.to_vec());
    }
}
