//! Config reloads: compare a new config with the applied baseline, take gone and moved pairs
//! off their old hosts, put the new config in force, and deploy what needs deploying.
//!
//! The order is chosen so that nothing runs against a config that is on its way out:
//!
//! 1. The new config is put in force first, so no trigger plans a removed pair any more and
//!    a queued run of one fails at its start ("no longer in the config").
//! 2. Runs of removed and moved pairs are cancelled; each teardown is a scheduler job keyed
//!    by its pair, so it starts only once the pair's cancelled run has returned, and the
//!    host limits hold for teardowns as for deploys. It connects to the *old* host entry.
//! 3. Deploys are submitted (forced, trigger `reconcile`) once every teardown has ended, so
//!    that a new pair never races the teardown of the directory it takes over.
//! 4. The new baseline is saved last: a crash before that makes the next start redo the
//!    reload (teardowns are idempotent, redeploys harmless) instead of forgetting it.
//!
//! A failed teardown is reported, not retried: the new baseline no longer has the pair, so
//! a host that is gone for good does not block every later reload.

use std::collections::HashMap;
use std::sync::Mutex;

use super::reload_report::{ReloadFailure, ReloadReport, TornDown};
use super::{Engine, Inner};
use crate::config::applied::{self, APPLIED_CONFIG_DOCUMENT};
use crate::config::{ChangeKind, Config, ConfigDiff, DeployAt, Host, Project, Teardown, diff};
use crate::model::{CommitId, Pair, RepoName, Trigger};
use crate::pipeline::{TeardownOutcome, teardown};
use crate::plan::Job;
use crate::schedule::{JobHandle, JobKey};
use crate::transport::{OutputSink, OutputStream};
use crate::{Error, ErrorKind, Result};

impl Engine {
    /// The applied-config baseline from the store, or `None` when none was saved yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the store fails or the document cannot be read.
    pub async fn applied_config(&self) -> Result<Option<Config>> {
        match self.inner.store.load_document(APPLIED_CONFIG_DOCUMENT).await? {
            None => Ok(None),
            Some(value) => applied::from_document(value).map(Some),
        }
    }

    /// What [`apply_config`](Self::apply_config) would do with `new`, without doing it
    /// (compared with the baseline, or with the config in force when there is none or it
    /// cannot be read).
    ///
    /// # Errors
    ///
    /// None today: a baseline that cannot be loaded is replaced by the config in force.
    pub async fn config_diff(&self, new: &Config) -> Result<ConfigDiff> {
        let old = match self.applied_config().await {
            Ok(Some(old)) => old,
            Ok(None) | Err(_) => (*self.config()).clone(),
        };
        Ok(diff(&old, new))
    }

    /// Puts `new` (already validated; an invalid file is the caller's to report, keeping the
    /// config in force) into force and converges the hosts on it.
    ///
    /// Call it at start with the config the engine was built with (changes made while the
    /// daemon was down are applied then; the very first start adopts the config without
    /// deploying anything) and on each reload. Calls must not overlap.
    ///
    /// Pairs that are gone or moved are torn down on their old host when they were ever
    /// deployed there; new pairs are deployed at their branch head; changed and moved pairs
    /// at their current commit (see [`crate::config::diff`] for which fields count).
    ///
    /// # Errors
    ///
    /// Only when the baseline cannot be loaded from the store at all; the config in force is
    /// then unchanged. Failed teardowns and deploys are in the report.
    pub async fn apply_config(&self, new: Config) -> Result<ReloadReport> {
        let stored = self.inner.store.load_document(APPLIED_CONFIG_DOCUMENT).await?;
        let Some(value) = stored else {
            let mut report = ReloadReport::new(ConfigDiff::default());
            report.adopted = true;
            self.set_config(new.clone());
            self.save_baseline(&new, &mut report).await;
            return Ok(report);
        };
        let (old, baseline_error) = match applied::from_document(value) {
            Ok(old) => (old, None),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the applied config; comparing with the config in force");
                ((*self.config()).clone(), Some(err))
            }
        };
        let mut report = ReloadReport::new(diff(&old, &new));
        report.baseline_error = baseline_error;
        self.set_config(new.clone());

        let mut teardowns = Vec::new();
        for pd in &report.diff.pairs {
            if !matches!(pd.kind, ChangeKind::Removed { .. } | ChangeKind::Moved { .. }) {
                continue;
            }
            self.inner.scheduler.cancel_pair(&pd.pair);
            let Some(what) = pd.teardown() else { continue };
            let pair = pd.pair.clone();
            match self.inner.store.latest(&pair).await {
                Ok(None) => report.never_deployed.push(pair),
                Ok(Some(_)) => match self.schedule_teardown(&old, &pair, what) {
                    Ok(handle) => teardowns.push((pair, handle)),
                    Err(error) => report.failures.push(ReloadFailure::Teardown { pair, error }),
                },
                Err(error) => report.failures.push(ReloadFailure::Teardown { pair, error }),
            }
        }
        for (pair, handle) in teardowns {
            let result = handle.wait().await.map_err(|e| {
                Error::new(ErrorKind::Cancelled, "teardown", format!("the teardown of {pair} did not run: {e}"))
            });
            match result.and_then(|r| r) {
                Ok(done) => {
                    tracing::info!(pair = %pair, address = %done.address, "torn down");
                    report.torn_down.push(done);
                }
                Err(error) => {
                    tracing::warn!(pair = %pair, error = %error, "teardown failed");
                    report.failures.push(ReloadFailure::Teardown { pair, error });
                }
            }
        }

