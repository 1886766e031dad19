//! The hub's WebSocket route on a real socket, spoken to by a raw WebSocket client that can
//! send what no agent would: each refusal with its close code, none of them harming the hub.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deeplo_agent::hub::{CONNECT_PATH, HOST_HEADER, Hub, HubEvent, HubOptions, router};
use deeplo_agent::protocol::{
    self, CloseCode, Fingerprint, Frame, Hello, PROTOCOL_VERSION, RequestId, ToAgent, ToDaemon,
};
use deeplo_core::model::HostName;
use deeplo_core::{FileStore, RunnerTokenStore};
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Bed {
    _dir: tempfile::TempDir,
    hub: Arc<Hub>,
    tokens: RunnerTokenStore,
    url: String,
    web: String,
    db: String,
}

fn host(name: &str) -> HostName {
    HostName::new(name).unwrap()
}

async fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path(), jiff::Timestamp::now()).unwrap());
    let tokens = RunnerTokenStore::new(store);
    let now = jiff::Timestamp::now();
    let web = tokens.issue(&host("web-1"), now).await.unwrap().secret().expose().to_owned();
    let db = tokens.issue(&host("db-1"), now).await.unwrap().secret().expose().to_owned();
    let options = HubOptions {
        heartbeat_interval_secs: 1,
        heartbeat_allowance: 2,
        hello_timeout: Duration::from_secs(2),
        ..HubOptions::default()
    };
    let hub = Hub::new(tokens.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}{CONNECT_PATH}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(Arc::clone(&hub))).into_future());
    Bed { _dir: dir, hub, tokens, url, web, db }
}

async fn open(bed: &Bed, token: Option<&str>, claimed: Option<&str>) -> Socket {
    let mut request = bed.url.as_str().into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(claimed) = claimed {
        request.headers_mut().insert(HOST_HEADER, claimed.parse().unwrap());
    }
    // Our own limit far above the protocol's, so that the test can send a too-large frame.
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
    tokio_tungstenite::connect_async_with_config(request, Some(config), false).await.unwrap().0
}

fn fingerprint() -> Fingerprint {
    Fingerprint {
        os: "Debian GNU/Linux 12".into(),
        kernel: "6.1.0".into(),
        arch: "x86_64".into(),
        docker_version: Some("27.3.1".into()),
        compose_version: Some("2.26.1".into()),
        disk_free_bytes: Some(1 << 30),
        memory_bytes: Some(1 << 32),
    }
}

fn frame(message: ToDaemon) -> Message {
    Message::Binary(Bytes::from(protocol::encode(&Frame::from(message)).unwrap()))
}

fn hello(version: u16) -> Message {
    frame(ToDaemon::Hello(Hello { protocol: version, agent_version: "0.1.0".into(), fingerprint: fingerprint() }))
}

/// The next message for the agent, skipping pings; `Err` with the close code and reason
/// when the hub closes instead.
async fn receive(socket: &mut Socket) -> Result<ToAgent, (u16, String)> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("the hub went silent");
        match next {
            Some(Ok(Message::Binary(bytes))) => return Ok(protocol::decode(&bytes).unwrap().into_to_agent().unwrap()),
            Some(Ok(Message::Close(Some(frame)))) => return Err((frame.code.into(), frame.reason.to_string())),
            Some(Ok(Message::Close(None))) | None => return Err((1005, String::new())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err((1006, e.to_string())),
        }
    }
}

async fn closed_with(socket: &mut Socket) -> (u16, String) {
    loop {
        match receive(socket).await {
            Ok(_) => {}
            Err(close) => return close,
        }
    }
}

