//! `org` on hosts, repos and projects.

use super::*;
use crate::access::OrgName;

#[test]
fn everything_is_in_the_default_org_unless_it_says() {
    let c = ok(&doc(&[HOST], &[REPO], &[PROJECT])).config;
    assert_eq!(
        (c.hosts[0].org.as_str(), c.repos[0].org.as_str(), c.projects[0].org.as_str()),
        ("default", "default", "default")
    );
    let yaml = doc(
        &["{name: web-1, address: a, deploy_dir: /d, org: acme}"],
        &["{name: app, url: /g, org: acme}"],
        &["{name: site, repo: app, repo_subdir: deploy, targets: [web-1], org: acme}"],
    );
    let c = ok(&yaml).config;
    let acme = OrgName::new("acme").unwrap();
    assert_eq!((&c.hosts[0].org, &c.repos[0].org, &c.projects[0].org), (&acme, &acme, &acme));
}

#[test]
fn org_names_are_slugs() {
    expect_errors(
        &doc(&["{name: web-1, address: a, deploy_dir: /d, org: Acme Corp}"], &[REPO], &[]),
        &[("hosts[0].org", "invalid organization name \"Acme Corp\"")],
    );
    expect_errors(
        &doc(&[HOST], &["{name: app, url: /g, org: a/b}"], &[]),
        &[("repos[0].org", "lowercase ASCII letters")],
    );
    expect_errors(
        &doc(&[HOST], &[REPO], &["{name: site, repo: app, repo_subdir: d, targets: [web-1], org: -x}"]),
        &[("projects[0].org", "invalid organization name")],
    );
}

#[test]
fn a_project_reaches_only_its_own_orgs_repo_and_hosts() {
    let yaml = doc(
        &["{name: web-1, address: a, deploy_dir: /d, org: acme}", "{name: web-2, address: b, deploy_dir: /d}"],
        &["{name: app, url: /g, org: acme}", "{name: other, url: /h, org: umbrella}"],
        &[
            "{name: site, repo: app, repo_subdir: deploy, targets: [web-1, web-2], org: acme}",
            "{name: api, repo: other, repo_subdir: api, targets: [web-1], org: acme}",
            "{name: blog, repo: app, repo_subdir: blog, targets: [web-2]}",
        ],
    );
    expect_errors(
        &yaml,
        &[
            ("projects[0].targets[1]", "host \"web-2\" is in organization \"default\", but the project is in \"acme\""),
            ("projects[1].repo", "repo \"other\" is in organization \"umbrella\", but the project is in \"acme\""),
            ("projects[2].repo", "repo \"app\" is in organization \"acme\", but the project is in \"default\""),
        ],
    );
}
