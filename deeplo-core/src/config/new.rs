//! Constructors for the config entries an embedder builds in code, with the config file's
//! defaults for every key it does not give: so that a `Project` made here and one read from
//! the same few YAML keys are equal.

use std::time::Duration;

use super::application::{DEFAULT_DRAIN, DEFAULT_HEALTH_CHECK_PATH, DEFAULT_KEEP_RELEASES};
use super::project::glob_escape;
use super::types::{Application, HealthPolicy, Host, HostTransport, Project, Repo, TriggerMode};
use crate::access::OrgName;
use crate::model::{HostName, ProjectName, RepoName};
use crate::path::RelPath;
use crate::plan::WatchPaths;

impl Host {
    /// A host with the defaults of a config file read with no `DEEPLO_SSH_*` variables set:
    /// port 22, user `deploy`, the compose command detected on the host, no project prefix.
    pub fn new(name: HostName, address: impl Into<String>, deploy_dir: impl Into<String>) -> Self {
        Self {
            name,
            transport: HostTransport::Ssh,
            address: address.into(),
            port: 22,
            user: "deploy".into(),
            deploy_dir: deploy_dir.into(),
            compose_command: None,
            compose_project_prefix: None,
            proxy_image: super::DEFAULT_PROXY_IMAGE.to_owned(),
            org: OrgName::default_org(),
        }
    }

    /// A host reached through its runner agent (`transport: agent`): no address, port or
    /// user is needed; the rest as [`Host::new`].
    pub fn agent(name: HostName, deploy_dir: impl Into<String>) -> Self {
        Self { transport: HostTransport::Agent, ..Self::new(name, "", deploy_dir) }
    }
}

impl Repo {
    /// A repo with the config file's defaults: branch `main`, polled every 60 s.
    pub fn new(name: RepoName, url: impl Into<String>) -> Self {
        Self {
            name,
            url: url.into(),
            branch: "main".into(),
            trigger_mode: TriggerMode::Poll,
            poll_interval: Duration::from_secs(60),
            org: OrgName::default_org(),
        }
    }
}

impl Project {
    /// A Compose project with the config file's defaults: `compose.yml`, watching everything
    /// under `repo_subdir` (the whole repository when it is the root), no extra files, `.env`
    /// persisted, deployed into a directory named after the project, no health check, the
    /// default [`HealthPolicy`], rollback and auto-deploy on.
    pub fn new(name: ProjectName, repo: RepoName, repo_subdir: RelPath, targets: Vec<HostName>) -> Self {
        let patterns: Vec<String> =
            if repo_subdir.is_root() { Vec::new() } else { vec![format!("{}/**", glob_escape(repo_subdir.as_str()))] };
        // An escaped directory name is always a valid pattern.
        let watch_paths = WatchPaths::new(&patterns).unwrap_or_else(|_| WatchPaths::default());
        let deploy_subdir = RelPath::new(name.as_str()).unwrap_or_default();
        Self {
            name,
            repo,
            repo_subdir,
            targets,
            compose_files: vec![RelPath::new("compose.yml").unwrap_or_default()],
            watch_paths,
            extra_files: Vec::new(),
            persist_files: vec![RelPath::new(".env").unwrap_or_default()],
            deploy_subdir,
            health_check: None,
            health: HealthPolicy::default(),
            rollback: true,
            auto_deploy: true,
            application: None,
            org: OrgName::default_org(),
        }
    }

    /// An application built from `application.dockerfile`, with the defaults of
    /// [`Project::new`] but no compose, extra or persisted files.
    pub fn application(
        name: ProjectName,
        repo: RepoName,
        repo_subdir: RelPath,
        targets: Vec<HostName>,
        application: Application,
    ) -> Self {
        Self {
            compose_files: Vec::new(),
            persist_files: Vec::new(),
            application: Some(application),
            ..Self::new(name, repo, repo_subdir, targets)
        }
    }
}

impl Application {
    /// An application with the config file's defaults: health checked at `/`, 3 releases
    /// kept, 5 s of drain, no build arguments, and neither a domain nor a listen address.
    /// The file requires one of the two: set [`domain`](Self::domain) or
    /// [`listen`](Self::listen) before deploying it.
    pub fn new(dockerfile: RelPath, container_port: u16) -> Self {
        Self {
            dockerfile,
            container_port,
            health_check_path: DEFAULT_HEALTH_CHECK_PATH.to_owned(),
            domain: None,
            listen: None,
            build_args: Vec::new(),
            keep_releases: DEFAULT_KEEP_RELEASES,
            drain: DEFAULT_DRAIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, EnvMap, parse};

    #[test]
    fn built_in_code_equals_read_from_the_same_keys() {
        let yaml = "hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]\n\
                    repos: [{name: app, url: /srv/git/app.git}]\n\
                    projects: [{name: site, repo: app, repo_subdir: deploy/site, targets: [web-1]}]\n";
        let read = parse(yaml, &EnvMap::default()).unwrap().config;
        let web = HostName::new("web-1").unwrap();
        let app = RepoName::new("app").unwrap();
        let built = Config {
            hosts: vec![Host::new(web.clone(), "10.0.0.10", "/srv/apps")],
            repos: vec![Repo::new(app.clone(), "/srv/git/app.git")],
            projects: vec![Project::new(
                ProjectName::new("site").unwrap(),
                app,
                RelPath::new("deploy/site").unwrap(),
                vec![web],
            )],
        };
        assert_eq!(built, read);
    }

    #[test]
    fn built_in_application_equals_read_from_the_same_keys() {
        let yaml = "hosts: [{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}]\n\
                    repos: [{name: app, url: /srv/git/app.git}]\n\
                    projects: [{name: api, repo: app, repo_subdir: api, targets: [web-1], \
                    dockerfile: Dockerfile, container_port: 8080, domain: api.example.com}]\n";
        let read = parse(yaml, &EnvMap::default()).unwrap().config;
        let web = HostName::new("web-1").unwrap();
        let app = RepoName::new("app").unwrap();
        let application = Application {
            domain: Some("api.example.com".into()),
            ..Application::new(RelPath::new("Dockerfile").unwrap(), 8080)
        };
        let built = Config {
            hosts: vec![Host::new(web.clone(), "10.0.0.10", "/srv/apps")],
            repos: vec![Repo::new(app.clone(), "/srv/git/app.git")],
            projects: vec![Project::application(
                ProjectName::new("api").unwrap(),
                app,
                RelPath::new("api").unwrap(),
                vec![web],
                application,
            )],
        };
        assert_eq!(built, read);
    }
}