/// Connects as `web-1` and completes the hello.
async fn welcomed(bed: &Bed) -> Socket {
    let mut socket = open(bed, Some(&bed.web), Some("web-1")).await;
    socket.send(hello(PROTOCOL_VERSION)).await.unwrap();
    match receive(&mut socket).await {
        Ok(ToAgent::Welcome(welcome)) => {
            assert_eq!(welcome.protocol, PROTOCOL_VERSION);
            assert_eq!((welcome.heartbeat_interval_secs, welcome.heartbeat_allowance), (1, 2));
        }
        other => panic!("expected a welcome, got {other:?}"),
    }
    socket
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After each refusal the hub still welcomes a good agent.
async fn still_serves(bed: &Bed) {
    let mut socket = welcomed(bed).await;
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn a_good_agent_is_welcomed_listed_and_heard() {
    let bed = bed().await;
    let mut events = bed.hub.subscribe();
    let mut socket = welcomed(&bed).await;
    let listed = bed.hub.agents();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].host.as_str(), listed[0].agent_version.as_str()), ("web-1", "0.1.0"));
    assert!(matches!(events.recv().await.unwrap(), HubEvent::Connected(info) if info.host == host("web-1")));

    let mut newer = fingerprint();
    newer.disk_free_bytes = Some(7);
    socket.send(frame(ToDaemon::FingerprintUpdate(newer.clone()))).await.unwrap();
    let HubEvent::Fingerprint { fingerprint: got, .. } = events.recv().await.unwrap() else { panic!("no fingerprint") };
    assert_eq!(got, newer);
    assert_eq!(bed.hub.agent(&host("web-1")).unwrap().fingerprint.disk_free_bytes, Some(7));

    // Heartbeats keep it connected past the allowance of 2 s.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        socket.send(frame(ToDaemon::Heartbeat)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(bed.hub.agent(&host("web-1")).is_some(), "heartbeats keep the agent connected");
    socket.close(None).await.unwrap();
    wait_until("the agent is gone", || bed.hub.agents().is_empty()).await;
    assert!(matches!(events.recv().await.unwrap(), HubEvent::Disconnected { .. }));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_4401() {
    let bed = bed().await;
    let forged = deeplo_core::runner_token::RunnerToken::generate();
    let cases = [
        (None, None, "no token"),
        (Some(forged.secret().expose().to_owned()), None, "forged"),
        (Some("not-even-a-token".to_owned()), None, "malformed"),
        (Some(bed.db.clone()), Some("web-1"), "another host's token"),
    ];
    for (token, claimed, what) in cases {
        let mut socket = open(&bed, token.as_deref(), claimed).await;
        let _ = socket.send(hello(PROTOCOL_VERSION)).await;
        let (code, reason) = closed_with(&mut socket).await;
        assert_eq!(code, CloseCode::BadToken.as_u16(), "{what}: {reason}");
        assert!(reason.contains("token"), "{what}: {reason}");
    }
    bed.tokens.revoke(&host("db-1"), jiff::Timestamp::now()).await.unwrap();
    let mut socket = open(&bed, Some(&bed.db), None).await;
    assert_eq!(closed_with(&mut socket).await.0, 4401, "revoked");
    assert!(bed.hub.agents().is_empty());
    still_serves(&bed).await;
}

#[tokio::test]
async fn a_decommissioned_server_is_refused_and_closed() {
    let bed = bed().await;
    let mut socket = welcomed(&bed).await;
    bed.hub.decommission(&host("web-1"));
    assert_eq!(closed_with(&mut socket).await.0, CloseCode::Decommissioned.as_u16());
    let mut again = open(&bed, Some(&bed.web), None).await;
    let (code, reason) = closed_with(&mut again).await;
    assert_eq!(code, 4410, "{reason}");
    assert!(reason.contains("decommissioned"), "{reason}");
}

#[tokio::test]
async fn revoking_closes_the_connection() {
    let bed = bed().await;
    let mut socket = welcomed(&bed).await;
    assert!(bed.hub.disconnect(&host("web-1"), CloseCode::BadToken));
    assert_eq!(closed_with(&mut socket).await.0, 4401);
    wait_until("the agent is gone", || bed.hub.agents().is_empty()).await;
    assert!(!bed.hub.disconnect(&host("web-1"), CloseCode::BadToken), "nothing left to close");
}

