//! `deeplo env path|edit|check`: the daemon's env file (`/etc/deeplo/deeplo.env`, or
//! `DEEPLO_ENV_FILE`). `check` validates it as the daemon would at start, from the file's
//! own lines (the service reads that file, not the operator's shell), and checks that the
//! service user can read every file it names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use deeplo_core::config::{Diagnostic, EnvMap, Settings};
use deeplo_github::GithubSettings;
use serde::Serialize;

use crate::context;
use crate::native::{accounts, editor, prompt};
use crate::output;

/// Every variable deeplo reads; anything else starting with `DEEPLO_` is likely a typo.
pub const VARIABLES: &[&str] = &[
    "DEEPLO_ADMIN_GROUP",
    "DEEPLO_AGENT_GRACE",
    "DEEPLO_AGENT_HEARTBEAT_ALLOWANCE",
    "DEEPLO_AGENT_HEARTBEAT_INTERVAL",
    "DEEPLO_CONFIG_FILE",
    "DEEPLO_DATA_DIR",
    "DEEPLO_DEPLOY_TIMEOUT",
    "DEEPLO_ENV_FILE",
    "DEEPLO_GITHUB_API_URL",
    "DEEPLO_GITHUB_APP_ID",
    "DEEPLO_GITHUB_APP_INSTALLATION_ID",
    "DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE",
    "DEEPLO_GITHUB_ENVIRONMENT",
    "DEEPLO_GITHUB_ENVIRONMENT_HOST",
    "DEEPLO_GITHUB_TOKEN_FILE",
    "DEEPLO_GITHUB_WEBHOOK_SECRET_FILE",
    "DEEPLO_HTTP_PORT",
    "DEEPLO_LOG_FORMAT",
    "DEEPLO_LOG_LEVEL",
    "DEEPLO_LOG_RETENTION_DAYS",
    "DEEPLO_MAX_HOST_CONCURRENCY",
    "DEEPLO_MAX_WORKERS",
    "DEEPLO_PUBLIC_URL",
    "DEEPLO_SECRETS_KEY_FILE",
    "DEEPLO_SHUTDOWN_GRACE",
    "DEEPLO_SSH_HOST_KEY_POLICY",
    "DEEPLO_SSH_KEY_PASSPHRASE_FILE",
    "DEEPLO_SSH_KNOWN_HOSTS",
    "DEEPLO_SSH_PORT",
    "DEEPLO_SSH_PRIVATE_KEY_FILE",
    "DEEPLO_SSH_USER",
    "DEEPLO_TLS_CERT_FILE",
    "DEEPLO_TLS_KEY_FILE",
    "DEEPLO_UNIX_SOCKET",
];

/// The variables that name a file the daemon reads (known_hosts only under `strict`, since
/// accept-new creates it).
const FILE_VARIABLES: &[&str] = &[
    "DEEPLO_CONFIG_FILE",
    "DEEPLO_SSH_PRIVATE_KEY_FILE",
    "DEEPLO_SSH_KEY_PASSPHRASE_FILE",
    "DEEPLO_GITHUB_WEBHOOK_SECRET_FILE",
    "DEEPLO_GITHUB_TOKEN_FILE",
    "DEEPLO_GITHUB_APP_PRIVATE_KEY_FILE",
    "DEEPLO_TLS_CERT_FILE",
    "DEEPLO_TLS_KEY_FILE",
];

/// The env file this invocation reads.
pub fn path() -> PathBuf {
    context::env_file(&EnvMap::from_process())
}

