//! Table tests of [`diff`]: one case per kind of change.

use super::*;
use crate::config::{EnvMap, parse};
use crate::model::{HostName, ProjectName};

const HOST: &str = "{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}";
const REPO: &str = "{name: app, url: /srv/git/app.git}";
const PROJECT: &str = "name: site, repo: app, repo_subdir: deploy, targets: [web-1]";

/// A config with the given host and repo entries and one project entry (flow-style inner
/// text of the mapping).
fn config_of(hosts: &[&str], repo: &str, projects: &[&str]) -> Config {
    let projects: Vec<String> = projects.iter().map(|p| format!("{{{p}}}")).collect();
    let yaml = format!("hosts: [{}]\nrepos: [{repo}]\nprojects: [{}]\n", hosts.join(", "), projects.join(", "));
    match parse(&yaml, &EnvMap::default()) {
        Ok(loaded) => loaded.config,
        Err(errors) => panic!("invalid test config:\n{yaml}\n{errors}"),
    }
}

fn base() -> Config {
    config_of(&[HOST], REPO, &[PROJECT])
}

fn pair(project: &str, host: &str) -> Pair {
    Pair::new(ProjectName::new(project).unwrap(), HostName::new(host).unwrap())
}

fn site() -> Pair {
    pair("site", "web-1")
}

/// The diff of `base()` against a config with one entry replaced.
fn with_host(host: &str) -> ConfigDiff {
    diff(&base(), &config_of(&[host], REPO, &[PROJECT]))
}

fn with_project(extra: &str) -> ConfigDiff {
    diff(&base(), &config_of(&[HOST], REPO, &[&format!("{PROJECT}, {extra}")]))
}

fn with_repo(repo: &str) -> ConfigDiff {
    diff(&base(), &config_of(&[HOST], repo, &[PROJECT]))
}

const FULL: Teardown = Teardown { down: true, remove_files: true };

#[track_caller]
fn only(d: &ConfigDiff, kind: ChangeKind, fields: &[Field], at: Option<DeployAt>) {
    assert_eq!(d.pairs.len(), 1, "{d:#?}");
    let p = &d.pairs[0];
    assert_eq!(p.pair, site());
    assert_eq!(p.kind, kind, "{d:#?}");
    assert_eq!(p.fields, fields, "{d:#?}");
    assert_eq!(p.deploy_at(), at);
}

#[test]
fn the_same_config_changes_nothing() {
    let d = diff(&base(), &base());
    only(&d, ChangeKind::Unchanged, &[], None);
    assert!(d.is_noop());
}

#[test]
fn watch_paths_alone_redeploys_nothing() {
    let d = with_project("watch_paths: [\"deploy/**\", \"lib/**\"]");
    only(&d, ChangeKind::Unchanged, &[Field::WatchPaths], None);
    assert!(d.is_noop());
}

#[test]
fn gate_and_trigger_settings_redeploy_nothing() {
    let cases: [(&str, &[Field]); 3] = [
        ("health_check: http://127.0.0.1:8080/health", &[Field::HealthCheck]),
        ("health_check: {path: /, port: 80, retries: 3}", &[Field::HealthCheck, Field::Health]),
        ("rollback: off", &[Field::Rollback]),
    ];
    for (extra, fields) in cases {
        only(&with_project(extra), ChangeKind::Unchanged, fields, None);
    }
    let health = |retries: u32| format!("health_check: {{path: /, port: 80, retries: {retries}}}");
    let d = diff(
        &config_of(&[HOST], REPO, &[&format!("{PROJECT}, {}", health(3))]),
        &config_of(&[HOST], REPO, &[&format!("{PROJECT}, {}", health(5))]),
    );
    only(&d, ChangeKind::Unchanged, &[Field::Health], None);
    for repo in [
        "{name: app, url: /srv/git/app.git, trigger_mode: webhook}",
        "{name: app, url: /srv/git/app.git, poll_interval: 5m}",
    ] {
        only(&with_repo(repo), ChangeKind::Unchanged, &[Field::Trigger], None);
    }
}

