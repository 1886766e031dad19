//! Remote URLs (which kind, which host and port, a mirror-safe slug) and the libgit2
//! callbacks that authenticate and verify host keys.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use crate::known_hosts::{HostKey, KnownHosts};
use crate::secret::Secret;
use crate::{Error, ErrorKind};

/// Supplies a token for an `https://` URL (a GitHub App installation token), or none.
///
/// Called with the remote's URL each time an HTTPS remote asks for credentials; the token is
/// sent as the password of the user `x-access-token` (GitHub's convention). It runs on a
/// blocking thread of the tokio runtime, so it may wait for an async call there
/// (`Handle::block_on`); returning `None` tries the remote without a token.
pub type TokenProvider = Arc<dyn Fn(&str) -> Option<Secret> + Send + Sync>;

/// How the git source reaches SSH and HTTPS remotes.
#[derive(Clone)]
pub struct GitAuth {
    /// The private key for SSH remotes; without one, ssh-agent is asked.
    pub private_key: Option<PathBuf>,
    /// The passphrase of `private_key`, when it has one.
    pub passphrase: Option<Secret>,
    /// Host keys of SSH remotes are checked here (accept-new or strict).
    pub known_hosts: KnownHosts,
    /// Tokens for `https://` remotes, asked for whenever a remote wants credentials (so it
    /// may hand out fresh ones); without a provider, HTTPS remotes are reached anonymously.
    pub https_token: Option<TokenProvider>,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("private_key", &self.private_key)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "***"))
            .field("known_hosts", &self.known_hosts)
            .field("https_token", &self.https_token.as_ref().map(|_| "<provider>"))
            .finish()
    }
}

/// What kind of remote a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RemoteKind {
    /// A path or a `file://` URL (or any other scheme libgit2 handles itself).
    Local,
    /// `ssh://` or scp-style: whose host key is checked, on which port (22 by default).
    Ssh { user: Option<String>, host: String, port: u16 },
    /// `https://` or `http://`.
    Https,
}

/// Classifies a remote URL: `https://`/`http://`, `ssh://[user@]host[:port]/path`,
/// scp-style `[user@]host:path`, `file://` and plain paths.
pub(crate) fn classify(url: &str) -> RemoteKind {
    if url.starts_with("https://") || url.starts_with("http://") {
        return RemoteKind::Https;
    }
    if let Some(rest) = url.strip_prefix("ssh://").or_else(|| url.strip_prefix("git+ssh://")) {
        let authority = rest.split('/').next().unwrap_or_default();
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority),
        };
        let (host, port) = split_port(hostport);
        return RemoteKind::Ssh { user, host, port };
    }
    if url.contains("://") || url.starts_with('/') || url.starts_with('.') {
        return RemoteKind::Local;
    }
    // scp-style: a colon before any slash.
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) if slash.is_none_or(|s| colon < s) => {
            let authority = &url[..colon];
            let (user, host) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_owned()), h.to_owned()),
                None => (None, authority.to_owned()),
            };
            RemoteKind::Ssh { user, host, port: 22 }
        }
        _ => RemoteKind::Local,
    }
}

fn split_port(hostport: &str) -> (String, u16) {
    if let Some(rest) = hostport.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(22);
        return (host.to_owned(), port);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse().unwrap_or(22)),
        _ => (hostport.to_owned(), 22),
    }
}

/// The mirror directory name for a URL, as the Go tool derives it: the scheme and any
/// `user@` dropped, an scp-style `:` made a `/`, `.git` trimmed, and every character
/// other than ASCII letters, digits, `.` and `-` replaced with `_`.
pub(crate) fn slug(url: &str) -> String {
    let mut s = url.split_once("://").map_or(url, |(_, rest)| rest).to_owned();
    if let Some(at) = s.find('@')
        && s.find('/').is_none_or(|slash| at < slash)
    {
        s = s[at + 1..].to_owned();
    }
    if let Some(colon) = s.find(':')
        && s.find('/').is_none_or(|slash| colon < slash)
    {
        s.replace_range(colon..=colon, "/");
    }
    let s = s.trim_end_matches('/');
    let s = s.strip_suffix(".git").unwrap_or(s);
    let out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    if out.is_empty() || out.chars().all(|c| c == '.') { "repo".into() } else { out }
}

/// A URL with any password part replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((userinfo, host)) = authority.rsplit_once('@')
            && let Some((user, _password)) = userinfo.split_once(':')
        {
            return format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]);
        }
    }
    url.to_owned()
}

/// libgit2 callbacks for one operation, and what they learned when they refused.
pub(crate) struct Callbacks {
    pub refusal: RefCell<Option<Error>>,
}

impl Callbacks {
    pub fn new() -> Self {
        Self { refusal: RefCell::new(None) }
    }

