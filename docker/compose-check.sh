#!/usr/bin/env bash
# End-to-end check of the compose grid: brings docker/compose.yaml up,
# shows each worker's job mode (`gridcc status`: MODE unsandboxed under
# compose.yaml's --no-sandbox; hermetic with --hermetic below), builds a copy of testdata/calc through the wrapper against it,
# checks that every job ran remotely on the containers and that every object
# is byte-identical to a plain local gcc build of the same directory, then
# brings the grid down again.
#
#   docker/compose-check.sh [--hermetic]   (needs the images: docker/build-images.sh)
#
# --hermetic adds docker/compose.hermetic.yaml (the container settings bwrap
# needs; Compose v2 only) and then also asserts that every worker shows MODE
# hermetic and that every job ran hermetic, in the sandbox (`gridcc stats`
# jobs_hermetic, and "hermetic":true on each GRIDCC_JOB_LOG line).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
gridcc="$root/target/release/gridcc"
url=http://127.0.0.1:7700
hermetic=0
while [ $# -gt 0 ]; do
    case $1 in
        --hermetic) hermetic=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "compose-check.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
files=(-f "$root/docker/compose.yaml")
[ "$hermetic" = 0 ] || files+=(-f "$root/docker/compose.hermetic.yaml")
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose "${files[@]}")
elif command -v docker-compose >/dev/null 2>&1; then
    [ "$hermetic" = 0 ] || {
        echo "compose-check: --hermetic needs Compose v2 (docker compose): docker-compose v1 cannot pass systempaths=unconfined (the engine answers \"invalid --security-opt 2\"); see docker/README.md, \"Hermetic jobs\"" >&2
        exit 1
    }
    compose=(docker-compose "${files[@]}")
else
    echo "compose-check: neither docker compose nor docker-compose: run scripts/docker-engine.sh" >&2
    exit 1
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

# Each worker registers with its job mode: unsandboxed (compose.yaml's
# --no-sandbox), or hermetic with compose.hermetic.yaml (a worker that
# cannot start its sandbox there exits with the reason).
"$gridcc" status --coordinator "$url"
hermetic_workers=$("$gridcc" status --json --coordinator "$url" | grep -c '"job_mode": *"hermetic"' || true)
echo "== workers running hermetic jobs: $hermetic_workers of 3"
[ "$hermetic" = 0 ] || [ "$hermetic_workers" -eq 3 ] || {
    echo "compose-check: only $hermetic_workers of 3 workers run hermetic jobs (see \"runs text jobs only\" above)" >&2
    exit 1
}

project="$work/calc"
cp -r "$root/testdata/calc" "$project"
# Same directory for both builds: -g records the build directory.
make -s -C "$project" clean
make -s -C "$project" -j4 CC=gcc >/dev/null 2>&1
mkdir "$work/local"
cp "$project"/*.o "$work/local/"
make -s -C "$project" clean

echo "== make -j4 CC=\"gridcc gcc\" against $url"
# A fresh cache dir (no hits from an earlier run, stats of this build only)
# and a job log: one line per compile, with the mode it ran in.
export GRIDCC_CACHE_DIR="$work/cache" GRIDCC_JOB_LOG="$work/jobs.jsonl"
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
stat_of() { "$gridcc" stats --json | sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p"; }
compiles_remote=$(stat_of compiles_remote)
jobs_hermetic=$(stat_of jobs_hermetic)
jobs_text=$(stat_of jobs_text)
logged_remote=$(grep -c '"mode":"remote"' "$GRIDCC_JOB_LOG" || true)
logged_hermetic=$(grep '"mode":"remote"' "$GRIDCC_JOB_LOG" | grep -c '"hermetic":true' || true)
echo "== gridcc stats: compiles_remote $compiles_remote, jobs_hermetic $jobs_hermetic, jobs_text $jobs_text; job log: $logged_hermetic of $logged_remote remote jobs hermetic"
[ "$same" -eq "$total" ] || { echo "compose-check: objects differ from the local build" >&2; exit 1; }
[ "${remote:-0}" -gt 0 ] || { echo "compose-check: no job ran on the workers" >&2; exit 1; }
[ "$hermetic" = 0 ] || { [ "${jobs_hermetic:-0}" -eq "$total" ] && [ "$logged_hermetic" -eq "$total" ]; } || {
    echo "compose-check: $jobs_hermetic of $total jobs ran hermetic (job log: $logged_hermetic)" >&2
    grep -v '"hermetic":true' "$GRIDCC_JOB_LOG" | head -n 3 >&2
    exit 1
}
echo "== ${compose[*]} down"
"${compose[@]}" down
trap 'rm -rf "$work"' EXIT
echo "compose-check: passed ($remote jobs compiled remotely, $jobs_hermetic/$total hermetic, $same/$total objects identical)"
