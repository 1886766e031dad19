#!/usr/bin/env bash
# The OpenSSH baseline of the deploy benchmark (benches/deploy_vs_openssh.rs): what a
# careful hand-written deploy script does, with the same remote steps and the same compose
# commands as deeplo's pipeline, so that the two can be timed against each other.
#
# Usage: openssh-deploy.sh REPO COMMIT SUBDIR KEY KNOWN_HOSTS DEPLOY_SUBDIR HOSTS_FILE
#
#   REPO          a git repository (work tree or bare) holding COMMIT
#   SUBDIR        the project's directory in the repository (repo_subdir)
#   KEY           the SSH private key
#   KNOWN_HOSTS   a known_hosts file with every host's key (checked strictly)
#   DEPLOY_SUBDIR the project's directory under each host's deploy_dir
#   HOSTS_FILE    one host a line: address, port, user, deploy_dir, compose project,
#                 separated by tabs
#
# The files of SUBDIR at COMMIT are exported once; then every host is deployed in parallel
# over one ControlMaster connection: prepare staging, upload with `sftp -b`, `compose
# config`, swap, `compose up`, `compose ps`, remove the old directory, close the connection.
# Each host prints `<compose project>\t<step>\t<milliseconds>` lines on stdout. Exits
# non-zero when any host fails.
#
# OPENSSH_DEPLOY_CHECKS=1 adds the two checks deeplo makes and a bare script skips: that
# `docker compose` runs before anything is touched, and, since the service has no
# healthcheck, that it still runs a second after `up`.

set -euo pipefail

if [ "$#" -ne 7 ]; then
    echo "usage: $0 REPO COMMIT SUBDIR KEY KNOWN_HOSTS DEPLOY_SUBDIR HOSTS_FILE" >&2
    exit 2
fi
repo=$1
commit=$2
subdir=$3
key=$4
known_hosts=$5
deploy_subdir=$6
hosts_file=$7
checks=${OPENSSH_DEPLOY_CHECKS:-0}

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

# Milliseconds since the epoch, without forking (bash 5's EPOCHREALTIME).
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

# Quotes each argument for a POSIX shell (the remote login shell parses the command line).
quote() {
    local out='' word
    for word in "$@"; do
        out+="'${word//\'/\'\\\'\'}' "
    done
    printf '%s' "${out% }"
}

# Quotes one path for an sftp batch file (double quotes, with \ and " escaped).
sftp_quote() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

export_files() {
    mkdir -- "$work/files"
    git -C "$repo" archive --format=tar "$commit:$subdir" | tar -x -C "$work/files" -f -
}

deploy_host() {
    local address=$1 port=$2 user=$3 deploy_dir=$4 project=$5
    local live="${deploy_dir%/}/$deploy_subdir"
    local staging="$live.staging" old="$live.old"
    local control="$work/cm-$port"
    local dest="$user@$address"
    local opts=(-F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes
        -o "UserKnownHostsFile=$known_hosts" -o "ControlPath=$control" -o LogLevel=ERROR)
    local compose=(docker compose --project-name "$project")
    local t0 t
    t0=$(now_ms)
    step() {
        t=$(now_ms)
        printf '%s\t%s\t%s\n' "$project" "$1" "$((t - t0))"
        t0=$t
    }
    remote() {
        ssh "${opts[@]}" -o ControlMaster=no -p "$port" "$dest" "$(quote "$@")"
    }

    if ! ssh "${opts[@]}" -o ControlMaster=yes -o ControlPersist=60 -f -N -p "$port" "$dest" \
        >/dev/null 2>"$control.err"; then
        echo "$project: cannot connect: $(cat -- "$control.err")" >&2
        return 1
    fi
    step connect

    if [ "$checks" = 1 ]; then
        remote sh -c 'command -v docker >/dev/null && docker compose version >/dev/null'
        step precheck
    fi

    # deeplo's prepare_staging: repair a half-done swap, then no staging directory but its
    # parent, since `put -r` creates the directory it is given (and uploads into a
    # subdirectory of one that exists).
    # shellcheck disable=SC2016 # expanded by the remote shell
    remote sh -c 'set -e
if [ ! -e "$1" ] && [ -d "$3" ]; then mv -- "$3" "$1"; fi
rm -rf -- "$2"
mkdir -p -- "$(dirname -- "$2")"' sh "$live" "$staging" "$old"
    local batch="$work/batch-$port"
    printf 'put -r %s %s\n' "$(sftp_quote "$work/files")" "$(sftp_quote "$staging")" >"$batch"
    sftp -q "${opts[@]}" -o ControlMaster=no -P "$port" -b "$batch" "$dest" >/dev/null
    step stage

    if ! remote "${compose[@]}" --project-directory "$staging" -f "$staging/compose.yml" config --services \
        >/dev/null; then
        remote rm -rf -- "$staging" || true
        echo "$project: compose config failed, nothing was changed on the host" >&2
        return 1
    fi
    step preflight

    # shellcheck disable=SC2016 # expanded by the remote shell
    remote sh -c 'set -e
rm -rf -- "$3"
if [ -e "$1" ]; then mv -- "$1" "$3"; fi
mv -- "$2" "$1"' sh "$live" "$staging" "$old"
    step swap

    remote "${compose[@]}" --project-directory "$live" -f "$live/compose.yml" \
        up --detach --remove-orphans --quiet-pull --build --force-recreate
    step up

    running() {
        local ps
        ps=$(remote "${compose[@]}" --project-directory "$live" -f "$live/compose.yml" ps --all --format json)
        case $ps in
            *'"State":"running"'*) ;;
            *)
                echo "$project: no running container: $ps" >&2
                return 1
                ;;
        esac
    }
    running
    step verify

    if [ "$checks" = 1 ]; then
        sleep 1
        running
        step health
    fi

    remote rm -rf -- "$old"
    step cleanup

    ssh "${opts[@]}" -O exit -p "$port" "$dest" 2>/dev/null
    step close
}

started=$(now_ms)
export_files
printf '%s\t%s\t%s\n' '-' export "$(($(now_ms) - started))"

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
