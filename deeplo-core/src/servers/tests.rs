use std::sync::Arc;

use jiff::{Timestamp, ToSpan};

use super::*;
use crate::FileStore;
use crate::config::{self, EnvMap};

fn config(hosts: &[(&str, &str)]) -> Config {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|(name, transport)| {
            format!("{{name: {name}, address: 10.0.0.10, deploy_dir: /srv/apps, transport: {transport}}}")
        })
        .collect();
    config::parse(
        &format!("hosts: [{}]\nrepos: [{{name: app, url: /srv/git/app.git}}]\n", hosts.join(", ")),
        &EnvMap::default(),
    )
    .expect("valid config")
    .config
}

fn host(name: &str) -> HostName {
    HostName::new(name).unwrap()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH + secs.seconds()
}

fn facts(docker: &str) -> ServerFacts {
    ServerFacts {
        os: "linux".into(),
        kernel: "6.1.0".into(),
        arch: "x86_64".into(),
        docker_version: Some(docker.into()),
        compose_version: Some("2.29.1".into()),
        disk_free_bytes: Some(1 << 30),
        memory_bytes: Some(4 << 30),
    }
}

/// A registry over a file store in `dir`, with the stored document loaded.
async fn open(dir: &std::path::Path, config: &Config) -> ServerRegistry {
    let store = FileStore::open(dir, at(0)).unwrap();
    let registry = ServerRegistry::new(Arc::new(store));
    registry.load().await.unwrap();
    registry.sync(config, at(1));
    registry
}

/// The stored document's transitions of `name`, read straight from the store.
async fn stored_history(registry: &ServerRegistry, name: &str) -> usize {
    let doc = registry.store.load_document(DOCUMENT).await.unwrap().expect("the document is saved");
    doc["hosts"][name]["history"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn every_transition_is_made_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("web-1", "ssh"), ("edge", "agent")]);
    let reg = open(dir.path(), &cfg).await;
    let (web, edge) = (host("web-1"), host("edge"));

    let records = reg.list();
    assert_eq!(records.iter().map(|r| r.host.as_str()).collect::<Vec<_>>(), ["edge", "web-1"]);
    assert!(records.iter().all(|r| r.state == HostState::Provisioning && r.since == at(1)));
    assert_eq!(reg.get(&edge).unwrap().transport, HostTransport::Agent);
    assert!(reg.store.load_document(DOCUMENT).await.unwrap().is_none(), "sync is no transition");

    let t = reg.reached(&web, at(10)).await.unwrap().unwrap();
    assert_eq!((t.from, t.to, t.at), (HostState::Provisioning, HostState::Active, at(10)));
    assert_eq!(reg.get(&web).unwrap().last_seen, Some(at(10)));
    assert!(reg.reached(&web, at(11)).await.unwrap().is_none(), "active to active is no transition");
    let t = reg.unreachable(&web, "connection refused", at(20)).await.unwrap().unwrap();
    assert_eq!((t.from, t.to), (HostState::Active, HostState::Unreachable));
    let record = reg.get(&web).unwrap();
    assert_eq!(
        (record.state, record.since, record.reason.as_deref()),
        (HostState::Unreachable, at(20), Some("connection refused"))
    );
    assert_eq!(record.last_seen, Some(at(11)), "a failure is not being seen");
    reg.reached(&web, at(30)).await.unwrap().unwrap();
    assert_eq!(stored_history(&reg, "web-1").await, 3);

    let t = reg.agent_connected(&edge, "0.4.0", Some(facts("27.1")), at(40)).await.unwrap().unwrap();
    assert_eq!((t.to, t.reason.as_deref()), (HostState::Active, Some("agent 0.4.0 connected")));
    let record = reg.get(&edge).unwrap();
    assert_eq!(record.agent_version.as_deref(), Some("0.4.0"));
    assert_eq!(record.facts, Some(facts("27.1")));
    let t = reg.agent_disconnected(&edge, "going away", at(50)).await.unwrap().unwrap();
    assert_eq!((t.to, t.reason.as_deref()), (HostState::Unreachable, Some("agent disconnected: going away")));
    reg.agent_connected(&edge, "0.4.1", None, at(60)).await.unwrap().unwrap();
    let record = reg.get(&edge).unwrap();
    assert_eq!(record.agent_version.as_deref(), Some("0.4.1"));
    assert_eq!(record.facts, Some(facts("27.1")), "a hello without facts keeps the last ones");

    let history = reg.history(&edge);
    let moves: Vec<_> = history.iter().map(|t| (t.from, t.to)).collect();
    use HostState::*;
    assert_eq!(moves, [(Provisioning, Active), (Active, Unreachable), (Unreachable, Active)]);
    assert!(reg.history(&host("nope")).is_empty());
}

