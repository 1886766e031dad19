//! The steps themselves, in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::compose::{ComposeCommand, ServiceState, parse_ps, project_name};
use super::remote::{self, DeployScript, LockFiles, RemoteDirs, UpCheck};
use super::{Step, StepFailure, StepRunner, health, script};
use crate::config::{Host, Project, Repo};
use crate::model::CommitId;
use crate::path::remote_join;
use crate::source::{BundleRequest, Source};
use crate::transport::{CommandOutput, Connector, Discard, OutputSink, RemoteCommand, Transport};
use crate::{Error, ErrorKind, Result, Secret};

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
pub(crate) struct Session {
    pub(super) transport: Option<Arc<dyn Transport>>,
    compose: Option<ComposeCommand>,
    /// Whether `compose` came from the engine's memory of the host rather than from a
    /// detection in this session (a remembered one may have gone stale).
    remembered: bool,
    /// How long a deploy waits for the project's lock on the host.
    pub(super) lock_wait: Duration,
    /// Who takes the lock, as the lock file will say (`deeplo run 12-0123abcd`).
    pub(super) owner: String,
    /// The project's environment values, for its compose commands or its containers.
    pub(super) env: Vec<(String, Secret)>,
}

impl Session {
    pub fn new(remembered: Option<ComposeCommand>, lock_wait: Duration, owner: String) -> Self {
        Self {
            transport: None,
            remembered: remembered.is_some(),
            compose: remembered,
            lock_wait,
            owner,
            env: Vec::new(),
        }
    }

    /// The project's environment values, given to its compose commands.
    pub fn with_env(mut self, env: Vec<(String, Secret)>) -> Self {
        self.env = env;
        self
    }

    pub(super) fn transport(&self) -> Result<Arc<dyn Transport>> {
        self.transport.clone().ok_or_else(|| Error::new(ErrorKind::Unreachable, "deploy", "not connected"))
    }

