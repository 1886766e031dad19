//! The applied-config baseline: the config a reload compares against, kept in the store as a
//! JSON document.
//!
//! It is the validated [`Config`] itself, not the YAML text. Re-parsing text would need the
//! environment (`${VAR}`, the env file) of the day it was applied, and would silently take
//! a later version's defaults: the baseline would then describe something that was never
//! deployed, and a teardown would look in the wrong place. The resolved values are what ran.
//!
//! Credentials in URLs (`https://user:token@host/...`) are dropped before the document is
//! written, since documents are state files and secrets never go there; [`diff`](super::diff)
//! compares URLs without them, so a rotated token is no change either.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::types::{Config, HealthTarget};
use crate::{Error, ErrorKind, Result};

/// The store document that holds the baseline.
pub const APPLIED_CONFIG_DOCUMENT: &str = "applied_config";

/// The document's layout version; another version is not read (a newer daemon wrote it).
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct DocumentRef<'a> {
    format: u32,
    config: &'a Config,
}

#[derive(Deserialize)]
struct Document {
    format: u32,
    config: Config,
}

/// `config` as the baseline document, with credentials removed from URLs.
pub fn to_document(config: &Config) -> Result<serde_json::Value> {
    let config = without_credentials(config);
    serde_json::to_value(DocumentRef { format: FORMAT, config: &config }).map_err(|e| {
        Error::new(ErrorKind::Store, "save applied config", format!("cannot serialize the config: {e}"))
            .with_path(APPLIED_CONFIG_DOCUMENT)
    })
}

/// Reads a baseline document back.
///
/// # Errors
///
/// [`ErrorKind::Store`] when the document is not one this version wrote, or holds a value
/// that does not validate (the message says which).
pub fn from_document(value: serde_json::Value) -> Result<Config> {
    let bad = |message: String| {
        Error::new(ErrorKind::Store, "load applied config", message).with_path(APPLIED_CONFIG_DOCUMENT)
    };
    let format = value.get("format").and_then(|f| f.as_u64());
    if format != Some(u64::from(FORMAT)) {
        return Err(bad(format!(
            "the stored applied config has format {}, this version reads format {FORMAT}",
            format.map_or_else(|| "(none)".to_owned(), |f| f.to_string())
        )));
    }
    let doc: Document =
        serde_json::from_value(value).map_err(|e| bad(format!("the stored applied config cannot be read: {e}")))?;
    debug_assert_eq!(doc.format, FORMAT);
    Ok(doc.config)
}

/// A copy of `config` with the credentials of every URL removed.
pub fn without_credentials(config: &Config) -> Config {
    let mut config = config.clone();
    for repo in &mut config.repos {
        repo.url = redact_url(&repo.url).into_owned();
    }
    for project in &mut config.projects {
        if let Some(HealthTarget::Url(url)) = &mut project.health_check {
            *url = redact_url(url).into_owned();
        }
    }
    config
}

/// `scheme://user:password@host/...` without `user:password@`: either part may be a token
/// (`https://<token>@github.com/...` works). Any other text is returned as it is; scp-style
/// `git@host:path` names only an SSH user.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!("{}{}", &url[..scheme_end], &rest[at + 1..])),
        None => Cow::Borrowed(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EnvMap, parse};

    const YAML: &str = r#"
hosts:
  - {name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps, compose_command: docker compose, compose_project_prefix: p-, proxy_image: "caddy:2.8"}
  - {name: web-2, address: 10.0.0.11, port: 2222, user: ops, deploy_dir: /srv/other}
repos:
  - {name: app, url: "https://ci:s3cret@git.example.com/acme/app.git", branch: prod, trigger_mode: hybrid, poll_interval: 1m30s}
