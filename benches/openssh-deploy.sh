#!/usr/bin/env bash
# The two baselines of the deploy benchmark (benches/deploy_vs_openssh.rs).
#
# Usage: openssh-deploy.sh [--local] REPO COMMIT SUBDIR KEY KNOWN_HOSTS DEPLOY_SUBDIR HOSTS_FILE
#
#   --local       the floor: no SSH at all (see below); KEY, KNOWN_HOSTS and the address,
#                 port and user of HOSTS_FILE are then unused
#   REPO          a git repository (work tree or bare) holding COMMIT
#   SUBDIR        the project's directory in the repository (repo_subdir)
#   KEY           the SSH private key
#   KNOWN_HOSTS   a known_hosts file with every host's key (checked strictly)
#   DEPLOY_SUBDIR the project's directory under each host's deploy_dir
#   HOSTS_FILE    one host a line: address, port, user, deploy_dir, compose project,
#                 separated by tabs
#
# Without --local, what an expert writes with OpenSSH: the files of SUBDIR at COMMIT go
# once into a tar archive (`git archive COMMIT:SUBDIR`), then every host is deployed in
# parallel over one ControlMaster connection with two calls:
#
#   stage   `sh -c STAGE` with the archive on stdin: repair a half-done swap (live
#           missing, old present), empty the staging directory, `tar -x` into it
#   deploy  `sh -c DEPLOY`: persist `.env`, `compose config -q`, swap, `compose up`,
#           `compose ps` showing a running container, remove the old directory
#
# Both scripts are fixed text; the host's paths and project name reach them as
# positional parameters, quoted for the remote login shell, never pasted into a script.
#
# With --local, the floor: the same archive and the same two scripts run by the local
# `sh` for every host in parallel, as if each host were this machine (the benchmark's
# hosts share its filesystem and Docker engine). What a tool takes beyond it is the cost
# of reaching a host and of the tool itself.
#
# Stdout carries marks, `<compose project>\t<mark>\t<milliseconds since the epoch>`: a
# mark ends the step of its name, which began at the project's previous mark (`begin`
# starts the first); project `-` is the archive shared by all hosts. DEPLOY's marks come
# from the host's clock (`date +%s%3N`, GNU date), which this benchmark's hosts share
# with the local one. Compose's own output goes to stderr. Exits non-zero when any host
# fails.

set -euo pipefail

local_mode=0
if [ "${1:-}" = --local ]; then
    local_mode=1
    shift
fi
if [ "$#" -ne 7 ]; then
    echo "usage: $0 [--local] REPO COMMIT SUBDIR KEY KNOWN_HOSTS DEPLOY_SUBDIR HOSTS_FILE" >&2
    exit 2
fi
repo=$1
commit=$2
subdir=$3
key=$4
known_hosts=$5
deploy_subdir=$6
hosts_file=$7

# $1 live, $2 staging, $3 old; the archive on stdin.
# shellcheck disable=SC2016 # expanded by the shell that runs it
STAGE='set -e
if [ ! -e "$1" ] && [ -d "$3" ]; then mv -- "$3" "$1"; fi
rm -rf -- "$2"
mkdir -p -- "$2"
tar -x -C "$2" -f -'

# $1 live, $2 staging, $3 old, $4 compose project. Prints `<step> <ms>` after each step.
# shellcheck disable=SC2016 # expanded by the shell that runs it
DEPLOY='set -e
live=$1 staging=$2 old=$3 project=$4
mark() { echo "$1 $(date +%s%3N)"; }
compose() {
    dir=$1
    shift
    docker compose --project-name "$project" --project-directory "$dir" -f "$dir/compose.yml" "$@"
}
if [ -e "$live/.env" ] && [ ! -e "$staging/.env" ]; then cp -p -- "$live/.env" "$staging/.env"; fi
mark persist
if ! compose "$staging" config -q >&2; then
    rm -rf -- "$staging"
    echo "compose config failed, nothing was changed on the host" >&2
    exit 1
