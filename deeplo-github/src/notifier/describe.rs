//! What the reports say: environment names, descriptions, log links. Pure functions.
//!
//! Environment names follow the Go tool: `project`, or `host/project` when each host gets
//! its own environment (`DEEPLO_GITHUB_ENVIRONMENT_HOST=true`), behind the optional
//! `DEEPLO_GITHUB_ENVIRONMENT` prefix. Without the host part, a project deployed to several
//! hosts shares one environment and the last host to report is the one shown as active.

use deeplo_core::model::{Deployment, RunId};
use deeplo_core::{DeployEvent, DeployEventKind};

/// GitHub's limit for status descriptions, in characters.
pub const MAX_DESCRIPTION: usize = 140;

/// `[prefix/][host/]project`.
pub fn environment_name(prefix: Option<&str>, with_host: bool, deployment: &Deployment) -> String {
    let mut name = String::new();
    if let Some(prefix) = prefix.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        name.push_str(prefix);
        name.push('/');
    }
    if with_host {
        name.push_str(deployment.host.as_str());
        name.push('/');
    }
    name.push_str(deployment.project.as_str());
    name
}

/// `<public_url>/runs/<id>/logs`, when a public URL is set.
pub fn log_url(public_url: Option<&str>, run: &RunId) -> Option<String> {
    let base = public_url?.trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/runs/{run}/logs"))
}

/// `text` cut to [`MAX_DESCRIPTION`] characters, ending in `…` when cut; whitespace runs
/// (a multi-line error) become single spaces.
pub fn cut_description(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_DESCRIPTION {
        return flat;
    }
    let mut out: String = flat.chars().take(MAX_DESCRIPTION - 1).collect();
    out.push('…');
    out
}

/// The description of the deployment itself.
pub fn deployment_description(deployment: &Deployment) -> String {
    cut_description(&format!(
        "deeplo: {} {} to {} (run {})",
        deployment.project,
        deployment.commit.short(),
        deployment.host,
        deployment.id
    ))
}

/// The description of a status for `event`.
pub fn status_description(event: &DeployEvent) -> String {
    let d = &event.deployment;
    let error = d.error.as_deref().unwrap_or("unknown error");
    let text = match event.kind {
        DeployEventKind::Started => format!("Deploying {} to {}", d.commit.short(), d.host),
        DeployEventKind::Succeeded => match d.duration() {
            Some(took) => format!("Deployed {} to {} in {}s", d.commit.short(), d.host, took.as_secs()),
            None => format!("Deployed {} to {}", d.commit.short(), d.host),
        },
        DeployEventKind::Failed => format!("Deploy to {} failed: {error}", d.host),
        DeployEventKind::RolledBack => match &d.rollback {
            Some(rollback) => {
                format!("Deploy to {} failed and was rolled back to {}: {error}", d.host, rollback.to.short())
            }
            None => format!("Deploy to {} failed and was rolled back: {error}", d.host),
        },
        kind => format!("Deploy of {} to {}: {kind}", d.commit.short(), d.host),
    };
    cut_description(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_char_boundary() {
        let long = "é".repeat(200);
        let cut = cut_description(&long);
        assert_eq!(cut.chars().count(), MAX_DESCRIPTION);
        assert!(cut.ends_with('…'));
        assert_eq!(cut_description("short\n  text"), "short text");
        let exact = "x".repeat(MAX_DESCRIPTION);
        assert_eq!(cut_description(&exact), exact);
    }

    #[test]
    fn log_urls() {
        let run = RunId::parse("1700000000-deadbeef").unwrap();
        assert_eq!(
            log_url(Some("https://deeplo.example.com/"), &run).as_deref(),
            Some("https://deeplo.example.com/runs/1700000000-deadbeef/logs")
        );
        assert_eq!(log_url(None, &run), None);
        assert_eq!(log_url(Some(""), &run), None);
    }
}
