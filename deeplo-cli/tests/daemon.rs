//! `deeplo daemon` as a process: the real binary against a real sshd, Docker engine and git
//! repository. Polling, restarts after SIGKILL, SIGTERM during a deploy, config reloads.

use std::time::Duration;

use deeplo_testbed::daemon::{DaemonProcess, wait_for};
use deeplo_testbed::scenario::{Scenario, compose_file};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");
const LONG: Duration = Duration::from_secs(90);

/// The scenario's config with the repo polled every second.
fn polled(s: &Scenario, project_extra: &str) -> String {
    s.config_yaml(project_extra)
        .replace("    branch: main\n", "    branch: main\n    trigger_mode: poll\n    poll_interval: 1s\n")
}

fn json(out: std::process::Output) -> Value {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn history(d: &DaemonProcess) -> Vec<Value> {
    json(d.cli(&["deploys", "history", "--limit", "100", "-o", "json"])).as_array().unwrap().clone()
}

fn site_is(s: &Scenario, want: &str) -> bool {
    s.fetch_site().as_deref() == Some(want)
}

#[test]
fn polling_deploys_each_new_head_once() {
    let s = Scenario::new("dmn-poll").unwrap();
    let d = DaemonProcess::start(BIN.as_ref(), &s, &polled(&s, ""), &[]).unwrap();
    wait_for(LONG, || site_is(&s, "version 1\n")).unwrap_or_else(|_| panic!("v1 not served:\n{}", d.log()));

    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    let v2 = s.repo.commit("version 2").unwrap();
    wait_for(LONG, || site_is(&s, "version 2\n")).unwrap_or_else(|_| panic!("v2 not served:\n{}", d.log()));
    wait_for(LONG, || history(&d).iter().all(|r| r["status"] == "succeeded")).unwrap();

    // A push outside the project's files deploys nothing, however many polls see it.
    s.repo.write("README.md", "docs\n").unwrap();
    s.repo.commit("docs only").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let runs = history(&d);
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0]["commit"], v2.as_str());
    assert_eq!(runs[0]["trigger"], "poll");
    assert_eq!(runs[1]["trigger"], "reconcile", "the first poll at start-up deploys what never was");

    // `health` finds it answering, with its version.
    let health = d.cli(&["health"]);
    let said = String::from_utf8_lossy(&health.stdout);
    assert!(health.status.success(), "{said}{}", String::from_utf8_lossy(&health.stderr));
    assert!(said.contains("Daemon:   reachable"), "{said}");
    assert!(said.contains(&format!("Version:  {}", env!("CARGO_PKG_VERSION"))), "{said}");
    assert!(said.contains("Uptime:   "), "{said}");

    // The verbs go through the daemon, which owns the data directory.
    let state = json(d.cli(&["deploys", "state", "-o", "json"]));
    assert_eq!(state[0]["commit"], v2.as_str());
    let run = runs[0]["id"].as_str().unwrap();
    let log = d.cli(&["deploys", "logs", run]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("health"), "{log:?}");
    let (code, body) = d.http("GET", &format!("/runs/{run}/logs")).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains(&v2[..8]) || body.contains("up"), "{body}");
    for bad in ["/runs/..%2F..%2Fetc%2Fpasswd/logs", "/runs/1-zz/logs", "/runs/1700000000-00000000/logs"] {
        assert_eq!(d.http("GET", bad).unwrap().0, 404, "{bad}");
    }
    let (code, metrics) = d.http("GET", "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("deeplo_deploys_total{outcome=\"succeeded\"} 2"), "{metrics}");
    assert!(metrics.contains("deeplo_queue_depth 0"), "{metrics}");

    runner_tokens_through_the_daemon(&s, &d);
}

