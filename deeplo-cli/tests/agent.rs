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
            // Shared by the agents of one test: a restarted agent takes up the commands of
            // the one before.
            .arg("--state-dir")
            .arg(dir.join("agent-state"))
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

    /// SIGKILL: no close frame, nothing cleaned up.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// `deeplo servers show h1 -o json`.
fn server(d: &DaemonProcess) -> serde_json::Value {
    serde_json::from_str(&ok(&d.cli(&["servers", "show", "h1", "-o", "json"]))).unwrap()
}

/// Waits until h1's state is `state`, and returns its record.
fn server_becomes(d: &DaemonProcess, state: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_for(LONG, || {
        last = server(d);
        last["state"] == state
    })
    .unwrap_or_else(|_| {
        panic!(
            "h1 never became {state}: {last:#}
{}",
            d.log()
        )
    });
    last
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

    let out = d.cli(&["deploy", "--wait", &s.project]);
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

    // A decommissioned server's agent is let go too, and refused when it comes back.
    let token = ok(&d.cli(&["servers", "token", "h1"]));
    std::fs::write(&token_file, token.trim()).unwrap();
    let mut agent = Agent::start(dir, "agent-2", &["--url", &url, "--ca-file", ca, "--token-file", tf]);
    wait_for(LONG, || agent.log().contains("connected to the daemon")).unwrap_or_else(|_| panic!("{}", agent.log()));
    ok(&d.cli(&["servers", "decommission", "h1"]));
    let status = agent.exited_within(LONG).unwrap_or_else(|| panic!("still running:\n{}", agent.log()));
    assert_eq!(status.code(), Some(3), "{}", agent.log());
    assert!(agent.log().contains("decommissioned"), "{}", agent.log());
    let mut again = Agent::start(dir, "agent-3", &["--url", &url, "--ca-file", ca, "--token-file", tf]);
    assert_eq!(again.exited_within(LONG).and_then(|s| s.code()), Some(3), "{}", again.log());
}

/// Starts the daemon over plain HTTP (ws:// to loopback) with a short grace, issues the
/// token of `h1`, and starts its agent; returns the daemon, the agent and its arguments.
fn daemon_and_agent(s: &Scenario, yaml: &str, grace: &str) -> (DaemonProcess, Agent, Vec<String>) {
    let env = [("DEEPLO_AGENT_GRACE", grace), ("DEEPLO_AGENT_HEARTBEAT_INTERVAL", "1s")];
    let d = DaemonProcess::start(BIN.as_ref(), s, yaml, &env).unwrap();
    let token = ok(&d.cli(&["servers", "token", "h1"]));
    let token_file = s.tmp.path().join("h1.token");
    std::fs::write(&token_file, token.trim()).unwrap();
    let args: Vec<String> = ["--url", &d.base_url().replace("http://", "ws://"), "--token-file"]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([token_file.display().to_string()])
        .collect();
    let agent = start_agent(s, "agent-1", &args);
    (d, agent, args)
}

fn start_agent(s: &Scenario, name: &str, args: &[String]) -> Agent {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = Agent::start(s.tmp.path(), name, &args);
    wait_for(LONG, || agent.log().contains("connected to the daemon"))
        .unwrap_or_else(|_| panic!("the agent did not connect:\n{}", agent.log()));
    agent
}

/// A scenario whose compose file has a second service that becomes healthy only after
/// `secs` seconds: the deploy waits in `up`.
fn slow_scenario(name: &str, secs: u32) -> Scenario {
    let s = Scenario::new(name).unwrap();
    let slow = format!(
        "  slow:\n    image: deeplo-testbed-busybox\n    init: true\n    command: [\"sh\", \"-c\", \"sleep {secs}; touch /ok; exec sleep 600\"]\n    healthcheck:\n      test: [\"CMD\", \"sh\", \"-c\", \"[ -e /ok ]\"]\n      interval: 1s\n      retries: 30\n"
    );
    s.repo.write("deploy/compose.yml", deeplo_testbed::scenario::compose_file(s.web_port, &slow)).unwrap();
    s.repo.commit("a slow service").unwrap();
    s
}

