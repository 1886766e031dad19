//! Roles and the actions they allow: `(role, action) -> allowed` as one pure function.
//!
//! The four roles are ordered, each allowing what the one below allows and more:
//!
//! | action | viewer | developer | manager | admin |
//! |---|---|---|---|---|
//! | list and read servers, projects, deployments, run logs, env names | Y | Y | Y | Y |
//! | deploy, rollback, cancel a deploy | | Y | Y | Y |
//! | runner tokens, decommission a server, env set/unset, auto-deploy on/off, refresh, probe | | | Y | Y |
//! | users and memberships, org settings, the org's audit log | | | | Y |
//!
//! So an action is allowed when the caller's role in the organization is at least the
//! action's [`minimum`](Action::minimum). Everything a route does is one [`Action`]: the API
//! asks [`allowed`] before it does it, and the audit log names it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in an organization, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything of the organization, changes nothing.
    Viewer,
    /// Deploys, rolls back and cancels.
    Developer,
    /// Runs the organization's servers and projects: runner tokens, env, auto-deploy.
    Manager,
    /// Everything, members and settings included.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Developer, Role::Manager, Role::Admin];

    /// The role's name as written in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected viewer, developer, manager or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Everything a caller can do to an organization's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See the organization itself (its name, the caller's role).
    ReadOrg,
    /// List and read servers and their states.
    ReadServers,
    /// List and read projects.
    ReadProjects,
    /// List and read deployment records.
    ReadDeployments,
    /// Read a run log.
    ReadLogs,
    /// List the names of a project's environment values (never the values).
    ReadEnvNames,
    /// Start a deploy.
    Deploy,
    /// Roll a pair back.
    Rollback,
    /// Cancel a queued or running deploy.
    Cancel,
    /// Issue or revoke a server's runner token.
    ManageRunnerTokens,
    /// Decommission a server.
    Decommission,
    /// Set or unset environment values.
    ManageEnv,
    /// Turn a project's auto-deploy on or off.
    SetAutoDeploy,
    /// Refresh (poll now) a repository.
    Refresh,
    /// Probe a server.
    Probe,
    /// List the organization's members.
    ReadMembers,
    /// Add, remove or change the role of a member.
    ManageMembers,
    /// Change the organization's settings.
    ManageOrg,
    /// Read the organization's audit log.
    ReadAudit,
}

impl Action {
    /// Every action, in the order of the table above.
    pub const ALL: [Action; 19] = [
        Action::ReadOrg,
        Action::ReadServers,
        Action::ReadProjects,
        Action::ReadDeployments,
        Action::ReadLogs,
        Action::ReadEnvNames,
        Action::Deploy,
        Action::Rollback,
        Action::Cancel,
        Action::ManageRunnerTokens,
        Action::Decommission,
        Action::ManageEnv,
        Action::SetAutoDeploy,
        Action::Refresh,
        Action::Probe,
        Action::ReadMembers,
        Action::ManageMembers,
        Action::ManageOrg,
        Action::ReadAudit,
    ];

    /// The lowest role allowed to do it.
    pub fn minimum(self) -> Role {
        match self {
            Action::ReadOrg
            | Action::ReadServers
            | Action::ReadProjects
            | Action::ReadDeployments
            | Action::ReadLogs
            | Action::ReadEnvNames => Role::Viewer,
            Action::Deploy | Action::Rollback | Action::Cancel => Role::Developer,
            Action::ManageRunnerTokens
            | Action::Decommission
            | Action::ManageEnv
            | Action::SetAutoDeploy
            | Action::Refresh
            | Action::Probe => Role::Manager,
            Action::ReadMembers | Action::ManageMembers | Action::ManageOrg | Action::ReadAudit => Role::Admin,
        }
    }

    /// Whether doing it changes something (and so goes to the audit log).
    pub fn mutates(self) -> bool {
        !matches!(
            self,
            Action::ReadOrg
                | Action::ReadServers
                | Action::ReadProjects
                | Action::ReadDeployments
                | Action::ReadLogs
                | Action::ReadEnvNames
                | Action::ReadMembers
                | Action::ReadAudit
        )
    }

    /// The action's name as written in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadOrg => "read_org",
            Action::ReadServers => "read_servers",
            Action::ReadProjects => "read_projects",
            Action::ReadDeployments => "read_deployments",
            Action::ReadLogs => "read_logs",
            Action::ReadEnvNames => "read_env_names",
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::Cancel => "cancel",
            Action::ManageRunnerTokens => "manage_runner_tokens",
            Action::Decommission => "decommission",
            Action::ManageEnv => "manage_env",
            Action::SetAutoDeploy => "set_auto_deploy",
            Action::Refresh => "refresh",
            Action::Probe => "probe",
            Action::ReadMembers => "read_members",
            Action::ManageMembers => "manage_members",
            Action::ManageOrg => "manage_org",
            Action::ReadAudit => "read_audit",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `role` may do `action`.
pub fn allowed(role: Role, action: Action) -> bool {
    role >= action.minimum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out: a change to [`Action::minimum`] that is not made here too
    /// fails.
    #[test]
    fn the_full_table() {
        use Action::*;
        // (action, viewer, developer, manager, admin)
        let table: [(Action, [bool; 4]); 19] = [
            (ReadOrg, [true, true, true, true]),
            (ReadServers, [true, true, true, true]),
            (ReadProjects, [true, true, true, true]),
            (ReadDeployments, [true, true, true, true]),
            (ReadLogs, [true, true, true, true]),
            (ReadEnvNames, [true, true, true, true]),
            (Deploy, [false, true, true, true]),
            (Rollback, [false, true, true, true]),
            (Cancel, [false, true, true, true]),
            (ManageRunnerTokens, [false, false, true, true]),
            (Decommission, [false, false, true, true]),
            (ManageEnv, [false, false, true, true]),
            (SetAutoDeploy, [false, false, true, true]),
            (Refresh, [false, false, true, true]),
            (Probe, [false, false, true, true]),
            (ReadMembers, [false, false, false, true]),
            (ManageMembers, [false, false, false, true]),
            (ManageOrg, [false, false, false, true]),
            (ReadAudit, [false, false, false, true]),
        ];
        assert_eq!(table.map(|(a, _)| a), Action::ALL, "every action has a row, in order");
        for (action, row) in table {
            for (role, want) in Role::ALL.into_iter().zip(row) {
                assert_eq!(allowed(role, action), want, "{role} {action}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), serde_json::json!(role.as_str()));
        }
        for action in Action::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), serde_json::json!(action.as_str()));
        }
        assert_eq!(
            "owner".parse::<Role>().unwrap_err().to_string(),
            "unknown role \"owner\": expected viewer, developer, manager or admin"
        );
    }

    #[test]
    fn reads_do_not_mutate() {
        for action in Action::ALL {
            assert_eq!(
                action.mutates(),
                action.minimum() > Role::Viewer && action != Action::ReadMembers && action != Action::ReadAudit,
                "{action}"
            );
        }
    }
}
