//! [`Settings`]: the daemon's environment variables, with the Go tool's names and defaults.
//!
//! An empty variable means its default, as in the Go tool. Unlike the Go tool, a value that
//! does not parse is an error naming the variable and the value, never a silent default:
//! a typo in `DEEPLO_MAX_HOST_CONCURRENCY` should stop the daemon, not quietly change how it
//! deploys. Secrets are never read here: the settings hold only the paths of the files that
//! contain them.

use std::path::PathBuf;
use std::time::Duration;

use super::{Diagnostic, EnvMap, parse_duration};

pub use crate::known_hosts::HostKeyPolicy;

/// The minimum level of log records written (`DEEPLO_LOG_LEVEL`). More levels may be
/// added, so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// `debug`: everything deeplo logs, for diagnosing a problem.
    Debug,
    /// `info` (the default): what happens in normal operation, such as deploys and reloads.
    Info,
    /// `warn`: only problems that need attention or were worked around.
    Warn,
    /// `error`: only failures.
    Error,
}

/// How log records are written to stderr (`DEEPLO_LOG_FORMAT`). More formats may be added,
/// so a `match` needs a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable, coloured when the terminal allows.
    Pretty,
    /// `key=value` lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The daemon's settings, from `DEEPLO_*` environment variables: where its files are, how
/// it reaches hosts, how much it runs at once, how it logs and what it serves. Read them with
/// [`Settings::from_env`]; each field's doc names its variable and default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `DEEPLO_DATA_DIR`: state, run logs, mirrors (default `/var/lib/deeplo`).
    pub data_dir: PathBuf,
    /// `DEEPLO_CONFIG_FILE` (default `/etc/deeplo/config.yml`).
    pub config_file: PathBuf,
    /// `DEEPLO_SSH_PRIVATE_KEY_FILE`: the key for hosts and git over SSH (default none).
    pub ssh_private_key_file: Option<PathBuf>,
    /// `DEEPLO_SSH_KEY_PASSPHRASE_FILE`: a file holding the key's passphrase (default none:
    /// the key is not encrypted).
    pub ssh_key_passphrase_file: Option<PathBuf>,
    /// `DEEPLO_SSH_USER`: the user for hosts that set none (default `deploy`).
    pub ssh_user: String,
    /// `DEEPLO_SSH_PORT`: the port for hosts that set none (default 22).
    pub ssh_port: u16,
    /// `DEEPLO_SSH_KNOWN_HOSTS` (default `$DEEPLO_DATA_DIR/known_hosts`).
    pub ssh_known_hosts: PathBuf,
    /// `DEEPLO_SSH_HOST_KEY_POLICY`: `accept-new` (default) or `strict`; see
    /// [`HostKeyPolicy`].
    pub ssh_host_key_policy: HostKeyPolicy,
    /// `DEEPLO_MAX_WORKERS`: deploys running at once, at least 1. The variable's `0` (its
    /// default) is resolved here to the number of CPUs.
    pub max_workers: usize,
    /// `DEEPLO_MAX_HOST_CONCURRENCY`: deploys running at once on one host (default 1).
    pub max_host_concurrency: usize,
    /// `DEEPLO_DEPLOY_TIMEOUT`: a limit per deploy; `None` when the variable is `0` (its
    /// default).
    pub deploy_timeout: Option<Duration>,
    /// `DEEPLO_SHUTDOWN_GRACE`: how long running deploys get to finish on shutdown (30s).
    pub shutdown_grace: Duration,
    /// `DEEPLO_LOG_LEVEL`: `debug`, `info` (default), `warn` or `error`.
    pub log_level: LogLevel,
    /// `DEEPLO_LOG_FORMAT`: `pretty` (default), `text` or `json`.
    pub log_format: LogFormat,
    /// `DEEPLO_LOG_RETENTION_DAYS`: run logs older than this many days are deleted (default
    /// 14); `None` when the variable is `0`, which keeps them forever.
    pub log_retention_days: Option<u32>,
    /// `DEEPLO_HTTP_PORT`: webhooks and `/health` (default 8470; `0` picks a free port).
    pub http_port: u16,
    /// `DEEPLO_PUBLIC_URL`: the base URL for links to run logs (default none: no links).
    pub public_url: Option<String>,
    /// `DEEPLO_UNIX_SOCKET`: the admin socket, ending in `.sock` (default
    /// `/run/deeplo/deeplo.sock`).
    pub unix_socket: PathBuf,
    /// `DEEPLO_ADMIN_GROUP`: the group given access to the admin socket (default none: the
    /// socket keeps the daemon's own group; its mode is `0660` either way).
    pub admin_group: Option<String>,
    /// `DEEPLO_GITHUB_WEBHOOK_SECRET_FILE`: turns on `/webhooks/github` (default none: off).
    pub github_webhook_secret_file: Option<PathBuf>,
    /// `DEEPLO_GITHUB_TOKEN_FILE`: turns on GitHub deployment reporting (default none: off).
    pub github_token_file: Option<PathBuf>,
    /// `DEEPLO_GITHUB_ENVIRONMENT`: the prefix of GitHub environment names (default none).
    pub github_environment: Option<String>,
    /// `DEEPLO_AGENT_HEARTBEAT_INTERVAL`: how often runner agents send a heartbeat (10s; at
    /// least 1s, counted in whole seconds).
    pub agent_heartbeat_interval: Duration,
    /// `DEEPLO_AGENT_HEARTBEAT_ALLOWANCE`: how many intervals may pass without a word from an
    /// agent before its server is unreachable (3).
    pub agent_heartbeat_allowance: u32,
    /// `DEEPLO_AGENT_GRACE`: how long a deploy waits for an agent whose connection dropped
    /// to come back (90s).
    pub agent_grace: Duration,
    /// `DEEPLO_TLS_CERT_FILE`: a PEM certificate chain; with `DEEPLO_TLS_KEY_FILE` the daemon
    /// serves HTTPS (and agents `wss://`) itself. Default none: plain HTTP, for a daemon
    /// behind a proxy that terminates TLS.
    pub tls_cert_file: Option<PathBuf>,
    /// `DEEPLO_TLS_KEY_FILE`: the PEM private key of `DEEPLO_TLS_CERT_FILE`.
    pub tls_key_file: Option<PathBuf>,
    /// `DEEPLO_SECRETS_KEY_FILE`: the master key that seals the projects' environment
    /// values in the store (default `$DEEPLO_DATA_DIR/secrets.key`; created, mode 0600, at
    /// first use).
    pub secrets_key_file: PathBuf,
}

