//! When a new version is served: `GET /` on every host's port until each answers it.
//!
//! A new request starts every [`PROBE_EVERY`] without waiting for the ones in flight, and
//! the first to answer the new content ends the wait for its port, so that one request
//! held up while the service restarts cannot hold up the measurement.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::SERVE_TIMEOUT;

/// How often a request starts, per port: the resolution of the measurement. Not much
/// finer, since each request forks an httpd on the machine being measured.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// Requests in flight per port at most.
const MAX_IN_FLIGHT: usize = 32;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// Waits until every port has answered `content` once; `check` runs at every probe
/// round and can give up early (a compose command that failed).
pub(crate) fn wait_served(
    ports: &[u16],
    content: &str,
    mut check: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let start = Instant::now();
        // Port -> requests in flight; a port leaves when it has served `content`.
        let mut pending: BTreeMap<u16, usize> = ports.iter().map(|&port| (port, 0)).collect();
        let mut last: BTreeMap<u16, Option<String>> = BTreeMap::new();
        let mut attempts = JoinSet::new();
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !pending.is_empty() {
            tokio::select! {
                _ = tick.tick() => {
                    check()?;
                    if start.elapsed() > SERVE_TIMEOUT {
                        let seen: Vec<String> = pending.keys().map(|p| format!("{p}: {:?}", last.get(p))).collect();
                        bail!("not served within {SERVE_TIMEOUT:?}: expected {content:?}, last answers {}", seen.join(", "));
                    }
                    for (&port, in_flight) in pending.iter_mut().filter(|(_, n)| **n < MAX_IN_FLIGHT) {
                        *in_flight += 1;
                        attempts.spawn(async move {
                            (port, tokio::time::timeout(ATTEMPT_TIMEOUT, fetch(port)).await.ok().flatten())
                        });
                    }
                }
                Some(joined) = attempts.join_next() => {
                    let (port, body) = joined?;
                    if body.as_deref() == Some(content) {
                        pending.remove(&port);
                    } else if let Some(in_flight) = pending.get_mut(&port) {
                        *in_flight -= 1;
                        last.insert(port, body);
                    }
                }
            }
        }
        Ok(())
    })
}

/// `GET /` on 127.0.0.1:`port`: the body of a 200 answer, `None` for anything else.
async fn fetch(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.") && head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}
