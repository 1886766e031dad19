//! `projects[]` and `health_check`.

use std::time::Duration;

use super::*;
use crate::path::RelPath;

/// A document with two hosts and one repo around `project`.
fn with(project: &str) -> String {
    doc(&[HOST, "{name: web-2, address: 10.0.0.11, deploy_dir: /srv/apps}"], &[REPO], &[project])
}

/// A valid project with `extra` keys added.
fn project(extra: &str) -> String {
    with(&format!("{{name: site, repo: app, repo_subdir: deploy, targets: [web-1]{extra}}}"))
}

fn loaded(extra: &str) -> Project {
    ok(&project(extra)).config.projects.remove(0)
}

fn rels(paths: &[RelPath]) -> Vec<&str> {
    paths.iter().map(RelPath::as_str).collect()
}

#[test]
fn defaults() {
    let p = loaded("");
    assert_eq!((p.name.as_str(), p.repo.as_str(), p.repo_subdir.as_str()), ("site", "app", "deploy"));
    assert_eq!(p.targets, ["web-1"]);
    assert_eq!(rels(&p.compose_files), ["compose.yml"]);
    assert_eq!(p.watch_paths.patterns(), ["deploy/**"]);
    assert!(p.extra_files.is_empty());
    assert_eq!(rels(&p.persist_files), [".env"]);
    assert_eq!(p.deploy_subdir.as_str(), "site");
    assert_eq!(p.health_check, None);
    assert_eq!(p.health, HealthPolicy::default());
    assert!(p.rollback);
}

#[test]
fn explicit_values() {
    let p = ok(&with(
        "{name: site, repo: app, repo_subdir: deploy, targets: [web-2, web-1], compose_files: [compose.yml, ./prod.yml], watch_paths: ['deploy/**', 'lib/*.rs'], \
         extra_files: [config/, scripts/run.sh], persist_files: [.env, data/state.json], deploy_subdir: apps/site/}",
    ))
    .config
    .projects
    .remove(0);
    assert_eq!(p.targets, ["web-2", "web-1"]);
    assert_eq!(rels(&p.compose_files), ["compose.yml", "prod.yml"]);
    assert_eq!(p.watch_paths.patterns(), ["deploy/**", "lib/*.rs"]);
    assert_eq!(rels(&p.extra_files), ["config", "scripts/run.sh"]);
    assert_eq!(rels(&p.persist_files), [".env", "data/state.json"]);
    assert_eq!(p.deploy_subdir.as_str(), "apps/site");
}

#[test]
fn empty_and_null_lists() {
    // compose_files: empty means the default, as in the Go tool.
    assert_eq!(rels(&loaded(", compose_files: []").compose_files), ["compose.yml"]);
    // persist_files: absent or null means [.env]; an explicit [] keeps nothing.
    assert_eq!(rels(&loaded(", persist_files: null").persist_files), [".env"]);
    assert!(loaded(", persist_files: []").persist_files.is_empty());
    // watch_paths: an explicit [] matches every push.
    let p = loaded(", watch_paths: []");
    assert!(p.watch_paths.is_empty() && p.watch_paths.matches("anything/at/all"));
}

#[test]
fn repo_subdir_is_normalised_and_drives_the_watch_default() {
    let cases = [
        ("deploy", "deploy", vec!["deploy/**"]),
        ("./deploy/", "deploy", vec!["deploy/**"]),
        ("apps//web/.", "apps/web", vec!["apps/web/**"]),
        (".", "", vec![]),
        ("./", "", vec![]),
    ];
    for (written, subdir, watch) in cases {
        let p = ok(&with(&format!("{{name: s, repo: app, repo_subdir: '{written}', targets: [web-1]}}")))
            .config
            .projects
            .remove(0);
        assert_eq!(p.repo_subdir.as_str(), subdir, "{written}");
        assert_eq!(p.watch_paths.patterns(), watch.as_slice(), "{written}");
        assert!(p.watch_paths.matches(format!("{subdir}/compose.yml").trim_start_matches('/')), "{written}");
    }
    let p = loaded(", watch_paths: null");
    assert!(p.watch_paths.matches("deploy/x") && !p.watch_paths.matches("other/x"));
}

