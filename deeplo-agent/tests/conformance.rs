//! The agent transport against the transport conformance suite: every check on a transport
//! of ONE shared [`AgentConnection`](deeplo_agent::hub::AgentConnection) to a real
//! [`Executor`](deeplo_agent::agent::Executor), as the engine opens one transport per deploy
//! over an agent's one connection; every frame encoded and decoded. Cutting the connection
//! drops its agent-to-daemon direction.

mod common;

use std::sync::{Arc, Mutex};

use deeplo_core::Transport;
use deeplo_core::transport::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transports_of_one_connection_keep_the_contract() {
    let wire = common::connect("conformance");
    let started = Arc::clone(&wire.started);
    let connection = Arc::new(wire.connection);
    let cut = Mutex::new(Some(wire.to_daemon));
    let shared = Arc::clone(&connection);
    conformance::run_all(
        || {
            let transport: Box<dyn Transport> = Box::new(shared.transport());
            async move { Ok(transport) }
        },
        Some(Box::new(|| {
            let to_daemon = cut.lock().unwrap().take();
            Box::pin(async move {
                if let Some(to_daemon) = to_daemon {
                    to_daemon.abort();
                }
            })
        })),
    )
    .await;
    tokio::time::timeout(std::time::Duration::from_secs(20), connection.lost())
        .await
        .expect("the cut connection is lost");
    assert!(connection.is_lost());
    assert_eq!(connection.protocol_violations(), 0);
    let started = started.lock().unwrap();
    let distinct: std::collections::HashSet<_> = started.iter().collect();
    assert_eq!(distinct.len(), started.len(), "a request id was used twice on the connection");
}
