//! The SSH transport against a real OpenSSH server on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use deeplo_core::config::Host;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::{CommitId, HostName};
use deeplo_core::path::RelPath;
use deeplo_core::transport::{Discard, OutputStream};
use deeplo_core::{
    Bundle, BundleEntry, Connector, EntryKind, ErrorKind, ExitStatus, OutputSink, RemoteCommand, Secret, Transport,
};
use deeplo_ssh::{AuthMethod, PasswordPrompt, PasswordRequest, SshConnector, SshOptions};
use deeplo_testbed::{Sshd, SshdOptions, UnixUser, run};

fn host(sshd_port: u16, user: &str) -> Host {
    Host { port: sshd_port, user: user.into(), ..Host::new(HostName::new("test-host").unwrap(), "127.0.0.1", "/tmp") }
}

fn options(known_hosts: &Path, policy: HostKeyPolicy, key: Option<PathBuf>) -> SshOptions {
    let mut o = SshOptions::new(KnownHosts::new(known_hosts, policy));
    o.private_key = key;
    o.agent_socket = None;
    o.connect_timeout = Duration::from_secs(5);
    o
}

#[derive(Default)]
struct Collect(Mutex<Vec<(OutputStream, Vec<u8>)>>);

impl OutputSink for Collect {
    fn output(&self, stream: OutputStream, data: &[u8]) {
        self.0.lock().unwrap().push((stream, data.to_vec()));
    }
}

#[tokio::test]
async fn commands_run_with_output_status_and_no_injection() {
    let sshd = Sshd::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let connector =
        SshConnector::new(options(&tmp.path().join("kh"), HostKeyPolicy::AcceptNew, Some(sshd.client_key()))).unwrap();
    let t = connector.connect(&host(sshd.port(), &sshd.user())).await.unwrap();

    let sink = Collect::default();
    let out =
        t.run(&RemoteCommand::script("echo out; echo err >&2; exit 3", Vec::<String>::new()), &sink).await.unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr_str(), "err\n");
    let streamed: Vec<OutputStream> = sink.0.lock().unwrap().iter().map(|(s, _)| *s).collect();
    assert!(streamed.contains(&OutputStream::Stdout) && streamed.contains(&OutputStream::Stderr));

    let marker = tmp.path().join("pwned");
    let words = [
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker.display()),
        "it's \"quoted\"".into(),
        "a b\nc".into(),
        "; touch /tmp/x".into(),
    ];
    let out = t.run(&RemoteCommand::new("printf").arg("%s\\0").args(words.clone()), &Discard).await.unwrap();
    assert!(out.status.success());
    let got: Vec<String> = out.stdout_str().split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    assert_eq!(got, words);
    assert!(!marker.exists(), "a metacharacter ran on the host");

    // Several commands at once on one connection: each checks in, then waits until all five
    // have, which only happens when they run side by side (one after another, the first
    // would give up waiting).
    let barrier = tempfile::tempdir().unwrap();
    let wait_for_all = RemoteCommand::script(
        r#"touch "$1/$2"; for _ in $(seq 1 300); do [ "$(ls "$1" | wc -l)" -ge 5 ] && exit 0; sleep 0.1; done; exit 1"#,
        [barrier.path().display().to_string()],
    );
    let runs: Vec<RemoteCommand> = (0..5).map(|i| wait_for_all.clone().arg(i.to_string())).collect();
    for r in futures::future::join_all(runs.iter().map(|c| t.run(c, &Discard))).await {
        assert!(r.unwrap().status.success(), "commands on one transport ran one after another");
    }
    t.close().await.unwrap();
}

fn file(path: &str, data: &str, executable: bool) -> BundleEntry {
    BundleEntry {
        path: RelPath::new(path).unwrap(),
        kind: EntryKind::File { data: Bytes::from(data.to_owned()), executable },
    }
}

#[tokio::test]
async fn bundles_keep_modes_links_and_odd_names() {
    let sshd = Sshd::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let connector =
        SshConnector::new(options(&tmp.path().join("kh"), HostKeyPolicy::AcceptNew, Some(sshd.client_key()))).unwrap();
    let t = connector.connect(&host(sshd.port(), &sshd.user())).await.unwrap();
    let dest = tmp.path().join("deep/er/stage dir");
    let odd = "conf/$(touch x) 'q'.txt";
    let bundle = Bundle {
        commit: CommitId::new("a".repeat(40)).unwrap(),
        entries: vec![
            file("compose.yml", "services: {}\n", false),
            file("bin/run.sh", "#!/bin/sh\n", true),
            file(odd, "odd\n", false),
            BundleEntry {
                path: RelPath::new("link.yml").unwrap(),
                kind: EntryKind::Symlink { target: "compose.yml".into() },
            },
        ],
    };
    t.write_bundle(dest.to_str().unwrap(), &bundle).await.unwrap();
    // Again, over the existing files: replaced, not refused.
    t.write_bundle(dest.to_str().unwrap(), &bundle).await.unwrap();

    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("bin/run.sh"), 0o755);
    assert_eq!(mode("compose.yml"), 0o644);
    assert_eq!(std::fs::read_to_string(dest.join(odd)).unwrap(), "odd\n");
    assert_eq!(std::fs::read_link(dest.join("link.yml")).unwrap(), PathBuf::from("compose.yml"));
    assert!(!dest.join("conf/x").exists() && !Path::new("x").exists());
}

