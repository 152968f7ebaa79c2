#!/usr/bin/env bash
# soak.sh [-n COMPILES] [-p PARALLEL] [-w WORKERS] [-s STREAMS] [-b BIN_DIR]
#
# Soak test (a benchmark, not run in CI): COMPILES (default 5000) compiles
# through a local grid on loopback (one coordinator, WORKERS workers with one
# slot each, default 2), PARALLEL at a time (default 4), with the object
# cache off so every one goes remote. Each compile is a different small
# translation unit (a counter is compiled into it), so the coordinator's
# learned-cost table sees many distinct files, as in a real build.
#
# Resident memory (VmRSS) and open file descriptors of the coordinator and
# each worker are read from /proc after a 200-compile warm-up and at the end,
# and printed side by side. The bound, stated before the run: after warm-up,
# no server may grow by more than 16 MiB of RSS or 16 descriptors over the
# whole soak; exit 1 when one does. It also fails when any compile fails or
# fewer than all of them ran remotely.
#
# With -s STREAMS, the coordinator also serves its monitor (--http-listen)
# and STREAMS clients hold its live event stream open for the whole soak,
# as that many open monitor pages would (-s 0: the monitor on, no page).
# The coordinator's CPU time per 1000 compiles after warm-up is printed
# either way, so runs with and without pages can be compared.
#
# Uses target/release binaries (built here if missing; -b picks another
# directory, e.g. target/debug), under nice -n 10.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=5000
P=4
WORKERS=2
STREAMS=
BIN=$ROOT/target/release
while getopts n:p:w:s:b: opt; do
    case $opt in
        n) N=$OPTARG ;;
        p) P=$OPTARG ;;
        w) WORKERS=$OPTARG ;;
        s) STREAMS=$OPTARG ;;
        b) BIN=$(cd "$OPTARG" && pwd) ;;
        *) echo "usage: $0 [-n COMPILES] [-p PARALLEL] [-w WORKERS] [-s STREAMS] [-b BIN_DIR]" >&2; exit 2 ;;
    esac
done
WARMUP=200
RSS_BOUND_KB=$((16 * 1024))
FD_BOUND=16
[ -x "$BIN/gridcc-worker" ] || (cd "$ROOT" && cargo build --release --workspace)

WORK=$(mktemp -d /tmp/gridcc-soak.XXXXXX)
# shellcheck source=grid-lib.sh
. "$HERE/grid-lib.sh"
stream_pids=()
trap 'for p in "${stream_pids[@]}"; do kill "$p" 2>/dev/null || true; done; grid_stop; rm -rf "$WORK"' EXIT
unset GRIDCC_DISABLE GRIDCC_LOG GRIDCC_JOB_LOG
export GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$WORK/cache
# Queue when every slot is busy, so every compile runs remotely.
monitor_args=
[ -n "$STREAMS" ] && monitor_args="--http-listen 127.0.0.1:0"
COORDINATOR_ARGS="--when-busy queue $monitor_args" grid_start "$BIN" "$WORK" "$WORKERS" 1
export GRIDCC_COORDINATOR=$url
if [ -n "$STREAMS" ]; then
    http=$(sed -n 's/^http listening on //p' "$WORK/coordinator.out")
    echo "== monitor on http://$http/, $STREAMS event stream(s) open"
    for i in $(seq 1 "$STREAMS"); do
        curl -sN "http://$http/api/v1/events" >/dev/null &
        stream_pids+=("$!")
    done
fi
# cpu_ticks PID: user + system time of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
names=(coordinator)
for i in $(seq 1 "$WORKERS"); do names+=("worker$i"); done

cat >"$WORK/unit.c" <<'EOF'
#include <stdio.h>
#include <string.h>
static const char *name(void) { return "soak" STR; }
int unit(int x) { char b[64]; snprintf(b, sizeof b, "%s-%d", name(), x); return (int)strlen(b) * N; }
EOF

