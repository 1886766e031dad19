//! Serving one agent's WebSocket: the token, the handshake, then the frames both ways until
//! the connection ends, with the close code that says why.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use deeplo_core::Secret;
use deeplo_core::model::HostName;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::connection::AgentConnection;
use super::registry::{AgentInfo, Hub, Live};
use crate::protocol::{
    self, CloseCode, Frame, Hello, MAX_FRAME_BYTES, ProtocolError, ToAgent, ToDaemon, VersionMismatch, Welcome,
};

/// Frames queued each way between the socket and the connection.
const QUEUE: usize = 64;

/// How long the close handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the agent presented with the upgrade request.
#[derive(Debug)]
pub(super) struct Presented {
    /// The bearer token, if any.
    pub(super) token: Option<Secret>,
    /// The host the agent says it serves (`Deeplo-Agent-Host`), if it says.
    pub(super) host: Option<String>,
}

/// How a connection ends: the close code (none for a peer that is simply gone), the reason
/// sent in the close frame, and the longer one for the logs and the server's history.
#[derive(Debug)]
struct End {
    code: Option<u16>,
    reason: String,
    log: String,
}

impl End {
    fn code(code: CloseCode, log: impl Into<String>) -> Self {
        Self { code: Some(code.as_u16()), reason: code.reason().to_owned(), log: log.into() }
    }

    fn protocol(error: &ProtocolError) -> Self {
        Self::code(error.close_code(), error.to_string())
    }

    fn gone(log: impl Into<String>) -> Self {
        Self { code: None, reason: String::new(), log: log.into() }
    }

    /// Whether the same agent may reconnect and carry on: the network or the agent's
    /// silence ended it, or a newer connection of the same server took over; not a refusal
    /// or a breach of the protocol.
    fn may_come_back(&self) -> bool {
        match self.code {
            None => true,
            Some(code) => [CloseCode::HeartbeatMissed, CloseCode::Replaced].iter().any(|c| c.as_u16() == code),
        }
    }
}

/// Serves one upgraded socket to its end.
pub(super) async fn serve(hub: Arc<Hub>, socket: WebSocket, presented: Presented) {
    let (mut sink, mut stream) = socket.split();
    match accept(&hub, &presented, &mut sink, &mut stream).await {
        Ok(accepted) => run(hub, accepted, sink, stream).await,
        Err(end) => {
            tracing::info!(claimed = ?presented.host, code = ?end.code, why = %end.log, "agent refused");
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(close_message(&end))).await;
        }
    }
}

/// A connection past its handshake.
struct Accepted {
    host: HostName,
    hello: Hello,
    protocol: u16,
}

/// The token, then the hello and the welcome.
async fn accept(
    hub: &Hub,
    presented: &Presented,
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
) -> Result<Accepted, End> {
    let host = admit(hub, presented).await?;
    let timeout = hub.options.hello_timeout;
    let hello = match tokio::time::timeout(timeout, next_frame(stream)).await {
        Err(_) => return Err(End::code(CloseCode::ProtocolViolation, format!("no hello within {timeout:?}"))),
        Ok(Err(end)) => return Err(end),
        Ok(Ok(ToDaemon::Hello(hello))) => hello,
        Ok(Ok(other)) => {
            return Err(End::code(CloseCode::ProtocolViolation, format!("{} before the hello", other.kind())));
        }
    };
    let protocol = protocol::negotiate(&hello).map_err(|mismatch| End {
        code: Some(mismatch.close_code().as_u16()),
        reason: mismatch_reason(&mismatch),
        log: mismatch.to_string(),
    })?;
    let welcome = Welcome {
        protocol,
        daemon_version: hub.options.daemon_version.clone(),
        heartbeat_interval_secs: hub.options.heartbeat_interval_secs,
        heartbeat_allowance: hub.options.heartbeat_allowance,
    };
    let bytes = protocol::encode(&Frame::from(ToAgent::Welcome(welcome))).map_err(|e| End::protocol(&e))?;
    sink.send(Message::Binary(bytes.into())).await.map_err(|e| End::gone(format!("cannot send the welcome: {e}")))?;
    Ok(Accepted { host, hello, protocol })
}