/// `curl` against the admin socket: `(status, body)`.
fn admin(d: &DaemonProcess, method: &str, path: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "-X", method, "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&d.socket)
        .arg(format!("http://deeplo{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

/// Runner tokens issued and revoked through the daemon: answered once, listed without
/// secrets, never in its log (at debug level) or its data directory.
fn runner_tokens_through_the_daemon(s: &Scenario, d: &DaemonProcess) {
    let issued = json(d.cli(&["servers", "token", "h1", "-o", "json"]));
    let token = issued["token"].as_str().unwrap();
    assert!(token.starts_with("dplr_"), "{issued}");
    let (code, list) = admin(d, "GET", "/v1/servers/tokens");
    assert_eq!(code, 200, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["host"], "h1", "{list}");
    assert_eq!(list[0]["prefix"], issued["prefix"]);
    assert!(list[0].get("hash").is_none() && !list.to_string().contains(token), "{list}");
    let (code, body) = admin(d, "POST", "/v1/servers/nope/token");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("host nope is not in the config in force"), "{body}");
    assert_eq!(admin(d, "POST", "/v1/servers/bad%20name/token").0, 400);
    assert_eq!(admin(d, "DELETE", "/v1/servers/nope/token").0, 404);

    let out = d.cli(&["servers", "revoke", "h1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Revoked the runner token of h1"), "{out:?}");
    let list: Value = serde_json::from_str(&admin(d, "GET", "/v1/servers/tokens").1).unwrap();
    assert!(list[0]["revoked_at"].is_string(), "{list}");
    let (code, body) = admin(d, "DELETE", "/v1/servers/h1/token");
    assert_eq!((code, body.contains("\"revoked\":false")), (200, true), "{body}");

    assert!(!d.log().contains(token), "the daemon logged the token");
    let stored = std::process::Command::new("grep").arg("-rlF").arg(token).arg(s.data_dir()).output().unwrap();
    assert!(stored.stdout.is_empty(), "the data directory holds the token: {stored:?}");
}

/// A compose service that takes `secs` to become healthy, so that a deploy is still going
/// when the test signals the daemon.
fn slow_compose(port: u16, secs: u32, version: &str) -> String {
    compose_file(port, "")
        .replace(
            "command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]",
            &format!("command: [\"sh\", \"-c\", \"sleep {secs}; touch /ready; exec httpd -f -p 8080 -h /www\"]"),
        )
        .replace(
            "    ports:",
            "    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/ready\"]\n      interval: 1s\n      retries: 60\n    labels: [\"v=VERSION\"]\n    ports:",
        )
        .replace("VERSION", version)
}

fn wait_running(d: &DaemonProcess) -> String {
    let mut id = String::new();
    wait_for(LONG, || {
        history(d).iter().find(|r| r["status"] == "running").is_some_and(|r| {
            id = r["id"].as_str().unwrap().to_owned();
            true
        })
    })
    .unwrap_or_else(|_| panic!("no run started:\n{}", d.log()));
    id
}

#[test]
fn killed_daemon_marks_the_run_interrupted_and_redeploys() {
    let s = Scenario::new("dmn-kill").unwrap();
    s.repo.write("deploy/compose.yml", slow_compose(s.web_port, 6, "1")).unwrap();
    s.repo.commit("slow start").unwrap();
    let mut d = DaemonProcess::start(BIN.as_ref(), &s, &polled(&s, ""), &[]).unwrap();
    let first = wait_running(&d);
    std::thread::sleep(Duration::from_secs(2));
    d.signal("KILL");

    d.spawn().unwrap();
    wait_for(LONG, || site_is(&s, "version 1\n")).unwrap_or_else(|_| panic!("not served after restart:\n{}", d.log()));
    wait_for(LONG, || history(&d).iter().any(|r| r["status"] == "succeeded")).unwrap();
    let runs = history(&d);
    let killed = runs.iter().find(|r| r["id"] == first.as_str()).unwrap();
    assert_eq!(killed["status"], "failed");
    assert_eq!(killed["error"], "interrupted");
    assert!(runs.iter().any(|r| r["status"] == "succeeded" && r["trigger"] == "reconcile"), "{runs:#?}");
    for leftover in ["staging", "old"] {
        let dir = s.deploy_dir().join(format!("{}.{leftover}", s.project));
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn sigterm_waits_for_the_running_deploy() {
    let s = Scenario::new("dmn-term").unwrap();
    s.repo.write("deploy/compose.yml", slow_compose(s.web_port, 3, "1")).unwrap();
    s.repo.commit("slow start").unwrap();
    let mut d = DaemonProcess::start(BIN.as_ref(), &s, &polled(&s, ""), &[]).unwrap();
    let run = wait_running(&d);
    let status = d.signal("TERM").unwrap();
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(d.log().contains("deeplo daemon stopped"), "{}", d.log());
    assert!(site_is(&s, "version 1\n"));

    // Started again: the finished run is the pair's latest, nothing is redeployed.
    d.spawn().unwrap();
    let runs = history(&d);
    assert_eq!(runs[0]["id"], run.as_str(), "{runs:#?}");
    assert_eq!(runs[0]["status"], "succeeded");
}

#[test]
fn sigterm_past_the_grace_cancels_and_the_next_start_repairs() {
    let s = Scenario::new("dmn-grace").unwrap();
    s.repo.write("deploy/compose.yml", slow_compose(s.web_port, 30, "1")).unwrap();
    s.repo.commit("very slow start").unwrap();
    let mut d = DaemonProcess::start(BIN.as_ref(), &s, &polled(&s, ""), &[("DEEPLO_SHUTDOWN_GRACE", "1s")]).unwrap();
    let run = wait_running(&d);
    std::thread::sleep(Duration::from_secs(2));
    let status = d.signal("TERM").unwrap();
    assert!(status.success(), "{status:?}\n{}", d.log());

    s.repo.write("deploy/compose.yml", slow_compose(s.web_port, 1, "2")).unwrap();
    s.repo.commit("fast start").unwrap();
    d.spawn().unwrap();
    let runs = history(&d);
    let cancelled = runs.iter().find(|r| r["id"] == run.as_str()).unwrap();
    assert_eq!(cancelled["status"], "failed", "{cancelled:#?}");
    wait_for(LONG, || site_is(&s, "version 1\n") && history(&d)[0]["status"] == "succeeded")
        .unwrap_or_else(|_| panic!("not repaired:\n{}", d.log()));
}

#[test]
fn reloads_add_change_and_remove_targets() {
    let s = Scenario::new("dmn-reload").unwrap();
    let port_b = deeplo_testbed::free_port().unwrap();
    s.repo.write("deploy-b/compose.yml", compose_file(port_b, "")).unwrap();
    s.repo.write("deploy-b/www/index.html", "site b\n").unwrap();
    s.repo.commit("site b").unwrap();
    deeplo_testbed::docker::remove_project("dmn-reload-b");
    let site_b = || {
        let out = std::process::Command::new("curl")
            .args(["-fsS", "--max-time", "3", &format!("http://127.0.0.1:{port_b}/")])
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let first = polled(&s, "");
    let d = DaemonProcess::start(BIN.as_ref(), &s, &first, &[]).unwrap();
    wait_for(LONG, || site_is(&s, "version 1\n")).unwrap_or_else(|_| panic!("{}", d.log()));
    wait_for(LONG, || history(&d).iter().all(|r| r["status"] == "succeeded")).unwrap();

    // Add project b, and move a to another directory.
    let project_b =
        "  - name: dmn-reload-b\n    repo: app\n    repo_subdir: deploy-b\n    targets: [h1]\n    extra_files: [www]\n";
    let second = format!("{}{project_b}", polled(&s, "    deploy_subdir: moved-a\n"));
    std::fs::write(&d.config, &second).unwrap();
    let out = d.cli(&["config", "reload", "-o", "json"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), d.log());
    wait_for(LONG, || site_b().as_deref() == Some("site b\n")).unwrap_or_else(|_| panic!("b not served:\n{}", d.log()));
    wait_for(LONG, || s.deploy_dir().join("moved-a").join("www/index.html").exists() && site_is(&s, "version 1\n"))
        .unwrap_or_else(|_| panic!("a not moved:\n{}", d.log()));
    wait_for(LONG, || !s.live_dir().exists()).unwrap_or_else(|_| panic!("the old directory of a stayed:\n{}", d.log()));

    // A broken file is refused and the running config kept.
    std::fs::write(&d.config, "hosts: [").unwrap();
    let out = d.cli(&["config", "reload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running config kept"), "{out:?}");
    assert_eq!(site_b().as_deref(), Some("site b\n"));

    // Remove b: its containers and directory go; a stays.
    std::fs::write(&d.config, polled(&s, "    deploy_subdir: moved-a\n")).unwrap();
    let out = d.cli(&["config", "reload"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), d.log());
    wait_for(LONG, || site_b().is_none() && !s.deploy_dir().join("dmn-reload-b").exists())
        .unwrap_or_else(|_| panic!("b not torn down:\n{}", d.log()));
    assert!(site_is(&s, "version 1\n"));
    deeplo_testbed::docker::remove_project("dmn-reload-b");
}
