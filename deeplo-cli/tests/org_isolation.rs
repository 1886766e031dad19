//! Organization isolation as a property, against the real daemon over real HTTP: random
//! organizations, users, memberships, tokens and resources (hosts, projects, deployment
//! records); whatever a caller lists, reads or asks for, no answer ever holds a resource of
//! an organization they are not in, and each organization they are in shows exactly its own.

use std::collections::{BTreeMap, BTreeSet};

use deeplo_core::model::{CommitId, Deployment, HostName, ProjectName, Trigger};
use deeplo_core::{FileStore, Store};
use deeplo_testbed::daemon::DaemonProcess;
use deeplo_testbed::scenario::Scenario;
use proptest::prelude::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");
const ORGS: [&str; 3] = ["acme", "umbrella", "default"];
const ROLES: [&str; 4] = ["viewer", "developer", "manager", "admin"];

fn call(d: &DaemonProcess, method: &str, path: &str, token: &str) -> (u16, String) {
    d.api(method, path, Some(token))
}

/// One random world: the org of each host and project, and each user's memberships.
#[derive(Debug, Clone)]
struct World {
    hosts: Vec<usize>,
    projects: Vec<usize>,
    users: Vec<BTreeMap<usize, usize>>,
    /// Per user: the org their token is narrowed to, if any.
    narrowed: Vec<Option<usize>>,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(0..3usize, 1..4),
        prop::collection::vec(0..3usize, 1..5),
        prop::collection::vec(prop::collection::btree_map(0..3usize, 0..4usize, 0..3), 1..4),
    )
        .prop_flat_map(|(hosts, projects, users)| {
            let n = users.len();
            (Just(hosts), Just(projects), Just(users), prop::collection::vec(prop::option::weighted(0.3, 0..3usize), n))
        })
        .prop_map(|(hosts, projects, users, narrowed)| World { hosts, projects, users, narrowed })
}

/// The config of a world: a project deploys to the hosts of its org, or to a host of its own
/// org made for it when there is none.
fn config(s: &Scenario, w: &World) -> (String, BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut hosts: BTreeMap<String, usize> = w.hosts.iter().enumerate().map(|(i, o)| (format!("h{i}"), *o)).collect();
    let mut projects = BTreeMap::new();
    let mut project_entries = String::new();
    for (i, org) in w.projects.iter().enumerate() {
        let mut targets: Vec<String> = hosts.iter().filter(|(_, o)| *o == org).map(|(h, _)| h.clone()).collect();
        if targets.is_empty() {
            let name = format!("h-{}", ORGS[*org]);
            hosts.insert(name.clone(), *org);
            targets.push(name);
        }
        let name = format!("p{i}");
        project_entries.push_str(&format!(
            "  - {{name: {name}, repo: r-{org}, repo_subdir: deploy, targets: [{}], org: {org_name}}}\n",
            targets.join(", "),
            org = ORGS[*org],
            org_name = ORGS[*org],
        ));
        projects.insert(name, *org);
    }
    let mut yaml = String::from("hosts:\n");
    for (name, org) in &hosts {
        yaml.push_str(&format!(
            "  - {{name: {name}, address: 127.0.0.1, port: {}, user: {}, deploy_dir: {}/{name}, org: {}}}\n",
            s.sshd.port(),
            s.sshd.user(),
            s.deploy_dir().display(),
            ORGS[*org]
        ));
    }
    yaml.push_str("repos:\n");
    for org in ORGS {
        yaml.push_str(&format!(
            "  - {{name: r-{org}, url: {}, branch: main, trigger_mode: webhook, org: {org}}}\n",
            s.repo.path().display()
        ));
    }
    yaml.push_str("projects:\n");
    yaml.push_str(&project_entries);
    (yaml, hosts, projects)
}

