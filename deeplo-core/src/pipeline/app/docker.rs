//! The remote commands of an application deploy. As everywhere in the pipeline, each is a
//! plain program with arguments or a constant `sh` script that takes names and paths only
//! as positional parameters.

use crate::transport::RemoteCommand;

/// The Docker network that the proxy and every application container join; the proxy
/// reaches a release by its container name on it.
pub(crate) const NETWORK: &str = "deeplo";

/// Checks Docker, creates the `deeplo` network and the proxy's directory when missing, and
/// makes sure the proxy container runs and publishes `publish` (`docker run -p` specs): it
/// is started if stopped, created if missing, and created again (keeping what it already
/// published) when a port is missing. Waits for the proxy's admin API. Then prints the
/// application's releases (`release` markers, in [`RELEASE_FORMAT`]) and its route file
/// (`route`), then `precheck 0`. Prints
/// `proxy created|started|recreated` when it changed the proxy.
pub(crate) fn precheck(proxy: &str, image: &str, dir: &str, app: &str, publish: &[String]) -> RemoteCommand {
    const SCRIPT: &str = r#"exec 2>&1
set -f
mark() { printf '\036deeplo %s %s\n' "$1" "$2"; }
fail() { echo "$1"; mark precheck "${2:-1}"; exit "${2:-1}"; }
proxy=$1 image=$2 dir=$3 network=$4 app=$5
shift 5
command -v docker >/dev/null 2>&1 || fail "docker is not installed on this host (no 'docker' in PATH)" 127
docker version --format '{{.Server.Version}}' >/dev/null || fail "cannot reach the Docker engine on this host"
docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null 2>&1 || docker network inspect "$network" >/dev/null 2>&1 || fail "cannot create the Docker network $network"
mkdir -p -- "$dir/routes" "$dir/data" "$dir/config" || fail "cannot create $dir"
[ -s "$dir/caddy.json" ] || printf '%s\n' '{"admin":{"listen":"localhost:2019"}}' >"$dir/caddy.json" || fail "cannot write $dir/caddy.json"
state=$(docker inspect -f '{{.State.Running}}|{{index .Config.Labels "deeplo.publish"}}' "$proxy" 2>/dev/null)
running=${state%%|*} have=${state#*|}
want=$have missing=
for p in "$@"; do
  case " $have " in *" $p "*) ;; *) want="${want:+$want }$p" missing=1 ;; esac
done
if [ -n "$state" ] && [ -z "$missing" ]; then
  if [ "$running" != true ]; then docker start "$proxy" >/dev/null || fail "cannot start the proxy container $proxy"; mark proxy started; fi
else
  if [ -n "$state" ]; then docker rm -f "$proxy" >/dev/null || fail "cannot replace the proxy container $proxy"; how=recreated; else how=created; fi
  ports=
  for p in $want; do ports="$ports -p $p"; done
  docker run -d --name "$proxy" --network "$network" --restart unless-stopped \
    --label deeplo.role=proxy --label "deeplo.publish=$want" \
    -e XDG_CONFIG_HOME=/deeplo/config -e XDG_DATA_HOME=/deeplo/data -v "$dir:/deeplo" \
    $ports "$image" caddy run --config /deeplo/caddy.json >/dev/null || fail "cannot run the proxy image $image as $proxy"
  mark proxy "$how"
fi
i=0
until out=$(docker exec "$proxy" timeout 2 wget -q -O /dev/null http://localhost:2019/config/ 2>&1); do
  case $out in *"executable file not found"*|*"not found in"*) fail "the proxy image $image lacks timeout or wget, which deeplo's health probes run: $out" 127 ;; esac
  i=$((i + 1))
  [ "$i" -lt 80 ] || fail "the proxy $proxy does not answer on its admin API after 20s: $out"
  sleep 0.25
done
ids=$(docker ps -aq --filter "label=deeplo.app=$app") || fail "cannot list the application's containers"
[ -z "$ids" ] || docker inspect -f "$RELEASE" $ids | while IFS= read -r line; do mark release "$line"; done
[ -f "$dir/routes/$app.json" ] && mark route "$(cat -- "$dir/routes/$app.json")"
mark precheck 0"#;
    let head = [proxy, image, dir, NETWORK, app].map(str::to_owned);
    with_release_format(RemoteCommand::script(SCRIPT, head.into_iter().chain(publish.iter().cloned())))
}

