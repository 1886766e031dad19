//! Taking a project off a host: what a config reload does to a pair that is gone or moved.
//!
//! One constant POSIX `sh` script (paths, names and the compose command only as positional
//! parameters, as in [`super::remote`]) runs `compose down --remove-orphans` in the project's
//! directory, then removes the live, `.staging` and `.old` directories.
//!
//! It tolerates what an earlier teardown, a person or a crash left: a live directory that is
//! gone but `.old` present (an interrupted swap) is where compose runs; with no directory at
//! all, or when `compose down` fails (a compose file that no longer parses), the project's
//! containers and networks are removed by their `com.docker.compose.project` label, which
//! is what compose itself finds them by. Volumes are kept, as `compose down` keeps them.

use super::compose::{ComposeCommand, project_name};
use super::remote::RemoteDirs;
use super::steps::{checked, detect_compose};
use crate::Result;
use crate::config::{Host, Project, Teardown};
use crate::path::remote_join;
use crate::transport::{OutputSink, RemoteCommand, Transport};

/// What a teardown found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TeardownOutcome {
    /// The directory `compose down` ran in: the live one, or `.old` after an interrupted swap.
    pub compose_dir: Option<String>,
    /// Containers were removed by their compose label (no directory, or `compose down` failed).
    pub by_label: bool,
    /// The live, `.staging` and `.old` directories were removed.
    pub files_removed: bool,
}

const MARK: &str = "deeplo-teardown:";

/// The teardown script. `compose` is needed when `down` is set.
///
/// Parameters: live, staging, old, compose project name, down (`1`/`0`), remove files
/// (`1`/`0`), then the compose program's words followed by `-f FILE` for each compose file
/// (relative to the project directory, which the script changes into).
pub(crate) fn teardown_command(
    dirs: &RemoteDirs,
    compose_project: &str,
    compose: Option<&ComposeCommand>,
    files: &[String],
    remove_files: bool,
) -> RemoteCommand {
    const SCRIPT: &str = r#"live=$1; staging=$2; old=$3; project=$4; down=$5; remove=$6; shift 6
by_label() {
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project") || return 1
  if [ -n "$ids" ]; then docker rm -f $ids >/dev/null || return 1; fi
  nets=$(docker network ls -q --filter "label=com.docker.compose.project=$project") || return 1
  if [ -n "$nets" ]; then docker network rm $nets >/dev/null || return 1; fi
  echo "deeplo-teardown: label"
}
if [ "$down" = 1 ]; then
  if [ -d "$live" ]; then dir=$live; elif [ -d "$old" ]; then dir=$old; else dir=; fi
  if [ -n "$dir" ]; then
    printf 'deeplo-teardown: down %s\n' "$dir"
    if ! (cd -- "$dir" && "$@" --project-name "$project" down --remove-orphans); then
      echo "compose down failed in $dir; removing the containers of compose project $project by label" >&2
      by_label || exit 1
    fi
  else
    echo "$live does not exist; removing the containers of compose project $project by label" >&2
    by_label || exit 1
  fi
fi
if [ "$remove" = 1 ]; then
  rm -rf -- "$live" "$staging" "$old" || exit 1
  echo "deeplo-teardown: removed"
fi"#;
    let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
    let mut params = vec![
        dirs.live.clone(),
        dirs.staging.clone(),
        dirs.old.clone(),
        compose_project.to_owned(),
        flag(compose.is_some()),
        flag(remove_files),
    ];
    if let Some(compose) = compose {
        params.extend(compose.words.iter().cloned());
        for file in files {
            params.push("-f".into());
            params.push(file.clone());
        }
    }
    RemoteCommand::script(SCRIPT, params)
}

/// Tears `project` down on `host` as `what` says, over an open transport. Output goes to
/// `sink`: compose's, and the script's own `deeplo-teardown: ...` lines saying what it did.
///
/// # Errors
///
/// [`ErrorKind::Deploy`](crate::ErrorKind::Deploy) when the host has no compose command,
/// [`ErrorKind::RemoteCommand`](crate::ErrorKind::RemoteCommand) when the containers could
/// not be removed (the files are then left in place) or the files could not be removed,
/// transport errors as they come. Each error names the project and host.
pub async fn teardown(
    transport: &dyn Transport,
    host: &Host,
    project: &Project,
    what: Teardown,
    sink: &dyn OutputSink,
) -> Result<TeardownOutcome> {
    let context = |e: crate::Error| e.with_step("teardown").with_project(&project.name).with_host(&host.name);
    let dirs = RemoteDirs::new(remote_join(&host.deploy_dir, &project.deploy_subdir));
    let compose = if what.down { Some(detect_compose(transport, host).await.map_err(context)?) } else { None };
    let name = project_name(&project.name, host.compose_project_prefix.as_deref());
    let files: Vec<String> = project.compose_files.iter().map(|f| f.as_str().to_owned()).collect();
    let cmd = teardown_command(&dirs, &name, compose.as_ref(), &files, what.remove_files);
    let out = checked(transport, &cmd, sink, "teardown").await.map_err(context)?;
    Ok(parse_outcome(&out.stdout_str()))
}