        self.submit_reload_deploys(&new, &mut report).await;
        self.save_baseline(&new, &mut report).await;
        Ok(report)
    }

    async fn save_baseline(&self, config: &Config, report: &mut ReloadReport) {
        let saved = match applied::to_document(config) {
            Ok(doc) => self.inner.store.save_document(APPLIED_CONFIG_DOCUMENT, &doc).await,
            Err(err) => Err(err),
        };
        if let Err(error) = saved {
            tracing::error!(error = %error, "cannot save the applied config");
            report.failures.push(ReloadFailure::Baseline { error });
        }
    }

    /// A scheduler job that tears `pair` down as the old config had it.
    fn schedule_teardown(&self, old: &Config, pair: &Pair, what: Teardown) -> Result<JobHandle<Result<TornDown>>> {
        let missing = || {
            Error::new(ErrorKind::Config, "teardown", format!("{pair} is not in the applied config"))
                .with_project(&pair.project)
                .with_host(&pair.host)
        };
        let project = old.project(pair.project.as_str()).ok_or_else(missing)?.clone();
        let host = old.host(pair.host.as_str()).ok_or_else(missing)?.clone();
        let inner = self.inner.clone();
        let key = JobKey { pair: pair.clone() };
        let pair = pair.clone();
        self.inner.scheduler.submit(key, move |ctx| async move {
            match ctx.run_until_cancelled(run_teardown(&inner, &host, &project, what)).await {
                Ok(result) => {
                    result.map(|(outcome, output)| TornDown { pair, address: host.address.clone(), outcome, output })
                }
                Err(reason) => Err(Error::new(ErrorKind::Cancelled, "teardown", format!("stopped: {reason}"))
                    .with_project(&project.name)
                    .with_host(&host.name)),
            }
        })
    }

    /// Submits the deploys the diff asks for, one pair at a time so that one refusal does
    /// not stop the others.
    async fn submit_reload_deploys(&self, new: &Config, report: &mut ReloadReport) {
        let mut heads: HashMap<RepoName, Result<CommitId, String>> = HashMap::new();
        let wanted: Vec<(Pair, DeployAt)> = report.diff.deploys().map(|(p, at)| (p.pair.clone(), at)).collect();
        for (pair, at) in wanted {
            let commit = match self.reload_commit(new, &pair, at, &mut heads).await {
                Ok(commit) => commit,
                Err(error) => {
                    report.failures.push(ReloadFailure::Deploy { pair, error });
                    continue;
                }
            };
            let job = Job { project: pair.project.clone(), host: pair.host.clone(), commit };
            match self.submit(&[job], Trigger::Reconcile, true).await {
                Ok(submitted) => report.deploys.extend(submitted),
                Err(error) => report.failures.push(ReloadFailure::Deploy { pair, error }),
            }
        }
    }

    /// The commit a reload deploys for `pair`. For [`DeployAt::Current`]: the commit of a
    /// run still queued or under way (the redeploy must not land an older commit after it),
    /// else the last success; otherwise, and when the pair never succeeded, the branch head
    /// (fetched once per repo).
    async fn reload_commit(
        &self,
        new: &Config,
        pair: &Pair,
        at: DeployAt,
        heads: &mut HashMap<RepoName, Result<CommitId, String>>,
    ) -> Result<CommitId> {
        if at == DeployAt::Current {
            if let Some(latest) = self.inner.store.latest(pair).await?
                && !latest.status.is_terminal()
            {
                return Ok(latest.commit);
            }
            if let Some(good) = self.inner.store.last_success(pair).await? {
                return Ok(good.commit);
            }
        }
        let repo = new
            .project(pair.project.as_str())
            .and_then(|p| new.repo(p.repo.as_str()))
            .ok_or_else(|| Error::new(ErrorKind::Config, "reload", format!("the repo of {pair} is not configured")))?;
        if !heads.contains_key(&repo.name) {
            let head = self.inner.source.fetch(repo, None).await.map_err(|e| e.to_string());
            heads.insert(repo.name.clone(), head);
        }
        match &heads[&repo.name] {
            Ok(commit) => Ok(commit.clone()),
            Err(message) => Err(Error::new(
                ErrorKind::Git,
                "reload",
                format!("cannot fetch the head of branch \"{}\": {message}", repo.branch),
            )
            .with_repo(&repo.name)
            .with_project(&pair.project)
            .with_host(&pair.host)),
        }
    }
}

/// Connects to the old host and tears the project down; returns the outcome and the output.
async fn run_teardown(
    inner: &Inner,
    host: &Host,
    project: &Project,
    what: Teardown,
) -> Result<(TeardownOutcome, String)> {
    let transport =
        inner.connector.connect(host).await.map_err(|e| e.with_project(&project.name).with_host(&host.name))?;
    let sink = Collect::default();
    let result = teardown(transport.as_ref(), host, project, what, &sink).await;
    let _ = transport.close().await;
    let output = {
        let raw = sink.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.redactor.redact(&String::from_utf8_lossy(&raw)).into_owned()
    };
    result.map(|outcome| (outcome, output))
}

/// Keeps a teardown's output for the report.
#[derive(Default)]
struct Collect(Mutex<Vec<u8>>);

impl OutputSink for Collect {
    fn output(&self, _: OutputStream, data: &[u8]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(data);
    }
}
