//! Docker Compose on the host: the project name, the command line, and `ps` output.

use serde::{Deserialize, Serialize};

use crate::model::ProjectName;
use crate::transport::RemoteCommand;

/// The compose project name for a deeplo project: lowercase; runs of characters other than
/// `a-z`, `0-9`, `-` and `_` become one `-`; `-` and `_` trimmed at both ends; a leading
/// digit gets the prefix `deeplo-` (compatible with the Go tool). Derived from the project
/// name, not the directory, so that moving `deploy_subdir` keeps the same containers.
pub fn project_name(project: &ProjectName, prefix: Option<&str>) -> String {
    let raw = match prefix {
        Some(prefix) => format!("{prefix}{}", project.as_str()),
        None => project.as_str().to_owned(),
    };
    let mut out = String::with_capacity(raw.len());
    let mut in_run = false;
    for c in raw.to_ascii_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '_');
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) { format!("deeplo-{trimmed}") } else { trimmed.to_owned() }
}

/// Which compose program the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ComposeCommand {
    /// Program and leading arguments: `["docker", "compose"]`, `["docker-compose"]`, or the
    /// Compose v2 plugin binary itself (`["/usr/libexec/docker/cli-plugins/docker-compose"]`),
    /// which runs the same code as `docker compose` without starting the docker CLI first.
    pub words: Vec<String>,
    /// Whether it is Compose v2 (`ps --format json`); the standalone v1
    /// program is not.
    pub v2: bool,
}

impl ComposeCommand {
    pub fn v2() -> Self {
        Self { words: vec!["docker".into(), "compose".into()], v2: true }
    }

    #[cfg(test)]
    pub fn v1() -> Self {
        Self { words: vec!["docker-compose".into()], v2: false }
    }

    /// From what a host printed for `<words> version --short`: `2.26.1`, `v2.26.1`, `1.29.2`.
    pub fn from_version(words: Vec<String>, version: &str) -> Self {
        let major = version.trim().trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
        Self { words, v2: major.is_none_or(|m| m >= 2) }
    }

    /// Whether this is the standalone v1 program, whose `ps` has no `--format json`.
    pub fn is_v1(&self) -> bool {
        !self.v2
    }

    /// `<compose> --project-name <project> --project-directory <dir> -f <dir>/<file>... <args>`.
    pub fn command(&self, project: &str, dir: &str, files: &[String], args: &[&str]) -> RemoteCommand {
        let mut words = self.words.iter();
        let program = words.next().cloned().unwrap_or_else(|| "docker".into());
        let mut cmd = RemoteCommand::new(program).args(words.cloned());
        cmd = cmd.arg("--project-name").arg(project).arg("--project-directory").arg(dir);
        for file in files {
            cmd = cmd.arg("-f").arg(format!("{}/{}", dir.trim_end_matches('/'), file));
        }
        cmd.args(args.iter().copied())
    }

    /// The words of a command run from inside the project's directory (`--project-directory
    /// .` and the files relative to it), for scripts that run it in staging and then in live.
    pub fn words_in_dir(&self, project: &str, files: &[String]) -> Vec<String> {
        let mut words = self.words.clone();
        words.extend(["--project-name".to_owned(), project.to_owned(), "--project-directory".into(), ".".into()]);
        for file in files {
            words.push("-f".into());
            words.push(file.clone());
        }
        words
    }
}

/// One container as `ps` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ServiceState {
    /// The compose service (`web`, `db`...).
    #[serde(rename(deserialize = "Service", serialize = "service"), default)]
    pub service: String,
    /// The container's name (`site-web-1`).
    #[serde(rename(deserialize = "Name", serialize = "name"), default)]
    pub name: String,
    /// `running`, `exited`, `restarting`, `created`...
    #[serde(rename(deserialize = "State", serialize = "state"), default)]
    pub state: String,
    /// `Up 3 seconds (healthy)`...
    #[serde(rename(deserialize = "Status", serialize = "status"), default)]
    pub status: String,
    /// `healthy`, `unhealthy`, `starting`, or empty when the service has no healthcheck.
    #[serde(rename(deserialize = "Health", serialize = "health"), default)]
    pub health: String,
    /// The exit status of an exited container (0 otherwise).
    #[serde(rename(deserialize = "ExitCode", serialize = "exit_code"), default)]
    pub exit_code: i64,
    /// `docker ps` puts labels here as `k=v,k=v`; the service name is taken from them when
    /// `Service` is absent.
    #[serde(rename = "Labels", default, skip_serializing)]
    labels: String,
    /// `docker ps` calls the name `Names`; compose 2.26 sends both.
    #[serde(rename = "Names", default, skip_serializing)]
    names: String,
}

impl ServiceState {
    /// Whether the container runs now (`state` is `running`, whatever its health).
    pub fn is_running(&self) -> bool {
        self.state.eq_ignore_ascii_case("running")
    }

    /// Exited with status 0: a one-shot service that did its work.
    pub fn completed(&self) -> bool {
        self.state.eq_ignore_ascii_case("exited") && self.exit_code == 0
    }

