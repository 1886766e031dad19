//! The scheduler: a bounded queue of jobs, each keyed by its (project, host) pair, run under
//! a global limit, a per-host limit and one-at-a-time per pair.
//!
//! Design: one mutex-protected state (the FIFO queue, the running set, the per-host counts)
//! and a `dispatch` pass after every submit and every finish that starts whatever the
//! limits allow, in queue order. A job blocked by its host or pair never blocks jobs of
//! other hosts; jobs of one pair start in the order they were submitted, so a later commit
//! never lands before an earlier one.
//!
//! Cancellation is cooperative: a job gets a [`JobContext`] whose token fires on cancel,
//! timeout or shutdown, and is expected to stop at its next step boundary and write its
//! failed record. The scheduler never aborts a task, so no record is left half-written.

mod context;
#[cfg(test)]
mod tests;

pub use context::{CancelReason, JobContext};

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Notify, oneshot};

use crate::model::{HostName, Pair};
use crate::{Error, ErrorKind, Result};

/// How much runs at once, how much may wait, and for how long a job may run.
///
/// The default: as many workers as the machine has cores (2 when that is unknown), one job
/// per host, 512 queued jobs, no job timeout, a lock wait of 300 seconds. Change a field
/// with struct update syntax: `Limits { max_per_host: 2, ..Limits::default() }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Jobs running at once, over all hosts (0 counts as 1).
    pub max_workers: usize,
    /// Jobs running at once on one host (0 counts as 1). Jobs of one pair never overlap,
    /// whatever this says.
    pub max_per_host: usize,
    /// Jobs accepted but not started; a submit past this fails with [`ErrorKind::QueueFull`].
    pub queue_capacity: usize,
    /// Time a job may run (queue time does not count) before its token fires; `None` means
    /// no limit.
    pub job_timeout: Option<Duration>,
    /// How long a deploy waits for the project's lock on the host (held by another deploy,
    /// a compose command still running there, or a person at a shell) before it fails.
    pub lock_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_per_host: 1,
            queue_capacity: 512,
            job_timeout: None,
            lock_wait: Duration::from_secs(300),
        }
    }
}

/// What a job is about: its pair decides the per-pair and per-host limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobKey {
    /// The (project, host) pair: one job of a pair runs at a time, and its host counts
    /// towards [`Limits::max_per_host`].
    pub pair: Pair,
}

/// A job's id, unique within a scheduler (counting up from 1).
pub type JobId = u64;

/// Why a job gave no result. A job that ran returns its own output, even when it was
/// cancelled while running. More reasons may come.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Cancelled while it was still queued: it never ran.
    #[error("cancelled before it started")]
    Cancelled,
    /// Still queued when [`Scheduler::shutdown`] began: it never ran.
    #[error("dropped at shutdown before it started")]
    ShutDown,
    /// The job panicked; the panic's message.
    #[error("the job panicked: {0}")]
    Panicked(String),
}

/// Counts for metrics and the API, from [`Scheduler::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs accepted and not started.
    pub queued: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs running per host; hosts with none are absent.
    pub running_per_host: HashMap<HostName, usize>,
}

/// What [`Scheduler::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Running jobs that ended within the grace period.
    pub finished: usize,
    /// Running jobs whose token was fired when the grace period ran out.
    pub cancelled: usize,
    /// Queued jobs dropped without running.
    pub dropped: usize,
}

type Start = Box<dyn FnOnce(JobContext) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;
type Fail = Box<dyn FnOnce(JobError) + Send>;

struct Waiting {
    id: JobId,
    key: JobKey,
    start: Start,
    fail: Fail,
}

struct State {
    next_id: JobId,
    queue: VecDeque<Waiting>,
    running: HashMap<JobId, (JobKey, JobContext)>,
    per_host: HashMap<HostName, usize>,
    busy_pairs: HashSet<Pair>,
    shutting_down: bool,
}

struct Shared {
    limits: Limits,
    state: Mutex<State>,
    /// Fires whenever a running job ends.
    finished: Notify,
}

/// The scheduler. Cheap to clone; clones share one queue.
///
/// The [`Engine`](crate::Engine) owns one and submits every deploy and teardown to it; reach
/// it with [`Engine::scheduler`](crate::Engine::scheduler). It runs jobs on the current
/// tokio runtime, so [`submit`](Self::submit) must be called inside one.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("limits", &self.shared.limits).field("stats", &self.stats()).finish()
    }
}

