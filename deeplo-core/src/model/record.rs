//! The deployment record: one run of the pipeline for one (project, host) pair.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

use super::{CommitId, DeployStatus, HostName, IllegalTransition, ProjectName};

/// A run id: `<unix seconds>-<8 hex digits>`, unique, safe in file names and URLs. Names a
/// [`Deployment`] and its run log in the store and the API.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RunId(String);

/// Why a run id was refused; holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run id {0:?}: expected <unix seconds>-<8 hex digits>")]
pub struct InvalidRunId(
    /// The refused text.
    pub String,
);

impl RunId {
    /// A fresh id for a run created at `now`, with a random suffix.
    pub fn generate(now: Timestamp) -> Self {
        let suffix: u32 = rand::random();
        Self(format!("{}-{suffix:08x}", now.as_second()))
    }

    /// Parses an id, such as one from a URL or a command line.
    ///
    /// # Errors
    ///
    /// [`InvalidRunId`] for anything but decimal seconds, `-` and 8 lowercase hex digits
    /// (a path or a traversal attempt, for instance).
    pub fn parse(s: &str) -> Result<Self, InvalidRunId> {
        let valid = s.split_once('-').is_some_and(|(secs, hex)| {
            !secs.is_empty()
                && secs.len() <= 20
                && secs.bytes().all(|b| b.is_ascii_digit())
                && hex.len() == 8
                && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        });
        if valid { Ok(Self(s.to_owned())) } else { Err(InvalidRunId(s.to_owned())) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}

impl std::str::FromStr for RunId {
    type Err = InvalidRunId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What started a deployment, kept in its [`Deployment::trigger`]. More triggers may be
/// added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A GitHub push webhook.
    Webhook,
    /// The poller saw a new branch head.
    Poll,
    /// A person or script asked (`deeplo deploy`).
    Manual,
    /// `deeplo rollback`.
    Rollback,
    /// The daemon reconciled its config or recovered an interrupted run.
    Reconcile,
}

impl Trigger {
    /// The lowercase name used in records, JSON and logs (`webhook`, `poll`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Poll => "poll",
            Self::Manual => "manual",
            Self::Rollback => "rollback",
            Self::Reconcile => "reconcile",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one pipeline step ended. More outcomes may be added, so a `match` needs a wildcard
/// arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// The step did its work.
    Succeeded,
    /// The step failed (or was cancelled); the run stops here, and its error is recorded.
    Failed,
    /// The step had nothing to do and did not run.
    Skipped,
}

/// One step of a run: its name, when it started, how long it took and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's name as shown in logs and progress (`fetch`, `preflight`, `up`...); the
    /// steps of an automatic rollback are prefixed `rollback:`.
    pub name: String,
    /// When the step began.
    pub started_at: Timestamp,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: StepOutcome,
    /// The error message, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an automatic rollback after a failed deploy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    /// The last good commit the pair was taken back to.
    pub to: CommitId,
    /// Whether the old commit was serving again at the end.
    pub succeeded: bool,
    /// Why the rollback failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A deployment of one commit of one project to one host: the record the store keeps for
/// each run, and what history and the API show. Its [`status`](Self::status) changes only
/// through [`start`](Self::start), [`succeed`](Self::succeed) and [`fail`](Self::fail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The run's unique id.
    pub id: RunId,
    /// The project deployed.
    pub project: ProjectName,
    /// The host deployed to.
    pub host: HostName,
    /// The commit deployed.
    pub commit: CommitId,
    /// The branch the commit was taken from (the repo's configured branch).
    pub branch: String,
    /// Where the run is in its life.
    pub status: DeployStatus,
    /// What started it.
    pub trigger: Trigger,
    /// When the record was created (queued).
    pub created_at: Timestamp,
    /// When it began to run; `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it ended; `None` until it succeeds or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Why it failed, for a failed run; it also says when an automatic rollback failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The steps run so far, in order.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// What the automatic rollback did, when a failure after the swap triggered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackRecord>,
}

impl Deployment {
    /// A new pending deployment created at `now`, with a fresh [`RunId`].
    pub fn new(
        project: ProjectName,
        host: HostName,
        commit: CommitId,
        branch: impl Into<String>,
        trigger: Trigger,
        now: Timestamp,
    ) -> Self {
        Self {
            id: RunId::generate(now),
            project,
            host,
            commit,
            branch: branch.into(),
            status: DeployStatus::Pending,
            trigger,
            created_at: now,
            started_at: None,
            finished_at: None,
            error: None,
            steps: Vec::new(),
            rollback: None,
        }
    }

