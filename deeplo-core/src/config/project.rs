//! Reading `projects[]` entries and their `health_check`; the keys of an application are
//! read in [`super::application`].

use serde_norway::Value;

use super::application::{self, ApplicationRead};
use super::entries::checked_name;
use super::mapping::Fields;
use super::parse::{Field, Path, Reader, TextList, describe};
use super::{HealthPolicy, HealthTarget, ListenAddress, Project};
use crate::access::OrgName;
use crate::model::{HostName, ProjectName, RepoName};
use crate::path::RelPath;
use crate::plan::WatchPaths;

const PROJECT_KEYS: &[&str] = &[
    "name",
    "repo",
    "repo_subdir",
    "targets",
    "compose_files",
    "watch_paths",
    "extra_files",
    "persist_files",
    "deploy_subdir",
    "health_check",
    "rollback",
    "auto_deploy",
    "org",
    "dockerfile",
    "container_port",
    "health_check_path",
    "domain",
    "listen",
    "build_args",
    "keep_releases",
    "drain",
];
const HEALTH_KEYS: &[&str] = &["url", "path", "port", "retries", "interval", "max_interval", "timeout"];

/// One `projects[]` entry as far as it could be read.
pub(super) struct ProjectRead {
    /// The name as written, valid or not.
    pub name: Option<(Path, String)>,
    /// The repo reference as written.
    pub repo: Option<(Path, String)>,
    /// The targets as written.
    pub targets: Vec<(Path, String)>,
    /// The `deploy_subdir` (or its default) and where to report an overlap.
    pub deploy_subdir: Option<(Path, RelPath)>,
    /// An application's `domain`, normalised, for the checks across entries.
    pub domain: Option<(Path, String)>,
    /// An application's `listen` address, for the checks across entries.
    pub listen: Option<(Path, ListenAddress)>,
    /// The organization, for the checks across entries.
    pub org: Option<(Path, OrgName)>,
    /// The whole project, when every field is valid (references are checked later).
    pub project: Option<Project>,
}

pub(super) fn read_project(r: &mut Reader<'_>, path: &Path, value: &Value) -> ProjectRead {
    let mut out = ProjectRead {
        name: None,
        repo: None,
        targets: Vec::new(),
        deploy_subdir: None,
        domain: None,
        listen: None,
        org: None,
        project: None,
    };
    let Some(f) = r.fields(path, value, "a project", PROJECT_KEYS) else {
        return out;
    };
    out.name = r.req_text(&f, "name");
    let name = out.name.as_ref().and_then(|(p, n)| checked_name(r, p, n, ProjectName::new));
    out.repo = r.req_text(&f, "repo");
    // An invalid name cannot name a repo: the reference check reports it.
    let repo = out.repo.as_ref().and_then(|(_, n)| RepoName::new(n.as_str()).ok());
    let repo_subdir = match r.opt_text(&f, "repo_subdir") {
        Field::Absent => {
            r.error(&f.path_of("repo_subdir"), "repo_subdir is required; use \".\" for the repository root");
            None
        }
        Field::Invalid => None,
        Field::Value((p, dir)) => rel_path(r, &p, &dir, "repo_subdir", true),
    };
    let targets = targets(r, &f, &mut out.targets);
    // A `dockerfile` makes the project an application; one that is there but invalid still
    // says the user meant one, so its keys are not refused as well.
    let dockerfile = r.opt_text(&f, "dockerfile");
    let (files, app) = if matches!(dockerfile, Field::Absent) {
        application::refuse_application_keys(r, &f);
        (compose_files(r, &f), Some(None))
    } else {
        application::refuse_compose_keys(r, &f);
        let ApplicationRead { domain, listen, application } = application::read_application(r, &f, dockerfile);
        (out.domain, out.listen) = (domain, listen);
        (Some((Vec::new(), Vec::new(), Vec::new())), application.map(Some))
    };
    let is_application = !matches!(app, Some(None));
    let watch_paths = watch_paths(r, &f, repo_subdir.as_ref());
    out.deploy_subdir = match r.opt_text(&f, "deploy_subdir") {
        Field::Absent => {
            name.as_ref().and_then(|n| RelPath::new(n.as_str()).ok()).map(|d| (f.path_of("deploy_subdir"), d))
        }
        Field::Invalid => None,
        Field::Value((p, dir)) => rel_path(r, &p, &dir, "deploy_subdir", false).map(|d| (p, d)),
    };
    let health = match f.get("health_check") {
        None => Some((None, HealthPolicy::default())),
        Some((p, v)) => health_check(r, &p.clone(), v, is_application),
    };
    let rollback = match f.get("rollback") {
        None => Some(true),
        Some((p, v)) => on_off(r, &p.clone(), v),
    };
    let auto_deploy = match f.get("auto_deploy") {
        None => Some(true),
        Some((p, v)) => on_off(r, &p.clone(), v),
    };
    out.org = super::entries::read_org(r, &f);
    if let (
        Some(name),
        Some(repo),
        Some(repo_subdir),
        Some(targets),
        Some((compose_files, extra_files, persist_files)),
        Some(watch_paths),
        Some((_, deploy_subdir)),
        Some((health_check, health)),
        Some(rollback),
        Some(auto_deploy),
        Some(application),
        Some((_, org)),
    ) = (
        name,
        repo,
        repo_subdir,
        targets,
        files,
        watch_paths,
        out.deploy_subdir.clone(),
        health,
        rollback,
        auto_deploy,
        app,
        out.org.clone(),
    ) {
        out.project = Some(Project {
            name,
            repo,
            repo_subdir,
            targets,
            compose_files,
            watch_paths,
            extra_files,
            persist_files,
            deploy_subdir,
            health_check,
            health,
            rollback,
            auto_deploy,
            application,
            org,
        });
    }
    out
}