/// `env edit`: opens the file, then checks it; offers to reopen it while it is invalid.
pub fn edit(service_user: &str) -> anyhow::Result<ExitCode> {
    let path = path();
    if !path.exists() {
        bail!("env file not found: {}\n  set DEEPLO_ENV_FILE or create the file", path.display());
    }
    let editor = editor::choose(&path);
    loop {
        println!("Opening {} with {editor}...", path.display());
        editor::open(&path, &editor)?;
        let report = check_file(&path, service_user)?;
        print_report(&report);
        if report.valid() {
            println!();
            println!("Edited {}", path.display());
            println!("Run 'deeplo service restart' to apply env changes.");
            return Ok(ExitCode::SUCCESS);
        }
        if !prompt::yes_no(&format!("{} is invalid. Reopen it?", path.display()), true) {
            println!("Left {} invalid: the daemon will refuse to start with it.", path.display());
            return Ok(ExitCode::FAILURE);
        }
    }
}

/// `env check`: prints each problem and the verdict; exit 1 when invalid.
pub fn check(json: bool, service_user: &str) -> anyhow::Result<ExitCode> {
    let report = check_file(&path(), service_user)?;
    if json {
        output::json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(if report.valid() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[derive(Debug, Serialize)]
struct Report {
    path: String,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

#[derive(Debug, Serialize)]
struct Problem {
    /// A variable, or `line N` for a line that is not `KEY=VALUE`.
    path: String,
    message: String,
}

impl Report {
    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

fn print_report(report: &Report) {
    for p in &report.errors {
        println!("ERROR  {:<35}  {}", p.path, p.message);
    }
    for p in &report.warnings {
        println!("WARN   {:<35}  {}", p.path, p.message);
    }
    if report.valid() {
        match report.warnings.len() {
            0 => println!("Env OK: {}", report.path),
            n => println!("Env OK: {} ({n} warning(s))", report.path),
        }
    } else {
        println!("Env INVALID: {} error(s) in {}", report.errors.len(), report.path);
    }
}

fn check_file(path: &Path, service_user: &str) -> anyhow::Result<Report> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("env file not found: {}\n  set DEEPLO_ENV_FILE or create the file", path.display())
        }
        Err(e) => bail!("cannot read env file {}: {e}", path.display()),
    };
    let mut report = Report { path: path.display().to_string(), errors: Vec::new(), warnings: Vec::new() };
    let pairs = lint_lines(&text, &mut report);
    let env: EnvMap = pairs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();

    let mut diagnostics: Vec<Diagnostic> = Settings::from_env(&env).err().unwrap_or_default();
    // The GitHub settings read their secret files as this user; whether the service user
    // can read them is checked below, so only a file this user can read is judged here.
    if let Err(github) = GithubSettings::from_env(&env) {
        diagnostics.extend(github.into_iter().filter(|d| {
            !FILE_VARIABLES.contains(&d.path.as_str())
                || env.non_empty(&d.path).is_some_and(|f| std::fs::File::open(f).is_ok())
        }));
    }
    for d in diagnostics {
        report.errors.push(Problem { path: d.path.to_string(), message: d.message.clone() });
    }
    check_files(&env, service_user, &mut report)?;
    Ok(report)
}

/// The file's `KEY=VALUE` pairs, first occurrence of each key (as every deeplo command reads
/// it); malformed lines are errors, unknown `DEEPLO_*` names and repeated keys warnings.
fn lint_lines(text: &str, report: &mut Report) -> Vec<(String, String)> {
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    let mut pairs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let pair = deeplo_core::config::parse_env_file(line);
        let Some((key, value)) = pair.into_iter().next() else {
            report.errors.push(Problem {
                path: format!("line {n}"),
                message: format!("not KEY=VALUE (a comment starts with #): {:?}", truncate(line)),
            });
            continue;
        };
        if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || key.starts_with(|c: char| c.is_ascii_digit())
        {
            report.errors.push(Problem {
                path: format!("line {n}"),
                message: format!("{key:?} is not a variable name (letters, digits and _)"),
            });
            continue;
        }
        if let Some(first) = first_line.get(&key) {
            report.warnings.push(Problem {
                path: key.clone(),
                message: format!("set on line {first} and again on line {n}: line {first} is the one used"),
            });
            continue;
        }
        if key.starts_with("DEEPLO_") && !VARIABLES.contains(&key.as_str()) {
            let hint = VARIABLES
                .iter()
                .map(|v| (strsim::levenshtein(v, &key), v))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, v)| format!("; did you mean {v}?"))
                .unwrap_or_default();
            report.warnings.push(Problem { path: key.clone(), message: format!("not a deeplo setting{hint}") });
        }
        first_line.insert(key.clone(), n);
        pairs.push((key, value));
    }
    pairs
}

