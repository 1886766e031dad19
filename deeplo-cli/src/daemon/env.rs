//! The admin routes of the projects' environment values and of the key that seals them. A
//! value arrives in a request body and is never answered back, nor logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use deeplo_core::vault::{EnvEntry, Rotated};
use serde::{Deserialize, Serialize};

use super::Daemon;
use super::admin::ApiError;

/// `POST /v1/env/{project}`: the values to set.
#[derive(Debug, Serialize, Deserialize)]
pub struct SetValues {
    /// By name.
    pub values: BTreeMap<String, String>,
}

/// `POST /v1/env/{project}/unset`: the names to remove.
#[derive(Debug, Serialize, Deserialize)]
pub struct UnsetNames {
    /// The variables.
    pub names: Vec<String>,
}

/// What a set or an unset changed: names only.
#[derive(Debug, Serialize, Deserialize)]
pub struct Changed {
    /// The project.
    pub project: String,
    /// The variables set, or removed.
    pub names: Vec<String>,
}

fn configured(daemon: &Daemon, project: &str) -> Result<(), ApiError> {
    if daemon.engine.config().project(project).is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("project {project} is not in the config in force"),
        ));
    }
    Ok(())
}

pub async fn list(
    State(daemon): State<Arc<Daemon>>,
    Path(project): Path<String>,
) -> Result<Json<Vec<EnvEntry>>, ApiError> {
    configured(&daemon, &project)?;
    Ok(Json(daemon.vault.list(&project).await?))
}

pub async fn set(
    State(daemon): State<Arc<Daemon>>,
    Path(project): Path<String>,
    Json(body): Json<SetValues>,
) -> Result<Json<Changed>, ApiError> {
    configured(&daemon, &project)?;
    let names: Vec<String> = body.values.keys().cloned().collect();
    let values: Vec<(String, String)> = body.values.into_iter().collect();
    daemon.vault.set(&project, &values, jiff::Timestamp::now()).await?;
    tracing::info!(project = %project, names = ?names, "environment values set");
    Ok(Json(Changed { project, names }))
}

pub async fn unset(
    State(daemon): State<Arc<Daemon>>,
    Path(project): Path<String>,
    Json(body): Json<UnsetNames>,
) -> Result<Json<Changed>, ApiError> {
    let names = daemon.vault.unset(&project, &body.names).await?;
    if !names.is_empty() {
        tracing::info!(project = %project, names = ?names, "environment values removed");
    }
    Ok(Json(Changed { project, names }))
}

pub async fn rotate_key(State(daemon): State<Arc<Daemon>>) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(daemon.vault.rotate_key().await?))
}
