//! An application through the `deeplo` command and a running daemon: a value set with
//! `deeplo env set` reaches the container (never a command line, a log or a file deeplo
//! wrote), `deeplo deploys containers` shows the live and kept releases, and
//! `deeplo rollback` switches back without a build.

use std::sync::atomic::{AtomicBool, Ordering};

use deeplo_testbed::apps::{self, App};
use deeplo_testbed::daemon::DaemonProcess;
use deeplo_testbed::scenario::{Scenario, Via};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", said(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn command_lines() -> String {
    let out = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn env_containers_and_rollback_through_the_cli() {
    apps::ensure_caddy_image().unwrap();
    let s = Scenario::new("app-cli").unwrap();
    let app = App::new("appcli", Via::Ssh);
    let key = s.tmp.path().join("secrets.key").display().to_string();
    let d = DaemonProcess::start(BIN.as_ref(), &s, &app.yaml(&s, Via::Ssh, ""), &[("DEEPLO_SECRETS_KEY_FILE", &key)])
        .unwrap();
    let value = "s3cret with 'quotes', $dollars and \"more\"";
    ok(d.cli_with_input(&["env", "set", "site", "GREETING"], value.as_bytes()));

    let v1 = app.commit_version(&s.repo, "version 1", &apps::web_dockerfile(8080, "")).unwrap();
    let seen = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let first = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if command_lines().contains("s3cret") {
                    seen.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let out = d.cli(&["deploy", "--wait", "site"]);
        done.store(true, Ordering::Relaxed);
        out
    });
    assert!(first.status.success(), "{}\n{}", said(&first), d.log());
    assert!(!seen.into_inner(), "the value showed on a command line in ps");
    assert_eq!(apps::get(app.port, "/greeting.txt").unwrap(), (200, format!("{value}\n")));

    let v2 = app.commit_version(&s.repo, "version 2", &apps::web_dockerfile(8080, "")).unwrap();
    ok(d.cli(&["deploy", "--wait", "site"]));
    assert_eq!(apps::get(app.port, "/").unwrap().1, "version 2\n");

    let hosts: Value = serde_json::from_str(&ok(d.cli(&["deploys", "containers", "-o", "json"]))).unwrap();
    let releases = &hosts[0]["projects"][0]["releases"];
    let seen: Vec<(String, bool)> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["commit"].as_str().unwrap().to_owned(), r["live"].as_bool().unwrap()))
        .collect();
    assert_eq!(seen, [(v2.clone(), true), (v1.clone(), false)], "{hosts}");
    let table = ok(d.cli(&["deploys", "containers"]));
    assert!(table.contains("live release of") && table.contains("kept release of"), "{table}");

    let back = d.cli(&["rollback", "site"]);
    assert!(back.status.success(), "{}\n{}", said(&back), d.log());
    assert_eq!(apps::get(app.port, "/").unwrap().1, "version 1\n");
    let history: Value = serde_json::from_str(&ok(d.cli(&["deploys", "history", "-o", "json"]))).unwrap();
    let latest = &history[0];
    assert_eq!(latest["trigger"], "rollback");
    let steps: Vec<&str> = latest["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(!steps.contains(&"build"), "a rollback to a kept release builds nothing: {steps:?}");

    for run in history.as_array().unwrap() {
        let log = ok(d.cli(&["deploys", "logs", run["id"].as_str().unwrap()]));
        assert!(!log.contains("s3cret"), "{log}");
    }
    assert!(!d.log().contains("s3cret"), "the daemon's log");
    for dir in [s.data_dir(), s.deploy_dir(), s.tmp.path().to_owned()] {
        assert_eq!(deeplo_testbed::file_holding(&dir, "s3cret"), None, "the value is in a file");
    }
}
