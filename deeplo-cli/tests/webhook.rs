//! The GitHub webhook of a running daemon: every answer the route gives, and a flood of
//! deliveries in which each distinct commit is planned exactly once and none is lost.

use std::time::Duration;

use bytes::Bytes;
use deeplo_core::Secret;
use deeplo_testbed::daemon::{DaemonProcess, wait_for};
use deeplo_testbed::scenario::Scenario;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_deeplo");
const SECRET: &str = "webhook secret for tests";

struct Hook {
    port: u16,
}

impl Hook {
    /// One delivery: `(status, body)`. `sign: None` sends no signature header.
    async fn send(&self, event: &str, delivery: &str, body: &[u8], sign: Option<&str>) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method("POST")
            .uri("/webhooks/github")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery);
        if let Some(secret) = sign {
            req = req.header("x-hub-signature-256", deeplo_github::webhook::sign(&Secret::new(secret), body));
        }
        let resp = tx.send_request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn webhook_config(s: &Scenario) -> String {
    s.config_yaml("").replace("    branch: main\n", "    branch: main\n    trigger_mode: webhook\n")
}

fn start(s: &Scenario) -> DaemonProcess {
    let secret_file = s.tmp.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let secret_file = secret_file.display().to_string();
    DaemonProcess::start(BIN.as_ref(), s, &webhook_config(s), &[("DEEPLO_GITHUB_WEBHOOK_SECRET_FILE", &secret_file)])
        .unwrap()
}

/// The repository's "full name" as the route matches it: the last two segments of its path.
fn full_name(s: &Scenario) -> String {
    let path = s.repo.path();
    format!(
        "{}/{}",
        path.parent().unwrap().file_name().unwrap().to_string_lossy(),
        path.file_name().unwrap().to_string_lossy()
    )
}

fn push(s: &Scenario, before: &str, after: &str, modified: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "deleted": false,
        "forced": false,
        "repository": { "full_name": full_name(s) },
        "commits": [{ "id": after, "added": [], "removed": [], "modified": modified }],
    }))
    .unwrap()
}

