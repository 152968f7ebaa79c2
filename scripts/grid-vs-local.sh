#!/usr/bin/env bash
# Builds a C project twice in the same directory, once with plain gcc and
# once through a local grid, and compares every object file byte for byte.
#
#   scripts/grid-vs-local.sh [-w WORKERS] [-s SLOTS] [-j JOBS] [-c CC_EXTRA] [-k KEEP_DIR] [-r] DIR [MAKE ARGS...]
#
# Object files (*.o) and dependency files (*.d) are compared.
# -k keeps the build logs, the job log (GRIDCC_JOB_LOG) and the grid's
# status in KEEP_DIR; the grid build runs with GRIDCC_LOG=gridcc_client=info,
# so every job that compiled locally is logged with its reason ("compiling
# locally"), and `gridcc stats` is printed after it (remote jobs, of which
# hermetic, and why any went as text).
# -r builds through the grid a second time from a clean tree, against the
# same workers, with an empty client cache, and compares again. Workers
# started with `--metrics-listen` (WORKER_ARGS) report the input bytes they
# received during each grid build (gridcc_worker_received_bytes_total).
#
# Hermetic jobs are the default (WORKER_ARGS="--no-sandbox" gives text
# jobs); the worker's --work-dir and its parents must be traversable by the
# compile user when run as root.
#
# e.g. scripts/grid-vs-local.sh -c -std=gnu99 target/workloads/lua5.4 linux
# The project must build with `make … CC=…` and clean with `make clean`.
set -euo pipefail
workers=2 slots=1 jobs=4 cc_extra="" keep="" repeat=0
while getopts "w:s:j:c:k:r" opt; do
    case $opt in
        w) workers=$OPTARG ;; s) slots=$OPTARG ;; j) jobs=$OPTARG ;; c) cc_extra=$OPTARG ;;
        k) keep=$OPTARG ;; r) repeat=1 ;;
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

objects() { find "$project" \( -name '*.o' -o -name '*.d' \) -newer "$1" | sort; }
# Input bytes the workers received so far (those with a metrics port).
received() {
    local total=0 a v
    for out in "$work"/worker*.out; do
        a=$(sed -n 's/^metrics listening on //p' "$out" | head -1)
        [ -n "$a" ] || continue
        v=$(curl -s "http://$a/metrics" | awk '$1 == "gridcc_worker_received_bytes_total" {printf "%d", $2}')
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
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

# One build through the grid in a clean tree, compared with the local one.
grid_build() {
    local n=$1
    make -s -C "$project" clean >/dev/null 2>&1 || true
    touch "$work/stamp-grid"; sleep 0.01
    echo "== grid build $n: make -j$jobs ${make_args[*]} CC=\"gridcc gcc $cc_extra\""
    local r0; r0=$(received)
    t2=$(ms)
    GRIDCC_COORDINATOR="$url" GRIDCC_CACHE_DIR="$work/cache$n" GRIDCC_LOG=gridcc_client=info \
        GRIDCC_JOB_LOG="$work/jobs$n.jsonl" \
        make -s -C "$project" -j"$jobs" "${make_args[@]}" CC="$bin/gridcc gcc $cc_extra" >"$work/grid$n.log" 2>&1
    t3=$(ms)
    echo "input bytes received by the workers in grid build $n: $(( $(received) - r0 ))"
    same=0 differ=0 missing=0
    while read -r rel; do
        if [ ! -f "$project/$rel" ]; then missing=$((missing + 1)); echo "missing: $rel"
        elif cmp -s "$work/local/$rel" "$project/$rel"; then same=$((same + 1))
        else differ=$((differ + 1)); echo "differs: $rel"; fi
    done < <(cd "$work/local" && find . \( -name '*.o' -o -name '*.d' \) | sed 's|^\./||' | sort)
    GRIDCC_CACHE_DIR="$work/cache$n" "$bin/gridcc" stats
    echo "grid build $n: objects and .d files: $nlocal; identical: $same, different: $differ, missing: $missing"
    total_differ=$((total_differ + differ + missing))
}
make_args=("$@")
total_differ=0
grid_build 1
if [ "$repeat" = 1 ]; then grid_build 2; fi
echo
"$bin/gridcc" status --coordinator "$url"
"$bin/gridcc" status --json --coordinator "$url" >"$work/status.json"
remote=$(grep -m1 '"jobs_remote"' "$work/status.json" | tr -dc 0-9)
echo "compiled remotely: $remote"
echo "wall: local $((t1 - t0)) ms, grid $((t3 - t2)) ms"
nlocal_jobs=$(grep -c "compiling locally" "$work/grid1.log" || true)
echo "jobs compiled locally (grid build 1): $nlocal_jobs"
grep "compiling locally" "$work/grid1.log" | sed 's/\x1b\[[0-9;]*m//g; s/^.*compiling locally //' | head -20 || true
if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp "$work/local.log" "$work"/grid*.log "$work"/jobs*.jsonl "$work/status.json" "$keep/" 2>/dev/null || true
    echo "logs kept in $keep"
fi
[ "$total_differ" -eq 0 ]
