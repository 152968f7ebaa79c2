#!/usr/bin/env bash
# gridcc quickstart: builds gridcc, starts a local grid on loopback (one
# coordinator, two workers), builds the C project in testdata/calc through
# the wrapper, checks every object against a plain local build, and reports
# where the jobs ran.
#
#   scripts/quickstart.sh [WORKERS] [SLOTS_PER_WORKER]
set -euo pipefail

workers=${1:-2}
slots=${2:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need gcc || ! need make; then
    echo "== installing gcc and make"
    apt-get update -qq && apt-get install -y -qq gcc make >/dev/null
fi
need cargo || { echo "quickstart: cargo is required (https://rustup.rs)" >&2; exit 1; }

echo "== building gridcc (release)"
cargo build --release --quiet --bins
bin="$root/target/release"

work=$(mktemp -d /tmp/gridcc-quickstart.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Starts a server in the background and prints its address from the
# contract's first stdout line, "listening on IP:PORT".
start() {
    local name=$1; shift
    local fifo="$work/$name.out"
    mkfifo "$fifo"
    "$@" >"$fifo" 2>"$work/$name.log" &
    pids+=($!)
    local line
    read -r line <"$fifo"
    # Keep draining stdout so the server never blocks on a full pipe.
    cat "$fifo" >/dev/null &
    echo "${line#listening on }"
}

coord=$(start coordinator "$bin/gridcc-coordinator" --listen 127.0.0.1:0)
url="http://$coord"
echo "== coordinator on $url"
for i in $(seq 1 "$workers"); do
    addr=$(start "worker$i" "$bin/gridcc-worker" --coordinator "$url" --listen 127.0.0.1:0 --slots "$slots")
    echo "== worker $i on $addr ($slots slot(s))"
done
for _ in $(seq 1 100); do
    n=$("$bin/gridcc" status --json --coordinator "$url" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))')
    [ "$n" -eq "$workers" ] && break
    sleep 0.1
done

project="$work/calc"
cp -r "$root/testdata/calc" "$project"
make -s -C "$project" clean >/dev/null

ms() { python3 -c 'import time; print(int(time.monotonic()*1000))'; }
echo "== local build (make -j4 CC=gcc)"
t0=$(ms); make -s -C "$project" -j4 CC=gcc >/dev/null 2>&1; t1=$(ms)
mkdir "$work/local"
cp "$project"/*.o "$project"/*.d "$work/local/"
make -s -C "$project" clean >/dev/null

echo "== grid build (make -j4 CC=\"gridcc gcc\")"
t2=$(ms)
GRIDCC_COORDINATOR="$url" GRIDCC_CACHE_DIR="$work/cache" \
    make -s -C "$project" -j4 CC="$bin/gridcc gcc"
t3=$(ms)
make -s -C "$project" check

same=0; differ=0
for f in "$work"/local/*; do
    if cmp -s "$f" "$project/$(basename "$f")"; then same=$((same + 1)); else differ=$((differ + 1)); echo "differs: $(basename "$f")"; fi
done

echo
echo "== report"
"$bin/gridcc" status --coordinator "$url"
echo "objects and .d files identical to the local build: $same of $((same + differ))"
echo "wall time: local $((t1 - t0)) ms, grid $((t3 - t2)) ms (this is a tiny project on one machine:"
echo "the grid pays for preprocessing and transfer; see README for real measurements)"
[ "$differ" -eq 0 ]
