//! The agent's connection loop, the heart of the `deeplo-agent` program, as a library so
//! that tests and embedders run it in-process.
//!
//! [`Client::run`] connects to the daemon's [`CONNECT_PATH`] over a WebSocket, says hello,
//! serves the daemon's requests with an [`Executor`](crate::agent::Executor) (one per
//! connection, its commands kept in the [`Spool`](crate::agent::Spool) across them) and
//! connects again after [`reconnect_delay`] when the connection ends, until the daemon refuses the agent for good ([`ClientError::is_final`]) or the
//! caller's shutdown future completes.
//!
//! # The upgrade request
//!
//! `GET <base path>/agent/v1/connect` with the standard WebSocket headers and
//! `Authorization: Bearer <token>`, `User-Agent: deeplo-agent/<version>` and, when the
//! server's name is given, [`HOST_HEADER`] (`Deeplo-Agent-Host: <name>`). An HTTP 401 or
//! 403 answer is final. The token is in no error and no log of this crate, but tungstenite
//! logs the whole request at TRACE level under `tungstenite::handshake::client`: a
//! subscriber that may run at TRACE caps that target (the binary does).
//!
//! # Transport
//!
//! `wss://` uses rustls (ring) with the system's roots (`rustls-native-certs`) or only the
//! certificates of `--ca-file`, the server name verified, and optionally a pin of the leaf
//! certificate's SHA-256. `ws://` is only allowed to a loopback address. `HTTPS_PROXY`
//! (`wss://`) or `HTTP_PROXY` (`ws://`) route the connection through an HTTP proxy's
//! `CONNECT` tunnel, unless `NO_PROXY` covers the host ([`ProxyEnv`]).
//!
//! ```no_run
//! use deeplo_agent::client::{Client, ClientOptions, ProxyEnv};
//!
//! # async fn example() -> Result<(), deeplo_agent::client::ClientError> {
//! let mut options = ClientOptions::new("wss://deeplo.example.com", "/etc/deeplo/agent.token");
//! options.host = Some("web-1".into());
//! options.proxy = ProxyEnv::from_env();
//! let client = Client::new(options.build()?);
//! client.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await
//! # }
//! ```

mod config;
mod connect;
mod endpoint;
mod error;
mod proxy;
mod session;
mod tls;

use std::future::Future;

pub use config::{ClientConfig, ClientOptions, DEFAULT_DEPLOY_DIR, DEFAULT_STATE_DIR, Token};
pub use connect::{AGENT_VERSION, CONNECT_TIMEOUT, HOST_HEADER};
pub use endpoint::{CONNECT_PATH, Endpoint};
pub use error::ClientError;
pub use proxy::{MAX_PROXY_RESPONSE, Proxy, ProxyEnv};
pub use session::{CHANNEL_CAPACITY, WELCOME_TIMEOUT};
pub use tls::Pin;

use crate::protocol::reconnect_delay;

/// How one connection ended ([`Client::connect_once`]).
#[derive(Debug)]
#[must_use]
pub struct SessionEnd {
    /// Whether the daemon's welcome was accepted: the next attempt starts the backoff over.
    pub welcomed: bool,
    /// `Ok` when the shutdown future completed, else why the connection ended.
    pub result: Result<(), ClientError>,
}

/// The agent's side of the connection, built from a checked [`ClientConfig`].
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
}

impl Client {
    /// A client that connects with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Self { config }
    }

    /// Connects, serves and reconnects until `shutdown` completes (the socket is closed with
    /// code 1000, `Ok`) or the daemon refuses this agent for good.
    ///
    /// # Errors
    ///
    /// The final [`ClientError`]: a close code that says not to retry (4401, 4409, 4410,
    /// quoting the daemon's reason) or an HTTP 401/403 on the upgrade. Everything else is
    /// logged and retried.
    ///
    /// The commands still running when it returns go on under their keepers: an agent
    /// started again within the daemon's grace takes them up.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ClientError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut attempt: u32 = 0;
        loop {
            let end = self.connect_with(shutdown.as_mut()).await;
            match end.result {
                Ok(()) => return Ok(()),
                Err(e) if e.is_final() => return Err(e),
                Err(e) => {
                    if end.welcomed {
                        attempt = 0;
                    }
                    let delay = reconnect_delay(attempt, &mut rand::rng());
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "connection ended; reconnecting");
                    tokio::select! {
                        () = shutdown.as_mut() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One connection: connects, says hello and serves until it ends or `shutdown`
    /// completes. [`run`](Self::run) is this in a loop with the backoff.
    pub async fn connect_once(&self, shutdown: impl Future<Output = ()>) -> SessionEnd {
        self.connect_with(shutdown).await
    }

    async fn connect_with(&self, shutdown: impl Future<Output = ()>) -> SessionEnd {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut welcomed = false;
        tracing::debug!(url = %self.config.endpoint, "connecting");
        let socket = tokio::select! {
            () = shutdown.as_mut() => return SessionEnd { welcomed, result: Ok(()) },
            socket = connect::open(&self.config) => socket,
        };
        let result = match socket {
            Ok(socket) => session::run(socket, &self.config, &self.config.spool, shutdown, &mut welcomed).await,
            Err(e) => Err(e),
        };
        SessionEnd { welcomed, result }
    }
}
