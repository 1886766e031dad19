//! A fake GitHub REST API on 127.0.0.1, for the endpoints deeplo calls.
//!
//! Status codes and response shapes follow GitHub's REST reference: 201 with the created
//! object (`id`) for deployments and statuses, 200 with `id` for the repository
//! installation, 201 with `token` and `expires_at` for installation access tokens, 401
//! `Bad credentials` for a wrong token, 404 for unknown deployments, 422 for invalid
//! bodies. App endpoints require `Bearer <JWT>` signed with the test App key; the others
//! require `token <t>` or `Bearer <t>` with the static token or an issued installation
//! token. Every request is recorded before anything else happens, and the server can be
//! told to answer the next N requests with a given status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

pub const APP_ID: &str = "4242";
pub const INSTALLATION_ID: u64 = 77;
pub const STATIC_TOKEN: &str = "ghp_statictesttoken0123456789";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

impl Recorded {
    pub fn authorization(&self) -> &str {
        self.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn body(&self) -> &Value {
        self.body.as_ref().expect("a JSON body")
    }
}

struct Failure {
    remaining: usize,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    failure: Mutex<Option<Failure>>,
    /// Installation tokens issued, with their expiry (unix seconds).
    tokens: Mutex<Vec<(String, i64)>>,
    /// Seconds from now that new installation tokens expire.
    token_ttl: AtomicI64,
    next_id: AtomicU64,
    /// Deployment id -> `owner/repo`.
    deployments: Mutex<HashMap<u64, String>>,
    public_key: Option<DecodingKey>,
    /// Repositories (lower case) the App is not installed on.
    not_installed: Mutex<Vec<String>>,
}

type Shared = Arc<Inner>;

pub struct FakeGithub {
    pub url: String,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    /// Starts the server; `app_public_key` (PEM) enables the App endpoints.
    pub async fn start(app_public_key: Option<&str>) -> Self {
        let inner = Arc::new(Inner {
            public_key: app_public_key.map(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap()),
            token_ttl: AtomicI64::new(3600),
            next_id: AtomicU64::new(1000),
            ..Inner::default()
        });
        let router = Router::new()
            .route("/repos/{owner}/{repo}/installation", get(installation))
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route("/repos/{owner}/{repo}/deployments", post(create_deployment))
            .route("/repos/{owner}/{repo}/deployments/{id}/statuses", post(deployment_status))
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(commit_status))
            .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))) })
            .layer(middleware::from_fn_with_state(inner.clone(), record_and_fail))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, inner, task }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.inner.requests.lock().unwrap().clear();
    }

    /// Answers the next `n` requests with `status` and GitHub's error shape.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_next_with(n, status, json!({"message": "Server Error"}));
    }

    pub fn fail_next_with(&self, n: usize, status: u16, body: Value) {
        *self.inner.failure.lock().unwrap() =
            Some(Failure { remaining: n, status: StatusCode::from_u16(status).unwrap(), body });
    }

    /// New installation tokens expire this many seconds from now.
    pub fn set_token_ttl(&self, seconds: i64) {
        self.inner.token_ttl.store(seconds, Ordering::SeqCst);
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner.tokens.lock().unwrap().iter().map(|(t, _)| t.clone()).collect()
    }

    pub fn uninstall(&self, full_name: &str) {
        self.inner.not_installed.lock().unwrap().push(full_name.to_ascii_lowercase());
    }
}

