#!/usr/bin/env bash
# worker-cost.sh [-n JOBS] [-p PARALLEL] [-m MIXES] [-w WORKER_ARGS]
#
# A benchmark (not run in CI) of the worker's OWN cost per job: CPU and
# resident memory of the gridcc-worker process, apart from the compilers it
# runs. One coordinator and one worker (--slots 1, shared cache off) on
# loopback; JOBS compiles (default 1000) per mix, PARALLEL clients at a time
# (default 2, so the client's preprocessing overlaps the worker's job), the
# client's object cache off so every job goes remote. The mixes
# (default: all four, in this order):
#   small-distinct  testdata/worker-cost/small.c, -DIT=N different every job
#   small-reused    the same small.c with the same -DIT every job
#   heavy-distinct  testdata/worker-cost/heavy.c (41 system headers)
#   heavy-reused    the same heavy.c every job
# The mixes run one after the other on the same worker, so a cost that
# grows with the jobs run before shows as a later batch costing more.
# WORKER_ARGS go to the worker: `-w --hermetic` measures hermetic jobs
# (with one sandbox kept per slot when run as root).
#
# Per 100 jobs it reads the worker's utime+stime (its own CPU: a compiler's
# CPU reaches cutime+cstime only when it is reaped) and VmRSS from /proc.
# The worker runs in a cgroup of its own (cpuacct, v1 or v2), so the CPU of
# everything it starts is counted too; the compilers' CPU is its cutime +
# cstime plus what kept sandboxes' launchers measured
# (gridcc_worker_sandboxed_compiler_cpu_seconds_total), and "side" is the
# rest: bwrap and the launchers, outside the worker process but its cost
# (with a sandbox per job, bwrap's CPU is reaped with the compiler's and
# counts as the compiler's). Printed per mix: the median and max over the
# batches of the worker's own CPU per job, the median side CPU, the
# compilers' CPU per job, and RSS at the start and end of the mix. The
# bound, stated before the run: within a mix after its first batch, RSS
# moves by at most 8 MiB and the batches' worker CPU per job stays within
# +-10 % of the mix's median (past the 10 ms clock-tick resolution, which
# is 0.1 ms per job over 100 jobs). Exit 1 when a bound fails or a job did
# not run remotely.
#
# Uses target/release binaries (built here if missing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=1000
P=2
MIXES="small-distinct small-reused heavy-distinct heavy-reused"
EXTRA=
while getopts n:p:m:w: opt; do
    case $opt in
        n) N=$OPTARG ;;
        p) P=$OPTARG ;;
        m) MIXES=$OPTARG ;;
        w) EXTRA=$OPTARG ;;
        *) echo "usage: $0 [-n JOBS] [-p PARALLEL] [-m MIXES] [-w WORKER_ARGS]" >&2; exit 2 ;;
    esac
done
BATCH=100
BIN=${BIN:-$ROOT/target/release}
[ -x "$BIN/gridcc-worker" ] || (cd "$ROOT" && cargo build --release --workspace --bins)

WORK=$(mktemp -d /tmp/gridcc-worker-cost.XXXXXX)
chmod 755 "$WORK"
# shellcheck source=grid-lib.sh
. "$HERE/grid-lib.sh"
CG=
cg_cleanup() {
    [ -n "$CG" ] || return 0
    for _ in $(seq 1 50); do rmdir "$CG" 2>/dev/null && return 0; sleep 0.1; done
}
trap 'grid_stop; cg_cleanup; rm -rf "$WORK"' EXIT
unset GRIDCC_DISABLE GRIDCC_LOG GRIDCC_JOB_LOG
export GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$WORK/cache
# The stages live in a directory the compile user (nobody) may enter.
mkdir -m 755 "$WORK/stages"
# shellcheck disable=SC2034 # read by grid_start
COORDINATOR_ARGS="--when-busy queue" \
    WORKER_ARGS="--work-dir $WORK/stages --metrics-listen 127.0.0.1:0 $EXTRA" \
    grid_start "$BIN" "$WORK" 1 1
export GRIDCC_COORDINATOR=$url
worker_pid=${grid_pids[1]}
metrics=$(sed -n 's/^metrics listening on //p' "$WORK/worker1.out")
# The worker's own cgroup: everything it starts from now on is in it.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CG=/sys/fs/cgroup/gridcc-worker-cost.$$
    cg_usage_us() { awk '/^usage_usec/ {print $2}' "$CG/cpu.stat"; }
elif [ -d /sys/fs/cgroup/cpuacct ]; then
    CG=/sys/fs/cgroup/cpuacct/gridcc-worker-cost.$$
    cg_usage_us() { echo $(($(cat "$CG/cpuacct.usage") / 1000)); }
else
    echo "worker-cost: no cgroup cpu accounting here (v2 or cpuacct v1)" >&2
    exit 1
