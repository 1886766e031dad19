//! A dropped connection within the grace: the agent (the real client and executor) keeps
//! running the command, reconnects, and the hub re-attaches to it by its id; past the
//! grace the command fails as unreachable. The connection is cut by a TCP relay between
//! the two that the test severs, as a network would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deeplo_agent::client::{Client, ClientConfig, ClientOptions};
use deeplo_agent::hub::{Hub, HubOptions, router};
use deeplo_core::model::HostName;
use deeplo_core::transport::OutputStream;
use deeplo_core::{ErrorKind, ExitStatus, FileStore, OutputSink, RemoteCommand, RunnerTokenStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Relays connections to `target`; [`cut`](Self::cut) severs every one made so far.
struct Relay {
    port: u16,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let kept = Arc::clone(&links);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                kept.lock().unwrap().push(link);
            }
        });
        Self { port, links, _accept: accept }
    }

    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

#[derive(Default)]
struct Collect(Mutex<String>);

impl OutputSink for Collect {
    fn output(&self, _stream: OutputStream, data: &[u8]) {
        self.0.lock().unwrap().push_str(&String::from_utf8_lossy(data));
    }
}

struct Bed {
    hub: Arc<Hub>,
    relay: Relay,
    agent: JoinHandle<()>,
    config: ClientConfig,
    _dir: tempfile::TempDir,
}

/// Runs an agent with `config` in a task of its own (aborting it is the agent's death).
fn run_agent(config: &ClientConfig) -> JoinHandle<()> {
    let client = Client::new(config.clone());
    tokio::spawn(async move {
        let _ = client.run(std::future::pending()).await;
    })
}

async fn bed(grace: Duration) -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(&dir.path().join("store"), jiff::Timestamp::now()).unwrap());
    let tokens = RunnerTokenStore::new(store);
    let token = tokens.issue(&HostName::new("h1").unwrap(), jiff::Timestamp::now()).await.unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token.secret().expose()).unwrap();
    let options = HubOptions { heartbeat_interval_secs: 1, heartbeat_allowance: 3, grace, ..HubOptions::default() };
    let hub = Hub::new(tokens, options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, router(Arc::clone(&hub))).into_future());
    let relay = Relay::start(target).await;
    let mut options = ClientOptions::new(format!("ws://127.0.0.1:{}", relay.port), &token_file);
    options.state_dir = dir.path().join("state");
    options.keeper = Some(env!("CARGO_BIN_EXE_deeplo-agent").into());
    let config = options.build().unwrap();
    let agent = run_agent(&config);
    let bed = Bed { hub, relay, agent, config, _dir: dir };
    bed.connected().await;
    bed
}

impl Bed {
    async fn connected(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.hub.connection(&HostName::new("h1").unwrap()).is_none() {
            assert!(Instant::now() < deadline, "the agent did not connect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.agent.abort();
    }
}

/// A command that says `start`, waits for the file `go` (so that the test decides when it
/// ends), then says `end` and exits 7.
fn waiting_command(dir: &std::path::Path) -> RemoteCommand {
    let go = dir.join("go");
    RemoteCommand::new("sh")
        .arg("-c")
        .arg(format!("echo start; while [ ! -e {} ]; do sleep 0.05; done; echo end; exit 7", go.display()))
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A command started through the hub's transport to h1 (see [`waiting_command`]), once it
/// has said `start`: its task, its output, and the directory where `go` ends it.
struct Started {
    running: JoinHandle<deeplo_core::Result<deeplo_core::CommandOutput>>,
    sink: Arc<Collect>,
    work: tempfile::TempDir,
}

async fn start_waiting(bed: &Bed) -> Started {
    let work = tempfile::tempdir().unwrap();
    let transport = bed.hub.transport(&HostName::new("h1").unwrap(), Duration::from_secs(5)).await.unwrap();
    let sink = Arc::new(Collect::default());
    let command = waiting_command(work.path());
    let seen = Arc::clone(&sink);
    let running = tokio::spawn(async move { transport.run(&command, seen.as_ref()).await });
    until("the command starts", || sink.0.lock().unwrap().contains("start")).await;
    Started { running, sink, work }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_survives_a_dropped_connection_within_the_grace() {
    let bed = bed(Duration::from_secs(60)).await;
    let host = HostName::new("h1").unwrap();
    let started = start_waiting(&bed).await;

    let before = bed.hub.agent(&host).unwrap().connected_at;
    bed.relay.cut();
    until("the agent is back on a new connection", || {
        bed.hub.agent(&host).is_some_and(|agent| agent.connected_at != before)
    })
    .await;
    std::fs::write(started.work.path().join("go"), "").unwrap();
    let output = started.running.await.unwrap().expect("the command carried on");
    assert_eq!(output.status, ExitStatus::Code(7));
    assert_eq!(started.sink.0.lock().unwrap().as_str(), "start\nend\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_again_within_the_grace_takes_up_the_command() {
    let mut bed = bed(Duration::from_secs(60)).await;
    let host = HostName::new("h1").unwrap();
    let started = start_waiting(&bed).await;

    let before = bed.hub.agent(&host).unwrap().connected_at;
    // The agent dies with its executor; the command goes on under its keeper.
    bed.agent.abort();
    bed.relay.cut();
    bed.agent = run_agent(&bed.config);
    until("the new agent is connected", || bed.hub.agent(&host).is_some_and(|agent| agent.connected_at != before))
        .await;
    std::fs::write(started.work.path().join("go"), "").unwrap();
    let output = started.running.await.unwrap().expect("the command carried on");
    assert_eq!(output.status, ExitStatus::Code(7));
    assert_eq!(output.stdout_str(), "start\nend\n", "each byte once, in order");
    assert_eq!(started.sink.0.lock().unwrap().as_str(), "start\nend\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_grace_the_command_fails_as_unreachable() {
    let bed = bed(Duration::from_millis(300)).await;
    let started = start_waiting(&bed).await;
    // The agent cannot come back: its task is gone with the relay's links.
    bed.agent.abort();
    bed.relay.cut();
    let err = started.running.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
}
