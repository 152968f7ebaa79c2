#!/usr/bin/env bash
# A short fuzzing run for CI: replays the kept corpus (fuzz/corpus) through
# every harness on stable Rust, then runs each cargo-fuzz target for
# FUZZ_SECONDS (default 20) seconds, starting from that corpus. New inputs
# go to a scratch corpus, never into the repository; a crash leaves its
# input under target/fuzz-artifacts/<target>/ and fails the run.
#
#   scripts/fuzz-smoke.sh              replay, then 20 s per target
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh
#   FUZZ_SECONDS=0 scripts/fuzz-smoke.sh   replay only
#
# cargo-fuzz is installed when missing. It runs on stable Rust with
# `--sanitizer none` (the code under test forbids `unsafe`, so
# AddressSanitizer would instrument nothing of ours); libFuzzer itself is
# built from C++ by libfuzzer-sys, so g++ is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
targets=(args wire payload cache worker_input terminal)

echo "fuzz-smoke: replaying fuzz/corpus"
# The main target dir: the dependencies the test suite built are reused.
cargo test --manifest-path fuzz/Cargo.toml --target-dir target

if [ "$seconds" -eq 0 ]; then
    exit 0
fi
if ! command -v g++ >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build --fuzz-dir fuzz --sanitizer none
scratch=target/fuzz-scratch
rm -rf "$scratch"
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "target/fuzz-artifacts/$t"
    log="$scratch/$t.log"
    echo "fuzz-smoke: $t for ${seconds}s"
    # -rss_limit_mb: every harness works on small inputs, so a large
    # allocation is a finding too.
    if ! cargo fuzz run --fuzz-dir fuzz --sanitizer none "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 \
        -artifact_prefix="target/fuzz-artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz-smoke: $t failed; its input is kept in target/fuzz-artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^(Done |stat::number_of_executed_units)' "$log" || true
done
echo "fuzz-smoke: ${#targets[@]} targets, ${seconds}s each, no crash"
