//! The webhook route served on 127.0.0.1 and driven over HTTP, with signatures computed
//! here from the secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deeplo_core::Secret;
use deeplo_core::config::{self, Config, EnvMap};
use deeplo_core::plan::ChangedPaths;
use deeplo_github::{GithubPush, PushSink, SinkBusy, WebhookState, router};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

const SECRET: &str = "webhook-secret-for-tests";
const AFTER: &str = "1111111111111111111111111111111111111111";
const BEFORE: &str = "2222222222222222222222222222222222222222";

const CONFIG: &str = r#"
hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]
repos:
  - {name: app, url: "git@github.com:Acme/App.git", branch: main, trigger_mode: webhook}
  - {name: app-mirror, url: "https://github.com/acme/app", branch: main, trigger_mode: hybrid}
  - {name: app-dev, url: "https://github.com/acme/app.git", branch: dev, trigger_mode: webhook}
  - {name: polled, url: /srv/git/acme/polled, branch: main, trigger_mode: poll}
projects: [{name: site, repo: app, repo_subdir: deploy, targets: [web-1]}]
"#;

#[derive(Debug)]
struct Sink {
    config: Arc<Config>,
    busy: AtomicBool,
    pushes: Mutex<Vec<GithubPush>>,
}

#[async_trait]
impl PushSink for Sink {
    fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    async fn submit(&self, pushes: Vec<GithubPush>) -> Result<(), SinkBusy> {
        if self.busy.load(Ordering::SeqCst) {
            return Err(SinkBusy);
        }
        self.pushes.lock().unwrap().extend(pushes);
        Ok(())
    }
}

