//! Table tests of the loader: each rule has a case that fails if the rule breaks.

mod hosts_repos;
mod orgs;
mod overlap;
mod projects;

use super::*;

pub(super) const HOST: &str = "{name: web-1, address: 10.0.0.10, deploy_dir: /srv/apps}";
pub(super) const REPO: &str = "{name: app, url: /srv/git/app.git}";
pub(super) const PROJECT: &str = "{name: site, repo: app, repo_subdir: deploy, targets: [web-1]}";

pub(super) fn env(vars: &[(&str, &str)]) -> EnvMap {
    vars.iter().copied().collect()
}

/// A config document from flow-style entries.
pub(super) fn doc(hosts: &[&str], repos: &[&str], projects: &[&str]) -> String {
    format!("hosts: [{}]\nrepos: [{}]\nprojects: [{}]\n", hosts.join(", "), repos.join(", "), projects.join(", "))
}

pub(super) fn ok_with(yaml: &str, vars: &[(&str, &str)]) -> Loaded {
    match parse(yaml, &env(vars)) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("expected a valid config:\n{yaml}\n{errors}"),
    }
}

pub(super) fn ok(yaml: &str) -> Loaded {
    ok_with(yaml, &[])
}

/// Every diagnostic as `severity path: message`.
pub(super) fn diagnostics_with(yaml: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let shown = |d: &Diagnostic| format!("{} {d}", d.severity);
    match parse(yaml, &env(vars)) {
        Ok(loaded) => loaded.warnings.iter().map(shown).collect(),
        Err(errors) => errors.diagnostics.iter().map(shown).collect(),
    }
}

/// Asserts that `yaml` fails with exactly these errors (path, then a piece of the message),
/// in this order.
#[track_caller]
pub(super) fn expect_errors_with(yaml: &str, vars: &[(&str, &str)], want: &[(&str, &str)]) {
    let errors = match parse(yaml, &env(vars)) {
        Ok(_) => panic!("expected errors {want:?}, but the config is valid:\n{yaml}"),
        Err(errors) => errors,
    };
    let got: Vec<&Diagnostic> = errors.errors().collect();
    let matches = got.len() == want.len()
        && got.iter().zip(want).all(|(d, (path, message))| d.path == *path && d.message.contains(message));
    assert!(matches, "\n{yaml}\nwant {want:#?}\ngot  {got:#?}");
}

#[track_caller]
pub(super) fn expect_errors(yaml: &str, want: &[(&str, &str)]) {
    expect_errors_with(yaml, &[], want);
}

#[test]
fn crate_doc_example_is_valid_and_gets_defaults() {
    let loaded = ok(&doc(&[HOST], &[REPO], &[PROJECT]));
    assert!(loaded.warnings.is_empty());
    let c = &loaded.config;
    assert_eq!((c.hosts.len(), c.repos.len(), c.projects.len()), (1, 1, 1));
}

#[test]
fn empty_documents_report_missing_sections_in_order() {
    let want = [
        "error hosts: at least one host is required",
        "error repos: at least one repo is required",
        "warning projects: no projects configured; the daemon will deploy nothing and tear down existing deployments",
    ];
    for yaml in ["", "# only a comment\n", "---\n", "hosts:\nrepos: []\nprojects: null\n"] {
        assert_eq!(diagnostics_with(yaml, &[]), want, "{yaml:?}");
    }
}

#[test]
fn no_projects_is_only_a_warning() {
    let loaded = ok(&doc(&[HOST], &[REPO], &[]));
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["projects: no projects configured; the daemon will deploy nothing and tear down existing deployments"]
    );
    assert!(loaded.config.projects.is_empty());
}

#[test]
fn yaml_syntax_errors_are_one_diagnostic() {
    let errors = parse("hosts: [\n", &EnvMap::default()).unwrap_err();
    assert_eq!(errors.diagnostics.len(), 1);
    assert!(errors.diagnostics[0].message.starts_with("invalid config YAML: "), "{errors}");
    let dup = parse("hosts: []\nhosts: []\n", &EnvMap::default()).unwrap_err();
    assert!(dup.diagnostics[0].message.contains("duplicate"), "{dup}");
}