impl Settings {
    /// Reads every setting from `env`.
    ///
    /// # Errors
    ///
    /// One [`Diagnostic`] per variable whose value does not parse or is out of range; its
    /// path is the variable's name.
    pub fn from_env(env: &EnvMap) -> Result<Settings, Vec<Diagnostic>> {
        let mut r = Vars { env, errors: Vec::new() };
        let data_dir = r.path("DEEPLO_DATA_DIR").unwrap_or_else(|| PathBuf::from("/var/lib/deeplo"));
        let ssh_port = match ssh_port(env) {
            Ok(port) => port,
            Err(message) => {
                r.errors.push(Diagnostic::error("DEEPLO_SSH_PORT", message));
                22
            }
        };
        let unix_socket = r.path("DEEPLO_UNIX_SOCKET").unwrap_or_else(|| PathBuf::from("/run/deeplo/deeplo.sock"));
        if unix_socket.extension().is_none_or(|ext| ext != "sock") {
            r.errors.push(Diagnostic::error(
                "DEEPLO_UNIX_SOCKET",
                format!("must be a Unix socket path ending in .sock, got {:?}", unix_socket.display().to_string()),
            ));
        }
        let settings = Settings {
            config_file: r.path("DEEPLO_CONFIG_FILE").unwrap_or_else(|| PathBuf::from("/etc/deeplo/config.yml")),
            ssh_private_key_file: r.path("DEEPLO_SSH_PRIVATE_KEY_FILE"),
            ssh_key_passphrase_file: r.path("DEEPLO_SSH_KEY_PASSPHRASE_FILE"),
            ssh_user: ssh_user(env).to_owned(),
            ssh_port,
            ssh_known_hosts: r.path("DEEPLO_SSH_KNOWN_HOSTS").unwrap_or_else(|| data_dir.join("known_hosts")),
            ssh_host_key_policy: r.choice(
                "DEEPLO_SSH_HOST_KEY_POLICY",
                &[("accept-new", HostKeyPolicy::AcceptNew), ("strict", HostKeyPolicy::Strict)],
                HostKeyPolicy::AcceptNew,
            ),
            max_workers: match r.number("DEEPLO_MAX_WORKERS", 0, 1 << 16, 0) {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => usize::try_from(n).unwrap_or(1),
            },
            max_host_concurrency: usize::try_from(r.number("DEEPLO_MAX_HOST_CONCURRENCY", 1, 1 << 16, 1)).unwrap_or(1),
            deploy_timeout: Some(r.duration("DEEPLO_DEPLOY_TIMEOUT", Duration::ZERO)).filter(|d| !d.is_zero()),
            shutdown_grace: r.duration("DEEPLO_SHUTDOWN_GRACE", Duration::from_secs(30)),
            log_level: r.choice(
                "DEEPLO_LOG_LEVEL",
                &[
                    ("debug", LogLevel::Debug),
                    ("info", LogLevel::Info),
                    ("warn", LogLevel::Warn),
                    ("error", LogLevel::Error),
                ],
                LogLevel::Info,
            ),
            log_format: r.choice(
                "DEEPLO_LOG_FORMAT",
                &[("pretty", LogFormat::Pretty), ("text", LogFormat::Text), ("json", LogFormat::Json)],
                LogFormat::Pretty,
            ),
            log_retention_days: match r.number("DEEPLO_LOG_RETENTION_DAYS", 0, u64::from(u32::MAX), 14) {
                0 => None,
                n => u32::try_from(n).ok(),
            },
            http_port: u16::try_from(r.number("DEEPLO_HTTP_PORT", 0, 65535, 8470)).unwrap_or(8470),
            public_url: r.text("DEEPLO_PUBLIC_URL"),
            unix_socket,
            admin_group: r.text("DEEPLO_ADMIN_GROUP"),
            github_webhook_secret_file: r.path("DEEPLO_GITHUB_WEBHOOK_SECRET_FILE"),
            github_token_file: r.path("DEEPLO_GITHUB_TOKEN_FILE"),
            github_environment: r.text("DEEPLO_GITHUB_ENVIRONMENT"),
            agent_heartbeat_interval: r.duration("DEEPLO_AGENT_HEARTBEAT_INTERVAL", Duration::from_secs(10)),
            agent_heartbeat_allowance: u32::try_from(r.number("DEEPLO_AGENT_HEARTBEAT_ALLOWANCE", 1, 1000, 3))
                .unwrap_or(3),
            agent_grace: r.duration("DEEPLO_AGENT_GRACE", Duration::from_secs(90)),
            tls_cert_file: r.path("DEEPLO_TLS_CERT_FILE"),
            tls_key_file: r.path("DEEPLO_TLS_KEY_FILE"),
            secrets_key_file: r.path("DEEPLO_SECRETS_KEY_FILE").unwrap_or_else(|| data_dir.join("secrets.key")),
            data_dir,
        };
        if settings.agent_heartbeat_interval < Duration::from_secs(1) {
            r.errors.push(Diagnostic::error("DEEPLO_AGENT_HEARTBEAT_INTERVAL", "must be at least 1s"));
        }
        if settings.tls_cert_file.is_some() != settings.tls_key_file.is_some() {
            let (missing, given) = match settings.tls_cert_file {
                Some(_) => ("DEEPLO_TLS_KEY_FILE", "DEEPLO_TLS_CERT_FILE"),
                None => ("DEEPLO_TLS_CERT_FILE", "DEEPLO_TLS_KEY_FILE"),
            };
            r.errors.push(Diagnostic::error(missing, format!("must be set too when {given} is: both or neither")));
        }
        if r.errors.is_empty() { Ok(settings) } else { Err(r.errors) }
    }
}

