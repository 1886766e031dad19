//! [`HubConnector`]: one connector for every host, by its transport.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deeplo_core::config::{Host, HostTransport};
use deeplo_core::{Connector, Result, Transport};

use super::registry::Hub;

/// How long a connect waits for an agent that is not connected (one reconnecting after a
/// network blip, or a daemon that just started).
pub const AGENT_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The daemon's [`Connector`]: hosts whose `transport` is `agent` through the [`Hub`], every
/// other host through the connector it wraps (SSH).
#[derive(Debug)]
pub struct HubConnector {
    hub: Arc<Hub>,
    other: Arc<dyn Connector>,
    wait: Duration,
}

impl HubConnector {
    /// Agent hosts through `hub`, the rest through `other`.
    pub fn new(hub: Arc<Hub>, other: Arc<dyn Connector>) -> Self {
        Self { hub, other, wait: AGENT_CONNECT_WAIT }
    }

    /// How long a connect to an agent host waits for its agent (default
    /// [`AGENT_CONNECT_WAIT`]).
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

#[async_trait]
impl Connector for HubConnector {
    async fn connect(&self, host: &Host) -> Result<Box<dyn Transport>> {
        match host.transport {
            HostTransport::Agent => self.hub.transport(&host.name, self.wait).await,
            _ => self.other.connect(host).await,
        }
    }
}