fn parse_outcome(stdout: &str) -> TeardownOutcome {
    let mut outcome = TeardownOutcome::default();
    for line in stdout.lines() {
        match line.strip_prefix(MARK).map(str::trim_start) {
            Some("label") => outcome.by_label = true,
            Some("removed") => outcome.files_removed = true,
            Some(other) => {
                if let Some(dir) = other.strip_prefix("down ") {
                    outcome.compose_dir = Some(dir.to_owned());
                }
            }
            None => {}
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_local(cmd: &RemoteCommand) -> std::process::Output {
        std::process::Command::new("sh").arg("-c").arg(cmd.to_shell()).output().unwrap()
    }

    /// A "compose" that records its working directory and arguments, one per line.
    fn recorder(log: &std::path::Path) -> ComposeCommand {
        let script = format!("{{ pwd; printf '%s\\n' \"$@\"; }} > '{}'", log.display());
        ComposeCommand { words: vec!["sh".into(), "-c".into(), script, "compose".into()], v2: true }
    }

    #[test]
    fn runs_compose_down_in_the_live_directory_then_removes_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("pwned");
        let live = tmp.path().join(format!("app $(touch {}) 'q'", marker.display()));
        let dirs = RemoteDirs::new(live.display().to_string());
        for d in [&dirs.live, &dirs.staging, &dirs.old] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(format!("{d}/.env"), "A=1").unwrap();
        }
        let log = tmp.path().join("args");
        let files = ["compose.yml".to_owned(), "a b;c.yml".to_owned()];
        let cmd = teardown_command(&dirs, "p-web", Some(&recorder(&log)), &files, true);
        let out = run_local(&cmd);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let recorded = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = recorded.lines().collect();
        assert_eq!(lines[0], dirs.live);
        assert_eq!(
            &lines[1..],
            ["-f", "compose.yml", "-f", "a b;c.yml", "--project-name", "p-web", "down", "--remove-orphans"]
        );
        let outcome = parse_outcome(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            outcome,
            TeardownOutcome { compose_dir: Some(dirs.live.clone()), by_label: false, files_removed: true }
        );
        for d in [&dirs.live, &dirs.staging, &dirs.old] {
            assert!(!std::path::Path::new(d).exists(), "{d} is still there");
        }
        assert!(!marker.exists(), "a metacharacter ran");
    }

    #[test]
    fn an_interrupted_swap_is_torn_down_from_old() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = RemoteDirs::new(tmp.path().join("live").display().to_string());
        std::fs::create_dir_all(&dirs.old).unwrap();
        let log = tmp.path().join("args");
        let out = run_local(&teardown_command(&dirs, "web", Some(&recorder(&log)), &["compose.yml".into()], true));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().next(), Some(dirs.old.as_str()));
        assert!(!std::path::Path::new(&dirs.old).exists());
    }

    #[test]
    fn keeps_files_when_asked_and_skips_compose_when_not_downing() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = RemoteDirs::new(tmp.path().join("live").display().to_string());
        std::fs::create_dir_all(&dirs.live).unwrap();
        let log = tmp.path().join("args");
        let out = run_local(&teardown_command(&dirs, "web", Some(&recorder(&log)), &["compose.yml".into()], false));
        assert!(out.status.success());
        assert!(log.exists() && std::path::Path::new(&dirs.live).is_dir());
        assert!(!parse_outcome(&String::from_utf8_lossy(&out.stdout)).files_removed);

        std::fs::remove_file(&log).unwrap();
        let out = run_local(&teardown_command(&dirs, "web", None, &["compose.yml".into()], true));
        assert!(out.status.success());
        assert!(!log.exists(), "compose ran although down was off");
        assert!(!std::path::Path::new(&dirs.live).exists());
    }

    #[test]
    fn nothing_left_to_remove_is_no_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = RemoteDirs::new(tmp.path().join("live").display().to_string());
        let out = run_local(&teardown_command(&dirs, "web", None, &[], true));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(parse_outcome(&String::from_utf8_lossy(&out.stdout)).files_removed);
    }
}
