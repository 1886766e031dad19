use super::*;

const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBs2yUTrvu9dt1dhJjM2I4ONtnshfl1q/yZ6NbZ4Hm9Z";

fn file(contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_hosts");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

#[test]
fn blob_parsing_and_fingerprint_match_ssh_keygen() {
    let key = HostKey::from_openssh(ED).unwrap();
    assert_eq!(key.algorithm, "ssh-ed25519");
    let again = HostKey::from_blob(key.blob.clone()).unwrap();
    assert_eq!(again, key);
    // `ssh-keygen -lf` on this key prints this fingerprint.
    let dir = tempfile::tempdir().unwrap();
    let pub_path = dir.path().join("k.pub");
    std::fs::write(&pub_path, format!("{ED} c\n")).unwrap();
    let out = std::process::Command::new("ssh-keygen").arg("-lf").arg(&pub_path).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(&key.fingerprint()), "{printed} vs {}", key.fingerprint());
}

#[test]
fn known_plain_bracketed_and_wildcard_entries() {
    let key = HostKey::from_openssh(ED).unwrap();
    let (_d, path) = file(&format!("# comment\nexample.org {ED}\n[10.0.0.1]:2222 {ED}\n*.lan,!bad.lan {ED}\n"));
    let kh = KnownHosts::new(&path, HostKeyPolicy::Strict);
    assert_eq!(kh.verify("example.org", 22, &key).unwrap(), Verdict::Known);
    assert_eq!(kh.verify("EXAMPLE.org", 22, &key).unwrap(), Verdict::Known);
    assert_eq!(kh.verify("10.0.0.1", 2222, &key).unwrap(), Verdict::Known);
    assert_eq!(kh.verify("web.lan", 22, &key).unwrap(), Verdict::Known);
    // Same host on another port is another entry: unknown under strict.
    assert_eq!(kh.verify("example.org", 2200, &key).unwrap_err().kind(), ErrorKind::HostKey);
    assert_eq!(kh.verify("bad.lan", 22, &key).unwrap_err().kind(), ErrorKind::HostKey);
}

#[test]
fn hashed_entries_from_ssh_keygen() {
    let key = HostKey::from_openssh(ED).unwrap();
    let (_d, path) = file(&format!("[127.0.0.1]:2022 {ED}\n"));
    let status = std::process::Command::new("ssh-keygen").arg("-H").arg("-f").arg(&path).output().unwrap();
    assert!(status.status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let kh = KnownHosts::new(&path, HostKeyPolicy::Strict);
    assert_eq!(kh.verify("127.0.0.1", 2022, &key).unwrap(), Verdict::Known);
    assert!(kh.verify("127.0.0.2", 2022, &key).is_err());
}

#[test]
fn changed_key_is_refused_with_fingerprint_and_file() {
    let offered = HostKey::from_openssh(ED2).unwrap();
    let (_d, path) = file(&format!("[h]:2222 {ED}\n"));
    for policy in [HostKeyPolicy::AcceptNew, HostKeyPolicy::Strict] {
        let err = KnownHosts::new(&path, policy).verify("h", 2222, &offered).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostKey);
        let msg = err.to_string();
        assert!(msg.contains("[h]:2222"), "{msg}");
        assert!(msg.contains(&offered.fingerprint()), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
    // Nothing was learned over the recorded key.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("[h]:2222 {ED}\n"));
}

#[test]
fn accept_new_learns_once_and_strict_refuses() {
    let key = HostKey::from_openssh(ED).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/known_hosts");
    let strict = KnownHosts::new(&path, HostKeyPolicy::Strict);
    let err = strict.verify("new", 22, &key).unwrap_err();
    assert!(err.to_string().contains("strict"), "{err}");
    let kh = KnownHosts::new(&path, HostKeyPolicy::AcceptNew);
    assert_eq!(kh.verify("new", 2222, &key).unwrap(), Verdict::Learned);
    assert_eq!(kh.verify("new", 2222, &key).unwrap(), Verdict::Known);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("[new]:2222 {ED}\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(kh.algorithms("new", 2222).unwrap(), ["ssh-ed25519"]);
    // Learned keys are then enforced.
    let other = HostKey::from_openssh(ED2).unwrap();
    assert!(kh.verify("new", 2222, &other).is_err());
}

#[test]
fn revoked_key_is_refused() {
    let key = HostKey::from_openssh(ED).unwrap();
    let (_d, path) = file(&format!("@revoked * {ED}\n"));
    let err = KnownHosts::new(&path, HostKeyPolicy::AcceptNew).verify("any", 22, &key).unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
}
