//! Config reloads end to end: a real sshd as the host, the local Docker engine, real git
//! repositories, and the engine with its real store, git source and SSH transport. Each
//! test checks what ends up on the host (containers, directories, what the site serves).

use std::process::Command;

use deeplo_core::config::{self, ChangeKind, Config, EnvMap, Field, Teardown};
use deeplo_core::engine::{ReloadFailure, ReloadReport, SubmitOutcome};
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::{DeployStatus, Deployment, Pair, Trigger};
use deeplo_core::pipeline::teardown;
use deeplo_core::transport::Discard;
use deeplo_core::{Connector, DeployRequest, Engine};
use deeplo_ssh::{SshConnector, SshOptions};
use deeplo_testbed::scenario::Scenario;
use deeplo_testbed::{docker, run};

fn parse(yaml: &str) -> Config {
    config::parse(yaml, &EnvMap::default()).unwrap_or_else(|e| panic!("invalid config:\n{yaml}\n{e}")).config
}

/// The ids of a compose project's containers on the local engine.
fn containers(project: &str) -> Vec<String> {
    let out = run(Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}")))
    .unwrap();
    out.split_whitespace().map(str::to_owned).collect()
}

async fn deploy(engine: &Engine, project: &str) -> Deployment {
    let request =
        DeployRequest { project: project.into(), host: None, commit: None, trigger: Trigger::Manual, force: true };
    let mut submitted = engine.deploy(request).await.expect("submitted");
    assert_eq!(submitted.len(), 1);
    match submitted.remove(0).outcome {
        SubmitOutcome::Queued(h) => h.wait().await.expect("run completed"),
        SubmitOutcome::Skipped(d) => panic!("skipped: {d:?}"),
    }
}

/// Waits for every deploy of a reload and returns the records.
async fn finish(report: &mut ReloadReport) -> Vec<Deployment> {
    let mut out = Vec::new();
    for s in std::mem::take(&mut report.deploys) {
        match s.outcome {
            SubmitOutcome::Queued(h) => out.push(h.wait().await.expect("run completed")),
            SubmitOutcome::Skipped(d) => panic!("a reload deploy was skipped: {d:?}"),
        }
    }
    out
}

/// Removes a compose project's containers now and when dropped.
struct RemoveOnDrop(&'static str);

impl RemoveOnDrop {
    fn new(project: &'static str) -> Self {
        docker::remove_project(project);
        Self(project)
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        docker::remove_project(self.0);
    }
}

/// An engine on `yaml` that has adopted it (first start).
async fn started(s: &Scenario, yaml: &str) -> Engine {
    let engine = s.engine(yaml).unwrap();
    let report = engine.apply_config(parse(yaml)).await.unwrap();
    assert!(report.adopted && report.deploys.is_empty() && report.torn_down.is_empty(), "{report:?}");
    engine
}

#[tokio::test]
async fn first_start_adopts_and_a_watch_paths_change_deploys_nothing() {
    let s = Scenario::new("e2e-reload-adopt").unwrap();
    let yaml = s.config_yaml("");
    let engine = started(&s, &yaml).await;
    assert!(containers(&s.project).is_empty(), "adopting deployed something");
    assert_eq!(engine.applied_config().await.unwrap(), Some(parse(&yaml)));

    let again = engine.apply_config(parse(&yaml)).await.unwrap();
    assert!(!again.adopted && again.diff.is_noop() && again.deploys.is_empty(), "{again:?}");

    let watched = s.config_yaml("    watch_paths: [\"deploy/**\", \"docs/**\"]\n");
    let report = engine.apply_config(parse(&watched)).await.unwrap();
    assert!(report.deploys.is_empty() && report.torn_down.is_empty() && report.is_clean(), "{report:?}");
    assert_eq!(report.diff.pairs[0].kind, ChangeKind::Unchanged);
    assert_eq!(report.diff.pairs[0].fields, [Field::WatchPaths]);
    assert_eq!(engine.config().projects[0].watch_paths.patterns(), ["deploy/**", "docs/**"]);
}

#[tokio::test]
async fn a_moved_directory_is_torn_down_and_the_current_commit_deployed_in_the_new_one() {
    let s = Scenario::new("e2e-reload-move").unwrap();
    let engine = started(&s, &s.config_yaml("")).await;
    let first = deploy(&engine, &s.project).await;
    assert_eq!(first.status, DeployStatus::Succeeded, "{:?}", first.error);
    std::fs::write(s.live_dir().join(".env"), "KEEP=1\n").unwrap();
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    s.repo.commit("version 2, not deployed").unwrap();

    let moved = s.config_yaml("    deploy_subdir: moved/site\n");
    let mut report = engine.apply_config(parse(&moved)).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    let teardown = Teardown { down: false, remove_files: true };
    assert_eq!(report.diff.pairs[0].kind, ChangeKind::Moved { teardown });
    assert_eq!(report.torn_down.len(), 1, "{report:?}");
    let records = finish(&mut report).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, DeployStatus::Succeeded, "{:?}", records[0].error);
    assert_eq!(records[0].commit, first.commit, "a move redeploys the current commit, not the head");
    assert_eq!(records[0].trigger, Trigger::Reconcile);
    assert!(!s.live_dir().exists(), "the old directory is still there");
    assert!(s.deploy_dir().join("moved/site/compose.yml").exists());
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
    assert_eq!(engine.applied_config().await.unwrap(), Some(parse(&moved)));
}

