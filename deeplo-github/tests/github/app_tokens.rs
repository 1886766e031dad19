//! The GitHub App flow: JWT, installation lookup, installation tokens and their cache.

use deeplo_core::{ErrorKind, Secret};
use deeplo_github::{AppCredentials, GithubClient, TokenSource};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::client::fast_retry;
use crate::fake::{APP_ID, FakeGithub, INSTALLATION_ID};
use crate::keys::keys;

pub fn app_client(fake: &FakeGithub, installation: Option<u64>) -> GithubClient {
    let creds = AppCredentials::from_pem(APP_ID, keys().private_pkcs1.as_bytes(), installation).unwrap();
    GithubClient::builder(TokenSource::App(creds)).api_base(&fake.url).retry(fast_retry()).build().unwrap()
}

fn claims_of(authorization: &str) -> Value {
    let jwt = authorization.strip_prefix("Bearer ").expect("a bearer JWT");
    let key = DecodingKey::from_rsa_pem(keys().public.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[APP_ID]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation).unwrap().claims
}

#[tokio::test]
async fn the_jwt_is_signed_with_the_app_key_and_follows_githubs_rules() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    let client = app_client(&fake, None);
    let before = jiff::Timestamp::now().as_second();
    let token = client.token_for("Acme/App").await.unwrap();
    let after = jiff::Timestamp::now().as_second();
    assert_eq!(token.expose(), "ghs_fakeinstallationtoken0001");

    let reqs = fake.requests();
    let paths: Vec<(&str, &str)> = reqs.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(paths, [("GET", "/repos/Acme/App/installation"), ("POST", "/app/installations/77/access_tokens")]);
    for r in &reqs {
        let claims = claims_of(r.authorization());
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert_eq!(claims["iss"], APP_ID);
        assert!(iat >= before - 60 && iat <= after - 60, "iat is a minute in the past");
        assert!(exp - iat <= 600, "at most ten minutes");
        assert!(exp > after);
    }
}

#[tokio::test]
async fn tokens_are_cached_and_installations_looked_up_once() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    let client = app_client(&fake, None);
    let first = client.token_for("acme/app").await.unwrap();
    let again = client.token_for("acme/app").await.unwrap();
    let other_repo = client.token_for("ACME/APP").await.unwrap();
    assert_eq!(first.expose(), again.expose());
    assert_eq!(first.expose(), other_repo.expose());
    assert_eq!(fake.requests().len(), 2, "one lookup, one token");
    assert_eq!(fake.issued_tokens().len(), 1);
}

#[tokio::test]
async fn tokens_within_a_minute_of_expiry_are_replaced() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    let client = app_client(&fake, None);
    fake.set_token_ttl(30);
    let a = client.token_for("acme/app").await.unwrap();
    let b = client.token_for("acme/app").await.unwrap();
    assert_ne!(a.expose(), b.expose(), "a token expiring in 30 s is not reused");
    fake.set_token_ttl(3600);
    let c = client.token_for("acme/app").await.unwrap();
    let d = client.token_for("acme/app").await.unwrap();
    assert_ne!(b.expose(), c.expose());
    assert_eq!(c.expose(), d.expose());
    let lookups = fake.requests().iter().filter(|r| r.path.ends_with("/installation")).count();
    assert_eq!(lookups, 1, "the installation id is cached");
    assert_eq!(fake.issued_tokens().len(), 3);
}

#[tokio::test]
async fn a_fixed_installation_skips_the_lookup_and_pkcs8_keys_work() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    let creds = AppCredentials::from_pem(APP_ID, keys().private_pkcs8.as_bytes(), Some(INSTALLATION_ID)).unwrap();
    let client = GithubClient::builder(TokenSource::App(creds)).api_base(&fake.url).build().unwrap();
    client.token_for("acme/app").await.unwrap();
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/app/installations/77/access_tokens"]);
}

#[tokio::test]
async fn an_app_not_installed_on_the_repo_is_named() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    fake.uninstall("acme/private");
    let client = app_client(&fake, None);
    let err = client.token_for("acme/private").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("not installed on acme/private"), "{err}");
}

#[tokio::test]
async fn a_jwt_from_another_key_is_refused_as_auth() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    // The fake knows only the test App key's public half; sign with another key.
    let other = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other-test-key.pem");
        let status = std::process::Command::new("openssl")
            .args(["genrsa", "-out", path.to_str().unwrap(), "2048"])
            .output()
            .unwrap();
        assert!(status.status.success());
        std::fs::read(&path).unwrap()
    };
    let creds = AppCredentials::from_pem(APP_ID, &other, None).unwrap();
    let client = GithubClient::builder(TokenSource::App(creds)).api_base(&fake.url).build().unwrap();
    let err = client.token_for("acme/app").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("GET /repos/acme/app/installation: HTTP 401"), "{err}");
}

#[tokio::test]
async fn nothing_secret_is_shown_in_debug_output() {
    let fake = FakeGithub::start(Some(&keys().public)).await;
    let client = app_client(&fake, None);
    let token = client.token_for("acme/app").await.unwrap();
    let creds = AppCredentials::from_pem(APP_ID, keys().private_pkcs1.as_bytes(), None).unwrap();
    let jwt = creds.jwt(jiff::Timestamp::now()).unwrap();
    let key_line = keys().private_pkcs1.lines().nth(1).unwrap();
    for shown in [
        format!("{client:?}"),
        format!("{creds:?}"),
        format!("{token:?} {token}"),
        format!("{jwt:?} {jwt}"),
        format!("{:?}", TokenSource::Static(Secret::new("ghp_static_never_shown"))),
    ] {
        assert!(!shown.contains(token.expose()), "{shown}");
        assert!(!shown.contains(jwt.expose()), "{shown}");
        assert!(!shown.contains(key_line), "{shown}");
        assert!(!shown.contains("ghp_static_never_shown"), "{shown}");
    }
}