#[tokio::test]
async fn facts_and_heartbeats_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("edge", "agent")]);
    let reg = open(dir.path(), &cfg).await;
    let edge = host("edge");
    reg.agent_connected(&edge, "0.4.0", None, at(10)).await.unwrap();
    let saved = reg.store.load_document(DOCUMENT).await.unwrap();

    reg.agent_facts(&edge, facts("28.0"), at(20));
    reg.seen(&edge, at(30));
    let record = reg.get(&edge).unwrap();
    assert_eq!((record.last_seen, record.facts), (Some(at(30)), Some(facts("28.0"))));
    assert_eq!(reg.store.load_document(DOCUMENT).await.unwrap(), saved, "no store write");

    // The next transition carries them.
    reg.agent_disconnected(&edge, "timeout", at(40)).await.unwrap();
    drop(reg);
    let reg = open(dir.path(), &cfg).await;
    let record = reg.get(&edge).unwrap();
    assert_eq!((record.last_seen, record.facts), (Some(at(30)), Some(facts("28.0"))));
}

#[tokio::test]
async fn records_and_history_survive_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("web-1", "ssh")]);
    let web = host("web-1");
    {
        let reg = open(dir.path(), &cfg).await;
        reg.reached(&web, at(10)).await.unwrap();
        reg.unreachable(&web, "no route to host", at(20)).await.unwrap();
    }
    let reg = open(dir.path(), &cfg).await;
    let record = reg.get(&web).unwrap();
    assert_eq!((record.state, record.since), (HostState::Unreachable, at(20)), "sync keeps the stored record");
    assert_eq!(record.reason.as_deref(), Some("no route to host"));
    assert_eq!(reg.history(&web).len(), 2);

    // The transport follows the config in force, and is stored by a save.
    reg.sync(&config(&[("web-1", "agent"), ("web-2", "ssh")]), at(30));
    assert_eq!(reg.get(&web).unwrap().transport, HostTransport::Agent);
    reg.save().await.unwrap();
    drop(reg);
    let reg = open(dir.path(), &cfg).await;
    assert_eq!(reg.get(&web).unwrap().transport, HostTransport::Ssh, "sync follows the config given");
    drop(reg);
    let reg = open(dir.path(), &config(&[("web-2", "ssh")])).await;
    assert_eq!(reg.get(&host("web-2")).unwrap().since, at(30), "a saved new host keeps its since");
}

#[tokio::test]
async fn history_keeps_the_last_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("web-1", "ssh")]);
    let reg = open(dir.path(), &cfg).await;
    let web = host("web-1");
    for i in 0..(HISTORY_LIMIT as i64 + 20) {
        if i % 2 == 0 {
            reg.reached(&web, at(10 + i)).await.unwrap();
        } else {
            reg.unreachable(&web, "down", at(10 + i)).await.unwrap();
        }
    }
    let history = reg.history(&web);
    assert_eq!(history.len(), HISTORY_LIMIT);
    assert_eq!(history.last().unwrap().at, at(10 + HISTORY_LIMIT as i64 + 19), "the newest is kept");
    assert_eq!(history[0].at, at(30), "the oldest are dropped");
    assert_eq!(stored_history(&reg, "web-1").await, HISTORY_LIMIT);
}

