//! `hosts[]` and `repos[]`.

use std::time::Duration;

use crate::model::HostName;

use super::*;

fn host(entry: &str) -> String {
    doc(&[entry], &[REPO], &[])
}

fn repo(entry: &str) -> String {
    doc(&[HOST], &[entry], &[])
}

#[test]
fn host_fields_and_defaults() {
    let c = ok(&host("{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps/}")).config;
    let h = &c.hosts[0];
    assert_eq!((h.name.as_str(), h.address.as_str(), h.deploy_dir.as_str()), ("web-1", "10.0.0.10", "/srv/apps"));
    assert_eq!((h.user.as_str(), h.port, h.compose_command.as_ref()), ("deploy", 22, None));

    let vars = [("DEEPLO_SSH_USER", "ops"), ("DEEPLO_SSH_PORT", "2200")];
    let h = ok_with(&host("{name: a, address: b, deploy_dir: /d}"), &vars).config.hosts.remove(0);
    assert_eq!((h.user.as_str(), h.port), ("ops", 2200));
    let h = ok_with(&host("{name: a, address: b, deploy_dir: /d, user: me, port: 22}"), &vars).config.hosts.remove(0);
    assert_eq!((h.user.as_str(), h.port), ("me", 22), "per-host values win over the settings");
    let h = ok_with(&host("{name: a, address: b, deploy_dir: /d, user: '', port: ''}"), &vars).config.hosts.remove(0);
    assert_eq!((h.user.as_str(), h.port), ("ops", 2200), "empty means the default");
}

#[test]
fn agent_hosts_need_no_address() {
    let c = ok(&host("{name: web-1, transport: agent, deploy_dir: /srv/apps}")).config;
    let h = &c.hosts[0];
    assert_eq!((h.transport, h.address.as_str(), h.deploy_dir.as_str()), (HostTransport::Agent, "", "/srv/apps"));
    assert_eq!(*h, Host::agent(HostName::new("web-1").unwrap(), "/srv/apps"), "the constructor agrees with the file");
    let c = ok(&host("{name: web-1, transport: agent, address: 10.0.0.10, deploy_dir: /srv/apps}")).config;
    assert_eq!(c.hosts[0].address, "10.0.0.10", "an address may still say which machine it is");
    let c = ok(&host("{name: web-1, transport: ssh, address: 10.0.0.10, deploy_dir: /srv/apps}")).config;
    assert_eq!(c.hosts[0].transport, HostTransport::Ssh);
    assert_eq!(ok(&host("{name: a, address: b, deploy_dir: /d}")).config.hosts[0].transport, HostTransport::Ssh);
    expect_errors(
        &host("{name: a, transport: telnet, address: b, deploy_dir: /d}"),
        &[("hosts[0].transport", "\"telnet\" is not a transport: use ssh (the default) or agent")],
    );
    expect_errors(&host("{name: a, transport: agent}"), &[("hosts[0].deploy_dir", "deploy_dir is required")]);
    expect_errors(&host("{name: a, transport: ssh, deploy_dir: /d}"), &[("hosts[0].address", "address is required")]);
}

#[test]
fn deploy_dir_is_normalised() {
    for (written, want) in [("/srv/apps", "/srv/apps"), ("/srv//apps/./", "/srv/apps"), ("/", "/")] {
        let c = ok(&host(&format!("{{name: a, address: b, deploy_dir: '{written}'}}"))).config;
        assert_eq!(c.hosts[0].deploy_dir, want, "{written}");
    }
}

#[test]
fn compose_command_is_a_string_or_a_list_of_words() {
    let cases: &[(&str, Option<&[&str]>)] = &[
        ("docker compose", Some(&["docker", "compose"])),
        ("'  podman   compose '", Some(&["podman", "compose"])),
        ("[docker-compose]", Some(&["docker-compose"])),
        ("['/opt/my tools/compose', --ansi, never]", Some(&["/opt/my tools/compose", "--ansi", "never"])),
        ("''", None),
        ("null", None),
    ];
    for (written, want) in cases {
        let c = ok(&host(&format!("{{name: a, address: b, deploy_dir: /d, compose_command: {written}}}"))).config;
        let got: Option<Vec<&str>> =
            c.hosts[0].compose_command.as_ref().map(|w| w.iter().map(String::as_str).collect());
        assert_eq!(got.as_deref(), *want, "{written}");
    }
}

