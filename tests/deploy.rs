//! End-to-end deploys: a real sshd as the host, the local Docker engine with Compose v2,
//! real git repositories, and the engine with its real store, git source and SSH transport.
//! The scenarios marked [`both`] run once over SSH and once through the real
//! `deeplo-agent` binary connected to an agent hub.

use deeplo_core::engine::{SubmitOutcome, Submitted};
use deeplo_core::model::{DeployStatus, Deployment, Trigger};
use deeplo_core::{DeployRequest, Engine, HistoryQuery};
use deeplo_testbed::scenario::{Scenario, Via, compose_file, snapshot};

/// Runs the scenario `$name(via)` as two tests, `$name::ssh` and `$name::agent`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use deeplo_testbed::scenario::Via;

            #[tokio::test]
            async fn ssh() {
                super::$name(Via::Ssh).await;
            }

            #[tokio::test]
            async fn agent() {
                super::$name(Via::Agent).await;
            }
        }
    };
}

both!(first_deploy_then_a_change);
both!(a_broken_compose_file_stops_at_preflight_and_touches_nothing);
both!(a_service_that_exits_at_once_is_rolled_back);
both!(env_file_is_kept_and_wiped_with_an_empty_persist_list);

fn request(project: &str) -> DeployRequest {
    DeployRequest { project: project.into(), host: None, commit: None, trigger: Trigger::Manual, force: true }
}

async fn finish(submitted: Vec<Submitted>) -> Vec<Deployment> {
    let mut out = Vec::new();
    for s in submitted {
        match s.outcome {
            SubmitOutcome::Queued(h) => out.push(h.wait().await.expect("run completed")),
            SubmitOutcome::Skipped(d) => panic!("skipped: {d:?}"),
        }
    }
    out
}

async fn deploy(engine: &Engine, project: &str) -> Deployment {
    let mut records = finish(engine.deploy(request(project)).await.expect("submitted")).await;
    assert_eq!(records.len(), 1);
    records.remove(0)
}

async fn log_of(engine: &Engine, record: &Deployment) -> String {
    String::from_utf8(engine.store().read_log(&record.id).await.unwrap().unwrap_or_default()).unwrap()
}

async fn first_deploy_then_a_change(via: Via) {
    let s = Scenario::new(&format!("e2e-first-{}", via.name())).unwrap();
    let engine = s.engine_via(via, &s.config_yaml_via(via, "")).await.unwrap();

    let first = deploy(&engine, &s.project).await;
    assert_eq!(first.status, DeployStatus::Succeeded, "{:?}\n{}", first.error, log_of(&engine, &first).await);
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
    let steps: Vec<&str> = first.steps.iter().map(|st| st.name.as_str()).collect();
    assert_eq!(
        steps,
        ["fetch", "extract", "connect", "stage", "persist", "preflight", "swap", "up", "health", "cleanup"]
    );
    let log = log_of(&engine, &first).await;
    assert!(log.starts_with(&format!("Run:      {}\n", first.id)), "{log}");
    assert!(log.contains("Deploy succeeded in"), "{log}");
    assert!(
        !s.live_dir().with_extension("old").exists() && !s.deploy_dir().join(format!("{}.staging", s.project)).exists()
    );

    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    let v2 = s.repo.commit("version 2").unwrap();
    let second = deploy(&engine, &s.project).await;
    assert_eq!(second.status, DeployStatus::Succeeded, "{:?}", second.error);
    assert_eq!(second.commit.as_str(), v2);
    assert_eq!(s.fetch_site().as_deref(), Some("version 2\n"), "bind-mounted files of the new commit are served");

    let state = engine.store().latest_all().await.unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].id, second.id);
    let history = engine.store().history(&HistoryQuery::default()).await.unwrap();
    assert_eq!(history.iter().map(|d| &d.id).collect::<Vec<_>>(), [&second.id, &first.id]);
}

async fn a_broken_compose_file_stops_at_preflight_and_touches_nothing(via: Via) {
    let s = Scenario::new(&format!("e2e-preflight-{}", via.name())).unwrap();
    let engine = s.engine_via(via, &s.config_yaml_via(via, "")).await.unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    std::fs::write(s.live_dir().join(".env"), "KEEP=1\n").unwrap();
    let before = snapshot(&s.live_dir());

    s.repo
        .write(
            "deploy/compose.yml",
            "services:\n  web:\n    image: x\n    ports: [\"not a port spec\"]\n    bogus_key: 1\n",
        )
        .unwrap();
    s.repo.write("deploy/www/index.html", "broken\n").unwrap();
    s.repo.commit("broken").unwrap();
    let broken = deploy(&engine, &s.project).await;
    assert_eq!(broken.status, DeployStatus::Failed);
    assert_eq!(broken.steps.last().unwrap().name, "preflight");
    assert!(broken.error.as_deref().unwrap().contains("preflight"), "{:?}", broken.error);
    assert!(broken.rollback.is_none(), "nothing to roll back: the host was not touched");
    assert_eq!(snapshot(&s.live_dir()), before, "the live directory changed");
    assert!(!s.deploy_dir().join(format!("{}.staging", s.project)).exists(), "staging was left behind");
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
}