#[test]
fn deploy_relevant_project_fields_redeploy_in_place_at_the_current_commit() {
    let cases = [
        ("compose_files: [compose.yml, compose.prod.yml]", Field::ComposeFiles),
        ("extra_files: [www]", Field::ExtraFiles),
        ("persist_files: [.env, secrets.env]", Field::PersistFiles),
    ];
    for (extra, field) in cases {
        only(&with_project(extra), ChangeKind::Changed, &[field], Some(DeployAt::Current));
    }
    // The default watch_paths follow repo_subdir, so both change.
    let moved_subdir = config_of(&[HOST], REPO, &[&PROJECT.replace("repo_subdir: deploy", "repo_subdir: ops")]);
    let d = diff(&base(), &moved_subdir);
    only(&d, ChangeKind::Changed, &[Field::RepoSubdir, Field::WatchPaths], Some(DeployAt::Current));
}

#[test]
fn host_user_and_compose_command_redeploy_in_place() {
    let d = with_host("{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps, user: ops}");
    only(&d, ChangeKind::Changed, &[Field::User], Some(DeployAt::Current));
    assert!(d.teardowns().next().is_none(), "a user change is no move");
    let d = with_host("{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps, compose_command: docker-compose}");
    only(&d, ChangeKind::Changed, &[Field::ComposeCommand], Some(DeployAt::Current));
}

#[test]
fn switching_to_the_agent_on_the_same_machine_redeploys_in_place() {
    let d = with_host("{name: web-1, transport: agent, address: 10.0.0.10, deploy_dir: /srv/apps}");
    only(&d, ChangeKind::Changed, &[Field::Transport], Some(DeployAt::Current));
    assert!(d.teardowns().next().is_none(), "the same machine through another transport is no move");
    let d = with_host("{name: web-1, transport: agent, deploy_dir: /srv/apps}");
    only(
        &d,
        ChangeKind::Moved { teardown: FULL },
        &[Field::Address, Field::Port, Field::Transport],
        Some(DeployAt::Current),
    );
    let agent = config_of(&["{name: web-1, transport: agent, deploy_dir: /srv/apps}"], REPO, &[PROJECT]);
    let renamed_port =
        config_of(&["{name: web-1, transport: agent, port: 2200, deploy_dir: /srv/apps}"], REPO, &[PROJECT]);
    assert!(diff(&agent, &renamed_port).is_noop(), "an agent host's port means nothing");
}

#[test]
fn another_machine_moves_the_pair() {
    let d = with_host("{name: web-1, address: 10.0.0.99, deploy_dir: /srv/apps}");
    only(&d, ChangeKind::Moved { teardown: FULL }, &[Field::Address], Some(DeployAt::Current));
    let d = with_host("{name: web-1, address: 10.0.0.10, port: 2222, deploy_dir: /srv/apps}");
    only(&d, ChangeKind::Moved { teardown: FULL }, &[Field::Port], Some(DeployAt::Current));
    assert_eq!(d.teardowns().count(), 1);
    let d = with_host("{name: web-1, address: 10.0.0.99, user: ops, deploy_dir: /srv/apps}");
    only(&d, ChangeKind::Moved { teardown: FULL }, &[Field::Address, Field::User], Some(DeployAt::Current));
}

#[test]
fn an_address_in_another_case_is_the_same_machine() {
    let base = config_of(&["{name: web-1, address: web.example.com, deploy_dir: /srv/apps}"], REPO, &[PROJECT]);
    let new = config_of(&["{name: web-1, address: WEB.example.com, deploy_dir: /srv/apps}"], REPO, &[PROJECT]);
    only(&diff(&base, &new), ChangeKind::Unchanged, &[], None);
}