/// A Compose project's `compose_files`, `extra_files` and `persist_files`.
fn compose_files(r: &mut Reader<'_>, f: &Fields<'_>) -> Option<(Vec<RelPath>, Vec<RelPath>, Vec<RelPath>)> {
    let compose_files = match r.text_list(f, "compose_files") {
        Field::Value(list) if !(list.items.is_empty() && list.complete) => paths(r, list, "a compose file", false),
        Field::Invalid => None,
        _ => Some(vec![RelPath::new("compose.yml").unwrap_or_default()]),
    };
    let extra_files = match r.text_list(f, "extra_files") {
        Field::Value(list) => paths(r, list, "an extra file", false),
        Field::Invalid => None,
        Field::Absent => Some(Vec::new()),
    };
    let persist_files = match r.text_list(f, "persist_files") {
        Field::Value(list) => paths(r, list, "a persist file", false),
        Field::Invalid => None,
        Field::Absent => Some(vec![RelPath::new(".env").unwrap_or_default()]),
    };
    Some((compose_files?, extra_files?, persist_files?))
}

/// `targets`: at least one, no duplicates. Fills `raw` with the names as written.
fn targets(r: &mut Reader<'_>, f: &Fields<'_>, raw: &mut Vec<(Path, String)>) -> Option<Vec<HostName>> {
    let list = match r.text_list(f, "targets") {
        Field::Invalid => return None,
        Field::Value(list) if !list.items.is_empty() || !list.complete => list,
        _ => {
            r.error(&f.path_of("targets"), "at least one target host is required");
            return None;
        }
    };
    let mut hosts = Vec::new();
    let mut ok = list.complete;
    for (path, target) in list.items {
        if raw.iter().any(|(_, t)| *t == target) {
            r.error(&path, format!("duplicate target {target:?}"));
            ok = false;
        }
        // An invalid name cannot name a host: the reference check reports it.
        match HostName::new(target.as_str()) {
            Ok(host) => hosts.push(host),
            Err(_) => ok = false,
        }
        raw.push((path, target));
    }
    ok.then_some(hosts)
}

