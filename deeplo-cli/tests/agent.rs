//! A runner agent end to end: the real daemon binary serving HTTPS with its own
//! certificate, the real `deeplo-agent` binary on the host connecting out over `wss://`
//! with the token `deeplo servers token` issued, a deploy through it, and the refusals.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deeplo_testbed::agent::agent_binary;
use deeplo_testbed::daemon::{DaemonProcess, wait_for};
use deeplo_testbed::scenario::{Scenario, Via};

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");
const LONG: Duration = Duration::from_secs(90);

/// A `deeplo-agent run` child with its log, killed on drop.
struct Agent {
    child: Child,
    log: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(agent_binary().unwrap())
            .arg("run")
            .args(args)
            .env("DEEPLO_AGENT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status once it has exited on its own within `timeout`.
    fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        let _ = wait_for(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_agent_over_wss_deploys_and_a_revoked_one_is_let_go() {
    let s = Scenario::new("agt-wss").unwrap();
    let dir = s.tmp.path();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let yaml = s.config_yaml_via(Via::Agent, "");
    let tls = [
        ("DEEPLO_TLS_CERT_FILE", cert.to_str().unwrap()),
        ("DEEPLO_TLS_KEY_FILE", key.to_str().unwrap()),
        ("DEEPLO_AGENT_HEARTBEAT_INTERVAL", "1s"),
    ];
    let d = DaemonProcess::start(BIN.as_ref(), &s, &yaml, &tls).unwrap();

    let token = ok(&d.cli(&["servers", "token", "h1"]));
    let token_file = dir.join("h1.token");
    std::fs::write(&token_file, token.trim()).unwrap();
    let url = d.base_url().replace("https://", "wss://");
    let ca = cert.to_str().unwrap();
    let tf = token_file.to_str().unwrap();

    // A certificate for another name: the agent does not talk to that daemon.
    let other_name = format!("wss://127.0.0.1:{}", d.http_port);
    let mut wrong = Agent::start(dir, "wrong-name", &["--url", &other_name, "--ca-file", ca, "--token-file", tf]);
    wait_for(LONG, || wrong.log().contains("certificate")).unwrap_or_else(|_| panic!("{}", wrong.log()));
    assert!(!wrong.log().contains("connected to the daemon"), "{}", wrong.log());
    assert!(wrong.exited_within(Duration::from_millis(10)).is_none(), "a TLS failure is retried, not final");
    drop(wrong);

    let mut agent = Agent::start(dir, "agent", &["--url", &url, "--ca-file", ca, "--token-file", tf, "--host", "h1"]);
    wait_for(LONG, || agent.log().contains("connected to the daemon")).unwrap_or_else(|_| {
        panic!("the agent did not connect:\n{}\ndaemon:\n{}", agent.log(), d.log());
    });
    assert!(!agent.log().contains(token.trim()), "the agent logged its token");

    let out = d.cli(&["deploy", &s.project]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}\ndaemon:\n{}\nagent:\n{}", d.log(), agent.log());
    wait_for(LONG, || s.fetch_site().as_deref() == Some("version 1\n"))
        .unwrap_or_else(|_| panic!("not served:\n{said}\n{}", d.log()));

    // Revoking the token closes the connection, and the agent stops for good (exit 3).
    ok(&d.cli(&["servers", "revoke", "h1"]));
    let status = agent.exited_within(LONG).unwrap_or_else(|| panic!("still running:\n{}", agent.log()));
    assert_eq!(status.code(), Some(3), "{}", agent.log());
    assert!(agent.log().contains("revoked"), "{}", agent.log());
    assert!(!d.log().contains(token.trim()), "the daemon logged the token");
}
