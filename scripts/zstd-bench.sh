#!/usr/bin/env bash
# Measures the wire payload at zstd levels 1, 3, 6, 9, 19 and several chunk
# sizes on real preprocessed C (what the wrapper sends: gcc -E
# -fdirectives-only output), by running proto/examples/zstd-levels.rs.
#
#   scripts/zstd-bench.sh [SRC_DIR [N]]
#
# SRC_DIR: a configured C source tree whose Python/*.c and Objects/*.c (a
# CPython tree, e.g. target/workloads/python3.11 after the benchmark mode
# fetched it) or *.c files are preprocessed; default testdata/calc. N: at
# most this many files (default 24).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$root/testdata/calc}
max=${2:-24}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ -d "$src/Python" ] && [ -f "$src/pyconfig.h" ]; then
    files=$(ls "$src"/Python/*.c "$src"/Objects/*.c | head -n "$max")
    flags=(-I "$src/Include" -I "$src/Include/internal" -I "$src" -DPy_BUILD_CORE -O3 -g)
else
    files=$(ls "$src"/*.c | head -n "$max")
    flags=(-I "$src" -O2 -g)
fi
n=0
for f in $files; do
    if gcc -E -fdirectives-only "${flags[@]}" "$f" -o "$out/$n.i" 2>/dev/null; then
        n=$((n + 1))
    fi
done
[ "$n" -gt 0 ] || { echo "zstd-bench: nothing preprocessed under $src" >&2; exit 1; }
cd "$root"
cargo run --quiet --release -p gridcc-proto --example zstd-levels -- "$out"/*.i