#[test]
fn proxy_image_defaults_to_caddy_and_takes_an_image_reference() {
    assert_eq!(ok(&host(HOST)).config.hosts[0].proxy_image, "caddy:2");
    assert_eq!(DEFAULT_PROXY_IMAGE, "caddy:2");
    for (written, want) in [
        ("'caddy:2.8-alpine'", "caddy:2.8-alpine"),
        ("registry.example.com:5000/ops/caddy@sha256:0123abcd", "registry.example.com:5000/ops/caddy@sha256:0123abcd"),
        ("''", "caddy:2"),
        ("null", "caddy:2"),
    ] {
        let c = ok(&host(&format!("{{name: a, address: b, deploy_dir: /d, proxy_image: {written}}}"))).config;
        assert_eq!(c.hosts[0].proxy_image, want, "{written}");
    }
    let cases: &[(&str, &str)] = &[
        (
            "'caddy 2'",
            "expected a Docker image reference such as \"caddy:2\", got \"caddy 2\": it must not hold spaces",
        ),
        ("--privileged", "must not start with '-'"),
        ("\"caddy\\t2\"", "must not hold control characters"),
        ("[caddy]", "expected a string, got a list"),
    ];
    for (written, want) in cases {
        expect_errors(
            &host(&format!("{{name: a, address: b, deploy_dir: /d, proxy_image: {written}}}")),
            &[("hosts[0].proxy_image", want)],
        );
    }
}

#[test]
fn host_errors() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("{address: b, deploy_dir: /d}", &[("hosts[0].name", "name is required")]),
        ("{name: '', address: b, deploy_dir: /d}", &[("hosts[0].name", "name is required")]),
        (
            "{name: a b, address: b, deploy_dir: /d}",
            &[(
                "hosts[0].name",
                "invalid name \"a b\": use ASCII letters, digits, '.', '_' and '-', starting with a letter or digit",
            )],
        ),
        ("{name: -a, address: b, deploy_dir: /d}", &[("hosts[0].name", "invalid name \"-a\"")]),
        ("{name: a, deploy_dir: /d}", &[("hosts[0].address", "address is required")]),
        ("{name: a, address: -oProxyCommand=x, deploy_dir: /d}", &[("hosts[0].address", "must not start with '-'")]),
        ("{name: a, address: 'b c', deploy_dir: /d}", &[("hosts[0].address", "must not hold spaces")]),
        ("{name: a, address: b}", &[("hosts[0].deploy_dir", "deploy_dir is required")]),
        ("{name: a, address: b, deploy_dir: srv}", &[("hosts[0].deploy_dir", "must be an absolute path, got \"srv\"")]),
        ("{name: a, address: b, deploy_dir: /srv/../etc}", &[("hosts[0].deploy_dir", "'..'")]),
        ("{name: a, address: b, deploy_dir: /d, user: 'a b'}", &[("hosts[0].user", "must not hold spaces")]),
        (
            "{name: a, address: b, deploy_dir: /d, port: abc}",
            &[("hosts[0].port", "expected a number from 1 to 65535, got \"abc\"")],
        ),
        ("{name: a, address: b, deploy_dir: /d, port: 0}", &[("hosts[0].port", "got 0")]),
        ("{name: a, address: b, deploy_dir: /d, port: 65536}", &[("hosts[0].port", "got 65536")]),
        ("{name: a, address: b, deploy_dir: /d, port: -1}", &[("hosts[0].port", "got -1")]),
        ("{name: a, address: b, deploy_dir: /d, port: 22.5}", &[("hosts[0].port", "got 22.5")]),
        ("{name: a, address: b, deploy_dir: /d, port: [22]}", &[("hosts[0].port", "got a list")]),
        (
            "{name: a, address: b, deploy_dir: /d, compose_command: [docker, '']}",
            &[("hosts[0].compose_command[1]", "must not be empty")],
        ),
        (
            "{name: a, address: b, deploy_dir: /d, compose_command: []}",
            &[("hosts[0].compose_command", "at least one word")],
        ),
        (
            "{name: a, address: b, deploy_dir: /d, compose_command: 5}",
            &[("hosts[0].compose_command", "expected a command such as \"docker compose\" or a list of words, got 5")],
        ),
    ];
    for (entry, want) in cases {
        expect_errors(&host(entry), want);
    }
}

#[test]
fn a_bad_default_port_is_reported_where_it_is_used() {
    let yaml = doc(
        &["{name: a, address: b, deploy_dir: /d}", "{name: c, address: d, deploy_dir: /d, port: 22}"],
        &[REPO],
        &[],
    );
    expect_errors_with(
        &yaml,
        &[("DEEPLO_SSH_PORT", "abc")],
        &[("hosts[0].port", "no port given, and DEEPLO_SSH_PORT is invalid")],
    );
}

