#!/usr/bin/env bash
# End-to-end check of the compose grid: brings docker/compose.yaml up,
# builds a copy of testdata/calc through the wrapper against it, checks that
# every job ran remotely on the containers and that every object is
# byte-identical to a plain local gcc build of the same directory, then
# brings the grid down again.
#
#   docker/compose-check.sh          (needs the images: docker/build-images.sh)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
gridcc="$root/target/release/gridcc"
url=http://127.0.0.1:7700
if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose -f "$root/docker/compose.yaml")
else
    compose=(docker compose -f "$root/docker/compose.yaml")
fi
[ -x "$gridcc" ] || (cd "$root" && cargo build --release --quiet --bins)

work=$(mktemp -d /tmp/gridcc-compose-check.XXXXXX)
trap '"${compose[@]}" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT INT TERM

echo "== ${compose[*]} up -d"
"${compose[@]}" up -d
n=0
for _ in $(seq 1 100); do
    n=$("$gridcc" status --json --coordinator "$url" 2>/dev/null | grep -c '"address"' || true)
    [ "$n" -eq 3 ] && break
    sleep 0.2
done
[ "$n" -eq 3 ] || { echo "compose-check: only $n of 3 workers registered" >&2; "${compose[@]}" logs --tail 5 >&2; exit 1; }

project="$work/calc"
cp -r "$root/testdata/calc" "$project"
# Same directory for both builds: -g records the build directory.
make -s -C "$project" clean
make -s -C "$project" -j4 CC=gcc >/dev/null 2>&1
mkdir "$work/local"
cp "$project"/*.o "$work/local/"
make -s -C "$project" clean

echo "== make -j4 CC=\"gridcc gcc\" against $url"
GRIDCC_COORDINATOR=$url make -s -C "$project" -j4 CC="$gridcc gcc" >/dev/null 2>&1
make -s -C "$project" check

total=0 same=0
for o in "$work/local"/*.o; do
    total=$((total + 1))
    cmp -s "$o" "$project/$(basename "$o")" && same=$((same + 1))
done
echo "== identical objects: $same/$total"
"$gridcc" status --coordinator "$url"
remote=$("$gridcc" status --json --coordinator "$url" | sed -n 's/.*"jobs_remote": *\([0-9]*\).*/\1/p')
[ "$same" -eq "$total" ] || { echo "compose-check: objects differ from the local build" >&2; exit 1; }
[ "${remote:-0}" -gt 0 ] || { echo "compose-check: no job ran on the workers" >&2; exit 1; }
echo "== ${compose[*]} down"
"${compose[@]}" down
trap 'rm -rf "$work"' EXIT
echo "compose-check: passed ($remote jobs compiled remotely, $same/$total objects identical)"