/// A submitted job: wait for its result or cancel it. Dropping the handle leaves the job
/// queued or running.
pub struct JobHandle<T> {
    id: JobId,
    scheduler: Scheduler,
    result: oneshot::Receiver<std::result::Result<T, JobError>>,
}

impl<T> std::fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish()
    }
}

impl<T> JobHandle<T> {
    /// The job's id (for [`Scheduler::cancel`]).
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Cancels the job: a waiting job never runs; a running one has its token fired.
    pub fn cancel(&self) {
        self.scheduler.cancel(self.id);
    }

    /// The job's output, or why there is none.
    ///
    /// # Errors
    ///
    /// The [`JobError`] saying why the job never ran, or that it panicked.
    pub async fn wait(self) -> std::result::Result<T, JobError> {
        self.result.await.unwrap_or_else(|_| Err(JobError::Panicked("the job's task ended without a result".into())))
    }
}

impl Scheduler {
    /// An empty scheduler; `max_workers` and `max_per_host` of 0 are raised to 1.
    pub fn new(limits: Limits) -> Self {
        let limits =
            Limits { max_workers: limits.max_workers.max(1), max_per_host: limits.max_per_host.max(1), ..limits };
        Self {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::new(State {
                    next_id: 1,
                    queue: VecDeque::new(),
                    running: HashMap::new(),
                    per_host: HashMap::new(),
                    busy_pairs: HashSet::new(),
                    shutting_down: false,
                }),
                finished: Notify::new(),
            }),
        }
    }

    /// The limits in force (after the raise to at least 1).
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job. It starts when the limits allow, after every earlier job of its pair,
    /// as a task of its own; `job` gets the [`JobContext`] to watch for cancellation. A
    /// panic in the job is caught and reported as [`JobError::Panicked`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::QueueFull`] when `queue_capacity` jobs are already waiting,
    /// [`ErrorKind::ShuttingDown`] once [`shutdown`](Self::shutdown) has begun.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when the job can start at once (it is spawned).
    pub fn submit<T, F, Fut>(&self, key: JobKey, job: F) -> Result<JobHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce(JobContext) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let fail_tx = tx.clone();
        let timeout = self.shared.limits.job_timeout;
        let start: Start = Box::new(move |ctx: JobContext| {
            Box::pin(async move {
                let fut = AssertUnwindSafe(run_with_timeout(job, ctx, timeout)).catch_unwind();
                let result = fut.await.map_err(|panic| JobError::Panicked(panic_message(&panic)));
                if let Some(tx) = tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(result);
                }
            })
        });
        let fail: Fail = Box::new(move |err| {
            if let Some(tx) = fail_tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(Err(err));
            }
        });
        let id = {
            let mut state = self.state();
            if state.shutting_down {
                return Err(Error::new(
                    ErrorKind::ShuttingDown,
                    "schedule deploy",
                    "the scheduler is shutting down and takes no new jobs",
                ));
            }
            if state.queue.len() >= self.shared.limits.queue_capacity {
                return Err(Error::new(
                    ErrorKind::QueueFull,
                    "schedule deploy",
                    format!(
                        "the deploy queue is full ({} jobs waiting); try again later",
                        self.shared.limits.queue_capacity
                    ),
                ));
            }
            let id = state.next_id;
            state.next_id += 1;
            state.queue.push_back(Waiting { id, key, start, fail });
            id
        };
        self.dispatch();
        Ok(JobHandle { id, scheduler: self.clone(), result: rx })
    }

    /// Starts every queued job the limits allow, in queue order.
    fn dispatch(&self) {
        let mut to_start = Vec::new();
        {
            let mut state = self.state();
            let limits = self.shared.limits;
            let mut blocked_pairs: HashSet<Pair> = HashSet::new();
            let mut i = 0;
            while i < state.queue.len() && state.running.len() + to_start.len() < limits.max_workers {
                let key = state.queue[i].key.clone();
                let host_busy = state.per_host.get(&key.pair.host).copied().unwrap_or(0) >= limits.max_per_host;
                if host_busy || state.busy_pairs.contains(&key.pair) || blocked_pairs.contains(&key.pair) {
                    blocked_pairs.insert(key.pair);
                    i += 1;
                    continue;
                }
                let Some(waiting) = state.queue.remove(i) else { break };
                let ctx = JobContext::new(limits.job_timeout);
                *state.per_host.entry(key.pair.host.clone()).or_default() += 1;
                state.busy_pairs.insert(key.pair.clone());
                state.running.insert(waiting.id, (key, ctx.clone()));
                to_start.push((waiting, ctx));
            }
        }
        for (waiting, ctx) in to_start {
            let scheduler = self.clone();
            let id = waiting.id;
            let fut = (waiting.start)(ctx);
            tokio::spawn(async move {
                fut.await;
                scheduler.finish(id);
            });
        }
    }

    fn finish(&self, id: JobId) {
        {
            let mut state = self.state();
            if let Some((key, _)) = state.running.remove(&id) {
                if let Some(n) = state.per_host.get_mut(&key.pair.host) {
                    *n -= 1;
                    if *n == 0 {
                        state.per_host.remove(&key.pair.host);
                    }
                }
                state.busy_pairs.remove(&key.pair);
            }
        }
        self.shared.finished.notify_waiters();
        self.dispatch();
    }

    /// Cancels a job by id (see [`JobHandle::cancel`]). Unknown or finished ids are ignored.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when removing a queued job lets another one start.
    pub fn cancel(&self, id: JobId) {
        let fail = {
            let mut state = self.state();
            if let Some((_, ctx)) = state.running.get(&id) {
                ctx.cancel(CancelReason::Cancelled);
                None
            } else {
                state.queue.iter().position(|w| w.id == id).and_then(|i| state.queue.remove(i)).map(|w| w.fail)
            }
        };
        if let Some(fail) = fail {
            fail(JobError::Cancelled);
            self.dispatch();
        }
    }

    /// Cancels every queued and running job of a pair.
    pub fn cancel_pair(&self, pair: &Pair) {
        let ids: Vec<JobId> = {
            let state = self.state();
            state
                .queue
                .iter()
                .filter(|w| &w.key.pair == pair)
                .map(|w| w.id)
                .chain(state.running.iter().filter(|(_, (k, _))| &k.pair == pair).map(|(id, _)| *id))
                .collect()
        };
        for id in ids {
            self.cancel(id);
        }
    }

    /// How many jobs wait and run now.
    pub fn stats(&self) -> Stats {
        let state = self.state();
        Stats { queued: state.queue.len(), running: state.running.len(), running_per_host: state.per_host.clone() }
    }

    /// The keys of running jobs, then of queued ones, in queue order.
    pub fn jobs(&self) -> (Vec<JobKey>, Vec<JobKey>) {
        let state = self.state();
        (state.running.values().map(|(k, _)| k.clone()).collect(), state.queue.iter().map(|w| w.key.clone()).collect())
    }

    /// Stops intake, drops queued jobs, gives running jobs `grace` to end, then fires their
    /// tokens and waits for them to return.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let (dropped, running_at_start) = {
            let mut state = self.state();
            state.shutting_down = true;
            (std::mem::take(&mut state.queue), state.running.len())
        };
        let mut report = ShutdownReport { dropped: dropped.len(), ..Default::default() };
        for waiting in dropped {
            (waiting.fail)(JobError::ShutDown);
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.shared.finished.notified();
            if self.state().running.is_empty() {
                report.finished = running_at_start;
                return report;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        {
            let state = self.state();
            report.cancelled = state.running.len();
            report.finished = running_at_start - report.cancelled;
            for (_, ctx) in state.running.values() {
                ctx.cancel(CancelReason::Shutdown);
            }
        }
        loop {
            let notified = self.shared.finished.notified();
            if self.state().running.is_empty() {
                return report;
            }
            notified.await;
        }
    }
}

async fn run_with_timeout<T, F, Fut>(job: F, ctx: JobContext, timeout: Option<Duration>) -> T
where
    F: FnOnce(JobContext) -> Fut,
    Fut: Future<Output = T>,
{
    let fut = job(ctx.clone());
    let Some(timeout) = timeout else {
        return fut.await;
    };
    tokio::pin!(fut);
    tokio::select! {
        out = &mut fut => out,
        _ = tokio::time::sleep(timeout) => {
            ctx.cancel(CancelReason::TimedOut(timeout));
            fut.await
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
