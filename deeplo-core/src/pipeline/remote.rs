//! The remote commands of a deploy, other than compose itself.
//!
//! Each is a constant POSIX `sh` script that receives paths and names only as positional
//! parameters, so no user data is ever parsed by the remote shell. Several file operations
//! share one script to save round trips.

use crate::transport::RemoteCommand;

/// The three directories of a deployed project on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDirs {
    /// `{deploy_dir}/{deploy_subdir}`: what compose runs from.
    pub live: String,
    /// `live.staging`: the new commit's files before the swap.
    pub staging: String,
    /// `live.old`: the previous files during a swap, removed once the deploy is good.
    pub old: String,
}

impl RemoteDirs {
    pub fn new(live: String) -> Self {
        Self { staging: format!("{live}.staging"), old: format!("{live}.old"), live }
    }
}

/// Prints the compose command the host has (`docker compose` preferred, then
/// `docker-compose`) or exits 127/126 with a sentence saying what is missing.
pub fn detect_compose() -> RemoteCommand {
    const SCRIPT: &str = r#"command -v docker >/dev/null 2>&1 || { echo "docker is not installed on this host (no 'docker' in PATH)" >&2; exit 127; }
if docker compose version >/dev/null 2>&1; then echo "docker compose"
elif command -v docker-compose >/dev/null 2>&1; then echo "docker-compose"
else echo "neither 'docker compose' (the Compose v2 plugin) nor 'docker-compose' is installed on this host" >&2; exit 126; fi"#;
    RemoteCommand::script(SCRIPT, std::iter::empty::<String>())
}

/// Checks a configured compose command: runs `<words> version`.
pub fn check_compose(words: &[String]) -> RemoteCommand {
    const SCRIPT: &str = r#""$@" version >/dev/null 2>&1 || { echo "the configured compose_command '$*' does not run on this host" >&2; exit 126; }; echo "$*""#;
    RemoteCommand::script(SCRIPT, words.iter().cloned())
}

/// Repairs a host left by a crash between the two moves of a swap (live missing, `.old`
/// present: `.old` goes back), then empties the staging directory.
/// Prints `repaired` when it restored the live directory.
pub fn prepare_staging(dirs: &RemoteDirs) -> RemoteCommand {
    const SCRIPT: &str = r#"set -e
if [ ! -e "$1" ] && [ -d "$3" ]; then mv -- "$3" "$1"; echo repaired; fi
rm -rf -- "$2"
mkdir -p -- "$2""#;
    RemoteCommand::script(SCRIPT, [&dirs.live, &dirs.staging, &dirs.old])
}

/// Copies each listed file from live into staging when live has it and staging does not
/// (a committed file wins). Prints the names it copied, one per line.
pub fn persist(dirs: &RemoteDirs, files: &[String]) -> RemoteCommand {
    const SCRIPT: &str = r#"set -e
live=$1; staging=$2; shift 2
for f in "$@"; do
  if [ -f "$live/$f" ] && [ ! -e "$staging/$f" ] && [ ! -L "$staging/$f" ]; then
    mkdir -p -- "$(dirname -- "$staging/$f")"
    cp -p -- "$live/$f" "$staging/$f"
    printf '%s\n' "$f"
  fi
done"#;
    RemoteCommand::script(SCRIPT, [dirs.live.clone(), dirs.staging.clone()].into_iter().chain(files.iter().cloned()))
}

/// Removes a directory tree (staging after a failed preflight, `.old` after a good deploy).
pub fn remove_dir(dir: &str) -> RemoteCommand {
    RemoteCommand::new("rm").arg("-rf").arg("--").arg(dir)
}

/// live -> `.old`, staging -> live. A stale `.old` from an earlier failed deploy is dropped
/// first.
pub fn swap(dirs: &RemoteDirs) -> RemoteCommand {
    const SCRIPT: &str = r#"set -e
rm -rf -- "$3"
if [ -e "$1" ]; then mv -- "$1" "$3"; fi
mv -- "$2" "$1""#;
    RemoteCommand::script(SCRIPT, [&dirs.live, &dirs.staging, &dirs.old])
}

/// Asks `url` from the host itself and prints the HTTP status code (curl, else wget, which
/// prints 200 on any success since it cannot report the code).
pub fn http_status(url: &str, timeout_secs: u64) -> RemoteCommand {
    const SCRIPT: &str = r#"if command -v curl >/dev/null 2>&1; then
  curl -sS -o /dev/null -w '%{http_code}' --max-time "$2" -- "$1"
elif command -v wget >/dev/null 2>&1; then
  wget -q -O /dev/null -T "$2" -- "$1" && echo 200
else
  echo "neither curl nor wget is installed on this host; the health check needs one" >&2; exit 127
fi"#;
    RemoteCommand::script(SCRIPT, [url.to_owned(), timeout_secs.max(1).to_string()])
}

/// Lists a project's containers with `docker ps` (for the standalone `docker-compose` v1,
/// whose own `ps` has no JSON output).
pub fn docker_ps(project: &str) -> RemoteCommand {
    RemoteCommand::new("docker")
        .args(["ps", "--all", "--no-trunc", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .args(["--format", "{{json .}}"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_local(cmd: &RemoteCommand) -> std::process::Output {
        std::process::Command::new("sh").arg("-c").arg(cmd.to_shell()).output().unwrap()
    }

    #[test]
    fn scripts_keep_metacharacters_as_data() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("pwned");
        let live = tmp.path().join(format!("app $(touch {}) 'q'", marker.display()));
        let dirs = RemoteDirs::new(live.display().to_string());
        assert!(run_local(&prepare_staging(&dirs)).status.success());
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(live.join(".env"), "A=1").unwrap();
        std::fs::write(live.join("a b;c"), "x").unwrap();
        let out = run_local(&persist(&dirs, &[".env".into(), "a b;c".into(), "missing".into()]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), ".env\na b;c\n");
        assert!(run_local(&swap(&dirs)).status.success());
        assert_eq!(std::fs::read_to_string(live.join(".env")).unwrap(), "A=1");
        assert!(std::path::Path::new(&dirs.old).join("a b;c").exists());
        assert!(!marker.exists(), "a metacharacter ran");
    }

    #[test]
    fn committed_file_wins_over_persisted_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = RemoteDirs::new(tmp.path().join("live").display().to_string());
        std::fs::create_dir_all(&dirs.live).unwrap();
        std::fs::write(format!("{}/.env", dirs.live), "OLD").unwrap();
        assert!(run_local(&prepare_staging(&dirs)).status.success());
        std::fs::write(format!("{}/.env", dirs.staging), "COMMITTED").unwrap();
        let out = run_local(&persist(&dirs, &[".env".into()]));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(std::fs::read_to_string(format!("{}/.env", dirs.staging)).unwrap(), "COMMITTED");
    }

    #[test]
    fn prepare_repairs_a_half_done_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = RemoteDirs::new(tmp.path().join("live").display().to_string());
        std::fs::create_dir_all(&dirs.old).unwrap();
        std::fs::write(format!("{}/compose.yml", dirs.old), "x").unwrap();
        let out = run_local(&prepare_staging(&dirs));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "repaired\n");
        assert!(std::path::Path::new(&dirs.live).join("compose.yml").exists());
        assert!(!std::path::Path::new(&dirs.old).exists());
        assert!(std::path::Path::new(&dirs.staging).is_dir());
    }
}
