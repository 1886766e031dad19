//! Checks across entries: unique names, references, remote directories that two projects
//! would share on one host, and the ports and domains of the applications behind one host's
//! proxy.

use super::entries::{HostRead, RepoRead};
use super::mapping::suggest;
use super::parse::{Path, Reader};
use super::project::ProjectRead;
use crate::access::OrgName;
use crate::path::remote_join;

/// The entries of each section; `None` for a section that is not a list (already
/// reported, so references into it are not checked).
pub(super) struct Sections<'a> {
    pub hosts: Option<&'a [HostRead]>,
    pub repos: Option<&'a [RepoRead]>,
    pub projects: &'a [ProjectRead],
}

pub(super) fn check(r: &mut Reader<'_>, sections: &Sections<'_>) {
    let hosts = sections.hosts.unwrap_or_default();
    let repos = sections.repos.unwrap_or_default();
    let projects = sections.projects;
    unique(r, "host", "hosts", hosts.iter().map(|h| h.name.as_ref()));
    unique(r, "repo", "repos", repos.iter().map(|h| h.name.as_ref()));
    unique(r, "project", "projects", projects.iter().map(|h| h.name.as_ref()));
    let host_names: Vec<&str> = hosts.iter().filter_map(|h| h.name.as_ref()).map(|(_, n)| n.as_str()).collect();
    let repo_names: Vec<&str> = repos.iter().filter_map(|h| h.name.as_ref()).map(|(_, n)| n.as_str()).collect();
    for project in projects {
        if let (Some((path, repo)), Some(_)) = (&project.repo, sections.repos) {
            reference(r, path, "repo", repo, &repo_names);
        }
        if sections.hosts.is_some() {
            for (path, target) in &project.targets {
                reference(r, path, "host", target, &host_names);
            }
        }
    }
    same_org(r, hosts, repos, projects);
    overlaps(r, hosts, projects);
    proxy_routes(r, hosts, projects);
}

/// A project's repo and targets must be in the project's organization: a project of one
/// team must never deploy to another team's server or from its repository.
fn same_org(r: &mut Reader<'_>, hosts: &[HostRead], repos: &[RepoRead], projects: &[ProjectRead]) {
    let named = |name: &Option<(Path, String)>, org: &Option<(Path, OrgName)>| {
        name.as_ref().zip(org.as_ref()).map(|((_, n), (_, o))| (n.clone(), o.clone()))
    };
    let host_orgs: Vec<(String, OrgName)> = hosts.iter().filter_map(|h| named(&h.name, &h.org)).collect();
    let repo_orgs: Vec<(String, OrgName)> = repos.iter().filter_map(|h| named(&h.name, &h.org)).collect();
    let org_of = |list: &[(String, OrgName)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, o)| o.clone());
    for project in projects {
        let Some((_, org)) = &project.org else { continue };
        let mismatch = |what: &str, name: &str, theirs: &OrgName| {
            format!(
                "{what} {name:?} is in organization {theirs:?}, but the project is in {org:?}: \
                 a project's repo and targets must be in its organization (set `org` on both)"
            )
        };
        if let Some((path, repo)) = &project.repo {
            let theirs = org_of(&repo_orgs, repo);
            if let Some(theirs) = theirs.filter(|t| t != org) {
                r.error(path, mismatch("repo", repo, &theirs));
            }
        }
        for (path, target) in &project.targets {
            let theirs = org_of(&host_orgs, target);
            if let Some(theirs) = theirs.filter(|t| t != org) {
                r.error(path, mismatch("host", target, &theirs));
            }
        }
    }
}

/// Reports every name used a second time, at the later entry.
fn unique<'a>(r: &mut Reader<'_>, what: &str, section: &str, names: impl Iterator<Item = Option<&'a (Path, String)>>) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, name) in names.enumerate() {
        let Some((path, name)) = name else {
            continue;
        };
        match seen.iter().find(|(n, _)| n == name) {
            Some((_, first)) => {
                r.error(path, format!("duplicate {what} name {name:?}; {section}[{first}] already has it"))
            }
            None => seen.push((name, i)),
        }
    }
}

fn reference(r: &mut Reader<'_>, path: &Path, what: &str, name: &str, known: &[&str]) {
    if known.contains(&name) {
        return;
    }
    let hint = match suggest(name, known.iter().copied()) {
        Some(near) => format!("did you mean {near:?}?"),
        None if known.is_empty() => format!("no {what}s are configured"),
        None => format!("known {what}s: {}", known.join(", ")),
    };
    r.error(path, format!("no {what} named {name:?}; {hint}"));
}

/// The directories a deploy of one project uses on a host: the live one and the two
/// siblings that exist during a deploy.
fn dirs(live: &str) -> [(&'static str, String); 3] {
    [
        ("live directory", live.to_owned()),
        ("staging directory", format!("{live}.staging")),
        ("previous-release directory", format!("{live}.old")),
    ]
}

/// How `a` relates to `b`, when they overlap.
fn relation(a: &str, b: &str) -> Option<&'static str> {
    let inside = |child: &str, parent: &str| child.strip_prefix(parent).is_some_and(|rest| rest.starts_with('/'));
    if a == b {
        Some("is the same as")
    } else if inside(a, b) {
        Some("is inside")
    } else if inside(b, a) {
        Some("contains")
    } else {
        None
    }
}

