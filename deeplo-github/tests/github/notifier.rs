//! The notifier's requests for each sequence of deploy events, as the fake GitHub saw them.

use deeplo_core::model::{CommitId, Deployment, HostName, ProjectName, RollbackRecord, Trigger};
use deeplo_core::{DeployEvent, DeployEventKind, ErrorKind, Notifier};
use deeplo_github::{GithubNotifier, NotifierOptions};
use jiff::Timestamp;
use serde_json::json;

use crate::client::static_client;
use crate::fake::{FakeGithub, Recorded, STATIC_TOKEN};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO_URL: &str = "git@github.com:acme/app.git";

fn notifier(fake: &FakeGithub, options: NotifierOptions) -> GithubNotifier {
    GithubNotifier::new(static_client(fake, STATIC_TOKEN), options)
}

fn options() -> NotifierOptions {
    NotifierOptions {
        environment_prefix: Some("prod".into()),
        environment_host: false,
        public_url: Some("https://deeplo.example.com/".into()),
        ..NotifierOptions::default()
    }
}

fn deployment() -> Deployment {
    let t = Timestamp::from_second(1_700_000_000).unwrap();
    let mut d = Deployment::new(
        ProjectName::new("site").unwrap(),
        HostName::new("web-1").unwrap(),
        CommitId::new(SHA).unwrap(),
        "main",
        Trigger::Webhook,
        t,
    );
    d.start(t).unwrap();
    d
}

fn event(kind: DeployEventKind, d: &Deployment) -> DeployEvent {
    DeployEvent { kind, deployment: d.clone(), repo_url: REPO_URL.into() }
}

/// `started` run to its end by `kind`.
fn finished(started: &Deployment, kind: DeployEventKind) -> Deployment {
    let mut d = started.clone();
    let t = Timestamp::from_second(1_700_000_042).unwrap();
    match kind {
        DeployEventKind::Succeeded => d.succeed(t).unwrap(),
        DeployEventKind::Failed => d.fail(t, "health gate: /healthz answered 500").unwrap(),
        DeployEventKind::RolledBack => {
            d.rollback =
                Some(RollbackRecord { to: CommitId::new("f".repeat(40)).unwrap(), succeeded: true, error: None });
            d.fail(t, "health gate: /healthz answered 500; rolled back to ffffffff").unwrap();
        }
        DeployEventKind::Started => {}
        other => panic!("no test record for a {other} event"),
    }
    d
}

fn calls(reqs: &[Recorded]) -> Vec<String> {
    reqs.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

#[tokio::test]
async fn started_then_succeeded() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, options());
    let d = deployment();
    n.notify(&event(DeployEventKind::Started, &d)).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(
        calls(&reqs),
        [
            "POST /repos/acme/app/deployments",
            "POST /repos/acme/app/deployments/1000/statuses",
            format!("POST /repos/acme/app/statuses/{SHA}").as_str(),
        ]
    );
    let created = reqs[0].body();
    assert_eq!(created["ref"], SHA);
    assert_eq!(created["environment"], "prod/site");
    assert_eq!(created["auto_merge"], false);
    assert_eq!(created["required_contexts"], json!([]));
    assert_eq!(created["transient_environment"], false);
    assert_eq!(created["payload"]["deeplo"]["run"], d.id.as_str());
    let log_url = format!("https://deeplo.example.com/runs/{}/logs", d.id);
    assert_eq!(
        reqs[1].body(),
        &json!({"state": "in_progress", "description": "Deploying 01234567 to web-1", "log_url": log_url, "auto_inactive": true})
    );
    assert_eq!(
        reqs[2].body(),
        &json!({"state": "pending", "context": "deeplo/prod/site", "description": "Deploying 01234567 to web-1", "target_url": log_url})
    );
    for r in &reqs {
        assert_eq!(r.authorization(), format!("Bearer {STATIC_TOKEN}"));
    }

    fake.clear();
    let done = finished(&d, DeployEventKind::Succeeded);
    n.notify(&event(DeployEventKind::Succeeded, &done)).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(
        calls(&reqs),
        ["POST /repos/acme/app/deployments/1000/statuses", format!("POST /repos/acme/app/statuses/{SHA}").as_str(),],
        "the deployment made on start is reused"
    );
    assert_eq!(reqs[0].body()["state"], "success");
    assert_eq!(reqs[0].body()["description"], "Deployed 01234567 to web-1 in 42s");
    assert_eq!(reqs[1].body()["state"], "success");
    assert_eq!(reqs[1].body()["context"], "deeplo/prod/site");
}