    /// Builds the callbacks; a refused host key is kept in `self.refusal`.
    pub fn build<'a>(&'a self, auth: &'a GitAuth, url: &'a str) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        let kind = classify(url);
        let mut attempts = 0u32;
        cb.credentials(move |cred_url, username, allowed| {
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str("the remote refused every credential offered"));
            }
            if allowed.contains(CredentialType::SSH_KEY) {
                let user = username.unwrap_or("git");
                return match (&auth.private_key, attempts) {
                    (Some(key), 1) => Cred::ssh_key(user, None, key, auth.passphrase.as_ref().map(Secret::expose)),
                    _ => Cred::ssh_key_from_agent(user),
                };
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && let Some(token) = auth.https_token.as_ref().and_then(|p| p(cred_url))
            {
                return Cred::userpass_plaintext("x-access-token", token.expose());
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(username.unwrap_or("git"));
            }
            Cred::default()
        });
        cb.certificate_check(move |cert, _hostname| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS: libgit2 has already verified the certificate chain.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let RemoteKind::Ssh { host, port, .. } = &kind else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let Some(raw) = hostkey.hostkey() else {
                return Err(git2::Error::from_str("the SSH library gave no host key to verify"));
            };
            let verdict = HostKey::from_blob(raw.to_vec()).and_then(|key| auth.known_hosts.verify(host, *port, &key));
            match verdict {
                Ok(_) => Ok(CertificateCheckStatus::CertificateOk),
                Err(err) => {
                    let msg = err.message().to_owned();
                    *self.refusal.borrow_mut() = Some(err);
                    Err(git2::Error::from_str(&msg))
                }
            }
        });
        cb
    }

    /// Maps a libgit2 error, preferring a host-key refusal recorded by the callbacks.
    pub fn error(&self, operation: &'static str, url: &str, err: git2::Error) -> Error {
        if let Some(refusal) = self.refusal.borrow_mut().take() {
            return refusal.with_repo(redact_url(url));
        }
        map_error(operation, url, err)
    }
}

/// Maps a libgit2 error into the engine's kinds.
pub(crate) fn map_error(operation: &'static str, url: &str, err: git2::Error) -> Error {
    use git2::{ErrorClass, ErrorCode};
    let shown = redact_url(url);
    let kind = match (err.code(), err.class()) {
        (ErrorCode::Auth, _) => ErrorKind::Auth,
        (ErrorCode::Certificate, _) => ErrorKind::HostKey,
        (ErrorCode::NotFound, _) => ErrorKind::NotFound,
        (_, ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Os) => {
            ErrorKind::Unreachable
        }
        _ => ErrorKind::Git,
    };
    let message = err.message().to_owned();
    Error::new(kind, operation, format!("{shown}: {message}")).with_repo(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_url_form() {
        let ssh = |user: Option<&str>, host: &str, port| RemoteKind::Ssh {
            user: user.map(str::to_owned),
            host: host.into(),
            port,
        };
        let cases = [
            ("https://github.com/acme/app.git", RemoteKind::Https),
            ("http://git.local/app", RemoteKind::Https),
            ("ssh://git@github.com/acme/app.git", ssh(Some("git"), "github.com", 22)),
            ("ssh://deploy@10.0.0.1:2222/srv/git/app.git", ssh(Some("deploy"), "10.0.0.1", 2222)),
            ("ssh://[::1]:2200/x", ssh(None, "::1", 2200)),
            ("git@github.com:acme/app.git", ssh(Some("git"), "github.com", 22)),
            ("host:repo.git", ssh(None, "host", 22)),
            ("file:///srv/git/app.git", RemoteKind::Local),
            ("/srv/git/app.git", RemoteKind::Local),
            ("./app.git", RemoteKind::Local),
            ("dir/with:colon", RemoteKind::Local),
        ];
        for (url, want) in cases {
            assert_eq!(classify(url), want, "{url}");
        }
    }

    #[test]
    fn slugs_match_the_go_tool() {
        assert_eq!(slug("git@github.com:org/app.git"), "github.com_org_app");
        assert_eq!(slug("https://github.com/org/app.git"), "github.com_org_app");
        assert_eq!(slug("ssh://git@10.0.0.1:2222/srv/app.git"), "10.0.0.1_2222_srv_app");
        assert_eq!(slug("/tmp/x y/repo"), "_tmp_x_y_repo");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("https://user:s3cret@github.com/a/b.git"), "https://user:***@github.com/a/b.git");
        assert_eq!(redact_url("https://github.com/a/b.git"), "https://github.com/a/b.git");
        assert_eq!(redact_url("git@github.com:a/b.git"), "git@github.com:a/b.git");
    }
}
