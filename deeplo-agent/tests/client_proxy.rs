//! The agent through a real HTTP `CONNECT` proxy: Debian's tinyproxy, started by the test
//! with a configuration of its own (`.ci/install-deps` installs it). A missing or broken
//! tinyproxy fails the test: it is never skipped.

mod client_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_support::{DEADLINE, Daemon, Upgrade, options, spawn, token_file};
use deeplo_agent::client::{Client, ClientError, ProxyEnv};

/// How often a condition is polled until its deadline.
const POLL: Duration = Duration::from_millis(20);

/// A tinyproxy in the foreground on a free port of 127.0.0.1, killed on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT is allowed to every port.
        let text = format!(
            "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nLogFile \"{}\"\nLogLevel Info\nMaxClients 16\nTimeout 60\n",
            log.display()
        );
        std::fs::write(&config, text).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run tinyproxy: install it with `apt-get install -y tinyproxy` (.ci/install-deps does)");
        let mut proxy = Self { child, port, log, _dir: dir };
        proxy.wait_listening();
        proxy
    }

    fn wait_listening(&mut self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tinyproxy exited with {status} before listening; its log: {}", self.log_text());
            }
            assert!(start.elapsed() < DEADLINE, "tinyproxy does not listen on {}", self.port);
            std::thread::sleep(POLL);
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_agent_tunnels_through_an_http_proxy() {
    let proxy = Tinyproxy::start();
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let mut agent_options = options(&daemon.ws_url(), &token);
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    agent_options.proxy = ProxyEnv::from_lookup(|name| (name == "HTTP_PROXY").then(|| proxy_url.clone()));
    let mut agent = spawn(agent_options);
    let mut conn = daemon.next().await;
    conn.welcome(5).await;
    let target = format!("CONNECT 127.0.0.1:{}", daemon.port);
    let start = Instant::now();
    while !proxy.log_text().contains(&target) {
        assert!(start.elapsed() < DEADLINE, "the proxy did not log {target:?}: {}", proxy.log_text());
        tokio::time::sleep(POLL).await;
    }
    agent.stop();
    assert_eq!(conn.expect_close().await.0, 1000);
    agent.finished().await.unwrap();
}

#[tokio::test]
async fn a_proxy_refusal_names_the_proxy_and_its_status() {
    let proxy = Tinyproxy::start();
    let token = token_file();
    // Nothing listens on the target: the proxy answers CONNECT with an error status.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut agent_options = options(&format!("ws://127.0.0.1:{closed}"), &token);
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    agent_options.proxy = ProxyEnv::from_lookup(|name| (name == "http_proxy").then(|| proxy_url.clone()));
    let end = Client::new(agent_options.build().unwrap()).connect_once(std::future::pending()).await;
    let err = end.result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ClientError::Proxy { .. }), "{err:?}");
    assert!(message.contains(&format!("proxy 127.0.0.1:{}", proxy.port)), "{message}");
    assert!(message.contains("HTTP/1."), "the status line: {message}");
}
