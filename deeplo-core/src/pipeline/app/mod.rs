//! Applications: one Dockerfile, built on the server, swapped blue-green behind the
//! host's proxy. The steps are [`Step::APPLICATION`](super::Step::APPLICATION), run by the
//! same [`StepRunner`] as a Compose deploy.
//!
//! The live release never stops before its successor is healthy and routed: the new
//! release's container starts beside it on the `deeplo` network, is probed from inside
//! that network, and only then does the proxy switch to it, in one atomic change; the old
//! one drains, stops, and is kept (with its image) for an instant rollback. A failure
//! before the switch removes the new container and leaves the proxy as it was. The host
//! remembers which release is live in the proxy's route file for the application.

mod caddy;
mod docker;
mod dockerignore;
mod releases;

use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use self::caddy::Route;
use self::releases::Release;
use super::remote::{self, LockFiles};
use super::steps::{Session, Target, checked, connect_in_background};
use super::{RunLog, Step, StepFailure, StepRunner, script};
use crate::config::Application;
use crate::model::CommitId;
use crate::path::{RelPath, remote_join};
use crate::source::{Bundle, BundleRequest, Source};
use crate::transport::{Connector, Discard, Transport};
use crate::{Error, ErrorKind, Result};

/// The names an application goes by on one host.
struct Names {
    /// The application's name on the host (the project name, with the host's prefix).
    app: String,
    proxy: String,
    /// The proxy's directory: its config, route files, certificates and lock.
    proxy_dir: String,
}

impl Names {
    fn new(target: &Target<'_>) -> Self {
        let prefix = target.host.compose_project_prefix.as_deref().unwrap_or("");
        Self {
            app: target.compose_project(),
            proxy: format!("{prefix}deeplo-proxy"),
            proxy_dir: format!("{}/.deeplo-proxy", target.host.deploy_dir.trim_end_matches('/')),
        }
    }
}

/// One release of an application on a host, as [`Engine::observe`](crate::Engine::observe)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseState {
    /// The release's container (`web-0123abcd`).
    pub container: String,
    /// The commit it was built from.
    pub commit: String,
    /// Docker's state word: `running`, `exited`...
    pub state: String,
    /// Whether the proxy routes the application to it.
    pub live: bool,
    /// Its image (`deeplo/web:0123456789ab`).
    pub image: String,
}

/// The releases of the application `project` on `host`, the last started first; changes
/// nothing.
pub(crate) async fn releases_on(
    transport: &dyn Transport,
    host: &crate::config::Host,
    project: &crate::config::Project,
) -> Result<Vec<ReleaseState>> {
    let app = super::project_name(&project.name, host.compose_project_prefix.as_deref());
    let dir = format!("{}/.deeplo-proxy", host.deploy_dir.trim_end_matches('/'));
    let out = checked(transport, &docker::list(&app, &dir), &Discard, "list releases").await?;
    // A leading newline, so that an empty list still has the separator's line.
    let text = format!("\n{}", out.stdout_str());
    let (list, route) = text.split_once("\nroute\n").unwrap_or((&text, ""));
    let live = serde_json::from_str::<Route>(route.trim()).ok().map(|r| r.container);
    let mut releases: Vec<Release> = list.lines().filter_map(Release::parse).collect();
    releases.sort_by_key(|r| std::cmp::Reverse(r.started));
    Ok(releases
        .into_iter()
        .map(|r| ReleaseState {
            live: live.as_deref() == Some(r.container.as_str()),
            container: r.container,
            commit: r.commit,
            state: r.state,
            image: r.image,
        })
        .collect())
}

/// What the precheck found on the host.
struct Found {
    releases: Vec<Release>,
    live: Option<Route>,
}