#[test]
fn the_default_watch_path_matches_the_directory_literally() {
    let p = ok(&with("{name: s, repo: app, repo_subdir: 'apps/[x]', targets: [web-1]}")).config.projects.remove(0);
    assert!(p.watch_paths.matches("apps/[x]/compose.yml"));
    assert!(!p.watch_paths.matches("apps/x/compose.yml"));
}

#[test]
fn rollback_accepts_booleans_and_on_off() {
    for (written, want) in
        [("true", true), ("false", false), ("on", true), ("off", false), ("'on'", true), ("OFF", false), ("null", true)]
    {
        assert_eq!(loaded(&format!(", rollback: {written}")).rollback, want, "{written}");
    }
}

#[test]
fn project_errors() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "{}",
            &[
                ("projects[0].name", "name is required"),
                ("projects[0].repo", "repo is required"),
                ("projects[0].repo_subdir", "repo_subdir is required; use \".\" for the repository root"),
                ("projects[0].targets", "at least one target host is required"),
            ],
        ),
        (
            "{name: 'my site', repo: app, repo_subdir: d, targets: [web-1]}",
            &[("projects[0].name", "invalid name \"my site\"")],
        ),
        (
            "{name: s, repo: ap, repo_subdir: d, targets: [web-1]}",
            &[("projects[0].repo", "no repo named \"ap\"; did you mean \"app\"?")],
        ),
        (
            "{name: s, repo: 'a b', repo_subdir: d, targets: [web-1]}",
            &[("projects[0].repo", "no repo named \"a b\"; known repos: app")],
        ),
        (
            "{name: s, repo: app, repo_subdir: '', targets: [web-1]}",
            &[("projects[0].repo_subdir", "repo_subdir is required")],
        ),
        (
            "{name: s, repo: app, repo_subdir: /srv, targets: [web-1]}",
            &[("projects[0].repo_subdir", "\"/srv\" is absolute")],
        ),
        (
            "{name: s, repo: app, repo_subdir: a/../../b, targets: [web-1]}",
            &[("projects[0].repo_subdir", "'..' segment")],
        ),
        (
            "{name: s, repo: app, repo_subdir: d, targets: []}",
            &[("projects[0].targets", "at least one target host is required")],
        ),
        (
            "{name: s, repo: app, repo_subdir: d, targets: [web-3]}",
            &[("projects[0].targets[0]", "no host named \"web-3\"; did you mean")],
        ),
        (
            "{name: s, repo: app, repo_subdir: d, targets: [db]}",
            &[("projects[0].targets[0]", "no host named \"db\"; known hosts: web-1, web-2")],
        ),
        (
            "{name: s, repo: app, repo_subdir: d, targets: [web-1, web-2, web-1]}",
            &[("projects[0].targets[2]", "duplicate target \"web-1\"")],
        ),
    ];
    for (entry, want) in cases {
        expect_errors(&with(entry), want);
    }
}

#[test]
fn path_list_errors() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            ", compose_files: [/etc/compose.yml]",
            &[("projects[0].compose_files[0]", "invalid a compose file: \"/etc/compose.yml\" is absolute")],
        ),
        (", compose_files: [ok.yml, ../up.yml]", &[("projects[0].compose_files[1]", "'..' segment")]),
        (", compose_files: ['.']", &[("projects[0].compose_files[0]", "must name something below its base directory")]),
        (", extra_files: [/etc/passwd]", &[("projects[0].extra_files[0]", "is absolute")]),
        (", extra_files: [a/../../x]", &[("projects[0].extra_files[0]", "'..' segment")]),
        (", persist_files: [/data]", &[("projects[0].persist_files[0]", "is absolute")]),
        (", persist_files: [../x]", &[("projects[0].persist_files[0]", "'..' segment")]),
        (", persist_files: ['']", &[("projects[0].persist_files[0]", "must name something")]),
        (
            ", deploy_subdir: '.'",
            &[("projects[0].deploy_subdir", "must name something below its base directory, got \".\"")],
        ),
        (", deploy_subdir: ../x", &[("projects[0].deploy_subdir", "'..' segment")]),
        (", deploy_subdir: /srv/x", &[("projects[0].deploy_subdir", "is absolute")]),
        (", watch_paths: ['ok/**', 'apps/[x']", &[("projects[0].watch_paths[1]", "invalid glob \"apps/[x\"")]),
        (", watch_paths: ['']", &[("projects[0].watch_paths[0]", "watch path must not be empty")]),
        (", rollback: maybe", &[("projects[0].rollback", "expected true, false, \"on\" or \"off\", got \"maybe\"")]),
        (", rollback: 1", &[("projects[0].rollback", "got 1")]),
    ];
    for (extra, want) in cases {
        expect_errors(&project(extra), want);
    }
}

