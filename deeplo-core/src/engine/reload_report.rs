//! What a config reload did, for the caller and, as JSON, for the admin API and logs.

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use super::{SubmitOutcome, Submitted};
use crate::Error;
use crate::config::ConfigDiff;
use crate::dedup::Decision;
use crate::model::Pair;
use crate::pipeline::TeardownOutcome;

/// What [`Engine::apply_config`](super::Engine::apply_config) did.
///
/// As JSON: `adopted`, `baseline_error` (a message or null), `changes` (every pair with its
/// `kind` and changed `fields`), `torn_down`, `never_deployed`, `deploys` (`pair`, `commit`,
/// and `run` when queued or `skipped` with the reason) and `failures` (`action`, `pair`,
/// `error`).
#[derive(Debug)]
pub struct ReloadReport {
    /// No baseline was stored (first start): the config was adopted as it is, and nothing
    /// was torn down or deployed.
    pub adopted: bool,
    /// The stored baseline could not be read (the message says why); the config that was in
    /// force was compared instead.
    pub baseline_error: Option<Error>,
    /// What changed between the baseline and the new config, pair by pair.
    pub diff: ConfigDiff,
    /// Pairs taken off their old host.
    pub torn_down: Vec<TornDown>,
    /// Removed or moved pairs with no deployment record: there was nothing to tear down.
    pub never_deployed: Vec<Pair>,
    /// Deploys submitted; wait on their handles for the records.
    pub deploys: Vec<Submitted>,
    /// What could not be done; everything else was still tried.
    pub failures: Vec<ReloadFailure>,
}

impl ReloadReport {
    pub(super) fn new(diff: ConfigDiff) -> Self {
        Self {
            adopted: false,
            baseline_error: None,
            diff,
            torn_down: Vec::new(),
            never_deployed: Vec::new(),
            deploys: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Whether everything the reload tried worked (the deploys themselves may still fail:
    /// wait on their handles).
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty() && self.baseline_error.is_none()
    }
}

/// A teardown that succeeded.
#[derive(Debug, Clone, Serialize)]
pub struct TornDown {
    /// The pair as the old config had it.
    pub pair: Pair,
    /// The old host entry's address, where the teardown ran.
    pub address: String,
    /// What the teardown found and removed.
    pub outcome: TeardownOutcome,
    /// What compose and the script printed (secrets redacted).
    pub output: String,
}

/// Something a reload could not do; the rest of the reload went on. More kinds may come.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadFailure {
    /// A removed or moved pair could not be torn down on its old host (it is not retried:
    /// the new baseline no longer has it).
    Teardown {
        /// The pair that is left on its old host.
        pair: Pair,
        /// Why (unreachable host, compose failure, cancelled...).
        error: Error,
    },
    /// A new, changed or moved pair could not be submitted (its commit could not be
    /// found, or the scheduler refused it).
    Deploy {
        /// The pair that was not deployed.
        pair: Pair,
        /// Why.
        error: Error,
    },
    /// The new baseline was not saved: the next reload compares with the older one again.
    Baseline {
        /// Why the store refused it.
        error: Error,
    },
}

impl ReloadFailure {
    /// What went wrong.
    pub fn error(&self) -> &Error {
        match self {
            Self::Teardown { error, .. } | Self::Deploy { error, .. } | Self::Baseline { error } => error,
        }
    }

    /// The pair it concerns; `None` for [`ReloadFailure::Baseline`].
    pub fn pair(&self) -> Option<&Pair> {
        match self {
            Self::Teardown { pair, .. } | Self::Deploy { pair, .. } => Some(pair),
            Self::Baseline { .. } => None,
        }
    }

    /// `teardown`, `deploy` or `baseline`.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Teardown { .. } => "teardown",
            Self::Deploy { .. } => "deploy",
            Self::Baseline { .. } => "baseline",
        }
    }
}

impl Serialize for ReloadFailure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ReloadFailure", 3)?;
        st.serialize_field("action", self.action())?;
        st.serialize_field("pair", &self.pair())?;
        st.serialize_field("error", &self.error().to_string())?;
        st.end()
    }
}

struct DeployView<'a>(&'a Submitted);

impl Serialize for DeployView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut st = s.serialize_struct("Deploy", 3)?;
        st.serialize_field("pair", &d.pair)?;
        st.serialize_field("commit", &d.commit)?;
        match &d.outcome {
            SubmitOutcome::Queued(handle) => st.serialize_field("run", &handle.run)?,
            SubmitOutcome::Skipped(decision) => st.serialize_field(
                "skipped",
                match decision {
                    Decision::Deploy => "deploy",
                    Decision::SkipInFlight => "in_flight",
                    Decision::SkipDeployed => "deployed",
                },
            )?,
        }
        st.end()
    }
}

impl Serialize for ReloadReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ReloadReport", 7)?;
        st.serialize_field("adopted", &self.adopted)?;
        st.serialize_field("baseline_error", &self.baseline_error.as_ref().map(ToString::to_string))?;
        st.serialize_field("changes", &self.diff.pairs)?;
        st.serialize_field("torn_down", &self.torn_down)?;
        st.serialize_field("never_deployed", &self.never_deployed)?;
        st.serialize_field("deploys", &self.deploys.iter().map(DeployView).collect::<Vec<_>>())?;
        st.serialize_field("failures", &self.failures)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::config::{ChangeKind, PairDiff, Teardown};

    #[test]
    fn serializes_for_the_admin_api() {
        let pair = Pair::new("site".parse().unwrap(), "web-1".parse().unwrap());
        let teardown = Teardown { down: true, remove_files: true };
        let mut report = ReloadReport::new(ConfigDiff {
            pairs: vec![PairDiff { pair: pair.clone(), kind: ChangeKind::Removed { teardown }, fields: vec![] }],
        });
        report.torn_down.push(TornDown {
            pair: pair.clone(),
            address: "10.0.0.10".into(),
            outcome: TeardownOutcome { compose_dir: Some("/srv/site".into()), by_label: false, files_removed: true },
            output: "Container site-web-1 Removed\n".into(),
        });
        report.failures.push(ReloadFailure::Deploy {
            pair: pair.clone(),
            error: Error::new(ErrorKind::Git, "reload", "cannot fetch").with_project("site"),
        });
        report.failures.push(ReloadFailure::Baseline { error: Error::new(ErrorKind::Io, "save", "disk full") });
        let json = serde_json::to_value(&report).unwrap();
        let pair_json = serde_json::json!({"project": "site", "host": "web-1"});
        assert_eq!(json["adopted"], false);
        assert_eq!(json["baseline_error"], serde_json::Value::Null);
        assert_eq!(json["changes"][0]["kind"], "removed");
        assert_eq!(json["changes"][0]["teardown"]["down"], true);
        assert_eq!(json["torn_down"][0]["pair"], pair_json);
        assert_eq!(json["torn_down"][0]["outcome"]["compose_dir"], "/srv/site");
        assert_eq!(json["failures"][0]["action"], "deploy");
        assert_eq!(json["failures"][0]["pair"], pair_json);
        assert!(json["failures"][0]["error"].as_str().unwrap().contains("cannot fetch"), "{json}");
        assert_eq!(json["failures"][1]["pair"], serde_json::Value::Null);
        assert_eq!(json["deploys"], serde_json::json!([]));
        assert!(!report.is_clean());
    }
}