/// Runs `deploy --wait` of the scenario's project and, once its containers exist (the
/// deploy is in `up`), calls `meanwhile`; returns the CLI's output.
fn deploy_and_meanwhile(s: &Scenario, d: &DaemonProcess, meanwhile: impl FnOnce()) -> std::process::Output {
    let project = s.project.clone();
    std::thread::scope(|scope| {
        let deploy = scope.spawn(|| d.cli(&["deploy", "--wait", &project]));
        wait_for(LONG, || {
            let ps = Command::new("docker")
                .args(["ps", "-q", "--filter", &format!("label=com.docker.compose.project={project}")])
                .output()
                .unwrap();
            String::from_utf8_lossy(&ps.stdout).lines().count() >= 2
        })
        .unwrap_or_else(|_| panic!("the deploy never started its containers:\n{}", d.log()));
        meanwhile();
        deploy.join().unwrap()
    })
}

#[test]
fn an_agent_killed_mid_deploy_and_started_again_within_the_grace_finishes_it() {
    let s = slow_scenario("agt-back", 6);
    let (d, mut agent, args) = daemon_and_agent(&s, &s.config_yaml_via(Via::Agent, ""), "60s");
    server_becomes(&d, "active");
    let mut second = None;
    let cli = deploy_and_meanwhile(&s, &d, || {
        agent.kill();
        second = Some(start_agent(&s, "agent-2", &args));
    });
    let said = format!("{}{}", String::from_utf8_lossy(&cli.stdout), String::from_utf8_lossy(&cli.stderr));
    let second = second.unwrap();
    assert!(cli.status.success(), "{said}\n{}\n{}", d.log(), second.log());
    assert!(d.log().contains("re-attaching"), "the daemon never re-attached:\n{}", d.log());
    let history = ok(&d.cli(&["deploys", "history", "-o", "json"]));
    let runs: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#}");
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
    // The run log has each line of `up` once: the second agent went on from where the
    // daemon's copy ended.
    let log = ok(&d.cli(&["deploys", "logs", runs[0]["id"].as_str().unwrap()]));
    let ups = log.lines().filter(|line| line.contains("slow") && line.contains("Healthy")).count();
    assert!(ups <= 1, "a line of the output came twice:\n{log}");
}

#[test]
fn an_agent_killed_mid_deploy_fails_it_past_the_grace_and_the_next_deploy_succeeds() {
    let s = slow_scenario("agt-kill", 6);
    let (d, mut agent, args) = daemon_and_agent(&s, &s.config_yaml_via(Via::Agent, ""), "2s");
    let active = server_becomes(&d, "active");
    assert_eq!(active["transport"], "agent");
    assert_eq!(active["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(active["facts"]["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{active:#}");
    assert!(active["facts"]["docker_version"].is_string(), "the fingerprint carries Docker's version: {active:#}");

    let cli = deploy_and_meanwhile(&s, &d, || agent.kill());
    let said = format!("{}{}", String::from_utf8_lossy(&cli.stdout), String::from_utf8_lossy(&cli.stderr));
    assert!(!cli.status.success(), "the deploy outlived its agent: {said}");
    let history = ok(&d.cli(&["deploys", "history", "-o", "json"]));
    let runs: serde_json::Value = serde_json::from_str(&history).unwrap();
    let error = runs[0]["error"].as_str().unwrap_or_default().to_owned();
    assert_eq!(runs[0]["status"], "failed", "{runs:#}");
    assert!(error.contains("agent"), "the record does not say the agent was lost: {error}\n{said}");

    let unreachable = server_becomes(&d, "unreachable");
    assert!(unreachable["reason"].is_string(), "{unreachable:#}");

    // The agent comes back; the next deploy repairs the host.
    let _agent = start_agent(&s, "agent-2", &args);
    let back = server_becomes(&d, "active");
    let moves: Vec<(String, String)> = back["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].as_str().unwrap().to_owned(), t["to"].as_str().unwrap().to_owned()))
        .collect();
    for (from, to) in [("provisioning", "active"), ("active", "unreachable"), ("unreachable", "active")] {
        assert!(moves.contains(&(from.to_owned(), to.to_owned())), "{from} -> {to} missing from {moves:?}");
    }
    let (_, metrics) = d.http("GET", "/metrics").unwrap();
    assert!(metrics.contains("deeplo_server_state{host=\"h1\",state=\"active\"} 1"), "{metrics}");
    assert!(metrics.contains("deeplo_agents_connected 1\n"), "{metrics}");
    let again = d.cli(&["deploy", "--wait", &s.project]);
    let said = format!("{}{}", String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&again.stderr));
    assert!(again.status.success(), "{said}\n{}", d.log());
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"));
}