/// `watch_paths`: absent means `<repo_subdir>/**` (or everything for the repository root);
/// an explicit `[]` means everything.
fn watch_paths(r: &mut Reader<'_>, f: &Fields<'_>, repo_subdir: Option<&RelPath>) -> Option<WatchPaths> {
    let list = match r.text_list(f, "watch_paths") {
        Field::Invalid => return None,
        Field::Value(list) => list,
        Field::Absent => {
            let subdir = repo_subdir?;
            let patterns: Vec<String> =
                if subdir.is_root() { Vec::new() } else { vec![format!("{}/**", glob_escape(subdir.as_str()))] };
            return WatchPaths::new(&patterns)
                .map_err(|errs| {
                    for err in errs {
                        r.error(&f.path_of("repo_subdir"), format!("cannot watch this directory: {err}"));
                    }
                })
                .ok();
        }
    };
    let mut ok = list.complete;
    let mut items = Vec::new();
    for (path, pattern) in list.items {
        if pattern.is_empty() {
            r.error(&path, "watch path must not be empty");
            ok = false;
        } else {
            items.push((path, pattern));
        }
    }
    let patterns: Vec<&str> = items.iter().map(|(_, p)| p.as_str()).collect();
    match WatchPaths::new(&patterns) {
        Ok(watch) => ok.then_some(watch),
        Err(errs) => {
            for err in errs {
                let path = items.get(err.index).map_or_else(|| f.path_of("watch_paths"), |(p, _)| p.clone());
                r.error(&path, err.to_string());
            }
            None
        }
    }
}

