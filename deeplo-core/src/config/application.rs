//! Reading an application's keys (`projects[].dockerfile` and those that go with it), and
//! refusing the keys of the other kind of project: a project is either a Compose project or
//! an application.

use std::time::Duration;

use serde_norway::Value;

use super::mapping::Fields;
use super::parse::{Field, Path, Reader, describe};
use super::project::{health_path, rel_path};
use super::{Application, ListenAddress};

/// `keep_releases` when not given.
pub(super) const DEFAULT_KEEP_RELEASES: u32 = 3;
/// `drain` when not given.
pub(super) const DEFAULT_DRAIN: Duration = Duration::from_secs(5);
/// `health_check_path` when not given.
pub(super) const DEFAULT_HEALTH_CHECK_PATH: &str = "/";

/// More kept releases than this is surely a typo: each one keeps an image on the server.
const MAX_KEEP_RELEASES: u64 = 100;

/// The keys only an application takes.
const APPLICATION_KEYS: &[&str] =
    &["container_port", "health_check_path", "domain", "listen", "build_args", "keep_releases", "drain"];

/// The keys only a Compose project takes, and why an application refuses each.
const COMPOSE_KEYS: &[(&str, &str)] = &[
    ("compose_files", "a project is either a Compose project (compose_files) or an application (dockerfile), not both"),
    (
        "extra_files",
        "extra_files is for Compose projects: an application is built from its whole repo_subdir, which is the \
         build context",
    ),
    ("persist_files", "persist_files is for Compose projects: an application keeps no files across releases"),
];

/// An application entry as far as it could be read.
pub(super) struct ApplicationRead {
    /// `domain`, normalised, for the checks across entries.
    pub domain: Option<(Path, String)>,
    /// `listen`, for the checks across entries.
    pub listen: Option<(Path, ListenAddress)>,
    /// The whole application, when every key is valid.
    pub application: Option<Application>,
}

/// Reports every application key of a Compose project (one without `dockerfile`).
pub(super) fn refuse_application_keys(r: &mut Reader<'_>, f: &Fields<'_>) {
    for key in APPLICATION_KEYS {
        if let Some((path, _)) = f.get(key) {
            r.error(path, format!("{key} is an application setting and needs dockerfile; without one, the project is a Compose project"));
        }
    }
}

/// Reports every Compose key of an application.
pub(super) fn refuse_compose_keys(r: &mut Reader<'_>, f: &Fields<'_>) {
    for (key, why) in COMPOSE_KEYS {
        if let Some((path, _)) = f.get(key) {
            r.error(path, *why);
        }
    }
}

/// The keys of an application; `dockerfile` is what [`Reader::opt_text`] read (present or
/// invalid).
pub(super) fn read_application(
    r: &mut Reader<'_>,
    f: &Fields<'_>,
    dockerfile: Field<(Path, String)>,
) -> ApplicationRead {
    let dockerfile = match dockerfile {
        Field::Value((path, raw)) => rel_path(r, &path, &raw, "dockerfile", false),
        Field::Absent | Field::Invalid => None,
    };
    let container_port = match r.opt_number(f, "container_port", 1, 65535) {
        Field::Value((_, port)) => u16::try_from(port).ok(),
        Field::Invalid => None,
        Field::Absent => {
            r.error(
                &f.path_of("container_port"),
                "container_port is required for an application: the port it listens on inside its container, \
                 such as 8080",
            );
            None
        }
    };
    let health_check_path = match r.opt_text(f, "health_check_path") {
        Field::Absent => Some(DEFAULT_HEALTH_CHECK_PATH.to_owned()),
        Field::Invalid => None,
        Field::Value((path, check_path)) => health_path(r, &path, check_path),
    };
    let domain = match r.opt_text(f, "domain") {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Value((path, raw)) => dns_name(r, &path, &raw).map(|name| Some((path, name))),
    };
    let listen = match r.opt_text(f, "listen") {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Value((path, raw)) => {
            ListenAddress::parse(&raw).map(|l| Some((path.clone(), l))).map_err(|m| r.error(&path, m)).ok()
        }
    };
    if matches!((&domain, &listen), (Some(None), Some(None))) {
        r.error(
            &f.path_of("listen"),
            "an application needs a domain (served over HTTPS by the host's proxy) or a listen address \
             (such as 127.0.0.1:8080), or both",
        );
    }
    let build_args = build_args(r, f);
    let keep_releases = r
        .opt_number(f, "keep_releases", 1, MAX_KEEP_RELEASES)
        .map(|(_, n)| u32::try_from(n).unwrap_or(u32::MAX))
        .or(DEFAULT_KEEP_RELEASES);
    let drain = r.opt_duration(f, "drain").map(|(_, d)| d).or(DEFAULT_DRAIN);

    let mut out =
        ApplicationRead { domain: domain.clone().flatten(), listen: listen.clone().flatten(), application: None };
    if let (
        Some(dockerfile),
        Some(container_port),
        Some(health_check_path),
        Some(domain),
        Some(listen),
        Some(build_args),
        Some(keep_releases),
        Some(drain),
    ) = (dockerfile, container_port, health_check_path, domain, listen, build_args, keep_releases, drain)
        && (domain.is_some() || listen.is_some())
    {
        out.application = Some(Application {
            dockerfile,
            container_port,
            health_check_path,
            domain: domain.map(|(_, d)| d),
            listen: listen.map(|(_, l)| l),
            build_args,
            keep_releases,
            drain,
        });
    }
    out
}

