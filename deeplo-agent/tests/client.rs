//! The agent's connection loop against a real WebSocket server of the test's own, over
//! real sockets, running real commands: the session, the headers, the ends and the
//! protocol violations that close the connection; and the real binary.

mod client_support;

use std::time::{Duration, Instant};

use client_support::{DEADLINE, Daemon, TOKEN, Upgrade, options, spawn, token_file};
use deeplo_agent::client::ClientError;
use deeplo_agent::protocol::{
    CloseCode, ExitStatus, MAX_FRAME_BYTES, PROTOCOL_VERSION, RequestId, Stream, ToAgent, ToDaemon, Welcome,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::StatusCode;

#[tokio::test]
async fn a_session_says_hello_runs_a_command_and_sends_heartbeats() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let mut agent_options = options(&format!("{}/base/", daemon.ws_url()), &token);
    agent_options.host = Some("web-1".into());
    let mut agent = spawn(agent_options);
    let mut conn = daemon.next().await;

    assert_eq!(conn.path, "/base/agent/v1/connect");
    let header = |name: &str| conn.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("authorization"), Some(format!("Bearer {TOKEN}")));
    assert_eq!(header("deeplo-agent-host").as_deref(), Some("web-1"));
    assert_eq!(header("user-agent"), Some(format!("deeplo-agent/{}", env!("CARGO_PKG_VERSION"))));

    let hello = conn.welcome(1).await;
    assert_eq!(hello.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(hello.fingerprint.arch, std::env::consts::ARCH);

    let id = RequestId(7);
    let exec = ToAgent::Exec {
        id,
        program: "/bin/echo".into(),
        args: vec!["hi".into()],
        env: vec![],
        cwd: None,
        stdin: false,
    };
    conn.send(exec).await;
    let (mut stdout, mut heartbeats, mut exited) = (Vec::new(), Vec::new(), None);
    let start = Instant::now();
    while exited.is_none() || heartbeats.len() < 2 {
        assert!(start.elapsed() < DEADLINE, "exited {exited:?}, {} heartbeats", heartbeats.len());
        match conn.recv().await {
            ToDaemon::Output { id: got, stream: Stream::Stdout, data, .. } if got == id => stdout.extend(data),
            ToDaemon::Exited { id: got, status } if got == id => exited = Some(status),
            ToDaemon::Heartbeat => heartbeats.push(start.elapsed()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stdout, b"hi\n");
    assert_eq!(exited, Some(ExitStatus::Code(0)));
    // At a 1 s interval: the first after about a second, the next about a second later.
    assert!(heartbeats[0] >= Duration::from_millis(900), "{heartbeats:?}");
    assert!(heartbeats[1] - heartbeats[0] >= Duration::from_millis(900), "{heartbeats:?}");

    agent.stop();
    assert_eq!(conn.expect_close().await.0, 1000);
    agent.finished().await.unwrap();
}

#[tokio::test]
async fn a_final_close_code_ends_the_run_with_the_daemons_reason() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let mut agent = spawn(options(&daemon.ws_url(), &token));
    let mut conn = daemon.next().await;
    conn.welcome(5).await;
    conn.close(4401, "token revoked by the test").await;
    let err = agent.finished().await.unwrap_err();
    assert!(err.is_refusal(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("4401") && message.contains("token revoked by the test"), "{message}");
    assert!(!message.contains(TOKEN));
}

#[tokio::test]
async fn a_retryable_close_code_makes_the_agent_connect_again() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let mut agent = spawn(options(&daemon.ws_url(), &token));
    let mut first = daemon.next().await;
    first.welcome(5).await;
    first.close(1001, "daemon restarting").await;
    let mut second = daemon.next().await;
    second.recv_hello().await;
    agent.stop();
    agent.finished().await.unwrap();
}

#[tokio::test]
async fn http_401_on_the_upgrade_is_final() {
    let daemon = Daemon::start(None, Upgrade::Refuse(StatusCode::UNAUTHORIZED)).await;
    let token = token_file();
    let mut agent = spawn(options(&daemon.ws_url(), &token));
    let err = agent.finished().await.unwrap_err();
    assert!(matches!(err, ClientError::Rejected { status: 401, .. }), "{err:?}");
    assert!(err.to_string().contains("refused the runner token"), "{err}");
}

#[tokio::test]
async fn plaintext_to_another_machine_is_refused_before_connecting() {
    let token = token_file();
    let err = options("ws://192.0.2.1:7000", &token).build().unwrap_err();
    assert!(err.to_string().contains("use wss://"), "{err}");
    assert!(err.is_final());
}

#[tokio::test]
async fn a_frame_over_the_limit_is_closed_with_1009() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let _agent = spawn(options(&daemon.ws_url(), &token));
    let mut conn = daemon.next().await;
    conn.welcome(5).await;
    conn.send_raw(Message::Binary(vec![0u8; MAX_FRAME_BYTES + 1].into())).await;
    assert_eq!(conn.expect_close().await.0, 1009);
}