#[tokio::test]
async fn host_keys_are_learned_then_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let kh = tmp.path().join("known_hosts");
    let mut sshd = Sshd::start().unwrap();
    let port = sshd.port();
    let key = tmp.path().join("client_key");
    std::fs::copy(sshd.client_key(), &key).unwrap();
    let client_pub = std::fs::read_to_string(format!("{}.pub", sshd.client_key().display())).unwrap();

    // strict with nothing recorded: refused.
    let strict = SshConnector::new(options(&kh, HostKeyPolicy::Strict, Some(key.clone()))).unwrap();
    let err = strict.connect(&host(port, &sshd.user())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");
    assert!(!kh.exists(), "strict recorded a key");

    // accept-new records it, and the next connection finds it known.
    let accept = SshConnector::new(options(&kh, HostKeyPolicy::AcceptNew, Some(key.clone()))).unwrap();
    accept.connect(&host(port, &sshd.user())).await.unwrap();
    let recorded = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(recorded.trim(), sshd.known_hosts_line().unwrap());
    accept.connect(&host(port, &sshd.user())).await.unwrap();
    strict.connect(&host(port, &sshd.user())).await.unwrap();

    // Same address, new host key: refused with the fingerprint and the file to edit.
    sshd.stop();
    let imposter =
        Sshd::start_with(SshdOptions { port: Some(port), authorized_keys: vec![client_pub], ..Default::default() })
            .unwrap();
    let err = accept.connect(&host(port, &imposter.user())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKey, "{err}");
    let msg = err.to_string();
    let offered = deeplo_core::known_hosts::HostKey::from_openssh(&imposter.host_public_key().unwrap()).unwrap();
    assert!(msg.contains(&format!("[127.0.0.1]:{port}")), "{msg}");
    assert!(msg.contains(&offered.fingerprint()), "{msg}");
    assert!(msg.contains(&kh.display().to_string()), "{msg}");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), recorded, "the changed key was recorded");
}

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-f"]).arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    run(&mut cmd).unwrap();
}

#[tokio::test]
async fn ecdsa_rsa_encrypted_and_agent_keys_authenticate() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = [("ecdsa", ""), ("rsa", ""), ("ed25519", "correct horse")];
    let mut pubs = Vec::new();
    for (kind, pass) in keys {
        keygen(&tmp.path().join(kind), kind, pass);
        pubs.push(std::fs::read_to_string(tmp.path().join(format!("{kind}.pub"))).unwrap());
    }
    keygen(&tmp.path().join("agent_key"), "ed25519", "");
    pubs.push(std::fs::read_to_string(tmp.path().join("agent_key.pub")).unwrap());
    let sshd = Sshd::start_with(SshdOptions { authorized_keys: pubs, ..Default::default() }).unwrap();
    let h = host(sshd.port(), &sshd.user());
    let kh = tmp.path().join("kh");

    for kind in ["ecdsa", "rsa"] {
        let c = SshConnector::new(options(&kh, HostKeyPolicy::AcceptNew, Some(tmp.path().join(kind)))).unwrap();
        let t = c.connect(&h).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(t.run(&RemoteCommand::new("true"), &Discard).await.unwrap().status.success());
    }

    // An encrypted key needs its passphrase file; a wrong one fails up front, naming the key.
    let mut o = options(&kh, HostKeyPolicy::AcceptNew, Some(tmp.path().join("ed25519")));
    std::fs::write(tmp.path().join("pass"), "correct horse\n").unwrap();
    std::fs::write(tmp.path().join("wrong"), "wrong\n").unwrap();
    o.passphrase_file = Some(tmp.path().join("wrong"));
    let err = SshConnector::new(o.clone()).unwrap_err();
    assert!(err.to_string().contains(&tmp.path().join("ed25519").display().to_string()), "{err}");
    o.passphrase_file = Some(tmp.path().join("pass"));
    SshConnector::new(o).unwrap().connect(&h).await.unwrap();

    // ssh-agent.
    let sock = tmp.path().join("agent.sock");
    let mut agent =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(std::process::Stdio::null()).spawn().unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    run(Command::new("ssh-add").arg(tmp.path().join("agent_key")).env("SSH_AUTH_SOCK", &sock)).unwrap();
    let mut o = options(&kh, HostKeyPolicy::AcceptNew, None);
    o.agent_socket = Some(sock.clone());
    let result = SshConnector::new(o).unwrap().connect(&h).await;
    let _ = agent.kill();
    let _ = agent.wait();
    result.unwrap();

    // No key at all: refused, saying what to set.
    let err = SshConnector::new(options(&kh, HostKeyPolicy::AcceptNew, None)).unwrap().connect(&h).await.unwrap_err();
    assert!(err.to_string().contains("DEEPLO_SSH_PRIVATE_KEY_FILE"), "{err}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_named() {
    let port = deeplo_testbed::free_port().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let c = SshConnector::new(options(&tmp.path().join("kh"), HostKeyPolicy::AcceptNew, None)).unwrap();
    let err = c.connect(&host(port, "root")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.is_temporary());
    assert!(err.to_string().contains("test-host") && err.to_string().contains(&port.to_string()), "{err}");
}

