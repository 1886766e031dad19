//! The test bed's sshd answers the real OpenSSH client with the generated keys.

use deeplo_testbed::Sshd;

#[test]
fn openssh_client_logs_in_with_the_generated_key() {
    let sshd = Sshd::start().expect("start sshd");
    let kh = sshd.dir().join("client_known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line().unwrap() + "\n").unwrap();
    let out = std::process::Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("-i")
        .arg(sshd.client_key())
        .arg("-p")
        .arg(sshd.port().to_string())
        .arg(format!("{}@127.0.0.1", sshd.user()))
        .arg("echo hello")
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh failed: {}\n{}", String::from_utf8_lossy(&out.stderr), sshd.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
}
