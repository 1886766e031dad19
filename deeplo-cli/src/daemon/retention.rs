//! Run logs and history past `DEEPLO_LOG_RETENTION_DAYS` are removed at start and daily
//! (a pair's latest record and last success are always kept: rollback needs them).

use std::time::Duration;

use deeplo_core::Engine;
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

const DAY: Duration = Duration::from_secs(86_400);

pub fn spawn(engine: Engine, days: Option<u32>, cancel: CancellationToken) {
    let Some(days) = days else { return };
    tokio::spawn(async move {
        loop {
            let cutoff = Timestamp::now() - SignedDuration::from_hours(24 * i64::from(days));
            match engine.store().prune(cutoff).await {
                Ok(report) if report.records + report.logs > 0 => {
                    tracing::info!(records = report.records, logs = report.logs, days, "old runs removed")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "removing old runs failed"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(DAY) => {}
            }
        }
    });
}
