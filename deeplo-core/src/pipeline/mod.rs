//! The deploy pipeline: the steps that take one commit of one project onto one host.
//!
//! The pipeline is data: [`Step::ALL`] lists the steps in order with their names, so logs,
//! progress bars, per-step timings and the API all show the same stages. Each step is a
//! small function over a [`Transport`](crate::Transport); the engine times each one, records
//! it in the deployment record ([`StepRecord`] named by
//! [`Step::name`]), logs it, reports it as [`Progress`] and stops
//! it when the job is cancelled.
//!
//! Library users reach the pipeline through the [`Engine`](crate::Engine); this module
//! exposes what they see of it: the [`Step`]s, the compose [`project_name`] of a project,
//! the [`ServiceState`]s that [`Engine::observe`](crate::Engine::observe) reports, and
//! [`teardown`], which takes a project off a host.
//!
//! Invariants: nothing on the host is touched before preflight passes, except repairing a
//! swap that an earlier crash left half-done, emptying the staging directory and the lock
//! files beside it; a failed preflight removes staging and leaves the live directory exactly
//! as it was. One deploy at a time works on a project's directory, whoever started it: stage
//! to the end of the health gate run under a lock on the host (`flock`, which the kernel
//! releases when its holder dies), and every compose command of a deploy under a second one
//! that a `compose up` left running by a dead deployer still holds.
//!
//! Round trips are few: the connection opens while git reads the commit, the files go up as
//! one stream, and persist, preflight, swap and up are one remote script whose marker lines
//! give each step its own record.

mod app;
mod compose;
mod health;
mod remote;
mod runlog;
mod script;
mod steps;
mod teardown;

pub use app::ReleaseState;
pub(crate) use app::{deploy_application, releases_on};
pub(crate) use compose::ComposeCommand;
pub use compose::{ServiceState, project_name};
pub(crate) use remote::RemoteDirs;
pub(crate) use runlog::RunLog;
pub(crate) use steps::{Session, Target, deploy_commit, detect_compose, ps};
pub use teardown::{TeardownOutcome, teardown};

use std::future::Future;
use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::model::{Deployment, StepOutcome, StepRecord};
use crate::progress::{Progress, ProgressEvent};
use crate::{Error, ErrorKind, Result};

/// One stage of a deploy, in the order [`Step::ALL`] lists. More steps may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Step {
    /// The mirror has the commit.
    Fetch,
    /// The project's files are read from the commit.
    Extract,
    /// The host is reached and authenticated (opened while fetch and extract run).
    Connect,
    /// The project's lock on the host is taken and the files are uploaded into
    /// `live.staging`.
    Stage,
    /// Persisted files (`.env`) are copied from live into staging.
    Persist,
    /// Docker and a compose command are present and `compose config` validates staging.
    Preflight,
    /// live -> `.old`, staging -> live.
    Swap,
    /// `compose up --wait` (Compose v2): every service running, healthy where it has a
    /// healthcheck, or completed with status 0.
    Up,
    /// The HTTP check passes (and, where `up` could not wait, the healthchecks).
    Health,
    /// `.old` is removed (a Compose project); releases beyond `keep_releases` are removed
    /// (an application).
    Cleanup,
    /// An application: Docker runs, the `deeplo` network exists, the proxy runs (started
    /// or created if needed); the live and kept releases are read.
    Precheck,
    /// An application: `docker build` of the staged context on the host.
    Build,
    /// An application: the new release's container starts beside the live one.
    Start,
    /// An application: the proxy sends traffic to the new release, in one atomic change.
    Switch,
    /// An application: the old release finishes what it is answering, then stops.
    Drain,
}

impl Step {
    /// Every step of an application's deploy, in order. A rollback to a kept release skips
    /// fetch, extract, stage and build.
    pub const APPLICATION: [Step; 11] = [
        Self::Fetch,
        Self::Extract,
        Self::Connect,
        Self::Precheck,
        Self::Stage,
        Self::Build,
        Self::Start,
        Self::Health,
        Self::Switch,
        Self::Drain,
        Self::Cleanup,
    ];