#[test]
fn a_new_live_directory_moves_the_pair_but_keeps_its_containers_for_the_new_deploy() {
    let kept = Teardown { down: false, remove_files: true };
    only(
        &with_project("deploy_subdir: web"),
        ChangeKind::Moved { teardown: kept },
        &[Field::LiveDir],
        Some(DeployAt::Current),
    );
    let d = with_host("{name: web-1, address: 10.0.0.10, deploy_dir: /opt/apps}");
    only(&d, ChangeKind::Moved { teardown: kept }, &[Field::LiveDir], Some(DeployAt::Current));
}

#[test]
fn the_same_directory_split_differently_is_no_move() {
    let d = diff(
        &config_of(&[HOST], REPO, &[&format!("{PROJECT}, deploy_subdir: a/site")]),
        &config_of(&["{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps/a/}"], REPO, &[PROJECT]),
    );
    only(&d, ChangeKind::Unchanged, &[], None);
}

#[test]
fn a_compose_prefix_change_downs_the_old_project_and_keeps_the_files() {
    let d = with_host("{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps, compose_project_prefix: prod-}");
    let teardown = Teardown { down: true, remove_files: false };
    only(&d, ChangeKind::Moved { teardown }, &[Field::ComposeProject], Some(DeployAt::Current));
    assert_eq!(d.teardowns().map(|(p, t)| (p.pair.clone(), t)).collect::<Vec<_>>(), [(site(), teardown)]);
}

#[test]
fn a_new_source_deploys_the_head_of_the_new_branch() {
    only(
        &with_repo("{name: app, url: /srv/git/other.git}"),
        ChangeKind::Changed,
        &[Field::Source],
        Some(DeployAt::Head),
    );
    only(
        &with_repo("{name: app, url: /srv/git/app.git, branch: prod}"),
        ChangeKind::Changed,
        &[Field::Source],
        Some(DeployAt::Head),
    );
    let d = diff(
        &base(),
        &config_of(
            &["{name: web-1, address: 10.0.0.99, deploy_dir: /srv/apps}"],
            "{name: app, url: /x.git}",
            &[PROJECT],
        ),
    );
    only(&d, ChangeKind::Moved { teardown: FULL }, &[Field::Address, Field::Source], Some(DeployAt::Head));
}

#[test]
fn credentials_and_repo_entry_names_are_not_the_source() {
    let old = config_of(&[HOST], "{name: app, url: \"https://a:t1@git.example.com/app.git\"}", &[PROJECT]);
    let new = config_of(&[HOST], "{name: app, url: \"https://b:t2@git.example.com/app.git\"}", &[PROJECT]);
    only(&diff(&old, &new), ChangeKind::Unchanged, &[], None);
    let renamed =
        config_of(&[HOST], "{name: code, url: /srv/git/app.git}", &[&PROJECT.replace("repo: app", "repo: code")]);
    only(&diff(&base(), &renamed), ChangeKind::Unchanged, &[], None);
}

#[test]
fn a_renamed_project_is_removed_and_added() {
    let new = config_of(&[HOST], REPO, &[&PROJECT.replace("name: site", "name: www")]);
    let d = diff(&base(), &new);
    let want = [
        PairDiff { pair: site(), kind: ChangeKind::Removed { teardown: FULL }, fields: vec![] },
        PairDiff { pair: pair("www", "web-1"), kind: ChangeKind::Added, fields: vec![] },
    ];
    assert_eq!(d.pairs, want);
    assert_eq!(d.teardowns().count(), 1);
    assert_eq!(
        d.deploys().map(|(p, at)| (p.pair.clone(), at)).collect::<Vec<_>>(),
        [(pair("www", "web-1"), DeployAt::Head)]
    );
}

#[test]
fn a_renamed_project_in_the_same_directory_keeps_the_files_for_the_new_one() {
    let old = config_of(&[HOST], REPO, &[&format!("{PROJECT}, deploy_subdir: web")]);
    let new =
        config_of(&[HOST], REPO, &[&format!("{}, deploy_subdir: web", PROJECT.replace("name: site", "name: www"))]);
    let d = diff(&old, &new);
    assert_eq!(
        d.get(&site()).unwrap().kind,
        ChangeKind::Removed { teardown: Teardown { down: true, remove_files: false } }
    );
    assert_eq!(d.get(&pair("www", "web-1")).unwrap().kind, ChangeKind::Added);
}

