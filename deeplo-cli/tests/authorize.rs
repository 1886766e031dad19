//! `deeplo authorize` as a person runs it: the real binary against a real sshd that takes
//! passwords, logging in as a real Unix user made for the test. `sshpass` types the password
//! at the prompt on its terminal; `script` types several when each try is wanted; `setsid`
//! runs the command with no terminal at all. Then the key alone must probe and deploy.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use deeplo_testbed::daemon::DaemonProcess;
use deeplo_testbed::scenario::Scenario;
use deeplo_testbed::{Sshd, SshdOptions, UnixUser, free_port, run};

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");

/// A host that takes passwords and reads the users' own authorized_keys, as a stock sshd.
fn password_host() -> SshdOptions {
    SshdOptions { password_authentication: true, user_authorized_keys: true, ..SshdOptions::default() }
}

/// The deeplo side: a data directory, a config file and a freshly generated deploy key.
struct Operator {
    tmp: tempfile::TempDir,
    /// The admin socket looked for (in `tmp` unless a test's daemon listens elsewhere).
    socket: PathBuf,
}

impl Operator {
    fn new(config: &str) -> Self {
        let tmp = tempfile::Builder::new().prefix("deeplo-authorize-").tempdir().unwrap();
        std::fs::write(tmp.path().join("config.yml"), config).unwrap();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "deeplo-deploy", "-f"])
            .arg(tmp.path().join("deploy_key")))
        .unwrap();
        let socket = tmp.path().join("deeplo.sock");
        Self { tmp, socket }
    }

    fn key(&self) -> PathBuf {
        self.tmp.path().join("deploy_key")
    }

    /// The key data of the deploy key (the second field of its `.pub` line).
    fn blob(&self) -> String {
        let out = run(Command::new("ssh-keygen").arg("-y").arg("-f").arg(self.key())).unwrap();
        out.split_whitespace().nth(1).unwrap().to_owned()
    }

    fn known_hosts(&self) -> PathBuf {
        self.tmp.path().join("data/known_hosts")
    }

    /// `deeplo ARGS` with this operator's settings, the way `how` says.
    fn deeplo(&self, how: Terminal<'_>, args: &[&str]) -> Run {
        let dir = self.tmp.path();
        let env = [
            ("DEEPLO_DATA_DIR", dir.join("data")),
            ("DEEPLO_CONFIG_FILE", dir.join("config.yml")),
            ("DEEPLO_ENV_FILE", dir.join("no-env-file")),
            ("DEEPLO_SSH_PRIVATE_KEY_FILE", self.key()),
            ("DEEPLO_UNIX_SOCKET", self.socket.clone()),
        ];
        let mut cmd = match how {
            // A new session has no controlling terminal: /dev/tty cannot be opened.
            Terminal::None => Command::new("setsid"),
            Terminal::Sshpass(_) => Command::new("sshpass"),
            Terminal::Script(_) => Command::new("script"),
        };
        match how {
            Terminal::None => {
                cmd.arg("-w").arg(BIN).args(args);
            }
            Terminal::Sshpass(password) => {
                cmd.arg("-p").arg(password).arg(BIN).args(args);
            }
            Terminal::Script(_) => {
                let line: Vec<String> = std::iter::once(BIN).chain(args.iter().copied()).map(quote).collect();
                cmd.args(["-q", "-e", "-c"]).arg(line.join(" ")).arg("/dev/null");
            }
        }
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (bash .ci/install-deps)"));
        let mut stdin = child.stdin.take().unwrap();
        if let Terminal::Script(typed) = how {
            use std::io::Write;
            stdin.write_all(typed.as_bytes()).unwrap();
        }
        drop(stdin);
        Run::from(child.wait_with_output().unwrap())
    }
}