/// Deploys `commit` of an application. With `reuse`, a kept release of that commit is
/// started again instead of a new build (a rollback); without one, it is built.
pub(crate) async fn deploy_application(
    run: &mut StepRunner<'_>,
    session: &mut Session,
    target: Target<'_>,
    source: &dyn Source,
    connector: &Arc<dyn Connector>,
    commit: &CommitId,
    reuse: bool,
) -> std::result::Result<(), StepFailure> {
    let app = target.project.application.as_ref().ok_or_else(|| StepFailure {
        step: Step::Precheck,
        error: Error::new(ErrorKind::Config, "deploy", "the project is not an application"),
    })?;
    let log = run.log;
    let mut connecting = connect_in_background(session, target, connector, log);
    // A rollback reads the commit only when no release of it was kept.
    let mut bundle = None;
    if !reuse {
        bundle = Some(read_context(run, target, app, source, commit).await?);
    }
    if let Some(task) = connecting.as_mut() {
        let transport = run.run(Step::Connect, async { task.join().await? }).await?;
        session.transport = Some(transport);
    }
    let transport = session.transport().map_err(|error| StepFailure { step: Step::Precheck, error })?;
    let transport = transport.as_ref();

    // One deploy of the application at a time on the host, as for a Compose project.
    let dirs = target.dirs();
    let locks = LockFiles::new(&dirs.live);
    let hold = remote::hold_lock(&dirs, &locks, session.lock_wait.as_secs(), &session.owner);
    let (release, mut held) = tokio::io::duplex(64);
    let (holder_sink, mut holder) = script::channel(log);
    let holding = holder_sink.drive(transport.run_with_input(&hold, &mut held, &holder_sink));
    let names = Names::new(&target);
    let mut release = Some(release);
    let steps = async {
        let found = run
            .run(Step::Precheck, async {
                holder.expect("locked").await.map_err(|e| {
                    Error::new(
                        ErrorKind::Deploy,
                        "lock",
                        format!("cannot take the application's lock on the host: {}", e.message()),
                    )
                })?;
                precheck(transport, &names, target, app, log).await
            })
            .await?;
        let live = found.live.as_ref().map(|r| r.container.clone());
        let kept = if reuse {
            found.releases.iter().find(|r| r.commit == commit.as_str() && Some(&r.container) != live.as_ref()).cloned()
        } else {
            None
        };
        let (container, image) = match &kept {
            Some(kept) => {
                log.line(format!(
                    "release {} of {} is kept: starting it again, no build",
                    kept.container,
                    commit.short()
                ));
                (kept.container.clone(), kept.image.clone())
            }
            None => {
                let bundle = match bundle.take() {
                    Some(b) => b,
                    None => read_context(run, target, app, source, commit).await?,
                };
                let image = format!("{}:{}", releases::image_repo(&names.app), &commit.as_str()[..12]);
                run.run(Step::Stage, async { transport.write_bundle(&dirs.staging, &bundle).await }).await?;
                let built = run
                    .run(Step::Build, async {
                        let dockerfile = remote_join(&dirs.staging, &app.dockerfile);
                        let cmd = docker::build(&docker::Build {
                            tag: &image,
                            context: &dirs.staging,
                            dockerfile: &dockerfile,
                            app: &names.app,
                            commit: commit.as_str(),
                            args: &app.build_args,
                        });
                        let out = transport.run(&cmd, log).await;
                        let _ = transport.run(&remote::remove_dir(&dirs.staging), &Discard).await;
                        let out = out?;
                        if out.status.success() {
                            Ok(())
                        } else {
                            Err(Error::new(
                                ErrorKind::Deploy,
                                "docker build",
                                format!("docker build failed ({}): {}", out.status, out.tail(8)),
                            ))
                        }
                    })
                    .await;
                built?;
                (releases::container_name(&names.app, commit.as_str(), live.as_deref()), image)
            }
        };
        let new = NewRelease { container: &container, kept: kept.is_some() };
        let started = run
            .run(Step::Start, async {
                let out = if new.kept {
                    transport.run(&docker::start_kept(&container), &Discard).await?
                } else {
                    let env: Vec<String> = session.env.iter().map(|(n, _)| n.clone()).collect();
                    let cmd = docker::start(&docker::Start {
                        name: &container,
                        image: &image,
                        app: &names.app,
                        commit: commit.as_str(),
                        run: run_id(log),
                        env: &env,
                    });
                    let exports = remote::env_exports(&session.env);
                    let mut input = exports.as_bytes();
                    transport.run_with_input(&cmd, &mut input, &Discard).await?
                };
                if out.status.success() {
                    log.line(format!("started {container} from {image}"));
                    Ok(())
                } else {
                    Err(Error::new(
                        ErrorKind::Deploy,
                        "start",
                        format!("cannot start {container} ({}): {}", out.status, out.tail(6)),
                    ))
                }
            })
            .await;
        if let Err(failure) = started {
            new.discard(transport, log).await;
            return Err(failure);
        }
        let url = format!("http://{container}:{}{}", app.container_port, app.health_check_path);
        let healthy = run
            .run(Step::Health, async {
                health(transport, &names.proxy, &container, &url, &target.project.health, log).await
            })
            .await;
        if let Err(failure) = healthy {
            new.discard(transport, log).await;
            return Err(failure);
        }
        let route = Route {
            app: names.app.clone(),
            container: container.clone(),
            port: app.container_port,
            commit: commit.as_str().to_owned(),
            listen: app.listen.as_ref().map(ToString::to_string),
            domain: app.domain.clone(),
        };
        let switched = run.run(Step::Switch, switch(transport, &names, &route, log)).await;
        if let Err(failure) = switched {
            new.discard(transport, log).await;
            return Err(failure);
        }
        run.run(Step::Drain, async {
            match live.as_deref().filter(|l| *l != container) {
                None => {
                    log.line("no earlier release to drain");
                    Ok(())
                }
                Some(old) => {
                    log.line(format!("{old} drains for {:?}, then stops", app.drain));
                    tokio::time::sleep(app.drain).await;
                    checked(transport, &docker::stop(old), &Discard, "docker stop").await.map(|_| ())
                }
            }
        })
        .await?;
        run.run(Step::Cleanup, async {
            let mut all = found.releases.clone();
            all.retain(|r| r.container != container);
            all.push(Release {
                container: container.clone(),
                state: "running".into(),
                commit: commit.as_str().to_owned(),
                started: Some(jiff::Timestamp::now()),
                image: image.clone(),
            });
            let gone = releases::beyond(&all, &container, app.keep_releases);
            if gone.is_empty() {
                return Ok(());
            }
            let names: Vec<String> = gone.iter().map(|r| r.container.clone()).collect();
            let mut images: Vec<String> = gone.iter().map(|r| r.image.clone()).collect();
            images.sort();
            images.dedup();
            log.line(format!("keeping {} release(s); removing {}", app.keep_releases, names.join(", ")));
            checked(transport, &docker::remove(&names, &images), log, "remove old releases").await.map(|_| ())
        })
        .await?;
        Ok(())
    };
    let steps = async {
        let result = steps.await;
        drop(release.take());
        result
    };
    let (result, ()) = tokio::join!(steps, holding);
    result
}

