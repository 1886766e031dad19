//! The remote commands of a deploy, other than compose itself.
//!
//! Each is a constant POSIX `sh` script that receives paths and names only as positional
//! parameters, so no user data is ever parsed by the remote shell. Several file operations
//! share one script to save round trips.

use crate::Secret;
use crate::transport::{RemoteCommand, shell_quote};

/// The three directories of a deployed project on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteDirs {
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

/// Finds the compose command of the host and prints its version on one line and its words on
/// the next, or exits 127/126 with a sentence saying what is missing. The Compose v2 plugin
/// binary is preferred, searched where the docker CLI looks for plugins: running it directly
/// is the same program as `docker compose` without a docker CLI start in front of every call.
/// Then `docker compose`, then `docker-compose`.
pub fn detect_compose() -> RemoteCommand {
    const SCRIPT: &str = r#"command -v docker >/dev/null 2>&1 || { echo "docker is not installed on this host (no 'docker' in PATH)" >&2; exit 127; }
for d in "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" /usr/local/lib/docker/cli-plugins /usr/local/libexec/docker/cli-plugins /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do
  if [ -x "$d/docker-compose" ] && v=$("$d/docker-compose" version --short 2>/dev/null); then printf '%s\n%s\n' "$v" "$d/docker-compose"; exit 0; fi
done
if v=$(docker compose version --short 2>/dev/null); then printf '%s\ndocker compose\n' "$v"
elif command -v docker-compose >/dev/null 2>&1 && v=$(docker-compose version --short 2>/dev/null); then printf '%s\ndocker-compose\n' "$v"
else echo "neither 'docker compose' (the Compose v2 plugin) nor 'docker-compose' is installed on this host" >&2; exit 126; fi"#;
    RemoteCommand::script(SCRIPT, std::iter::empty::<String>())
}

/// Checks a configured compose command: prints `<words> version --short`.
pub fn check_compose(words: &[String]) -> RemoteCommand {
    const SCRIPT: &str = r#"v=$("$@" version --short 2>/dev/null) || { echo "the configured compose_command '$*' does not run on this host" >&2; exit 126; }; printf '%s\n' "$v""#;
    RemoteCommand::script(SCRIPT, words.iter().cloned())
}

/// The two lock files beside a project's live directory. `deploy` is held by one deploy from
/// staging to the end of its health gate; `compose` by every compose operation of a deploy,
/// and inherited by its `compose up`, so that an `up` left running by a deployer that died
/// still keeps the next deploy out until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockFiles {
    pub deploy: String,
    pub compose: String,
}

impl LockFiles {
    pub fn new(live: &str) -> Self {
        Self { deploy: format!("{live}.lock"), compose: format!("{live}.compose.lock") }
    }
}