fn truncate(line: &str) -> String {
    if line.chars().count() > 40 { format!("{}...", line.chars().take(40).collect::<String>()) } else { line.into() }
}

/// Every file the settings name must be readable by the service user (by this user when
/// no such user exists, which is said as a warning).
fn check_files(env: &EnvMap, service_user: &str, report: &mut Report) -> anyhow::Result<()> {
    let mut files: Vec<(&str, &str)> =
        FILE_VARIABLES.iter().filter_map(|var| env.non_empty(var).map(|path| (*var, path))).collect();
    if env.non_empty("DEEPLO_SSH_HOST_KEY_POLICY") == Some("strict") {
        let known_hosts = env.non_empty("DEEPLO_SSH_KNOWN_HOSTS");
        if let Some(path) = known_hosts {
            files.push(("DEEPLO_SSH_KNOWN_HOSTS", path));
        }
    }
    if files.is_empty() {
        return Ok(());
    }
    let Some(user) = accounts::user(service_user)? else {
        report.warnings.push(Problem {
            path: "service user".into(),
            message: format!("no user {service_user:?} on this machine: files checked as the current user"),
        });
        for (var, path) in files {
            if let Err(e) = std::fs::File::open(path) {
                report.errors.push(Problem { path: var.into(), message: format!("cannot read {path}: {e}") });
            }
        }
        return Ok(());
    };
    let gids = accounts::group_ids(&user)?;
    for (var, path) in files {
        let message = match accounts::can_read(Path::new(path), &user, &gids) {
            Ok(true) => continue,
            Ok(false) => format!("{path} is not readable by the {service_user} service user"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{path} does not exist"),
            Err(e) => format!("cannot check {path}: {e}"),
        };
        report.errors.push(Problem { path: var.into(), message });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> (Vec<(String, String)>, Report) {
        let mut report = Report { path: "f".into(), errors: Vec::new(), warnings: Vec::new() };
        let pairs = lint_lines(text, &mut report);
        (pairs, report)
    }

    #[test]
    fn lines_are_judged_one_by_one() {
        let (pairs, report) = lint(
            "# comment\n\nDEEPLO_HTTP_PORT=1\nexport DEEPLO_SSH_USER=ops\nFull reference: https://x\n\
             DEEPLO_HTTP_PORT=2\nDEEPLO_SSH_USR=x\n9X=1\n",
        );
        assert_eq!(
            pairs,
            vec![
                ("DEEPLO_HTTP_PORT".into(), "1".into()),
                ("DEEPLO_SSH_USER".into(), "ops".into()),
                ("DEEPLO_SSH_USR".into(), "x".into())
            ]
        );
        let errors: Vec<&str> = report.errors.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(errors, ["line 5", "line 8"]);
        assert!(report.warnings[0].message.contains("line 3 is the one used"), "{:?}", report.warnings);
        assert!(report.warnings[1].message.contains("did you mean DEEPLO_SSH_USER?"), "{:?}", report.warnings);
    }

    #[test]
    fn every_variable_the_settings_read_is_known() {
        let sources = [
            include_str!("../../../deeplo-core/src/config/settings.rs"),
            include_str!("../../../deeplo-github/src/settings.rs"),
            include_str!("../context.rs"),
        ];
        for source in sources {
            for (i, _) in source.match_indices("\"DEEPLO_") {
                let name: String =
                    source[i + 1..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                if name.len() > "DEEPLO_".len() {
                    assert!(VARIABLES.contains(&name.as_str()), "{name} is read but not listed in VARIABLES");
                }
            }
        }
    }
}
