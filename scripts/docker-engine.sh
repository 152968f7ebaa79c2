#!/usr/bin/env bash
# Makes sure a Docker engine is installed and answering, for the Docker
# grid (docker/compose.yaml, gridcc-bench's docker backend).
#
#   scripts/docker-engine.sh [--timeout SECONDS]
#
# Idempotent: installs docker.io and docker-compose with apt only when they
# are missing, and starts dockerd only when `docker info` does not answer.
# A dockerd started here runs in the background without a bridge network
# and without touching iptables (--bridge=none --iptables=false): gridcc's
# containers all use host networking on 127.0.0.1. Its log goes to
# /tmp/gridcc-dockerd.log.
set -euo pipefail

timeout=${DOCKERD_TIMEOUT:-60}
log=/tmp/gridcc-dockerd.log
while [ $# -gt 0 ]; do
    case $1 in
        --timeout) timeout=$2; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "docker-engine.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

need() { command -v "$1" >/dev/null 2>&1; }
sudo=
if [ "$(id -u)" != 0 ]; then
    need sudo || { echo "docker-engine.sh: must run as root (or with sudo available)" >&2; exit 1; }
    sudo=sudo
fi

pkgs=()
need dockerd || pkgs+=(docker.io)
need docker || pkgs+=(docker.io)
need docker-compose || docker compose version >/dev/null 2>&1 || pkgs+=(docker-compose)
if [ ${#pkgs[@]} -gt 0 ]; then
    # shellcheck disable=SC2207
    pkgs=($(printf '%s\n' "${pkgs[@]}" | sort -u))
    echo "== installing ${pkgs[*]} (apt)"
    $sudo apt-get update -qq
    # policy-rc.d-free install: on machines without systemd apt cannot start
    # the service, which is fine, we start dockerd ourselves below.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${pkgs[@]}" >/dev/null
fi

engine_up() { $sudo docker info >/dev/null 2>&1; }

if engine_up; then
    echo "docker-engine.sh: engine already running ($($sudo docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null))"
    exit 0
fi

# A dead daemon can leave its pid file behind and refuse to start again.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    $sudo rm -f /var/run/docker.pid
fi

if [ -f /var/run/docker.pid ]; then
    echo "== dockerd (pid $(cat /var/run/docker.pid)) is running but not answering yet; waiting"
else
    echo "== starting dockerd (--bridge=none --iptables=false), log: $log"
    $sudo sh -c "nohup dockerd --bridge=none --iptables=false >>'$log' 2>&1 </dev/null &"
fi

deadline=$(( $(date +%s) + timeout ))
until engine_up; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "docker-engine.sh: docker engine did not answer within ${timeout}s; last lines of $log:" >&2
        tail -n 15 "$log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 1
done
echo "docker-engine.sh: engine up ($($sudo docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null))"