/// Answers password prompts from a list and remembers what it was asked.
#[derive(Default)]
struct Answers {
    passwords: Mutex<Vec<String>>,
    asked: Mutex<Vec<PasswordRequest>>,
}

impl Answers {
    fn new(passwords: &[&str]) -> Self {
        Self { passwords: Mutex::new(passwords.iter().rev().map(|p| p.to_string()).collect()), ..Default::default() }
    }

    fn attempts(&self) -> Vec<u32> {
        self.asked.lock().unwrap().iter().map(|r| r.attempt).collect()
    }
}

#[async_trait::async_trait]
impl PasswordPrompt for Answers {
    async fn password(&self, request: &PasswordRequest) -> deeplo_core::Result<Secret> {
        self.asked.lock().unwrap().push(request.clone());
        match self.passwords.lock().unwrap().pop() {
            Some(p) => Ok(Secret::new(p)),
            None => Err(deeplo_core::Error::new(ErrorKind::Auth, "ask for the password", "nobody to ask")),
        }
    }
}

#[tokio::test]
async fn a_refused_key_falls_back_to_passwords() {
    let user = UnixUser::create(&[]).unwrap();
    let sshd = Sshd::start_with(SshdOptions {
        password_authentication: true,
        user_authorized_keys: true,
        ..Default::default()
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("deploy_key");
    keygen(&key, "ed25519", "");
    let c = SshConnector::new(options(&tmp.path().join("kh"), HostKeyPolicy::AcceptNew, Some(key.clone()))).unwrap();
    let h = host(sshd.port(), user.name());

    // Three wrong passwords, then the connector gives up, as OpenSSH does.
    let wrong = Answers::new(&["wrong", "wrong", "wrong", "never asked"]);
    let err = c.connect_with_password(&h, &wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("refused the password (3 attempt(s))"), "{err}");
    assert_eq!(wrong.attempts(), [1, 2, 3]);
    let asked = wrong.asked.lock().unwrap()[0].clone();
    assert_eq!((asked.user.as_str(), asked.address.as_str(), asked.port), (user.name(), "127.0.0.1", sshd.port()));

    // A prompt's own error ends the attempts and comes back as it is, with the host.
    let err = c.connect_with_password(&h, &Answers::new(&[])).await.unwrap_err();
    assert!(err.to_string().contains("nobody to ask") && err.to_string().contains("test-host"), "{err}");

    // The right one on the second try gets in; the connection works.
    let right = Answers::new(&["wrong", user.password()]);
    let (t, method) = c.connect_with_password(&h, &right).await.unwrap();
    assert_eq!(method, AuthMethod::Password);
    assert_eq!(right.attempts(), [1, 2]);
    let out = t.run(&RemoteCommand::new("id").arg("-un"), &Discard).await.unwrap();
    assert_eq!(out.stdout_str().trim(), user.name());
    t.close().await.unwrap();

    // The plain connector never asks: the key is refused.
    let err = c.connect(&h).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");

    // Once the key is authorized, it is used and nobody is asked.
    std::fs::create_dir_all(user.home().join(".ssh")).unwrap();
    std::fs::write(user.authorized_keys(), std::fs::read(format!("{}.pub", key.display())).unwrap()).unwrap();
    let unused = Answers::new(&[]);
    let (t, method) = c.connect_with_password(&h, &unused).await.unwrap();
    assert_eq!(method, AuthMethod::KeyFile);
    assert!(unused.attempts().is_empty());
    t.close().await.unwrap();
    assert_eq!(c.public_key().unwrap().unwrap().split(' ').nth(1), Some(blob_of(&key)).as_deref());
}

fn blob_of(key: &Path) -> String {
    let line = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn no_password_is_asked_of_a_host_that_takes_none() {
    let sshd = Sshd::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("unknown_key");
    keygen(&key, "ed25519", "");
    let c = SshConnector::new(options(&tmp.path().join("kh"), HostKeyPolicy::AcceptNew, Some(key))).unwrap();
    let prompt = Answers::new(&["unused"]);
    let err = c.connect_with_password(&host(sshd.port(), &sshd.user()), &prompt).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("does not take passwords (it offers: publickey)"), "{err}");
    assert!(prompt.attempts().is_empty());

    // The generated client key gets in without a prompt.
    let c =
        SshConnector::new(options(&tmp.path().join("kh"), HostKeyPolicy::AcceptNew, Some(sshd.client_key()))).unwrap();
    let (_, method) = c.connect_with_password(&host(sshd.port(), &sshd.user()), &prompt).await.unwrap();
    assert_eq!(method, AuthMethod::KeyFile);
}
