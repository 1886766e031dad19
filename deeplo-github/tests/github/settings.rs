//! `DEEPLO_GITHUB_*` settings read from an environment snapshot and real files.

use deeplo_core::config::EnvMap;
use deeplo_github::{GithubSettings, TokenSource, settings_from_env};

use crate::keys::keys;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

#[test]
fn nothing_set_means_nothing_enabled() {
    let s = GithubSettings::from_env(&EnvMap::default()).unwrap();
    assert!(s.webhook_secret.is_none() && s.tokens.is_none());
    assert_eq!(s.api_base, "https://api.github.com");
    assert!(s.client().unwrap().is_none());
    assert!(s.notifier().unwrap().is_none());
    assert_eq!(s.notifier_options().github_host, "github.com");
}

#[test]
fn the_go_tools_variables() {
    let f = Files::new();
    let secret = f.write("webhook", "whsec-value-123\n");
    let token = f.write("token", "ghp_tokenvalue456\n");
    let s = settings_from_env(&env(&[
        ("DEEPLO_GITHUB_WEBHOOK_SECRET_FILE", &secret),
        ("DEEPLO_GITHUB_TOKEN_FILE", &token),
        ("DEEPLO_GITHUB_ENVIRONMENT", "prod/"),
        ("DEEPLO_GITHUB_ENVIRONMENT_HOST", "true"),
        ("DEEPLO_PUBLIC_URL", "https://deeplo.example.com/"),
    ]))
    .unwrap();
    assert_eq!(s.webhook_secret.as_ref().unwrap().expose(), "whsec-value-123");
    assert!(matches!(&s.tokens, Some(TokenSource::Static(t)) if t.expose() == "ghp_tokenvalue456"));
    assert_eq!(s.environment_prefix.as_deref(), Some("prod"));
    assert!(s.environment_host);
    assert_eq!(s.public_url.as_deref(), Some("https://deeplo.example.com"));
    assert!(s.notifier().unwrap().is_some());
    let shown = format!("{s:?}");
    assert!(!shown.contains("whsec-value-123") && !shown.contains("ghp_tokenvalue456"), "{shown}");
}

#[test]
fn an_app_from_its_three_variables() {
    let f = Files::new();
    let key = f.write("app.pem", &keys().private_pkcs1);
    let s = GithubSettings::from_env(&env(&[
        ("DEEPLO_GITHUB_APP_ID", "4242"),
        ("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE", &key),
        ("DEEPLO_GITHUB_APP_INSTALLATION_ID", "77"),
        ("DEEPLO_GITHUB_API_URL", "https://api.ghe.example.com/api/v3/"),
    ]))
    .unwrap();
    let Some(TokenSource::App(app)) = &s.tokens else { panic!("an App") };
    assert_eq!((app.app_id(), app.installation_id()), ("4242", Some(77)));
    assert_eq!(s.api_base, "https://api.ghe.example.com/api/v3");
    assert_eq!(s.notifier_options().github_host, "ghe.example.com");
    let key_line = keys().private_pkcs1.lines().nth(1).unwrap();
    assert!(!format!("{s:?}").contains(key_line));
}

#[test]
fn every_problem_names_its_variable() {
    let f = Files::new();
    let empty = f.write("empty", "\n");
    let not_a_key = f.write("bad.pem", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n");
    let problems = GithubSettings::from_env(&env(&[
        ("DEEPLO_GITHUB_WEBHOOK_SECRET_FILE", "/nonexistent/secret"),
        ("DEEPLO_GITHUB_TOKEN_FILE", &empty),
        ("DEEPLO_GITHUB_ENVIRONMENT_HOST", "yes"),
        ("DEEPLO_PUBLIC_URL", "deeplo.example.com"),
        ("DEEPLO_GITHUB_APP_ID", "4242"),
        ("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE", &not_a_key),
        ("DEEPLO_GITHUB_APP_INSTALLATION_ID", "x"),
    ]))
    .unwrap_err();
    let vars: Vec<&str> = problems.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        vars,
        [
            "DEEPLO_GITHUB_WEBHOOK_SECRET_FILE",
            "DEEPLO_GITHUB_TOKEN_FILE",
            "DEEPLO_GITHUB_APP_INSTALLATION_ID",
            "DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE",
            "DEEPLO_GITHUB_ENVIRONMENT_HOST",
            "DEEPLO_PUBLIC_URL",
        ]
    );
    let one = settings_from_env(&env(&[("DEEPLO_GITHUB_APP_ID", "4242")])).unwrap_err();
    assert!(
        one.to_string().contains("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE: required when DEEPLO_GITHUB_APP_ID is set"),
        "{one}"
    );
    let token = f.write("token", "ghp_x123456");
    let key = f.write("app.pem", &keys().private_pkcs1);
    let both = settings_from_env(&env(&[
        ("DEEPLO_GITHUB_TOKEN_FILE", &token),
        ("DEEPLO_GITHUB_APP_ID", "4242"),
        ("DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE", &key),
    ]))
    .unwrap_err();
    assert!(both.to_string().contains("not both"), "{both}");
    assert!(!both.to_string().contains("ghp_x123456"));
}

#[test]
fn empty_values_mean_unset() {
    let s = GithubSettings::from_env(&env(&[("DEEPLO_GITHUB_TOKEN_FILE", ""), ("DEEPLO_GITHUB_ENVIRONMENT_HOST", "")]))
        .unwrap();
    assert!(s.tokens.is_none());
    assert!(!s.environment_host);
}