/// Takes the project's deploy lock (waiting up to `wait_secs`, then failing with who holds
/// it), waits for any compose operation still running on the project, repairs a swap that a
/// crash left half-done, empties staging, prints the `locked` marker, and then holds the lock
/// until its standard input ends: when the deploy is done, or when its connection is gone. A
/// `cleanup` line first (the deploy succeeded) removes `.old` before the lock is let go,
/// which saves the cleanup its own command.
pub fn hold_lock(dirs: &RemoteDirs, locks: &LockFiles, wait_secs: u64, owner: &str) -> RemoteCommand {
    const SCRIPT: &str = r#"command -v flock >/dev/null 2>&1 || { echo "flock (util-linux) is not installed on this host: deeplo needs it to keep deploys of a project apart" >&2; exit 127; }
who() {
  ino=$(ls -i -- "$1" 2>/dev/null | { read -r i _; echo "$i"; })
  pid=$(while read -r _ kind _ _ pid dev _; do [ "$kind" = FLOCK ] && [ "${dev##*:}" = "$ino" ] && { echo "$pid"; break; }; done </proc/locks 2>/dev/null)
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then printf 'pid %s (%s)' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/ $//')"; else printf 'another process'; fi
  last=$(head -c 300 -- "$1" 2>/dev/null)
  [ -n "$last" ] && printf '; the last deeplo deploy to take it: %s' "$last"
}
take() {
  flock -x -n "$1" && return 0
  echo "waiting for $3, held by $(who "$2")"
  flock -x -w "$wait" "$1" && return 0
  echo "gave up after ${wait}s waiting for $3, held by $(who "$2")" >&2
  exit 75
}
live=$1 staging=$2 old=$3 lock=$4 compose_lock=$5 wait=$6
mkdir -p -- "$(dirname -- "$lock")" || exit 1
exec 9>>"$lock" || exit 1
take 9 "$lock" "the project's deploy lock $lock"
printf '%s\n' "$7" >"$lock"
exec 8>>"$compose_lock" || exit 1
take 8 "$compose_lock" "a compose command still running on the project ($compose_lock)"
exec 8>&-
if [ ! -e "$live" ] && [ -d "$old" ]; then mv -- "$old" "$live" || exit 1; echo "repaired $live: restored it from $old left by an interrupted deploy"; fi
rm -rf -- "$staging" && mkdir -p -- "$staging" || exit 1
printf '\036deeplo locked 0\n'
IFS= read -r verdict || verdict=
if [ "$verdict" = cleanup ]; then
  if rm -rf -- "$old"; then printf '\036deeplo cleanup 0\n'; else printf '\036deeplo cleanup 1\n'; exit 1; fi
fi"#;
    RemoteCommand::script(
        SCRIPT,
        [
            dirs.live.clone(),
            dirs.staging.clone(),
            dirs.old.clone(),
            locks.deploy.clone(),
            locks.compose.clone(),
            wait_secs.max(1).to_string(),
            owner.to_owned(),
        ],
    )
}

/// How the script checks what `up` started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpCheck {
    /// No check in the script (Compose v1).
    None,
    /// `up --wait --wait-timeout <secs>`: compose waits for every service to run, or to be
    /// healthy where it has a healthcheck (its first look comes half a second after the
    /// start, which catches a process that dies at once); after a failed wait, a look.
    Wait(u64),
}

/// What [`deploy_script`] runs compose with and for how long `up` may wait.
#[derive(Debug, Clone)]
pub struct DeployScript<'a> {
    pub dirs: &'a RemoteDirs,
    pub locks: &'a LockFiles,
    pub lock_wait_secs: u64,
    /// How `up` is checked (Compose v2; v1 has neither and is watched by the gate).
    pub check: UpCheck,
    pub persist: &'a [String],
    /// The compose command with its project and files, run from inside the directory
    /// ([`ComposeCommand::words_in_dir`](super::ComposeCommand::words_in_dir)).
    pub compose: Vec<String>,
}

