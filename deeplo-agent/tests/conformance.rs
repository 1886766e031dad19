//! The agent transport against the transport conformance suite: an [`AgentTransport`]
//! driving a real [`Executor`] over in-memory channels, every frame encoded and decoded.

use std::sync::{Arc, Mutex};

use deeplo_agent::agent::Executor;
use deeplo_agent::hub::AgentTransport;
use deeplo_agent::protocol::{self, Frame};
use deeplo_core::Transport;
use deeplo_core::transport::conformance;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

const CAPACITY: usize = 64;

/// A fresh agent and its transport; `cut` receives the handle that drops the agent-to-daemon
/// direction, as a lost connection would.
fn connect(cut: &Mutex<Option<AbortHandle>>) -> Box<dyn Transport> {
    let (daemon_tx, mut wire_in) = mpsc::channel(CAPACITY);
    let (agent_in_tx, agent_in) = mpsc::channel(CAPACITY);
    let (agent_out, mut wire_out) = mpsc::channel(CAPACITY);
    let (to_daemon_tx, daemon_rx) = mpsc::channel(CAPACITY);
    tokio::spawn(async move {
        while let Some(message) = wire_in.recv().await {
            let bytes = protocol::encode(&Frame::from(message)).unwrap();
            let message = protocol::decode(&bytes).unwrap().into_to_agent().unwrap();
            if agent_in_tx.send(message).await.is_err() {
                return;
            }
        }
    });
    let to_daemon = tokio::spawn(async move {
        while let Some(message) = wire_out.recv().await {
            let bytes = protocol::encode(&Frame::from(message)).unwrap();
            let message = protocol::decode(&bytes).unwrap().into_to_daemon().unwrap();
            if to_daemon_tx.send(message).await.is_err() {
                return;
            }
        }
    });
    *cut.lock().unwrap() = Some(to_daemon.abort_handle());
    tokio::spawn(Executor::new(agent_out).run(agent_in));
    Box::new(AgentTransport::new("conformance", daemon_tx, daemon_rx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_transport_keeps_the_contract() {
    let cut = Arc::new(Mutex::new(None::<AbortHandle>));
    let last = Arc::clone(&cut);
    conformance::run_all(
        || {
            let transport = connect(&cut);
            async move { Ok(transport) }
        },
        Some(Box::new(move || {
            let handle = last.lock().unwrap().take();
            Box::pin(async move {
                if let Some(handle) = handle {
                    handle.abort();
                }
            })
        })),
    )
    .await;
}