#[tokio::test]
async fn a_renamed_project_is_torn_down_and_the_new_one_deployed_at_the_head() {
    let s = Scenario::new("e2e-reload-rename").unwrap();
    let renamed_project = "e2e-reload-renamed";
    let _cleanup = RemoveOnDrop::new(renamed_project);
    let engine = started(&s, &s.config_yaml("")).await;
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    assert!(!containers(&s.project).is_empty());
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    let head = s.repo.commit("version 2").unwrap();

    let renamed = s.config_yaml("").replace(&format!("name: {}", s.project), &format!("name: {renamed_project}"));
    let mut report = engine.apply_config(parse(&renamed)).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    let kinds: Vec<(&str, &ChangeKind)> =
        report.diff.pairs.iter().map(|p| (p.pair.project.as_str(), &p.kind)).collect();
    assert_eq!(
        kinds,
        [
            (s.project.as_str(), &ChangeKind::Removed { teardown: Teardown { down: true, remove_files: true } }),
            (renamed_project, &ChangeKind::Added),
        ]
    );
    // The teardown ran before the new project was deployed: both publish the same port.
    let records = finish(&mut report).await;
    assert_eq!(records[0].status, DeployStatus::Succeeded, "{:?}", records[0].error);
    assert_eq!(records[0].commit.as_str(), head, "a new pair deploys the branch head");
    assert!(containers(&s.project).is_empty(), "the old project's containers are still there");
    assert!(!s.live_dir().exists(), "the old project's directory is still there");
    let torn = &report.torn_down[0];
    assert_eq!(torn.pair, Pair::new(s.project.parse().unwrap(), "h1".parse().unwrap()));
    assert_eq!(torn.outcome.compose_dir.as_deref(), Some(s.live_dir().to_str().unwrap()));
}