    fn fill_from_labels(&mut self) {
        // `docker ps` has no ExitCode field; its Status reads "Exited (3) 2 seconds ago".
        if self.exit_code == 0
            && let Some(code) = self.status.strip_prefix("Exited (").and_then(|r| r.split(')').next())
        {
            self.exit_code = code.parse().unwrap_or(0);
        }
        if self.name.is_empty() {
            self.name = std::mem::take(&mut self.names);
        }
        if self.service.is_empty()
            && let Some(service) = self.labels.split(',').find_map(|kv| kv.strip_prefix("com.docker.compose.service="))
        {
            self.service = service.to_owned();
        }
        if self.health.is_empty() {
            // `docker ps` has no Health field; its Status ends in "(healthy)" and the like.
            for h in ["(healthy)", "(unhealthy)", "(health: starting)"] {
                if self.status.ends_with(h) {
                    self.health = h.trim_matches(|c| c == '(' || c == ')').trim_start_matches("health: ").to_owned();
                }
            }
        }
    }
}

/// Parses `ps --format json` output: a JSON array (compose 2.0 to 2.20) or one object per
/// line (later versions, and `docker ps --format '{{json .}}'`). Empty output, `null` and
/// `[]` mean no containers.
pub(crate) fn parse_ps(output: &str) -> Result<Vec<ServiceState>, String> {
    let text = output.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    let mut states: Vec<ServiceState> = if text.starts_with('[') {
        serde_json::from_str(text).map_err(|e| format!("cannot parse compose ps output as a JSON array: {e}"))?
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("cannot parse compose ps line {l:?}: {e}")))
            .collect::<Result<_, _>>()?
    };
    for s in &mut states {
        s.fill_from_labels();
    }
    states.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ProjectName {
        ProjectName::new(s).unwrap()
    }

    #[test]
    fn project_names() {
        let cases = [
            ("web", "web"),
            ("Web.App", "web-app"),
            ("a..b", "a-b"),
            ("a_b-c", "a_b-c"),
            ("9lives", "deeplo-9lives"),
            ("x-", "x"),
            ("a._b", "a-_b"),
        ];
        for (input, want) in cases {
            assert_eq!(project_name(&name(input), None), want, "{input}");
        }
        assert_eq!(project_name(&name("web"), Some("h2-")), "h2-web");
    }

    #[test]
    fn command_line() {
        let cmd = ComposeCommand::v2().command("web", "/srv/a b", &["compose.yml".into()], &["config", "--quiet"]);
        assert_eq!(
            cmd.to_shell(),
            "docker compose --project-name web --project-directory '/srv/a b' -f '/srv/a b/compose.yml' config --quiet"
        );
        assert!(ComposeCommand::v1().is_v1());
        assert!(!ComposeCommand::v2().is_v1());
        let plugin = vec!["/usr/libexec/docker/cli-plugins/docker-compose".to_owned()];
        assert!(ComposeCommand::from_version(plugin.clone(), "2.26.1\n").v2);
        assert!(ComposeCommand::from_version(plugin.clone(), "v2.3.3").v2);
        assert!(!ComposeCommand::from_version(plugin.clone(), "1.29.2").v2);
        assert_eq!(
            ComposeCommand::v2().words_in_dir("web", &["compose.yml".into()]),
            ["docker", "compose", "--project-name", "web", "--project-directory", ".", "-f", "compose.yml"]
        );
    }

    #[test]
    fn ps_ndjson_and_array() {
        let nd = r#"{"Service":"web","Name":"p-web-1","State":"running","Status":"Up 2 seconds (healthy)","Health":"healthy","ExitCode":0}
{"Service":"db","Name":"p-db-1","State":"exited","Status":"Exited (1)","Health":"","ExitCode":1}"#;
        let states = parse_ps(nd).unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].service, "db");
        assert!(!states[0].is_running());
        assert_eq!(states[1].health, "healthy");
        let arr = r#"[{"Service":"web","Name":"p-web-1","State":"running","Status":"Up","Health":""}]"#;
        let states = parse_ps(arr).unwrap();
        assert_eq!(states.len(), 1);
        assert!(states[0].is_running());
        for empty in ["", "null", "[]", "\n"] {
            assert!(parse_ps(empty).unwrap().is_empty(), "{empty:?}");
        }
        assert!(parse_ps("{not json").is_err());
    }

    #[test]
    fn compose_2_26_lines_with_name_and_names() {
        let line = r#"{"Name":"p-web-1","Names":"p-web-1","Service":"web","State":"running","Status":"Up 1 second","Health":""}"#;
        let states = parse_ps(line).unwrap();
        assert_eq!(states[0].name, "p-web-1");
        assert_eq!(states[0].service, "web");
    }

    #[test]
    fn docker_ps_lines_take_service_and_health_from_labels_and_status() {
        let line = r#"{"Names":"p-web-1","State":"running","Status":"Up 5 seconds (unhealthy)","Labels":"com.docker.compose.project=p,com.docker.compose.service=web"}"#;
        let states = parse_ps(line).unwrap();
        assert_eq!(states[0].service, "web");
        assert_eq!(states[0].health, "unhealthy");
        let starting = r#"{"Names":"x","State":"running","Status":"Up 1 second (health: starting)","Labels":""}"#;
        assert_eq!(parse_ps(starting).unwrap()[0].health, "starting");
    }
}
