//! The daemon's address: a `ws://` or `wss://` URL, checked before anything connects.

use std::fmt;
use std::net::IpAddr;

use super::error::ClientError;

/// The path of the agent endpoint on the daemon, appended to the base URL.
pub const CONNECT_PATH: &str = "/agent/v1/connect";

/// Where the agent connects: scheme, host, port and the full request path. Built by
/// [`Endpoint::parse`], which refuses plaintext `ws://` to anything but this machine: the
/// runner token travels in the upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// Parses `url` (`wss://deeplo.example.com`, `wss://host:8443/base/`, `ws://127.0.0.1:7000`):
    /// the request path is the URL's path, trailing slashes trimmed, with [`CONNECT_PATH`]
    /// appended unless it already ends with it. A query string is kept.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] naming `--url` for another scheme, a missing or bad host or
    /// port, user info in the URL, or `ws://` to a host that is not a loopback address
    /// (`127.0.0.0/8`, `::1`, `localhost`).
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = |why: String| ClientError::Config(format!("--url {url:?}: {why}"));
        let (tls, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") => (true, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => (false, rest),
            _ => return Err(bad("the daemon's URL must start with wss:// (or ws:// to this machine)".into())),
        };
        let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |at| rest.split_at(at));
        if authority.contains('@') {
            return Err(bad("no user info in the URL: the token comes from --token-file".into()));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        if !tls && !is_loopback(&host) {
            return Err(bad(format!(
                "ws:// sends the runner token in clear text; use wss:// (ws:// is only allowed to a loopback \
                 address, not {host})"
            )));
        }
        Ok(Self { tls, host, port, path: connect_path(path) })
    }

    /// Whether the connection runs over TLS (`wss://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request path, [`CONNECT_PATH`] included, with the query if any.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `host:port`, IPv6 in brackets, as in a `Host:` header or a `CONNECT` line.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL the agent requests, without the scheme's default port (so that the `Host:`
/// header is the bare name, as browsers send it).
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, default_port) = if self.tls { ("wss", 443) } else { ("ws", 80) };
        let authority = if self.port == default_port {
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() }
        } else {
            self.authority()
        };
        write!(f, "{scheme}://{authority}{}", self.path)
    }
}

/// `host[:port]` or `[v6][:port]`, into the host (without brackets) and the port.
pub(super) fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 address without its closing ]")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = port.map(|p| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or(format!("bad port {p:?}"))).transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

/// Whether `host` names this machine: `localhost` (and its subdomains, RFC 6761), an
/// address in `127.0.0.0/8`, or `::1`.
pub(super) fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn connect_path(path: &str) -> String {
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    let base = path.trim_end_matches('/');
    let mut full = if base.ends_with(CONNECT_PATH) { base.to_owned() } else { format!("{base}{CONNECT_PATH}") };
    if let Some(query) = query {
        full.push('?');
        full.push_str(query);
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    fn refused(url: &str) -> String {
        Endpoint::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn the_connect_path_is_appended_once() {
        assert_eq!(ok("wss://d.example.com").to_string(), "wss://d.example.com/agent/v1/connect");
        assert_eq!(ok("wss://d.example.com:80").to_string(), "wss://d.example.com:80/agent/v1/connect");
        assert_eq!(ok("ws://[::1]:80/").to_string(), "ws://[::1]/agent/v1/connect");
        assert_eq!(ok("wss://d.example.com/").path(), "/agent/v1/connect");
        assert_eq!(ok("wss://d.example.com/deeplo//").path(), "/deeplo/agent/v1/connect");
        assert_eq!(ok("wss://d.example.com/agent/v1/connect").path(), "/agent/v1/connect");
        assert_eq!(ok("wss://d.example.com/x/agent/v1/connect/").path(), "/x/agent/v1/connect");
        assert_eq!(ok("wss://d.example.com?a=1").path(), "/agent/v1/connect?a=1");
    }

    #[test]
    fn hosts_and_ports() {
        let e = ok("wss://D.Example.com:8443/");
        assert_eq!((e.host(), e.port(), e.tls()), ("d.example.com", 8443, true));
        let e = ok("ws://[::1]:7000");
        assert_eq!((e.host(), e.port(), e.authority()), ("::1", 7000, "[::1]:7000".to_owned()));
        assert_eq!(ok("ws://localhost").port(), 80);
        assert!(refused("wss://:443").contains("no host"));
        assert!(refused("wss://h:0").contains("bad port"));
        assert!(refused("wss://h:99999").contains("bad port"));
        assert!(refused("wss://[::1").contains("closing ]"));
        assert!(refused("wss://user:pw@h").contains("no user info"));
    }

    #[test]
    fn plaintext_only_to_loopback() {
        for url in ["ws://127.0.0.1:1", "ws://127.9.8.7", "ws://localhost:5", "ws://[::1]", "ws://a.localhost"] {
            assert!(!ok(url).tls(), "{url}");
        }
        for url in ["ws://10.0.0.1", "ws://deeplo.example.com", "ws://[::2]", "ws://localhost.example.com"] {
            let message = refused(url);
            assert!(message.contains("use wss://") && message.contains("--url"), "{url}: {message}");
        }
    }

    #[test]
    fn other_schemes_name_the_flag() {
        assert!(ok("WSS://x").tls());
        for url in ["https://d.example.com", "d.example.com", "http://ws://x"] {
            let message = refused(url);
            assert!(message.contains("--url") && message.contains("wss://"), "{url}: {message}");
        }
    }
}
