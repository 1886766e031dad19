//! [`GithubNotifier`]: deployments and commit statuses on GitHub for each deploy.
//!
//! On `started` a Deployment is created for the commit (environment
//! `[prefix/][host/]project`), given an `in_progress` status, and the commit gets a
//! `pending` status with context `deeplo/<environment>`. The final event (`succeeded`,
//! `failed`, `rolled_back`) adds a `success` or `failure` deployment status and sets the
//! commit status to match; a rollback is a failure whose description says so. Both link
//! to the run log when `DEEPLO_PUBLIC_URL` is set.
//!
//! Repositories that are not on the GitHub host are skipped. Every call is made even when
//! an earlier one failed (a commit status is useful without a deployment); the first
//! failure is returned for the engine to log.

mod describe;
mod runs;

use async_trait::async_trait;
use deeplo_core::model::Deployment;
use deeplo_core::{DeployEvent, DeployEventKind, Notifier, Result};

pub use describe::{MAX_DESCRIPTION, cut_description, environment_name, log_url, status_description};
pub use runs::CAPACITY as REMEMBERED_RUNS;

use crate::client::{CommitState, DeploymentState, GithubClient, NewCommitStatus, NewDeployment, NewDeploymentStatus};
use crate::github_full_name;

/// How reports are named and linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierOptions {
    /// `DEEPLO_GITHUB_ENVIRONMENT`: the prefix of environment names.
    pub environment_prefix: Option<String>,
    /// `DEEPLO_GITHUB_ENVIRONMENT_HOST`: one environment per (host, project) pair.
    pub environment_host: bool,
    /// `DEEPLO_PUBLIC_URL`: the base of run log links.
    pub public_url: Option<String>,
    /// The host whose repositories are reported (`github.com`, or a GitHub Enterprise host).
    pub github_host: String,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        Self { environment_prefix: None, environment_host: false, public_url: None, github_host: "github.com".into() }
    }
}

/// Reports deployments to GitHub.
#[derive(Debug)]
pub struct GithubNotifier {
    client: GithubClient,
    options: NotifierOptions,
    runs: runs::Runs,
}

impl GithubNotifier {
    /// A notifier that reports through `client`, naming environments and links by `options`.
    pub fn new(client: GithubClient, options: NotifierOptions) -> Self {
        Self { client, options, runs: runs::Runs::default() }
    }

    /// The client it reports with (the daemon also fetches private repositories with its
    /// tokens).
    pub fn client(&self) -> &GithubClient {
        &self.client
    }

    /// The environment a deployment is reported under.
    pub fn environment(&self, deployment: &Deployment) -> String {
        environment_name(self.options.environment_prefix.as_deref(), self.options.environment_host, deployment)
    }

    async fn create_deployment(&self, full_name: &str, d: &Deployment, environment: &str) -> Result<u64> {
        let new = NewDeployment {
            git_ref: d.commit.to_string(),
            environment: environment.to_owned(),
            description: describe::deployment_description(d),
            auto_merge: false,
            required_contexts: Vec::new(),
            transient_environment: false,
            payload: serde_json::json!({
                "deeplo": {"run": d.id, "project": d.project, "host": d.host, "trigger": d.trigger}
            }),
        };
        self.client.create_deployment(full_name, &new).await
    }
}

#[async_trait]
impl Notifier for GithubNotifier {
    fn name(&self) -> &str {
        "github"
    }

    async fn notify(&self, event: &DeployEvent) -> Result<()> {
        let d = &event.deployment;
        let Some(full_name) = github_full_name(&event.repo_url, &self.options.github_host) else {
            tracing::debug!(run = %d.id, url = event.repo_url, "not a GitHub repository; nothing reported");
            return Ok(());
        };
        let environment = self.environment(d);
        let log_url = log_url(self.options.public_url.as_deref(), &d.id);
        let description = status_description(event);
        let (deployment_state, commit_state) = match event.kind {
            DeployEventKind::Started => (DeploymentState::InProgress, CommitState::Pending),
            DeployEventKind::Succeeded => (DeploymentState::Success, CommitState::Success),
            DeployEventKind::Failed | DeployEventKind::RolledBack => (DeploymentState::Failure, CommitState::Failure),
            _ => {
                tracing::debug!(run = %d.id, kind = %event.kind, "an event GitHub has no state for; nothing reported");
                return Ok(());
            }
        };

        let known = match event.kind {
            DeployEventKind::Started => None,
            _ => self.runs.take(&d.id),
        };
        let deployment = match known {
            Some(id) => Ok(id),
            None => self.create_deployment(&full_name, d, &environment).await,
        };
        let deployment_result = match deployment {
            Ok(id) => {
                if event.kind == DeployEventKind::Started {
                    self.runs.insert(d.id.clone(), id);
                }
                let status = NewDeploymentStatus {
                    state: deployment_state,
                    description: description.clone(),
                    log_url: log_url.clone(),
                    auto_inactive: true,
                };
                self.client.create_deployment_status(&full_name, id, &status).await
            }
            Err(err) => Err(err),
        };
        let commit_status = NewCommitStatus {
            state: commit_state,
            context: format!("deeplo/{environment}"),
            description,
            target_url: log_url,
        };
        let commit_result = self.client.create_commit_status(&full_name, d.commit.as_str(), &commit_status).await;
        deployment_result.and(commit_result).map_err(|e| e.with_project(&d.project).with_host(&d.host))
    }
}