struct Server {
    url: String,
    sink: Arc<Sink>,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Self {
        let config = config::parse(CONFIG, &EnvMap::default()).expect("valid config").config;
        let sink =
            Arc::new(Sink { config: Arc::new(config), busy: AtomicBool::new(false), pushes: Mutex::new(Vec::new()) });
        let app = router(WebhookState::new(Secret::new(SECRET), sink.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/github", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, sink, http: reqwest::Client::new(), task }
    }

    fn pushes(&self) -> Vec<GithubPush> {
        std::mem::take(&mut *self.sink.pushes.lock().unwrap())
    }

    /// A correctly signed delivery.
    async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, String) {
        self.send(event, delivery, body, Some(&signature(SECRET, body))).await
    }

    async fn send(&self, event: &str, delivery: &str, body: &[u8], sig: Option<&str>) -> (u16, String) {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .body(body.to_vec());
        if let Some(sig) = sig {
            request = request.header("x-hub-signature-256", sig);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push(git_ref: &str, commits: Value) -> Value {
    json!({
        "ref": git_ref,
        "before": BEFORE,
        "after": AFTER,
        "created": false,
        "deleted": false,
        "forced": false,
        "repository": {"full_name": "acme/app", "name": "app"},
        "pusher": {"name": "someone"},
        "commits": commits,
    })
}

fn commit(added: &[&str], modified: &[&str], removed: &[&str]) -> Value {
    json!({"id": AFTER, "distinct": true, "added": added, "modified": modified, "removed": removed})
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[tokio::test]
async fn a_push_is_accepted_for_every_matching_entry_with_the_union_of_paths() {
    let s = Server::start().await;
    let body = bytes(&push(
        "refs/heads/main",
        json!([
            commit(&["deploy/new.yml"], &["deploy/compose.yml"], &[]),
            commit(&[], &["deploy/compose.yml", "README.md"], &["old.txt"]),
        ]),
    ));
    assert_eq!(s.deliver("push", "d-1", &body).await.0, 202);
    let pushes = s.pushes();
    let names: Vec<&str> = pushes.iter().map(|p| p.repo.as_str()).collect();
    assert_eq!(names, ["app", "app-mirror"], "same URL and branch: one push per entry");
    let p = &pushes[0];
    assert_eq!(p.branch, "main");
    assert_eq!(p.full_name, "acme/app");
    assert_eq!(p.after.as_str(), AFTER);
    assert_eq!(p.before.as_ref().map(|c| c.as_str()), Some(BEFORE));
    let expected: Vec<String> =
        ["README.md", "deploy/compose.yml", "deploy/new.yml", "old.txt"].map(String::from).to_vec();
    assert_eq!(p.changed, ChangedPaths::Known(expected));
    let event = p.to_push_event();
    assert_eq!(event.repo.as_str(), "app");
    assert_eq!(event.changed, p.changed);
}

#[tokio::test]
async fn signatures_are_required_and_checked() {
    let s = Server::start().await;
    let body = bytes(&push("refs/heads/main", json!([])));
    let (status, text) = s.send("push", "d-1", &body, None).await;
    assert_eq!((status, text.trim()), (401, "missing X-Hub-Signature-256 header"));
    let wrong = signature("another-secret", &body);
    assert_eq!(s.send("push", "d-2", &body, Some(&wrong)).await.0, 401);
    assert_eq!(s.send("push", "d-3", &body, Some("sha256=nothex")).await.0, 401);
    assert_eq!(s.send("push", "d-4", &body, Some(&wrong.replace("sha256", "sha1"))).await.0, 401);
    // Even events that would be ignored are refused without a valid signature.
    assert_eq!(s.send("ping", "d-5", b"{}", None).await.0, 401);
    assert!(s.pushes().is_empty());
}

#[tokio::test]
async fn other_methods_events_and_ignored_pushes() {
    let s = Server::start().await;
    let get = s.http.get(&s.url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(s.deliver("ping", "p-1", b"{\"zen\":\"Keep it simple.\"}").await.0, 204);
    assert_eq!(s.deliver("issues", "i-1", b"{}").await.0, 204);
    assert_eq!(s.deliver("pull_request", "i-2", b"not even json").await.0, 204);

    let ignored = [
        ("other branch", push("refs/heads/feature", json!([commit(&["a"], &[], &[])]))),
        ("tag", push("refs/tags/v1.0.0", json!([]))),
        ("unknown repo", {
            let mut p = push("refs/heads/main", json!([commit(&["a"], &[], &[])]));
            p["repository"]["full_name"] = json!("acme/other");
            p
        }),
        ("deleted", {
            let mut p = push("refs/heads/main", json!([]));
            p["deleted"] = json!(true);
            p
        }),
        ("zero after", {
            let mut p = push("refs/heads/main", json!([]));
            p["after"] = json!("0".repeat(40));
            p
        }),
    ];
    for (i, (what, payload)) in ignored.iter().enumerate() {
        let (status, _) = s.deliver("push", &format!("x-{i}"), &bytes(payload)).await;
        assert_eq!(status, 204, "{what}");
    }
    // A repo entry with trigger_mode: poll takes no webhooks.
    let mut polled = push("refs/heads/main", json!([commit(&["a"], &[], &[])]));
    polled["repository"]["full_name"] = json!("acme/polled");
    assert_eq!(s.deliver("push", "poll-1", &bytes(&polled)).await.0, 204);
    assert!(s.pushes().is_empty());

    // The dev branch of the same repository is its own entry.
    let dev = push("refs/heads/dev", json!([commit(&["a"], &[], &[])]));
    assert_eq!(s.deliver("push", "dev-1", &bytes(&dev)).await.0, 202);
    let names: Vec<String> = s.pushes().into_iter().map(|p| p.repo.to_string()).collect();
    assert_eq!(names, ["app-dev"]);
}

#[tokio::test]
async fn malformed_payloads_are_refused_with_the_reason() {
    let s = Server::start().await;
    let (status, text) = s.deliver("push", "m-1", b"{not json").await;
    assert_eq!(status, 400);
    assert!(text.starts_with("malformed push payload"), "{text}");
    let mut no_repo = push("refs/heads/main", json!([]));
    no_repo.as_object_mut().unwrap().remove("repository");
    let (status, text) = s.deliver("push", "m-2", &bytes(&no_repo)).await;
    assert_eq!(status, 400);
    assert!(text.contains("missing field `repository`"), "{text}");
    let mut bad_after = push("refs/heads/main", json!([]));
    bad_after["after"] = json!("main");
    let (status, text) = s.deliver("push", "m-3", &bytes(&bad_after)).await;
    assert_eq!(status, 400);
    assert!(text.contains("\"after\" is not a commit id"), "{text}");
}

#[tokio::test]
async fn bodies_over_ten_mebibytes_are_refused() {
    let s = Server::start().await;
    let body = vec![b' '; 10 * 1024 * 1024 + 1];
    let (status, _) = s.deliver("push", "big-1", &body).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn repeated_deliveries_are_answered_once() {
    let s = Server::start().await;
    let body = bytes(&push("refs/heads/main", json!([commit(&["deploy/a"], &[], &[])])));
    assert_eq!(s.deliver("push", "same-id", &body).await.0, 202);
    assert_eq!(s.deliver("push", "same-id", &body).await.0, 204);
    assert_eq!(s.pushes().len(), 2, "two entries from the first delivery only");
    assert_eq!(s.deliver("push", "other-id", &body).await.0, 202);
    assert_eq!(s.pushes().len(), 2);
}

#[tokio::test]
async fn only_the_last_thousand_deliveries_are_remembered() {
    let s = Server::start().await;
    let body = bytes(&push("refs/heads/feature", json!([])));
    assert_eq!(s.deliver("push", "first", &body).await.0, 204);
    assert_eq!(s.deliver("push", "first", &body).await.0, 204);
    for i in 0..deeplo_github::webhook::REMEMBERED_DELIVERIES {
        s.deliver("push", &format!("fill-{i}"), &body).await;
    }
    // "first" was pushed out; the answer is the same 204, but now because of the branch,
    // so check with a push that is accepted instead.
    let main = bytes(&push("refs/heads/main", json!([commit(&["a"], &[], &[])])));
    assert_eq!(s.deliver("push", "fill-999", &main).await.0, 204, "still remembered");
    assert_eq!(s.deliver("push", "first", &main).await.0, 202, "forgotten");
}

#[tokio::test]
async fn a_busy_sink_gets_503_and_the_delivery_is_not_remembered() {
    let s = Server::start().await;
    let body = bytes(&push("refs/heads/main", json!([commit(&["deploy/a"], &[], &[])])));
    s.sink.busy.store(true, Ordering::SeqCst);
    let (status, text) = s.deliver("push", "busy-1", &body).await;
    assert_eq!(status, 503);
    assert!(text.contains("queue is full"), "{text}");
    s.sink.busy.store(false, Ordering::SeqCst);
    assert_eq!(s.deliver("push", "busy-1", &body).await.0, 202, "the redelivery is processed");
    assert_eq!(s.pushes().len(), 2);
    assert_eq!(s.deliver("push", "busy-1", &body).await.0, 204);
}

#[tokio::test]
async fn paths_are_unknown_when_github_could_not_list_them() {
    let s = Server::start().await;
    let cases = [
        ("no commits key", {
            let mut p = push("refs/heads/main", json!([]));
            p.as_object_mut().unwrap().remove("commits");
            p
        }),
        ("null commits", push("refs/heads/main", Value::Null)),
        ("2048 commits", push("refs/heads/main", Value::Array(vec![commit(&["a"], &[], &[]); 2048]))),
        ("3000 files in a commit", {
            let files: Vec<String> = (0..3000).map(|i| format!("f{i}")).collect();
            let refs: Vec<&str> = files.iter().map(String::as_str).collect();
            push("refs/heads/main", json!([commit(&refs, &[], &[])]))
        }),
        ("forced", {
            let mut p = push("refs/heads/main", json!([commit(&["a"], &[], &[])]));
            p["forced"] = json!(true);
            p
        }),
        ("created", {
            let mut p = push("refs/heads/main", json!([commit(&["a"], &[], &[])]));
            p["created"] = json!(true);
            p["before"] = json!("0".repeat(40));
            p
        }),
    ];
    for (i, (what, payload)) in cases.iter().enumerate() {
        assert_eq!(s.deliver("push", &format!("u-{i}"), &bytes(payload)).await.0, 202, "{what}");
        let pushes = s.pushes();
        assert_eq!(pushes[0].changed, ChangedPaths::Unknown, "{what}");
    }
    // A created branch has no previous head.
    let mut created = push("refs/heads/main", json!([]));
    created["created"] = json!(true);
    created["before"] = json!("0".repeat(40));
    s.deliver("push", "c-1", &bytes(&created)).await;
    assert_eq!(s.pushes()[0].before, None);
}

#[tokio::test]
async fn the_route_is_only_served_with_a_secret() {
    let config = Arc::new(config::parse(CONFIG, &EnvMap::default()).unwrap().config);
    let sink = Arc::new(Sink { config, busy: AtomicBool::new(false), pushes: Mutex::new(Vec::new()) });
    assert!(deeplo_github::optional_router(None, sink.clone()).is_none());
    assert!(deeplo_github::optional_router(Some(Secret::new(SECRET)), sink.clone()).is_some());
    let state = WebhookState::new(Secret::new(SECRET), sink);
    assert!(!format!("{state:?}").contains(SECRET));
}