/// The release a deploy started, removed again (or, a kept one, stopped) when the deploy
/// fails before its switch.
struct NewRelease<'a> {
    container: &'a str,
    kept: bool,
}

impl NewRelease<'_> {
    async fn discard(&self, transport: &dyn Transport, log: &RunLog) {
        let cmd =
            if self.kept { docker::stop(self.container) } else { docker::remove(&[self.container.to_owned()], &[]) };
        match transport.run(&cmd, &Discard).await {
            Ok(out) if out.status.success() => log.line(format!(
                "{} {}; the live release was never touched",
                self.container,
                if self.kept { "stopped again" } else { "removed" }
            )),
            Ok(out) => log.line(format!("cannot remove {}: {}", self.container, out.tail(3))),
            Err(e) => log.line(format!("cannot remove {}: {e}", self.container)),
        }
    }
}

/// The run id, for the container's `deeplo.deploy` label.
fn run_id(log: &RunLog) -> &str {
    log.id().as_str()
}

/// Fetch and extract: the application's directory at `commit`, less what its
/// `.dockerignore` excludes.
async fn read_context(
    run: &mut StepRunner<'_>,
    target: Target<'_>,
    app: &Application,
    source: &dyn Source,
    commit: &CommitId,
) -> std::result::Result<Bundle, StepFailure> {
    let log = run.log;
    run.run(Step::Fetch, async { source.fetch(target.repo, Some(commit)).await.map(|_| ()) }).await?;
    run.run(Step::Extract, async {
        let request = BundleRequest {
            subdir: &target.project.repo_subdir,
            required: std::slice::from_ref(&app.dockerfile),
            extra: &[RelPath::root()],
        };
        let mut bundle = source.bundle(target.repo, commit, request).await?;
        let ignored = dockerignore::filter(&mut bundle, &app.dockerfile)?;
        log.line(format!(
            "build context: {} file(s), {} bytes from {}{}",
            bundle.entries.len(),
            bundle.size(),
            if target.project.repo_subdir.is_root() { "." } else { target.project.repo_subdir.as_str() },
            if ignored > 0 { format!(" ({ignored} left out by .dockerignore)") } else { String::new() }
        ));
        Ok(bundle)
    })
    .await
}

