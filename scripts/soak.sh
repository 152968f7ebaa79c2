#!/usr/bin/env bash
# soak.sh [-n COMPILES] [-p PARALLEL] [-w WORKERS] [-s STREAMS] [-c PAGES] [-m] [-g] [-i SECONDS] [-b BIN_DIR]
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
# The monitor: -m turns on the coordinator's HTTP port (--http-listen) with
# no page open; -c PAGES opens that many real monitor pages, each in its own
# headless Chromium driven by chromedriver (WebDriver, spoken with curl),
# and -s STREAMS holds that many bare `curl -N` event streams; either
# implies -m. Pages and streams stay open for the whole soak. After warm-up
# and at the end the script checks that they are live: the coordinator's
# gauge of open event streams must equal PAGES + STREAMS, and each page
# must say "live" and hold the newest job. Chromium runs on loopback only,
# with its background networking, updates, sync and metrics off; Debian's
# chromium and chromium-driver are installed when missing.
#
# The coordinator's CPU after warm-up is printed per 1000 compiles, as
# utime+stime from /proc. On a loaded machine that varies by +-20 % from run
# to run (cache misses, the wall time over which its per-second work is
# spread), so -g also counts the instructions the coordinator executes,
# by running it under valgrind's callgrind (about 50 times slower, and the
# RSS then includes valgrind's own): a count that the machine's load does
# not change. Hardware counters (perf stat -e instructions) would do the
# same at full speed where the machine exposes them; a VM often does not.
# What such a count still depends on is the soak's wall time, over which
# the coordinator's per-second work (ticks, worker keep-alives, sweeps) is
# spread: -i SECONDS then holds the grid and its pages idle that long after
# the soak and prints the coordinator's instructions (and CPU) per second.
# KEEP=DIR (environment) keeps the callgrind dumps there, for
# callgrind_annotate.
#
# Uses target/release binaries (built here if missing; -b picks another
# directory, e.g. target/debug); the compiles run under nice -n 10.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=5000
P=4
WORKERS=2
STREAMS=0
PAGES=0
MONITOR=
COUNT=
BIN=$ROOT/target/release
IDLE=0
while getopts n:p:w:s:c:mgi:b: opt; do
    case $opt in
        n) N=$OPTARG ;;
        p) P=$OPTARG ;;
        w) WORKERS=$OPTARG ;;
        s) STREAMS=$OPTARG MONITOR=1 ;;
        c) PAGES=$OPTARG MONITOR=1 ;;
        m) MONITOR=1 ;;
        g) COUNT=1 ;;
        i) IDLE=$OPTARG ;;
        b) BIN=$(cd "$OPTARG" && pwd) ;;
        *) echo "usage: $0 [-n COMPILES] [-p PARALLEL] [-w WORKERS] [-s STREAMS] [-c PAGES] [-m] [-g] [-i SECONDS] [-b BIN_DIR]" >&2; exit 2 ;;
    esac
done
WARMUP=200
RSS_BOUND_KB=$((16 * 1024))
FD_BOUND=16
[ -x "$BIN/gridcc-worker" ] || (cd "$ROOT" && cargo build --release --workspace)
if [ "$PAGES" -gt 0 ]; then
    "$HERE/browser-deps.sh"
fi
if [ -n "$COUNT" ] && ! command -v callgrind_control >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

