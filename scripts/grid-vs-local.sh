#!/usr/bin/env bash
# Builds a C project twice in the same directory, once with plain gcc and
# once through a local grid, and compares every object file byte for byte.
#
#   scripts/grid-vs-local.sh [-w WORKERS] [-s SLOTS] [-j JOBS] [-c CC_EXTRA] [-k KEEP_DIR] DIR [MAKE ARGS...]
#
# -k keeps the build logs and the grid's status in KEEP_DIR; the grid build
# runs with GRIDCC_LOG=gridcc_client=info, so every job that compiled
# locally is logged with its reason ("compiling locally").
#
# e.g. scripts/grid-vs-local.sh -c -std=gnu99 target/workloads/lua5.4 linux
# The project must build with `make … CC=…` and clean with `make clean`.
set -euo pipefail
workers=2 slots=1 jobs=4 cc_extra="" keep=""
while getopts "w:s:j:c:k:" opt; do
    case $opt in
        w) workers=$OPTARG ;; s) slots=$OPTARG ;; j) jobs=$OPTARG ;; c) cc_extra=$OPTARG ;;
        k) keep=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-w N] [-s N] [-j N] [-c FLAGS] DIR [MAKE ARGS...]" >&2; exit 2; }
project=$(cd "$1" && pwd); shift
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --bins --manifest-path "$root/Cargo.toml"
bin="$root/target/release"
work=$(mktemp -d /tmp/gridcc-compare.XXXXXX)
# shellcheck source=scripts/grid-lib.sh
. "$root/scripts/grid-lib.sh"
trap 'grid_stop; rm -rf "$work"' EXIT INT TERM
grid_start "$bin" "$work" "$workers" "$slots"

objects() { find "$project" -name '*.o' -newer "$1" | sort; }
ms() { date +%s%3N; }

make -s -C "$project" clean >/dev/null 2>&1 || true
touch "$work/stamp-local"; sleep 0.01
echo "== local build: make -j$jobs $* CC=\"gcc $cc_extra\""
t0=$(ms); make -s -C "$project" -j"$jobs" "$@" CC="gcc $cc_extra" >"$work/local.log" 2>&1; t1=$(ms)
mkdir "$work/local"
objects "$work/stamp-local" | while read -r o; do
    mkdir -p "$work/local/$(dirname "${o#"$project"/}")"; cp "$o" "$work/local/${o#"$project"/}"
done
nlocal=$(objects "$work/stamp-local" | wc -l)
make -s -C "$project" clean >/dev/null 2>&1

touch "$work/stamp-grid"; sleep 0.01
echo "== grid build: make -j$jobs $* CC=\"gridcc gcc $cc_extra\""
t2=$(ms)
GRIDCC_COORDINATOR="$url" GRIDCC_CACHE_DIR="$work/cache" GRIDCC_LOG=gridcc_client=info \
    make -s -C "$project" -j"$jobs" "$@" CC="$bin/gridcc gcc $cc_extra" >"$work/grid.log" 2>&1
t3=$(ms)
same=0 differ=0 missing=0
while read -r rel; do
    if [ ! -f "$project/$rel" ]; then missing=$((missing + 1)); echo "missing: $rel"
    elif cmp -s "$work/local/$rel" "$project/$rel"; then same=$((same + 1))
    else differ=$((differ + 1)); echo "differs: $rel"; fi
done < <(cd "$work/local" && find . -name '*.o' | sed 's|^\./||' | sort)

echo
"$bin/gridcc" status --coordinator "$url"
"$bin/gridcc" status --json --coordinator "$url" >"$work/status.json"
remote=$(grep -m1 '"jobs_remote"' "$work/status.json" | tr -dc 0-9)
echo "objects: $nlocal; identical to the local build: $same, different: $differ, missing: $missing"
echo "compiled remotely: $remote"
echo "wall: local $((t1 - t0)) ms, grid $((t3 - t2)) ms"
nlocal_jobs=$(grep -c "compiling locally" "$work/grid.log" || true)
echo "jobs compiled locally: $nlocal_jobs"
grep "compiling locally" "$work/grid.log" | sed 's/\x1b\[[0-9;]*m//g; s/^.*compiling locally //' | head -20 || true
if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp "$work/local.log" "$work/grid.log" "$work/status.json" "$keep/"
    echo "logs kept in $keep"
fi
[ "$differ" -eq 0 ] && [ "$missing" -eq 0 ]
