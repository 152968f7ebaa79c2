#!/usr/bin/env bash
# Builds a minimal Debian bookworm root filesystem with debootstrap and
# imports it into the Docker engine as gridcc-base:bookworm. This is the
# offline base for docker/Dockerfile.{worker,coordinator} on machines that
# cannot reach Docker Hub but can reach a Debian mirror.
#
# The rootfs carries gcc, g++ and make from bookworm, i.e. the same
# gcc 12.2.0 packages a bookworm host has, so the workers' compiler digest
# matches the client's, and bubblewrap, the sandbox every job runs in
# (gridcc-worker exits without it unless given --no-sandbox).
#
#   docker/rootfs.sh [--force] [--mirror URL]
#
# Skips everything when gridcc-base:bookworm already exists, unless --force.
set -euo pipefail

image=gridcc-base:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
force=0
while [ $# -gt 0 ]; do
    case $1 in
        --force) force=1 ;;
        --mirror) mirror=$2; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "rootfs.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    # A base made before hermetic jobs lacks bwrap, which the offline worker
    # build cannot fetch: make it again.
    if docker run --rm --network none --entrypoint /bin/sh "$image" -c 'command -v bwrap' >/dev/null 2>&1; then
        echo "rootfs.sh: $image already exists (use --force to rebuild)"
        exit 0
    fi
    echo "== $image has no bwrap (made before hermetic jobs); building it again"
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "== installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d /tmp/gridcc-rootfs.XXXXXX)
cleanup() {
    # debootstrap may leave proc/sys mounted when it fails half-way.
    for m in proc sys dev/pts dev; do
        mountpoint -q "$work/root/$m" 2>/dev/null && umount -l "$work/root/$m" || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== debootstrap $suite (minbase + gcc g++ make bubblewrap) from $mirror"
debootstrap --variant=minbase --include=gcc,g++,make,bubblewrap,ca-certificates \
    "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    echo "rootfs.sh: debootstrap failed; last lines of its log:" >&2
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
}

# Slim it down: apt lists and caches, docs, man pages.
chroot "$work/root" apt-get clean
rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/usr/share/doc/* \
    "$work/root"/usr/share/man/* "$work/root"/usr/share/info/* \
    "$work/root"/var/cache/debconf/*-old "$work/root"/var/log/*.log

gcc_version=$(chroot "$work/root" dpkg-query -W -f='${Version}' gcc-12)
echo "== importing as $image (gcc-12 $gcc_version)"
tar -C "$work/root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "gridcc offline base: debootstrap $suite minbase + gcc g++ make bubblewrap" \
    - "$image" >/dev/null
docker image ls "$image"
