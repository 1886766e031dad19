//! `deeplo env set|unset|list` and `deeplo secrets rotate-key`, through a running daemon and
//! on the store directly: values are sealed, never printed, never on disk in the clear.

use deeplo_testbed::daemon::DaemonProcess;
use deeplo_testbed::scenario::Scenario;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", said(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn names(d: &DaemonProcess, project: &str) -> Vec<String> {
    let listed: Value = serde_json::from_str(&ok(d.cli(&["env", "list", project, "-o", "json"]))).unwrap();
    listed.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn values_are_set_listed_rotated_and_unset_and_never_shown() {
    let s = Scenario::new("env-cli").unwrap();
    let key_file = s.tmp.path().join("keys/secrets.key");
    let key = key_file.display().to_string();
    let mut d =
        DaemonProcess::start(BIN.as_ref(), &s, &s.config_yaml(""), &[("DEEPLO_SECRETS_KEY_FILE", &key)]).unwrap();
    let project = s.project.clone();

    let set = d.cli(&["env", "set", &project, "MODE=prod-mode-value", "GREETING=hello world"]);
    assert!(ok(set).contains("GREETING, MODE"));
    let typed = d.cli_with_input(&["env", "set", &project, "DB_PASSWORD"], b"pw-from-stdin-81\n");
    ok(typed);
    assert_eq!(names(&d, &project), ["DB_PASSWORD", "GREETING", "MODE"]);
    let table = ok(d.cli(&["env", "list", &project]));
    assert!(table.contains("NAME") && table.contains("DB_PASSWORD"), "{table}");

    let unknown = d.cli(&["env", "set", "no-such-project", "A=b"]);
    assert!(!unknown.status.success() && said(&unknown).contains("no-such-project"), "{}", said(&unknown));
    let bad = d.cli(&["env", "set", &project, "1BAD=x"]);
    assert!(!bad.status.success() && said(&bad).contains("1BAD"), "{}", said(&bad));

    let rotated: Value = serde_json::from_str(&ok(d.cli(&["secrets", "rotate-key", "-o", "json"]))).unwrap();
    assert_eq!(rotated["values"], 3, "{rotated}");
    assert_eq!(names(&d, &project), ["DB_PASSWORD", "GREETING", "MODE"]);

    let removed = ok(d.cli(&["env", "unset", &project, "GREETING", "NOPE"]));
    assert!(removed.contains("Removed GREETING"), "{removed}");
    assert_eq!(names(&d, &project), ["DB_PASSWORD", "MODE"]);

    // Without the daemon the CLI works on the store itself.
    d.signal("TERM");
    ok(d.cli(&["env", "set", &project, "LOCAL=local-value-77"]));
    assert_eq!(names(&d, &project), ["DB_PASSWORD", "LOCAL", "MODE"]);
    ok(d.cli(&["env", "unset", &project, "LOCAL"]));
    assert_eq!(names(&d, &project), ["DB_PASSWORD", "MODE"]);

    for value in ["prod-mode-value", "pw-from-stdin-81", "hello world", "local-value-77"] {
        for dir in [s.data_dir(), key_file.parent().unwrap().to_owned(), s.tmp.path().to_owned()] {
            assert_eq!(deeplo_testbed::file_holding(&dir, value), None, "{value} is in the clear on disk");
        }
        assert!(!d.log().contains(value), "{value} is in the daemon's log");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
}

/// A compose file whose web service takes `GREETING` from the environment of compose
/// (refusing to start without it), beside a service that keeps `up` waiting 4 s.
fn compose_with_greeting(port: u16) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n    init: true\n    volumes: [\"./www:/www:ro\"]\n    ports: [\"127.0.0.1:{port}:8080\"]\n    environment:\n      GREETING: ${{GREETING:?GREETING is not set}}\n  slow:\n    image: {image}\n    init: true\n    command: [\"sh\", \"-c\", \"sleep 4; touch /ok; exec sleep 600\"]\n    healthcheck:\n      test: [\"CMD\", \"sh\", \"-c\", \"[ -e /ok ]\"]\n      interval: 1s\n      retries: 30\n",
        image = deeplo_testbed::scenario::IMAGE
    )
}

/// Every command line of the machine's processes, as `ps` shows them.
fn command_lines() -> String {
    let out = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_value_reaches_the_compose_interpolation_and_nothing_else() {
    let s = Scenario::new("env-dlv").unwrap();
    s.repo.write("deploy/compose.yml", compose_with_greeting(s.web_port)).unwrap();
    s.repo.commit("a greeting from the environment").unwrap();
    let key = s.tmp.path().join("secrets.key").display().to_string();
    let d = DaemonProcess::start(BIN.as_ref(), &s, &s.config_yaml(""), &[("DEEPLO_SECRETS_KEY_FILE", &key)]).unwrap();
    let project = s.project.clone();
    let value = "gr33ting with 'quotes', $dollars and \"more\"";
    ok(d.cli_with_input(&["env", "set", &project, "GREETING"], value.as_bytes()));

    let seen_in_ps = std::sync::atomic::AtomicBool::new(false);
    let done = std::sync::atomic::AtomicBool::new(false);
    let deploy = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if command_lines().contains("gr33ting") {
                    seen_in_ps.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let out = d.cli(&["deploy", "--wait", &project]);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    });
    assert!(deploy.status.success(), "{}\n{}", said(&deploy), d.log());
    assert!(!seen_in_ps.into_inner(), "the value showed on a command line in ps");

    let inspect = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", &format!("{project}-web-1")])
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&inspect.stdout);
    assert!(env.lines().any(|l| l == format!("GREETING={value}")), "the container's environment:\n{env}");

    let history: Value = serde_json::from_str(&ok(d.cli(&["deploys", "history", "-o", "json"]))).unwrap();
    let run_log = ok(d.cli(&["deploys", "logs", history[0]["id"].as_str().unwrap()]));
    assert!(!run_log.contains("gr33ting"), "{run_log}");
    assert!(!d.log().contains("gr33ting"), "the daemon's log");
    for dir in [s.data_dir(), s.deploy_dir(), s.tmp.path().to_owned()] {
        assert_eq!(deeplo_testbed::file_holding(&dir, "gr33ting"), None, "the value is in a file");
    }
}
