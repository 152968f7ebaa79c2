#!/usr/bin/env bash
# Replays a job trace on the reference report's worker shapes with every
# placement policy and prints a markdown table of makespan vs lower bound.
#
#   scripts/simulate-shapes.sh [TRACE] [JOBS]
# Defaults: testdata/traces/cpython-3.11.2.jsonl, make -j8.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
trace=${1:-$root/testdata/traces/cpython-3.11.2.jsonl}
jobs=${2:-8}
cargo build --release --quiet -p gridcc-bench --manifest-path "$root/Cargo.toml"
bench="$root/target/release/gridcc-bench"
shapes=(
    "heterogeneous 1x4.0|4.0"
    "heterogeneous 0.8+1.2+2.0|0.8,1.2,2.0"
    "heterogeneous 0.5+0.6+0.8+1.0+1.1|0.5,0.6,0.8,1.0,1.1"
    "equal 1x2.5|2.5"
    "equal 3x0.83|0.83,0.83,0.83"
    "equal 4x0.625|0.625,0.625,0.625,0.625"
    "equal 5x0.5|0.5,0.5,0.5,0.5,0.5"
)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for shape in "${shapes[@]}"; do
    name=${shape%%|*} workers=${shape#*|}
    printf '%s\t' "$name" >>"$out"
    "$bench" simulate --trace "$trace" --workers "$workers" --jobs "$jobs" --policy all --json | tr -d '\n' >>"$out"
    echo >>"$out"
done
python3 - "$out" "$trace" "$jobs" <<'PY'
import json, sys
rows = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1]) if line.strip()]
print(f"Trace `{sys.argv[2].split('/')[-1]}`, make -j{sys.argv[3]}, slots = ceil(CPU); "
      "makespan in simulated seconds (efficiency = lower bound / makespan).\n")
policies = None
for name, doc in rows:
    runs = json.loads(doc)["policies"]
    if policies is None:
        policies = [r["policy"] for r in runs]
        print("| shape | lower bound | " + " | ".join(policies) + " |")
        print("|---|---:|" + "---:|" * len(policies))
    bound = runs[0]["lower_bound_s"]
    cells = [f"{r['makespan_s']:.1f} ({r['efficiency']:.2f})" for r in runs]
    print(f"| {name} | {bound:.1f} | " + " | ".join(cells) + " |")
PY
