//! The REST client against the fake GitHub: headers, retries, errors.

use std::time::Duration;

use deeplo_core::{ErrorKind, Secret};
use deeplo_github::client::{CommitState, NewCommitStatus};
use deeplo_github::{GithubClient, RetryPolicy, TokenSource};
use serde_json::json;

use crate::fake::{FakeGithub, STATIC_TOKEN};

const SHA: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy { attempts: 3, base_delay: Duration::from_millis(5) }
}

pub fn static_client(fake: &FakeGithub, token: &str) -> GithubClient {
    GithubClient::builder(TokenSource::Static(Secret::new(token)))
        .api_base(format!("{}/", fake.url))
        .retry(fast_retry())
        .build()
        .unwrap()
}

fn status() -> NewCommitStatus {
    NewCommitStatus {
        state: CommitState::Success,
        context: "deeplo/site".into(),
        description: "ok".into(),
        target_url: None,
    }
}

#[tokio::test]
async fn requests_carry_githubs_headers() {
    let fake = FakeGithub::start(None).await;
    let client = static_client(&fake, STATIC_TOKEN);
    client.create_commit_status("acme/app", SHA, &status()).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/repos/acme/app/statuses/abcdefabcdefabcdefabcdefabcdefabcdefabcd")
    );
    assert_eq!(r.authorization(), format!("Bearer {STATIC_TOKEN}"));
    assert_eq!(r.headers["accept"], "application/vnd.github+json");
    assert_eq!(r.headers["x-github-api-version"], "2022-11-28");
    assert!(r.headers["user-agent"].to_str().unwrap().starts_with("deeplo/"));
    assert_eq!(r.body(), &json!({"state": "success", "context": "deeplo/site", "description": "ok"}));
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let fake = FakeGithub::start(None).await;
    let client = static_client(&fake, STATIC_TOKEN);
    fake.fail_next(2, 502);
    client.create_commit_status("acme/app", SHA, &status()).await.unwrap();
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let fake = FakeGithub::start(None).await;
    let client = static_client(&fake, STATIC_TOKEN);
    fake.fail_next(5, 503);
    let err = client.create_commit_status("acme/app", SHA, &status()).await.unwrap_err();
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(err.is_temporary());
    let text = err.to_string();
    assert!(text.contains(&format!("POST /repos/acme/app/statuses/{SHA}: HTTP 503: Server Error")), "{text}");
    assert!(text.contains("after 3 attempts"), "{text}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = FakeGithub::start(None).await;
    let client = static_client(&fake, STATIC_TOKEN);
    fake.fail_next_with(1, 422, json!({"message": "Validation Failed"}));
    let err = client.create_commit_status("acme/app", SHA, &status()).await.unwrap_err();
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.is_temporary());
    assert!(err.to_string().contains("HTTP 422: Validation Failed"), "{err}");
}

#[tokio::test]
async fn a_wrong_token_is_an_auth_error_that_never_shows_the_token() {
    let fake = FakeGithub::start(None).await;
    let token = "ghp_wrongtoken_never_printed";
    let client = static_client(&fake, token);
    let err = client.create_commit_status("acme/app", SHA, &status()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("HTTP 401: Bad credentials"), "{err}");
    // Even a server that echoes the token does not get it into the error.
    fake.fail_next_with(1, 401, json!({"message": format!("Bad credentials: {token}")}));
    let err = client.create_commit_status("acme/app", SHA, &status()).await.unwrap_err();
    for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains(token), "{shown}");
    }
    assert!(err.to_string().contains("Bad credentials: ***"), "{err}");
}

#[tokio::test]
async fn network_failures_are_retried_and_named() {
    // A port nothing listens on: bind, note the address, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = GithubClient::builder(TokenSource::Static(Secret::new(STATIC_TOKEN)))
        .api_base(format!("http://{addr}"))
        .retry(fast_retry())
        .build()
        .unwrap();
    let err = client.create_commit_status("acme/app", SHA, &status()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    let text = err.to_string();
    assert!(text.contains("POST /repos/acme/app/statuses/") && text.contains("after 3 attempts"), "{text}");
    assert!(!text.contains(STATIC_TOKEN));
}

#[tokio::test]
async fn bad_names_and_urls_are_refused_before_any_request() {
    let fake = FakeGithub::start(None).await;
    let client = static_client(&fake, STATIC_TOKEN);
    for name in ["acme", "acme/app/x", "../app", "acme/a b", "acme/"] {
        let err = client.create_commit_status(name, SHA, &status()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
    }
    let err = client.create_commit_status("acme/app", "../x", &status()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(fake.requests().is_empty());
    let err = GithubClient::builder(TokenSource::Static(Secret::new("x"))).api_base("ftp://x").build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
