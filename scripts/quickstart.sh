#!/usr/bin/env bash
# gridcc quickstart: the main job. Builds gridcc, then runs the smoke
# scenario of the benchmark mode on the local backend: a coordinator and
# workers on 127.0.0.1 (each under a cgroup CPU quota where the machine
# allows), the C project in testdata/calc built through the wrapper
# (`make -j4 CC="gridcc gcc"`) on a one-worker and a two-worker grid, with
# both placement policies, three interleaved repetitions, every object
# checked against a plain local build, and a short report.
#
#   scripts/quickstart.sh [SCENARIO.toml]     (default: bench-scenarios/smoke.toml)
#
# The full results (summary.md, results.csv, SVG charts, every run's logs
# and job trace) are in the directory printed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scenario=${1:-bench-scenarios/smoke.toml}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need gcc || ! need make; then
    echo "== installing gcc and make"
    apt-get update -qq && apt-get install -y -qq gcc make >/dev/null
fi
# Workers run every job in a bubblewrap sandbox, and exit without one.
if ! need bwrap; then
    echo "== installing bubblewrap (the workers' sandbox)"
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
fi
need cargo || { echo "quickstart: cargo is required (https://rustup.rs)" >&2; exit 1; }

echo "== building gridcc (release)"
cargo build --release --quiet --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"

out="${CARGO_TARGET_DIR:-$root/target}/quickstart/$(date +%Y%m%d-%H%M%S)"
echo "== running $scenario on the local backend (results: $out)"
status=0
"$bin/gridcc-bench" run "$scenario" --backend local --out "$out" --bin-dir "$bin" || status=$?

echo
echo "== report ($out/summary.md)"
# The machine line, the table of configurations and the verdicts.
sed -n '/^Machine:/,/^## Every run/p' "$out/summary.md" | sed '/^## Every run/d'
exit "$status"
