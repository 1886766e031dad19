//! Two projects must never share a remote directory on one host.

use super::*;

const HOSTS: [&str; 2] =
    ["{name: web-1, address: a, deploy_dir: /srv/apps}", "{name: web-2, address: b, deploy_dir: /srv/other}"];

fn two(a: &str, b: &str) -> String {
    let a = format!("{{name: a, repo: app, repo_subdir: x, targets: [web-1]{a}}}");
    let b = format!("{{name: b, repo: app, repo_subdir: x, targets: [web-1]{b}}}");
    doc(&HOSTS, &[REPO], &[&a, &b])
}

#[test]
fn conflicts_name_both_projects_the_host_and_the_directories() {
    let cases = [
        (
            ", deploy_subdir: site",
            ", deploy_subdir: site/",
            "projects \"a\" and \"b\" would share directories on host \"web-1\": b's live directory \"/srv/apps/site\" \
             is the same as a's live directory \"/srv/apps/site\"; give one of them another deploy_subdir",
        ),
        (
            "",
            ", deploy_subdir: a/inner",
            "b's live directory \"/srv/apps/a/inner\" is inside a's live directory \"/srv/apps/a\"",
        ),
        (
            ", deploy_subdir: b/inner",
            "",
            "b's live directory \"/srv/apps/b\" contains a's live directory \"/srv/apps/b/inner\"",
        ),
        (
            "",
            ", deploy_subdir: a.old",
            "b's live directory \"/srv/apps/a.old\" is the same as a's previous-release directory",
        ),
        (
            "",
            ", deploy_subdir: a.staging",
            "b's live directory \"/srv/apps/a.staging\" is the same as a's staging directory",
        ),
        (
            ", deploy_subdir: b.old",
            "",
            "b's previous-release directory \"/srv/apps/b.old\" is the same as a's live directory",
        ),
        (
            "",
            ", deploy_subdir: a.old/x",
            "b's live directory \"/srv/apps/a.old/x\" is inside a's previous-release directory",
        ),
    ];
    for (a, b, want) in cases {
        expect_errors(&two(a, b), &[("projects[1].deploy_subdir", want)]);
    }
}

#[test]
fn separate_directories_are_fine() {
    let cases = [
        ("", ""),
        (", deploy_subdir: site", ", deploy_subdir: site2"),
        (", deploy_subdir: site", ", deploy_subdir: site-old"),
        (", deploy_subdir: site", ", deploy_subdir: siteold"),
        (", deploy_subdir: x/site", ", deploy_subdir: y/site"),
    ];
    for (a, b) in cases {
        ok(&two(a, b));
    }
    // The same subdir on different hosts (here also under different deploy_dirs) is fine.
    let a = "{name: a, repo: app, repo_subdir: x, targets: [web-1], deploy_subdir: site}";
    let b = "{name: b, repo: app, repo_subdir: x, targets: [web-2], deploy_subdir: site}";
    ok(&doc(&HOSTS, &[REPO], &[a, b]));
}

#[test]
fn each_host_is_checked() {
    let hosts = [
        "{name: web-1, address: a, deploy_dir: /srv/apps}",
        "{name: web-2, address: b, deploy_dir: /srv/apps}",
        "{name: web-3, address: c, deploy_dir: /srv/apps}",
    ];
    let yaml = doc(
        &hosts,
        &[REPO],
        &[
            "{name: a, repo: app, repo_subdir: x, targets: [web-1, web-2], deploy_subdir: s}",
            "{name: b, repo: app, repo_subdir: x, targets: [web-3, web-2], deploy_subdir: s}",
        ],
    );
    expect_errors(&yaml, &[("projects[1].deploy_subdir", "on host \"web-2\"")]);
}

#[test]
fn duplicate_projects_do_not_also_report_an_overlap() {
    let p = "{name: a, repo: app, repo_subdir: x, targets: [web-1]}";
    expect_errors(&doc(&HOSTS, &[REPO], &[p, p]), &[("projects[1].name", "duplicate project name \"a\"")]);
}
