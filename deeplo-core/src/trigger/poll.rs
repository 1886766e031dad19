//! The poller: one `ls-remote` per (URL, branch) every `poll_interval`, shared by every repo
//! entry that watches that branch, the first at start-up.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{HeadOutcome, HeadRequest, cursor_key};
use crate::config::{Config, TriggerMode};
use crate::engine::Engine;
use crate::model::{RepoName, Trigger};
use crate::{Error, ErrorKind, Result};

/// Repo entries polled together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollGroup {
    /// The cursor key (URL and branch), as [`cursor_key`](super::cursor_key) makes it.
    pub key: String,
    /// The repo entries of this URL and branch, in config order.
    pub repos: Vec<RepoName>,
    /// The shortest `poll_interval` of the entries.
    pub interval: Duration,
}

/// The groups to poll under `config`: repos in `poll` or `hybrid` mode, or every repo when
/// `all` (the start-up reconcile also looks at webhook-only repos once).
pub fn poll_groups(config: &Config, all: bool) -> Vec<PollGroup> {
    let mut groups: BTreeMap<String, PollGroup> = BTreeMap::new();
    for repo in &config.repos {
        if !all && repo.trigger_mode == TriggerMode::Webhook {
            continue;
        }
        let key = cursor_key(repo);
        let group = groups.entry(key.clone()).or_insert_with(|| PollGroup {
            key,
            repos: Vec::new(),
            interval: repo.poll_interval,
        });
        group.repos.push(repo.name.clone());
        group.interval = group.interval.min(repo.poll_interval);
    }
    groups.into_values().collect()
}

/// Polls every group of the engine's current config (re-read each round, so reloads apply).
///
/// Start it with `tokio::spawn(Poller::new(engine.clone()).run(token))`; cancel the token to
/// stop it.
#[derive(Debug, Clone)]
pub struct Poller {
    engine: Engine,
}

impl Poller {
    /// A poller for `engine`'s repos; nothing runs until [`run`](Self::run) or
    /// [`poll_once`](Self::poll_once).
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// One poll: `ls-remote`, then [`Engine::handle_head`] when the head moved (or always,
    /// with `startup`, so that a restart retries failed targets).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when no repo entry of the group is left in the config, the
    /// [`Source`](crate::Source)'s errors for `ls-remote`, and those of
    /// [`Engine::handle_head`].
    pub async fn poll_once(&self, group: &PollGroup, startup: bool) -> Result<HeadOutcome> {
        let config = self.engine.config();
        let repo =
            group.repos.first().and_then(|r| config.repo(r.as_str())).ok_or_else(|| {
                Error::new(ErrorKind::Config, "poll", format!("no repo entry left for {}", group.key))
            })?;
        let head = self.engine.source().head(repo).await?;
        let trigger = if startup { Trigger::Reconcile } else { Trigger::Poll };
        self.engine
            .handle_head(HeadRequest {
                repos: group.repos.clone(),
                head,
                hint: None,
                trigger,
                ignore_cursor: startup,
                deploy_all: false,
            })
            .await
    }

    /// Polls until `cancel`: every group once at once (start-up reconcile: webhook-only repos
    /// too), then each group every interval. At most one poll of a group runs at a time; a
    /// failed poll is logged and retried at the next interval.
    pub async fn run(self, cancel: CancellationToken) {
        let mut due: HashMap<String, Instant> = HashMap::new();
        let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
        let mut first = true;
        loop {
            running.retain(|_, task| !task.is_finished());
            let now = Instant::now();
            let groups = poll_groups(&self.engine.config(), first);
            due.retain(|key, _| groups.iter().any(|g| &g.key == key));
            for group in groups {
                let next = due.entry(group.key.clone()).or_insert(now);
                if *next > now || running.contains_key(&group.key) {
                    continue;
                }
                *next = now + group.interval;
                let poller = self.clone();
                let key = group.key.clone();
                let startup = first;
                running.insert(
                    key,
                    tokio::spawn(async move {
                        match poller.poll_once(&group, startup).await {
                            Ok(outcome) if !outcome.already_handled => {
                                tracing::debug!(key = %group.key, head = %outcome.head.short(), "polled")
                            }
                            Ok(_) => {}
                            Err(err) => {
                                tracing::warn!(key = %group.key, error = %err, "poll failed; retrying next interval")
                            }
                        }
                    }),
                );
            }
            first = false;
            let wake = due.values().min().copied().unwrap_or(now + Duration::from_secs(1));
            let wake = wake.min(Instant::now() + Duration::from_secs(1));
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        for (_, task) in running {
            task.abort();
        }
    }
}
