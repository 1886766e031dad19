//! Telling the world about deployments.

use std::fmt;

use async_trait::async_trait;

use crate::Result;
use crate::model::Deployment;

/// What happened to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployEventKind {
    Started,
    Succeeded,
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
    pub kind: DeployEventKind,
    pub deployment: Deployment,
    /// The URL of the repository the commit comes from (reporters find the GitHub repo here).
    pub repo_url: String,
}

/// Receives deployment events.
///
/// # Contract
///
/// A notifier's failure is logged by the engine and never fails, delays past its own
/// timeout or retries a deploy. Events of one deployment arrive in order
/// (`started` first); a notifier may be called concurrently for different deployments.
///
/// # Errors
///
/// Any error is reported in the log with the notifier's [`name`](Notifier::name).
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A short name for logs (`github`, `slack`...).
    fn name(&self) -> &str;

    async fn notify(&self, event: &DeployEvent) -> Result<()>;
}
