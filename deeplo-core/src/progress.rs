//! Live progress of deployments, for progress bars, the API and metrics.
//!
//! The engine broadcasts a [`Progress`] for every queued run, every step that starts or
//! ends, and every run that finishes. Receivers that fall behind lose old events (a
//! broadcast channel), never slow a deploy down.

use serde::Serialize;

use crate::model::{CommitId, DeployStatus, Pair, RunId, StepOutcome};

/// One progress event, from [`Engine::progress`](crate::Engine::progress).
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// The run it is about (the deployment record's id).
    pub run: RunId,
    /// The (project, host) pair the run deploys.
    pub pair: Pair,
    /// The commit the run deploys (a rollback's steps still carry the failed run's commit).
    pub commit: CommitId,
    /// What happened.
    pub event: ProgressEvent,
}

/// What happened to a run. As JSON, the variant's name is in `type` (`queued`,
/// `step_started`...), beside its fields.
///
/// Per run: `queued`, then a `step_started` / `step_finished` pair for each step as it runs
/// (an automatic rollback's steps after the failed one), then `finished`. More kinds of
/// event may come.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Accepted and waiting for the scheduler.
    Queued,
    /// A step began.
    StepStarted {
        /// The step's name ([`Step::name`](crate::pipeline::Step::name)), prefixed with
        /// `rollback:` for the steps of an automatic rollback.
        step: String,
    },
    /// A step ended.
    StepFinished {
        /// The step's name, as in [`StepStarted`](ProgressEvent::StepStarted).
        step: String,
        /// Whether it passed.
        outcome: StepOutcome,
        /// How long it took, in milliseconds.
        duration_ms: u64,
    },
    /// The run ended; its record is saved.
    Finished {
        /// The final status (`succeeded` or `failed`).
        status: DeployStatus,
        /// Why it failed (the record's error), `None` on success.
        error: Option<String>,
    },
}
