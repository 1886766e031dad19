//! What keeps deploys of one project apart on a host, and what a deploy remembers of a host:
//! the project's lock (held by another deploy, a compose command still running, or a person
//! at a shell) and the compose command found on the host's first deploy.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use deeplo_core::engine::SubmitOutcome;
use deeplo_core::known_hosts::HostKeyPolicy;
use deeplo_core::model::{DeployStatus, Deployment, Trigger};
use deeplo_core::schedule::Limits;
use deeplo_core::{DeployRequest, Engine};
use deeplo_testbed::SshdOptions;
use deeplo_testbed::scenario::{Scenario, engine_builder};

async fn deploy(engine: &Engine, project: &str) -> Deployment {
    let request =
        DeployRequest { project: project.into(), host: None, commit: None, trigger: Trigger::Manual, force: true };
    let mut submitted = engine.deploy(request).await.expect("submitted");
    match submitted.remove(0).outcome {
        SubmitOutcome::Queued(h) => h.wait().await.expect("run completed"),
        SubmitOutcome::Skipped(d) => panic!("skipped: {d:?}"),
    }
}

async fn log_of(engine: &Engine, record: &Deployment) -> String {
    String::from_utf8(engine.store().read_log(&record.id).await.unwrap().unwrap_or_default()).unwrap()
}

fn engine_with_lock_wait(s: &Scenario, wait: Duration) -> Engine {
    engine_builder(&s.config_yaml(""), &s.data_dir(), &s.sshd.client_key(), HostKeyPolicy::AcceptNew)
        .unwrap()
        .limits(Limits { lock_wait: wait, ..Limits::default() })
        .build()
        .unwrap()
}

/// `flock FILE sleep SECS` as a person at a shell would run it; returns once it holds.
fn hold(file: &Path, secs: u32) -> Child {
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let child = Command::new("flock").arg(file).arg("sleep").arg(secs.to_string()).process_group(0).spawn().unwrap();
    while Command::new("flock").arg("-n").arg(file).arg("true").status().unwrap().success() {
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn lock_file(s: &Scenario, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", s.live_dir().display()))
}

#[tokio::test]
async fn a_held_project_lock_fails_the_deploy_naming_its_holder_and_touches_nothing() {
    let s = Scenario::new("guard-held").unwrap();
    let engine = engine_with_lock_wait(&s, Duration::from_secs(1));
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    s.repo.commit("v2").unwrap();

    let mut person = hold(&lock_file(&s, ".lock"), 60);
    let refused = deploy(&engine, &s.project).await;
    // Like a person's ^C: the whole group, flock and the sleep that inherited its lock.
    Command::new("kill").arg("--").arg(format!("-{}", person.id())).status().unwrap();
    person.wait().unwrap();
    assert_eq!(refused.status, DeployStatus::Failed);
    assert_eq!(refused.steps.last().unwrap().name, "stage");
    let error = refused.error.as_deref().unwrap();
    assert!(error.contains("cannot take the project's lock on the host"), "{error}");
    let holder = format!("held by pid {} (flock {} sleep 60)", person.id(), lock_file(&s, ".lock").display());
    assert!(error.contains(&holder), "{error}");
    assert!(refused.rollback.is_none());
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));

    let after = deploy(&engine, &s.project).await;
    assert_eq!(after.status, DeployStatus::Succeeded, "{:?}", after.error);
    assert_eq!(s.fetch_site().as_deref(), Some("version 2\n"));
}

#[tokio::test]
async fn a_deploy_waits_for_a_compose_command_still_running_on_the_project() {
    let s = Scenario::new("guard-wait").unwrap();
    let engine = engine_with_lock_wait(&s, Duration::from_secs(120));
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    s.repo.commit("v2").unwrap();

    // What a `compose up` left running by a deployer that died holds: the compose lock,
    // released when it ends.
    let mut leftover = hold(&lock_file(&s, ".compose.lock"), 3);
    let record = deploy(&engine, &s.project).await;
    let log = log_of(&engine, &record).await;
    let _ = leftover.wait();
    assert_eq!(record.status, DeployStatus::Succeeded, "{:?}\n{log}", record.error);
    assert!(log.contains("waiting for a compose command still running on the project"), "{log}");
    let holder = format!("held by pid {} (flock {} sleep 3)", leftover.id(), lock_file(&s, ".compose.lock").display());
    assert!(log.contains(&holder), "{log}");
    assert_eq!(s.fetch_site().as_deref(), Some("version 2\n"));
}

#[tokio::test]
async fn a_remembered_compose_command_that_is_gone_is_found_again() {
    // The host's sessions look for CLI plugins in a directory of the test first, as the
    // docker CLI does with DOCKER_CONFIG: the plugin found there on the first deploy is
    // removed before the second, leaving the machine's own.
    let config = tempfile::tempdir().unwrap();
    let plugins = config.path().join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let system = ["/usr/libexec/docker/cli-plugins/docker-compose", "/usr/lib/docker/cli-plugins/docker-compose"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the Compose v2 plugin (bash .ci/install-deps installs it)");
    std::os::unix::fs::symlink(system, plugins.join("docker-compose")).unwrap();
    let options = SshdOptions {
        set_env: vec![("DOCKER_CONFIG".into(), config.path().display().to_string())],
        ..SshdOptions::default()
    };
    let s = Scenario::new_with("guard-stale", options).unwrap();
    let engine = s.engine(&s.config_yaml("")).unwrap();

    let first = deploy(&engine, &s.project).await;
    let log = log_of(&engine, &first).await;
    assert_eq!(first.status, DeployStatus::Succeeded, "{:?}\n{log}", first.error);
    assert!(log.contains(&format!("compose command: {}", plugins.join("docker-compose").display())), "{log}");

    std::fs::remove_file(plugins.join("docker-compose")).unwrap();
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    s.repo.commit("v2").unwrap();
    let second = deploy(&engine, &s.project).await;
    let log = log_of(&engine, &second).await;
    assert_eq!(second.status, DeployStatus::Succeeded, "{:?}\n{log}", second.error);
    assert!(log.contains("no longer runs on this host; looking for it again"), "{log}");
    assert!(log.contains(&format!("compose command: {system}")), "{log}");
    assert_eq!(s.fetch_site().as_deref(), Some("version 2\n"));

    // The third deploy uses what the second found, without looking.
    s.repo.write("deploy/www/index.html", "version 3\n").unwrap();
    s.repo.commit("v3").unwrap();
    let third = deploy(&engine, &s.project).await;
    let log = log_of(&engine, &third).await;
    assert_eq!(third.status, DeployStatus::Succeeded, "{:?}\n{log}", third.error);
    assert!(!log.contains("compose command:"), "{log}");
}
