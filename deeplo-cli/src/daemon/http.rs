//! The public HTTP side (`DEEPLO_HTTP_PORT`): `/healthz`, `/metrics`, run logs for the
//! `log_url` of GitHub deployment statuses, the HTTP API under `/api/v1/` (bearer tokens,
//! [`super::api`]), and the GitHub webhook when a secret is set.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use deeplo_core::model::RunId;

use super::Daemon;

pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/runs/{id}/logs", get(run_log))
        .with_state(Arc::clone(&daemon))
        .merge(super::api::router(daemon))
}

async fn healthz(State(daemon): State<Arc<Daemon>>) -> Response {
    if daemon.stopping() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    "ok\n".into_response()
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    let mut body = daemon.metrics.render(&daemon.engine);
    body.push_str("# HELP deeplo_agents_connected Runner agents connected to this daemon now.\n");
    body.push_str("# TYPE deeplo_agents_connected gauge\n");
    body.push_str(&format!("deeplo_agents_connected {}\n", daemon.hub.connected_count()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// A run's log as plain text. A malformed id (a traversal attempt among them) is a 404 like a
/// missing run, so the route tells nothing about the file system.
async fn run_log(State(daemon): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    let Ok(id) = RunId::parse(&id) else {
        return not_found();
    };
    match daemon.engine.store().read_log(&id).await {
        Ok(Some(log)) => {
            let mut response = log.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response
        }
        Ok(None) => not_found(),
        Err(err) => {
            tracing::warn!(run = %id, error = %err, "cannot read run log");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the run log\n").into_response()
        }
    }
}

fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "run log not found\n").into_response();
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
