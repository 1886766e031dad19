//! The checks every [`Transport`] implementation runs, one per point of the trait's contract.
//!
//! A backend's integration test calls [`run_all`] with a function that opens a fresh
//! transport to a test host (each check gets its own, so checks do not interfere) and,
//! when the backend has a connection that a test can break, a function that cuts the
//! connection of the transport opened last, from outside, as a network failure would (kill
//! the server's session processes, close the socket). Every check runs even when an earlier
//! one fails, and the failures are reported together:
//!
//! ```no_run
//! # async fn demo(connector: &dyn deeplo_core::Connector, host: &deeplo_core::config::Host) {
//! use deeplo_core::transport::conformance;
//!
//! conformance::run_all(
//!     || connector.connect(host),
//!     Some(Box::new(|| Box::pin(async { /* kill the host's session processes */ }))),
//! )
//! .await;
//! # }
//! ```
//!
//! The checks only use the trait: they run POSIX `sh` and coreutils commands (busybox
//! will do) on the host, and read back what a bundle wrote with commands over the same
//! transport, so they need no access of their own to the host's files. They leave nothing
//! behind but what a remote process that outlives a dropped command does on its own (it
//! ends within a minute). No check asserts a duration, only generous bounds
//! ([`BOUND`]) past which a wait counts as a hang.

mod bundles;
mod commands;
mod connection;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

pub use bundles::bundles_keep_layout_modes_and_links;
pub use commands::{
    cancel_leaves_the_transport_usable, commands_run_concurrently, exit_codes, input_is_fed, large_output_is_complete,
    output_streams_while_running, stdout_and_stderr_are_apart, words_reach_the_program_unchanged,
};
pub use connection::lost_connection_ends_commands;

use super::{OutputSink, OutputStream, RemoteCommand, Transport};

/// How long a check waits for something that should take well under a second before it
/// calls the transport hung.
pub const BOUND: Duration = Duration::from_secs(20);

/// One check on one transport: it panics, naming what it expected, when the transport
/// breaks the contract.
pub type Check = for<'a> fn(&'a dyn Transport) -> BoxFuture<'a, ()>;

/// Cuts the connection of the transport that the last `fresh` call opened, from outside
/// (see the [module docs](self)); it returns once the cut is done.
pub type CutConnection<'a> = Box<dyn FnMut() -> BoxFuture<'a, ()> + 'a>;

macro_rules! checks {
    ($($module:ident :: $name:ident),* $(,)?) => {
        /// Every check that needs only a transport, by name ([`lost_connection_ends_commands`]
        /// needs a way to cut the connection too).
        pub const CHECKS: &[(&str, Check)] = &[$((stringify!($name), |t| Box::pin($module::$name(t)))),*];
    };
}

checks![
    commands::exit_codes,
    commands::words_reach_the_program_unchanged,
    commands::output_streams_while_running,
    commands::stdout_and_stderr_are_apart,
    commands::large_output_is_complete,
    commands::input_is_fed,
    commands::commands_run_concurrently,
    commands::cancel_leaves_the_transport_usable,
    bundles::bundles_keep_layout_modes_and_links,
];

/// Runs every check, each on a transport from `fresh` (closed after it), then
/// [`lost_connection_ends_commands`] when `cut` is given, and panics listing the checks
/// that failed.
///
/// Pass `None` for `cut` only for a transport that has no connection to lose (one that
/// runs commands on the local machine).
pub async fn run_all<F, Fut>(mut fresh: F, mut cut: Option<CutConnection<'_>>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<Box<dyn Transport>>>,
{
    let mut failures = Vec::new();
    for (name, check) in CHECKS {
        let transport = match fresh().await {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: cannot open a transport: {e}"));
                continue;
            }
        };
        if let Err(panic) = AssertUnwindSafe(check(transport.as_ref())).catch_unwind().await {
            failures.push(format!("{name}: {}", panic_message(&panic)));
        }
        let _ = transport.close().await;
    }
    if let Some(cut) = cut.as_mut() {
        let name = "lost_connection_ends_commands";
        match fresh().await {
            Ok(transport) => {
                let check = lost_connection_ends_commands(transport.as_ref(), cut());
                if let Err(panic) = AssertUnwindSafe(check).catch_unwind().await {
                    failures.push(format!("{name}: {}", panic_message(&panic)));
                }
            }
            Err(e) => failures.push(format!("{name}: cannot open a transport: {e}")),
        }
    }
    assert!(failures.is_empty(), "the transport breaks its contract:\n{}", failures.join("\n"));
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Awaits `fut`, panicking with `what` when it takes longer than [`BOUND`].
/// Waits until the running command `run` has printed `started` into `sink` (half a second
/// when the transport does not stream output); panics with `ended` when it ends first.
async fn until_started<F>(t: &dyn Transport, sink: &Collect, run: &mut F, ended: &str)
where
    F: Future + Unpin,
    F::Output: std::fmt::Debug,
{
    let started = async {
        if t.capabilities().streaming_output {
            sink.wait_for(OutputStream::Stdout, "started\n").await;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    within("the command to start", async {
        tokio::select! {
            out = run => panic!("{ended}: {out:?}"),
            () = started => {}
        }
    })
    .await;
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within {}s (hung)", BOUND.as_secs()),
    }
}

/// A constant `sh` script without parameters.
fn sh(script: &'static str) -> RemoteCommand {
    RemoteCommand::script(script, Vec::<String>::new())
}

/// Runs `command` (with an empty input), panicking on an error or a hang.
async fn run_ok(t: &dyn Transport, command: &RemoteCommand) -> super::CommandOutput {
    within(&format!("run {command}"), t.run(command, &Collect::default()))
        .await
        .unwrap_or_else(|e| panic!("run {command}: {e}"))
}

/// Runs `command` and returns its standard output, panicking unless it exits with 0.
async fn stdout_of(t: &dyn Transport, command: &RemoteCommand) -> String {
    let out = run_ok(t, command).await;
    assert!(out.status.success(), "{command}: {} (stderr: {})", out.status, out.stderr_str());
    out.stdout_str().into_owned()
}

/// A fresh directory on the host (`mktemp -d`), removed by [`remove_scratch`].
async fn scratch(t: &dyn Transport) -> String {
    let dir = stdout_of(t, &RemoteCommand::new("mktemp").args(["-d", "/tmp/deeplo-conformance.XXXXXX"])).await;
    let dir = dir.trim_end_matches('\n').to_owned();
    assert!(dir.starts_with("/tmp/deeplo-conformance."), "mktemp -d printed {dir:?}");
    dir
}

async fn remove_scratch(t: &dyn Transport, dir: &str) {
    let _ = within(
        "rm -rf the scratch directory",
        t.run(&RemoteCommand::new("rm").args(["-rf", dir]), &Collect::default()),
    )
    .await;
}

/// A sink that keeps every chunk, for checks on what arrived and when.
#[derive(Debug, Default)]
struct Collect(Mutex<Vec<(OutputStream, Vec<u8>)>>);

impl Collect {
    /// Everything that arrived on `stream` so far, in order.
    fn stream(&self, stream: OutputStream) -> Vec<u8> {
        let chunks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        chunks.iter().filter(|(s, _)| *s == stream).flat_map(|(_, d)| d.iter().copied()).collect()
    }

    /// Waits (polling) until `stream` holds `text`.
    async fn wait_for(&self, stream: OutputStream, text: &str) {
        while !String::from_utf8_lossy(&self.stream(stream)).contains(text) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl OutputSink for Collect {
    fn output(&self, stream: OutputStream, data: &[u8]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((stream, data.to_vec()));
    }
}
