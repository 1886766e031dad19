//! The endpoints the notifier calls: deployments, deployment statuses, commit statuses.
//! Request bodies follow GitHub's REST reference (API version 2022-11-28).

use deeplo_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{GithubClient, check_full_name};

/// `POST /repos/{owner}/{repo}/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDeployment {
    /// The commit sha (a branch or tag name would be resolved by GitHub).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The environment the deployment belongs to, as GitHub shows it (`production`,
    /// `prod/web-1/site`); see [`NotifierOptions`](crate::NotifierOptions) for how deeplo names it.
    pub environment: String,
    /// A short line shown with the deployment (deeplo writes the project and host).
    pub description: String,
    /// Always `false`: deeplo deploys the commit it was given, never a merge.
    pub auto_merge: bool,
    /// Always empty: GitHub's status checks do not gate a deploy that already happened.
    pub required_contexts: Vec<String>,
    /// Whether GitHub may treat the environment as short-lived (deeplo's are not).
    pub transient_environment: bool,
    /// Free-form data kept with the deployment (run id, project, host).
    pub payload: serde_json::Value,
}

/// The states deeplo reports on a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// The deploy has started.
    InProgress,
    /// The deploy succeeded and the new commit serves.
    Success,
    /// The deploy failed (and was rolled back when it could be).
    Failure,
    /// The deploy could not be carried out (cancelled, interrupted).
    Error,
}

/// `POST /repos/{owner}/{repo}/deployments/{id}/statuses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDeploymentStatus {
    /// Where the deployment stands.
    pub state: DeploymentState,
    /// At most 140 characters.
    pub description: String,
    /// A link to the run's log (`DEEPLO_PUBLIC_URL/runs/<id>/logs`), when a public URL is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    /// Whether earlier successful deployments to the environment become inactive.
    pub auto_inactive: bool,
}

/// The states of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitState {
    /// The deploy of this commit is under way.
    Pending,
    /// The commit was deployed.
    Success,
    /// The deploy of this commit failed.
    Failure,
    /// The deploy could not be carried out.
    Error,
}

/// `POST /repos/{owner}/{repo}/statuses/{sha}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCommitStatus {
    /// The outcome shown on the commit.
    pub state: CommitState,
    /// Tells this status apart from other checks: `deeplo/<environment>`.
    pub context: String,
    /// A short line shown beside the status (at most 140 characters).
    pub description: String,
    /// Where the status links to: the run's log, when a public URL is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
}

#[derive(Deserialize)]
struct CreatedDeployment {
    id: Option<u64>,
    message: Option<String>,
}

impl GithubClient {
    /// Creates a deployment and returns its id.
    ///
    /// # Errors
    ///
    /// The request fails, or GitHub answers without creating one (202, an auto-merge).
    pub async fn create_deployment(&self, full_name: &str, deployment: &NewDeployment) -> Result<u64> {
        let path = format!("/repos/{full_name}/deployments");
        let created: CreatedDeployment = self.post(full_name, &path, deployment).await?;
        created.id.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "github api",
                format!(
                    "POST {path}: GitHub created no deployment: {}",
                    created.message.unwrap_or_else(|| "no id in the answer".into())
                ),
            )
        })
    }

    /// Adds a status to deployment `deployment_id`.
    ///
    /// # Errors
    ///
    /// The request fails (`NotFound` when the deployment is gone).
    pub async fn create_deployment_status(
        &self,
        full_name: &str,
        deployment_id: u64,
        status: &NewDeploymentStatus,
    ) -> Result<()> {
        let path = format!("/repos/{full_name}/deployments/{deployment_id}/statuses");
        self.post::<serde_json::Value>(full_name, &path, status).await.map(drop)
    }

    /// Sets a commit status on `sha`.
    ///
    /// # Errors
    ///
    /// `sha` is not hexadecimal, or the request fails.
    pub async fn create_commit_status(&self, full_name: &str, sha: &str, status: &NewCommitStatus) -> Result<()> {
        if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(ErrorKind::InvalidInput, "github api", format!("{sha:?} is not a commit sha")));
        }
        let path = format!("/repos/{full_name}/statuses/{sha}");
        self.post::<serde_json::Value>(full_name, &path, status).await.map(drop)
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        full_name: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        check_full_name(full_name)?;
        let body = serde_json::to_value(body)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "github api", format!("POST {path}: {e}")))?;
        let token = self.token_for(full_name).await?;
        self.send_json(Method::POST, path, &token, Some(&body)).await
    }
}