#[test]
fn a_renamed_host_on_the_same_machine_needs_no_teardown() {
    let new = config_of(
        &["{name: web-a, address: 10.0.0.10, deploy_dir: /srv/apps}"],
        REPO,
        &[&PROJECT.replace("[web-1]", "[web-a]")],
    );
    let d = diff(&base(), &new);
    let removed = d.get(&site()).unwrap();
    assert_eq!(removed.kind, ChangeKind::Removed { teardown: Teardown { down: false, remove_files: false } });
    assert_eq!(removed.teardown(), None);
    assert_eq!(d.get(&pair("site", "web-a")).unwrap().deploy_at(), Some(DeployAt::Head));
}

#[test]
fn removed_targets_and_hosts_are_torn_down_and_new_targets_deployed() {
    let two_hosts = [HOST, "{name: web-2, address: 10.0.0.11, deploy_dir: /srv/apps}"];
    let both = config_of(&two_hosts, REPO, &[&PROJECT.replace("[web-1]", "[web-1, web-2]")]);
    let d = diff(&both, &config_of(&two_hosts, REPO, &[PROJECT]));
    assert_eq!(d.get(&pair("site", "web-2")).unwrap().kind, ChangeKind::Removed { teardown: FULL });
    assert_eq!(d.get(&site()).unwrap().kind, ChangeKind::Unchanged);
    let d = diff(&both, &base());
    assert_eq!(d.get(&pair("site", "web-2")).unwrap().kind, ChangeKind::Removed { teardown: FULL });
    let d = diff(&base(), &both);
    assert_eq!(d.get(&pair("site", "web-2")).unwrap().deploy_at(), Some(DeployAt::Head));
    assert_eq!(d.pairs.iter().map(|p| p.pair.clone()).collect::<Vec<_>>(), [site(), pair("site", "web-2")]);
}

#[test]
fn a_directory_that_a_new_pair_uses_below_is_kept() {
    let old = config_of(&[HOST], REPO, &[&format!("{PROJECT}, deploy_subdir: a")]);
    let new = config_of(
        &[HOST],
        REPO,
        &[&format!("{}, deploy_subdir: a/inner", PROJECT.replace("name: site", "name: other"))],
    );
    let d = diff(&old, &new);
    assert_eq!(
        d.get(&site()).unwrap().kind,
        ChangeKind::Removed { teardown: Teardown { down: true, remove_files: false } }
    );
    assert!(!at_or_under("/srv/a", "/srv/apps") && at_or_under("/srv/apps/x", "/srv/apps/") && at_or_under("/x", "/"));
}

#[test]
fn serializes_each_pair_flat() {
    let d = with_project("deploy_subdir: web");
    let v = serde_json::to_value(&d.pairs[0]).unwrap();
    let want = serde_json::json!({
        "pair": {"project": "site", "host": "web-1"},
        "kind": "moved",
        "teardown": {"down": false, "remove_files": true},
        "fields": ["live_dir"],
    });
    assert_eq!(v, want);
    assert_eq!(serde_json::to_value(&diff(&base(), &base()).pairs[0]).unwrap()["kind"], "unchanged");
}

const APP: &str = "name: site, repo: app, repo_subdir: deploy, targets: [web-1], dockerfile: Dockerfile, \
                   container_port: 8080, listen: ':8080'";

fn app_base() -> Config {
    config_of(&[HOST], REPO, &[APP])
}

fn with_app(extra: &str) -> ConfigDiff {
    diff(&app_base(), &config_of(&[HOST], REPO, &[&format!("{APP}, {extra}")]))
}