#[test]
fn wrong_types_name_the_path_and_what_was_expected() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("[1, 2]", &[("", "expected a config (a mapping with keys hosts, repos, projects), got a list")]),
        // A section that is not a list is reported once; references into it are not checked.
        (
            &format!("hosts: web-1\nrepos: [{REPO}]\nprojects: [{PROJECT}]\n"),
            &[("hosts", "expected a list of hosts, got \"web-1\"")],
        ),
        (
            "hosts: [web-1]\nrepos: [{name: app, url: u}]\n",
            &[("hosts[0]", "expected a host (a mapping with keys name, address")],
        ),
        (
            &doc(&["{name: [a], address: x, deploy_dir: /d}"], &[REPO], &[]),
            &[("hosts[0].name", "expected a string, got a list")],
        ),
        (
            &doc(&["{name: {a: 1}, address: x, deploy_dir: /d}"], &[REPO], &[]),
            &[("hosts[0].name", "expected a string, got a mapping")],
        ),
        (
            &doc(&[HOST], &["{name: app, url: u, branch: 1.10}"], &[]),
            &[("repos[0].branch", "got the number 1.1; quote it")],
        ),
        (
            &doc(&[HOST], &[REPO], &["{name: site, repo: app, repo_subdir: d, targets: web-1}"]),
            &[("projects[0].targets", "expected a list of strings, got \"web-1\"")],
        ),
        (
            &doc(&[HOST], &[REPO], &["{name: site, repo: app, repo_subdir: d, targets: [[web-1]]}"]),
            &[("projects[0].targets[0]", "expected a string, got a list")],
        ),
        (
            &doc(&["{name: !custom web-1, address: x, deploy_dir: /d}"], &[REPO], &[]),
            &[("hosts[0].name", "YAML tags are not supported")],
        ),
    ];
    for (yaml, want) in cases {
        expect_errors(yaml, want);
    }
}

#[test]
fn scalars_are_accepted_as_text_and_numbers_as_strings() {
    let yaml = doc(&["{name: 2024, address: x, deploy_dir: /d, port: '2222', user: true}"], &[REPO], &[]);
    let host = &ok(&yaml).config.hosts[0];
    assert_eq!(host.name, "2024");
    assert_eq!(host.port, 2222);
    assert_eq!(host.user, "true");
}

#[test]
fn unknown_keys_suggest_the_nearest_valid_key() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (&format!("{}host: []\n", doc(&[HOST], &[REPO], &[])), &[("host", "unknown key; did you mean \"hosts\"?")]),
        (
            &doc(&["{name: web-1, adress: x, address: y, deploy_dir: /d}"], &[REPO], &[]),
            &[("hosts[0].adress", "unknown key; did you mean \"address\"?")],
        ),
        (&doc(&[HOST], &["{name: app, url: u, brnch: main}"], &[]), &[("repos[0].brnch", "did you mean \"branch\"?")]),
        (
            &doc(&[HOST], &[REPO], &["{name: s, repo: app, repo_subdir: d, targets: [web-1], watch_path: [a]}"]),
            &[("projects[0].watch_path", "unknown key; did you mean \"watch_paths\"?")],
        ),
        (
            &doc(
                &[HOST],
                &[REPO],
                &["{name: s, repo: app, repo_subdir: d, targets: [web-1], health_check: {url: 'http://x', retry: 3}}"],
            ),
            &[("projects[0].health_check.retry", "did you mean \"retries\"?")],
        ),
        (
            &doc(&[HOST], &[REPO], &["{name: s, repo: app, repo_subdir: d, targets: [web-1], zzz: 1}"]),
            &[("projects[0].zzz", "unknown key; expected one of name, repo, repo_subdir, targets,")],
        ),
    ];
    for (yaml, want) in cases {
        expect_errors(yaml, want);
    }
}

#[test]
fn extension_keys_and_merge_keys_work() {
    let yaml = "\
x-host: &host
  deploy_dir: /srv/apps
  user: ops
  x-note: ignored
hosts:
  - <<: *host
    name: web-1
    address: 10.0.0.1
  - <<: *host
    name: web-2
    address: 10.0.0.2
    user: root
repos: [{name: app, url: u}]
projects: []
";
    let hosts = ok(yaml).config.hosts;
    assert_eq!(hosts[0].deploy_dir, "/srv/apps");
    assert_eq!(hosts[0].user, "ops");
    assert_eq!(hosts[1].user, "root", "a key written in the mapping wins over a merged one");
    let bad = "x-h: &h {deplo_dir: /srv}\nhosts: [{<<: *h, name: a, address: b, deploy_dir: /d}]\nrepos: [{name: app, url: u}]\n";
    expect_errors(bad, &[("hosts[0].deplo_dir", "did you mean \"deploy_dir\"? (merged in with <<)")]);
}

#[test]
fn interpolation_expands_every_scalar_after_parsing() {
    // Block style: a plain `${X}` is not valid inside a flow mapping's braces.
    let yaml = "\
hosts:
  - name: ${HOST}
    address: a-${EMPTY:-fallback}
    deploy_dir: \"${DIR:-/srv}\"
    port: ${PORT}
    user: $USER
repos:
  - {name: app, url: '${URL}', poll_interval: '${POLL}'}
projects:
  - {name: site, repo: app, repo_subdir: deploy, targets: ['${HOST}'], rollback: '${RB}'}
";
    let vars = [
        ("HOST", "web-1"),
        ("EMPTY", ""),
        ("PORT", "2222"),
        ("URL", "/srv/git/app.git"),
        ("POLL", "5m"),
        ("RB", "off"),
        ("USER", "ignored"),
    ];
    let c = ok_with(yaml, &vars).config;
    assert_eq!(c.hosts[0].name, "web-1");
    assert_eq!(c.hosts[0].address, "a-fallback");
    assert_eq!(c.hosts[0].deploy_dir, "/srv");
    assert_eq!(c.hosts[0].port, 2222);
    assert_eq!(c.hosts[0].user, "$USER", "$VAR without braces is left alone");
    assert_eq!(c.repos[0].poll_interval, std::time::Duration::from_secs(300));
    assert!(!c.projects[0].rollback);
}