async fn rolls_back(project: &str, bad_service: &str, via: Via) {
    let s = Scenario::new(project).unwrap();
    let health = "    health_check: {path: /, port: PORT, retries: 4, interval: 1s, timeout: 30s}\n"
        .replace("PORT", &s.web_port.to_string());
    let engine = s.engine_via(via, &s.config_yaml_via(via, &health)).await.unwrap();
    let good = deploy(&engine, &s.project).await;
    assert_eq!(good.status, DeployStatus::Succeeded, "{:?}", good.error);

    s.repo.write("deploy/compose.yml", compose_file(s.web_port, bad_service)).unwrap();
    s.repo.write("deploy/www/index.html", "bad version\n").unwrap();
    s.repo.commit("bad").unwrap();
    let bad = deploy(&engine, &s.project).await;
    let log = log_of(&engine, &bad).await;
    assert_eq!(bad.status, DeployStatus::Failed, "{log}");
    let rollback = bad.rollback.as_ref().unwrap_or_else(|| panic!("no rollback: {:?}\n{log}", bad.error));
    assert_eq!(rollback.to, good.commit);
    assert!(rollback.succeeded, "{:?}\n{log}", rollback.error);
    assert!(
        bad.error.as_deref().unwrap().contains(&format!("rolled back to {}", good.commit.short())),
        "{:?}",
        bad.error
    );
    assert!(bad.steps.iter().any(|st| st.name == "rollback:health"), "{:?}", bad.steps);
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"), "the previous version is not serving again");
    let last_good = engine
        .store()
        .last_success(&deeplo_core::model::Pair::new(good.project.clone(), good.host.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last_good.id, good.id);
}

async fn a_service_that_exits_at_once_is_rolled_back(via: Via) {
    rolls_back(
        &format!("e2e-exits-{}", via.name()),
        "  crash:\n    image: deeplo-testbed-busybox\n    command: [\"sh\", \"-c\", \"exit 1\"]\n",
        via,
    )
    .await;
}

#[tokio::test]
async fn a_failing_healthcheck_is_rolled_back() {
    rolls_back(
        "e2e-unhealthy",
        "    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      timeout: 1s\n      retries: 1\n",
        Via::Ssh,
    )
    .await;
}

#[tokio::test]
async fn a_one_shot_service_that_exits_0_is_not_a_failure() {
    let s = Scenario::new("e2e-oneshot").unwrap();
    s.repo
        .write(
            "deploy/compose.yml",
            compose_file(s.web_port, "  migrate:\n    image: deeplo-testbed-busybox\n    command: [\"true\"]\n"),
        )
        .unwrap();
    s.repo.commit("a one-shot service").unwrap();
    let engine = s.engine(&s.config_yaml("")).unwrap();
    let record = deploy(&engine, &s.project).await;
    let log = log_of(&engine, &record).await;
    assert_eq!(record.status, DeployStatus::Succeeded, "{:?}\n{log}", record.error);
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
}

#[tokio::test]
async fn without_a_good_commit_the_failure_says_so() {
    let s = Scenario::new("e2e-nogood").unwrap();
    s.repo
        .write(
            "deploy/compose.yml",
            compose_file(s.web_port, "  crash:\n    image: deeplo-testbed-busybox\n    command: [\"false\"]\n"),
        )
        .unwrap();
    s.repo.commit("bad from the start").unwrap();
    let engine = s.engine(&s.config_yaml("")).unwrap();
    let bad = deploy(&engine, &s.project).await;
    assert_eq!(bad.status, DeployStatus::Failed);
    assert!(bad.rollback.is_none());
    assert!(bad.error.as_deref().unwrap().contains("no earlier successful deploy"), "{:?}", bad.error);
}

async fn env_file_is_kept_and_wiped_with_an_empty_persist_list(via: Via) {
    let s = Scenario::new(&format!("e2e-persist-{}", via.name())).unwrap();
    let engine = s.engine_via(via, &s.config_yaml_via(via, "")).await.unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    std::fs::write(s.live_dir().join(".env"), "SECRET=kept\n").unwrap();
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    s.repo.commit("v2").unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    assert_eq!(std::fs::read_to_string(s.live_dir().join(".env")).unwrap(), "SECRET=kept\n");
    drop(engine);

    let engine = s.engine_via(via, &s.config_yaml_via(via, "    persist_files: []\n")).await.unwrap();
    s.repo.write("deploy/www/index.html", "version 3\n").unwrap();
    s.repo.commit("v3").unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    assert!(!s.live_dir().join(".env").exists(), ".env survived persist_files: []");
}

#[tokio::test]
async fn one_host_down_does_not_stop_the_other() {
    let s = Scenario::new("e2e-twohosts").unwrap();
    let down_port = deeplo_testbed::free_port().unwrap();
    let yaml = s.config_yaml("").replace("targets: [h1]", "targets: [h1, down]").replace(
        "repos:",
        &format!(
            "  - name: down\n    address: 127.0.0.1\n    port: {down_port}\n    deploy_dir: /tmp/deeplo-down\nrepos:"
        ),
    );
    let engine = s.engine(&yaml).unwrap();
    let records = finish(engine.deploy(request(&s.project)).await.unwrap()).await;
    let up = records.iter().find(|r| r.host == "h1").unwrap();
    let down = records.iter().find(|r| r.host == "down").unwrap();
    assert_eq!(up.status, DeployStatus::Succeeded, "{:?}", up.error);
    assert_eq!(down.status, DeployStatus::Failed);
    assert_eq!(down.steps.last().unwrap().name, "connect");
    assert!(down.error.as_deref().unwrap().contains("down"), "{:?}", down.error);
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
    assert_eq!(engine.host_states().get(&down.host).copied(), Some(deeplo_core::model::HostState::Unreachable));
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let mut s = Scenario::new("e2e-hostkey").unwrap();
    let engine = s.engine(&s.config_yaml("")).unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    let port = s.sshd.port();
    let client_pub = std::fs::read_to_string(format!("{}.pub", s.sshd.client_key().display())).unwrap();
    let key_copy = s.tmp.path().join("client_key");
    std::fs::copy(s.sshd.client_key(), &key_copy).unwrap();
    s.sshd.stop();
    let imposter = deeplo_testbed::Sshd::start_with(deeplo_testbed::SshdOptions {
        port: Some(port),
        authorized_keys: vec![client_pub],
        ..Default::default()
    })
    .unwrap();
    let _ = imposter;
    // The engine keeps its connector (and its key); the host now answers with another key.
    let refused = deploy(&engine, &s.project).await;
    assert_eq!(refused.status, DeployStatus::Failed);
    assert_eq!(refused.steps.last().unwrap().name, "connect");
    assert!(refused.error.as_deref().unwrap().contains("known_hosts"), "{:?}", refused.error);
}

#[tokio::test]
async fn shell_metacharacters_in_names_run_nothing() {
    let marker = std::path::Path::new("/tmp/deeplo-metachar-marker");
    let _ = std::fs::remove_file(marker);
    let s = Scenario::new("e2e-meta").unwrap();

    // Names are refused at config load, saying which characters are allowed.
    let bad = s.config_yaml("").replace("name: e2e-meta", "name: \"$(touch /tmp/deeplo-metachar-marker)\"");
    let err = deeplo_core::config::parse(&bad, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("letters, digits"), "{err}");

    // File names, a branch name and a deploy directory with metacharacters are data.
    let odd_file = "conf/$(touch /tmp/deeplo-metachar-marker) it's \"quoted\".txt";
    s.repo.write(&format!("deploy/{odd_file}"), "odd\n").unwrap();
    s.repo.git(&["checkout", "-q", "-b", "feat/$(touch$IFS/tmp/deeplo-metachar-marker)"]).unwrap();
    s.repo.commit("odd names").unwrap();
    let yaml = s
        .config_yaml("    extra_files: [www, conf]\n")
        .replace("    extra_files: [www]\n", "")
        .replace("branch: main", "branch: \"feat/$(touch$IFS/tmp/deeplo-metachar-marker)\"")
        .replace(
            &format!("deploy_dir: {}", s.deploy_dir().display()),
            &format!("deploy_dir: \"{}/dir with space $(touch x)\"", s.tmp.path().display()),
        );
    let engine = s.engine(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let record = deploy(&engine, &s.project).await;
    assert_eq!(record.status, DeployStatus::Succeeded, "{:?}\n{}", record.error, log_of(&engine, &record).await);
    let live = s.tmp.path().join("dir with space $(touch x)").join(&s.project);
    assert_eq!(std::fs::read_to_string(live.join(odd_file)).unwrap(), "odd\n");
    assert!(!marker.exists(), "a metacharacter ran a command");
}