/// Escapes glob metacharacters so that a directory name is matched literally.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every item of a list of relative paths; `None` when any is invalid (each is reported).
fn paths(r: &mut Reader<'_>, list: TextList, what: &str, allow_root: bool) -> Option<Vec<RelPath>> {
    let mut ok = list.complete;
    let mut out = Vec::new();
    for (path, raw) in list.items {
        match rel_path(r, &path, &raw, what, allow_root) {
            Some(rel) => out.push(rel),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A relative path; `allow_root` says whether `.` (the base itself) is meaningful.
pub(super) fn rel_path(r: &mut Reader<'_>, path: &Path, raw: &str, what: &str, allow_root: bool) -> Option<RelPath> {
    match RelPath::new(raw) {
        Ok(rel) if rel.is_root() && !allow_root => {
            r.error(path, format!("{what} must name something below its base directory, got {raw:?}"));
            None
        }
        Ok(rel) => Some(rel),
        Err(err) => {
            r.error(path, format!("invalid {what}: {err}"));
            None
        }
    }
}

/// `rollback` and `auto_deploy`: a boolean, or `on` / `off`.
fn on_off(r: &mut Reader<'_>, path: &Path, value: &Value) -> Option<bool> {
    if let Value::Bool(b) = value {
        return Some(*b);
    }
    if !matches!(value, Value::String(_)) {
        r.error(path, format!("expected true, false, \"on\" or \"off\", got {}", describe(value)));
        return None;
    }
    let text = r.text(path, value)?;
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" => Some(true),
        "false" | "off" => Some(false),
        _ => {
            r.error(path, format!("expected true, false, \"on\" or \"off\", got {text:?}"));
            None
        }
    }
}

/// `health_check`: a URL, or a mapping with `url` or `path` + `port`, and the policy. An
/// application takes the policy alone: its check asks `health_check_path` on its container.
fn health_check(
    r: &mut Reader<'_>,
    path: &Path,
    value: &Value,
    application: bool,
) -> Option<(Option<HealthTarget>, HealthPolicy)> {
    if let Value::String(_) = value {
        let url = r.text(path, value)?;
        // Empty means "not set", so that `health_check: ${HEALTH_URL:-}` can turn it off.
        if url.is_empty() {
            return Some((None, HealthPolicy::default()));
        }
        if application {
            r.error(
                path,
                "an application's health check asks its health_check_path on the container; \
                 here health_check takes only retries, interval, max_interval and timeout",
            );
            return None;
        }
        return health_url(r, path, url).map(|url| (Some(HealthTarget::Url(url)), HealthPolicy::default()));
    }
    let f = r.fields(path, value, "a URL or a mapping", HEALTH_KEYS)?;
    if application {
        let mut ok = true;
        for key in ["url", "path", "port"] {
            if let Some((p, _)) = f.get(key) {
                r.error(
                    p,
                    format!(
                        "health_check.{key} is for Compose projects: an application's health check asks \
                         its health_check_path on the container"
                    ),
                );
                ok = false;
            }
        }
        let policy = health_policy(r, &f);
        return policy.filter(|_| ok).map(|policy| (None, policy));
    }
    let url = r.opt_text(&f, "url");
    let check_path = r.opt_text(&f, "path");
    let port = r.opt_number(&f, "port", 1, 65535);
    let target = match (url, check_path, port) {
        (Field::Value(_), Field::Value((p, _)), _) => {
            r.error(&p, "give either url, or path and port, not both");
            None
        }
        (Field::Value(_), _, Field::Value((p, _))) => {
            r.error(&p, "port goes with path; with url, put the port in the URL");
            None
        }
        (Field::Value((p, url)), _, _) => health_url(r, &p, url).map(HealthTarget::Url),
        (_, Field::Value((p, check_path)), port) => {
            let check_path = health_path(r, &p, check_path);
            let port = match port {
                Field::Value((_, port)) => u16::try_from(port).ok(),
                Field::Invalid => None,
                Field::Absent => {
                    r.error(&f.path_of("port"), "port is required with path");
                    None
                }
            };
            check_path.zip(port).map(|(path, port)| HealthTarget::PathPort { path, port })
        }
        (Field::Invalid, _, _) | (_, Field::Invalid, _) => None,
        _ => {
            r.error(path, "health_check needs a url, or a path and a port");
            None
        }
    };
    let policy = health_policy(r, &f);
    target.zip(policy).map(|(t, p)| (Some(t), p))
}

fn health_policy(r: &mut Reader<'_>, f: &Fields<'_>) -> Option<HealthPolicy> {
    let defaults = HealthPolicy::default();
    let retries = r.opt_number(f, "retries", 1, 10_000).map(|(_, n)| u32::try_from(n).unwrap_or(u32::MAX));
    let positive = |key: &str, r: &mut Reader<'_>| match r.opt_duration(f, key) {
        Field::Value((p, d)) if d.is_zero() => {
            r.error(&p, format!("{key} must be longer than 0"));
            Field::Invalid
        }
        other => other,
    };
    let interval = positive("interval", r);
    let max_interval = positive("max_interval", r);
    let timeout = positive("timeout", r);
    let max_interval = match (&interval, max_interval) {
        (Field::Value((p, i)), Field::Value((_, m))) if *i > m => {
            r.error(p, format!("interval ({i:?}) must not be longer than max_interval ({m:?})"));
            None
        }
        // An interval above the default cap raises the cap rather than being cut.
        (Field::Value((_, i)), Field::Absent) => Some(defaults.max_interval.max(*i)),
        (_, other) => other.map(|(_, d)| d).or(defaults.max_interval),
    };
    Some(HealthPolicy {
        retries: retries.or(defaults.retries)?,
        interval: interval.map(|(_, d)| d).or(defaults.interval)?,
        max_interval: max_interval?,
        timeout: timeout.map(|(_, d)| d).or(defaults.timeout)?,
    })
}

fn health_url(r: &mut Reader<'_>, path: &Path, url: String) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    let ok = rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Some(url)
    } else {
        r.error(path, format!("expected an http:// or https:// URL, got {url:?}"));
        None
    }
}

pub(super) fn health_path(r: &mut Reader<'_>, path: &Path, check_path: String) -> Option<String> {
    if check_path.starts_with('/') && !check_path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(check_path)
    } else {
        r.error(path, format!("expected a URL path starting with '/', such as \"/healthz\", got {check_path:?}"));
        None
    }
}