/// `domain`: a DNS host name, lowercased.
fn dns_name(r: &mut Reader<'_>, path: &Path, raw: &str) -> Option<String> {
    let name = raw.to_ascii_lowercase();
    match dns_name_problem(&name) {
        None => Some(name),
        Some(problem) => {
            r.error(path, format!("expected a DNS host name such as \"app.example.com\", got {raw:?}: {problem}"));
            None
        }
    }
}

/// Why a lowercased `name` is not a DNS host name the proxy can get a certificate for.
fn dns_name_problem(name: &str) -> Option<&'static str> {
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.') {
        Some("use letters, digits, '-' and '.' only (an international name in its xn-- form)")
    } else if name.len() > 253 {
        Some("it is longer than 253 characters")
    } else if !name.contains('.') {
        Some("it needs at least one dot")
    } else if name.split('.').any(str::is_empty) {
        Some("a part between dots is empty")
    } else if name.split('.').any(|label| label.len() > 63) {
        Some("a part between dots is longer than 63 characters")
    } else if name.split('.').any(|label| label.starts_with('-') || label.ends_with('-')) {
        Some("a part between dots must not start or end with '-'")
    } else {
        None
    }
}

/// `build_args`: a mapping of names to scalar values, as text, sorted by name.
fn build_args(r: &mut Reader<'_>, f: &Fields<'_>) -> Option<Vec<(String, String)>> {
    let Some((path, value)) = f.get("build_args") else {
        return Some(Vec::new());
    };
    let Value::Mapping(mapping) = value else {
        r.error(
            path,
            format!(
                "expected a mapping of build argument names to values, such as {{NODE_ENV: production}}, got {}",
                describe(value)
            ),
        );
        return None;
    };
    let mut args: Vec<(String, String)> = Vec::new();
    let mut ok = true;
    for (pos, (key, value)) in mapping.iter().enumerate() {
        let Some(name) = build_arg_name(r, path, pos, key) else {
            ok = false;
            continue;
        };
        let item = path.key(&name, pos);
        if args.iter().any(|(n, _)| *n == name) {
            r.error(&item, format!("duplicate build argument {name:?}"));
            ok = false;
            continue;
        }
        let text = match value {
            Value::Null => {
                r.error(&item, "a build argument needs a value; write \"\" for an empty one");
                None
            }
            Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => {
                r.error(&item, format!("expected a string, number or boolean, got {}", describe(value)));
                None
            }
            scalar => r.text(&item, scalar),
        };
        match text {
            Some(text) => args.push((name, text)),
            None => ok = false,
        }
    }
    args.sort();
    ok.then_some(args)
}

/// A key of `build_args`, expanded: a name such as an environment variable's.
fn build_arg_name(r: &mut Reader<'_>, parent: &Path, pos: usize, key: &Value) -> Option<String> {
    let name = match key {
        Value::String(s) => r.expand(&parent.key(s, pos), s)?,
        Value::Bool(_) | Value::Number(_) => describe(key),
        other => {
            r.error(
                &parent.key(&describe(other), pos),
                format!("expected a build argument name, got {}", describe(other)),
            );
            return None;
        }
    };
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        r.error(
            &parent.key(&name, pos),
            format!("invalid build argument name {name:?}: use letters, digits and '_', not starting with a digit"),
        );
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::dns_name_problem;

    #[test]
    fn dns_names() {
        for good in ["app.example.com", "a.b", "x-1.example.org", "1.example.com", "xn--bcher-kva.example"] {
            assert_eq!(dns_name_problem(good), None, "{good}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        for (bad, why) in [
            ("localhost", "at least one dot"),
            ("app_1.example.com", "letters, digits"),
            ("*.example.com", "letters, digits"),
            ("app..example.com", "empty"),
            (".example.com", "empty"),
            ("example.com.", "empty"),
            ("-app.example.com", "start or end with '-'"),
            ("app-.example.com", "start or end with '-'"),
            (long_label.as_str(), "longer than 63"),
            (long_name.as_str(), "longer than 253"),
        ] {
            assert!(dns_name_problem(bad).is_some_and(|p| p.contains(why)), "{bad}: {:?}", dns_name_problem(bad));
        }
    }
}