projects:
  - name: site
    repo: app
    repo_subdir: deploy
    targets: [web-1, web-2]
    compose_files: [compose.yml, compose.prod.yml]
    watch_paths: ["deploy/**", "lib/*.rs"]
    extra_files: [www]
    persist_files: [.env, data/keep]
    deploy_subdir: site/live
    health_check: {path: /healthz, port: 8080, retries: 3, interval: 250ms, max_interval: 1.5s, timeout: 3m}
    rollback: off
  - {name: api, repo: app, repo_subdir: ., targets: [web-2], health_check: "http://u:pw@127.0.0.1:9/h", auto_deploy: off}
  - name: web
    repo: app
    repo_subdir: web
    targets: [web-1]
    dockerfile: docker/Dockerfile
    container_port: 3000
    health_check_path: /up
    domain: web.example.com
    listen: "[::1]:8081"
    build_args: {B: 1, A: x}
    keep_releases: 5
    drain: 1.5s
    health_check: {retries: 3}
"#;

    fn config() -> Config {
        parse(YAML, &EnvMap::default()).expect("valid").config
    }

    #[test]
    fn round_trips_every_field_but_credentials() {
        let config = config();
        let doc = to_document(&config).unwrap();
        let text = doc.to_string();
        assert!(!text.contains("s3cret") && !text.contains("ci@") && !text.contains(":pw@"), "{text}");
        let back = from_document(doc).unwrap();
        assert_eq!(back, without_credentials(&config));
        assert_eq!(back.repos[0].url, "https://git.example.com/acme/app.git");
        assert_eq!(back.projects[0].health.interval, std::time::Duration::from_millis(250));
        assert_eq!(back.repos[0].poll_interval, std::time::Duration::from_secs(90));
        assert_eq!(back.hosts[0].proxy_image, "caddy:2.8");
        assert!(!back.projects[1].auto_deploy);
        let app = back.projects[2].application.as_ref().expect("an application");
        assert_eq!(app.drain, std::time::Duration::from_millis(1500));
        assert_eq!(app.listen.as_ref().map(ToString::to_string).as_deref(), Some("[::1]:8081"));
    }

    #[test]
    fn a_baseline_from_before_applications_reads_with_the_defaults() {
        let mut doc = to_document(&config()).unwrap();
        doc["config"]["hosts"][0].as_object_mut().unwrap().remove("proxy_image");
        let project = doc["config"]["projects"][1].as_object_mut().unwrap();
        project.remove("auto_deploy");
        project.remove("application");
        let back = from_document(doc).unwrap();
        assert_eq!(back.hosts[0].proxy_image, crate::config::DEFAULT_PROXY_IMAGE);
        assert!(back.projects[1].auto_deploy && back.projects[1].application.is_none());
    }

    #[test]
    fn refuses_other_formats_and_invalid_values() {
        let mut doc = to_document(&config()).unwrap();
        doc["format"] = 2.into();
        let err = from_document(doc.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(err.message().contains("format 2"), "{err}");
        doc["format"] = 1.into();
        doc["config"]["projects"][0]["deploy_subdir"] = "../escape".into();
        let err = from_document(doc.clone()).unwrap_err();
        assert!(err.message().contains("'..'"), "{err}");
        doc["config"]["projects"][0]["deploy_subdir"] = "ok".into();
        doc["config"]["hosts"][0]["name"] = "a b".into();
        assert!(from_document(doc).unwrap_err().message().contains("invalid name"));
        assert!(from_document(serde_json::json!({"config": {}})).unwrap_err().message().contains("(none)"));
    }

    #[test]
    fn urls_lose_their_credentials_only() {
        let cases = [
            ("https://user:tok@github.com/a/b.git", "https://github.com/a/b.git"),
            ("https://tok@github.com/a/b.git", "https://github.com/a/b.git"),
            ("ssh://git@host:22/a.git", "ssh://host:22/a.git"),
            ("https://u:p@h/x@y", "https://h/x@y"),
            ("https://h/x@y", "https://h/x@y"),
            ("git@github.com:a/b.git", "git@github.com:a/b.git"),
            ("/srv/git/app.git", "/srv/git/app.git"),
            ("http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