#[tokio::test]
async fn decommissioned_is_final_and_stays_listed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("web-1", "ssh"), ("web-2", "agent")]);
    let reg = open(dir.path(), &cfg).await;
    let (web1, web2) = (host("web-1"), host("web-2"));
    reg.reached(&web1, at(10)).await.unwrap();

    let t = reg.decommission(&web1, at(20)).await.unwrap().unwrap();
    assert_eq!((t.from, t.to), (HostState::Active, HostState::Decommissioned));
    assert!(reg.is_decommissioned(&web1));
    assert!(reg.decommission(&web1, at(21)).await.unwrap().is_none(), "already decommissioned");
    assert!(reg.reached(&web1, at(30)).await.unwrap().is_none());
    assert!(reg.unreachable(&web1, "down", at(31)).await.unwrap().is_none());
    assert!(reg.agent_connected(&web1, "0.4.0", Some(facts("27.1")), at(32)).await.unwrap().is_none());
    reg.agent_facts(&web1, facts("27.1"), at(33));
    reg.seen(&web1, at(34));
    let record = reg.get(&web1).unwrap();
    assert_eq!((record.state, record.since, record.last_seen), (HostState::Decommissioned, at(20), Some(at(10))));
    assert_eq!(record.facts, None);
    assert_eq!(reg.history(&web1).len(), 2);

    let err = reg.decommission(&host("ghost"), at(40)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("host ghost is not in the config"), "{err}");

    // Gone from the config: web-1 (decommissioned) is still listed, web-2 is not.
    drop(reg);
    let reg = open(dir.path(), &config(&[("web-3", "ssh")])).await;
    let listed: Vec<_> = reg.list().into_iter().map(|r| (r.host.to_string(), r.state)).collect();
    assert_eq!(
        listed,
        [("web-1".to_owned(), HostState::Decommissioned), ("web-3".to_owned(), HostState::Provisioning)]
    );
    assert!(reg.get(&web2).is_none());
    assert!(reg.is_decommissioned(&web1), "the stored state is loaded");
    assert_eq!(reg.states().len(), 2);
}

#[tokio::test]
async fn events_for_unknown_hosts_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), &config(&[("web-1", "ssh")])).await;
    let ghost = host("ghost");
    assert!(reg.reached(&ghost, at(10)).await.unwrap().is_none());
    assert!(reg.agent_connected(&ghost, "0.4.0", None, at(10)).await.unwrap().is_none());
    reg.seen(&ghost, at(10));
    assert!(reg.get(&ghost).is_none());
    assert_eq!(reg.list().len(), 1);
}

#[tokio::test]
async fn an_unreadable_document_is_a_store_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path(), at(0)).unwrap());
    store.save_document(DOCUMENT, &serde_json::json!({"hosts": 3})).await.unwrap();
    let err = ServerRegistry::new(store).load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("the servers document is unreadable"), "{err}");
}

#[tokio::test]
async fn a_registry_never_loaded_reads_the_document_before_saving() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("web-1", "ssh"), ("web-2", "ssh")]);
    let (web1, web2) = (host("web-1"), host("web-2"));
    {
        let reg = open(dir.path(), &cfg).await;
        reg.decommission(&web1, at(10)).await.unwrap();
    }
    let store = FileStore::open(dir.path(), at(0)).unwrap();
    let reg = ServerRegistry::new(Arc::new(store));
    reg.sync(&cfg, at(20));
    assert!(!reg.is_decommissioned(&web1), "not read yet");
    reg.reached(&web2, at(30)).await.unwrap().unwrap();
    assert!(reg.is_decommissioned(&web1), "read before the save");
    assert_eq!(stored_history(&reg, "web-1").await, 1, "the stored transition is kept");
    let fresh = ServerRegistry::new(reg.store.clone());
    fresh.ensure_loaded().await.unwrap();
    assert!(fresh.is_decommissioned(&web1));
}