/// A succeeded record for every (project, target) of the config, written before the daemon starts.
fn records(s: &Scenario, yaml: &str) {
    let store = FileStore::open(&s.data_dir(), jiff::Timestamp::now()).unwrap();
    let config = deeplo_core::config::parse(yaml, &Default::default()).unwrap().config;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for project in &config.projects {
        for host in &project.targets {
            let commit = CommitId::new("ab".repeat(20)).unwrap();
            let now = jiff::Timestamp::now();
            let mut record = Deployment::new(
                ProjectName::new(project.name.as_str()).unwrap(),
                HostName::new(host.as_str()).unwrap(),
                commit,
                "main",
                Trigger::Manual,
                now,
            );
            record.start(now).unwrap();
            record.succeed(now).unwrap();
            rt.block_on(store.save(&record)).unwrap();
        }
    }
}

fn check(w: &World) {
    let s = Scenario::new("org-isolation").unwrap();
    let (yaml, hosts, projects) = config(&s, w);
    records(&s, &yaml);
    let d = DaemonProcess::start(BIN.as_ref(), &s, &yaml, &[]).unwrap();
    let out = |args: &[&str]| {
        let o = d.cli(args);
        assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    for (u, memberships) in w.users.iter().enumerate() {
        let email = format!("u{u}@example.com");
        // A user with no membership still exists, through one of a throwaway org.
        out(&["users", "add", &email, "--org", "nobody", "--role", "viewer"]);
        for (org, role) in memberships {
            out(&["users", "add", &email, "--org", ORGS[*org], "--role", ROLES[*role]]);
        }
        let mut args = vec!["tokens", "create", "--user", &email];
        let only = w.narrowed[u].map(|o| ORGS[o]);
        if let Some(org) = only {
            args.extend(["--org", org]);
        }
        let token = out(&args);

        // The orgs a caller acts in: their memberships, less those the token is narrowed away from.
        let mine: BTreeSet<usize> =
            memberships.keys().copied().filter(|o| w.narrowed[u].is_none_or(|only| only == *o)).collect();
        for (org_index, org) in ORGS.iter().enumerate() {
            let member = mine.contains(&org_index);
            for (route, key) in [("servers", "host"), ("projects", "name"), ("deployments", "project")] {
                let (status, body) = call(&d, "GET", &format!("/api/v1/orgs/{org}/{route}"), &token);
                if !member {
                    assert_eq!(status, 404, "{email} {route} of {org}: {body}");
                    assert!(!body.contains("\"h") && !body.contains("\"p"), "{body}");
                    continue;
                }
                assert_eq!(status, 200, "{email} {route} of {org}: {body}");
                let list: Value = serde_json::from_str(&body).unwrap();
                let got: BTreeSet<String> =
                    list.as_array().unwrap().iter().map(|e| e[key].as_str().unwrap().to_owned()).collect();
                let owner = if route == "servers" { &hosts } else { &projects };
                let want: BTreeSet<String> =
                    owner.iter().filter(|(_, o)| **o == org_index).map(|(n, _)| n.clone()).collect();
                if route == "servers" {
                    // Servers are listed once the registry knows them (configured hosts).
                    assert!(got.is_subset(&want), "{email} servers of {org}: {got:?} not within {want:?}");
                } else {
                    assert_eq!(got, want, "{email} {route} of {org}");
                }
            }
            // A record or a project of another org, named through this one: not found.
            for (project, owner) in &projects {
                if *owner == org_index {
                    continue;
                }
                let (status, body) = call(&d, "GET", &format!("/api/v1/orgs/{org}/projects/{project}/env"), &token);
                assert_eq!(status, 404, "{email} env of {project} through {org}: {body}");
                let (status, body) = call(&d, "POST", &format!("/api/v1/orgs/{org}/projects/{project}/deploy"), &token);
                assert_eq!(
                    status,
                    if member && ROLES[memberships[&org_index]] == "viewer" { 403 } else { 404 },
                    "{email} deploy {project} through {org}: {body}"
                );
            }
        }
        let (_, body) = call(&d, "GET", "/api/v1/orgs", &token);
        let listed: Value = serde_json::from_str(&body).unwrap();
        let names: BTreeSet<String> =
            listed.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_owned()).collect();
        let want: BTreeSet<String> = mine
            .iter()
            .map(|o| ORGS[*o].to_owned())
            .chain(w.narrowed[u].is_none().then(|| "nobody".to_owned()))
            .collect();
        assert_eq!(names, want, "{email}'s organizations");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_answer_reaches_another_organization(w in world()) {
        check(&w);
    }
}
