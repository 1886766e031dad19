//! Config reloads: on `deeplo config reload` (the admin API), on SIGHUP, and when the config
//! file's content changes. An invalid file is reported and the running config kept.

use std::sync::Arc;
use std::time::Duration;

use deeplo_core::config;
use sha2::{Digest, Sha256};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::Daemon;

/// Re-reads the config file and applies it. Reloads are serialised.
pub async fn reload(daemon: &Daemon, why: &str) -> Result<serde_json::Value, String> {
    let _one_at_a_time = daemon.reload_lock.lock().await;
    let loaded = match config::load(&daemon.config_path, &daemon.env) {
        Ok(loaded) => loaded,
        Err(errors) => {
            let problems: Vec<String> =
                errors.diagnostics.iter().map(|d| format!("{}: {}", d.path, d.message)).collect();
            tracing::error!(
                reason = why, file = %daemon.config_path.display(), problems = %problems.join("; "),
                "config reload refused; the running config is kept"
            );
            return Err(format!("invalid config, running config kept: {}", problems.join("; ")));
        }
    };
    for w in &loaded.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    let report = apply(&daemon.engine, loaded.config).await.map_err(|e| e.to_string())?;
    tracing::info!(reason = why, report = %report, "config reloaded");
    Ok(report)
}

/// Reloads on SIGHUP and when the file's content changes (checked every `every`).
pub fn spawn_watchers(daemon: Arc<Daemon>, every: Duration, cancel: CancellationToken) -> std::io::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    let on_signal = daemon.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                got = hangup.recv() => if got.is_none() { return },
            }
            let _ = reload(&on_signal, "SIGHUP").await;
        }
    });
    tokio::spawn(async move {
        let mut seen = digest(&daemon.config_path).await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let now = digest(&daemon.config_path).await;
            if now.is_some() && now != seen {
                seen = now;
                let _ = reload(&daemon, "config file changed").await;
            }
        }
    });
    Ok(())
}

async fn digest(path: &std::path::Path) -> Option<[u8; 32]> {
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(Sha256::digest(&bytes).into())
}

/// Puts `config` in force against the applied baseline kept in the store: gone and moved
/// pairs are torn down, new and changed ones deployed (the first start adopts it as is).
pub async fn apply(engine: &deeplo_core::Engine, config: config::Config) -> deeplo_core::Result<serde_json::Value> {
    let report = engine.apply_config(config).await?;
    if !report.failures.is_empty() {
        tracing::warn!(failures = report.failures.len(), "parts of the config change failed; see the report");
    }
    serde_json::to_value(&report)
        .map_err(|e| deeplo_core::Error::new(deeplo_core::ErrorKind::Store, "config reload", format!("report: {e}")))
}