#[tokio::test]
async fn started_then_failed() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, NotifierOptions::default());
    let d = deployment();
    n.notify(&event(DeployEventKind::Started, &d)).await.unwrap();
    fake.clear();
    n.notify(&event(DeployEventKind::Failed, &finished(&d, DeployEventKind::Failed))).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(calls(&reqs).len(), 2);
    let description = "Deploy to web-1 failed: health gate: /healthz answered 500";
    assert_eq!(
        reqs[0].body(),
        &json!({"state": "failure", "description": description, "auto_inactive": true}),
        "no log_url without a public URL"
    );
    assert_eq!(reqs[1].body(), &json!({"state": "failure", "context": "deeplo/site", "description": description}));
}

#[tokio::test]
async fn rolled_back_is_a_failure_that_says_so() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, NotifierOptions { environment_host: true, ..options() });
    let d = deployment();
    n.notify(&event(DeployEventKind::Started, &d)).await.unwrap();
    assert_eq!(fake.requests()[0].body()["environment"], "prod/web-1/site");
    fake.clear();
    n.notify(&event(DeployEventKind::RolledBack, &finished(&d, DeployEventKind::RolledBack))).await.unwrap();
    assert_eq!(calls(&fake.requests()).len(), 2);
    let reqs = fake.requests();
    for r in &reqs {
        assert_eq!(r.body()["state"], "failure");
        let description = r.body()["description"].as_str().unwrap();
        assert!(description.starts_with("Deploy to web-1 failed and was rolled back to ffffffff"), "{description}");
    }
    assert_eq!(reqs[1].body()["context"], "deeplo/prod/web-1/site");
}

#[tokio::test]
async fn a_final_event_without_started_creates_the_deployment() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, options());
    let d = finished(&deployment(), DeployEventKind::Succeeded);
    n.notify(&event(DeployEventKind::Succeeded, &d)).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(
        calls(&reqs),
        [
            "POST /repos/acme/app/deployments",
            "POST /repos/acme/app/deployments/1000/statuses",
            format!("POST /repos/acme/app/statuses/{SHA}").as_str(),
        ]
    );
    assert_eq!(reqs[1].body()["state"], "success");
}

#[tokio::test]
async fn long_descriptions_are_cut_to_140_characters() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, options());
    let mut d = deployment();
    d.fail(Timestamp::now(), format!("compose up failed: {}", "ünïcödé ".repeat(40))).unwrap();
    // The fake refuses descriptions over 140 characters with 422, as GitHub does.
    n.notify(&event(DeployEventKind::Failed, &d)).await.unwrap();
    for r in fake.requests().iter().skip(1) {
        let description = r.body()["description"].as_str().unwrap();
        assert_eq!(description.chars().count(), 140, "{description}");
        assert!(description.ends_with('…'));
    }
}

#[tokio::test]
async fn repositories_not_on_github_are_skipped() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, options());
    for url in ["/srv/git/acme/app.git", "file:///srv/git/acme/app", "https://gitlab.com/acme/app.git"] {
        let e = DeployEvent { repo_url: url.into(), ..event(DeployEventKind::Started, &deployment()) };
        n.notify(&e).await.unwrap();
    }
    assert!(fake.requests().is_empty());
    assert_eq!(n.name(), "github");
}

#[tokio::test]
async fn a_failed_deployment_still_sets_the_commit_status_and_returns_the_error() {
    let fake = FakeGithub::start(None).await;
    let n = notifier(&fake, options());
    fake.fail_next_with(1, 403, json!({"message": "Resource not accessible by integration"}));
    let err = n.notify(&event(DeployEventKind::Started, &deployment())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    let text = err.to_string();
    assert!(text.contains("POST /repos/acme/app/deployments: HTTP 403: Resource not accessible"), "{text}");
    assert!(text.contains("project \"site\"") && text.contains("host \"web-1\""), "{text}");
    assert!(!text.contains(STATIC_TOKEN));
    let reqs = fake.requests();
    assert_eq!(calls(&reqs).len(), 2, "deployment refused, commit status still sent");
    assert_eq!(reqs[1].body()["state"], "pending");
}

#[tokio::test]
async fn the_app_token_is_used_for_reports() {
    let fake = FakeGithub::start(Some(&crate::keys::keys().public)).await;
    let client = crate::app_tokens::app_client(&fake, None);
    let n = GithubNotifier::new(client, options());
    n.notify(&event(DeployEventKind::Started, &deployment())).await.unwrap();
    let reqs = fake.requests();
    let reports: Vec<&Recorded> =
        reqs.iter().filter(|r| r.path.starts_with("/repos/acme/app/") && !r.path.ends_with("/installation")).collect();
    assert_eq!(reports.len(), 3);
    for r in reports {
        assert_eq!(r.authorization(), "Bearer ghs_fakeinstallationtoken0001");
    }
    assert_eq!(fake.issued_tokens().len(), 1, "one token for all three calls");
}
