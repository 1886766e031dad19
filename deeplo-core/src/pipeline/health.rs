//! The health gate: after `up`, wait until every service with a compose healthcheck is
//! healthy and the project's HTTP check answers 2xx, with exponential backoff, a bounded
//! number of attempts and an overall timeout.

use std::future::Future;
use std::time::Instant;

use super::compose::ServiceState;
use super::remote;
use super::runlog::RunLog;
use super::steps::not_running;
use crate::config::HealthPolicy;
use crate::transport::{Discard, Transport};
use crate::{Error, ErrorKind, Result};

/// What one look at the project found.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    Healthy,
    /// Not yet: worth another attempt.
    Waiting(String),
    /// Will not get better by waiting (a service stopped, a healthcheck says unhealthy).
    Broken(String),
}

/// Runs the gate. `first` is the look just taken after `up`; `ps` lists the project's
/// containers. `stability` (Compose v1, which has no `up --wait`) makes a project without a
/// healthcheck wait one interval and look again, to catch a container that exits at start.
#[allow(clippy::too_many_arguments)]
pub(super) async fn gate<F, Fut>(
    transport: &dyn Transport,
    services: &[String],
    first: Vec<ServiceState>,
    ps: F,
    url: Option<&str>,
    policy: &HealthPolicy,
    stability: bool,
    log: &RunLog,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<ServiceState>>>,
{
    let start = Instant::now();
    let has_healthchecks = first.iter().any(|s| !s.health.is_empty());
    if !has_healthchecks && url.is_none() && stability {
        tokio::time::sleep(policy.interval).await;
        let states = ps().await?;
        return match not_running(services, &states) {
            None => {
                log.line(format!("no healthcheck defined; every service still running after {:?}", policy.interval));
                Ok(())
            }
            Some(problem) => Err(Error::new(ErrorKind::Deploy, "health gate", problem)),
        };
    }
    let mut attempt = 0;
    let mut states = first;
    loop {
        attempt += 1;
        let look = match look_at(services, &states) {
            Look::Healthy => match url {
                Some(url) => check_http(transport, url).await,
                None => Look::Healthy,
            },
            other => other,
        };
        match next_attempt(look, attempt, start, policy, log).await? {
            true => return Ok(()),
            false => states = ps().await?,
        }
    }
}

/// The HTTP check alone, after `up --wait` saw every service running or healthy.
pub(super) async fn http_gate(transport: &dyn Transport, url: &str, policy: &HealthPolicy, log: &RunLog) -> Result<()> {
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if next_attempt(check_http(transport, url).await, attempt, start, policy, log).await? {
            return Ok(());
        }
    }
}

/// After one look: `Ok(true)` when healthy, `Ok(false)` after waiting the backoff for the
/// next attempt, an error when broken or out of attempts or time.
async fn next_attempt(look: Look, attempt: u32, start: Instant, policy: &HealthPolicy, log: &RunLog) -> Result<bool> {
    match look {
        Look::Healthy => {
            log.line(format!("healthy after {attempt} attempt(s)"));
            Ok(true)
        }
        Look::Broken(why) => Err(Error::new(ErrorKind::Deploy, "health gate", why)),
        Look::Waiting(why) => {
            log.line(format!("attempt {attempt}/{}: {why}", policy.retries));
            let elapsed = start.elapsed();
            if attempt >= policy.retries || elapsed >= policy.timeout {
                return Err(Error::new(
                    ErrorKind::Deploy,
                    "health gate",
                    format!("not healthy after {attempt} attempt(s) in {:.1}s: {why}", elapsed.as_secs_f64()),
                ));
            }
            tokio::time::sleep(policy.backoff(attempt).min(policy.timeout - elapsed)).await;
            Ok(false)
        }
    }
}

/// The look after a failed `up --wait`: `Ok(true)` when every service is running (healthy where it has
/// a healthcheck) or completed with status 0, `Ok(false)` when a healthcheck is still
/// starting, else the problem, as a sentence.
pub(super) fn first_look(services: &[String], states: &[ServiceState]) -> std::result::Result<bool, String> {
    match look_at(services, states) {
        Look::Healthy => Ok(true),
        Look::Waiting(_) => Ok(false),
        Look::Broken(why) => Err(why),
    }
}

fn look_at(services: &[String], states: &[ServiceState]) -> Look {
    if let Some(problem) = not_running(services, states) {
        return Look::Broken(problem);
    }
    for s in states {
        match s.health.as_str() {
            "" | "healthy" => {}
            "unhealthy" => return Look::Broken(format!("service \"{}\" is unhealthy: {}", s.service, s.status)),
            other => return Look::Waiting(format!("service \"{}\" healthcheck is {other}", s.service)),
        }
    }
    Look::Healthy
}

async fn check_http(transport: &dyn Transport, url: &str) -> Look {
    let out = match transport.run(&remote::http_status(url, 5), &Discard).await {
        Ok(out) => out,
        Err(e) => return Look::Waiting(format!("cannot run the HTTP check: {e}")),
    };
    let code = out.stdout_str().trim().to_owned();
    if out.status.success() && code.starts_with('2') && code.len() == 3 {
        return Look::Healthy;
    }
    if out.status == crate::transport::ExitStatus::Code(127) {
        return Look::Broken(out.tail(2));
    }
    if code.is_empty() || code == "000" {
        Look::Waiting(format!("GET {url} failed: {}", out.tail(2)))
    } else {
        Look::Waiting(format!("GET {url} answered {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(service: &str, state: &str, health: &str) -> ServiceState {
        let line = format!(r#"{{"Service":"{service}","State":"{state}","Health":"{health}","Status":"s"}}"#);
        super::super::compose::parse_ps(&line).unwrap().remove(0)
    }

    #[test]
    fn looks() {
        let svc = vec!["web".to_owned()];
        assert_eq!(look_at(&svc, &[state("web", "running", "")]), Look::Healthy);
        assert_eq!(look_at(&svc, &[state("web", "running", "healthy")]), Look::Healthy);
        assert!(matches!(look_at(&svc, &[state("web", "running", "starting")]), Look::Waiting(_)));
        assert!(matches!(look_at(&svc, &[state("web", "running", "unhealthy")]), Look::Broken(_)));
        let crashed =
            super::super::compose::parse_ps(r#"{"Service":"web","State":"exited","ExitCode":1,"Status":"Exited (1)"}"#)
                .unwrap();
        assert!(matches!(look_at(&svc, &crashed), Look::Broken(_)));
        assert!(matches!(look_at(&svc, &[]), Look::Broken(_)));
        let done =
            super::super::compose::parse_ps(r#"{"Service":"web","State":"exited","ExitCode":0,"Status":"Exited (0)"}"#)
                .unwrap();
        assert_eq!(look_at(&svc, &done), Look::Healthy, "a one-shot service that exited 0");
        let failed =
            super::super::compose::parse_ps(r#"{"Names":"x","State":"exited","Status":"Exited (3) 1 second ago","Labels":"com.docker.compose.service=web"}"#)
                .unwrap();
        assert!(matches!(look_at(&svc, &failed), Look::Broken(_)), "docker ps: the status says exit 3");
        assert!(first_look(&svc, &failed).is_err());
        assert_eq!(first_look(&svc, &done), Ok(true));
        assert_eq!(first_look(&svc, &[state("web", "running", "starting")]), Ok(false));
    }
}
