//! `/metrics` in the Prometheus text format: deploys by outcome, step durations, queue
//! depth, hosts reachable, each server's state, webhook deliveries. Counters are fed from
//! the engine's progress broadcast, so nothing in the deploy path waits on them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use deeplo_core::Engine;
use deeplo_core::model::HostState;
use deeplo_core::progress::ProgressEvent;
use tokio::sync::broadcast;

#[derive(Debug, Default)]
pub struct Metrics {
    deploys: Mutex<BTreeMap<String, u64>>,
    /// step -> (count, total seconds)
    steps: Mutex<BTreeMap<String, (u64, f64)>>,
    pub webhooks_accepted: AtomicU64,
    pub heads_planned: AtomicU64,
}

impl Metrics {
    /// Counts the engine's progress events until the engine goes away.
    pub fn spawn_listener(self: &std::sync::Arc<Self>, engine: &Engine) {
        let mut rx = engine.progress();
        let metrics = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(p) => metrics.record(&p.event),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn record(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Finished { status, .. } => {
                *lock(&self.deploys).entry(status.to_string()).or_default() += 1;
            }
            ProgressEvent::StepFinished { step, duration_ms, .. } => {
                let mut steps = lock(&self.steps);
                let entry = steps.entry(step.clone()).or_default();
                entry.0 += 1;
                entry.1 += *duration_ms as f64 / 1000.0;
            }
            _ => {}
        }
    }

    pub fn render(&self, engine: &Engine) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP deeplo_deploys_total Deploys finished, by outcome.\n# TYPE deeplo_deploys_total counter\n",
        );
        for (status, n) in lock(&self.deploys).iter() {
            let _ = writeln!(out, "deeplo_deploys_total{{outcome=\"{status}\"}} {n}");
        }
        out.push_str(
            "# HELP deeplo_step_duration_seconds Time spent in each pipeline step.\n# TYPE deeplo_step_duration_seconds summary\n",
        );
        for (step, (count, sum)) in lock(&self.steps).iter() {
            let _ = writeln!(out, "deeplo_step_duration_seconds_sum{{step=\"{step}\"}} {sum:.3}");
            let _ = writeln!(out, "deeplo_step_duration_seconds_count{{step=\"{step}\"}} {count}");
        }
        let stats = engine.scheduler().stats();
        out.push_str(
            "# HELP deeplo_queue_depth Deploys accepted and waiting to start.\n# TYPE deeplo_queue_depth gauge\n",
        );
        let _ = writeln!(out, "deeplo_queue_depth {}", stats.queued);
        out.push_str("# HELP deeplo_deploys_running Deploys running now.\n# TYPE deeplo_deploys_running gauge\n");
        let _ = writeln!(out, "deeplo_deploys_running {}", stats.running);
        let config = engine.config();
        let states = engine.host_states();
        let reachable = config
            .hosts
            .iter()
            .filter(|h| !matches!(states.get(&h.name), Some(HostState::Unreachable | HostState::Decommissioned)))
            .count();
        out.push_str("# HELP deeplo_hosts Configured hosts.\n# TYPE deeplo_hosts gauge\n");
        let _ = writeln!(out, "deeplo_hosts {}", config.hosts.len());
        out.push_str(
            "# HELP deeplo_hosts_reachable Hosts not known to be unreachable.\n# TYPE deeplo_hosts_reachable gauge\n",
        );
        let _ = writeln!(out, "deeplo_hosts_reachable {reachable}");
        render_server_states(&mut out, engine);
        out.push_str("# HELP deeplo_webhooks_accepted_total Push deliveries accepted (202).\n# TYPE deeplo_webhooks_accepted_total counter\n");
        let _ = writeln!(out, "deeplo_webhooks_accepted_total {}", self.webhooks_accepted.load(Ordering::Relaxed));
        out.push_str(
            "# HELP deeplo_webhook_heads_planned_total Distinct branch heads from webhooks that were planned.\n# TYPE deeplo_webhook_heads_planned_total counter\n",
        );
        let _ = writeln!(out, "deeplo_webhook_heads_planned_total {}", self.heads_planned.load(Ordering::Relaxed));
        out
    }
}

/// One series per host and state, 1 for the host's state and 0 for the others (the
/// Prometheus state-set style), so that a query never sees a host vanish between states.
fn render_server_states(out: &mut String, engine: &Engine) {
    out.push_str(
        "# HELP deeplo_server_state Each server's state: 1 for the one it is in.\n# TYPE deeplo_server_state gauge\n",
    );
    for record in engine.servers().list() {
        for state in HostState::ALL {
            let value = u8::from(record.state == state);
            let _ = writeln!(out, "deeplo_server_state{{host=\"{}\",state=\"{state}\"}} {value}", record.host);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