/// Persist, preflight, swap and up in one command (with a look at the containers after a
/// failed `up --wait`): one round trip where four or five would be. It
/// prints a marker line (`\x1edeeplo <step> <status>`) as each step ends, which the pipeline
/// reads to time and record every step on its own. Its output (stderr too) comes on stdout,
/// in order. A failed `compose config` removes staging and stops before the swap; a compose
/// program that has gone missing is reported as `preflight missing`, staging kept, so that
/// the caller can find the compose command again and run it once more.
pub fn deploy_script(s: &DeployScript<'_>) -> RemoteCommand {
    const SCRIPT: &str = r#"exec 2>&1
set -f
exports=$(cat) && eval "$exports" || { echo "cannot read the project's environment"; exit 1; }
unset exports
live=$1 staging=$2 old=$3 lock=$4 wait=$5 check=$6 n=$7
shift 7
mark() { printf '\036deeplo %s %s\n' "$1" "$2"; }
exec 9>>"$lock" && flock -x -w "$wait" 9 || { echo "cannot take the compose lock $lock within ${wait}s"; mark persist 75; exit 75; }
while [ "$n" -gt 0 ]; do
  f=$1; shift; n=$((n - 1))
  if [ -f "$live/$f" ] && [ ! -e "$staging/$f" ] && [ ! -L "$staging/$f" ]; then
    mkdir -p -- "$(dirname -- "$staging/$f")" && cp -p -- "$live/$f" "$staging/$f" || { mark persist 1; exit 1; }
    mark kept "$f"
  fi
done
mark persist 0
if services=$(cd -- "$staging" && "$@" config --services); then
  for s in $services; do mark service "$s"; done
  mark preflight 0
else
  st=$?
  if ! "$@" version >/dev/null 2>&1; then mark preflight missing; exit 126; fi
  rm -rf -- "$staging"
  mark preflight "$st"
  exit 1
fi
rm -rf -- "$old" && { [ ! -e "$live" ] || mv -- "$live" "$old"; } && mv -- "$staging" "$live" || { mark swap 1; exit 1; }
mark swap 0
cd -- "$live" || { mark up 1; exit 1; }
case $check in
wait:*) "$@" up --detach --remove-orphans --quiet-pull --build --force-recreate --wait --wait-timeout "${check#wait:}" ;;
*) "$@" up --detach --remove-orphans --quiet-pull --build --force-recreate ;;
esac
st=$?
if [ "$st" != 0 ] && [ "$check" != none ]; then
  states=$("$@" ps --all --format json)
  printf '%s\n' "$states" | while IFS= read -r line; do [ -z "$line" ] || mark state "$line"; done
fi
mark up "$st"
exit "$st""#;
    let head = [
        s.dirs.live.clone(),
        s.dirs.staging.clone(),
        s.dirs.old.clone(),
        s.locks.compose.clone(),
        s.lock_wait_secs.max(1).to_string(),
        match s.check {
            UpCheck::None => "none".to_owned(),
            UpCheck::Wait(secs) => format!("wait:{}", secs.max(1)),
        },
        s.persist.len().to_string(),
    ];
    RemoteCommand::script(SCRIPT, head.into_iter().chain(s.persist.iter().cloned()).chain(s.compose.iter().cloned()))
}

/// The project's environment values as the lines [`deploy_script`] reads from its standard
/// input: `export NAME='value'`, each value quoted for the shell (names are checked when
/// set: letters, digits and `_`).
pub fn env_exports(env: &[(String, Secret)]) -> String {
    env.iter().map(|(name, value)| format!("export {name}={}\n", shell_quote(value.expose()))).collect()
}

