//! The simulated agents: each one a WebSocket client task in this process that speaks the
//! agent's side of the protocol as the real agent does when nothing is deployed (hello,
//! then heartbeats and a fingerprint update), and nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deeplo_agent::hub::{CONNECT_PATH, HOST_HEADER};
use deeplo_agent::protocol::{self, Fingerprint, Frame, Hello, PROTOCOL_VERSION, ToAgent, ToDaemon};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, http::header};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one agent may take from its TCP connect to the welcome.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(120);

/// One simulated agent's identity: the host its token is bound to, and the token.
#[derive(Clone)]
pub(crate) struct Credential {
    pub(crate) host: String,
    pub(crate) token: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("host", &self.host).field("token", &"***").finish()
    }
}

/// What the agents counted, shared with their tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Welcome frames received.
    pub(crate) welcomed: AtomicUsize,
    /// Fingerprint updates sent.
    pub(crate) fingerprints: AtomicUsize,
    /// Heartbeats sent.
    pub(crate) heartbeats: AtomicUsize,
    /// Connections the daemon ended (a close frame or the end of the stream) while the
    /// agents were meant to stay connected.
    pub(crate) closed: AtomicUsize,
}

/// The agents, connected: their tasks run until [`Swarm::stop`].
#[derive(Debug)]
pub(crate) struct Swarm {
    pub(crate) counters: Arc<Counters>,
    /// Each agent's time from its TCP connect to the welcome, in ms.
    pub(crate) handshake_ms: Vec<f64>,
    /// From the first connect to the last welcome.
    pub(crate) connect_all: Duration,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Swarm {
    /// Connects one agent per credential to the hub on `port`, at most `parallel`
    /// handshakes at a time (so that the listener's backlog is never overrun), and returns
    /// once every one is welcomed.
    pub(crate) async fn connect(port: u16, credentials: &[Credential], parallel: usize) -> anyhow::Result<Self> {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(parallel.max(1)));
        let (welcomes, mut welcomed) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        let clock = Instant::now();
        for (index, credential) in credentials.iter().cloned().enumerate() {
            let permit = Arc::clone(&gate).acquire_owned().await?;
            let counters = Arc::clone(&counters);
            let welcomes = welcomes.clone();
            let stopped = stopped.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(port, &credential)).await;
                drop(permit);
                let (socket, interval) = match handshake {
                    Ok(Ok(done)) => done,
                    Ok(Err(err)) => {
                        let _ = welcomes.send(Err(format!("{}: {err:#}", credential.host)));
                        return;
                    }
                    Err(_) => {
                        let _ =
                            welcomes.send(Err(format!("{}: no welcome within {HANDSHAKE_TIMEOUT:?}", credential.host)));
                        return;
                    }
                };
                counters.welcomed.fetch_add(1, Ordering::Relaxed);
                let _ = welcomes.send(Ok(started.elapsed().as_secs_f64() * 1e3));
                live(socket, interval, index, &counters, stopped).await;
            });
        }
        drop(welcomes);
        let mut handshake_ms = Vec::with_capacity(credentials.len());
        while let Some(outcome) = welcomed.recv().await {
            match outcome {
                Ok(ms) => handshake_ms.push(ms),
                Err(why) => bail!("an agent was not welcomed: {why}"),
            }
            if handshake_ms.len() == credentials.len() {
                break;
            }
        }
        let connect_all = clock.elapsed();
        Ok(Self { counters, handshake_ms, connect_all, stop, tasks })
    }

    /// Closes every connection (a close frame each) and waits for the tasks.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The upgrade with the token, the hello, the welcome; returns the socket and the heartbeat
/// interval the welcome gave.
async fn handshake(port: u16, credential: &Credential) -> anyhow::Result<(Socket, Duration)> {
    let mut request = format!("ws://127.0.0.1:{port}{CONNECT_PATH}").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", credential.token))?);
    headers.insert(HOST_HEADER, HeaderValue::from_str(&credential.host)?);
    // Small buffers, as the daemon's own side uses: 5,000 clients at the library's default
    // of 128 KiB each would be this process's largest cost.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await.context("WebSocket upgrade")?;
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        fingerprint: fingerprint(0),
    };
    send(&mut socket, ToDaemon::Hello(hello)).await?;
    loop {
        match socket.next().await.context("the connection ended before the welcome")?? {
            Message::Binary(bytes) => match protocol::decode(&bytes)?.into_to_agent()? {
                ToAgent::Welcome(welcome) => {
                    return Ok((socket, Duration::from_secs(welcome.heartbeat_interval_secs.max(1).into())));
                }
                other => bail!("{} before the welcome", other.kind()),
            },
            Message::Close(frame) => bail!("closed before the welcome: {frame:?}"),
            _ => {}
        }
    }
}

/// A welcomed agent: a heartbeat every `interval` (the first at a phase of its own, as
/// agents that connected at different times would be), a fingerprint update with the first
/// one, until told to stop or the daemon ends the connection.
async fn live(
    mut socket: Socket,
    interval: Duration,
    index: usize,
    counters: &Counters,
    mut stop: watch::Receiver<bool>,
) {
    let phase = interval.mul_f64((index % 97) as f64 / 97.0);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    let mut fingerprinted = false;
    loop {
        tokio::select! {
            // The only change ever sent is the stop (an error: the swarm is gone).
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return;
            }
            _ = ticks.tick() => {
                if send(&mut socket, ToDaemon::Heartbeat).await.is_err() {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                counters.heartbeats.fetch_add(1, Ordering::Relaxed);
                if !fingerprinted {
                    if send(&mut socket, ToDaemon::FingerprintUpdate(fingerprint(index as u64 + 1))).await.is_err() {
                        counters.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    fingerprinted = true;
                    counters.fingerprints.fetch_add(1, Ordering::Relaxed);
                }
            }
            message = socket.next() => match message {
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send(socket: &mut Socket, message: ToDaemon) -> anyhow::Result<()> {
    let bytes = protocol::encode(&Frame::from(message))?;
    socket.send(Message::Binary(bytes.into())).await?;
    Ok(())
}

/// What a Debian server with Docker reports; `change` moves the free disk space, as an
/// update after a deploy would.
fn fingerprint(change: u64) -> Fingerprint {
    Fingerprint {
        os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
        kernel: "6.1.0-28-amd64".to_owned(),
        arch: "x86_64".to_owned(),
        docker_version: Some("27.3.1".to_owned()),
        compose_version: Some("2.29.7".to_owned()),
        disk_free_bytes: Some(41_234_567_168 - change * 4096),
        memory_bytes: Some(4_112_396_288),
    }
}