/// What `docker build` is given.
pub(crate) struct Build<'a> {
    pub tag: &'a str,
    pub context: &'a str,
    pub dockerfile: &'a str,
    pub app: &'a str,
    pub commit: &'a str,
    pub args: &'a [(String, String)],
}

/// `docker build` of the staged context.
pub(crate) fn build(b: &Build<'_>) -> RemoteCommand {
    let mut cmd = RemoteCommand::new("docker")
        .args(["build", "--tag", b.tag, "--file", b.dockerfile])
        .arg("--label")
        .arg(format!("deeplo.app={}", b.app))
        .arg("--label")
        .arg(format!("deeplo.commit={}", b.commit));
    for (name, value) in b.args {
        cmd = cmd.arg("--build-arg").arg(format!("{name}={value}"));
    }
    cmd.arg(b.context)
}

/// What a new release's container is started with.
pub(crate) struct Start<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub app: &'a str,
    pub commit: &'a str,
    pub run: &'a str,
    /// The names of the environment values; the values come on standard input.
    pub env: &'a [String],
}

/// Starts a release's container on the `deeplo` network, replacing a stopped container of
/// the same name. The environment's values are read from standard input (`export NAME=...`
/// lines) and reach the container as `-e NAME`, which makes `docker` take the value from
/// its own environment: a value is never on a command line.
pub(crate) fn start(s: &Start<'_>) -> RemoteCommand {
    const SCRIPT: &str = r#"exec 2>&1
set -f
exports=$(cat) && eval "$exports" || { echo "cannot read the application's environment"; exit 1; }
unset exports
name=$1 image=$2 network=$3 app=$4 commit=$5 run=$6
shift 6
envs=
for n in "$@"; do envs="$envs -e $n"; done
docker rm -f "$name" >/dev/null 2>&1
docker run -d --name "$name" --network "$network" --restart unless-stopped \
  --label deeplo.role=app --label "deeplo.app=$app" --label "deeplo.commit=$commit" --label "deeplo.deploy=$run" \
  $envs "$image""#;
    let head = [s.name, s.image, NETWORK, s.app, s.commit, s.run].map(str::to_owned);
    RemoteCommand::script(SCRIPT, head.into_iter().chain(s.env.iter().cloned()))
}

/// Starts a kept release again (a rollback).
pub(crate) fn start_kept(name: &str) -> RemoteCommand {
    RemoteCommand::new("docker").args(["start", name])
}

/// One health probe: the release's container must be running, and `url` (its name on the
/// `deeplo` network) must answer 2xx to a GET from inside the proxy's container: the path
/// the proxy's own requests take. BusyBox's `wget` (the official image's) under `timeout`,
/// since some builds of it have no `-T`. Exit 0 when healthy, 127 when the proxy image has
/// no `wget` or `timeout`.
pub(crate) fn probe(proxy: &str, container: &str, url: &str) -> RemoteCommand {
    const SCRIPT: &str = r#"exec 2>&1
st=$(docker inspect -f '{{.State.Status}} (exit code {{.State.ExitCode}}, restarted {{.RestartCount}} times)' "$2" 2>&1) || { echo "$st"; exit 3; }
case $st in running*) ;; *) echo "the container is $st"; exit 3 ;; esac
out=$(docker exec "$1" timeout 5 wget -q -O /dev/null "$3" 2>&1) && exit 0
case $out in *"executable file not found"*) echo "the proxy image lacks timeout or wget: $out"; exit 127 ;; esac
echo "GET $3: ${out:-no answer}"
exit 1"#;
    RemoteCommand::script(SCRIPT, [proxy, container, url].map(str::to_owned))
}

