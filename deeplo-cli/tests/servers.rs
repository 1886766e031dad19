//! `deeplo servers token|revoke` in process (no daemon): the token is printed once, the data
//! directory never holds its text, a new token revokes the old one, unknown hosts fail.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use deeplo_core::model::HostName;
use deeplo_core::{FileStore, RunnerTokenStore};

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

const CONFIG: &str = "hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]
repos: [{name: app, url: /srv/git/app.git}]
projects: [{name: site, repo: app, repo_subdir: deploy, targets: [web-1]}]
";

/// Runs `deeplo ARGS` on the data directory and config under `dir`, with no daemon.
fn deeplo(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DEEPLO_ENV_FILE", dir.join("no-env-file"))
        .env("DEEPLO_UNIX_SOCKET", dir.join("no-daemon.sock"))
        .env("DEEPLO_CONFIG_FILE", dir.join("config.yml"))
        .env("DEEPLO_DATA_DIR", dir.join("data"))
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether any file under `dir` holds `needle`.
fn any_file_holds(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            any_file_holds(&path, needle)
        } else {
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(needle)
        }
    })
}

/// Whether `token` is the valid token of `host` in the data directory (opened after the
/// command exited, so its lock is free).
async fn valid(dir: &Path, host: &str, token: &str) -> bool {
    let store = FileStore::open(&dir.join("data"), jiff::Timestamp::now()).unwrap();
    RunnerTokenStore::new(Arc::new(store)).check(&HostName::new(host).unwrap(), token).await.unwrap()
}

