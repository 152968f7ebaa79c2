#!/usr/bin/env bash
# Builds the gridcc Docker images from the prebuilt release binaries:
#   gridcc-worker:local       (gcc, g++, gridcc-worker)
#   gridcc-coordinator:local  (gridcc-coordinator)
#   gridcc-peers:local        (distccd, iceccd, icecc-scheduler from Debian's
#                              packages, for gridcc-bench's peer cells)
#
#   docker/build-images.sh [--rebuild-bins] [--base IMAGE]
#
# Base image: debian:bookworm-slim when it is already local or `docker pull`
# gets it; otherwise the offline base gridcc-base:bookworm, made (once) by
# docker/rootfs.sh with debootstrap from a Debian mirror. --base forces one.
# Prints which path it used.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release"
base=
rebuild=0
while [ $# -gt 0 ]; do
    case $1 in
        --rebuild-bins) rebuild=1 ;;
        --base) base=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "build-images.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

docker info >/dev/null 2>&1 || {
    echo "build-images.sh: docker engine not reachable: run scripts/docker-engine.sh" >&2
    exit 1
}

if [ "$rebuild" = 1 ] || [ ! -x "$bin/gridcc-worker" ] || [ ! -x "$bin/gridcc-coordinator" ]; then
    echo "== building release binaries (cargo build --release --bins)"
    (cd "$root" && cargo build --release --quiet --bins)
fi

if [ -z "$base" ]; then
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        base=debian:bookworm-slim
        echo "== base: debian:bookworm-slim (already local)"
    elif timeout 60 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
        base=debian:bookworm-slim
        echo "== base: debian:bookworm-slim (pulled)"
    else
        echo "== base: debian:bookworm-slim not available (no registry); using offline gridcc-base:bookworm"
        "$root/docker/rootfs.sh"
        base=gridcc-base:bookworm
    fi
else
    echo "== base: $base (--base)"
fi

ctx=$(mktemp -d /tmp/gridcc-docker-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT INT TERM
mkdir "$ctx/bin"
cp "$bin/gridcc-worker" "$bin/gridcc-coordinator" "$ctx/bin/"
# Keep the images small: the release profile carries line tables.
strip "$ctx/bin/"* 2>/dev/null || true

for kind in coordinator worker peers; do
    echo "== docker build gridcc-$kind:local (FROM $base)"
    # DOCKER_BUILDKIT=0: the classic builder works offline with an imported
    # base (buildx may be missing, and buildkit may try to resolve the base
    # image on a registry). --network host: a RUN that installs packages
    # (the peers' always, the worker's on a base without gcc) reaches the
    # Debian mirror as the host does; scripts/docker-engine.sh's engine has
    # no bridge network to give it.
    if ! DOCKER_BUILDKIT=0 docker build -q --network host -f "$root/docker/Dockerfile.$kind" \
        --build-arg "BASE=$base" -t "gridcc-$kind:local" "$ctx" >"$ctx/build.log" 2>&1; then
        echo "build-images.sh: docker build of gridcc-$kind:local failed:" >&2
        grep -v -e DEPRECATED -e 'BuildKit is currently disabled' -e 'environment-variable' "$ctx/build.log" >&2
        exit 1
    fi
done
docker image ls --filter 'reference=gridcc-*' \
    --format 'table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}'
echo "build-images.sh: done (base $base)"