#[test]
fn auto_deploy_alone_redeploys_nothing() {
    let d = with_project("auto_deploy: off");
    only(&d, ChangeKind::Unchanged, &[Field::AutoDeploy], None);
    assert!(d.is_noop());
    only(&with_app("auto_deploy: off"), ChangeKind::Unchanged, &[Field::AutoDeploy], None);
}

#[test]
fn application_settings_redeploy_in_place_at_the_current_commit() {
    let cases = [
        ("build_args: {A: b}", Field::BuildArgs),
        ("health_check_path: /up", Field::HealthCheckPath),
        ("domain: app.example.com", Field::Domain),
    ];
    for (extra, field) in cases {
        only(&with_app(extra), ChangeKind::Changed, &[field], Some(DeployAt::Current));
    }
    let changed = |from: &str, to: &str| {
        let c = config_of(&[HOST], REPO, &[&APP.replace(from, to)]);
        diff(&app_base(), &c)
    };
    let cases = [
        ("dockerfile: Dockerfile", "dockerfile: docker/Dockerfile", Field::Dockerfile),
        ("container_port: 8080", "container_port: 3000", Field::ContainerPort),
        ("listen: ':8080'", "listen: '127.0.0.1:8080'", Field::Listen),
    ];
    for (from, to, field) in cases {
        let d = changed(from, to);
        only(&d, ChangeKind::Changed, &[field], Some(DeployAt::Current));
        assert!(d.teardowns().next().is_none(), "{field}");
    }
}

#[test]
fn release_keeping_and_drain_apply_at_the_next_deploy() {
    only(&with_app("keep_releases: 5"), ChangeKind::Unchanged, &[Field::KeepReleases], None);
    only(&with_app("drain: 30s"), ChangeKind::Unchanged, &[Field::Drain], None);
    only(&with_app("health_check: {retries: 3}"), ChangeKind::Unchanged, &[Field::Health], None);
}

#[test]
fn a_new_proxy_image_redeploys_the_applications_of_the_host_only() {
    let host = "{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps, proxy_image: 'caddy:2.8'}";
    let d = diff(&app_base(), &config_of(&[host], REPO, &[APP]));
    only(&d, ChangeKind::Changed, &[Field::ProxyImage], Some(DeployAt::Current));
    assert!(d.teardowns().next().is_none());
    only(&with_host(host), ChangeKind::Unchanged, &[], None);
}

#[test]
fn a_compose_project_that_becomes_an_application_moves_and_stops_its_containers() {
    let kept_files = Teardown { down: true, remove_files: false };
    let d = diff(&base(), &app_base());
    only(
        &d,
        ChangeKind::Moved { teardown: kept_files },
        &[Field::Kind, Field::ComposeFiles, Field::PersistFiles],
        Some(DeployAt::Current),
    );
    let d = diff(&app_base(), &base());
    only(
        &d,
        ChangeKind::Moved { teardown: kept_files },
        &[Field::Kind, Field::ComposeFiles, Field::PersistFiles],
        Some(DeployAt::Current),
    );
    // Another deploy_subdir alone keeps the application's containers for the new deploy.
    let moved = config_of(&[HOST], REPO, &[&format!("{APP}, deploy_subdir: web")]);
    only(
        &diff(&app_base(), &moved),
        ChangeKind::Moved { teardown: Teardown { down: false, remove_files: true } },
        &[Field::LiveDir],
        Some(DeployAt::Current),
    );
}

#[test]
fn new_fields_serialize_in_snake_case() {
    for (field, name) in [
        (Field::Kind, "kind"),
        (Field::HealthCheckPath, "health_check_path"),
        (Field::BuildArgs, "build_args"),
        (Field::ProxyImage, "proxy_image"),
        (Field::KeepReleases, "keep_releases"),
        (Field::AutoDeploy, "auto_deploy"),
    ] {
        assert_eq!(field.as_str(), name);
        assert_eq!(serde_json::to_value(field).unwrap(), name);
    }
}
