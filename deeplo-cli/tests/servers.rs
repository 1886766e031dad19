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
