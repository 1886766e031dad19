//! Table tests of [`plan`] and [`plan_explained`].

use super::*;
use crate::config::{EnvMap, parse};

const YAML: &str = "\
hosts: [{name: web-1, address: a, deploy_dir: /srv}, {name: web-2, address: b, deploy_dir: /srv}]
repos: [{name: app, url: /srv/git/app.git}, {name: other, url: /srv/git/other.git}]
projects:
  - {name: site, repo: app, repo_subdir: site, targets: [web-1, web-2]}
  - {name: api, repo: app, repo_subdir: api, targets: [web-1], dockerfile: Dockerfile, container_port: 8080, listen: ':8080'}
  - {name: admin, repo: app, repo_subdir: admin, targets: [web-2], auto_deploy: off}
  - {name: docs, repo: other, repo_subdir: ., targets: [web-1]}
";

fn config() -> Config {
    parse(YAML, &EnvMap::default()).unwrap().config
}

fn commit() -> CommitId {
    CommitId::new("a".repeat(40)).unwrap()
}

fn push(repo: &str, branch: &str, changed: ChangedPaths) -> PushEvent {
    PushEvent { repo: RepoName::new(repo).unwrap(), branch: branch.into(), before: None, after: commit(), changed }
}

fn known(paths: &[&str]) -> ChangedPaths {
    ChangedPaths::Known(paths.iter().map(|p| (*p).to_owned()).collect())
}

/// The jobs as `project@host`, and the skipped projects as `project: reason`.
fn shown(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let jobs = plan.jobs.iter().map(|j| format!("{}@{}", j.project, j.host)).collect();
    let skipped = plan.skipped.iter().map(|s| format!("{}: {}", s.project, s.reason.as_str())).collect();
    (jobs, skipped)
}

#[test]
fn plans_the_projects_whose_watched_paths_changed_and_explains_the_others() {
    let c = config();
    let cases: [(ChangedPaths, &[&str], &[&str]); 4] = [
        (ChangedPaths::Unknown, &["site@web-1", "site@web-2", "api@web-1"], &["admin: auto_deploy_off"]),
        (
            known(&["site/compose.yml", "README.md"]),
            &["site@web-1", "site@web-2"],
            &["api: no_watched_path_changed", "admin: auto_deploy_off"],
        ),
        (
            known(&["api/src/main.rs", "admin/compose.yml"]),
            &["api@web-1"],
            &["site: no_watched_path_changed", "admin: auto_deploy_off"],
        ),
        (known(&[]), &[], &["site: nothing_changed", "api: nothing_changed", "admin: auto_deploy_off"]),
    ];
    for (changed, jobs, skipped) in cases {
        let push = push("app", "main", changed);
        let explained = plan_explained(&c, &push);
        assert_eq!(
            shown(&explained),
            (jobs.iter().map(|s| s.to_string()).collect(), skipped.iter().map(|s| s.to_string()).collect()),
            "{push:?}"
        );
        assert_eq!(plan(&c, &push), explained.jobs, "plan is the jobs of plan_explained");
        assert!(explained.jobs.iter().all(|j| j.commit == commit()));
    }
}

#[test]
fn auto_deploy_off_is_never_planned_by_a_push() {
    let c = config();
    for changed in [ChangedPaths::Unknown, known(&["admin/compose.yml"])] {
        let jobs = plan(&c, &push("app", "main", changed));
        assert!(jobs.iter().all(|j| j.project != "admin"), "{jobs:?}");
    }
}

#[test]
fn other_branches_and_unknown_repos() {
    let c = config();
    let (jobs, skipped) = shown(&plan_explained(&c, &push("app", "dev", ChangedPaths::Unknown)));
    assert!(jobs.is_empty());
    assert_eq!(skipped, ["site: other_branch", "api: other_branch", "admin: auto_deploy_off"]);
    assert_eq!(plan_explained(&c, &push("nope", "main", ChangedPaths::Unknown)), Plan::default());
    let (jobs, skipped) = shown(&plan_explained(&c, &push("other", "main", known(&["x"]))));
    assert_eq!((jobs, skipped), (vec!["docs@web-1".to_owned()], vec![]));
}

#[test]
fn reasons_read_as_sentences_and_serialize_in_snake_case() {
    assert_eq!(SkipReason::AutoDeployOff.to_string(), "auto_deploy is off: only `deeplo deploy` deploys it");
    let skipped = Skipped { project: ProjectName::new("admin").unwrap(), reason: SkipReason::NoWatchedPathChanged };
    let v = serde_json::to_value(&skipped).unwrap();
    assert_eq!(v, serde_json::json!({"project": "admin", "reason": "no_watched_path_changed"}));
    for reason in [
        SkipReason::AutoDeployOff,
        SkipReason::OtherBranch,
        SkipReason::NothingChanged,
        SkipReason::NoWatchedPathChanged,
    ] {
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
    }
}