/// `DEEPLO_SSH_USER`, or `deploy`: also the default of `hosts[].user`.
pub(super) fn ssh_user(env: &EnvMap) -> &str {
    env.non_empty("DEEPLO_SSH_USER").unwrap_or("deploy")
}

/// `DEEPLO_SSH_PORT`, or 22: also the default of `hosts[].port`.
pub(super) fn ssh_port(env: &EnvMap) -> Result<u16, String> {
    match env.non_empty("DEEPLO_SSH_PORT") {
        None => Ok(22),
        Some(raw) => match raw.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!("expected a port number from 1 to 65535, got {raw:?}")),
        },
    }
}

/// Reads variables and collects one error per bad one.
struct Vars<'e> {
    env: &'e EnvMap,
    errors: Vec<Diagnostic>,
}

impl Vars<'_> {
    fn text(&self, key: &str) -> Option<String> {
        self.env.non_empty(key).map(str::to_owned)
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.env.non_empty(key).map(PathBuf::from)
    }

    fn number(&mut self, key: &str, min: u64, max: u64, default: u64) -> u64 {
        let Some(raw) = self.env.non_empty(key) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.errors
                    .push(Diagnostic::error(key, format!("expected a whole number from {min} to {max}, got {raw:?}")));
                default
            }
        }
    }

    fn duration(&mut self, key: &str, default: Duration) -> Duration {
        let Some(raw) = self.env.non_empty(key) else {
            return default;
        };
        parse_duration(raw).unwrap_or_else(|message| {
            self.errors.push(Diagnostic::error(key, message));
            default
        })
    }

    fn choice<T: Copy>(&mut self, key: &str, choices: &[(&str, T)], default: T) -> T {
        let Some(raw) = self.env.non_empty(key) else {
            return default;
        };
        if let Some((_, value)) = choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(raw)) {
            return *value;
        }
        let names: Vec<String> = choices.iter().map(|(name, _)| format!("{name:?}")).collect();
        self.errors.push(Diagnostic::error(key, format!("unknown value {raw:?}; use one of {}", names.join(", "))));
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Vec<Diagnostic>> {
        Settings::from_env(&vars.iter().copied().collect())
    }

    #[test]
    fn defaults_match_the_go_tool() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/deeplo"));
        assert_eq!(s.config_file, PathBuf::from("/etc/deeplo/config.yml"));
        assert_eq!(s.ssh_private_key_file, None);
        assert_eq!(s.ssh_key_passphrase_file, None);
        assert_eq!(s.ssh_user, "deploy");
        assert_eq!(s.ssh_port, 22);
        assert_eq!(s.ssh_known_hosts, PathBuf::from("/var/lib/deeplo/known_hosts"));
        assert_eq!(s.ssh_host_key_policy, HostKeyPolicy::AcceptNew);
        assert!(s.max_workers >= 1);
        assert_eq!(s.max_workers, std::thread::available_parallelism().map_or(1, usize::from));
        assert_eq!(s.max_host_concurrency, 1);
        assert_eq!(s.deploy_timeout, None);
        assert_eq!(s.shutdown_grace, Duration::from_secs(30));
        assert_eq!(s.log_level, LogLevel::Info);
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert_eq!(s.log_retention_days, Some(14));
        assert_eq!(s.http_port, 8470);
        assert_eq!(s.public_url, None);
        assert_eq!(s.unix_socket, PathBuf::from("/run/deeplo/deeplo.sock"));
        assert_eq!(s.admin_group, None);
        assert_eq!(s.github_webhook_secret_file, None);
        assert_eq!(s.github_token_file, None);
        assert_eq!(s.github_environment, None);
        assert_eq!((s.agent_heartbeat_interval, s.agent_heartbeat_allowance), (Duration::from_secs(10), 3));
        assert_eq!(s.agent_grace, Duration::from_secs(90));
        assert_eq!((s.tls_cert_file, s.tls_key_file), (None, None));
    }

    #[test]
    fn agent_and_tls_settings() {
        let s = settings(&[
            ("DEEPLO_AGENT_HEARTBEAT_INTERVAL", "2s"),
            ("DEEPLO_AGENT_HEARTBEAT_ALLOWANCE", "5"),
            ("DEEPLO_AGENT_GRACE", "2m"),
            ("DEEPLO_TLS_CERT_FILE", "/etc/deeplo/tls.crt"),
            ("DEEPLO_TLS_KEY_FILE", "/etc/deeplo/tls.key"),
        ])
        .unwrap();
        assert_eq!((s.agent_heartbeat_interval, s.agent_heartbeat_allowance), (Duration::from_secs(2), 5));
        assert_eq!(s.agent_grace, Duration::from_secs(120));
        assert_eq!(s.tls_key_file, Some(PathBuf::from("/etc/deeplo/tls.key")));
        let errs = settings(&[("DEEPLO_TLS_CERT_FILE", "/c")]).unwrap_err();
        assert_eq!(errs[0].path, "DEEPLO_TLS_KEY_FILE");
        let errs = settings(&[("DEEPLO_AGENT_HEARTBEAT_INTERVAL", "500ms")]).unwrap_err();
        assert_eq!(
            (errs[0].path.as_str(), errs[0].message.as_str()),
            ("DEEPLO_AGENT_HEARTBEAT_INTERVAL", "must be at least 1s")
        );
        let errs = settings(&[("DEEPLO_AGENT_HEARTBEAT_ALLOWANCE", "0")]).unwrap_err();
        assert_eq!(errs[0].path, "DEEPLO_AGENT_HEARTBEAT_ALLOWANCE");
    }

    #[test]
    fn empty_values_mean_default() {
        let s = settings(&[
            ("DEEPLO_DATA_DIR", ""),
            ("DEEPLO_SSH_PORT", ""),
            ("DEEPLO_LOG_LEVEL", ""),
            ("DEEPLO_PUBLIC_URL", ""),
        ])
        .unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/deeplo"));
        assert_eq!(s.ssh_port, 22);
        assert_eq!(s.log_level, LogLevel::Info);
        assert_eq!(s.public_url, None);
    }

    #[test]
    fn reads_every_variable() {
        let s = settings(&[
            ("DEEPLO_DATA_DIR", "/data"),
            ("DEEPLO_CONFIG_FILE", "/c.yml"),
            ("DEEPLO_SSH_PRIVATE_KEY_FILE", "/k"),
            ("DEEPLO_SSH_KEY_PASSPHRASE_FILE", "/p"),
            ("DEEPLO_SSH_USER", "ops"),
            ("DEEPLO_SSH_PORT", "2222"),
            ("DEEPLO_SSH_HOST_KEY_POLICY", "strict"),
            ("DEEPLO_MAX_WORKERS", "3"),
            ("DEEPLO_MAX_HOST_CONCURRENCY", "2"),
            ("DEEPLO_DEPLOY_TIMEOUT", "10m"),
            ("DEEPLO_SHUTDOWN_GRACE", "1m30s"),
            ("DEEPLO_LOG_LEVEL", "warn"),
            ("DEEPLO_LOG_FORMAT", "json"),
            ("DEEPLO_LOG_RETENTION_DAYS", "0"),
            ("DEEPLO_HTTP_PORT", "9000"),
            ("DEEPLO_PUBLIC_URL", "https://deeplo.example.com"),
            ("DEEPLO_UNIX_SOCKET", "/tmp/d.sock"),
            ("DEEPLO_ADMIN_GROUP", "deeplo-admin"),
            ("DEEPLO_GITHUB_WEBHOOK_SECRET_FILE", "/s"),
            ("DEEPLO_GITHUB_TOKEN_FILE", "/t"),
            ("DEEPLO_GITHUB_ENVIRONMENT", "prod"),
        ])
        .unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/data"));
        assert_eq!(s.config_file, PathBuf::from("/c.yml"));
        assert_eq!(s.ssh_private_key_file, Some(PathBuf::from("/k")));
        assert_eq!(s.ssh_key_passphrase_file, Some(PathBuf::from("/p")));
        assert_eq!(s.ssh_user, "ops");
        assert_eq!(s.ssh_port, 2222);
        // The known_hosts default follows the data directory.
        assert_eq!(s.ssh_known_hosts, PathBuf::from("/data/known_hosts"));
        assert_eq!(s.ssh_host_key_policy, HostKeyPolicy::Strict);
        assert_eq!(s.max_workers, 3);
        assert_eq!(s.max_host_concurrency, 2);
        assert_eq!(s.deploy_timeout, Some(Duration::from_secs(600)));
        assert_eq!(s.shutdown_grace, Duration::from_secs(90));
        assert_eq!(s.log_level, LogLevel::Warn);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_retention_days, None);
        assert_eq!(s.http_port, 9000);
        assert_eq!(s.public_url.as_deref(), Some("https://deeplo.example.com"));
        assert_eq!(s.unix_socket, PathBuf::from("/tmp/d.sock"));
        assert_eq!(s.admin_group.as_deref(), Some("deeplo-admin"));
        assert_eq!(s.github_webhook_secret_file, Some(PathBuf::from("/s")));
        assert_eq!(s.github_token_file, Some(PathBuf::from("/t")));
        assert_eq!(s.github_environment.as_deref(), Some("prod"));
    }

    #[test]
    fn bad_values_are_errors_naming_variable_and_value() {
        let table = [
            ("DEEPLO_SSH_PORT", "abc", "expected a port number from 1 to 65535, got \"abc\""),
            ("DEEPLO_SSH_PORT", "0", "got \"0\""),
            ("DEEPLO_SSH_PORT", "70000", "got \"70000\""),
            ("DEEPLO_SSH_HOST_KEY_POLICY", "yolo", "unknown value \"yolo\"; use one of \"accept-new\", \"strict\""),
            ("DEEPLO_MAX_WORKERS", "-1", "got \"-1\""),
            ("DEEPLO_MAX_HOST_CONCURRENCY", "0", "from 1 to 65536, got \"0\""),
            ("DEEPLO_DEPLOY_TIMEOUT", "10", "a unit is required"),
            ("DEEPLO_SHUTDOWN_GRACE", "soon", "invalid duration \"soon\""),
            ("DEEPLO_LOG_LEVEL", "verbose", "unknown value \"verbose\""),
            ("DEEPLO_LOG_FORMAT", "xml", "unknown value \"xml\""),
            ("DEEPLO_LOG_RETENTION_DAYS", "two", "got \"two\""),
            ("DEEPLO_HTTP_PORT", "65536", "got \"65536\""),
            ("DEEPLO_UNIX_SOCKET", "/run/deeplo/socket", "ending in .sock"),
        ];
        for (key, value, want) in table {
            let errs = settings(&[(key, value)]).unwrap_err();
            assert_eq!(errs.len(), 1, "{key}={value}: {errs:?}");
            assert_eq!(errs[0].path, key);
            assert!(errs[0].message.contains(want), "{key}={value}: {}", errs[0].message);
        }
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let errs =
            settings(&[("DEEPLO_SSH_PORT", "x"), ("DEEPLO_LOG_LEVEL", "x"), ("DEEPLO_HTTP_PORT", "x")]).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["DEEPLO_SSH_PORT", "DEEPLO_LOG_LEVEL", "DEEPLO_HTTP_PORT"]);
    }

    #[test]
    fn http_port_zero_is_allowed() {
        assert_eq!(settings(&[("DEEPLO_HTTP_PORT", "0")]).unwrap().http_port, 0);
    }
}
