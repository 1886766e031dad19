//! A real [`Executor`] (real processes, real files) and the [`AgentConnection`] to it, over
//! in-memory channels; every frame goes through `encode` and `decode` as on the wire.

use std::sync::{Arc, Mutex};

use deeplo_agent::agent::{Executor, Spool};
use deeplo_agent::hub::AgentConnection;
use deeplo_agent::protocol::{self, Frame, RequestId, ToAgent, ToDaemon};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const CAPACITY: usize = 64;

/// A connection and the agent it talks to.
pub struct Wire {
    pub connection: AgentConnection,
    /// The id of every request the daemon started (`Exec`, `WriteBundle`), in order.
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub started: Arc<Mutex<Vec<RequestId>>>,
    /// Aborting it drops the agent-to-daemon direction, as a lost connection would.
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub to_daemon: JoinHandle<()>,
    /// The agent's state directory (its spool).
    #[allow(dead_code, reason = "not every test binary reads it")]
    pub state: tempfile::TempDir,
}

/// A spool in a new temporary directory, its commands kept by the agent binary.
#[allow(dead_code, reason = "not every test binary reads it")]
pub fn spool() -> (Arc<Spool>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(Spool::open(dir.path(), env!("CARGO_BIN_EXE_deeplo-agent")).unwrap()), dir)
}

fn through_wire_to_agent(message: ToAgent) -> ToAgent {
    let bytes = protocol::encode(&Frame::from(message)).unwrap();
    protocol::decode(&bytes).unwrap().into_to_agent().unwrap()
}

fn through_wire_to_daemon(message: ToDaemon) -> ToDaemon {
    let bytes = protocol::encode(&Frame::from(message)).unwrap();
    protocol::decode(&bytes).unwrap().into_to_daemon().unwrap()
}

fn pump<M: Send + 'static>(
    mut from: mpsc::Receiver<M>,
    to: mpsc::Sender<M>,
    mut wire: impl FnMut(M) -> M + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = from.recv().await {
            if to.send(wire(message)).await.is_err() {
                return;
            }
        }
    })
}

pub fn connect(host: &str) -> Wire {
    let (daemon_tx, wire_in) = mpsc::channel(CAPACITY);
    let (agent_in_tx, agent_in) = mpsc::channel(CAPACITY);
    let (agent_out, wire_out) = mpsc::channel(CAPACITY);
    let (to_daemon_tx, daemon_rx) = mpsc::channel(CAPACITY);
    let started = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&started);
    pump(wire_in, agent_in_tx, move |message: ToAgent| {
        if let ToAgent::Exec { id, .. } | ToAgent::WriteBundle { id, .. } = &message {
            seen.lock().unwrap().push(*id);
        }
        through_wire_to_agent(message)
    });
    let to_daemon = pump(wire_out, to_daemon_tx, through_wire_to_daemon);
    let (spool, state) = spool();
    tokio::spawn(Executor::new(agent_out, spool).run(agent_in));
    Wire { connection: AgentConnection::new(host, daemon_tx, daemon_rx), started, to_daemon, state }
}
