//! Reading `hosts[]` and `repos[]` entries, and the value checks shared with projects.

use std::time::Duration;

use serde_norway::Value;

use super::mapping::Fields;
use super::parse::{Field, Path, Reader, describe};
use super::settings::{ssh_port, ssh_user};
use super::{DEFAULT_PROXY_IMAGE, Host, HostTransport, Repo, TriggerMode};
use crate::access::OrgName;
use crate::model::{HostName, InvalidName, RepoName};
use crate::path::RelPath;

const HOST_KEYS: &[&str] = &[
    "name",
    "address",
    "user",
    "port",
    "deploy_dir",
    "compose_command",
    "compose_project_prefix",
    "transport",
    "proxy_image",
    "org",
];
const REPO_KEYS: &[&str] = &["name", "url", "branch", "trigger_mode", "poll_interval", "org"];

/// One `hosts[]` entry as far as it could be read.
pub(super) struct HostRead {
    /// The name as written, valid or not, for duplicate and reference checks.
    pub name: Option<(Path, String)>,
    /// The normalised `deploy_dir`, for the directory overlap check.
    pub deploy_dir: Option<String>,
    /// The organization, for the checks across entries.
    pub org: Option<(Path, OrgName)>,
    /// The whole host, when every field is valid.
    pub host: Option<Host>,
}

/// One `repos[]` entry as far as it could be read.
pub(super) struct RepoRead {
    pub name: Option<(Path, String)>,
    pub org: Option<(Path, OrgName)>,
    pub repo: Option<Repo>,
}

pub(super) fn read_host(r: &mut Reader<'_>, path: &Path, value: &Value) -> HostRead {
    let mut out = HostRead { name: None, deploy_dir: None, org: None, host: None };
    let Some(f) = r.fields(path, value, "a host", HOST_KEYS) else {
        return out;
    };
    out.name = r.req_text(&f, "name");
    let name = out.name.as_ref().and_then(|(p, n)| checked_name(r, p, n, HostName::new));
    let transport = match r.opt_text(&f, "transport") {
        Field::Absent => Some(HostTransport::Ssh),
        Field::Invalid => None,
        Field::Value((_, t)) if t == "ssh" => Some(HostTransport::Ssh),
        Field::Value((_, t)) if t == "agent" => Some(HostTransport::Agent),
        Field::Value((p, t)) => {
            r.error(&p, format!("{t:?} is not a transport: use ssh (the default) or agent"));
            None
        }
    };
    let address = match transport {
        // An agent connects out: the address only says which machine it is, if given.
        Some(HostTransport::Agent) => match r.opt_text(&f, "address") {
            Field::Absent => Some(String::new()),
            Field::Invalid => None,
            Field::Value((p, a)) => word(r, &p, a, "an address", false),
        },
        _ => r.req_text(&f, "address").and_then(|(p, a)| word(r, &p, a, "an address", false)),
    };
    let user = match r.opt_text(&f, "user") {
        Field::Absent => Some(ssh_user(r.env()).to_owned()),
        Field::Invalid => None,
        Field::Value((p, u)) => word(r, &p, u, "a user name", false),
    };
    let port = match r.opt_number(&f, "port", 1, 65535) {
        Field::Absent => ssh_port(r.env())
            .map_err(|message| {
                r.error(&f.path_of("port"), format!("no port given, and DEEPLO_SSH_PORT is invalid: {message}"))
            })
            .ok(),
        Field::Invalid => None,
        Field::Value((_, port)) => u16::try_from(port).ok(),
    };
    out.deploy_dir = r.req_text(&f, "deploy_dir").and_then(|(p, d)| absolute_dir(&d).map_err(|m| r.error(&p, m)).ok());
    let compose_command = compose_command(r, &f);
    let prefix = match r.opt_text(&f, "compose_project_prefix") {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Value((p, v)) if v.is_empty() => {
            let _ = p;
            Some(None)
        }
        Field::Value((p, v)) => {
            let ok = v.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if ok {
                Some(Some(v))
            } else {
                r.error(&p, format!("{v:?} is not a valid compose project prefix: use lowercase letters, digits, '-' and '_', starting with a letter or digit"));
                None
            }
        }
    };
    out.org = read_org(r, &f);
    // Handed to `docker run` as one argument: a word that cannot read as an option.
    let proxy_image = match r.opt_text(&f, "proxy_image") {
        Field::Absent => Some(DEFAULT_PROXY_IMAGE.to_owned()),
        Field::Invalid => None,
        Field::Value((p, image)) => word(r, &p, image, "a Docker image reference such as \"caddy:2\"", false),
    };
    if let (
        Some(transport),
        Some(name),
        Some(address),
        Some(user),
        Some(port),
        Some(deploy_dir),
        Some(compose_command),
        Some(compose_project_prefix),
        Some(proxy_image),
        Some((_, org)),
    ) = (
        transport,
        name,
        address,
        user,
        port,
        out.deploy_dir.clone(),
        compose_command,
        prefix,
        proxy_image,
        out.org.clone(),
    ) {
        out.host = Some(Host {
            name,
            transport,
            address,
            port,
            user,
            deploy_dir,
            compose_command,
            compose_project_prefix,
            proxy_image,
            org,
        });
    }
    out
}

