//! `projects[]` and `health_check`.

use std::time::Duration;

use super::*;
use crate::config::ListenAddress;
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

#[test]
fn auto_deploy_is_on_by_default_and_accepts_booleans_and_on_off() {
    assert!(loaded("").auto_deploy);
    for (written, want) in
        [("true", true), ("false", false), ("on", true), ("off", false), ("'Off'", false), ("null", true)]
    {
        assert_eq!(loaded(&format!(", auto_deploy: {written}")).auto_deploy, want, "{written}");
        assert_eq!(loaded_app(&format!(", auto_deploy: {written}")).auto_deploy, want, "{written}");
    }
    let cases: [(&str, &[(&str, &str)]); 2] = [
        (
            ", auto_deploy: sometimes",
            &[("projects[0].auto_deploy", "expected true, false, \"on\" or \"off\", got \"sometimes\"")],
        ),
        (", auto_deploy: [on]", &[("projects[0].auto_deploy", "got a list")]),
    ];
    for (extra, want) in cases {
        expect_errors(&project(extra), want);
    }
}

/// A valid application with `extra` keys added.
fn app(extra: &str) -> String {
    project(&format!(", dockerfile: Dockerfile, container_port: 8080{extra}"))
}

/// The application with `extra` keys, which must give a domain or a listen address.
fn loaded_app(extra: &str) -> Project {
    let extra = if extra.contains("domain:") || extra.contains("listen:") {
        extra.to_owned()
    } else {
        format!(", listen: ':8080'{extra}")
    };
    ok(&app(&extra)).config.projects.remove(0)
}

#[test]
fn application_defaults() {
    let p = loaded_app("");
    assert!(p.is_application());
    assert!(p.compose_files.is_empty() && p.extra_files.is_empty() && p.persist_files.is_empty());
    assert_eq!(p.watch_paths.patterns(), ["deploy/**"]);
    assert_eq!(p.deploy_subdir.as_str(), "site");
    assert_eq!((p.health_check.as_ref(), p.health), (None, HealthPolicy::default()));
    assert!(p.rollback && p.auto_deploy);
    let a = p.application.unwrap();
    assert_eq!((a.dockerfile.as_str(), a.container_port, a.health_check_path.as_str()), ("Dockerfile", 8080, "/"));
    assert_eq!((a.domain, a.listen), (None, Some(ListenAddress { ip: None, port: 8080 })));
    assert!(a.build_args.is_empty());
    assert_eq!((a.keep_releases, a.drain), (3, Duration::from_secs(5)));
    assert!(!loaded("").is_application(), "no dockerfile, no application");
    assert!(!loaded(", dockerfile: ''").is_application(), "an empty dockerfile means none");
}

#[test]
fn application_values() {
    let p = ok_with(
        &project(
            ", dockerfile: ./docker/Dockerfile.prod, container_port: '3000', health_check_path: /healthz?full=1, \
             domain: App.Example.COM, listen: '127.0.0.1:8081', keep_releases: 1, drain: 0, \
             build_args: {NODE_ENV: production, _V: '${VER}', Count: 3, DEBUG: false, EMPTY: ''}, \
             health_check: {retries: 3, interval: 2s, timeout: 1m}",
        ),
        &[("VER", "1.2.3")],
    )
    .config
    .projects
    .remove(0);
    let a = p.application.as_ref().unwrap();
    assert_eq!((a.dockerfile.as_str(), a.container_port), ("docker/Dockerfile.prod", 3000));
    assert_eq!(a.health_check_path, "/healthz?full=1");
    assert_eq!(a.domain.as_deref(), Some("app.example.com"), "a domain is lowercased");
    assert_eq!(a.listen, Some(ListenAddress::parse("127.0.0.1:8081").unwrap()));
    let args: Vec<(&str, &str)> = a.build_args.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(args, [("Count", "3"), ("DEBUG", "false"), ("EMPTY", ""), ("NODE_ENV", "production"), ("_V", "1.2.3")]);
    assert_eq!((a.keep_releases, a.drain), (1, Duration::ZERO));
    assert_eq!(p.health_check, None);
    assert_eq!(
        (p.health.retries, p.health.interval, p.health.timeout),
        (3, Duration::from_secs(2), Duration::from_secs(60))
    );
    let p = loaded_app(", domain: api.example.com, drain: 1m30s, health_check: ''");
    let a = p.application.unwrap();
    assert_eq!((a.domain.as_deref(), a.listen, a.drain), (Some("api.example.com"), None, Duration::from_secs(90)));
    assert_eq!(loaded_app(", listen: '[::1]:9000'").application.unwrap().listen.unwrap().to_string(), "[::1]:9000");
}