    /// The compose command this session used, to remember for the host's next deploy.
    pub fn compose(&self) -> Option<&ComposeCommand> {
        self.compose.as_ref()
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

/// A task aborted when dropped: the connect that runs while the bundle is read.
pub(super) struct Background<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Background<T> {
    pub(super) async fn join(&mut self) -> Result<T> {
        (&mut self.0).await.map_err(|e| {
            Error::new(ErrorKind::Deploy, "deploy", format!("a background task of the deploy failed: {e}"))
        })
    }
}

/// The connect of a session not yet connected, started in the background so that it runs
/// while git reads the commit.
pub(super) fn connect_in_background(
    session: &Session,
    target: Target<'_>,
    connector: &Arc<dyn Connector>,
    log: &super::RunLog,
) -> Option<Background<Result<Arc<dyn Transport>>>> {
    if session.transport.is_some() {
        return None;
    }
    let (connector, host) = (connector.clone(), target.host.clone());
    log.line(format!("connecting to {}@{}:{}", host.user, host.address, host.port));
    Some(Background(tokio::spawn(async move { connector.connect(&host).await.map(Arc::<dyn Transport>::from) })))
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
    // The connection is opened while git works: it needs nothing from the commit.
    let mut connecting = connect_in_background(session, target, connector, log);

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
    if let Some(task) = connecting.as_mut() {
        let transport = run.run(Step::Connect, async { task.join().await? }).await?;
        session.transport = Some(transport);
    }
    let transport = session.transport().map_err(|error| StepFailure { step: Step::Stage, error })?;
    locked(run, session, target, transport.as_ref(), &bundle).await
}

/// The steps that run under the project's lock on the host: stage to cleanup. The lock is
/// held by a command of its own, polled alongside the steps, whose input closes when they end.
async fn locked(
    run: &mut StepRunner<'_>,
    session: &mut Session,
    target: Target<'_>,
    transport: &dyn Transport,
    bundle: &crate::source::Bundle,
) -> std::result::Result<(), StepFailure> {
    let log = run.log;
    let dirs = target.dirs();
    let locks = LockFiles::new(&dirs.live);
    let hold = remote::hold_lock(&dirs, &locks, session.lock_wait.as_secs(), &session.owner);
    let (release, mut held) = tokio::io::duplex(64);
    let (holder_sink, mut holder) = script::channel(log);
    let holding = holder_sink.drive(transport.run_with_input(&hold, &mut held, &holder_sink));

    // Without a compose command remembered for the host, it is found while the files upload.
    let mut detecting = match session.compose {
        Some(_) => None,
        None => {
            let host = target.host.clone();
            let transport = session.transport().map_err(|error| StepFailure { step: Step::Stage, error })?;
            Some(Background(tokio::spawn(async move { detect_compose(transport.as_ref(), &host).await })))
        }
    };

    let mut release = Some(release);
    let steps = async {
        let result = async {
            // Stage also waits for the compose command being found alongside it; a failure
            // to find one is preflight's, recorded as such.
            let detected = run
                .run(Step::Stage, async {
                    holder.expect("locked").await.map_err(|e| {
                        Error::new(
                            ErrorKind::Deploy,
                            "lock",
                            format!("cannot take the project's lock on the host: {}", e.message()),
                        )
                    })?;
                    transport.write_bundle(&dirs.staging, bundle).await?;
                    match detecting.as_mut() {
                        Some(task) => Ok(Some(task.join().await?)),
                        None => Ok(None),
                    }
                })
                .await?;
            match detected {
                None => {}
                Some(Ok(compose)) => {
                    log.line(format!("compose command: {}", compose.words.join(" ")));
                    session.compose = Some(compose);
                }
                Some(Err(error)) => {
                    let _ = transport.run(&remote::remove_dir(&dirs.staging), &Discard).await;
                    return Err(run.run(Step::Preflight, async { Err::<(), _>(error) }).await.unwrap_err());
                }
            }
            let mut outcome = up_to_up(run, session, target, transport).await;
            if matches!(&outcome, Err(Missing::Compose(_))) {
                let gone = session.compose.take().map(|c| c.words.join(" ")).unwrap_or_default();
                log.line(format!("the compose command `{gone}` no longer runs on this host; looking for it again"));
                session.remembered = false;
                outcome = match detect_compose(transport, target.host).await {
                    Ok(compose) => {
                        log.line(format!("compose command: {}", compose.words.join(" ")));
                        session.compose = Some(compose);
                        up_to_up(run, session, target, transport).await
                    }
                    Err(error) => Err(Missing::Failed(StepFailure { step: Step::Preflight, error })),
                };
            }
            let up = match outcome {
                Ok(up) => up,
                Err(Missing::Failed(failure)) => return Err(failure),
                Err(Missing::Compose(failure)) => {
                    let _ = transport.run(&remote::remove_dir(&dirs.staging), &Discard).await;
                    return Err(failure);
                }
            };
            health_step(run, session, target, transport, up).await?;
            // The holder removes `.old`, then lets the lock go.
            run.run(Step::Cleanup, async {
                let mut input = release
                    .take()
                    .ok_or_else(|| Error::new(ErrorKind::Deploy, "cleanup", "the lock is already released"))?;
                input.write_all(b"cleanup\n").await.map_err(|e| Error::io("cleanup", &dirs.old, e))?;
                drop(input);
                let marked = holder.expect("cleanup").await?;
                if marked.ok() {
                    Ok(())
                } else {
                    Err(script_error("cleanup", "cannot remove the old directory", &marked))
                }
            })
            .await?;
            Ok(())
        }
        .await;
        drop(release.take());
        result
    };
    let (result, ()) = tokio::join!(steps, holding);
    result
}

/// Why the steps up to `up` stopped.
enum Missing {
    /// The compose command did not run: it may be found again.
    Compose(StepFailure),
    Failed(StepFailure),
}

impl From<StepFailure> for Missing {
    fn from(f: StepFailure) -> Self {
        Self::Failed(f)
    }
}

/// What `up` left for the health gate.
enum UpOutcome {
    /// `up --wait` saw every service running (healthy where it has a healthcheck), or
    /// stopped at a one-shot service that completed while the others were up.
    Healthy,
    /// Containers to keep watching: healthchecks still starting after a `--wait` that a
    /// one-shot service ended early, or Compose v1.
    Watch { services: Vec<String>, states: Vec<ServiceState> },
}

/// Persist, preflight, swap and up: one remote script, one step record each.
async fn up_to_up(
    run: &mut StepRunner<'_>,
    session: &Session,
    target: Target<'_>,
    transport: &dyn Transport,
) -> std::result::Result<UpOutcome, Missing> {
    let log = run.log;
    let dirs = target.dirs();
    let locks = LockFiles::new(&dirs.live);
    let compose = session.compose.clone().ok_or_else(|| StepFailure {
        step: Step::Preflight,
        error: Error::new(ErrorKind::Deploy, "preflight", "compose command not detected"),
    })?;
    let project = target.compose_project();
    let files = target.compose_files();
    let persist: Vec<String> = target.project.persist_files.iter().map(|f| f.as_str().to_owned()).collect();
    let cmd = remote::deploy_script(&DeployScript {
        dirs: &dirs,
        locks: &locks,
        lock_wait_secs: session.lock_wait.as_secs(),
        check: up_check(&compose, target),
        persist: &persist,
        compose: compose.words_in_dir(&project, &files),
    });
    let (sink, mut events) = script::channel(log);
    // The values go on the script's standard input, never on a command line.
    let exports = remote::env_exports(&session.env);
    let mut input = exports.as_bytes();
    let script = sink.drive(transport.run_with_input(&cmd, &mut input, &sink));
    let remembered = session.remembered;
    let steps = async {
        if persist.is_empty() {
            events.expect("persist").await.map_err(|error| StepFailure { step: Step::Persist, error })?;
        } else {
            run.run(Step::Persist, async {
                let marked = events.expect("persist").await?;
                if !marked.ok() {
                    return Err(script_error("persist", "cannot copy the persisted files", &marked));
                }
                let kept = marked.values_of("kept");
                log.line(if kept.is_empty() {
                    "no persisted file to keep".to_owned()
                } else {
                    format!("kept {}", kept.join(", "))
                });
                Ok(())
            })
            .await?;
        }
        let mut missing = false;
        let preflight = run
            .run(Step::Preflight, async {
                let marked = events.expect("preflight").await?;
                match marked.status.as_str() {
                    "0" => {
                        let services = marked.values_of("service");
                        log.line(format!("services: {}", services.join(", ")));
                        Ok(services)
                    }
                    "missing" => {
                        missing = true;
                        Err(Error::new(
                            ErrorKind::Deploy,
                            "preflight",
                            format!("the compose command `{}` does not run on this host", compose.words.join(" ")),
                        ))
                    }
                    _ => Err(script_error(
                        "preflight",
                        "compose config failed, nothing was changed on the host",
                        &marked,
                    )),
                }
            })
            .await;
        let services = match preflight {
            Ok(services) => services,
            Err(failure) if remembered && missing => {
                return Err(Missing::Compose(failure));
            }
            Err(failure) => return Err(failure.into()),
        };
        run.run(Step::Swap, async {
            let marked = events.expect("swap").await?;
            if marked.ok() { Ok(()) } else { Err(script_error("swap", "cannot swap the directories", &marked)) }
        })
        .await?;
        let up = run
            .run(Step::Up, async {
                let marked = events.expect("up").await?;
                if compose.is_v1() {
                    if !marked.ok() {
                        return Err(script_error("compose up", "compose up failed", &marked));
                    }
                    let states = ps(transport, &compose, &project, &dirs.live, &files).await?;
                    return Ok(UpOutcome::Watch { services, states });
                }
                let states = parse_ps(&marked.values_of("state").join("\n"))
                    .map_err(|e| Error::new(ErrorKind::Deploy, "compose ps", e))?;
                if marked.ok() {
                    return Ok(UpOutcome::Healthy);
                }
                // `up --wait` also fails when a one-shot service exits 0, which is not a
                // failure: what it left decides, when a completed container explains it.
                let explained = states.iter().any(ServiceState::completed);
                match health::first_look(&services, &states) {
                    _ if !explained => Err(script_error("compose up", "compose up failed", &marked)),
                    Ok(true) => Ok(UpOutcome::Healthy),
                    Ok(false) => Ok(UpOutcome::Watch { services, states }),
                    Err(problem) => {
                        Err(Error::new(ErrorKind::Deploy, "compose up", format!("{problem}: {}", marked.tail_text())))
                    }
                }
            })
            .await?;
        Ok(up)
    };
    script::alongside(steps, script).await
}

/// Compose v2 waits with `up --wait`, bounded by the health timeout; v1 cannot.
fn up_check(compose: &ComposeCommand, target: Target<'_>) -> UpCheck {
    if compose.v2 { UpCheck::Wait(target.project.health.timeout.as_secs()) } else { UpCheck::None }
}

fn script_error(what: &'static str, sentence: &str, marked: &script::Marked) -> Error {
    Error::new(ErrorKind::RemoteCommand, what, format!("{sentence} (status {}): {}", marked.status, marked.tail_text()))
}

/// The health gate after `up`: the HTTP check after a `--wait` that passed; otherwise the
/// containers watched until healthy, as the policy allows.
async fn health_step(
    run: &mut StepRunner<'_>,
    session: &Session,
    target: Target<'_>,
    transport: &dyn Transport,
    up: UpOutcome,
) -> std::result::Result<(), StepFailure> {
    let log = run.log;
    let dirs = target.dirs();
    let project = target.compose_project();
    let files = target.compose_files();
    let policy = target.project.health;
    let url = target.project.health_check.as_ref().map(|h| h.url());
    let compose = session.compose.clone().unwrap_or_else(ComposeCommand::v2);
    run.run(Step::Health, async {
        match up {
            UpOutcome::Healthy => {
                log.line("every service is running (healthy where it has a healthcheck) or has completed (compose up --wait)");
                match url.as_deref() {
                    Some(url) => health::http_gate(transport, url, &policy, log).await,
                    None => Ok(()),
                }
            }
            UpOutcome::Watch { services, states } => {
                let check = || async { ps(transport, &compose, &project, &dirs.live, &files).await };
                health::gate(transport, &services, states, check, url.as_deref(), &policy, compose.is_v1(), log).await
            }
        }
    })
    .await
}

/// Finds the compose command of a host: the configured one (checked), else the Compose v2
/// plugin binary, `docker compose`, `docker-compose`. A missing one is a sentence, not a
/// shell trace.
pub(crate) async fn detect_compose(transport: &dyn Transport, host: &Host) -> Result<ComposeCommand> {
    let cmd = match &host.compose_command {
        Some(words) => remote::check_compose(words),
        None => remote::detect_compose(),
    };
    let out = transport.run(&cmd, &Discard).await?;
    if !out.status.success() {
        return Err(Error::new(ErrorKind::Deploy, "precheck", out.tail(3)));
    }
    let text = out.stdout_str();
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default();
    let words = match &host.compose_command {
        Some(words) => words.clone(),
        None => match lines.next().unwrap_or_default().trim() {
            path if path.starts_with('/') => vec![path.to_owned()],
            other => other.split_whitespace().map(str::to_owned).collect(),
        },
    };
    if words.is_empty() {
        return Err(Error::new(
            ErrorKind::Deploy,
            "precheck",
            format!("cannot read the compose command from {text:?}"),
        ));
    }
    Ok(ComposeCommand::from_version(words, version))
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

/// The first expected service that is not running, as a sentence. A container that exited
/// with status 0 has completed (a one-shot service) and is not a problem.
pub(crate) fn not_running(expected: &[String], states: &[ServiceState]) -> Option<String> {
    for service in expected {
        let containers: Vec<&ServiceState> = states.iter().filter(|s| &s.service == service).collect();
        if containers.is_empty() {
            return Some(format!("service \"{service}\" has no container"));
        }
        if let Some(bad) = containers.iter().find(|s| !s.is_running() && !s.completed()) {
            return Some(format!(
                "service \"{service}\" is {} (expected running): {}",
                if bad.state.is_empty() { "in an unknown state" } else { &bad.state },
                bad.status
            ));
        }
    }
    None
}
