//! A throwaway RSA key pair for the GitHub App tests, made once per test run with the
//! `openssl` command-line tool (never committed, never used anywhere else).

use std::process::Command;
use std::sync::OnceLock;

pub struct TestKeys {
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), the form GitHub hands out.
    pub private_pkcs1: String,
    /// PKCS#8 (`BEGIN PRIVATE KEY`).
    pub private_pkcs8: String,
    /// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`).
    pub public: String,
}

pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pkcs1 = dir.path().join("test-app-key.pem");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("the openssl command-line tool is needed to make a test key");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let pkcs1_path = pkcs1.to_str().unwrap();
        run(&["genrsa", "-traditional", "-out", pkcs1_path, "2048"]);
        let private_pkcs1 = std::fs::read_to_string(&pkcs1).unwrap();
        assert!(private_pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let private_pkcs8 = run(&["pkcs8", "-topk8", "-nocrypt", "-in", pkcs1_path]);
        let public = run(&["rsa", "-in", pkcs1_path, "-pubout"]);
        TestKeys { private_pkcs1, private_pkcs8, public }
    })
}