fi
mkdir "$CG"
echo "$worker_pid" >"$CG/cgroup.procs"
# sandboxed_us: the compilers' CPU kept sandboxes measured, in µs.
sandboxed_us() {
    curl -s "http://$metrics/metrics" |
        awk '/^gridcc_worker_sandboxed_compiler_cpu_seconds_total/ {printf "%d", $2 * 1e6}'
}
cp "$ROOT/testdata/worker-cost/small.c" "$ROOT/testdata/worker-cost/heavy.c" "$WORK/"
tck=$(getconf CLK_TCK)

# stat_line: "own_us compilers_us rss_kb cgroup_us" of the worker.
stat_line() {
    local stat rss cg sb
    stat=$(cut -d')' -f2- "/proc/$worker_pid/stat")
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$worker_pid/status")
    cg=$(cg_usage_us)
    sb=$(sandboxed_us)
    # Fields after "(comm)": 12 utime, 13 stime, 14 cutime, 15 cstime.
    echo "$stat" | awk -v rss="$rss" -v t="$tck" -v cg="$cg" -v sb="${sb:-0}" \
        '{printf "%d %d %d %d\n", ($12 + $13) * 1e6 / t, ($14 + $15) * 1e6 / t + sb, rss, cg}'
}

# compile_batch FILE FIRST LAST REUSED
compile_batch() {
    seq "$2" "$3" | xargs -P "$P" -I{} sh -c '
        cd "$0" && it={}; [ "$3" = 1 ] && it=0
        "$1/gridcc" gcc -O2 -g -DIT=$it -c "$2.c" -o "$2{}.o" && rm -f "$2{}.o"' \
        "$WORK" "$BIN" "$1" "$4"
}

fail=0
done_jobs=0
printf '%-15s %8s %12s %12s %12s %12s %10s %10s\n' mix jobs "own med ms" "own max ms" "side med ms" "cc med ms" "rss0 MiB" "rss1 MiB"
for mix in $MIXES; do
    file=${mix%%-*}
    reused=0; [ "${mix#*-}" = reused ] && reused=1
    own=(); cc=(); side=(); rss=()
    read -r o0 c0 r0 g0 < <(stat_line)
    for first in $(seq 1 $BATCH "$N"); do
        last=$((first + BATCH - 1)); [ "$last" -gt "$N" ] && last=$N
        compile_batch "$file" $((done_jobs + first)) $((done_jobs + last)) $reused
        read -r o1 c1 r1 g1 < <(stat_line)
        n=$((last - first + 1))
        own+=("$(awk -v a="$o0" -v b="$o1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / 1000 / n}')")
        cc+=("$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / 1000 / n}')")
        side+=("$(awk -v g="$((g1 - g0))" -v o="$((o1 - o0))" -v c="$((c1 - c0))" -v n="$n" \
            'BEGIN {s = (g - o - c) / 1000 / n; if (s < 0) s = 0; printf "%.2f", s}')")
        rss+=("$r1")
        o0=$o1; c0=$c1; g0=$g1
    done
    done_jobs=$((done_jobs + N))
    med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
    own_med=$(med "${own[@]}"); own_max=$(printf '%s\n' "${own[@]}" | sort -g | tail -1)
    cc_med=$(med "${cc[@]}"); side_med=$(med "${side[@]}")
    printf '%-15s %8d %12s %12s %12s %12s %10.1f %10.1f\n' "$mix" "$N" "$own_med" "$own_max" "$side_med" "$cc_med" \
        "$(echo "${rss[0]} / 1024" | bc -l)" "$(echo "${rss[-1]} / 1024" | bc -l)"
    echo "  own CPU ms/job per $BATCH: ${own[*]}" >>"$WORK/detail"
    echo "  side CPU ms/job per $BATCH: ${side[*]}" >>"$WORK/detail"
    echo "  RSS kB per $BATCH: ${rss[*]}" >>"$WORK/detail"
    # Bounds: RSS within 8 MiB of the first batch; each batch's own CPU
    # within 10 % of the median (or 0.1 ms, the tick resolution).
    for r in "${rss[@]:1}"; do
        d=$((r - rss[0])); [ "${d#-}" -gt $((8 * 1024)) ] && { echo "  $mix: RSS moved ${d} kB" >&2; fail=1; }
    done
    for o in "${own[@]:1}"; do
        awk -v o="$o" -v m="$own_med" 'BEGIN {d = o - m; if (d < 0) d = -d; lim = m * 0.1; if (lim < 0.1) lim = 0.1; exit !(d > lim)}' &&
            { echo "  $mix: a batch took $o ms/job against a median of $own_med" >&2; fail=1; }
    done
done
echo
cat "$WORK/detail"
remote=$("$BIN/gridcc" status --json --coordinator "$url" | sed -n 's/.*"jobs_remote": *\([0-9]*\).*/\1/p' | head -1)
echo "remote: $remote of $done_jobs jobs; worker: --slots 1 --cache-size 0 $EXTRA; $P clients at a time; $(nproc) CPUs"
if [ "${remote:-0}" -ne "$done_jobs" ]; then
    echo "worker-cost: FAIL: not every job ran remotely" >&2
    exit 1
fi
[ $fail -eq 0 ] && echo "worker-cost: PASS" || { echo "worker-cost: FAIL: a bound did not hold" >&2; exit 1; }