    /// Pending -> running; sets [`started_at`](Self::started_at).
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] unless the status is pending; the record is left unchanged.
    pub fn start(&mut self, now: Timestamp) -> Result<(), IllegalTransition> {
        self.status = self.status.transition(DeployStatus::Running)?;
        self.started_at = Some(now);
        Ok(())
    }

    /// Running -> succeeded; sets [`finished_at`](Self::finished_at).
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] unless the status is running; the record is left unchanged.
    pub fn succeed(&mut self, now: Timestamp) -> Result<(), IllegalTransition> {
        self.status = self.status.transition(DeployStatus::Succeeded)?;
        self.finished_at = Some(now);
        Ok(())
    }

    /// Pending or running -> failed, with the reason; sets
    /// [`finished_at`](Self::finished_at) and [`error`](Self::error).
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] when the run has already ended; the record is left unchanged.
    pub fn fail(&mut self, now: Timestamp, error: impl Into<String>) -> Result<(), IllegalTransition> {
        self.status = self.status.transition(DeployStatus::Failed)?;
        self.finished_at = Some(now);
        self.error = Some(error.into());
        Ok(())
    }

    /// Whether `self` was created after `other` (the order the latest-record index keeps).
    pub fn is_newer_than(&self, other: &Deployment) -> bool {
        (self.created_at, &self.id) > (other.created_at, &other.id)
    }

    /// How long the run took (from its start, or from its creation if it never started),
    /// once it has ended; `None` before.
    pub fn duration(&self) -> Option<jiff::SignedDuration> {
        Some(self.finished_at?.duration_since(self.started_at.unwrap_or(self.created_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Deployment {
        Deployment::new(
            ProjectName::new("web").unwrap(),
            HostName::new("h1").unwrap(),
            CommitId::new("a".repeat(40)).unwrap(),
            "main",
            Trigger::Manual,
            Timestamp::from_second(1_700_000_000).unwrap(),
        )
    }

    #[test]
    fn run_ids_have_the_documented_shape() {
        let id = RunId::generate(Timestamp::from_second(1_700_000_000).unwrap());
        let (secs, hex) = id.as_str().split_once('-').unwrap();
        assert_eq!(secs, "1700000000");
        assert_eq!(hex.len(), 8);
        assert!(RunId::parse(id.as_str()).is_ok());
        for bad in ["", "1-", "-deadbeef", "1-DEADBEEF", "1-deadbee", "../1-deadbeef", "1-deadbeef/..", "a-deadbeef"] {
            assert!(RunId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifecycle_follows_the_machine() {
        let mut d = sample();
        let now = Timestamp::from_second(1_700_000_010).unwrap();
        assert!(d.succeed(now).is_err(), "pending cannot succeed");
        d.start(now).unwrap();
        d.fail(now, "boom").unwrap();
        assert_eq!(d.status, DeployStatus::Failed);
        assert_eq!(d.error.as_deref(), Some("boom"));
        assert!(d.start(now).is_err(), "failed is final");
    }

    #[test]
    fn json_round_trip() {
        let d = sample();
        let json = serde_json::to_string(&d).unwrap();
        let back: Deployment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(json.contains("\"status\":\"pending\""));
    }
}