#[test]
fn a_project_is_a_compose_project_or_an_application_not_both() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            ", listen: ':80', compose_files: [compose.yml]",
            &[(
                "projects[0].compose_files",
                "a project is either a Compose project (compose_files) or an application (dockerfile), not both",
            )],
        ),
        (
            ", listen: ':80', extra_files: [www]",
            &[(
                "projects[0].extra_files",
                "extra_files is for Compose projects: an application is built from its whole repo_subdir",
            )],
        ),
        (
            ", listen: ':80', persist_files: [.env]",
            &[("projects[0].persist_files", "persist_files is for Compose projects: an application keeps no files")],
        ),
        (
            ", listen: ':80', persist_files: []",
            &[("projects[0].persist_files", "persist_files is for Compose projects")],
        ),
    ];
    for (extra, want) in cases {
        expect_errors(&app(extra), want);
    }
    // A Compose project (no dockerfile) refuses every application key.
    for (key, value) in [
        ("container_port", "8080"),
        ("health_check_path", "/up"),
        ("domain", "app.example.com"),
        ("listen", "':8080'"),
        ("build_args", "{A: b}"),
        ("keep_releases", "2"),
        ("drain", "1s"),
    ] {
        let want = format!("{key} is an application setting and needs dockerfile");
        expect_errors(&project(&format!(", {key}: {value}")), &[(&format!("projects[0].{key}"), &want)]);
        expect_errors(
            &project(&format!(", dockerfile: '', {key}: {value}")),
            &[(&format!("projects[0].{key}"), &want)],
        );
    }
}

