#!/usr/bin/env bash
# fetch-lua.sh [DEST]
#
# Fetches Lua 5.4 (Debian source package lua5.4, pristine upstream tarball)
# into DEST (default: target/workloads/lua5.4, relative to the repository
# root) and prints the source directory as the last line of stdout.
# Idempotent: does nothing when DEST already holds it.
#
# Building it (upstream Makefiles; the top-level Makefile forwards to src/):
#     make -C "$DIR" -j4 linux CC="gridcc gcc"
#     make -C "$DIR" -j4 posix CC="gridcc gcc"        # also fine (no -ldl)
#     make -C "$DIR" clean
# In Lua 5.4.4 (Debian bookworm's lua5.4) `make linux` is an alias of
# `linux-noreadline` (-DLUA_USE_LINUX, links -ldl only): it needs nothing but
# gcc, make and libc.  `linux-readline` additionally needs libreadline-dev;
# set GRIDCC_LUA_READLINE=1 to have this script install it.  The default
# CC in src/Makefile is `gcc -std=gnu99`; overriding CC drops -std=gnu99,
# which is fine with gcc >= 5 (default gnu11/gnu17).
# Verified: `make -C "$DIR" -j2 linux CC=gcc` builds src/lua and src/luac
# warning-free in ~3 s on 2 cores.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DEST=${1:-$ROOT/target/workloads/lua5.4}

if [ "${GRIDCC_LUA_READLINE:-0}" = 1 ] && [ ! -f /usr/include/readline/readline.h ]; then
    echo "fetch-lua: installing libreadline-dev for 'make linux'" >&2
    SUDO=; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libreadline-dev >&2
fi

DIR=$("$HERE/fetch-debian-source.sh" lua5.4 "$DEST" | tail -n1)
[ -f "$DIR/src/lvm.c" ] || { echo "fetch-lua: $DIR does not look like Lua (no src/lvm.c)" >&2; exit 1; }
echo "$DIR"