# compile FIRST LAST: compiles units FIRST..LAST, P at a time.
compile() {
    seq "$1" "$2" | nice -n 10 xargs -P "$P" -I{} sh -c \
        'cd "$0" && "$1/gridcc" gcc -O2 -DN={} -DSTR="\"{}\"" -c unit.c -o u{}.o && rm -f u{}.o' \
        "$WORK" "$BIN"
}

# snapshot LABEL: "name rss_kb fds" for each server, into $WORK/LABEL.
snapshot() {
    local i=0
    : >"$WORK/$1"
    for pid in "${grid_pids[@]}"; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
        echo "${names[$i]} $rss $fds" >>"$WORK/$1"
        i=$((i + 1))
    done
}

start=$(date +%s.%N)
compile 1 "$WARMUP"
snapshot warm
cpu_warm=$(cpu_ticks "${grid_pids[0]}")
# The rest in steps of 1000, with a snapshot after each, so a steady climb
# can be told from a plateau.
done_n=$WARMUP
steps=()
while [ "$done_n" -lt "$N" ]; do
    next=$((done_n + 1000))
    [ "$next" -gt "$N" ] && next=$N
    compile $((done_n + 1)) "$next"
    done_n=$next
    snapshot "at$done_n"
    steps+=("$done_n")
done
end=$(date +%s.%N)
cpu_end=$(cpu_ticks "${grid_pids[0]}")
cp "$WORK/at$N" "$WORK/final"
remote=$("$BIN/gridcc" status --json --coordinator "$url" | sed -n 's/.*"jobs_remote": *\([0-9]*\).*/\1/p' | head -1)

echo
echo "soak: $N compiles, $P at a time, $WORKERS workers x 1 slot, $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s; remote: $remote"
printf '%-12s %12s %12s %10s %8s %8s %8s\n' server "rss@warm kB" "rss@end kB" "growth" "fd@warm" "fd@end" growth
fail=0
while read -r name rss0 fd0 && read -r _ rss1 fd1 <&3; do
    printf '%-12s %12s %12s %10s %8s %8s %8s\n' "$name" "$rss0" "$rss1" $((rss1 - rss0)) "$fd0" "$fd1" $((fd1 - fd0))
    if [ $((rss1 - rss0)) -gt $RSS_BOUND_KB ] || [ $((fd1 - fd0)) -gt $FD_BOUND ]; then fail=1; fi
done <"$WORK/warm" 3<"$WORK/final"
echo
echo "RSS (kB) after each step of compiles:"
printf '%-12s %10s' server "$WARMUP"
for n in "${steps[@]}"; do printf ' %10s' "$n"; done
echo
for name in "${names[@]}"; do
    printf '%-12s %10s' "$name" "$(awk -v n="$name" '$1 == n {print $2}' "$WORK/warm")"
    for n in "${steps[@]}"; do
        printf ' %10s' "$(awk -v n="$name" '$1 == n {print $2}' "$WORK/at$n")"
    done
    echo
done
echo "bound: +$((RSS_BOUND_KB / 1024)) MiB RSS, +$FD_BOUND fds per server after warm-up"
ticks=$(getconf CLK_TCK)
echo "coordinator CPU after warm-up: $(awk -v t=$((cpu_end - cpu_warm)) -v hz="$ticks" -v n=$((N - WARMUP)) \
    'BEGIN {printf "%.2f s, %.1f ms per 1000 compiles", t / hz, 1e6 * t / hz / n}')"
if [ -n "$STREAMS" ]; then
    echo "monitor: $STREAMS event stream(s) open throughout"
fi
if [ "${remote:-0}" -ne "$N" ]; then
    echo "soak: FAIL: $remote of $N compiles ran remotely" >&2
    exit 1
fi
if [ $fail -ne 0 ]; then
    echo "soak: FAIL: growth beyond the bound" >&2
    exit 1
fi
echo "soak: PASS"
