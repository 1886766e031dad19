//! The config file (`config.yml`, compatible with the Go tool's) and the `DEEPLO_*`
//! settings.
//!
//! # The file
//!
//! ```yaml
//! hosts:                       # servers to deploy to (at least one)
//!   - name: web-1              # unique; ASCII letters, digits, '.', '_', '-'
//!     address: 10.0.0.10
//!     deploy_dir: /srv/apps    # absolute; each project gets deploy_dir/deploy_subdir
//!     user: deploy             # default $DEEPLO_SSH_USER, else "deploy"
//!     port: 22                 # default $DEEPLO_SSH_PORT, else 22
//!     compose_command: docker compose   # optional: a string or a list of words
//!     proxy_image: caddy:2     # default; the reverse proxy in front of the applications
//!     org: default             # default; the organization it belongs to (hosts, repos, projects)
//! repos:                       # watched repositories (at least one)
//!   - name: app
//!     url: git@github.com:acme/app.git
//!     branch: main             # default main
//!     trigger_mode: poll       # webhook | poll (default) | hybrid
//!     poll_interval: 60s       # Go duration, default 60s
//! projects:                    # Compose projects and applications (none is a warning)
//!   - name: site
//!     repo: app                # a repos[].name
//!     repo_subdir: deploy      # "." for the repository root
//!     targets: [web-1]         # hosts[].name, at least one
//!     compose_files: [compose.yml]         # default; relative to repo_subdir
//!     watch_paths: ["deploy/**"]           # default "<repo_subdir>/**"; [] = every push
//!     extra_files: []                      # more files or directories to ship
//!     persist_files: [.env]                # default; [] keeps nothing
//!     deploy_subdir: site                  # default: the project name
//!     health_check: http://127.0.0.1:8080/healthz  # or {path: /healthz, port: 8080, retries: 10,
//!                                                  #     interval: 1s, max_interval: 16s, timeout: 3m}
//!     rollback: on                         # default on; off keeps a failed deploy in place
//!     auto_deploy: on                      # default on; off: only an explicit deploy deploys it
//!   - name: api                # an application: `dockerfile` instead of compose_files,
//!     repo: app                # extra_files and persist_files
//!     repo_subdir: api         # the build context
//!     targets: [web-1]
//!     dockerfile: Dockerfile   # relative to repo_subdir
//!     container_port: 8080     # required
//!     health_check_path: /     # default; health_check keeps only its retries and intervals
//!     domain: api.example.com  # served over HTTPS by the host's proxy; and/or
//!     listen: 127.0.0.1:8080   # served over HTTP there (one of the two is required)
//!     build_args: {NODE_ENV: production}   # sorted by name
//!     keep_releases: 3         # default 3, at least 1
//!     drain: 5s                # default 5s; 0 stops the old release at once
//! ```
//!
//! `${NAME}` and `${NAME:-default}` are expanded in every value after the YAML parse (so a
//! value can never add YAML structure); an unset `${NAME}` is an error. Numbers may be
//! written as strings, so `port: ${SSH_PORT}` works. Keys starting with `x-` are ignored
//! and can hold YAML anchors for `<<: *anchor` merges. Unlike the Go tool, an unknown key
//! is an error (with the nearest valid key suggested), and every problem is reported at
//! once with its path, such as `projects[1].targets[0]`.

mod application;
pub mod applied;
mod diff;
mod duration;
mod entries;
mod env;
mod envfile;
mod interpolate;
mod mapping;
mod new;
mod parse;
mod project;
mod settings;
mod types;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;

pub use diff::{ChangeKind, ConfigDiff, DeployAt, Field, PairDiff, Teardown, diff};
pub use duration::parse_duration;
pub use env::EnvMap;
pub use envfile::{DEFAULT_ENV_FILE, load_env_file, parse_env_file};
pub use settings::{HostKeyPolicy, LogFormat, LogLevel, Settings};
pub use types::*;

use crate::{Error, ErrorKind};

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The config cannot be used.
    Error,
    /// The config works, but probably not as intended.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// One problem found in the config or the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Whether it refuses the config ([`Severity::Error`]) or only warns.
    pub severity: Severity,
    /// Where: `projects[1].targets[0]`, a variable name for settings, or empty for the
    /// whole file.
    pub path: String,
    /// What is wrong and, where possible, how to fix it (one sentence, no path).
    pub message: String,
}

impl Diagnostic {
    /// An error at `path`; see [`Diagnostic::path`] for the form of a path.
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, path: path.into(), message: message.into() }
    }

    /// A warning at `path`.
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// What [`parse`] and [`load`] return for a usable config.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Problems that do not stop the config from working (no projects, for instance), in
    /// document order; show them to the user.
    pub warnings: Vec<Diagnostic>,
}

