//! The SSH transport against the transport conformance suite, on a real OpenSSH server.

use std::time::Duration;

use deeplo_core::Connector;
use deeplo_core::config::Host;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::HostName;
use deeplo_core::transport::conformance;
use deeplo_ssh::{SshConnector, SshOptions};
use deeplo_testbed::Sshd;

#[tokio::test]
async fn the_ssh_transport_keeps_the_contract() {
    let sshd = Sshd::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut options = SshOptions::new(KnownHosts::new(tmp.path().join("known_hosts"), HostKeyPolicy::AcceptNew));
    options.private_key = Some(sshd.client_key());
    options.agent_socket = None;
    options.connect_timeout = Duration::from_secs(5);
    let connector = SshConnector::new(options).unwrap();
    let host = Host {
        port: sshd.port(),
        user: sshd.user(),
        ..Host::new(HostName::new("conformance").unwrap(), "127.0.0.1", "/tmp")
    };
    conformance::run_all(
        || connector.connect(&host),
        Some(Box::new(|| {
            Box::pin(async {
                kill_sessions(&sshd);
            })
        })),
    )
    .await;
}

/// Cuts every connection to `sshd` as a crash or a network failure would: SIGKILL to its
/// per-connection processes (stopping the listener would leave established sessions
/// running), then to what they ran, so that nothing outlives the test.
fn kill_sessions(sshd: &Sshd) {
    let listener: u32 = std::fs::read_to_string(sshd.dir().join("sshd.pid")).unwrap().trim().parse().unwrap();
    let descendants = descendants_of(listener);
    // Sessions first: a command killed before its session would be reported as killed by
    // a signal instead of losing its connection.
    let (sessions, commands): (Vec<_>, Vec<_>) =
        descendants.into_iter().partition(|(_, comm)| comm.starts_with("sshd"));
    for (pid, _) in sessions.iter().chain(&commands) {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

/// Every process below `root`, with its command name, read from /proc.
fn descendants_of(root: u32) -> Vec<(u32, String)> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = stat[open + 1..close].to_owned();
        let Some(ppid) = stat[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        parents.push((pid, ppid, comm));
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, comm) in &parents {
            if *ppid == parent {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}
