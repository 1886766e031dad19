//! Embedding deeplo: an engine built from a config in memory, the SSH connector, the file
//! store, the git mirror source, and a notifier of your own that prints every event.
//!
//! Run it with `cargo run --example embed` (needs Docker, sshd and busybox-static, as the
//! tests do: `bash .ci/install-deps`). The test bed stands in for your server and your
//! repository: it starts an sshd on 127.0.0.1 and commits a small Compose project; in your
//! orchestrator those are your hosts and your repos.

use std::sync::Arc;

use async_trait::async_trait;
use deeplo_core::config::{self, EnvMap};
use deeplo_core::engine::SubmitOutcome;
use deeplo_core::git::GitAuth;
use deeplo_core::known_hosts::{HostKeyPolicy, KnownHosts};
use deeplo_core::model::DeployStatus;
use deeplo_core::{DeployEvent, DeployRequest, Engine, FileStore, GitSource, Notifier};
use deeplo_ssh::{SshConnector, SshOptions};
use deeplo_testbed::scenario::Scenario;

/// A notifier is anything that hears about deploys: a chat message, a metrics push, a
/// ticket update. Its failures are logged by the engine and never fail a deploy.
#[derive(Debug)]
struct PrintEvents;

#[async_trait]
impl Notifier for PrintEvents {
    fn name(&self) -> &str {
        "print"
    }

    async fn notify(&self, event: &DeployEvent) -> deeplo_core::Result<()> {
        let d = &event.deployment;
        println!("[{}] {} on {} at {}", event.kind, d.project, d.host, d.commit.short());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Stand-ins for a server and a repository (see the module docs).
    let bed = Scenario::new("embed-example")?;

    // 1. The config: the same YAML as the CLI's config file, here from a string.
    let loaded = config::parse(&bed.config_yaml(""), &EnvMap::default()).map_err(|e| anyhow::anyhow!("{e}"))?;

    // 2. The backends: where state lives, where commits come from, how hosts are reached.
    let data = bed.data_dir();
    let known_hosts = KnownHosts::new(data.join("known_hosts"), HostKeyPolicy::AcceptNew);
    let store = FileStore::open(&data, jiff::Timestamp::now())?;
    let source = GitSource::new(
        data.join("repos"),
        GitAuth { private_key: None, passphrase: None, known_hosts: known_hosts.clone(), https_token: None },
    );
    let mut ssh = SshOptions::new(known_hosts);
    ssh.private_key = Some(bed.sshd.client_key());
    ssh.agent_socket = None;

    // 3. The engine.
    let engine = Engine::builder()
        .config(loaded.config)
        .store(Arc::new(store))
        .source(Arc::new(source))
        .connector(Arc::new(SshConnector::new(ssh)?))
        .notifier(Arc::new(PrintEvents))
        .build()?;

    // 4. Deploy the branch head of the project to every target and wait for the records.
    let submitted = engine.deploy(DeployRequest::new(bed.project.clone())).await?;
    for s in submitted {
        match s.outcome {
            SubmitOutcome::Queued(handle) => {
                let record = handle.wait().await?;
                println!("{} on {}: {} in {} steps", record.project, record.host, record.status, record.steps.len());
                anyhow::ensure!(record.status == DeployStatus::Succeeded, "the deploy failed: {:?}", record.error);
            }
            SubmitOutcome::Skipped(why) => println!("{} skipped: {why:?}", s.pair.project),
        }
    }
    let site = bed.fetch_site();
    println!("the site answers: {site:?}");
    anyhow::ensure!(site.as_deref() == Some("version 1\n"), "the site does not serve version 1");
    engine.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn deploys_through_the_embedded_engine() {
        super::main().unwrap();
    }
}
