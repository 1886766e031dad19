use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use deeplo_core::config::HostTransport;
use deeplo_core::model::HostName;

use super::*;

const BLOB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGYmZ6J9Ssa6y2pV5oDQkOBIM7OaQ0Z2wS0mXR6yJ0Ao";
const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIK6Vv3d2oPlW6Qk2n5xCqTb2bJ9x1hQ2vUoH4m9rG7Zz";

fn key(comment: &str) -> PublicKey {
    PublicKey::parse(&format!("ssh-ed25519 {BLOB} {comment}\n")).unwrap()
}

#[test]
fn public_keys_are_one_checked_line() {
    let k = PublicKey::parse(&format!("# made by ssh-keygen\n\n  ssh-ed25519 {BLOB} deploy@ci  \n")).unwrap();
    assert_eq!(k.line, format!("ssh-ed25519 {BLOB} deploy@ci"));
    assert_eq!(k.blob, BLOB);
    assert_eq!(PublicKey::parse(&format!("ecdsa-sha2-nistp256 {BLOB}")).unwrap().blob, BLOB);

    for (text, why) in [
        ("", "holds no public key"),
        (&format!("ssh-ed25519 {BLOB} a\nssh-ed25519 {OTHER} b\n") as &str, "more than one line"),
        ("ssh-ed25519", "is not an OpenSSH public key"),
        (&format!("command=\"x\" ssh-ed25519 {BLOB}"), "not a key type"),
        ("ssh-ed25519 $(reboot)-not-base64-at-all", "no base64 key data"),
        (&format!("ssh-ed25519 {BLOB} a\rb"), "control characters"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "more than one line",
        ),
    ] {
        let err = PublicKey::parse(text).unwrap_err();
        assert!(err.contains(why), "{text:?}: {err}");
    }
}

fn config(names: &[&str]) -> Config {
    let host = |name: &str| Host {
        port: 22,
        user: "deploy".into(),
        transport: HostTransport::Ssh,
        ..Host::new(HostName::new(name).unwrap(), "10.0.0.1", "/srv")
    };
    Config { hosts: names.iter().map(|n| host(n)).collect(), repos: Vec::new(), projects: Vec::new() }
}

#[test]
fn hosts_are_selected_by_name_in_order_once() {
    let c = config(&["web-1", "web-2", "db"]);
    let names = |hosts: Vec<&Host>| hosts.iter().map(|h| h.name.to_string()).collect::<Vec<_>>();
    assert_eq!(names(select_hosts(&c, &[]).unwrap()), ["web-1", "web-2", "db"]);
    let picked = select_hosts(&c, &["db".into(), "web-1".into(), "db".into()]).unwrap();
    assert_eq!(names(picked), ["db", "web-1"]);

    let err = select_hosts(&c, &["web-1".into(), "web-9".into()]).unwrap_err().to_string();
    assert_eq!(err, "host \"web-9\" not found in config (hosts: web-1, web-2, db)");
    let err = select_hosts(&c, &["x".into(), "y".into()]).unwrap_err().to_string();
    assert!(err.starts_with("hosts \"x\", \"y\" not found"), "{err}");
    assert_eq!(select_hosts(&config(&[]), &[]).unwrap_err().to_string(), "no hosts configured");
}

#[test]
fn one_line_per_outcome() {
    let c = config(&["web-1"]);
    let h = &c.hosts[0];
    assert_eq!(Report::new(h, Ok(Outcome::Authorized)).line(), "✓ authorized web-1 (deploy@10.0.0.1)");
    assert_eq!(Report::new(h, Ok(Outcome::Skipped)).line(), "web-1 (deploy@10.0.0.1) already authorized, skipping");
    let failed = Report::new(h, Err("connect: refused".into()));
    assert_eq!(failed.line(), "authorize failed for web-1 (deploy@10.0.0.1): connect: refused");
    let json = serde_json::to_value([&failed, &Report::new(h, Ok(Outcome::Skipped))]).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"host": "web-1", "target": "deploy@10.0.0.1", "outcome": "failed", "error": "connect: refused"},
            {"host": "web-1", "target": "deploy@10.0.0.1", "outcome": "skipped"},
        ])
    );
}

/// Runs the install script as the host would, with `shell`, in a home of its own.
fn install(shell: &[&str], home: &Path, key: &PublicKey) -> String {
    let command = install_command(key);
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .args(&command.args[..])
        .env("HOME", home)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{shell:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn shells() -> Vec<Vec<&'static str>> {
    let mut shells = vec![vec!["sh"]];
    if Path::new("/bin/busybox").exists() {
        shells.push(vec!["/bin/busybox", "sh"]);
    }
    shells
}

#[test]
fn the_install_script_appends_a_key_once_whatever_its_comment() {
    for shell in shells() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".ssh/authorized_keys");
        let read = || std::fs::read_to_string(&file).unwrap();

        assert_eq!(install(&shell, home.path(), &key("deploy@ci")), "added", "{shell:?}");
        assert_eq!(read(), format!("ssh-ed25519 {BLOB} deploy@ci\n"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&home.path().join(".ssh")), mode(&file)), (0o700, 0o600));

        // The same key again, under another comment: found, the file untouched.
        assert_eq!(install(&shell, home.path(), &key("renamed")), "found");
        assert_eq!(read(), format!("ssh-ed25519 {BLOB} deploy@ci\n"));

        // Found behind options (quoted spaces included) and in a last line without newline.
        let by_hand = format!("ssh-ed25519 {OTHER} other\nno-pty,command=\"echo a b\" ssh-ed25519 {BLOB}");
        std::fs::write(&file, &by_hand).unwrap();
        assert_eq!(install(&shell, home.path(), &key("x")), "found");
        assert_eq!(read(), by_hand);

        // A commented-out copy and a longer blob do not count; the missing newline is added.
        let text = format!("# ssh-ed25519 {BLOB} old\nssh-ed25519 {BLOB}x");
        std::fs::write(&file, &text).unwrap();
        assert_eq!(install(&shell, home.path(), &key("deploy@ci")), "added");
        assert_eq!(read(), format!("{text}\nssh-ed25519 {BLOB} deploy@ci\n"));
    }
}

#[test]
fn the_install_script_takes_the_key_as_data() {
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("pwned");
    let comment = format!("$(touch {m}) `touch {m}` ; touch {m} 'q' \"*\"", m = marker.display());
    let k = key(&comment);
    assert_eq!(install(&["sh"], home.path(), &k), "added");
    assert!(!marker.exists(), "the key's comment ran");
    assert_eq!(std::fs::read_to_string(home.path().join(".ssh/authorized_keys")).unwrap(), format!("{}\n", k.line));
}
