#!/usr/bin/env bash
# gridcc's test command: installs what the tests need (gcc, g++, make,
# pkill, bubblewrap for the hermetic jobs' sandbox, util-linux's unshare,
# and chromium + chromedriver for the monitor's browser test) when
# missing, fetches Lua's source for that test (scripts/fetch-lua.sh, into
# target/workloads/lua5.4) when it is not there, builds every binary (the
# end-to-end tests run them as processes), and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1; }
if ! need gcc || ! need g++ || ! need make || ! need pkill || ! need bwrap || ! need unshare; then
    apt-get update -qq && apt-get install -y -qq gcc g++ make procps bubblewrap util-linux >/dev/null
fi
scripts/browser-deps.sh
[ -f target/workloads/lua5.4/src/lvm.c ] || scripts/fetch-lua.sh >/dev/null
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
