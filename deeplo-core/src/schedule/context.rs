//! What a running job gets from the scheduler: a cancellation token and the reason it fired.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Why a job was told to stop. More reasons may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Someone cancelled it.
    Cancelled,
    /// It ran longer than the job timeout ([`Limits::job_timeout`](super::Limits::job_timeout),
    /// given here).
    TimedOut(Duration),
    /// The scheduler shut down and the grace period ran out.
    Shutdown,
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cancelled => f.write_str("cancelled"),
            Self::TimedOut(d) => write!(f, "timed out after {}s", d.as_secs_f64()),
            Self::Shutdown => f.write_str("cancelled by shutdown"),
        }
    }
}

/// A running job's view of the scheduler: whether, and why, it should stop. Clones share
/// one token.
///
/// Cancellation is cooperative: the job watches [`cancelled`](Self::cancelled) (or runs its
/// work through [`run_until_cancelled`](Self::run_until_cancelled)) and ends on its own,
/// saving what it must.
#[derive(Debug, Clone)]
pub struct JobContext {
    token: CancellationToken,
    reason: Arc<Mutex<Option<CancelReason>>>,
    deadline: Option<tokio::time::Instant>,
}

impl JobContext {
    pub(super) fn new(timeout: Option<Duration>) -> Self {
        Self {
            token: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            deadline: timeout.map(|t| tokio::time::Instant::now() + t),
        }
    }

    /// A context that is never cancelled by a scheduler (for running a job directly).
    pub fn detached() -> Self {
        Self::new(None)
    }

    /// Fires the token; the first reason given wins.
    pub fn cancel(&self, reason: CancelReason) {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(reason);
        self.token.cancel();
    }

    /// The token that fires on cancel, timeout or shutdown, to hand to code that takes one.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Whether the job was told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the job should stop.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Why the job was told to stop; `None` while it was not.
    pub fn reason(&self) -> Option<CancelReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the job timeout fires, if there is one.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// Runs `fut` unless the job is cancelled first; then `fut` is dropped and the reason
    /// returned.
    ///
    /// # Errors
    ///
    /// The [`CancelReason`] when the token fired before `fut` completed.
    pub async fn run_until_cancelled<F: Future>(&self, fut: F) -> Result<F::Output, CancelReason> {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => Err(self.reason().unwrap_or(CancelReason::Cancelled)),
            out = fut => Ok(out),
        }
    }
}
