//! One connection, from the hello to its end: the handshake, then an [`Executor`] of its
//! own on bounded channels between the socket's frames and the requests, with heartbeats
//! and fingerprint updates on the side. The commands outlive the connection in the
//! [`Spool`]; the next connection's executor takes them up.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::config::ClientConfig;
use super::connect::{AGENT_VERSION, Socket};
use super::error::ClientError;
use crate::agent::fingerprint::{self, FINGERPRINT_INTERVAL};
use crate::agent::{Executor, Spool};
use crate::protocol::{
    self, CloseCode, Fingerprint, Frame, Hello, PROTOCOL_VERSION, ToAgent, ToDaemon, Welcome, accept_welcome,
};

/// How long the daemon has to answer the hello.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// The capacity of the channels between the socket and the executor, each way.
pub const CHANNEL_CAPACITY: usize = 64;

/// How long a close handshake may take before the socket is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What one read from the socket amounts to.
enum Read {
    /// A request for the executor.
    Frame(ToAgent),
    /// A ping or pong: nothing to do (tungstenite answers pings itself).
    Nothing,
    /// The daemon broke the protocol: close with this code.
    Violation(CloseCode, String),
    /// The connection is over.
    End(ClientError),
}

/// Runs one connection on `socket` until it ends or `shutdown` completes (then closes it
/// with 1000 and returns `Ok`). `welcomed` is set once the daemon's welcome is accepted.
pub(super) async fn run<F: Future<Output = ()>>(
    mut socket: Socket,
    config: &ClientConfig,
    spool: &Arc<Spool>,
    mut shutdown: Pin<&mut F>,
    welcomed: &mut bool,
) -> Result<(), ClientError> {
    let result = async {
        let welcome = tokio::select! {
            () = shutdown.as_mut() => return stop(&mut socket).await,
            welcome = handshake(&mut socket, config) => welcome?,
        };
        *welcomed = true;
        tracing::info!(
            daemon_version = %welcome.daemon_version,
            protocol = welcome.protocol,
            heartbeat_secs = welcome.heartbeat_interval_secs,
            "connected to the daemon"
        );
        let (to_executor, incoming) = mpsc::channel(CHANNEL_CAPACITY);
        let (outgoing, mut replies) = mpsc::channel(CHANNEL_CAPACITY);
        let executor = tokio::spawn(Executor::new(outgoing.clone(), Arc::clone(spool)).run(incoming));
        let channels = Channels { to_executor, replies: &mut replies, outgoing };
        let end = serve(&mut socket, &welcome, config, channels, shutdown).await;
        // The executor ends with its input (and cannot wait on its replies, dropped first);
        // its commands go on under their keepers.
        drop(replies);
        let _ = executor.await;
        end
    }
    .await;
    if let Err(ClientError::Closed { .. }) = result {
        // Send the close frame tungstenite queued in answer to the daemon's.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
    }
    result
}

/// Sends the hello and waits for an acceptable welcome.
async fn handshake(socket: &mut Socket, config: &ClientConfig) -> Result<Welcome, ClientError> {
    let fingerprint = read_fingerprint(config.deploy_dir.clone()).await;
    let hello = Hello { protocol: PROTOCOL_VERSION, agent_version: AGENT_VERSION.to_owned(), fingerprint };
    send(socket, ToDaemon::Hello(hello)).await?;
    let deadline = Instant::now() + WELCOME_TIMEOUT;
    let first = loop {
        let Ok(next) = tokio::time::timeout_at(deadline, socket.next()).await else {
            close(socket, 1000, "no welcome in time").await;
            return Err(ClientError::NoWelcome(WELCOME_TIMEOUT.as_secs()));
        };
        match classify(next) {
            Read::Nothing => continue,
            Read::Frame(frame) => break frame,
            Read::Violation(code, detail) => return Err(violation(socket, code, detail).await),
            Read::End(end) => return Err(end),
        }
    };
    let ToAgent::Welcome(welcome) = first else {
        let detail = format!("a {} frame before the welcome", first.kind());
        return Err(violation(socket, CloseCode::ProtocolViolation, detail).await);
    };
    if let Err(mismatch) = accept_welcome(&welcome) {
        tracing::error!("{mismatch}");
        let code = mismatch.close_code();
        close(socket, code.as_u16(), code.reason()).await;
        return Err(mismatch.into());
    }
    Ok(welcome)
}

/// The channels between the socket and the connection's executor.
struct Channels<'a> {
    to_executor: mpsc::Sender<ToAgent>,
    replies: &'a mut mpsc::Receiver<ToDaemon>,
    outgoing: mpsc::Sender<ToDaemon>,
}