/// Removes a directory tree (staging after a failed preflight, `.old` after a good deploy).
pub fn remove_dir(dir: &str) -> RemoteCommand {
    RemoteCommand::new("rm").arg("-rf").arg("--").arg(dir)
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
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::{Command, Output, Stdio};

    fn run_local(cmd: &RemoteCommand) -> Output {
        Command::new("sh").arg("-c").arg(cmd.to_shell()).stdin(Stdio::null()).output().unwrap()
    }

    fn stdout(out: &Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A compose stand-in: `config` prints one service (or fails when the staged compose
    /// file says `broken`), `up` records that it ran.
    fn fake_compose(dir: &Path) -> Vec<String> {
        const FAKE: &str = r#"case " $* " in
*" config "*) if grep -q broken compose.yml; then echo "bad compose file" >&2; exit 15; fi; echo web ;;
*" up "*) echo "up in $PWD" >>"$0.log"; if [ -e fail-up ]; then exit 1; fi ;;
*" ps "*) echo '{"Service":"web","State":"running"}' ;;
esac"#;
        let mut words = vec!["sh".into(), "-c".into(), FAKE.into(), dir.join("compose").display().to_string()];
        words.extend(["--project-name", "p", "--project-directory", ".", "-f", "compose.yml"].map(String::from));
        words
    }

    struct Bed {
        tmp: tempfile::TempDir,
        dirs: RemoteDirs,
        locks: LockFiles,
    }

    impl Bed {
        fn new(name: &str) -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let dirs = RemoteDirs::new(tmp.path().join(name).display().to_string());
            let locks = LockFiles::new(&dirs.live);
            Self { tmp, dirs, locks }
        }

        fn hold(&self, wait: u64) -> Output {
            run_local(&hold_lock(&self.dirs, &self.locks, wait, "deeplo run 1-test"))
        }

        fn deploy(&self, persist: &[String], compose: Vec<String>) -> Output {
            run_local(&deploy_script(&DeployScript {
                dirs: &self.dirs,
                locks: &self.locks,
                lock_wait_secs: 5,
                check: UpCheck::Wait(30),
                persist,
                compose,
            }))
        }

        fn stage(&self, compose: &str) {
            let out = self.hold(5);
            assert!(stdout(&out).ends_with("\x1edeeplo locked 0\n"), "{out:?}");
            std::fs::write(Path::new(&self.dirs.staging).join("compose.yml"), compose).unwrap();
        }
    }

    #[test]
    fn a_deploy_keeps_metacharacters_as_data_and_marks_each_step() {
        let marker = tempfile::tempdir().unwrap();
        let pwned = marker.path().join("pwned");
        let bed = Bed::new(&format!("app $(touch {}) 'q'", pwned.display()));
        bed.stage("services: {}\n");
        std::fs::create_dir_all(&bed.dirs.live).unwrap();
        std::fs::write(Path::new(&bed.dirs.live).join(".env"), "A=1").unwrap();
        std::fs::write(Path::new(&bed.dirs.live).join("a b;c"), "x").unwrap();
        let out = bed.deploy(&[".env".into(), "a b;c".into(), "missing".into()], fake_compose(bed.tmp.path()));
        assert!(out.status.success(), "{out:?}");
        let markers: Vec<String> =
            stdout(&out).lines().filter_map(|l| l.strip_prefix('\x1e')).map(String::from).collect();
        assert_eq!(
            markers,
            [
                "deeplo kept .env",
                "deeplo kept a b;c",
                "deeplo persist 0",
                "deeplo service web",
                "deeplo preflight 0",
                "deeplo swap 0",
                "deeplo up 0"
            ]
        );
        assert_eq!(std::fs::read_to_string(Path::new(&bed.dirs.live).join(".env")).unwrap(), "A=1");
        assert!(Path::new(&bed.dirs.old).join("a b;c").exists());
        let ran = std::fs::read_to_string(bed.tmp.path().join("compose.log")).unwrap();
        assert_eq!(ran.trim(), format!("up in {}", bed.dirs.live));
        assert!(!pwned.exists(), "a metacharacter ran");
    }

    #[test]
    fn a_failed_up_is_followed_by_a_look_at_the_containers() {
        let bed = Bed::new("live");
        bed.stage("services: {}\n");
        std::fs::write(Path::new(&bed.dirs.staging).join("fail-up"), "").unwrap();
        let out = bed.deploy(&[], fake_compose(bed.tmp.path()));
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            stdout(&out).ends_with("\x1edeeplo state {\"Service\":\"web\",\"State\":\"running\"}\n\x1edeeplo up 1\n"),
            "{out:?}"
        );
    }

    #[test]
    fn committed_file_wins_over_persisted_one() {
        let bed = Bed::new("live");
        std::fs::create_dir_all(&bed.dirs.live).unwrap();
        std::fs::write(format!("{}/.env", bed.dirs.live), "OLD").unwrap();
        bed.stage("services: {}\n");
        std::fs::write(format!("{}/.env", bed.dirs.staging), "COMMITTED").unwrap();
        let out = bed.deploy(&[".env".into()], fake_compose(bed.tmp.path()));
        assert!(!stdout(&out).contains("kept"), "{out:?}");
        assert_eq!(std::fs::read_to_string(format!("{}/.env", bed.dirs.live)).unwrap(), "COMMITTED");
    }

    #[test]
    fn a_failed_config_removes_staging_and_touches_nothing() {
        let bed = Bed::new("live");
        std::fs::create_dir_all(&bed.dirs.live).unwrap();
        std::fs::write(format!("{}/compose.yml", bed.dirs.live), "good").unwrap();
        bed.stage("broken\n");
        let out = bed.deploy(&[], fake_compose(bed.tmp.path()));
        let text = stdout(&out);
        assert!(!out.status.success());
        assert!(text.contains("bad compose file\n\x1edeeplo preflight 15\n"), "{text:?}");
        assert!(!text.contains("swap"), "{text:?}");
        assert!(!Path::new(&bed.dirs.staging).exists());
        assert_eq!(std::fs::read_to_string(format!("{}/compose.yml", bed.dirs.live)).unwrap(), "good");
    }

    #[test]
    fn a_compose_command_that_is_gone_is_reported_and_staging_kept() {
        let bed = Bed::new("live");
        bed.stage("services: {}\n");
        let gone = vec![bed.tmp.path().join("no-such-compose").display().to_string()];
        let out = bed.deploy(&[], gone);
        assert_eq!(out.status.code(), Some(126), "{out:?}");
        assert!(stdout(&out).ends_with("\x1edeeplo preflight missing\n"), "{out:?}");
        assert!(Path::new(&bed.dirs.staging).join("compose.yml").exists());
    }

    #[test]
    fn the_holder_repairs_a_half_done_swap() {
        let bed = Bed::new("live");
        std::fs::create_dir_all(&bed.dirs.old).unwrap();
        std::fs::write(format!("{}/compose.yml", bed.dirs.old), "x").unwrap();
        let out = bed.hold(5);
        assert!(stdout(&out).starts_with("repaired "), "{out:?}");
        assert!(Path::new(&bed.dirs.live).join("compose.yml").exists());
        assert!(!Path::new(&bed.dirs.old).exists());
        assert!(Path::new(&bed.dirs.staging).is_dir());
        assert_eq!(std::fs::read_to_string(&bed.locks.deploy).unwrap(), "deeplo run 1-test\n");
    }

    #[test]
    fn the_holder_removes_old_when_told_the_deploy_succeeded() {
        use std::io::Write;
        let bed = Bed::new("live");
        std::fs::create_dir_all(&bed.dirs.live).unwrap();
        for verdict in ["", "cleanup\n"] {
            std::fs::create_dir_all(&bed.dirs.old).unwrap();
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(hold_lock(&bed.dirs, &bed.locks, 5, "deeplo run 1-test").to_shell())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(verdict.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            let cleaned = !verdict.is_empty();
            assert_eq!(stdout(&out).ends_with("\x1edeeplo cleanup 0\n"), cleaned, "{out:?}");
            assert_eq!(Path::new(&bed.dirs.old).exists(), !cleaned);
        }
    }

    #[test]
    fn a_held_lock_is_waited_for_and_its_holder_named() {
        let bed = Bed::new("live");
        std::fs::write(&bed.locks.deploy, "").unwrap();
        let mut holder =
            Command::new("flock").arg(&bed.locks.deploy).args(["sleep", "30"]).process_group(0).spawn().unwrap();
        while Command::new("flock").arg("-n").arg(&bed.locks.deploy).arg("true").status().unwrap().success() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = bed.hold(1);
        Command::new("kill").arg("--").arg(format!("-{}", holder.id())).status().unwrap();
        holder.wait().unwrap();
        assert_eq!(out.status.code(), Some(75), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("gave up after 1s waiting for the project's deploy lock"), "{stderr}");
        let named = format!("held by pid {} (flock {} sleep 30)", holder.id(), bed.locks.deploy);
        assert!(stderr.contains(&named), "{stderr}");
        assert!(!stdout(&out).contains("locked"), "{out:?}");
        assert!(!Path::new(&bed.dirs.staging).exists(), "staging touched without the lock");
    }
}
