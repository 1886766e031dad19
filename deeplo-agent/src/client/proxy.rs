//! HTTP proxies: which one the environment names for the daemon's URL, and the `CONNECT`
//! tunnel through it.

use std::fmt;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::endpoint::{Endpoint, split_host_port};
use super::error::ClientError;

/// The longest proxy response head read before the tunnel is given up.
pub const MAX_PROXY_RESPONSE: usize = 8 * 1024;

/// The proxy variables of an environment, read once: `HTTPS_PROXY` for `wss://`,
/// `HTTP_PROXY` for `ws://` (lowercase names win, as with curl), and `NO_PROXY`, a comma
/// list of host suffixes (`example.com` also covers `d.example.com`; `*` covers all).
#[derive(Clone, Default)]
pub struct ProxyEnv {
    https: Option<String>,
    http: Option<String>,
    no_proxy: Vec<String>,
}

impl ProxyEnv {
    /// No proxy at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// The variables of this process's environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The variables as `lookup` gives them, for tests and embedders that keep their own
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            lookup(&name.to_ascii_lowercase()).or_else(|| lookup(name)).filter(|value| !value.trim().is_empty())
        };
        let no_proxy = var("NO_PROXY")
            .unwrap_or_default()
            .split(',')
            .map(|entry| entry.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .collect();
        Self { https: var("HTTPS_PROXY"), http: var("HTTP_PROXY"), no_proxy }
    }

    /// The proxy to reach `endpoint` through, if any.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] naming the variable when its URL is not `http://host:port`.
    pub fn proxy_for(&self, endpoint: &Endpoint) -> Result<Option<Proxy>, ClientError> {
        let (name, value) = if endpoint.tls() { ("HTTPS_PROXY", &self.https) } else { ("HTTP_PROXY", &self.http) };
        let Some(value) = value else { return Ok(None) };
        if self.bypasses(endpoint.host()) {
            return Ok(None);
        }
        Proxy::parse(value).map(Some).map_err(|why| ClientError::Config(format!("{name}: {why}")))
    }

    fn bypasses(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            entry == "*" || host == *entry || host.strip_suffix(entry.as_str()).is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

/// The values may hold a proxy password.
impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |value: &Option<String>| if value.is_some() { "set" } else { "unset" };
        f.debug_struct("ProxyEnv")
            .field("https", &set(&self.https))
            .field("http", &set(&self.http))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// One HTTP proxy: `http://[user:password@]host[:port]` (port 1080 when left out, as curl
/// does).
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    /// `Basic` credentials, base64 of `user:password`, for `Proxy-Authorization`.
    credentials: Option<String>,
}

impl Proxy {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => return Err(format!("a {scheme}:// proxy is not supported; use an http:// proxy")),
            None => url,
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, hostport) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
        let (host, port) = split_host_port(hostport).map_err(|why| format!("{why} in the proxy's URL"))?;
        let credentials = userinfo.map(|userinfo| {
            let plain = percent_decode(userinfo);
            base64::engine::general_purpose::STANDARD.encode(plain)
        });
        Ok(Self { host, port: port.unwrap_or(1080), credentials })
    }

    /// The proxy's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, as errors name it (never the credentials).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Asks the proxy on `stream` for a tunnel to `target`, and returns once it is open:
    /// whatever follows on the stream is the target's.
    ///
    /// # Errors
    ///
    /// [`ClientError::Proxy`] with the proxy's status line when it refuses, or what went
    /// wrong reading its answer.
    pub async fn tunnel(&self, stream: &mut TcpStream, target: &Endpoint) -> Result<(), ClientError> {
        let fail = |reason: String| ClientError::Proxy { proxy: self.address(), reason };
        let authority = target.authority();
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(credentials) = &self.credentials {
            request.push_str(&format!("Proxy-Authorization: Basic {credentials}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| fail(format!("sending CONNECT: {e}")))?;
        let head = read_head(stream).await.map_err(fail)?;
        let status_line = head.lines().next().unwrap_or_default().trim().to_owned();
        let status = status_line.split_whitespace().nth(1).and_then(|code| code.parse::<u16>().ok());
        match status {
            Some(200..=299) => Ok(()),
            _ => Err(fail(format!("refused the tunnel to {authority}: {status_line:?}"))),
        }
    }
}

/// The credentials are secret.
impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.address())
            .field("credentials", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Reads up to the blank line that ends the response head, one byte at a time so that no
/// byte of the tunnel is consumed.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PROXY_RESPONSE {
            return Err(format!("a response head longer than {MAX_PROXY_RESPONSE} bytes"));
        }
        let byte = stream.read_u8().await.map_err(|e| format!("reading the answer to CONNECT: {e}"))?;
        head.push(byte);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn proxy(env: &ProxyEnv, url: &str) -> Option<String> {
        env.proxy_for(&Endpoint::parse(url).unwrap()).unwrap().map(|p| p.address())
    }

    #[test]
    fn the_scheme_picks_the_variable_and_lowercase_wins() {
        let e = env(&[("HTTPS_PROXY", "http://upper:3128"), ("https_proxy", "lower:8080"), ("HTTP_PROXY", "plain:1")]);
        assert_eq!(proxy(&e, "wss://d.example.com").as_deref(), Some("lower:8080"));
        assert_eq!(proxy(&e, "ws://127.0.0.1:9").as_deref(), Some("plain:1"));
        assert_eq!(proxy(&env(&[]), "wss://d.example.com"), None);
        assert_eq!(proxy(&env(&[("HTTPS_PROXY", "http://p")]), "wss://x").as_deref(), Some("p:1080"));
    }

    #[test]
    fn no_proxy_is_a_list_of_suffixes() {
        let e = env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", " .example.com, 10.0.0.1,other")]);
        assert_eq!(proxy(&e, "wss://d.example.com"), None);
        assert_eq!(proxy(&e, "wss://example.com"), None);
        assert_eq!(proxy(&e, "wss://10.0.0.1"), None);
        assert!(proxy(&e, "wss://notexample.com").is_some());
        assert!(proxy(&e, "wss://another").is_some());
        assert_eq!(proxy(&env(&[("HTTPS_PROXY", "p:1"), ("NO_PROXY", "*")]), "wss://x"), None);
    }

    #[test]
    fn credentials_become_basic_auth_and_stay_out_of_debug() {
        let p = Proxy::parse("http://al%40ice:s3cret@proxy.internal:3128/").unwrap();
        assert_eq!(p.address(), "proxy.internal:3128");
        assert_eq!(p.credentials.as_deref(), Some("YWxAaWNlOnMzY3JldA=="));
        assert!(!format!("{p:?}").contains("s3cret") && !format!("{p:?}").contains("YWxA"));
        let e = env(&[("HTTPS_PROXY", "http://u:s3cret@p:1")]);
        assert!(!format!("{e:?}").contains("s3cret"));
        let bad = env(&[("HTTPS_PROXY", "https://p:1")]).proxy_for(&Endpoint::parse("wss://x").unwrap());
        assert!(bad.unwrap_err().to_string().starts_with("HTTPS_PROXY: a https:// proxy"));
    }
}