    /// Every step of a Compose project's deploy, in the order it runs them (for progress
    /// bars and tables).
    pub const ALL: [Step; 10] = [
        Self::Fetch,
        Self::Extract,
        Self::Connect,
        Self::Stage,
        Self::Persist,
        Self::Preflight,
        Self::Swap,
        Self::Up,
        Self::Health,
        Self::Cleanup,
    ];

    /// The step's name in records, run logs, progress events and the API (`fetch`,
    /// `preflight`...); a rollback's steps carry the prefix `rollback:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::Extract => "extract",
            Self::Connect => "connect",
            Self::Stage => "stage",
            Self::Persist => "persist",
            Self::Preflight => "preflight",
            Self::Swap => "swap",
            Self::Up => "up",
            Self::Health => "health",
            Self::Cleanup => "cleanup",
            Self::Precheck => "precheck",
            Self::Build => "build",
            Self::Start => "start",
            Self::Switch => "switch",
            Self::Drain => "drain",
        }
    }

    /// Whether a failure at this step of a Compose deploy leaves the host running something
    /// other than the last good commit, so that a rollback is needed. (A failed application
    /// deploy never does: its live release serves until the switch.)
    pub fn needs_rollback_on_failure(self) -> bool {
        matches!(self, Self::Up | Self::Health)
    }
}

/// A failed step and why.
#[derive(Debug)]
pub(crate) struct StepFailure {
    pub step: Step,
    pub error: Error,
}

/// Runs steps for one record: times them, records them, reports progress, stops on cancel.
pub(crate) struct StepRunner<'a> {
    pub record: &'a mut Deployment,
    pub log: &'a RunLog,
    pub progress: &'a broadcast::Sender<Progress>,
    pub cancel: &'a CancellationToken,
    /// Why the job was told to stop, as text for the record (`timed out after 300s`).
    pub cancel_reason: &'a (dyn Fn() -> String + Send + Sync),
    /// Prepended to step names in the record (`rollback:` while rolling back).
    pub prefix: &'static str,
}

impl StepRunner<'_> {
    fn step_name(&self, step: Step) -> String {
        format!("{}{}", self.prefix, step.name())
    }

    fn emit(&self, event: ProgressEvent) {
        let _ = self.progress.send(Progress {
            run: self.record.id.clone(),
            pair: crate::model::Pair::new(self.record.project.clone(), self.record.host.clone()),
            commit: self.record.commit.clone(),
            event,
        });
    }

    /// Runs one step. The step's error gets the step, project and host as context.
    pub async fn run<T, F>(&mut self, step: Step, fut: F) -> std::result::Result<T, StepFailure>
    where
        F: Future<Output = Result<T>>,
    {
        let name = self.step_name(step);
        let started_at = Timestamp::now();
        let clock = Instant::now();
        self.emit(ProgressEvent::StepStarted { step: name.clone() });
        self.log.line(format!("{name}: started"));
        let result = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => {
                let reason = (self.cancel_reason)();
                Err(Error::new(ErrorKind::Cancelled, "deploy", format!("stopped during step {name}: {reason}")))
            }
            r = fut => r,
        };
        let duration_ms = clock.elapsed().as_millis() as u64;
        let (outcome, error) = match &result {
            Ok(_) => (StepOutcome::Succeeded, None),
            Err(e) => (StepOutcome::Failed, Some(self.log.redact(e.message()))),
        };
        self.record.steps.push(StepRecord {
            name: name.clone(),
            started_at,
            duration_ms,
            outcome,
            error: error.clone(),
        });
        match &error {
            None => self.log.line(format!("{name}: ok ({duration_ms} ms)")),
            Some(e) => self.log.line(format!("{name}: FAILED after {duration_ms} ms: {e}")),
        }
        self.emit(ProgressEvent::StepFinished { step: name, outcome, duration_ms });
        self.log.flush(false).await;
        result.map_err(|error| {
            let error = error.with_step(step.name()).with_project(&self.record.project).with_host(&self.record.host);
            StepFailure { step, error }
        })
    }
}
