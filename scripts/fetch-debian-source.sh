#!/usr/bin/env bash
# fetch-debian-source.sh PACKAGE DEST [--debian-patched]
#
# Fetches the Debian source package PACKAGE (e.g. lua5.4, python3.11) with
# `apt-get source --download-only` and unpacks it into DEST.
#
#  * By default DEST receives the pristine upstream tree (the .orig tarball,
#    top-level directory stripped).  With --debian-patched (or
#    GRIDCC_DEBIAN_PATCHED=1) it receives `dpkg-source -x` output instead:
#    upstream + debian/ + Debian's patches applied (needs dpkg-dev).
#  * Adds a deb-src entry for the running release if no enabled one exists
#    (/etc/apt/sources.list.d/gridcc-deb-src.sources, deb822 format) and runs
#    `apt-get update` when apt does not know the source package yet.
#  * Idempotent: if DEST already holds a finished unpack (marker file
#    DEST/.gridcc-source) nothing is downloaded.
#  * Prints the absolute source directory as its LAST line of stdout;
#    progress goes to stderr.
#
# Needs root (or passwordless sudo) only for the deb-src/apt-get update step.
set -euo pipefail

usage() { echo "usage: $0 PACKAGE DEST [--debian-patched]" >&2; exit 2; }
[ $# -ge 2 ] || usage
PKG=$1
DEST=$2
PATCHED=${GRIDCC_DEBIAN_PATCHED:-0}
[ "${3:-}" = "--debian-patched" ] && PATCHED=1

log() { echo "fetch-debian-source: $*" >&2; }

SUDO=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

mkdir -p "$(dirname "$DEST")"
DEST_ABS=$(cd "$(dirname "$DEST")" && pwd)/$(basename "$DEST")
MARKER=$DEST_ABS/.gridcc-source

if [ -f "$MARKER" ]; then
    log "$PKG already unpacked in $DEST_ABS ($(head -n1 "$MARKER")), skipping"
    echo "$DEST_ABS"
    exit 0
fi
if [ -e "$DEST_ABS" ] && [ -n "$(ls -A "$DEST_ABS" 2>/dev/null)" ]; then
    log "error: $DEST_ABS exists, is not empty and has no $MARKER; remove it first"
    exit 1
fi

# --- make sure apt has a deb-src entry --------------------------------------
have_deb_src() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -Eq '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: a stanza with "Types: ... deb-src ..." that is not "Enabled: no"
        awk 'BEGIN{RS=""; IGNORECASE=1; found=0}
             /(^|\n)Types:[^\n]*deb-src/ && !/(^|\n)Enabled:[[:space:]]*no/ {found=1}
             END{exit found?0:1}' "$f" && return 0
    done
    return 1
}

add_deb_src() {
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || { log "error: cannot determine the Debian codename"; exit 1; }
    log "no deb-src entry found; adding /etc/apt/sources.list.d/gridcc-deb-src.sources for $codename"
    $SUDO tee /etc/apt/sources.list.d/gridcc-deb-src.sources >/dev/null <<EOT
# added by gridcc scripts/fetch-debian-source.sh
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
}

if ! have_deb_src; then
    add_deb_src
fi
if ! apt-cache showsrc "$PKG" 2>/dev/null | grep '^Package:' >/dev/null; then
    log "running apt-get update"
    $SUDO apt-get update -qq >&2
fi
apt-cache showsrc "$PKG" 2>/dev/null | grep '^Package:' >/dev/null || {
    log "error: apt knows no source package '$PKG'"; exit 1; }

# --- download ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gridcc-src-$PKG.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "downloading source package $PKG into $WORK"
# apt drops privileges to _apt for downloads; let it write into WORK.
chmod 0777 "$WORK"
# A mirror may list a version (often the security pocket's) whose files it
# does not serve; try every listed version, newest first.
fetched=0
for ver in "" $(apt-cache showsrc "$PKG" 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p' | sort -Vru); do
    want=$PKG${ver:+=$ver}
    rm -f "$WORK"/* 2>/dev/null || true
    if (cd "$WORK" && apt-get source --download-only -qq "$want" >&2); then
        fetched=1
        break
    fi
    log "could not download $want; trying an older version"
done
[ "$fetched" = 1 ] || { log "error: no version of $PKG could be downloaded"; exit 1; }

DSC=$(ls "$WORK"/*.dsc | head -n1)
VERSION=$(sed -n 's/^Version:[[:space:]]*//p' "$DSC" | head -n1)

# --- unpack --------------------------------------------------------------------
TMPDEST=$WORK/unpacked
if [ "$PATCHED" = 1 ]; then
    command -v dpkg-source >/dev/null || { log "error: --debian-patched needs dpkg-dev"; exit 1; }
    log "dpkg-source -x $(basename "$DSC")"
    (cd "$WORK" && dpkg-source --no-check -x "$(basename "$DSC")" "$TMPDEST" >&2)
    KIND="debian-patched"
else
    ORIG=$(ls "$WORK"/*.orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -n1 || true)
    if [ -z "$ORIG" ]; then
        # native package: the only tarball is the source
        ORIG=$(ls "$WORK"/*.tar.* | grep -v '\.asc$' | head -n1)
    fi
    log "unpacking $(basename "$ORIG")"
    mkdir -p "$WORK/x"
    tar -xf "$ORIG" -C "$WORK/x" --no-same-owner
    # usually one top-level directory (lua-5.4.4/, Python-3.11.2/): strip it
    if [ "$(ls -A "$WORK/x" | wc -l)" = 1 ] && [ -d "$WORK/x/$(ls -A "$WORK/x")" ]; then
        mv "$WORK/x/$(ls -A "$WORK/x")" "$TMPDEST"
    else
        mv "$WORK/x" "$TMPDEST"
    fi
    KIND="upstream-orig"
fi

mkdir -p "$(dirname "$DEST_ABS")"
rm -rf "$DEST_ABS"
mv "$TMPDEST" "$DEST_ABS"
printf '%s %s %s\n' "$PKG" "$VERSION" "$KIND" > "$MARKER"
log "unpacked $PKG $VERSION ($KIND) into $DEST_ABS"
echo "$DEST_ABS"