/// Two projects on one host must not share, nest or shadow each other's directories, or a
/// deploy of one would replace or delete the other.
fn overlaps(r: &mut Reader<'_>, hosts: &[HostRead], projects: &[ProjectRead]) {
    let mut checked_hosts: Vec<&str> = Vec::new();
    for host in hosts {
        let (Some((_, host_name)), Some(deploy_dir)) = (&host.name, &host.deploy_dir) else {
            continue;
        };
        // A duplicate host is reported already; its directory would only add noise.
        if checked_hosts.contains(&host_name.as_str()) {
            continue;
        }
        checked_hosts.push(host_name);
        let mut on_host: Vec<(&str, &Path, String)> = Vec::new();
        for project in projects.iter().filter(|p| p.targets.iter().any(|(_, t)| t == host_name)) {
            let (Some((_, name)), Some((path, subdir))) = (&project.name, &project.deploy_subdir) else {
                continue;
            };
            // A duplicate project name is reported already.
            if !on_host.iter().any(|(n, _, _)| n == name) {
                on_host.push((name, path, remote_join(deploy_dir, subdir)));
            }
        }
        for (j, (b_name, b_path, b_live)) in on_host.iter().enumerate() {
            for (a_name, _, a_live) in &on_host[..j] {
                if let Some(conflict) = conflict(a_live, b_live) {
                    let (b_role, b_dir, relation, a_role, a_dir) = conflict;
                    r.error(
                        b_path,
                        format!(
                            "projects {a_name:?} and {b_name:?} would share directories on host {host_name:?}: \
                             {b_name}'s {b_role} {b_dir:?} {relation} {a_name}'s {a_role} {a_dir:?}; \
                             give one of them another deploy_subdir"
                        ),
                    );
                }
            }
        }
    }
}

type Conflict = (&'static str, String, &'static str, &'static str, String);

/// The first overlap between the directories of two projects, live directories first.
fn conflict(a_live: &str, b_live: &str) -> Option<Conflict> {
    for (b_role, b_dir) in dirs(b_live) {
        for (a_role, a_dir) in dirs(a_live) {
            if let Some(relation) = relation(&b_dir, &a_dir) {
                return Some((b_role, b_dir, relation, a_role, a_dir));
            }
        }
    }
    None
}

/// The applications on each host share its proxy, which listens on each port once (whatever
/// the address) and routes each domain to one application, over HTTPS on 443 with 80 for
/// certificates and the redirect.
fn proxy_routes(r: &mut Reader<'_>, hosts: &[HostRead], projects: &[ProjectRead]) {
    let mut checked_hosts: Vec<&str> = Vec::new();
    for host in hosts {
        let Some((_, host_name)) = &host.name else {
            continue;
        };
        // A duplicate host is reported already.
        if checked_hosts.contains(&host_name.as_str()) {
            continue;
        }
        checked_hosts.push(host_name);
        let mut apps: Vec<(&str, &ProjectRead)> = Vec::new();
        for project in projects.iter().filter(|p| p.targets.iter().any(|(_, t)| t == host_name)) {
            // A duplicate project name is reported already.
            if let Some((_, name)) = &project.name
                && (project.listen.is_some() || project.domain.is_some())
                && !apps.iter().any(|(n, _)| n == name)
            {
                apps.push((name, project));
            }
        }
        for (j, (b_name, b)) in apps.iter().enumerate() {
            for (a_name, a) in &apps[..j] {
                if let (Some((a_path, a_listen)), Some((b_path, b_listen))) = (&a.listen, &b.listen)
                    && a_listen.port == b_listen.port
                {
                    r.error(
                        b_path,
                        format!(
                            "port {} on host {host_name:?} is taken already by project {a_name:?} ({}: {a_listen}); \
                             the host's proxy listens on each port once, whatever the address: give {b_name} \
                             another port",
                            b_listen.port,
                            a_path.text()
                        ),
                    );
                }
                if let (Some((a_path, a_domain)), Some((b_path, b_domain))) = (&a.domain, &b.domain)
                    && a_domain == b_domain
                {
                    r.error(
                        b_path,
                        format!(
                            "domain {b_domain:?} on host {host_name:?} is routed already to project {a_name:?} \
                             ({}); give each application its own domain",
                            a_path.text()
                        ),
                    );
                }
            }
        }
        for (b_name, b) in &apps {
            let Some((b_path, b_listen)) = &b.listen else {
                continue;
            };
            if !matches!(b_listen.port, 80 | 443) {
                continue;
            }
            let with_domain =
                apps.iter().find_map(|(a_name, a)| a.domain.as_ref().filter(|_| a_name != b_name).map(|d| (a_name, d)));
            if let Some((a_name, (a_path, a_domain))) = with_domain {
                r.error(
                    b_path,
                    format!(
                        "port {} on host {host_name:?} is the proxy's: it serves project {a_name:?}'s domain \
                         {a_domain:?} ({}) over HTTPS on 443, and on 80 for certificates and the redirect; \
                         give {b_name} another listen port",
                        b_listen.port,
                        a_path.text()
                    ),
                );
            }
        }
    }
}