/// Where the password prompt finds a terminal.
#[derive(Clone, Copy)]
enum Terminal<'a> {
    None,
    /// `sshpass -p PASSWORD`: a terminal on which the password is typed at the first prompt.
    Sshpass(&'a str),
    /// `script`: a terminal whose input is this text, typed ahead (and so echoed before the
    /// prompt turns echo off). Everything the command prints comes through its stdout.
    Script(&'a str),
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A config with these hosts (name, port on 127.0.0.1), all logging in as `user`, and a
/// project that nothing here deploys.
fn hosts_config(hosts: &[(&str, u16)], user: &UnixUser) -> String {
    let mut yaml = String::from("hosts:\n");
    for (name, port) in hosts {
        yaml.push_str(&format!(
            "  - name: {name}\n    address: 127.0.0.1\n    port: {port}\n    user: {user}\n    deploy_dir: {dir}\n",
            user = user.name(),
            dir = user.home().join("srv").display(),
        ));
    }
    let names: Vec<&str> = hosts.iter().map(|(name, _)| *name).collect();
    yaml.push_str("repos:\n  - name: app\n    url: /nonexistent\n    branch: main\n");
    yaml.push_str(&format!(
        "projects:\n  - name: site\n    repo: app\n    repo_subdir: .\n    targets: [{}]\n",
        names.join(", ")
    ));
    yaml
}

fn lines_with(file: &Path, blob: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == blob))
        .count()
}

/// Writes `text` as the user's authorized_keys, owned by the user, as if they had.
fn write_by_hand(user: &UnixUser, text: &str) {
    let ssh = user.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(user.authorized_keys(), text).unwrap();
    let meta = std::fs::metadata(user.home()).unwrap();
    for p in [&ssh, &user.authorized_keys()] {
        std::os::unix::fs::chown(p, Some(meta.uid()), Some(meta.gid())).unwrap();
    }
}

#[test]
fn a_password_login_installs_the_key_once_and_the_key_alone_deploys() {
    let user = UnixUser::create(&["docker"]).unwrap();
    let s = Scenario::new_with("authz-deploy", password_host()).unwrap();
    let yaml = s
        .config_yaml("")
        .replace(&format!("    user: {}\n", s.sshd.user()), &format!("    user: {}\n", user.name()))
        .replace(&s.deploy_dir().display().to_string(), &user.home().join("srv").display().to_string());
    let op = Operator::new(&yaml);
    let blob = op.blob();
    let target = format!("h1 ({}@127.0.0.1)", user.name());
    // Another key is there already, its line without a newline.
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK6Vv3d2oPlW6Qk2n5xCqTb2bJ9x1hQ2vUoH4m9rG7Zz laptop";
    write_by_hand(&user, other);

    let first = op.deeplo(Terminal::Sshpass(user.password()), &["authorize"]);
    assert_eq!(first.code, Some(0), "{first:?}\n{}", s.sshd.log());
    assert_eq!(first.stdout, format!("✓ authorized {target}\n"), "{first:?}");
    assert!(!first.stdout.contains(user.password()) && !first.stderr.contains(user.password()), "{first:?}");
    let keys = user.authorized_keys();
    let text = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(text, format!("{other}\nssh-ed25519 {blob} deeplo-deploy\n"));
    assert_eq!(lines_with(&keys, &blob), 1, "{text}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&user.home().join(".ssh")), mode(&keys)), (0o700, 0o600));

    // Again, with no terminal at all: the key gets in, nothing is asked, nothing written.
    let before = std::fs::metadata(&keys).unwrap();
    let second = op.deeplo(Terminal::None, &["authorize"]);
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.stdout, format!("{target} already authorized, skipping\n"), "{second:?}");
    let after = std::fs::metadata(&keys).unwrap();
    assert_eq!((after.modified().unwrap(), after.len()), (before.modified().unwrap(), before.len()));

    // The key alone probes and deploys.
    let probe = op.deeplo(Terminal::None, &["probe"]);
    assert_eq!(probe.code, Some(0), "{probe:?}");
    assert!(probe.stdout.starts_with("OK    h1"), "{probe:?}");
    let deploy = op.deeplo(Terminal::None, &["deploy", &s.project]);
    assert_eq!(deploy.code, Some(0), "{deploy:?}");
    assert_eq!(s.fetch_site().as_deref(), Some("version 1\n"), "{deploy:?}");

    // The same key under another comment, added by hand: still one line, untouched.
    let by_hand = format!("{other}\nssh-ed25519 {blob} added-by-hand\n");
    write_by_hand(&user, &by_hand);
    let third = op.deeplo(Terminal::None, &["-o", "json", "authorize", "h1"]);
    assert_eq!(third.code, Some(0), "{third:?}");
    let json: serde_json::Value = serde_json::from_str(&third.stdout).unwrap();
    let want =
        serde_json::json!([{"host": "h1", "target": format!("{}@127.0.0.1", user.name()), "outcome": "skipped"}]);
    assert_eq!(json, want);
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), by_hand);
}