/// The welcomed connection: frames in to the executor, its replies out, heartbeats.
async fn serve<F: Future<Output = ()>>(
    socket: &mut Socket,
    welcome: &Welcome,
    config: &ClientConfig,
    channels: Channels<'_>,
    mut shutdown: Pin<&mut F>,
) -> Result<(), ClientError> {
    let Channels { to_executor, replies, outgoing } = channels;
    let fingerprints = tokio::spawn(report_fingerprints(outgoing, config.deploy_dir.clone()));
    let period = Duration::from_secs(welcome.heartbeat_interval_secs.max(1).into());
    let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // A request read but not yet taken by the executor. While it waits, the socket is not
    // read, but replies still go out: the executor may be waiting for room for them.
    let mut pending: Option<ToAgent> = None;
    let end = loop {
        tokio::select! {
            () = shutdown.as_mut() => break stop(socket).await,
            next = socket.next(), if pending.is_none() => match classify(next) {
                Read::Frame(frame) => pending = Some(frame),
                Read::Nothing => {}
                Read::Violation(code, detail) => break Err(violation(socket, code, detail).await),
                Read::End(end) => break Err(end),
            },
            permit = to_executor.reserve(), if pending.is_some() => match (permit, pending.take()) {
                (Ok(permit), Some(frame)) => permit.send(frame),
                _ => break Err(ClientError::Lost("the executor stopped".into())),
            },
            Some(reply) = replies.recv() => {
                if let Err(e) = send(socket, reply).await {
                    break Err(e);
                }
            }
            _ = heartbeat.tick() => {
                if let Err(e) = send(socket, ToDaemon::Heartbeat).await {
                    break Err(e);
                }
            }
        }
    };
    fingerprints.abort();
    end
}

/// Sends a fresh fingerprint every [`FINGERPRINT_INTERVAL`] until the connection drops the
/// receiving end.
async fn report_fingerprints(outgoing: mpsc::Sender<ToDaemon>, deploy_dir: PathBuf) {
    let mut ticks = tokio::time::interval_at(Instant::now() + FINGERPRINT_INTERVAL, FINGERPRINT_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let fingerprint = read_fingerprint(deploy_dir.clone()).await;
        if outgoing.send(ToDaemon::FingerprintUpdate(fingerprint)).await.is_err() {
            return;
        }
    }
}

/// The fingerprint with the Docker versions; the host's own facts are read from files, off
/// the async threads.
async fn read_fingerprint(deploy_dir: PathBuf) -> Fingerprint {
    let docker = fingerprint::collect_docker();
    let read = tokio::task::spawn_blocking(move || fingerprint::read_host(&deploy_dir));
    let ((docker_version, compose_version), host) = tokio::join!(docker, read);
    // `read_host` reports what it cannot read instead of failing: a panic there is a bug,
    // passed on as it is.
    let host = host.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    Fingerprint { docker_version, compose_version, ..host }
}

fn classify(next: Option<Result<Message, WsError>>) -> Read {
    match next {
        None => Read::End(ClientError::Lost("the connection ended without a close frame".into())),
        Some(Ok(Message::Binary(bytes))) => match protocol::decode(&bytes).and_then(Frame::into_to_agent) {
            Ok(frame) => Read::Frame(frame),
            Err(e) => Read::Violation(e.close_code(), e.to_string()),
        },
        Some(Ok(Message::Text(_))) => {
            Read::Violation(CloseCode::ProtocolViolation, "a text message (frames are binary)".into())
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Read::Nothing,
        Some(Ok(Message::Close(frame))) => Read::End(ClientError::Closed {
            code: frame.as_ref().map(|f| u16::from(f.code)),
            reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
        }),
        Some(Err(WsError::Capacity(e))) => Read::Violation(CloseCode::MessageTooBig, e.to_string()),
        Some(Err(e)) => Read::End(ClientError::Lost(e.to_string())),
    }
}

async fn send(socket: &mut Socket, message: ToDaemon) -> Result<(), ClientError> {
    let bytes = match protocol::encode(&Frame::from(message)) {
        Ok(bytes) => bytes,
        Err(e) => {
            // The executor's frames keep the limits; one that does not is a bug, and the
            // daemon would refuse it anyway.
            tracing::error!(error = %e, "dropping a frame this agent cannot encode");
            return Ok(());
        }
    };
    socket.send(Message::Binary(bytes.into())).await.map_err(|e| ClientError::Lost(e.to_string()))
}

async fn violation(socket: &mut Socket, code: CloseCode, detail: String) -> ClientError {
    tracing::warn!(code = code.as_u16(), "{detail}");
    close(socket, code.as_u16(), code.reason()).await;
    ClientError::Violation { code, detail }
}

async fn stop(socket: &mut Socket) -> Result<(), ClientError> {
    tracing::info!("stopping: closing the connection");
    close(socket, 1000, "agent stopping").await;
    Ok(())
}

/// Sends a close frame and waits (briefly) for the daemon's, so that it reads the code.
async fn close(socket: &mut Socket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code: WsCloseCode::from(code), reason: reason.into() };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if socket.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}