#[tokio::test]
async fn garbage_after_the_welcome_is_closed_with_4400() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let _agent = spawn(options(&daemon.ws_url(), &token));
    let mut conn = daemon.next().await;
    conn.welcome(5).await;
    conn.send_raw(Message::Binary(vec![0xff, 0xfe, 0x01].into())).await;
    assert_eq!(conn.expect_close().await.0, 4400);
    // A violation is retried: the agent comes back.
    daemon.next().await.recv_hello().await;
}

#[tokio::test]
async fn text_and_requests_before_the_welcome_are_violations() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let _agent = spawn(options(&daemon.ws_url(), &token));
    let mut conn = daemon.next().await;
    conn.recv_hello().await;
    conn.send(ToAgent::Cancel { id: RequestId(1) }).await;
    assert_eq!(conn.expect_close().await.0, 4400);
    let mut conn = daemon.next().await;
    conn.welcome(5).await;
    conn.send_raw(Message::Text("hello".into())).await;
    assert_eq!(conn.expect_close().await.0, 4400);
}

#[tokio::test]
async fn a_welcome_of_another_version_is_closed_with_4426_and_retried() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let _agent = spawn(options(&daemon.ws_url(), &token));
    let mut conn = daemon.next().await;
    conn.recv_hello().await;
    let welcome = Welcome {
        protocol: PROTOCOL_VERSION + 1,
        daemon_version: "9.0.0".into(),
        heartbeat_interval_secs: 5,
        heartbeat_allowance: 3,
    };
    conn.send(ToAgent::Welcome(welcome)).await;
    assert_eq!(conn.expect_close().await, (4426, CloseCode::VersionMismatch.reason().to_owned()));
    daemon.next().await.recv_hello().await;
}

#[tokio::test]
async fn the_binary_prints_its_version() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deeplo-agent")).arg("version").output().unwrap();
    assert!(output.status.success());
    let expected =
        format!("deeplo-agent {} (protocol {})\n", env!("CARGO_PKG_VERSION"), deeplo_agent::protocol::PROTOCOL_VERSION);
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[tokio::test]
async fn the_binary_exits_3_when_its_token_is_refused() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_deeplo-agent"))
        .arg("run")
        .env("DEEPLO_AGENT_URL", daemon.ws_url())
        .env("DEEPLO_AGENT_TOKEN_FILE", &token.path)
        .env("DEEPLO_AGENT_DEPLOY_DIR", token.dir.path())
        .env("DEEPLO_AGENT_LOG", "debug")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .kill_on_drop(true)
        .output();
    let script = async {
        let mut conn = daemon.next().await;
        assert_eq!(conn.headers.get("authorization").unwrap(), &format!("Bearer {TOKEN}"));
        conn.recv_hello().await;
        conn.close(4401, "runner token revoked").await;
    };
    let (output, ()) = tokio::join!(async { tokio::time::timeout(DEADLINE, agent).await }, script);
    let output = output.expect("the agent did not exit in time").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("runner token revoked"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token is never logged: {stderr}");
}

#[tokio::test]
async fn the_binary_closes_with_1000_and_exits_0_on_sigterm() {
    let mut daemon = Daemon::start(None, Upgrade::Accept).await;
    let token = token_file();
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_deeplo-agent"))
        .args(["run", "--url", &daemon.ws_url(), "--host", "web-2"])
        .arg("--token-file")
        .arg(&token.path)
        .env("DEEPLO_AGENT_DEPLOY_DIR", token.dir.path())
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut conn = daemon.next().await;
    assert_eq!(conn.headers.get("deeplo-agent-host").unwrap(), "web-2");
    conn.welcome(5).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(agent.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(conn.expect_close().await.0, 1000);
    let status = tokio::time::timeout(DEADLINE, agent.wait()).await.expect("the agent did not exit in time").unwrap();
    assert_eq!(status.code(), Some(0));
}