#[test]
fn hosts_a_running_daemon_reaches_are_skipped_without_a_connection() {
    let s = Scenario::new("authz-daemon").unwrap();
    let closed = free_port().unwrap();
    let yaml = s.config_yaml("").replacen(
        "repos:",
        &format!(
            "  - name: h2\n    address: 127.0.0.1\n    port: {closed}\n    user: root\n    deploy_dir: /tmp\nrepos:"
        ),
        1,
    );
    let d = DaemonProcess::start(BIN.as_ref(), &s, &yaml, &[]).unwrap();
    // This operator's key is one the host does not take: only the daemon's word, from its own
    // connection with its own key, can make h1 a skip.
    let mut op = Operator::new(&yaml);
    op.socket = d.socket.clone();

    let out = op.deeplo(Terminal::None, &["authorize"]);
    assert_eq!(out.code, Some(1), "{out:?}\n{}", d.log());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(lines[0], format!("h1 ({}@127.0.0.1) already authorized, skipping", s.sshd.user()), "{out:?}");
    assert!(lines[1].starts_with("authorize failed for h2 (root@127.0.0.1): connect:"), "{out:?}");
    assert_eq!(out.stderr, "error: 1 host(s) failed to authorize\n", "{out:?}");
    assert!(!op.known_hosts().exists(), "h1 was contacted from here");
}

