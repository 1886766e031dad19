//! The steps themselves, in order.

use std::sync::Arc;

use super::compose::{ComposeCommand, ServiceState, parse_ps, project_name};
use super::remote::{self, RemoteDirs};
use super::{Step, StepFailure, StepRunner, health};
use crate::config::{Host, Project, Repo};
use crate::model::CommitId;
use crate::path::remote_join;
use crate::source::{BundleRequest, Source};
use crate::transport::{CommandOutput, Connector, Discard, OutputSink, RemoteCommand, Transport};
use crate::{Error, ErrorKind, Result};

/// What is being deployed where.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub project: &'a Project,
    pub host: &'a Host,
    pub repo: &'a Repo,
}

impl Target<'_> {
    pub fn dirs(&self) -> RemoteDirs {
        RemoteDirs::new(remote_join(&self.host.deploy_dir, &self.project.deploy_subdir))
    }

    pub fn compose_project(&self) -> String {
        project_name(&self.project.name, self.host.compose_project_prefix.as_deref())
    }

    fn compose_files(&self) -> Vec<String> {
        self.project.compose_files.iter().map(|f| f.as_str().to_owned()).collect()
    }
}

/// The connection and what was learned about the host, kept across a deploy and its rollback.
#[derive(Default)]
pub(crate) struct Session {
    transport: Option<Box<dyn Transport>>,
    compose: Option<ComposeCommand>,
}

impl Session {
    fn transport(&self) -> Result<&dyn Transport> {
        self.transport.as_deref().ok_or_else(|| Error::new(ErrorKind::Unreachable, "deploy", "not connected"))
    }

    fn compose(&self) -> Result<&ComposeCommand> {
        self.compose.as_ref().ok_or_else(|| Error::new(ErrorKind::Deploy, "deploy", "compose command not detected"))
    }

    pub async fn close(&mut self) {
        if let Some(t) = self.transport.take() {
            let _ = t.close().await;
        }
    }
}

/// Runs a command and turns a non-zero exit into an error carrying its output's tail.
pub(crate) async fn checked(
    transport: &dyn Transport,
    cmd: &RemoteCommand,
    sink: &dyn OutputSink,
    what: &'static str,
) -> Result<CommandOutput> {
    let out = transport.run(cmd, sink).await?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::new(ErrorKind::RemoteCommand, what, format!("{} ({}): {}", what, out.status, out.tail(12))))
    }
}

