//! Webhook intake: accepted pushes go into a bounded queue (the webhook answers 202 at once,
//! or 503 when the queue or the scheduler is full, so that GitHub can redeliver); one worker
//! plans them in order. An accepted push is never dropped: a refused submission (the
//! scheduler's queue full) or an unreachable remote is retried with backoff until it goes
//! through or the daemon stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use deeplo_core::config::Config;
use deeplo_core::model::Trigger;
use deeplo_core::plan::ChangedPaths;
use deeplo_core::trigger::{HeadRequest, cursor_key};
use deeplo_core::{Engine, ErrorKind};
use deeplo_github::{GithubPush, PushSink, SinkBusy};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Deliveries waiting to be planned before the webhook answers 503.
const QUEUE: usize = 4096;

#[derive(Debug)]
pub struct Intake {
    engine: Engine,
    tx: mpsc::Sender<Vec<GithubPush>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
}

impl Intake {
    /// The sink and its worker.
    pub fn spawn(engine: Engine, metrics: Arc<Metrics>, cancel: CancellationToken) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(worker(engine.clone(), rx, metrics.clone(), cancel.clone()));
        Arc::new(Self { engine, tx, metrics, cancel })
    }
}

#[async_trait]
impl PushSink for Intake {
    fn config(&self) -> Arc<Config> {
        self.engine.config()
    }

    async fn submit(&self, pushes: Vec<GithubPush>) -> Result<(), SinkBusy> {
        let scheduler = self.engine.scheduler();
        if self.cancel.is_cancelled() || scheduler.stats().queued >= scheduler.limits().queue_capacity {
            return Err(SinkBusy);
        }
        self.tx.try_send(pushes).map_err(|_| SinkBusy)?;
        self.metrics.webhooks_accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

async fn worker(
    engine: Engine,
    mut rx: mpsc::Receiver<Vec<GithubPush>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut seen = Seen::default();
    while let Some(pushes) = tokio::select! {
        () = cancel.cancelled() => None,
        got = rx.recv() => got,
    } {
        for (key, mut request) in requests(&engine, pushes) {
            // A head is planned once: redeliveries and late deliveries of a head already
            // handled (even one now behind the cursor) go no further, and cost no I/O.
            if !seen.insert(format!("{key}@{}", request.head)) {
                continue;
            }
            // The first webhook of a repo with no cursor deploys every project: there is no
            // telling what happened before.
            if matches!(engine.store().cursor(&key).await, Ok(None)) {
                request.ignore_cursor = true;
                request.deploy_all = true;
            }
            let mut wait = Duration::from_millis(200);
            loop {
                match engine.handle_head(request.clone()).await {
                    Ok(outcome) => {
                        if !outcome.already_handled {
                            metrics.heads_planned.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    Err(err) if err.kind() == ErrorKind::QueueFull || err.is_temporary() => {
                        tracing::warn!(head = %request.head.short(), error = %err, retry_in = ?wait, "push not planned yet");
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                    Err(err) => {
                        tracing::error!(head = %request.head.short(), error = %err, "push could not be planned");
                        break;
                    }
                }
            }
        }
    }
}

/// One request per (URL, branch, head), with its cursor key: entries that share a URL and
/// branch share a cursor and are planned together.
fn requests(engine: &Engine, pushes: Vec<GithubPush>) -> Vec<(String, HeadRequest)> {
    let config = engine.config();
    let mut grouped: BTreeMap<(String, String), HeadRequest> = BTreeMap::new();
    for push in pushes {
        let Some(repo) = config.repo(push.repo.as_str()) else { continue };
        let hint = match (&push.changed, &push.before) {
            (ChangedPaths::Known(paths), Some(before)) if !push.forced => Some((before.clone(), paths.clone())),
            _ => None,
        };
        grouped
            .entry((cursor_key(repo), push.after.to_string()))
            .or_insert_with(|| HeadRequest {
                repos: Vec::new(),
                head: push.after.clone(),
                hint,
                trigger: Trigger::Webhook,
                ignore_cursor: false,
                deploy_all: false,
            })
            .repos
            .push(push.repo.clone());
    }
    grouped.into_iter().map(|((key, _), request)| (key, request)).collect()
}

/// The heads planned lately, oldest forgotten first.
#[derive(Default)]
struct Seen {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl Seen {
    const CAPACITY: usize = 10_000;

    /// `false` when `key` was seen already.
    fn insert(&mut self, key: String) -> bool {
        if !self.set.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}
