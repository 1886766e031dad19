//! Dedup: whether a planned job is already done or under way. Pure: no I/O.

use crate::model::{DeployStatus, Deployment};
use crate::plan::Job;

/// What to do with a planned job; [`SubmitOutcome::Skipped`](crate::engine::SubmitOutcome::Skipped)
/// carries the skips. More reasons to skip may come.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Run it: no record of this commit is queued, running or succeeded for the pair.
    Deploy,
    /// The pair's latest record is this commit and it is queued or running.
    SkipInFlight,
    /// The pair's latest record is this commit and it succeeded.
    SkipDeployed,
}

impl Decision {
    /// Whether the job should run ([`Decision::Deploy`]).
    pub fn is_deploy(&self) -> bool {
        matches!(self, Self::Deploy)
    }
}

/// Decides from the pair's latest record. A failed record never causes a skip (the next
/// attempt may work), a record of another commit never does, and `force` bypasses all.
///
/// A `pending` record counts as in flight like a `running` one: it is queued to run the
/// same commit, so a second run would deploy it twice.
pub fn decide(job: &Job, latest: Option<&Deployment>, force: bool) -> Decision {
    if force {
        return Decision::Deploy;
    }
    let Some(latest) = latest else {
        return Decision::Deploy;
    };
    if latest.commit != job.commit || latest.project != job.project || latest.host != job.host {
        return Decision::Deploy;
    }
    match latest.status {
        DeployStatus::Pending | DeployStatus::Running => Decision::SkipInFlight,
        DeployStatus::Succeeded => Decision::SkipDeployed,
        DeployStatus::Failed => Decision::Deploy,
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::model::{CommitId, HostName, ProjectName, Trigger};

    fn commit(c: char) -> CommitId {
        CommitId::new(c.to_string().repeat(40)).unwrap()
    }

    fn job(c: char) -> Job {
        Job { project: ProjectName::new("web").unwrap(), host: HostName::new("h1").unwrap(), commit: commit(c) }
    }

    fn record(c: char, status: DeployStatus) -> Deployment {
        let mut d = Deployment::new(
            ProjectName::new("web").unwrap(),
            HostName::new("h1").unwrap(),
            commit(c),
            "main",
            Trigger::Poll,
            Timestamp::UNIX_EPOCH,
        );
        d.status = status;
        d
    }

    #[test]
    fn table() {
        use Decision::*;
        use DeployStatus::*;
        let cases = [
            // (latest record, force, want)
            (None, false, Deploy),
            (Some(record('a', Running)), false, SkipInFlight),
            (Some(record('a', Pending)), false, SkipInFlight),
            (Some(record('a', Succeeded)), false, SkipDeployed),
            (Some(record('a', Failed)), false, Deploy),
            (Some(record('b', Succeeded)), false, Deploy),
            (Some(record('b', Running)), false, Deploy),
            (Some(record('a', Succeeded)), true, Deploy),
            (Some(record('a', Running)), true, Deploy),
        ];
        for (latest, force, want) in cases {
            assert_eq!(decide(&job('a'), latest.as_ref(), force), want, "{latest:?} force={force}");
        }
    }

    #[test]
    fn a_record_of_another_pair_never_skips() {
        let mut other = record('a', Succeeded);
        other.host = HostName::new("h2").unwrap();
        assert_eq!(decide(&job('a'), Some(&other), false), Decision::Deploy);
    }

    use DeployStatus::*;
}
