//! Telling the world about deployments.

use std::fmt;

use async_trait::async_trait;

use crate::Result;
use crate::model::Deployment;

/// What happened to a deployment. Serialized (and displayed) in `snake_case`.
///
/// More kinds may come (a notifier that does not know one can ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeployEventKind {
    /// The run started, before its first step; sent once per run, before its other event.
    Started,
    /// Every step passed; the commit runs on the host.
    Succeeded,
    /// The deploy failed and no rollback brought the pair back (none needed, none possible,
    /// or the rollback failed too); the record's `error` says which.
    Failed,
    /// The deploy failed and the pair was taken back to its last good commit.
    RolledBack,
}

impl fmt::Display for DeployEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        })
    }
}

/// One event, with the deployment as it stands when the event is sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployEvent {
    /// What happened.
    pub kind: DeployEventKind,
    /// The record at that moment: `running` for [`DeployEventKind::Started`], final
    /// otherwise (with its steps, error and rollback).
    pub deployment: Deployment,
    /// The URL of the repository the commit comes from (reporters find the GitHub repo here).
    pub repo_url: String,
}

/// Receives deployment events.
///
/// # Contract
///
/// - A notifier's failure is logged by the engine and never fails, delays past its own
///   timeout or retries a deploy. The timeout is the engine's
///   ([`EngineBuilder::notify_timeout`](crate::EngineBuilder::notify_timeout), 30 seconds by
///   default): a slower [`notify`](Notifier::notify) is dropped mid-way, so it must not
///   leave half-done state that a later event depends on.
/// - Each run sends [`Started`](DeployEventKind::Started) and then exactly one final event;
///   a run that cannot start (its project or host left the config) sends none. Events of one deployment arrive in order, and the
///   run waits for the notifiers before it goes on; a notifier may be called concurrently
///   for different deployments, and with other notifiers.
/// - A notifier must not leak secrets it holds (tokens) into its errors: they are logged.
///
/// # Errors
///
/// Any error is reported in the log with the notifier's [`name`](Notifier::name).
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A short name for logs (`github`, `slack`...).
    fn name(&self) -> &str;

    /// Reports one event (to GitHub, a chat, a metrics system...).
    async fn notify(&self, event: &DeployEvent) -> Result<()>;
}