WORK=$(mktemp -d /tmp/gridcc-soak.XXXXXX)
# shellcheck source=grid-lib.sh
. "$HERE/grid-lib.sh"
stream_pids=()
sessions=()
driver=
cleanup() {
    for p in "${stream_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # Closing a session quits its Chromium; then the driver itself.
    for sid in "${sessions[@]}"; do
        curl -s -m 30 -X DELETE "$driver/session/$sid" >/dev/null || true
    done
    [ -n "${driver_pid:-}" ] && kill "$driver_pid" 2>/dev/null || true
    grid_stop
    if [ -n "${KEEP:-}" ]; then cp "$WORK"/callgrind.out.* "$KEEP"/ 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
unset GRIDCC_DISABLE GRIDCC_LOG GRIDCC_JOB_LOG
export GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$WORK/cache
# Queue when every slot is busy, so every compile runs remotely.
monitor_args=
[ -n "$MONITOR" ] && monitor_args="--http-listen 127.0.0.1:0"
prefix=
if [ -n "$COUNT" ]; then
    # Ir only (no cache simulation): what the coordinator's code executes.
    prefix="valgrind --tool=callgrind --callgrind-out-file=$WORK/callgrind.out --log-file=$WORK/valgrind.log"
fi
COORDINATOR_PREFIX=$prefix COORDINATOR_ARGS="--when-busy queue $monitor_args" grid_start "$BIN" "$WORK" "$WORKERS" 1
export GRIDCC_COORDINATOR=$url

# webdriver METHOD PATH [JSON]: one WebDriver command; prints the answer.
webdriver() {
    curl -sS -m 120 -X "$1" "$driver$2" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
# open_page N: a new Chromium (own profile) showing the monitor page.
open_page() {
    local profile=$WORK/chromium$1 answer sid
    # Headless, loopback only: nothing in the background may reach out.
    answer=$(webdriver POST /session "{\"capabilities\": {\"alwaysMatch\": {\"goog:chromeOptions\": {\"args\": [
        \"--headless=new\", \"--no-sandbox\", \"--disable-gpu\", \"--window-size=1400,900\",
        \"--disable-background-networking\", \"--disable-component-update\", \"--disable-sync\",
        \"--disable-default-apps\", \"--no-first-run\", \"--metrics-recording-only\",
        \"--user-data-dir=$profile\"]}}}}")
    sid=$(printf '%s' "$answer" | sed -n 's/.*"sessionId": *"\([^"]*\)".*/\1/p')
    if [ -z "$sid" ]; then
        echo "soak: no Chromium session: $answer" >&2
        return 1
    fi
    sessions+=("$sid")
    webdriver POST "/session/$sid/url" "{\"url\": \"http://$http/\"}" >/dev/null
}
# monitor_streams: the coordinator's gauge of open event streams.
monitor_streams() {
    curl -s "http://$http/metrics" | awk '$1 == "gridcc_coordinator_monitor_streams" {print $2}'
}
# check_pages LABEL: fails unless every page and stream is open and each
# page is live and current.
check_pages() {
    local open i=0 answer since next
    open=$(monitor_streams)
    echo "== $1: coordinator has ${open:-?} event stream(s) open (want $((PAGES + STREAMS)))"
    [ "$open" = $((PAGES + STREAMS)) ] || { echo "soak: FAIL: pages or streams not open" >&2; return 1; }
    # Let the last batch (400 ms) and render (200 ms) land first.
    sleep 1
    for sid in "${sessions[@]}"; do
        i=$((i + 1))
        answer=$(webdriver POST "/session/$sid/execute/sync" '{"args": [], "script":
            "let seq = 0; for (const j of state.jobs.values()) seq = Math.max(seq, j.seq); return document.getElementById(\"conn\").textContent + \" \" + state.jobs.size + \" \" + seq + \" \" + document.querySelectorAll(\"#gantt rect.bar\").length;"}')
        read -r conn jobs since bars <<<"$(printf '%s' "$answer" | sed -n 's/.*"value": *"\([^"]*\)".*/\1/p')"
        # Ended jobs newer than the newest the page holds: none when current.
        next=$(curl -s "http://$http/api/v1/jobs?since=${since:-0}&limit=5000" | sed -n 's/^{"next":\([0-9]*\).*/\1/p')
        echo "   page $i: ${conn:-?}, holds ${jobs:-?} jobs (${bars:-?} drawn), newest seq ${since:-?}, coordinator's ${next:-?}"
        if [ "$conn" != live ] || [ "${since:-x}" != "${next:-y}" ]; then
            echo "soak: FAIL: page $i is not live and current: $answer" >&2
            return 1
        fi
    done
}

if [ -n "$MONITOR" ]; then
    http=$(sed -n 's/^http listening on //p' "$WORK/coordinator.out")
    echo "== monitor on http://$http/: $PAGES Chromium page(s), $STREAMS curl event stream(s)"
    for _ in $(seq 1 "$STREAMS"); do
        curl -sN "http://$http/api/v1/events" >/dev/null &
        stream_pids+=("$!")
    done
    if [ "$PAGES" -gt 0 ]; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        driver=http://127.0.0.1:$port
        # Run as root, Chromium raises its own priority (browser and GPU
        # process to nice -8, pages to 0) above the soak's nice; without
        # CAP_SYS_NICE it cannot, and stays as nice as this script.
        keep_nice=
        [ "$(id -u)" = 0 ] && keep_nice="setpriv --bounding-set=-sys_nice --inh-caps=-sys_nice"
        $keep_nice chromedriver --port="$port" --allowed-ips=127.0.0.1 --log-path="$WORK/chromedriver.log" >/dev/null 2>&1 &
        driver_pid=$!
        for _ in $(seq 1 100); do
            curl -s "$driver/status" 2>/dev/null | grep -q '"ready": *true' && break
            sleep 0.1
        done
        for i in $(seq 1 "$PAGES"); do open_page "$i"; done
    fi
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

# Without -g, perf's software counters (tracepoints, no hardware PMU
# needed) count the coordinator's system calls and context switches after
# warm-up: the kernel's share of its work, which callgrind does not see.
# Under valgrind they would count valgrind's own calls too, so not then.
perf_pid=
kernel_counts_start() {
    [ -z "$COUNT" ] || return 0
    if ! command -v perf >/dev/null; then
        echo "== no perf (Debian: linux-perf): system calls not counted"
        return 0
    fi
    perf stat -x, -e raw_syscalls:sys_enter,context-switches,task-clock \
        -p "${grid_pids[0]}" -o "$WORK/perf.csv" &
    perf_pid=$!
}
kernel_counts_stop() {
    [ -n "$perf_pid" ] || return 0
    # perf stat sets its own SIGINT handler, so the signal reaches it even
    # from a non-interactive shell's background job.
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
}

# count_mark: with -g, dumps the coordinator's instruction count so far
# and zeroes it (callgrind numbers the dumps .1, .2, ...).
count_mark() {
    [ -n "$COUNT" ] && callgrind_control -d "${grid_pids[0]}" >/dev/null
    return 0
}

start=$(date +%s.%N)
compile 1 "$WARMUP"
[ -n "$MONITOR" ] && check_pages "after warm-up"
snapshot warm
count_mark
kernel_counts_start
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
kernel_counts_stop
count_mark
[ -n "$MONITOR" ] && check_pages "at the end"
if [ "$IDLE" -gt 0 ]; then
    # The same grid and pages with no compile: the coordinator's work per
    # second (ticks, worker keep-alives, sweeps), which a soak spreads over
    # its jobs in proportion to its wall time.
    count_mark
    idle_start=$(date +%s.%N)
    idle_cpu0=$(cpu_ticks "${grid_pids[0]}")
    sleep "$IDLE"
    idle_cpu1=$(cpu_ticks "${grid_pids[0]}")
    idle_end=$(date +%s.%N)
    count_mark
fi
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
if [ -f "$WORK/perf.csv" ]; then
    awk -F, -v n=$((N - WARMUP)) '$3 == "raw_syscalls:sys_enter" {sc = $1} $3 == "context-switches" {cs = $1}
        END {printf "coordinator system calls after warm-up: %.0f per 1000 compiles; context switches: %.0f per 1000 compiles\n",
             1000 * sc / n, 1000 * cs / n}' "$WORK/perf.csv"
fi
if [ -n "$COUNT" ]; then
    # The second dump holds what ran between the two marks.
    ir=$(awk '/^totals:/ {print $2}' "$WORK/callgrind.out.2")
    echo "coordinator instructions after warm-up: $(awk -v ir="$ir" -v n=$((N - WARMUP)) \
        'BEGIN {printf "%.0f M, %.1f M per 1000 compiles", ir / 1e6, 1e3 * ir / 1e6 / n}')"
fi
if [ "$IDLE" -gt 0 ]; then
    secs=$(awk -v a="$idle_start" -v b="$idle_end" 'BEGIN {print b - a}')
    echo "coordinator idle for $secs s: CPU $(awk -v t=$((idle_cpu1 - idle_cpu0)) -v hz="$ticks" -v s="$secs" 'BEGIN {printf "%.1f ms/s", 1e3 * t / hz / s}')"
    if [ -n "$COUNT" ]; then
        idle_ir=$(awk '/^totals:/ {print $2}' "$WORK/callgrind.out.4")
        echo "coordinator idle instructions: $(awk -v ir="$idle_ir" -v s="$secs" 'BEGIN {printf "%.3f M/s", ir / 1e6 / s}')"
    fi
fi
if [ -n "$MONITOR" ]; then
    echo "monitor: on, $PAGES Chromium page(s) and $STREAMS event stream(s) open throughout"
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