#[tokio::test]
async fn protocol_breaches_close_with_their_codes() {
    let bed = bed().await;
    // Garbage after the hello.
    let mut socket = welcomed(&bed).await;
    socket.send(Message::Binary(Bytes::from_static(&[0xff, 0xfe, 0x00, 0x13]))).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, CloseCode::ProtocolViolation.as_u16(), "garbage");
    // A text message.
    let mut socket = welcomed(&bed).await;
    socket.send(Message::text("hello?")).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, 4400, "text");
    // A frame of the daemon's own direction.
    let mut socket = welcomed(&bed).await;
    let wrong = protocol::encode(&Frame::from(ToAgent::Cancel { id: RequestId(1) })).unwrap();
    socket.send(Message::Binary(wrong.into())).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, 4400, "wrong direction");
    // A reply to no request.
    let mut socket = welcomed(&bed).await;
    socket.send(frame(ToDaemon::Exited { id: RequestId(99), status: protocol::ExitStatus::Code(0) })).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, 4400, "a reply to no request");
    // A second hello, and anything but a hello first.
    let mut socket = welcomed(&bed).await;
    socket.send(hello(PROTOCOL_VERSION)).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, 4400, "second hello");
    let mut socket = open(&bed, Some(&bed.web), None).await;
    socket.send(frame(ToDaemon::Heartbeat)).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, 4400, "heartbeat before hello");
    // A kind this build does not know.
    let mut socket = welcomed(&bed).await;
    socket.send(Message::Binary(Bytes::from_static(&[0x01, 0x7f]))).await.unwrap();
    assert_eq!(closed_with(&mut socket).await.0, CloseCode::UnknownMessage.as_u16(), "unknown kind");
    // Larger than the limit.
    let mut socket = welcomed(&bed).await;
    let huge = vec![0u8; protocol::MAX_FRAME_BYTES + 1];
    let _ = socket.send(Message::Binary(huge.into())).await;
    assert_eq!(closed_with(&mut socket).await.0, CloseCode::MessageTooBig.as_u16(), "too large");
    still_serves(&bed).await;
}

#[tokio::test]
async fn an_old_protocol_is_told_to_upgrade() {
    let bed = bed().await;
    let mut socket = open(&bed, Some(&bed.web), None).await;
    socket.send(hello(0)).await.unwrap();
    let (code, reason) = closed_with(&mut socket).await;
    assert_eq!(code, CloseCode::VersionMismatch.as_u16());
    assert!(reason.contains("agent 0") && reason.ends_with("upgrade the agent"), "{reason}");
    assert!(reason.len() <= 123);
}

#[tokio::test]
async fn silence_past_the_allowance_closes_with_4408() {
    let bed = bed().await;
    let mut socket = welcomed(&bed).await;
    let started = Instant::now();
    assert_eq!(closed_with(&mut socket).await.0, CloseCode::HeartbeatMissed.as_u16());
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed before the allowance");
    wait_until("the agent is gone", || bed.hub.agents().is_empty()).await;
}

#[tokio::test]
async fn a_newer_connection_replaces_the_older() {
    let bed = bed().await;
    let mut first = welcomed(&bed).await;
    let mut second = welcomed(&bed).await;
    assert_eq!(closed_with(&mut first).await.0, CloseCode::Replaced.as_u16());
    second.send(frame(ToDaemon::Heartbeat)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bed.hub.agents().len(), 1, "the newer one stays");
    assert!(bed.hub.connection(&host("web-1")).is_some());
}

#[tokio::test]
async fn no_agent_means_unreachable_after_the_wait() {
    let bed = bed().await;
    let err = bed.hub.transport(&host("db-1"), Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(err.kind(), deeplo_core::ErrorKind::Unreachable);
    assert!(err.to_string().contains("deeplo servers token db-1"), "{err}");
}