/// `org`: the organization of a host, repo or project ([`DEFAULT_ORG`](crate::access::DEFAULT_ORG)
/// when absent), and where it was written. `None` when invalid (reported).
pub(super) fn read_org(r: &mut Reader<'_>, f: &Fields<'_>) -> Option<(Path, OrgName)> {
    match r.opt_text(f, "org") {
        Field::Absent => Some((f.path_of("org"), OrgName::default_org())),
        Field::Invalid => None,
        Field::Value((p, org)) => match OrgName::new(org) {
            Ok(org) => Some((p, org)),
            Err(e) => {
                r.error(&p, e.to_string());
                None
            }
        },
    }
}

/// `compose_command`: a string split on whitespace, or a list of words. `Some(None)` when
/// absent, `None` when invalid.
fn compose_command(r: &mut Reader<'_>, f: &Fields<'_>) -> Option<Option<Vec<String>>> {
    let Some((path, value)) = f.get("compose_command") else {
        return Some(None);
    };
    let path = path.clone();
    let words: Vec<String> = match value {
        Value::Sequence(_) => {
            let items = r.list(&path, value, " of words")?;
            let mut words = Vec::new();
            let mut ok = true;
            for (item_path, item) in items {
                match r.text(&item_path, item) {
                    Some(word) if word.trim().is_empty() => {
                        r.error(&item_path, "a word of the command must not be empty");
                        ok = false;
                    }
                    Some(word) if word.contains('\0') => {
                        r.error(&item_path, "a word of the command must not hold a NUL byte");
                        ok = false;
                    }
                    Some(word) => words.push(word),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            if words.is_empty() {
                r.error(&path, "the command must have at least one word, such as [docker, compose]");
                return None;
            }
            words
        }
        Value::String(_) => {
            let text = r.text(&path, value)?;
            if text.contains('\0') {
                r.error(&path, "the command must not hold a NUL byte");
                return None;
            }
            text.split_whitespace().map(str::to_owned).collect()
        }
        other => {
            r.error(
                &path,
                format!("expected a command such as \"docker compose\" or a list of words, got {}", describe(other)),
            );
            return None;
        }
    };
    // An empty string means "not set", as for every other optional string.
    Some(Some(words).filter(|w| !w.is_empty()))
}

pub(super) fn read_repo(r: &mut Reader<'_>, path: &Path, value: &Value) -> RepoRead {
    let mut out = RepoRead { name: None, org: None, repo: None };
    let Some(f) = r.fields(path, value, "a repo", REPO_KEYS) else {
        return out;
    };
    out.name = r.req_text(&f, "name");
    let name = out.name.as_ref().and_then(|(p, n)| checked_name(r, p, n, RepoName::new));
    let url = r.req_text(&f, "url").and_then(|(p, u)| word(r, &p, u, "a URL", true));
    let branch = match r.opt_text(&f, "branch") {
        Field::Absent => Some("main".to_owned()),
        Field::Invalid => None,
        Field::Value((p, b)) => match branch_problem(&b) {
            None => Some(b),
            Some(problem) => {
                r.error(&p, format!("invalid branch name {b:?}: {problem}"));
                None
            }
        },
    };
    let trigger_mode = match r.opt_text(&f, "trigger_mode") {
        Field::Absent => Some(TriggerMode::Poll),
        Field::Invalid => None,
        Field::Value((p, mode)) => match mode.as_str() {
            "webhook" => Some(TriggerMode::Webhook),
            "poll" => Some(TriggerMode::Poll),
            "hybrid" => Some(TriggerMode::Hybrid),
            _ => {
                r.error(&p, format!("unknown trigger mode {mode:?}; use webhook, poll or hybrid"));
                None
            }
        },
    };
    let poll_interval = match r.opt_duration(&f, "poll_interval") {
        Field::Value((p, d)) if d.is_zero() => {
            r.error(&p, "poll_interval must be longer than 0, such as \"60s\"");
            None
        }
        other => other.map(|(_, d)| d).or(Duration::from_secs(60)),
    };
    out.org = read_org(r, &f);
    if let (Some(name), Some(url), Some(branch), Some(trigger_mode), Some(poll_interval), Some((_, org))) =
        (name, url, branch, trigger_mode, poll_interval, out.org.clone())
    {
        out.repo = Some(Repo { name, url, branch, trigger_mode, poll_interval, org });
    }
    out
}

/// Validates a host, repo or project name, reporting the rule ([`crate::model::InvalidName`]).
pub(super) fn checked_name<T>(
    r: &mut Reader<'_>,
    path: &Path,
    raw: &str,
    make: fn(String) -> Result<T, InvalidName>,
) -> Option<T> {
    make(raw.to_owned()).map_err(|err| r.error(path, err.to_string())).ok()
}

/// A value that is handed to ssh or git as one argument: no control characters, no leading
/// `-` (it would read as an option); spaces only where `spaces` allows them (local paths).
fn word(r: &mut Reader<'_>, path: &Path, value: String, what: &str, spaces: bool) -> Option<String> {
    let problem = if value.starts_with('-') {
        Some("must not start with '-'")
    } else if value.chars().any(char::is_control) {
        Some("must not hold control characters")
    } else if !spaces && value.chars().any(char::is_whitespace) {
        Some("must not hold spaces")
    } else {
        None
    };
    match problem {
        None => Some(value),
        Some(problem) => {
            r.error(path, format!("expected {what}, got {value:?}: it {problem}"));
            None
        }
    }
}

/// Normalises an absolute remote directory: no `.` segments, no repeated or trailing
/// slashes. `..` is refused, since the overlap check compares directories as written.
pub(super) fn absolute_dir(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("deploy_dir must be an absolute path, got {raw:?}"));
    }
    if raw.chars().any(char::is_control) {
        return Err(format!("deploy_dir {raw:?} holds control characters"));
    }
    let rel =
        RelPath::new(raw.trim_start_matches('/')).map_err(|_| format!("deploy_dir {raw:?} has a '..' segment"))?;
    Ok(format!("/{}", rel.as_str()))
}

/// Why `name` is not a valid git branch name (roughly `git check-ref-format --branch`).
pub(super) fn branch_problem(name: &str) -> Option<&'static str> {
    if name.starts_with('-') {
        Some("it must not start with '-'")
    } else if name.ends_with('/') || name.ends_with('.') {
        Some("it must not end with '/' or '.'")
    } else if name.contains("..") {
        Some("it must not contain \"..\"")
    } else if name.contains("@{") || name == "@" {
        Some("it must not contain \"@{\" or be \"@\"")
    } else if name.contains("//") || name.starts_with('/') {
        Some("it must not start with '/' or contain \"//\"")
    } else if name.split('/').any(|part| part.starts_with('.') || part.ends_with(".lock")) {
        Some("no part between slashes may start with '.' or end with \".lock\"")
    } else if name.chars().any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')) {
        Some("it must not contain spaces, control characters or any of ~ ^ : ? * [ \\")
    } else {
        None
    }
}