/// Why a config was refused: every error, and the warnings too, in document order.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The file, when the config was loaded from one.
    pub file: Option<PathBuf>,
    /// Every error and warning, in document order; at least one is an error.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// The errors alone.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings alone.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        match &self.file {
            Some(file) => write!(f, "invalid config file {:?}: {errors} error(s)", file.display().to_string())?,
            None => write!(f, "invalid config: {errors} error(s)")?,
        }
        for diagnostic in &self.diagnostics {
            write!(f, "\n  {}: {diagnostic}", diagnostic.severity)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for Error {
    fn from(errors: ConfigErrors) -> Self {
        let message = errors.to_string();
        Error::new(ErrorKind::Config, "load config", message).with_source(errors)
    }
}

/// Reads and validates the config file at `path`.
///
/// # Errors
///
/// The file cannot be read (the error names it), or [`parse`] refuses it.
pub fn load(path: &Path, env: &EnvMap) -> Result<Loaded, ConfigErrors> {
    let with_file = |diagnostics| ConfigErrors { file: Some(path.to_owned()), diagnostics };
    let text = std::fs::read_to_string(path).map_err(|err| {
        with_file(vec![Diagnostic::error(
            "",
            format!("cannot read config file {:?}: {err}", path.display().to_string()),
        )])
    })?;
    parse(&text, env).map_err(|errors| with_file(errors.diagnostics))
}

/// Parses and validates a config, expanding `${VAR}` references from `env`.
///
/// # Errors
///
/// The YAML does not parse, or any rule is broken: every error is reported, with the
/// warnings, each with its path.
pub fn parse(yaml: &str, env: &EnvMap) -> Result<Loaded, ConfigErrors> {
    let root: Value = serde_norway::from_str(yaml).map_err(|err| ConfigErrors {
        file: None,
        diagnostics: vec![Diagnostic::error("", format!("invalid config YAML: {err}"))],
    })?;
    let mut r = parse::Reader::new(env);
    let top = parse::Path::root();
    let fields = match &root {
        Value::Null => None,
        other => r.fields(&top, other, "a config", &["hosts", "repos", "projects"]),
    };
    // A root that is not a mapping is reported once, not once per section.
    let root_ok = root.is_null() || fields.is_some();
    let section = |r: &mut parse::Reader<'_>, key: &str| match fields.as_ref().and_then(|f| f.get(key)) {
        None => root_ok.then(Vec::new),
        Some((path, value)) => r.list(path, value, &format!(" of {key}")),
    };
    let section_path = |key: &str| fields.as_ref().map_or_else(|| top.absent(key), |f| f.path_of(key));

    let hosts: Option<Vec<_>> =
        section(&mut r, "hosts").map(|items| items.iter().map(|(p, v)| entries::read_host(&mut r, p, v)).collect());
    let repos: Option<Vec<_>> =
        section(&mut r, "repos").map(|items| items.iter().map(|(p, v)| entries::read_repo(&mut r, p, v)).collect());
    let projects: Option<Vec<_>> = section(&mut r, "projects")
        .map(|items| items.iter().map(|(p, v)| project::read_project(&mut r, p, v)).collect());

    if hosts.as_ref().is_some_and(Vec::is_empty) {
        r.error(&section_path("hosts"), "at least one host is required");
    }
    if repos.as_ref().is_some_and(Vec::is_empty) {
        r.error(&section_path("repos"), "at least one repo is required");
    }
    if projects.as_ref().is_some_and(Vec::is_empty) {
        r.warning(
            &section_path("projects"),
            "no projects configured; the daemon will deploy nothing and tear down existing deployments",
        );
    }
    let sections = validate::Sections {
        hosts: hosts.as_deref(),
        repos: repos.as_deref(),
        projects: projects.as_deref().unwrap_or_default(),
    };
    validate::check(&mut r, &sections);
    let (hosts, repos, projects) = (hosts.unwrap_or_default(), repos.unwrap_or_default(), projects.unwrap_or_default());

    let failed = r.has_errors();
    let mut diagnostics = r.finish();
    let read = hosts.len() + repos.len() + projects.len();
    let config = Config {
        hosts: hosts.into_iter().filter_map(|h| h.host).collect(),
        repos: repos.into_iter().filter_map(|r| r.repo).collect(),
        projects: projects.into_iter().filter_map(|p| p.project).collect(),
    };
    if failed {
        return Err(ConfigErrors { file: None, diagnostics });
    }
    // Every reader reports why it drops an entry; this guards that promise, since a
    // silently missing project would silently stop deploying it.
    if config.hosts.len() + config.repos.len() + config.projects.len() != read {
        diagnostics.push(Diagnostic::error(
            "",
            "internal error: an entry was dropped without a diagnostic; please report this config",
        ));
        return Err(ConfigErrors { file: None, diagnostics });
    }
    Ok(Loaded { config, warnings: diagnostics })
}