#[test]
fn duplicate_names_are_reported_at_each_later_entry() {
    let yaml = doc(&[HOST, HOST, HOST], &[REPO, REPO], &[]);
    expect_errors(
        &yaml,
        &[
            ("hosts[1].name", "duplicate host name \"web-1\"; hosts[0] already has it"),
            ("hosts[2].name", "duplicate host name \"web-1\"; hosts[0] already has it"),
            ("repos[1].name", "duplicate repo name \"app\"; repos[0] already has it"),
        ],
    );
}

#[test]
fn repo_fields_and_defaults() {
    let r = ok(&repo(REPO)).config.repos.remove(0);
    assert_eq!((r.name.as_str(), r.url.as_str(), r.branch.as_str()), ("app", "/srv/git/app.git", "main"));
    assert_eq!((r.trigger_mode, r.poll_interval), (TriggerMode::Poll, Duration::from_secs(60)));
    let r = ok(&repo("{name: app, url: 'git@github.com:acme/app.git', branch: release/1.2, trigger_mode: hybrid, poll_interval: 1m30s}"))
        .config
        .repos
        .remove(0);
    assert_eq!((r.url.as_str(), r.branch.as_str()), ("git@github.com:acme/app.git", "release/1.2"));
    assert_eq!((r.trigger_mode, r.poll_interval), (TriggerMode::Hybrid, Duration::from_secs(90)));
    for (mode, want) in [("webhook", TriggerMode::Webhook), ("poll", TriggerMode::Poll), ("''", TriggerMode::Poll)] {
        let r = ok(&repo(&format!("{{name: app, url: u, trigger_mode: {mode}}}"))).config.repos.remove(0);
        assert_eq!(r.trigger_mode, want, "{mode}");
    }
    let r =
        ok(&repo("{name: app, url: '/srv/my repos/app.git', branch: '', poll_interval: ''}")).config.repos.remove(0);
    assert_eq!(
        (r.url.as_str(), r.branch.as_str(), r.poll_interval),
        ("/srv/my repos/app.git", "main", Duration::from_secs(60))
    );
}

#[test]
fn repo_errors() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("{url: u}", &[("repos[0].name", "name is required")]),
        ("{name: 'a/b', url: u}", &[("repos[0].name", "invalid name \"a/b\"")]),
        ("{name: app}", &[("repos[0].url", "url is required")]),
        ("{name: app, url: --upload-pack=x}", &[("repos[0].url", "must not start with '-'")]),
        (
            "{name: app, url: u, trigger_mode: push}",
            &[("repos[0].trigger_mode", "unknown trigger mode \"push\"; use webhook, poll or hybrid")],
        ),
        ("{name: app, url: u, poll_interval: 60}", &[("repos[0].poll_interval", "a unit is required")]),
        ("{name: app, url: u, poll_interval: '60'}", &[("repos[0].poll_interval", "a unit is required")]),
        ("{name: app, url: u, poll_interval: 0s}", &[("repos[0].poll_interval", "must be longer than 0")]),
        ("{name: app, url: u, poll_interval: 0}", &[("repos[0].poll_interval", "must be longer than 0")]),
        ("{name: app, url: u, poll_interval: 5d}", &[("repos[0].poll_interval", "unknown unit \"d\"")]),
    ];
    for (entry, want) in cases {
        expect_errors(&repo(entry), want);
    }
}

#[test]
fn branch_names_follow_git_rules() {
    for good in ["main", "feature/x", "release-1.2", "v1", "a.b", "user@host", "ünïcode"] {
        let r = ok(&repo(&format!("{{name: app, url: u, branch: '{good}'}}"))).config.repos.remove(0);
        assert_eq!(r.branch, good);
    }
    let bad = [
        ("a b", "spaces"),
        ("a~b", "~ ^ :"),
        ("a^b", "~ ^ :"),
        ("a:b", "~ ^ :"),
        ("a?b", "~ ^ :"),
        ("a*b", "~ ^ :"),
        ("a[b", "~ ^ :"),
        ("a\\\\b", "~ ^ :"),
        ("a\\tb", "control characters"),
        ("a..b", "\"..\""),
        ("a@{b", "\"@{\""),
        ("@", "\"@{\""),
        ("-x", "start with '-'"),
        ("x/", "end with '/'"),
        ("x.", "end with '/' or '.'"),
        ("x.lock", "\".lock\""),
        ("a.lock/b", "\".lock\""),
        ("a/.b", "start with '.'"),
        (".a", "start with '.'"),
        ("/a", "start with '/'"),
        ("a//b", "\"//\""),
    ];
    for (branch, want) in bad {
        // Double quotes so that the YAML escapes above (\\ and \t) are decoded.
        expect_errors(&repo(&format!("{{name: app, url: u, branch: \"{branch}\"}}")), &[("repos[0].branch", want)]);
    }
}