/// Deploys `commit` through every step. Used for a deploy and, with another commit and a
/// `rollback:` prefix, for the rollback after it.
pub(crate) async fn deploy_commit(
    run: &mut StepRunner<'_>,
    session: &mut Session,
    target: Target<'_>,
    source: &dyn Source,
    connector: &Arc<dyn Connector>,
    commit: &CommitId,
) -> std::result::Result<(), StepFailure> {
    let log = run.log;
    let dirs = target.dirs();
    let project = target.compose_project();
    let files = target.compose_files();

    run.run(Step::Fetch, async { source.fetch(target.repo, Some(commit)).await.map(|_| ()) }).await?;

    let bundle = run
        .run(Step::Extract, async {
            let request = BundleRequest {
                subdir: &target.project.repo_subdir,
                required: &target.project.compose_files,
                extra: &target.project.extra_files,
            };
            let bundle = source.bundle(target.repo, commit, request).await?;
            log.line(format!(
                "{} file(s), {} bytes from {}",
                bundle.entries.len(),
                bundle.size(),
                target.project.repo_subdir
            ));
            Ok(bundle)
        })
        .await?;

    if session.transport.is_none() {
        let host = target.host;
        let transport = run
            .run(Step::Connect, async {
                log.line(format!("connecting to {}@{}:{}", host.user, host.address, host.port));
                connector.connect(host).await
            })
            .await?;
        session.transport = Some(transport);
    }

    if session.compose.is_none() {
        let transport = session.transport().map_err(|error| StepFailure { step: Step::Precheck, error })?;
        let compose = run
            .run(Step::Precheck, async {
                let compose = detect_compose(transport, target.host).await?;
                log.line(format!("compose command: {}", compose.words.join(" ")));
                Ok(compose)
            })
            .await?;
        session.compose = Some(compose);
    }
    let transport = session.transport().map_err(|error| StepFailure { step: Step::Stage, error })?;
    let compose = session.compose().map_err(|error| StepFailure { step: Step::Stage, error })?.clone();

    run.run(Step::Stage, async {
        let out = checked(transport, &remote::prepare_staging(&dirs), log, "prepare staging directory").await?;
        if out.stdout_str().contains("repaired") {
            log.line(format!("repaired {}: restored it from {} left by an interrupted deploy", dirs.live, dirs.old));
        }
        transport.write_bundle(&dirs.staging, &bundle).await
    })
    .await?;

    let persist: Vec<String> = target.project.persist_files.iter().map(|f| f.as_str().to_owned()).collect();
    if !persist.is_empty() {
        run.run(Step::Persist, async {
            let out = checked(transport, &remote::persist(&dirs, &persist), &Discard, "copy persisted files").await?;
            let kept: Vec<String> = out.stdout_str().lines().map(str::to_owned).collect();
            log.line(if kept.is_empty() {
                "no persisted file to keep".to_owned()
            } else {
                format!("kept {}", kept.join(", "))
            });
            Ok(())
        })
        .await?;
    }

    let services = run
        .run(Step::Preflight, async {
            let cmd = compose.command(&project, &dirs.staging, &files, &["config", "--services"]);
            let out = transport.run(&cmd, &Discard).await?;
            if !out.status.success() {
                let _ = transport.run(&remote::remove_dir(&dirs.staging), &Discard).await;
                return Err(Error::new(
                    ErrorKind::Deploy,
                    "preflight",
                    format!("compose config failed, nothing was changed on the host: {}", out.tail(12)),
                ));
            }
            let services: Vec<String> =
                out.stdout_str().lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect();
            log.line(format!("services: {}", services.join(", ")));
            Ok(services)
        })
        .await?;

    run.run(Step::Swap, async { checked(transport, &remote::swap(&dirs), log, "swap directories").await.map(|_| ()) })
        .await?;

    run.run(Step::Up, async {
        let cmd = compose.command(
            &project,
            &dirs.live,
            &files,
            &["up", "--detach", "--remove-orphans", "--quiet-pull", "--build", "--force-recreate"],
        );
        checked(transport, &cmd, log, "compose up").await.map(|_| ())
    })
    .await?;

    let states = run
        .run(Step::Verify, async {
            let states = ps(transport, &compose, &project, &dirs.live, &files).await?;
            match not_running(&services, &states) {
                None => Ok(states),
                Some(problem) => Err(Error::new(ErrorKind::Deploy, "verify", problem)),
            }
        })
        .await?;

    let policy = target.project.health;
    let url = target.project.health_check.as_ref().map(|h| h.url());
    run.run(Step::Health, async {
        let check = || async { ps(transport, &compose, &project, &dirs.live, &files).await };
        // Verify's look, taken a moment ago, is the gate's first one: one `compose ps` less.
        health::gate(transport, &services, states, check, url.as_deref(), &policy, log).await
    })
    .await?;

    run.run(Step::Cleanup, async {
        checked(transport, &remote::remove_dir(&dirs.old), log, "remove old directory").await.map(|_| ())
    })
    .await?;
    Ok(())
}

/// Finds the compose command of a host: the configured one (checked), else `docker
/// compose`, else `docker-compose`. A missing one is a sentence, not a shell trace.
pub(crate) async fn detect_compose(transport: &dyn Transport, host: &Host) -> Result<ComposeCommand> {
    let cmd = match &host.compose_command {
        Some(words) => remote::check_compose(words),
        None => remote::detect_compose(),
    };
    let out = transport.run(&cmd, &Discard).await?;
    if !out.status.success() {
        return Err(Error::new(ErrorKind::Deploy, "precheck", out.tail(3)));
    }
    Ok(ComposeCommand { words: out.stdout_str().split_whitespace().map(str::to_owned).collect() })
}

/// The project's containers.
pub(crate) async fn ps(
    transport: &dyn Transport,
    compose: &ComposeCommand,
    project: &str,
    dir: &str,
    files: &[String],
) -> Result<Vec<ServiceState>> {
    let cmd = if compose.is_v1() {
        remote::docker_ps(project)
    } else {
        compose.command(project, dir, files, &["ps", "--all", "--format", "json"])
    };
    let out = checked(transport, &cmd, &Discard, "compose ps").await?;
    parse_ps(&out.stdout_str()).map_err(|e| Error::new(ErrorKind::Deploy, "compose ps", e))
}

/// The first expected service that is not running, as a sentence.
pub(crate) fn not_running(expected: &[String], states: &[ServiceState]) -> Option<String> {
    for service in expected {
        let containers: Vec<&ServiceState> = states.iter().filter(|s| &s.service == service).collect();
        if containers.is_empty() {
            return Some(format!("service \"{service}\" has no container"));
        }
        if let Some(bad) = containers.iter().find(|s| !s.is_running()) {
            return Some(format!(
                "service \"{service}\" is {} (expected running): {}",
                if bad.state.is_empty() { "in an unknown state" } else { &bad.state },
                bad.status
            ));
        }
    }
    None
}