#[test]
fn health_check_forms() {
    let p = loaded(", health_check: 'https://example.com/healthz'");
    assert_eq!(p.health_check, Some(HealthTarget::Url("https://example.com/healthz".into())));
    assert_eq!(p.health, HealthPolicy::default());

    let p = loaded(
        ", health_check: {url: 'http://127.0.0.1:8080/up', retries: 3, interval: 2s, max_interval: 10s, timeout: 1m}",
    );
    assert_eq!(p.health_check, Some(HealthTarget::Url("http://127.0.0.1:8080/up".into())));
    let want = HealthPolicy {
        retries: 3,
        interval: Duration::from_secs(2),
        max_interval: Duration::from_secs(10),
        timeout: Duration::from_secs(60),
    };
    assert_eq!(p.health, want);

    let p = loaded(", health_check: {path: /healthz, port: '8080'}");
    assert_eq!(p.health_check, Some(HealthTarget::PathPort { path: "/healthz".into(), port: 8080 }));

    // An interval above the default cap raises the cap.
    let p = loaded(", health_check: {path: /h, port: 80, interval: 30s}");
    assert_eq!((p.health.interval, p.health.max_interval), (Duration::from_secs(30), Duration::from_secs(30)));
    assert_eq!(loaded(", health_check: null").health_check, None);
    assert_eq!(loaded(", health_check: ''").health_check, None);
}

#[test]
fn health_check_errors() {
    let h = "projects[0].health_check";
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("ftp://x", &[(h, "expected an http:// or https:// URL, got \"ftp://x\"")]),
        ("'http://'", &[(h, "expected an http:// or https:// URL")]),
        ("'http://a b'", &[(h, "expected an http:// or https:// URL")]),
        ("[http://x]", &[(h, "expected a URL or a mapping (a mapping with keys url, path, port")]),
        (
            "{url: 'http://x', path: /h}",
            &[("projects[0].health_check.path", "give either url, or path and port, not both")],
        ),
        ("{url: 'http://x', port: 80}", &[("projects[0].health_check.port", "port goes with path")]),
        ("{path: /h}", &[("projects[0].health_check.port", "port is required with path")]),
        ("{path: h, port: 80}", &[("projects[0].health_check.path", "starting with '/'")]),
        ("{path: /h, port: 0}", &[("projects[0].health_check.port", "expected a number from 1 to 65535, got 0")]),
        ("{retries: 3}", &[(h, "health_check needs a url, or a path and a port")]),
        (
            "{url: 'http://x', retries: 0}",
            &[("projects[0].health_check.retries", "expected a number from 1 to 10000, got 0")],
        ),
        ("{url: 'http://x', interval: 0s}", &[("projects[0].health_check.interval", "interval must be longer than 0")]),
        ("{url: 'http://x', timeout: 10}", &[("projects[0].health_check.timeout", "a unit is required")]),
        (
            "{url: 'http://x', interval: 20s, max_interval: 10s}",
            &[("projects[0].health_check.interval", "must not be longer than max_interval")],
        ),
    ];
    for (written, want) in cases {
        expect_errors(&project(&format!(", health_check: {written}")), want);
    }
}

#[test]
fn a_project_with_many_problems_reports_each() {
    let yaml = with(
        "{name: s, repo: nope, repo_subdir: /abs, targets: [web-1, ghost], compose_files: [../c.yml], watch_paths: ['[x'], \
         health_check: {path: h}, rollback: maybe, deploy_subdir: ..}",
    );
    expect_errors(
        &yaml,
        &[
            ("projects[0].repo", "no repo named \"nope\""),
            ("projects[0].repo_subdir", "is absolute"),
            ("projects[0].targets[1]", "no host named \"ghost\""),
            ("projects[0].compose_files[0]", "'..' segment"),
            ("projects[0].watch_paths[0]", "invalid glob"),
            ("projects[0].health_check.path", "starting with '/'"),
            ("projects[0].health_check.port", "port is required with path"),
            ("projects[0].rollback", "got \"maybe\""),
            ("projects[0].deploy_subdir", "'..' segment"),
        ],
    );
}