/// The welcomed connection: registered with the hub, its frames passed both ways, until it
/// ends.
async fn run(
    hub: Arc<Hub>,
    accepted: Accepted,
    sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
) {
    let Accepted { host, hello, protocol } = accepted;
    let now = Timestamp::now();
    let agent_version = hello.agent_version.clone();
    let live = Arc::new(Live::new(AgentInfo {
        host: host.clone(),
        agent_version: hello.agent_version,
        protocol,
        fingerprint: hello.fingerprint,
        connected_at: now,
        last_seen: now,
    }));
    // The same agent coming back within the grace (or started again) carries on the
    // requests of its last connection: the same ids, the same callers waiting for their
    // replies. The first request says which, none on a fresh connection: the agent stops
    // the commands nobody waits for.
    let (connection, outgoing, to_daemon, requests) = match hub.adopt(&host).await {
        Some(detached) => {
            let requests = detached.connection.resumes();
            tracing::info!(host = %host, requests = requests.len(), "the agent is back; re-attaching its requests");
            (detached.connection, detached.outgoing, detached.to_daemon, requests)
        }
        None => {
            let (to_agent, outgoing) = mpsc::channel(QUEUE);
            let (to_daemon, incoming) = mpsc::channel(QUEUE);
            (Arc::new(AgentConnection::new(host.as_str(), to_agent, incoming)), outgoing, to_daemon, Vec::new())
        }
    };
    let first = ToAgent::Reattach { requests };
    let violated = connection.violated();
    tokio::pin!(violated);
    let (kick, mut kicked) = oneshot::channel();
    let (close, closing) = oneshot::channel();
    let writer = tokio::spawn(write(sink, Arc::clone(&connection), outgoing, closing, first));
    let registration = hub.register(Arc::clone(&connection), Arc::clone(&live), kick);
    tracing::info!(host = %host, agent = %agent_version, protocol, "agent connected");

    let options = &hub.options;
    let silence =
        Duration::from_secs(u64::from(options.heartbeat_interval_secs) * u64::from(options.heartbeat_allowance));
    let end = loop {
        tokio::select! {
            code = &mut kicked => match code {
                Ok(code) => break End::code(code, format!("closed by the daemon: {}", code.reason())),
                // The register dropped its end without a word: it replaced this connection
                // before it could tell, which only happens as the hub goes away.
                Err(_) => break End::code(CloseCode::Replaced, "the hub let the connection go"),
            },
            () = &mut violated => break End::code(CloseCode::ProtocolViolation, "a reply to no request in flight"),
            frame = tokio::time::timeout(silence, next_frame(&mut stream)) => match frame {
                Err(_) => break End::code(CloseCode::HeartbeatMissed, format!("no frame for {silence:?}")),
                Ok(Err(end)) => break end,
                Ok(Ok(message)) => {
                    live.seen(Timestamp::now());
                    match message {
                        ToDaemon::Heartbeat => {}
                        ToDaemon::Hello(_) => break End::code(CloseCode::ProtocolViolation, "a second hello"),
                        ToDaemon::Reattached { id, running } => {
                            if !running && connection.end_request(id) {
                                tracing::warn!(host = %host, id = id.0, "the agent no longer runs a request; it fails as lost");
                            }
                        }
                        ToDaemon::FingerprintUpdate(fingerprint) => {
                            live.info.lock().unwrap().fingerprint = fingerprint.clone();
                            hub.fingerprint(&host, fingerprint);
                        }
                        reply => {
                            if to_daemon.send(reply).await.is_err() {
                                break End::gone("the connection's routing stopped");
                            }
                        }
                    }
                }
            },
        }
    };
    let detach = end.may_come_back() && !hub.options.grace.is_zero() && !connection.in_flight().is_empty();
    if !detach {
        // Out of the register first, so that no new transport gets this connection; then
        // its requests end (Unreachable) and the close frame goes out.
        hub.deregister(registration, end.log.clone());
        drop(to_daemon);
        drop(connection);
        let _ = close.send(close_message(&end));
        let mut writer = writer;
        if tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await.is_err() {
            writer.abort();
        }
    } else {
        // The writer hands back what it had not sent, for the next connection to send.
        let _ = close.send(close_message(&end));
        let mut writer = writer;
        match tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await {
            Ok(Ok(outgoing)) => hub.detach(&registration, connection, outgoing, to_daemon),
            _ => writer.abort(),
        }
        hub.deregister(registration, end.log.clone());
    }
    tracing::info!(host = %host, code = ?end.code, why = %end.log, "agent disconnected");
}

