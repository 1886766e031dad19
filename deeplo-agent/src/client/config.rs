//! The agent's settings: [`ClientOptions`] as given on the command line, then
//! [`ClientConfig`], checked and loaded (token read, TLS built) before anything connects.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::endpoint::Endpoint;
use super::error::ClientError;
use super::proxy::ProxyEnv;
use super::tls::{self, Pin};
use crate::agent::Spool;

/// Where the agent keeps deploys unless told otherwise; only its free space is reported.
pub const DEFAULT_DEPLOY_DIR: &str = "/srv/deeplo";

/// Where the agent keeps its commands' spool unless told otherwise (the systemd unit's
/// `StateDirectory=`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/deeplo-agent";

/// The settings as given: flags, or the `DEEPLO_AGENT_*` variables.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The daemon's `wss://` URL (`ws://` only to a loopback address).
    pub url: String,
    /// The file that holds the runner token.
    pub token_file: PathBuf,
    /// The server's name, sent as `Deeplo-Agent-Host` (the daemon otherwise knows the
    /// server by its token).
    pub host: Option<String>,
    /// A PEM file of the only certificate authorities to trust, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The SHA-256 of the daemon's certificate, required in addition to the usual checks.
    pub pin_sha256: Option<String>,
    /// The directory whose file system's free space the fingerprint reports.
    pub deploy_dir: PathBuf,
    /// Where the commands' output, input and ends are kept, so that they outlive the agent
    /// ([`Spool`]).
    pub state_dir: PathBuf,
    /// The program that keeps each command (`KEEPER keep ...`): the agent's own binary,
    /// the running one when `None`.
    pub keeper: Option<PathBuf>,
    /// The proxy variables to honour.
    pub proxy: ProxyEnv,
}

impl ClientOptions {
    /// Options with the defaults for everything but the URL and the token file, and no
    /// proxy.
    pub fn new(url: impl Into<String>, token_file: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            token_file: token_file.into(),
            host: None,
            ca_file: None,
            pin_sha256: None,
            deploy_dir: PathBuf::from(DEFAULT_DEPLOY_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            keeper: None,
            proxy: ProxyEnv::none(),
        }
    }

    /// Checks every setting and loads the files.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] listing every problem found (bad URL, unreadable or empty
    /// token file, bad host name, CA file or pin, a state directory that cannot be
    /// created), each naming its flag or file.
    pub fn build(self) -> Result<ClientConfig, ClientError> {
        let mut problems = Vec::new();
        let endpoint = keep(&mut problems, Endpoint::parse(&self.url).map_err(|e| e.to_string()));
        let token = keep(&mut problems, Token::read(&self.token_file));
        let host = keep(&mut problems, self.host.map(check_host).transpose());
        let pin = keep(&mut problems, self.pin_sha256.as_deref().map(Pin::parse).transpose());
        let tls = match (&endpoint, &pin) {
            (Some(endpoint), Some(pin)) if endpoint.tls() => {
                keep(&mut problems, tls::client_config(self.ca_file.as_deref(), *pin))
            }
            _ => None,
        };
        let keeper = match self.keeper {
            Some(keeper) => Ok(keeper),
            None => std::env::current_exe().map_err(|e| format!("cannot find the agent's own binary: {e}")),
        };
        let keeper = keep(&mut problems, keeper);
        let spool = keeper.and_then(|keeper| {
            let spool = Spool::open(&self.state_dir, keeper)
                .map_err(|e| format!("--state-dir {}: cannot create it: {e}", self.state_dir.display()));
            keep(&mut problems, spool)
        });
        match (endpoint, token, host, pin, spool) {
            (Some(endpoint), Some(token), Some(host), Some(_), Some(spool)) if problems.is_empty() => {
                let (deploy_dir, proxy, spool) = (self.deploy_dir, self.proxy, Arc::new(spool));
                Ok(ClientConfig { endpoint, token, host, tls, deploy_dir, spool, proxy })
            }
            _ => Err(ClientError::Config(problems.join("; "))),
        }
    }
}

/// The value of `result`, or `None` with its problem noted.
fn keep<T>(problems: &mut Vec<String>, result: Result<T, String>) -> Option<T> {
    result.map_err(|problem| problems.push(problem)).ok()
}

fn check_host(host: String) -> Result<String, String> {
    let ok = !host.is_empty() && host.len() <= 253 && host.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(host) } else { Err(format!("--host {host:?}: a server name is printable ASCII without spaces")) }
}

/// The settings checked: what [`Client`](super::Client) connects with.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(super) endpoint: Endpoint,
    pub(super) token: Token,
    pub(super) host: Option<String>,
    /// Only for `wss://`.
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) deploy_dir: PathBuf,
    pub(super) spool: Arc<Spool>,
    pub(super) proxy: ProxyEnv,
}

impl ClientConfig {
    /// Where the agent connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The server's name sent to the daemon, if any.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

/// The runner token: shown to nobody, not even the logs.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The content of `path`, trimmed.
    ///
    /// # Errors
    ///
    /// A message naming the file (never its content) when it cannot be read, is empty or
    /// holds what cannot go in an HTTP header.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--token-file {}: cannot read the runner token: {e}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("--token-file {}: the file is empty; put the runner token in it", path.display()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("--token-file {}: a runner token is printable ASCII on one line", path.display()));
        }
        Ok(Self(token.to_owned()))
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_and_the_token_never() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let mut options = ClientOptions::new("http://d.example.com", &empty);
        options.state_dir = empty.join("below-a-file");
        options.pin_sha256 = Some("xyz".into());
        options.host = Some("two words".into());
        let message = options.build().unwrap_err().to_string();
        for part in ["--url", "--token-file", "the file is empty", "--pin-sha256", "--host", "--state-dir"] {
            assert!(message.contains(part), "{part}: {message}");
        }
    }

    #[test]
    fn a_good_configuration_hides_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  tok-s3cret\n").unwrap();
        let mut options = ClientOptions::new("ws://127.0.0.1:9/", &file);
        options.state_dir = dir.path().join("state");
        let config = options.build().unwrap();
        assert_eq!(config.token.expose(), "tok-s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.endpoint().path(), "/agent/v1/connect");
        let mut options = ClientOptions::new("ws://127.0.0.1:9/", dir.path().join("nope"));
        options.state_dir = dir.path().join("state");
        let missing = options.build().unwrap_err();
        assert!(missing.to_string().contains("nope") && missing.is_final());
    }
}
