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
# shellcheck source=scripts/grid-lib.sh
. "$root/scripts/grid-lib.sh"
trap 'grid_stop; rm -rf "$work"' EXIT INT TERM
grid_start "$bin" "$work" "$workers" "$slots"

project="$work/calc"
cp -r "$root/testdata/calc" "$project"
make -s -C "$project" clean >/dev/null

ms() { date +%s%3N; }
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