async fn record_and_fail(State(inner): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    inner.requests.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers.clone(),
        body: serde_json::from_slice(&bytes).ok(),
    });
    {
        let mut failure = inner.failure.lock().unwrap();
        if let Some(f) = failure.as_mut().filter(|f| f.remaining > 0) {
            f.remaining -= 1;
            return (f.status, Json(f.body.clone())).into_response();
        }
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"}))).into_response()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `Bearer <JWT>` signed by the App key, with GitHub's rules on `iat` and `exp`: the
/// refusal, if any.
fn check_jwt(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let refuse = Some(error(StatusCode::UNAUTHORIZED, "A JSON web token could not be decoded"));
    let Some(key) = inner.public_key.as_ref() else { return refuse };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(jwt) = auth.strip_prefix("Bearer ") else { return refuse };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[APP_ID]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let Ok(data) = jsonwebtoken::decode::<Value>(jwt, key, &validation) else { return refuse };
    let iat = data.claims["iat"].as_i64().unwrap_or(i64::MAX);
    let exp = data.claims["exp"].as_i64().unwrap_or(i64::MAX);
    if iat > now() || exp - iat > 600 || exp <= now() {
        return Some(error(StatusCode::UNAUTHORIZED, "'Expiration time' claim ('exp') is too far in the future"));
    }
    None
}

/// `token <t>` or `Bearer <t>` with the static token or a live installation token: the
/// refusal, if any.
fn check_token(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = auth.strip_prefix("token ").or_else(|| auth.strip_prefix("Bearer ")).unwrap_or("");
    let live = inner.tokens.lock().unwrap().iter().any(|(t, exp)| t == token && *exp > now());
    (token != STATIC_TOKEN && !live).then(|| error(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

async fn installation(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check_jwt(&inner, &headers) {
        return r;
    }
    let full = format!("{owner}/{repo}").to_ascii_lowercase();
    if inner.not_installed.lock().unwrap().contains(&full) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let body =
        json!({"id": INSTALLATION_ID, "app_id": 4242, "account": {"login": owner}, "target_type": "Organization"});
    (StatusCode::OK, Json(body)).into_response()
}

async fn access_token(State(inner): State<Shared>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    if let Some(r) = check_jwt(&inner, &headers) {
        return r;
    }
    if id != INSTALLATION_ID {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let mut tokens = inner.tokens.lock().unwrap();
    let token = format!("ghs_fakeinstallationtoken{:04}", tokens.len() + 1);
    let expires = now() + inner.token_ttl.load(Ordering::SeqCst);
    tokens.push((token.clone(), expires));
    let expires_at = jiff::Timestamp::from_second(expires).unwrap().to_string();
    let body = json!({"token": token, "expires_at": expires_at, "permissions": {"deployments": "write", "statuses": "write"}, "repository_selection": "selected"});
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn create_deployment(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check_token(&inner, &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(git_ref) = body["ref"].as_str() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"ref\" wasn't supplied.");
    };
    let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
    inner.deployments.lock().unwrap().insert(id, format!("{owner}/{repo}"));
    let environment = body["environment"].as_str().unwrap_or("production");
    let reply = json!({"id": id, "sha": git_ref, "ref": git_ref, "task": "deploy", "environment": environment,
        "url": format!("https://api.github.com/repos/{owner}/{repo}/deployments/{id}")});
    (StatusCode::CREATED, Json(reply)).into_response()
}

/// GitHub's 140-character limit on descriptions: the refusal, if any.
fn check_description(body: &Value) -> Option<Response> {
    let too_long = body.get("description").and_then(Value::as_str).is_some_and(|d| d.chars().count() > 140);
    too_long.then(|| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: description is too long (maximum is 140 characters)",
        )
    })
}

async fn deployment_status(
    State(inner): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = check_token(&inner, &headers) {
        return r;
    }
    if inner.deployments.lock().unwrap().get(&id) != Some(&format!("{owner}/{repo}")) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let states = ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"];
    if !body["state"].as_str().is_some_and(|s| states.contains(&s)) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: state");
    }
    if let Some(r) = check_description(&body) {
        return r;
    }
    let reply = json!({"id": inner.next_id.fetch_add(1, Ordering::SeqCst), "state": body["state"]});
    (StatusCode::CREATED, Json(reply)).into_response()
}

async fn commit_status(
    State(inner): State<Shared>,
    Path((_owner, _repo, _sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = check_token(&inner, &headers) {
        return r;
    }
    if !body["state"].as_str().is_some_and(|s| ["error", "failure", "pending", "success"].contains(&s)) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: state");
    }
    if let Some(r) = check_description(&body) {
        return r;
    }
    let reply =
        json!({"id": inner.next_id.fetch_add(1, Ordering::SeqCst), "state": body["state"], "context": body["context"]});
    (StatusCode::CREATED, Json(reply)).into_response()
}