#[tokio::test]
async fn a_removed_pair_that_never_deployed_is_left_alone_and_a_failed_teardown_is_reported() {
    let s = Scenario::new("e2e-reload-fail").unwrap();
    let engine = started(&s, &s.config_yaml("")).await;
    let none = s.config_yaml("").split("projects:").next().unwrap().to_owned() + "projects: []\n";
    let report = engine.apply_config(parse(&none)).await.unwrap();
    assert!(report.is_clean() && report.torn_down.is_empty(), "{report:?}");
    assert_eq!(report.never_deployed.len(), 1);

    let engine_yaml = s.config_yaml("");
    engine.apply_config(parse(&engine_yaml)).await.unwrap();
    let deployed = deploy(&engine, &s.project).await;
    assert_eq!(deployed.status, DeployStatus::Succeeded, "{:?}", deployed.error);
    // The host becomes unreachable: the teardown fails, the reload goes on.
    let mut stopped = s;
    stopped.sshd.stop();
    let report = engine.apply_config(parse(&none)).await.unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(matches!(&report.failures[0], ReloadFailure::Teardown { .. }), "{report:?}");
    assert!(report.failures[0].error().to_string().contains("h1"), "{}", report.failures[0].error());
    assert_eq!(engine.config().projects.len(), 0, "the new config is in force");
    assert_eq!(engine.applied_config().await.unwrap(), Some(parse(&none)), "the baseline moved on");
}

fn connector(s: &Scenario) -> SshConnector {
    let mut options = SshOptions::new(KnownHosts::new(s.tmp.path().join("kh-teardown"), HostKeyPolicy::AcceptNew));
    options.private_key = Some(s.sshd.client_key());
    options.agent_socket = None;
    SshConnector::new(options).unwrap()
}

#[tokio::test]
async fn teardown_over_ssh_downs_the_project_and_removes_its_directories_and_tolerates_them_gone() {
    let s = Scenario::new("e2e-teardown").unwrap();
    let engine = s.engine(&s.config_yaml("")).unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    assert!(!containers(&s.project).is_empty());
    let staging = s.deploy_dir().join(format!("{}.staging", s.project));
    let old = s.deploy_dir().join(format!("{}.old", s.project));
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&old).unwrap();

    let config = engine.config();
    let (host, project) = (&config.hosts[0], &config.projects[0]);
    let connector = connector(&s);
    let transport = connector.connect(host).await.unwrap();
    let full = Teardown { down: true, remove_files: true };

    let kept = teardown(transport.as_ref(), host, project, Teardown { down: true, remove_files: false }, &Discard)
        .await
        .unwrap();
    assert_eq!(kept.compose_dir.as_deref(), Some(s.live_dir().to_str().unwrap()));
    assert!(!kept.files_removed && !kept.by_label);
    assert!(containers(&s.project).is_empty(), "compose down left containers");
    assert!(s.live_dir().join("compose.yml").exists(), "files were removed although asked to keep them");

    let done = teardown(transport.as_ref(), host, project, full, &Discard).await.unwrap();
    assert!(done.files_removed);
    for dir in [s.live_dir(), staging, old] {
        assert!(!dir.exists(), "{} is still there", dir.display());
    }

    // Everything already gone: no directory to run compose in, containers looked up by label.
    let again = teardown(transport.as_ref(), host, project, full, &Discard).await.unwrap();
    assert!(again.by_label && again.compose_dir.is_none() && again.files_removed, "{again:?}");
    transport.close().await.unwrap();
}

#[tokio::test]
async fn teardown_without_a_directory_removes_containers_by_label() {
    let s = Scenario::new("e2e-teardown-label").unwrap();
    let engine = s.engine(&s.config_yaml("")).unwrap();
    assert_eq!(deploy(&engine, &s.project).await.status, DeployStatus::Succeeded);
    std::fs::remove_dir_all(s.live_dir()).unwrap();
    assert!(!containers(&s.project).is_empty());

    let config = engine.config();
    let transport = connector(&s).connect(&config.hosts[0]).await.unwrap();
    let what = Teardown { down: true, remove_files: true };
    let outcome = teardown(transport.as_ref(), &config.hosts[0], &config.projects[0], what, &Discard).await.unwrap();
    assert!(outcome.by_label, "{outcome:?}");
    assert!(containers(&s.project).is_empty(), "containers survived a teardown without a directory");
}
