//! Live progress of deployments, for progress bars, the API and metrics.
//!
//! The engine broadcasts a [`Progress`] for every queued run, every step that starts or
//! ends, and every run that finishes. Receivers that fall behind lose old events (a
//! broadcast channel), never slow a deploy down.

use serde::Serialize;

use crate::model::{CommitId, DeployStatus, Pair, RunId, StepOutcome};

/// One progress event.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub run: RunId,
    pub pair: Pair,
    pub commit: CommitId,
    pub event: ProgressEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// Accepted and waiting for the scheduler.
    Queued,
    StepStarted {
        step: String,
    },
    StepFinished {
        step: String,
        outcome: StepOutcome,
        duration_ms: u64,
    },
    Finished {
        status: DeployStatus,
        error: Option<String>,
    },
}