fi
mark preflight
rm -rf -- "$old"
if [ -e "$live" ]; then mv -- "$live" "$old"; fi
mv -- "$staging" "$live"
mark swap
compose "$live" up --detach --remove-orphans --quiet-pull --build --force-recreate >&2
mark up
ps=$(compose "$live" ps --all --format json)
case $ps in
    *"\"State\":\"running\""*) ;;
    *) echo "no running container: $ps" >&2; exit 1 ;;
esac
mark verify
rm -rf -- "$old"
mark cleanup'

# Short, so that the control socket paths stay under the 104-byte limit of socket names.
work=$(mktemp -d /tmp/osd.XXXXXX)
cleanup() {
    # Masters left open by a failed host (a good one closes its own).
    local socket
    for socket in "$work"/cm-*; do
        [ -S "$socket" ] && ssh -F /dev/null -o "ControlPath=$socket" -O exit none >/dev/null 2>&1
    done
    rm -rf -- "$work"
}
trap cleanup EXIT

# Prints a mark with the time now, without forking (bash 5's EPOCHREALTIME).
mark() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s\t%s\t%s\n' "$1" "$2" "$((t / 1000))"
}

# Quotes each argument for a POSIX shell (the remote login shell parses the command line).
quote() {
    local out='' word
    for word in "$@"; do
        out+="'${word//\'/\'\\\'\'}' "
    done
    printf '%s' "${out% }"
}

deploy_host() {
    local address=$1 port=$2 user=$3 deploy_dir=$4 project=$5
    local live="${deploy_dir%/}/$deploy_subdir"
    local paths=("$live" "$live.staging" "$live.old")
    local control="$work/cm-$port"
    local dest="$user@$address"
    local opts=(-F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes
        -o "UserKnownHostsFile=$known_hosts" -o "ControlPath=$control" -o LogLevel=ERROR -p "$port")
    local out name t
    mark "$project" begin

    if [ "$local_mode" = 1 ]; then
        if ! sh -c "$STAGE" sh "${paths[@]}" <"$archive"; then
            echo "$project: staging failed" >&2
            return 1
        fi
        mark "$project" stage
        if ! out=$(sh -c "$DEPLOY" sh "${paths[@]}" "$project"); then
            echo "$project: the deploy failed" >&2
            return 1
        fi
    else
        if ! ssh "${opts[@]}" -o ControlMaster=yes -o ControlPersist=60 -f -N "$dest" \
            >/dev/null 2>"$control.err"; then
            echo "$project: cannot connect: $(cat -- "$control.err")" >&2
            return 1
        fi
        mark "$project" connect
        if ! ssh "${opts[@]}" -o ControlMaster=no "$dest" "$(quote sh -c "$STAGE" sh "${paths[@]}")" <"$archive"; then
            echo "$project: staging failed" >&2
            return 1
        fi
        mark "$project" stage
        if ! out=$(ssh "${opts[@]}" -o ControlMaster=no "$dest" "$(quote sh -c "$DEPLOY" sh "${paths[@]}" "$project")"); then
            echo "$project: the deploy failed" >&2
            return 1
        fi
    fi
    while read -r name t; do
        printf '%s\t%s\t%s\n' "$project" "$name" "$t"
    done <<<"$out"

    if [ "$local_mode" = 0 ]; then
        ssh "${opts[@]}" -O exit "$dest" 2>/dev/null
        mark "$project" close
    fi
}

mark - begin
archive="$work/files.tar"
git -C "$repo" archive --format=tar -o "$archive" "$commit:$subdir"
mark - archive

pids=()
while IFS=$'\t' read -r address port user deploy_dir project; do
    [ -n "$address" ] || continue
    deploy_host "$address" "$port" "$user" "$deploy_dir" "$project" &
    pids+=("$!")
done <"$hosts_file"

failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
exit "$failed"
