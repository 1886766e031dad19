//! The two state machines: a deployment's status and a host's state.
//!
//! Both are pure: a transition function takes the current state and the wanted one and
//! either returns the new state or refuses the move. Nothing else changes a state.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A move between two states that the machine does not allow, from
/// [`DeployStatus::transition`] or [`HostState::transition`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal {machine} transition: {from} -> {to}")]
pub struct IllegalTransition {
    /// Which machine refused: `"deployment status"` or `"host state"`.
    pub machine: &'static str,
    /// The current state's name.
    pub from: String,
    /// The wanted state's name.
    pub to: String,
}

/// Where a deployment is in its life: `pending -> running -> succeeded | failed`, and
/// `pending -> failed` for a run cancelled or refused before it started. More states may be
/// added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployStatus {
    /// Accepted and waiting for a worker.
    Pending,
    /// The pipeline is running.
    Running,
    /// Every step passed; the commit is live. Final.
    Succeeded,
    /// A step failed, or the run was cancelled; see [`Deployment::error`](super::Deployment::error)
    /// and [`Deployment::rollback`](super::Deployment::rollback). Final.
    Failed,
}

impl DeployStatus {
    /// Every status, in lifecycle order (for tables and per-status counts). Its length grows
    /// when a status is added.
    pub const ALL: [DeployStatus; 4] = [Self::Pending, Self::Running, Self::Succeeded, Self::Failed];

    /// Whether the deployment has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }

    /// Whether `self -> to` is allowed. A pending deployment may also fail directly (it was
    /// cancelled or refused before it started).
    pub fn can_become(self, to: DeployStatus) -> bool {
        use DeployStatus::*;
        matches!((self, to), (Pending, Running) | (Pending, Failed) | (Running, Succeeded) | (Running, Failed))
    }

    /// The transition function: `to` when [`can_become`](Self::can_become) allows it.
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] for any other move, such as leaving a final status.
    pub fn transition(self, to: DeployStatus) -> Result<DeployStatus, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { machine: "deployment status", from: self.to_string(), to: to.to_string() })
        }
    }

    /// The lowercase name used in records, JSON and logs (`pending`, `running`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host's state: `provisioning -> active <-> unreachable`, and any state ->
/// `decommissioned`, which is final and takes no deploys. More states may be added, so a
/// `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Known, but not reached yet.
    Provisioning,
    /// The last contact succeeded.
    Active,
    /// The last contact failed; it still accepts deploys, which may reach it again.
    Unreachable,
    /// Retired: takes no deploys ([`accepts_deploys`](Self::accepts_deploys) is false). Final.
    Decommissioned,
}

impl HostState {
    /// Every state, in lifecycle order. Its length grows when a state is added.
    pub const ALL: [HostState; 4] = [Self::Provisioning, Self::Active, Self::Unreachable, Self::Decommissioned];

    /// Whether deploys may be sent to a host in this state.
    pub fn accepts_deploys(self) -> bool {
        !matches!(self, Self::Decommissioned)
    }

    /// Whether `self -> to` is allowed: provisioning to active or unreachable, active and
    /// unreachable to each other, and anything but decommissioned to decommissioned.
    pub fn can_become(self, to: HostState) -> bool {
        use HostState::*;
        match (self, to) {
            (Decommissioned, _) => false,
            (_, Decommissioned) => true,
            (Provisioning, Active) | (Provisioning, Unreachable) => true,
            (Active, Unreachable) | (Unreachable, Active) => true,
            _ => false,
        }
    }

    /// The transition function: `to` when [`can_become`](Self::can_become) allows it.
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] for any other move, such as leaving decommissioned.
    pub fn transition(self, to: HostState) -> Result<HostState, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { machine: "host state", from: self.to_string(), to: to.to_string() })
        }
    }

    /// The lowercase name used in records, JSON and logs (`active`, `unreachable`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Unreachable => "unreachable",
            Self::Decommissioned => "decommissioned",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_status_table() {
        use DeployStatus::*;
        let allowed = [(Pending, Running), (Pending, Failed), (Running, Succeeded), (Running, Failed)];
        for from in DeployStatus::ALL {
            for to in DeployStatus::ALL {
                let want = allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), want, "{from} -> {to}");
            }
        }
        let err = Succeeded.transition(Running).unwrap_err();
        assert_eq!(err.to_string(), "illegal deployment status transition: succeeded -> running");
    }

    #[test]
    fn host_state_table() {
        use HostState::*;
        let allowed = [
            (Provisioning, Active),
            (Provisioning, Unreachable),
            (Active, Unreachable),
            (Unreachable, Active),
            (Provisioning, Decommissioned),
            (Active, Decommissioned),
            (Unreachable, Decommissioned),
        ];
        for from in HostState::ALL {
            for to in HostState::ALL {
                let want = allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), want, "{from} -> {to}");
            }
        }
        assert!(!Decommissioned.accepts_deploys());
        assert!(Unreachable.accepts_deploys());
    }

    #[test]
    fn terminal() {
        assert!(DeployStatus::Failed.is_terminal());
        assert!(!DeployStatus::Running.is_terminal());
    }
}