#[tokio::test]
async fn token_is_shown_once_stored_hashed_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("config.yml"), CONFIG).unwrap();

    let out = deeplo(dir, &["servers", "token", "web-1"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let first = stdout(&out).trim().to_owned();
    assert!(first.starts_with("dplr_") && first.len() == 48, "{first:?}");
    let both = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(both.matches(&first).count(), 1, "{both}");
    assert!(stderr(&out).contains("shown once"), "{}", stderr(&out));
    assert!(stderr(&out).contains("deeplo-agent run --url") && stderr(&out).contains("--token-file"));
    assert!(stderr(&out).contains(&first[5..13]), "the prefix is named: {}", stderr(&out));
    assert!(!any_file_holds(&dir.join("data"), &first), "the data directory holds the token");
    assert!(any_file_holds(&dir.join("data"), &first[5..13]), "the prefix is kept");
    assert!(valid(dir, "web-1", &first).await);

    let out = deeplo(dir, &["-o", "json", "servers", "token", "web-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = answer["token"].as_str().unwrap().to_owned();
    assert_eq!(answer["host"], "web-1");
    assert_eq!(answer["prefix"], &second[5..13]);
    assert!(answer["issued_at"].is_string(), "{answer}");
    assert_ne!(first, second);
    assert!(!any_file_holds(&dir.join("data"), &second));
    assert!(!valid(dir, "web-1", &first).await, "the first token still works");
    assert!(valid(dir, "web-1", &second).await);

    let out = deeplo(dir, &["servers", "revoke", "web-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Revoked the runner token of web-1"), "{}", stdout(&out));
    assert!(!valid(dir, "web-1", &second).await, "a revoked token still works");
    let out = deeplo(dir, &["-o", "json", "servers", "revoke", "web-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer, serde_json::json!({"host": "web-1", "revoked": false}));
}

#[test]
fn unknown_and_invalid_hosts_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("config.yml"), CONFIG).unwrap();
    for verb in ["token", "revoke"] {
        let out = deeplo(dir, &["servers", verb, "db-9"]);
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", stderr(&out));
        assert!(stderr(&out).contains("host db-9 is not in the config"), "{verb}: {}", stderr(&out));
        assert!(!stdout(&out).contains("dplr_"), "{}", stdout(&out));
        let out = deeplo(dir, &["servers", verb, "not a host"]);
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", stderr(&out));
        assert!(stderr(&out).contains("invalid name"), "{verb}: {}", stderr(&out));
    }
}

/// Server states offline: every configured host is listed, provisioning; decommissioning
/// is saved in the data directory and shown with its transition.
#[test]
fn servers_list_show_and_decommission_without_a_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("config.yml"), CONFIG).unwrap();

    let out = deeplo(dir, &["servers", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let header = table.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TRANSPORT", "STATE", "SINCE", "LAST-SEEN", "AGENT", "DOCKER"]
    );
    assert!(table.contains("web-1") && table.contains("PROVISIONING"), "{table}");

    let out = deeplo(dir, &["servers", "decommission", "web-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Decommissioned web-1"), "{}", stdout(&out));
    let out = deeplo(dir, &["-o", "json", "servers", "show", "web-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["state"], "decommissioned", "{shown}");
    assert_eq!(shown["history"][0]["from"], "provisioning", "{shown}");
    assert_eq!(shown["history"][0]["to"], "decommissioned", "{shown}");
    let out = deeplo(dir, &["-o", "json", "servers", "decommission", "web-1"]);
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["changed"], false, "{again}");

    for verb in ["show", "decommission"] {
        let out = deeplo(dir, &["servers", verb, "db-9"]);
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", stdout(&out));
        assert!(stderr(&out).contains("host db-9 is not in the config"), "{verb}: {}", stderr(&out));
    }
}

/// The engine refuses a deploy to a decommissioned host before any step: by name with an
/// error, planned with a failed record. The host's address has nothing listening, so a
/// connect attempt would show as a connect step.
#[tokio::test]
async fn a_decommissioned_host_takes_no_deploy() {
    use deeplo_core::known_hosts::HostKeyPolicy;
    use deeplo_core::model::{CommitId, DeployStatus, HostState, ProjectName, Trigger};
    use deeplo_core::plan::Job;
    use deeplo_core::{DeployRequest, ErrorKind};

    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "hosts: [{{name: web-1, address: 127.0.0.1, port: {port}, deploy_dir: /srv/apps}}]
repos: [{{name: app, url: {}}}]
projects: [{{name: site, repo: app, repo_subdir: deploy, targets: [web-1]}}]
",
        tmp.path().join("no-repo").display()
    );
    // A real key, which nothing will ever check: no connection is made.
    let key = tmp.path().join("id_ed25519");
    let keygen = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).output().unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let engine =
        deeplo_testbed::scenario::engine_builder(&yaml, &tmp.path().join("data"), &key, HostKeyPolicy::AcceptNew)
            .unwrap()
            .build()
            .unwrap();
    engine.load_servers().await.unwrap();
    let web = HostName::new("web-1").unwrap();
    assert_eq!(engine.host_states().get(&web), Some(&HostState::Provisioning));
    engine.servers().decommission(&web, jiff::Timestamp::now()).await.unwrap().unwrap();
    assert_eq!(engine.host_states().get(&web), Some(&HostState::Decommissioned));

    let mut request = DeployRequest::new("site");
    request.host = Some("web-1".into());
    let err = engine.deploy(request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("host web-1 is decommissioned"), "{err}");

    let job = Job {
        project: ProjectName::new("site").unwrap(),
        host: web.clone(),
        commit: CommitId::new("a".repeat(40)).unwrap(),
    };
    let submitted = engine.submit(&[job], Trigger::Manual, false).await.unwrap();
    let deeplo_core::engine::SubmitOutcome::Queued(handle) = submitted.into_iter().next().unwrap().outcome else {
        panic!("not queued");
    };
    let record = handle.wait().await.unwrap();
    assert_eq!(record.status, DeployStatus::Failed);
    assert!(record.error.as_deref().unwrap().contains("host web-1 is decommissioned"), "{record:?}");
    assert!(record.steps.is_empty(), "a step ran: {:?}", record.steps);
    let stored = engine.store().get(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeployStatus::Failed);
    assert_eq!(engine.host_states().get(&web), Some(&HostState::Decommissioned));

    // An engine that never loaded the states (an offline `deeplo deploy`) reads them first.
    drop(engine);
    let engine =
        deeplo_testbed::scenario::engine_builder(&yaml, &tmp.path().join("data"), &key, HostKeyPolicy::AcceptNew)
            .unwrap()
            .build()
            .unwrap();
    let mut request = DeployRequest::new("site");
    request.host = Some("web-1".into());
    let err = engine.deploy(request).await.unwrap_err();
    assert!(err.to_string().contains("host web-1 is decommissioned"), "{err}");
}

/// Server states through the daemon: a host is provisioning until a deploy reaches it, then
/// active; decommissioned, it is shown with the transition, refuses deploys, and
/// `/metrics` has its state.
#[test]
fn server_states_through_the_daemon() {
    use std::time::Duration;

    use deeplo_testbed::daemon::{DaemonProcess, wait_for};
    use deeplo_testbed::scenario::Scenario;

    let s = Scenario::new("srv-states").unwrap();
    // Webhooks only: nothing deploys until the test asks.
    let yaml = s.config_yaml("").replace("    branch: main\n", "    branch: main\n    trigger_mode: webhook\n");
    let d = DaemonProcess::start(BIN.as_ref(), &s, &yaml, &[]).unwrap();
    let state = |d: &DaemonProcess| {
        let out = d.cli(&["-o", "json", "servers", "list"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list[0]["host"], "h1", "{list}");
        list[0]["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(state(&d), "provisioning");

    let out = d.cli(&["deploy", &s.project, "--host", "h1", "--wait"]);
    assert!(out.status.success(), "{}{}\n{}", stdout(&out), stderr(&out), d.log());
    wait_for(Duration::from_secs(30), || state(&d) == "active")
        .unwrap_or_else(|_| panic!("h1 not active:\n{}", d.log()));
    let out = d.cli(&["servers", "list"]);
    assert!(stdout(&out).contains("ACTIVE") && stdout(&out).contains("just now"), "{}", stdout(&out));

    let out = d.cli(&["servers", "decommission", "h1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Decommissioned h1"), "{}", stdout(&out));
    let out = d.cli(&["-o", "json", "servers", "show", "h1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["state"], "decommissioned", "{shown}");
    let moves: Vec<(String, String)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].as_str().unwrap().to_owned(), t["to"].as_str().unwrap().to_owned()))
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(moves, [pair("provisioning", "active"), pair("active", "decommissioned")], "{shown}");
    let out = d.cli(&["servers", "show", "h1"]);
    assert!(stdout(&out).contains("DECOMMISSIONED since"), "{}", stdout(&out));

    let out = d.cli(&["deploy", &s.project, "--host", "h1"]);
    assert!(!out.status.success(), "a deploy to a decommissioned host ran: {}", stdout(&out));
    assert!(stderr(&out).contains("host h1 is decommissioned"), "{}", stderr(&out));

    let (code, metrics) = d.http("GET", "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("# TYPE deeplo_server_state gauge"), "{metrics}");
    assert!(metrics.contains("deeplo_server_state{host=\"h1\",state=\"decommissioned\"} 1"), "{metrics}");
    assert!(metrics.contains("deeplo_server_state{host=\"h1\",state=\"active\"} 0"), "{metrics}");

    let out = d.cli(&["servers", "show", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
}
