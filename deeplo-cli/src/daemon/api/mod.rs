//! The HTTP API under `/api/v1/` on the daemon's HTTP port: JSON in and out, a user's API
//! token as `Authorization: Bearer <token>`.
//!
//! Every route is a row of [`ROUTES`]: its method, path and the [`Action`] it does, which
//! the handler asks [`authorize`](deeplo_core::access::authorize) about before anything
//! else; the router is built from the table, so a route cannot exist without its row (the
//! permission tests and the OpenAPI file are checked against it). A resource of an
//! organization the caller has no role in is a 404, the same as one that does not exist.
//! Errors have one shape, `{"error": {"code": "...", "message": "..."}}`, with the stable
//! codes of [`Code`]. No handler logs a request or answer body, nor a token.

mod error;
mod gate;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::routing::MethodRouter;
use deeplo_core::access::Action;

use super::Daemon;

/// One route of the API.
pub struct Route {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{name}` for its parameters.
    pub path: &'static str,
    /// What it does; `None` for what any authenticated caller may do (their own orgs).
    pub action: Option<Action>,
    handler: fn() -> MethodRouter<Arc<Daemon>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("action", &self.action)
            .finish()
    }
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/api/v1/orgs", action: None, handler: || axum::routing::get(routes::orgs) },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}",
        action: Some(Action::ReadOrg),
        handler: || axum::routing::get(routes::org),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/servers",
        action: Some(Action::ReadServers),
        handler: || axum::routing::get(routes::servers),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/projects",
        action: Some(Action::ReadProjects),
        handler: || axum::routing::get(routes::projects),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/deployments",
        action: Some(Action::ReadDeployments),
        handler: || axum::routing::get(routes::deployments),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/deployments/{id}",
        action: Some(Action::ReadDeployments),
        handler: || axum::routing::get(routes::deployment),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/deployments/{id}/log",
        action: Some(Action::ReadLogs),
        handler: || axum::routing::get(routes::deployment_log),
    },
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/projects/{project}/deploy",
        action: Some(Action::Deploy),
        handler: || axum::routing::post(routes::deploy),
    },
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/projects/{project}/rollback",
        action: Some(Action::Rollback),
        handler: || axum::routing::post(routes::rollback),
    },
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/projects/{project}/env",
        action: Some(Action::ManageEnv),
        handler: || axum::routing::post(routes::env_set),
    },
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/projects/{project}/env/unset",
        action: Some(Action::ManageEnv),
        handler: || axum::routing::post(routes::env_unset),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/projects/{project}/env",
        action: Some(Action::ReadEnvNames),
        handler: || axum::routing::get(routes::env_names),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/members",
        action: Some(Action::ReadMembers),
        handler: || axum::routing::get(routes::members),
    },
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/members",
        action: Some(Action::ManageMembers),
        handler: || axum::routing::post(routes::set_member),
    },
    Route {
        method: "DELETE",
        path: "/api/v1/orgs/{org}/members/{email}",
        action: Some(Action::ManageMembers),
        handler: || axum::routing::delete(routes::remove_member),
    },
    Route {
        method: "GET",
        path: "/api/v1/orgs/{org}/audit",
        action: Some(Action::ReadAudit),
        handler: || axum::routing::get(routes::audit),
    },
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/servers/{host}/token",
        action: Some(Action::ManageRunnerTokens),
        handler: || axum::routing::post(routes::issue_runner_token),
    },
    Route {
        method: "DELETE",
        path: "/api/v1/orgs/{org}/servers/{host}/token",
        action: Some(Action::ManageRunnerTokens),
        handler: || axum::routing::delete(routes::revoke_runner_token),
    },
    // Last, so that the tests that walk this table deploy before the host is retired.
    Route {
        method: "POST",
        path: "/api/v1/orgs/{org}/servers/{host}/decommission",
        action: Some(Action::Decommission),
        handler: || axum::routing::post(routes::decommission),
    },
];

/// The API's router, built from [`ROUTES`]; anything else under `/api/` is a 404 of the
/// API's shape.
pub fn router(daemon: Arc<Daemon>) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, (route.handler)());
    }
    router.fallback(routes::no_route).with_state(daemon)
}