#[test]
fn a_key_already_listed_is_not_added_again_and_a_refusal_is_reported() {
    let user = UnixUser::create(&[]).unwrap();
    let sshd = Sshd::start_with(password_host()).unwrap();
    let op = Operator::new(&hosts_config(&[("h1", sshd.port())], &user));
    let blob = op.blob();
    // Listed under another comment, but only for another source address: sshd refuses it
    // from here, so a password is asked, and the install script finds the key by its data.
    let listed = format!("from=\"192.0.2.1\" ssh-ed25519 {blob} on-the-old-laptop\n");
    write_by_hand(&user, &listed);

    let out = op.deeplo(Terminal::Sshpass(user.password()), &["authorize"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let line =
        format!("authorize failed for h1 ({}@127.0.0.1): found the key in ~/.ssh/authorized_keys, but", user.name());
    assert!(out.stdout.starts_with(&line) && out.stdout.lines().count() == 1, "{out:?}");
    assert!(out.stdout.contains("still refuses the key"), "{out:?}");
    assert_eq!(out.stderr, "error: 1 host(s) failed to authorize\n", "{out:?}");
    assert_eq!(std::fs::read_to_string(user.authorized_keys()).unwrap(), listed);
}

#[test]
fn a_changed_host_key_is_refused_before_any_password() {
    let user = UnixUser::create(&[]).unwrap();
    let sshd = Sshd::start_with(password_host()).unwrap();
    let op = Operator::new(&hosts_config(&[("h1", sshd.port())], &user));
    // known_hosts holds another key for this address.
    let other = op.tmp.path().join("other_host_key");
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other)).unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let recorded =
        format!("[127.0.0.1]:{} {}\n", sshd.port(), other_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    std::fs::create_dir_all(op.known_hosts().parent().unwrap()).unwrap();
    std::fs::write(op.known_hosts(), &recorded).unwrap();

    let out = op.deeplo(Terminal::Sshpass(user.password()), &["authorize", "h1"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = format!(
        "authorize failed for h1 ({}@127.0.0.1): verify host key: refusing [127.0.0.1]:{}",
        user.name(),
        sshd.port()
    );
    assert!(out.stdout.starts_with(&line), "{out:?}");
    assert!(out.stdout.contains("differs from the recorded key"), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert_eq!(out.stderr, "error: 1 host(s) failed to authorize\n", "{out:?}");
    assert!(!user.home().join(".ssh").exists(), "something was written on the host");
    assert_eq!(std::fs::read_to_string(op.known_hosts()).unwrap(), recorded);
}

#[test]
fn wrong_passwords_fail_the_host_after_three_tries() {
    let user = UnixUser::create(&[]).unwrap();
    let sshd = Sshd::start_with(password_host()).unwrap();
    let op = Operator::new(&hosts_config(&[("h1", sshd.port())], &user));

    let out = op.deeplo(Terminal::Script("wrong-1\nwrong-2\nwrong-3\n"), &["authorize"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let screen = out.stdout.replace('\r', "");
    let target = format!("{}@127.0.0.1", user.name());
    assert_eq!(screen.matches(&format!("{target}'s password: ")).count(), 3, "{out:?}");
    assert_eq!(screen.matches("Permission denied, please try again.\n").count(), 2, "{out:?}");
    let line = format!(
        "authorize failed for h1 ({target}): authenticate: {target}:{} refused the password (3 attempt(s))\n",
        sshd.port()
    );
    assert!(screen.contains(&line), "{out:?}");
    assert!(screen.ends_with("error: 1 host(s) failed to authorize\n"), "{out:?}");
    assert!(!user.home().join(".ssh").exists());
}

#[test]
fn each_host_gets_one_line_and_a_missing_pub_file_is_derived() {
    let user = UnixUser::create(&[]).unwrap();
    let sshd = Sshd::start_with(password_host()).unwrap();
    let closed = free_port().unwrap();
    let op = Operator::new(&hosts_config(&[("h1", sshd.port()), ("down", closed)], &user));
    let blob = op.blob();
    std::fs::remove_file(op.key().with_extension("pub")).unwrap();
    let target = format!("{}@127.0.0.1", user.name());

    // No terminal: h1 cannot be asked for its password, and says what to do instead.
    let out = op.deeplo(Terminal::None, &["authorize"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with(&format!("authorize failed for h1 ({target}): ask for the password:")), "{out:?}");
    assert!(lines[0].contains("no terminal") && lines[0].contains(&format!("{}.pub", op.key().display())), "{out:?}");
    assert!(lines[1].starts_with(&format!("authorize failed for down ({target}): connect:")), "{out:?}");
    assert_eq!(out.stderr, "error: 2 host(s) failed to authorize\n", "{out:?}");

    // On a terminal, h1 is authorized with the key derived from the private key.
    let out = op.deeplo(Terminal::Sshpass(user.password()), &["authorize"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("✓ authorized h1 ({target})"), "{out:?}");
    assert!(lines[1].starts_with("authorize failed for down"), "{out:?}");
    assert_eq!(out.stderr, "error: 1 host(s) failed to authorize\n", "{out:?}");
    assert_eq!(lines_with(&user.authorized_keys(), &blob), 1);
}

#[test]
fn names_and_settings_are_checked_before_any_host_is_contacted() {
    let user = UnixUser::create(&[]).unwrap();
    let op = Operator::new(&hosts_config(&[("h1", free_port().unwrap())], &user));

    let out = op.deeplo(Terminal::None, &["authorize", "h1", "nope"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "error: host \"nope\" not found in config (hosts: h1)\n", "{out:?}");
    assert!(!op.known_hosts().exists(), "a host was contacted");

    let mut broken = Command::new("setsid");
    broken
        .arg("-w")
        .arg(BIN)
        .arg("authorize")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DEEPLO_CONFIG_FILE", op.tmp.path().join("config.yml"))
        .env("DEEPLO_ENV_FILE", op.tmp.path().join("no-env-file"))
        .env("DEEPLO_DATA_DIR", op.tmp.path().join("data"))
        .env("DEEPLO_UNIX_SOCKET", op.tmp.path().join("deeplo.sock"));
    let out = Run::from(broken.output().unwrap());
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr, "error: DEEPLO_SSH_PRIVATE_KEY_FILE is not set; nothing to authorize\n", "{out:?}");
}
