//! `deeplo health`: is the daemon running, and does it answer? The service's state when it is
//! installed under systemd, then the admin socket, then the daemon's own answer (version,
//! uptime). Exit 1 when the daemon does not answer.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::native::systemd;
use crate::output;

#[derive(Serialize)]
struct Report {
    /// Absent where the daemon is not a systemd service here.
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Service>,
    socket: String,
    socket_state: SocketState,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon: Option<DaemonHealth>,
}

#[derive(Serialize)]
struct Service {
    running: bool,
    enabled: bool,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SocketState {
    Present,
    Missing,
    NoAccess,
}

/// What `/v1/health` answers.
#[derive(Serialize, Deserialize)]
struct DaemonHealth {
    status: String,
    version: String,
    started_at: Timestamp,
    #[serde(default)]
    queued: usize,
    #[serde(default)]
    running: usize,
}

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let socket = &ctx.settings.unix_socket;
    let service = (systemd::running() && systemd::installed())
        .then(|| Service { running: systemd::check("is-active"), enabled: systemd::check("is-enabled") });
    let socket_state = socket_state(socket).await;
    let daemon = match socket_state {
        SocketState::Present => ask(socket).await,
        _ => None,
    };
    let reachable = daemon.is_some();
    let report = Report { service, socket: socket.display().to_string(), socket_state, reachable, daemon };
    if ctx.json() {
        output::json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(if reachable { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn socket_state(socket: &Path) -> SocketState {
    match std::fs::symlink_metadata(socket) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => SocketState::NoAccess,
        Err(_) => SocketState::Missing,
        Ok(_) => match tokio::net::UnixStream::connect(socket).await {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => SocketState::NoAccess,
            _ => SocketState::Present,
        },
    }
}

/// The daemon's health answer, if it gives one within 2 seconds.
async fn ask(socket: &Path) -> Option<DaemonHealth> {
    let asking = async {
        let client = AdminClient::connect(socket).await?;
        client.get_json::<DaemonHealth>("/v1/health").await.ok()
    };
    tokio::time::timeout(Duration::from_secs(2), asking).await.ok().flatten()
}

fn print_text(report: &Report) {
    if let Some(service) = &report.service {
        if !service.running {
            println!("deeplo is not running.");
            println!();
            println!("Start it with:");
            println!("  deeplo service start");
            return;
        }
        println!("Service:  running");
        println!("Enabled:  {}", if service.enabled { "yes" } else { "no" });
    }
    match report.socket_state {
        SocketState::Present => println!("Socket:   present ({})", report.socket),
        SocketState::Missing => println!("Socket:   missing ({})", report.socket),
        SocketState::NoAccess => println!("Socket:   no access ({})", report.socket),
    }
    match &report.daemon {
        Some(d) => {
            let stopping = if d.status == "stopping" { " (stopping)" } else { "" };
            println!("Daemon:   reachable{stopping}");
            println!("Version:  {}", d.version);
            println!("Uptime:   {}", uptime(d.started_at, Timestamp::now()));
            println!("Queue:    {} queued, {} running", d.queued, d.running);
        }
        None if report.service.is_some() => match report.socket_state {
            SocketState::NoAccess => {
                println!("Daemon:   not checked (no socket access)");
                println!();
                println!("Your user can't reach the admin socket. Point DEEPLO_ADMIN_GROUP at a");
                println!("group you belong to, then restart:");
                println!("  deeplo env edit            # set DEEPLO_ADMIN_GROUP=<your group>");
                println!("  deeplo service restart");
            }
            _ => println!("Daemon:   unreachable"),
        },
        None => {
            println!("Daemon:   unreachable");
            eprintln!();
            eprintln!("deeplo daemon is not reachable on {}.", report.socket);
            eprintln!("Start it with `deeplo daemon` (or `deeplo service start` where it is installed as a service).");
        }
    }
}

/// "3d 4h 5m", "4h 5m 6s", "5m 6s", "6s".
fn uptime(since: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_second() - since.as_second()).max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_at_a_glance() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let since = |s: i64| uptime(Timestamp::from_second(1_000_000 - s).unwrap(), now);
        assert_eq!(since(6), "6s");
        assert_eq!(since(306), "5m 6s");
        assert_eq!(since(4 * 3600 + 306), "4h 5m 6s");
        assert_eq!(since(3 * 86_400 + 4 * 3600 + 306), "3d 4h 5m");
        assert_eq!(since(-3), "0s");
    }
}