#[test]
fn application_errors() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            ", dockerfile: Dockerfile, listen: ':80'",
            &[("projects[0].container_port", "container_port is required for an application")],
        ),
        (
            ", dockerfile: Dockerfile, container_port: 8080",
            &[(
                "projects[0].listen",
                "an application needs a domain (served over HTTPS by the host's proxy) or a listen address",
            )],
        ),
        (
            ", dockerfile: /Dockerfile, container_port: 80, listen: ':80'",
            &[("projects[0].dockerfile", "invalid dockerfile: \"/Dockerfile\" is absolute")],
        ),
        (
            ", dockerfile: ../Dockerfile, container_port: 80, listen: ':80'",
            &[("projects[0].dockerfile", "'..' segment")],
        ),
        (
            ", dockerfile: '.', container_port: 80, listen: ':80'",
            &[("projects[0].dockerfile", "dockerfile must name something below its base directory, got \".\"")],
        ),
        (
            ", dockerfile: Dockerfile, listen: ':80', container_port: 0",
            &[("projects[0].container_port", "expected a number from 1 to 65535, got 0")],
        ),
        (
            ", dockerfile: Dockerfile, listen: ':80', container_port: 65536",
            &[("projects[0].container_port", "got 65536")],
        ),
        (
            ", dockerfile: Dockerfile, listen: ':80', container_port: http",
            &[("projects[0].container_port", "got \"http\"")],
        ),
        // An invalid dockerfile still makes an application: its keys are not refused too.
        (
            ", dockerfile: [Dockerfile], container_port: 80, listen: ':80'",
            &[("projects[0].dockerfile", "expected a string, got a list")],
        ),
    ];
    for (extra, want) in cases {
        expect_errors(&project(extra), want);
    }
    let cases: &[(&str, &[(&str, &str)])] = &[
        (", listen: ':80', health_check_path: healthz", &[("projects[0].health_check_path", "starting with '/'")]),
        (", listen: ':80', health_check_path: '/a b'", &[("projects[0].health_check_path", "starting with '/'")]),
        (
            ", listen: '8080'",
            &[("projects[0].listen", "expected ADDRESS:PORT or :PORT (such as 127.0.0.1:8080 or :80), got \"8080\"")],
        ),
        (", listen: 'localhost:80'", &[("projects[0].listen", "\"localhost\" is not an IP address")]),
        (", listen: ':0'", &[("projects[0].listen", "\"0\" is not a TCP port (1 to 65535)")]),
        (
            ", domain: localhost",
            &[(
                "projects[0].domain",
                "expected a DNS host name such as \"app.example.com\", got \"localhost\": it needs at least one dot",
            )],
        ),
        (", domain: app_1.example.com", &[("projects[0].domain", "use letters, digits, '-' and '.' only")]),
        (", domain: 'https://app.example.com'", &[("projects[0].domain", "use letters, digits")]),
        (", domain: -app.example.com", &[("projects[0].domain", "must not start or end with '-'")]),
        (", domain: app..example.com", &[("projects[0].domain", "a part between dots is empty")]),
        (
            ", listen: ':80', keep_releases: 0",
            &[("projects[0].keep_releases", "expected a number from 1 to 100, got 0")],
        ),
        (", listen: ':80', keep_releases: many", &[("projects[0].keep_releases", "got \"many\"")]),
        (", listen: ':80', drain: 5", &[("projects[0].drain", "a unit is required")]),
        (", listen: ':80', drain: -1s", &[("projects[0].drain", "must not be negative")]),
        (
            ", listen: ':80', build_args: [A=b]",
            &[(
                "projects[0].build_args",
                "expected a mapping of build argument names to values, such as {NODE_ENV: production}, got a list",
            )],
        ),
        (
            ", listen: ':80', build_args: {1X: a, A-B: c, ok: d}",
            &[
                (
                    "projects[0].build_args.1X",
                    "invalid build argument name \"1X\": use letters, digits and '_', not starting with a digit",
                ),
                ("projects[0].build_args.A-B", "invalid build argument name \"A-B\""),
            ],
        ),
        (
            ", listen: ':80', build_args: {A: }",
            &[("projects[0].build_args.A", "a build argument needs a value; write \"\" for an empty one")],
        ),
        (
            ", listen: ':80', build_args: {A: [x]}",
            &[("projects[0].build_args.A", "expected a string, number or boolean, got a list")],
        ),
        (", listen: ':80', build_args: {V: 1.10}", &[("projects[0].build_args.V", "got the number 1.1; quote it")]),
    ];
    for (extra, want) in cases {
        expect_errors(&app(extra), want);
    }
    expect_errors_with(
        &app(", listen: ':80', build_args: {'${N}': a, B: b}"),
        &[("N", "B")],
        &[("projects[0].build_args.B", "duplicate build argument \"B\"")],
    );
}

