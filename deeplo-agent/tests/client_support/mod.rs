//! A daemon of the tests' own for the agent's client: a real WebSocket server on a real
//! socket (optionally TLS), written with tokio-tungstenite, that hands each connection to
//! the test to script.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deeplo_agent::client::{Client, ClientError, ClientOptions};
use deeplo_agent::protocol::{self, Frame, Hello, PROTOCOL_VERSION, ToAgent, ToDaemon, Welcome};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

/// How long any expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The token every test agent uses.
pub const TOKEN: &str = "runner-token-for-tests";

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What the test daemon does with an upgrade request.
#[derive(Clone, Copy)]
pub enum Upgrade {
    Accept,
    Refuse(StatusCode),
}

/// One accepted connection: the request's path and headers, and the socket.
pub struct Conn {
    pub path: String,
    pub headers: HeaderMap,
    pub socket: WebSocketStream<Box<dyn Io>>,
}

/// The test daemon: listens on 127.0.0.1, hands every upgraded connection out in order.
pub struct Daemon {
    pub port: u16,
    connections: mpsc::UnboundedReceiver<Conn>,
    accepted: JoinHandle<()>,
}

impl Daemon {
    pub async fn start(tls: Option<Arc<rustls::ServerConfig>>, upgrade: Upgrade) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, connections) = mpsc::unbounded_channel();
        let accepted = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let tx = tx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = match tls {
                        Some(tls) => match TlsAcceptor::from(tls).accept(tcp).await {
                            Ok(stream) => Box::new(stream),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    let mut seen = None;
                    // The signature is tungstenite's `Callback`.
                    #[allow(clippy::result_large_err)]
                    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
                        seen = Some((request.uri().to_string(), request.headers().clone()));
                        match upgrade {
                            Upgrade::Accept => Ok(response),
                            Upgrade::Refuse(status) => {
                                let mut refusal = ErrorResponse::new(Some("refused".into()));
                                *refusal.status_mut() = status;
                                Err(refusal)
                            }
                        }
                    };
                    let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                    let (path, headers) = seen.unwrap();
                    let _ = tx.send(Conn { path, headers, socket });
                });
            }
        });
        Self { port, connections, accepted }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The next connection, within [`DEADLINE`].
    pub async fn next(&mut self) -> Conn {
        tokio::time::timeout(DEADLINE, self.connections.recv()).await.expect("no connection in time").unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.accepted.abort();
    }
}

impl Conn {
    /// The next binary frame from the agent, decoded; pings and pongs skipped.
    pub async fn recv(&mut self) -> ToDaemon {
        loop {
            let message = tokio::time::timeout(DEADLINE, self.socket.next())
                .await
                .expect("no frame in time")
                .expect("the agent hung up")
                .unwrap();
            match message {
                Message::Binary(bytes) => return protocol::decode(&bytes).unwrap().into_to_daemon().unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    pub async fn recv_hello(&mut self) -> Hello {
        match self.recv().await {
            ToDaemon::Hello(hello) => hello,
            other => panic!("expected a hello, got {other:?}"),
        }
    }

    pub async fn send(&mut self, message: ToAgent) {
        let bytes = protocol::encode(&Frame::from(message)).unwrap();
        self.socket.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.unwrap();
    }

    /// Reads the hello, answers with a welcome, and returns the hello.
    pub async fn welcome(&mut self, heartbeat_interval_secs: u32) -> Hello {
        let hello = self.recv_hello().await;
        assert_eq!(hello.protocol, PROTOCOL_VERSION);
        let welcome = Welcome {
            protocol: PROTOCOL_VERSION,
            daemon_version: "0.1.0-test".into(),
            heartbeat_interval_secs,
            heartbeat_allowance: 3,
        };
        self.send(ToAgent::Welcome(welcome)).await;
        hello
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code: WsCloseCode::from(code), reason: reason.to_owned().into() };
        self.socket.close(Some(frame)).await.unwrap();
        // Let the agent's answer come back.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(DEADLINE, self.socket.next()).await {}
    }

    /// Reads until the agent's close frame and returns its code and reason; frames before
    /// it (heartbeats) are skipped.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(DEADLINE, self.socket.next())
                .await
                .expect("no close in time")
                .expect("the agent hung up without a close frame");
            match message {
                Ok(Message::Close(Some(frame))) => {
                    // Send the answer tungstenite queued, so the agent need not wait for it.
                    let _ = self.socket.flush().await;
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Ok(Message::Close(None)) => panic!("a close frame without a code"),
                Ok(_) => continue,
                Err(e) => panic!("error before the close frame: {e}"),
            }
        }
    }
}

/// A token file in a temporary directory.
pub struct TokenFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn token_file() -> TokenFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    TokenFile { dir, path }
}

/// Options to `url` with the test token and a deploy directory in the temporary directory.
pub fn options(url: &str, token: &TokenFile) -> ClientOptions {
    let mut options = ClientOptions::new(url, &token.path);
    options.deploy_dir = token.dir.path().join("deploys");
    options.state_dir = token.dir.path().join("state");
    options.keeper = Some(env!("CARGO_BIN_EXE_deeplo-agent").into());
    options
}

/// An agent running in this process; `stop` completes its shutdown future.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ClientError>>,
}

pub fn spawn(options: ClientOptions) -> Running {
    let client = Client::new(options.build().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        client
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    Running { stop: Some(stop), task }
}

impl Running {
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// The run's result, within [`DEADLINE`].
    pub async fn finished(&mut self) -> Result<(), ClientError> {
        tokio::time::timeout(DEADLINE, &mut self.task).await.expect("the agent did not stop in time").unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