/// The switch, under the proxy's lock (`dir/lock`, so that two applications switching at
/// once do not lose each other's route): prints every route file (`route` markers) and
/// `locked 0`, then reads two lines from standard input, the application's new route and
/// the whole new config, loads the config through the proxy's admin API (`caddy reload`,
/// a POST to `/load`: one atomic change, refused whole if Caddy rejects it) and only then
/// writes the route file. Prints `switch 0`, or `switch 1` with Caddy's answer and the old
/// config left in force.
pub(crate) fn switch(dir: &str, proxy: &str, app: &str) -> RemoteCommand {
    const SCRIPT: &str = r#"exec 2>&1
mark() { printf '\036deeplo %s %s\n' "$1" "$2"; }
dir=$1 proxy=$2 app=$3
exec 9>>"$dir/lock" && flock -x -w 120 9 || { echo "cannot take the proxy's lock $dir/lock within 120s"; mark locked 75; exit 75; }
for f in "$dir"/routes/*.json; do [ -f "$f" ] && mark route "$(cat -- "$f")"; done
mark locked 0
IFS= read -r route && IFS= read -r config || { echo "the new route did not arrive"; mark switch 1; exit 1; }
printf '%s\n' "$config" >"$dir/caddy.json.next" || { mark switch 1; exit 1; }
if out=$(docker exec "$proxy" caddy reload --config /deeplo/caddy.json.next --force 2>&1); then
  mv -f -- "$dir/caddy.json.next" "$dir/caddy.json" &&
  printf '%s\n' "$route" >"$dir/routes/$app.json.next" && mv -f -- "$dir/routes/$app.json.next" "$dir/routes/$app.json" ||
  { echo "the proxy switched, but its files in $dir could not be written"; mark switch 1; exit 1; }
  mark switch 0
else
  rm -f -- "$dir/caddy.json.next"
  printf '%s\n' "$out" | tail -n 5
  mark switch 1
  exit 1
fi"#;
    RemoteCommand::script(SCRIPT, [dir, proxy, app].map(str::to_owned))
}

/// Stops a release, giving it 10 s after SIGTERM.
pub(crate) fn stop(name: &str) -> RemoteCommand {
    RemoteCommand::new("docker").args(["stop", "--time", "10", name])
}

/// Removes containers, then their images where no other container uses them.
pub(crate) fn remove(containers: &[String], images: &[String]) -> RemoteCommand {
    const SCRIPT: &str = r#"n=$1
shift
st=0
while [ "$n" -gt 0 ]; do docker rm -f "$1" >/dev/null || st=1; shift; n=$((n - 1)); done
for i in "$@"; do
  [ -n "$(docker ps -a -q --filter "ancestor=$i")" ] || docker rmi "$i" >/dev/null 2>&1 || true
done
exit "$st""#;
    RemoteCommand::script(
        SCRIPT,
        std::iter::once(containers.len().to_string()).chain(containers.iter().cloned()).chain(images.iter().cloned()),
    )
}

/// Lists an application's releases (tab-separated lines, as the precheck's `release`
/// markers) and then, after a `route` line, its route file. Changes nothing.
pub(crate) fn list(app: &str, dir: &str) -> RemoteCommand {
    const SCRIPT: &str = r#"command -v docker >/dev/null 2>&1 || { echo "docker is not installed on this host (no 'docker' in PATH)" >&2; exit 127; }
ids=$(docker ps -aq --filter "label=deeplo.app=$1") || exit 1
[ -z "$ids" ] || docker inspect -f "$RELEASE" $ids || exit 1
echo route
cat -- "$2/routes/$1.json" 2>/dev/null
exit 0"#;
    with_release_format(RemoteCommand::script(SCRIPT, [app, dir].map(str::to_owned)))
}

/// How `docker inspect` prints a release: name, state, commit, when it last started, image,
/// tab-separated ([`Release::parse`](super::releases::Release::parse) reads it).
const RELEASE_FORMAT: &str =
    "{{.Name}}\t{{.State.Status}}\t{{index .Config.Labels \"deeplo.commit\"}}\t{{.State.StartedAt}}\t{{.Config.Image}}";

/// Gives a script the release format as `$RELEASE`, through `env`: a constant, but one
/// that would need quoting inside the script.
fn with_release_format(script: RemoteCommand) -> RemoteCommand {
    RemoteCommand::new("env").arg(format!("RELEASE={RELEASE_FORMAT}")).arg(script.program).args(script.args)
}