#[test]
fn an_application_health_check_takes_the_policy_alone() {
    let h = "projects[0].health_check";
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "'http://127.0.0.1:8080/up'",
            &[(
                h,
                "an application's health check asks its health_check_path on the container; here health_check takes only retries",
            )],
        ),
        (
            "{url: 'http://x/up', retries: 3}",
            &[(
                "projects[0].health_check.url",
                "health_check.url is for Compose projects: an application's health check asks its health_check_path",
            )],
        ),
        (
            "{path: /up, port: 8080}",
            &[
                ("projects[0].health_check.path", "health_check.path is for Compose projects"),
                ("projects[0].health_check.port", "health_check.port is for Compose projects"),
            ],
        ),
        ("{retries: 0}", &[("projects[0].health_check.retries", "expected a number from 1 to 10000, got 0")]),
        ("{retry: 3}", &[("projects[0].health_check.retry", "did you mean \"retries\"?")]),
    ];
    for (written, want) in cases {
        expect_errors(&app(&format!(", listen: ':80', health_check: {written}")), want);
    }
    let p = loaded_app(", health_check: {retries: 2, max_interval: 4s}");
    assert_eq!((p.health_check, p.health.retries, p.health.max_interval), (None, 2, Duration::from_secs(4)));
}

/// Each error as (path, piece of the message).
type Errors<'a> = &'a [(&'a str, &'a str)];

/// Two applications, `a` and `b`, with the given keys, on hosts web-1 and web-2.
fn two_apps(a: &str, b: &str) -> String {
    let entry = |name: &str, keys: &str| {
        format!("{{name: {name}, repo: app, repo_subdir: {name}, dockerfile: Dockerfile, container_port: 80, {keys}}}")
    };
    doc(&[HOST, "{name: web-2, address: 10.0.0.11, deploy_dir: /srv/apps}"], &[REPO], &[&entry("a", a), &entry("b", b)])
}

#[test]
fn applications_on_one_host_need_their_own_ports_and_domains() {
    let valid = [
        ("targets: [web-1], listen: ':8080'", "targets: [web-1], listen: ':8081'"),
        ("targets: [web-1], listen: ':8080'", "targets: [web-2], listen: ':8080'"),
        ("targets: [web-1], domain: a.example.com", "targets: [web-1], domain: b.example.com"),
        ("targets: [web-1], domain: a.example.com", "targets: [web-2], domain: a.example.com"),
        ("targets: [web-1], domain: a.example.com, listen: ':80'", "targets: [web-1], listen: ':8080'"),
        ("targets: [web-1], domain: a.example.com", "targets: [web-2], listen: ':443'"),
    ];
    for (a, b) in valid {
        ok(&two_apps(a, b));
    }
    // (a's keys, b's keys, the errors)
    let cases: &[(&str, &str, Errors<'_>)] = &[
        (
            "targets: [web-1], listen: '127.0.0.1:8080'",
            "targets: [web-2, web-1], listen: '10.0.0.10:8080'",
            &[(
                "projects[1].listen",
                "port 8080 on host \"web-1\" is taken already by project \"a\" (projects[0].listen: 127.0.0.1:8080); \
                 the host's proxy listens on each port once, whatever the address: give b another port",
            )],
        ),
        (
            "targets: [web-1, web-2], domain: App.example.com",
            "targets: [web-1, web-2], domain: app.example.com",
            &[
                (
                    "projects[1].domain",
                    "domain \"app.example.com\" on host \"web-1\" is routed already to project \"a\" (projects[0].domain); \
                     give each application its own domain",
                ),
                ("projects[1].domain", "on host \"web-2\""),
            ],
        ),
        (
            "targets: [web-1], domain: a.example.com",
            "targets: [web-1], listen: ':443'",
            &[(
                "projects[1].listen",
                "port 443 on host \"web-1\" is the proxy's: it serves project \"a\"'s domain \"a.example.com\" \
                 (projects[0].domain) over HTTPS on 443, and on 80 for certificates and the redirect; give b another listen port",
            )],
        ),
        (
            "targets: [web-1], listen: '127.0.0.1:80'",
            "targets: [web-1], domain: b.example.com",
            &[("projects[0].listen", "port 80 on host \"web-1\" is the proxy's: it serves project \"b\"'s domain")],
        ),
    ];
    for (a, b, want) in cases {
        expect_errors(&two_apps(a, b), want);
    }
}