fn history(d: &DaemonProcess) -> Vec<Value> {
    let out = d.cli(&["deploys", "history", "--limit", "500", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_the_webhook_route() {
    let s = Scenario::new("hook-codes").unwrap();
    let d = start(&s);
    // The start-up reconcile deploys what never was, webhook mode or not.
    wait_for(Duration::from_secs(90), || s.fetch_site().as_deref() == Some("version 1\n"))
        .unwrap_or_else(|_| panic!("{}", d.log()));
    let hook = Hook { port: d.http_port };
    let v1 = s.repo.head().unwrap();
    s.repo.write("deploy/www/index.html", "version 2\n").unwrap();
    let v2 = s.repo.commit("version 2").unwrap();
    let body = push(&s, &v1, &v2, &["deploy/www/index.html"]);

    assert_eq!(d.http("GET", "/webhooks/github").unwrap().0, 405);
    assert_eq!(hook.send("push", "d-1", &body, None).await.0, 401, "no signature");
    assert_eq!(hook.send("push", "d-2", &body, Some("not the secret")).await.0, 401, "forged");
    assert_eq!(hook.send("ping", "d-3", b"{\"zen\":\"x\"}", Some(SECRET)).await.0, 204, "not a push");
    assert_eq!(hook.send("issues", "d-4", b"{}", Some(SECRET)).await.0, 204, "not a push");
    let (code, text) = hook.send("push", "d-5", b"{\"ref\": ", Some(SECRET)).await;
    assert_eq!(code, 400, "malformed JSON: {text}");
    let huge = vec![b' '; 10 * 1024 * 1024 + 1];
    assert_eq!(hook.send("push", "d-6", &huge, Some(SECRET)).await.0, 413, "over 10 MiB");

    assert_eq!(hook.send("push", "d-7", &body, Some(SECRET)).await.0, 202, "accepted");
    assert_eq!(hook.send("push", "d-7", &body, Some(SECRET)).await.0, 204, "the same delivery again");
    wait_for(Duration::from_secs(90), || s.fetch_site().as_deref() == Some("version 2\n"))
        .unwrap_or_else(|_| panic!("{}", d.log()));
    let runs = history(&d);
    assert_eq!(runs[0]["commit"], v2.as_str());
    assert_eq!(runs[0]["trigger"], "webhook");
    wait_for(Duration::from_secs(30), || history(&d)[0]["status"] == "succeeded").unwrap();

    // A push to another branch, and a branch deletion, deploy nothing.
    let other = serde_json::to_vec(&json!({
        "ref": "refs/heads/feature", "before": v2, "after": v1, "deleted": false,
        "repository": { "full_name": full_name(&s) }, "commits": [],
    }))
    .unwrap();
    assert!(matches!(hook.send("push", "d-8", &other, Some(SECRET)).await.0, 202 | 204));
    let deleted = serde_json::to_vec(&json!({
        "ref": "refs/heads/main", "before": v2, "after": "0".repeat(40), "deleted": true,
        "repository": { "full_name": full_name(&s) }, "commits": [],
    }))
    .unwrap();
    assert!(matches!(hook.send("push", "d-9", &deleted, Some(SECRET)).await.0, 202 | 204));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(history(&d).len(), 2);
    let (_, metrics) = d.http("GET", "/metrics").unwrap();
    assert!(metrics.contains("deeplo_webhooks_accepted_total 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_deliveries_plans_each_commit_once() {
    let s = Scenario::new("hook-flood").unwrap();
    let d = start(&s);
    wait_for(Duration::from_secs(90), || s.fetch_site().as_deref() == Some("version 1\n"))
        .unwrap_or_else(|_| panic!("{}", d.log()));
    wait_for(Duration::from_secs(30), || history(&d).first().is_some_and(|r| r["status"] == "succeeded")).unwrap();

    // 50 commits: 49 outside the project's files, the last one changes the site.
    let mut commits = vec![s.repo.head().unwrap()];
    for i in 1..50 {
        s.repo.write(&format!("notes/{i}.txt"), format!("{i}\n")).unwrap();
        commits.push(s.repo.commit(&format!("note {i}")).unwrap());
    }
    s.repo.write("deploy/www/index.html", "version 50\n").unwrap();
    commits.push(s.repo.commit("version 50").unwrap());

    // 1,000 deliveries (20 of each commit, each with its own delivery id), 50 at a time.
    let hook = std::sync::Arc::new(Hook { port: d.http_port });
    let mut bodies = Vec::new();
    for i in 1..=50 {
        let path = if i == 50 { "deploy/www/index.html".to_owned() } else { format!("notes/{i}.txt") };
        bodies.push(std::sync::Arc::new(push(&s, &commits[i - 1], &commits[i], &[&path])));
    }
    let mut codes = std::collections::BTreeMap::new();
    for round in 0..20 {
        let mut tasks = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let (hook, body) = (hook.clone(), body.clone());
            let delivery = format!("flood-{round}-{i}");
            tasks.push(tokio::spawn(async move { hook.send("push", &delivery, &body, Some(SECRET)).await.0 }));
        }
        for t in tasks {
            *codes.entry(t.await.unwrap()).or_insert(0) += 1;
        }
    }
    assert_eq!(codes.get(&202), Some(&1000), "{codes:?}");

    wait_for(Duration::from_secs(120), || s.fetch_site().as_deref() == Some("version 50\n"))
        .unwrap_or_else(|_| panic!("the last commit was lost:\n{}", d.log()));
    wait_for(Duration::from_secs(30), || {
        d.http("GET", "/metrics").is_some_and(|(_, m)| m.contains("deeplo_webhook_heads_planned_total 50\n"))
    })
    .unwrap_or_else(|_| panic!("{}", d.http("GET", "/metrics").unwrap().1));
    let log = d.log();
    for commit in &commits[1..] {
        let short = &commit[..8];
        let planned = log.lines().filter(|l| l.contains("head planned") && l.contains(short)).count();
        assert_eq!(planned, 1, "commit {short} planned {planned} times");
    }
    let runs = history(&d);
    assert!(runs.iter().all(|r| r["status"] != "failed"), "{runs:#?}");
    assert_eq!(runs[0]["commit"], commits[50].as_str());
}