async fn precheck(
    transport: &dyn Transport,
    names: &Names,
    target: Target<'_>,
    app: &Application,
    log: &RunLog,
) -> Result<Found> {
    let cmd =
        docker::precheck(&names.proxy, &target.host.proxy_image, &names.proxy_dir, &names.app, &caddy::published(app));
    let (sink, mut events) = script::channel(log);
    let script = sink.drive(transport.run(&cmd, &sink));
    let marked = script::alongside(events.expect("precheck"), script).await?;
    if !marked.ok() {
        return Err(Error::new(
            ErrorKind::Deploy,
            "precheck",
            format!("the host is not ready for applications (status {}): {}", marked.status, marked.tail_text()),
        ));
    }
    for how in marked.values_of("proxy") {
        log.line(format!("proxy {}: {how} from {}", names.proxy, target.host.proxy_image));
    }
    let releases: Vec<Release> = marked.values_of("release").iter().filter_map(|l| Release::parse(l)).collect();
    let live = marked.values_of("route").first().and_then(|r| serde_json::from_str::<Route>(r).ok());
    match &live {
        Some(route) => log.line(format!(
            "live release: {} ({}); {} release(s) on the host",
            route.container,
            &route.commit[..route.commit.len().min(8)],
            releases.len()
        )),
        None => log.line("no live release: this is the application's first deploy on this host"),
    }
    Ok(Found { releases, live })
}

/// Probes the new release until it answers 2xx, with the project's health policy. A
/// failure names the last answers.
async fn health(
    transport: &dyn Transport,
    proxy: &str,
    container: &str,
    url: &str,
    policy: &crate::config::HealthPolicy,
    log: &RunLog,
) -> Result<()> {
    let start = Instant::now();
    let mut answers: Vec<String> = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let out = transport.run(&docker::probe(proxy, container, url), &Discard).await?;
        if out.status.success() {
            log.line(format!("GET {url} answered 2xx after {attempt} attempt(s)"));
            return Ok(());
        }
        let answer = out.tail(2).replace('\n', " ");
        if out.status == crate::transport::ExitStatus::Code(127) {
            return Err(Error::new(ErrorKind::Deploy, "health", answer));
        }
        log.line(format!("attempt {attempt}/{}: {answer}", policy.retries));
        if answers.last() != Some(&answer) {
            answers.push(answer);
        }
        let elapsed = start.elapsed();
        if attempt >= policy.retries || elapsed >= policy.timeout {
            let last: Vec<&str> = answers.iter().rev().take(3).rev().map(String::as_str).collect();
            return Err(Error::new(
                ErrorKind::Deploy,
                "health",
                format!(
                    "{container} was not healthy after {attempt} attempt(s) in {:.1}s; the last answers: {}",
                    elapsed.as_secs_f64(),
                    last.join(" | ")
                ),
            ));
        }
        tokio::time::sleep(policy.backoff(attempt).min(policy.timeout.saturating_sub(elapsed))).await;
    }
}

/// The switch: under the proxy's lock, the routes on the host plus this one become the
/// proxy's whole config, loaded in one atomic change.
async fn switch(transport: &dyn Transport, names: &Names, route: &Route, log: &RunLog) -> Result<()> {
    let cmd = docker::switch(&names.proxy_dir, &names.proxy, &names.app);
    let (mut input, mut feed) = tokio::io::duplex(64 * 1024);
    let (sink, mut events) = script::channel(log);
    let script = sink.drive(transport.run_with_input(&cmd, &mut feed, &sink));
    let steps = async {
        let locked = events.expect("locked").await?;
        if !locked.ok() {
            return Err(Error::new(ErrorKind::Deploy, "switch", locked.tail_text()));
        }
        let mut routes: Vec<Route> = Vec::new();
        for line in locked.values_of("route") {
            match serde_json::from_str::<Route>(&line) {
                Ok(r) if r.app != route.app => routes.push(r),
                Ok(_) => {}
                Err(e) => log.line(format!("ignoring a route file the proxy's directory holds: {e}: {line}")),
            }
        }
        routes.push(route.clone());
        let config = caddy::config(&routes);
        let text = format!("{}\n{}\n", serde_json::to_string(route).unwrap_or_default(), config);
        input.write_all(text.as_bytes()).await.map_err(|e| Error::io("switch", &names.proxy_dir, e))?;
        drop(input);
        let marked = events.expect("switch").await?;
        if marked.ok() {
            let at = route.listen.iter().chain(&route.domain).cloned().collect::<Vec<_>>().join(" and ");
            log.line(format!("the proxy sends {at} to {}", route.container));
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Deploy,
                "switch",
                format!("the proxy refused the new config, the old one stays: {}", marked.tail_text()),
            ))
        }
    };
    script::alongside(steps, script).await
}