#[test]
fn expanded_values_never_add_yaml_structure() {
    let evil = "x.yml\n  - evil: x\nrepos: []";
    let project = "{name: site, repo: app, repo_subdir: deploy, targets: [web-1], compose_files: ['${F}']}";
    let c = ok_with(&doc(&[HOST], &[REPO], &[project]), &[("F", evil)]).config;
    assert_eq!(c.repos.len(), 1);
    assert_eq!(c.projects[0].compose_files.len(), 1);
    assert_eq!(c.projects[0].compose_files[0].as_str(), evil);
    // The same text in a field that refuses newlines is an error about the value, not YAML.
    let yaml = doc(&["{name: web-1, address: '${ADDR}', deploy_dir: /d}"], &[REPO], &[]);
    expect_errors_with(&yaml, &[("ADDR", evil)], &[("hosts[0].address", "must not hold control characters")]);
}

#[test]
fn missing_variables_are_one_error_listing_each_name_once() {
    let yaml = "\
hosts: [{name: web-1, address: '${ADDR}', deploy_dir: '${B}/${A}', port: '${PORT}'}]
repos: [{name: app, url: '${A}'}]
projects: [{name: site, repo: app, repo_subdir: deploy, targets: [web-1], compose_files: ['${C:-c.yml}']}]
";
    // Nothing else is reported for the fields that used them: their values are unknown.
    expect_errors(yaml, &[("hosts[0].address", "missing environment variable(s): ADDR, B, A, PORT; set them")]);
}

#[test]
fn everything_is_reported_at_once_in_document_order() {
    let yaml = "\
projects:
  - {name: site, repo: nope, repo_subdir: /abs, targets: [web-9]}
hosts:
  - {name: web-1, address: 10.0.0.1, deploy_dir: relative, port: abc}
  - {name: web-1, address: 10.0.0.2, deploy_dir: /srv}
repos:
  - {name: app, url: u, trigger_mode: push, poll_interval: 60}
";
    expect_errors(
        yaml,
        &[
            ("projects[0].repo", "no repo named \"nope\""),
            ("projects[0].repo_subdir", "is absolute"),
            ("projects[0].targets[0]", "no host named \"web-9\"; did you mean \"web-1\"?"),
            ("hosts[0].deploy_dir", "must be an absolute path"),
            ("hosts[0].port", "expected a number from 1 to 65535, got \"abc\""),
            ("hosts[1].name", "duplicate host name \"web-1\"; hosts[0] already has it"),
            ("repos[0].trigger_mode", "unknown trigger mode \"push\""),
            ("repos[0].poll_interval", "a unit is required"),
        ],
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yml");
    let errors = load(&missing, &EnvMap::default()).unwrap_err();
    assert_eq!(errors.file.as_deref(), Some(missing.as_path()));
    assert!(errors.diagnostics[0].message.starts_with("cannot read config file "), "{errors}");
    assert!(errors.to_string().contains("absent.yml"), "{errors}");

    let file = dir.path().join("config.yml");
    std::fs::write(&file, "hosts: []\nrepos: [{name: app, url: u}]\n").unwrap();
    let errors = load(&file, &EnvMap::default()).unwrap_err();
    let shown = errors.to_string();
    let want = format!(
        "invalid config file {:?}: 1 error(s)\n  error: hosts: at least one host is required\n  warning: projects: no projects configured; \
         the daemon will deploy nothing and tear down existing deployments",
        file.display().to_string()
    );
    assert_eq!(shown, want);
    assert_eq!(errors.errors().count(), 1);
    assert_eq!(errors.warnings().count(), 1);

    std::fs::write(&file, doc(&[HOST], &[REPO], &[PROJECT])).unwrap();
    assert_eq!(load(&file, &EnvMap::default()).unwrap().config.projects.len(), 1);
}

#[test]
fn config_errors_map_to_a_config_error() {
    let errors = parse("hosts: []", &EnvMap::default()).unwrap_err();
    let err: crate::Error = errors.into();
    assert_eq!(err.kind(), crate::ErrorKind::Config);
    assert!(err.to_string().contains("hosts: at least one host is required"), "{err}");
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<ConfigErrors>().is_some());
}