/// Sends `first` (the reattach), then the connection's frames to the socket, then the
/// close frame; returns the channel of frames still to send, for a connection that is
/// detached. A frame whose write failed is lost with the socket; every frame written is
/// reported to the `connection` (for the input counts of a later reattach).
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    connection: Arc<AgentConnection>,
    mut outgoing: mpsc::Receiver<ToAgent>,
    mut closing: oneshot::Receiver<Message>,
    first: ToAgent,
) -> mpsc::Receiver<ToAgent> {
    if let Ok(bytes) = protocol::encode(&Frame::from(first))
        && sink.send(Message::Binary(bytes.into())).await.is_err()
    {
        return outgoing;
    }
    loop {
        tokio::select! {
            biased;
            close = &mut closing => {
                if let Ok(close) = close {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(close)).await;
                }
                return outgoing;
            }
            message = outgoing.recv() => {
                let Some(message) = message else {
                    // The connection is gone; the close frame follows.
                    if let Ok(close) = (&mut closing).await {
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(close)).await;
                    }
                    return outgoing;
                };
                let frame = Frame::from(message);
                match protocol::encode(&frame) {
                    Ok(bytes) => {
                        if sink.send(Message::Binary(bytes.into())).await.is_err() {
                            return outgoing;
                        }
                        if let Frame::ToAgent(message) = &frame {
                            connection.sent(message);
                        }
                    }
                    // The connection checks every message before it queues it.
                    Err(err) => tracing::error!(error = %err, "a frame for the agent could not be encoded"),
                }
            }
        }
    }
}

/// Checks the token (and the host the agent claims) and that the host may connect.
async fn admit(hub: &Hub, presented: &Presented) -> Result<HostName, End> {
    let Some(token) = &presented.token else {
        return Err(End::code(CloseCode::BadToken, "no bearer token"));
    };
    let host = match hub.tokens.authenticate(token.expose()).await {
        Ok(Some(host)) => host,
        Ok(None) => return Err(End::code(CloseCode::BadToken, "unknown or revoked token")),
        Err(err) => {
            // Retryable: the store may come back.
            return Err(End {
                code: Some(1011),
                reason: "the daemon cannot check tokens now".into(),
                log: err.to_string(),
            });
        }
    };
    if let Some(claimed) = &presented.host
        && claimed != host.as_str()
    {
        return Err(End::code(CloseCode::BadToken, format!("a token of host {host} presented for host {claimed}")));
    }
    if hub.is_decommissioned(&host) {
        return Err(End::code(CloseCode::Decommissioned, format!("host {host} is decommissioned")));
    }
    Ok(host)
}

/// The next message from the agent, or how the connection ends.
async fn next_frame(stream: &mut SplitStream<WebSocket>) -> Result<ToDaemon, End> {
    loop {
        let message = match stream.next().await {
            None => return Err(End::gone("the agent closed the connection")),
            Some(Err(err)) => return Err(read_error(&err)),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Binary(bytes) => {
                return protocol::decode(&bytes).and_then(Frame::into_to_daemon).map_err(|e| End::protocol(&e));
            }
            Message::Text(_) => return Err(End::code(CloseCode::ProtocolViolation, "a text message")),
            Message::Close(frame) => {
                let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_else(|| "no code".into());
                return Err(End::gone(format!("the agent closed the connection ({why})")));
            }
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// A read error as an end: a too-large frame gets its code; anything else means the peer
/// is gone.
fn read_error(err: &axum::Error) -> End {
    let text = err.to_string();
    if text.contains("Space limit exceeded") || text.contains("Message too long") || text.contains("too long") {
        return End::code(CloseCode::MessageTooBig, format!("a frame larger than {MAX_FRAME_BYTES} bytes: {text}"));
    }
    End::gone(format!("the connection failed: {text}"))
}

fn close_message(end: &End) -> Message {
    match end.code {
        Some(code) => Message::Close(Some(CloseFrame { code, reason: end.reason.clone().into() })),
        None => Message::Close(None),
    }
}

/// The close frame's reason for a version mismatch: the versions and the side to upgrade,
/// within the 123 bytes a close frame allows.
fn mismatch_reason(mismatch: &VersionMismatch) -> String {
    format!(
        "protocol version mismatch: agent {}, daemon {}..{}; upgrade the {}",
        mismatch.agent,
        protocol::OLDEST_PROTOCOL_VERSION,
        protocol::PROTOCOL_VERSION,
        mismatch.upgrade.name()
    )
}
