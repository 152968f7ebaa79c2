#!/usr/bin/env bash
# daemon-cpu.sh [-r REPS] [-j JOBS] [-o OUT] [-w] PROJECT...
#
# A benchmark (not run in CI): the CPU the compile daemons spend of their
# own, apart from the compilers they run, building real C projects through
# gridcc and through distcc side by side: 2 workers x 1 slot each (two
# gridcc-worker --slots 1, or two distccd --jobs 1), `make -jJOBS` (default
# 2), REPS builds per system (default 3), interleaved (gridcc, distcc,
# distcc, gridcc, ...), each from a fresh copy of the configured tree, with
# gridcc's client and worker caches off so every compile runs.
#
# By default each build gets new daemons: a gridcc worker starts with an
# empty input store, so every header the build uses is uploaded, checked
# and written once ("cold"). With -w the daemons of each system start once
# per project and build it once unmeasured first; the measured builds then
# run on daemons that have seen it ("warm"), as long-lived workers do. The
# acct columns need daemons that exit, so -w leaves them empty.
#
# How the daemons' own CPU is counted: BSD process accounting (accton, from
# Debian's acct) records every process that exits with its own user and
# system time (not its children's). The daemons are stopped after each
# build, so every process of theirs leaves a record, and the sum over
# - distcc: every `distccd` process (the parent and its preforked
#   children, which fork the compilers; a child that served its share of
#   jobs and exited mid-build counts too, which /proc could not show),
# - gridcc: every `gridcc-worker` process and what it starts that is not a
#   compiler: `bwrap` and the launchers of its kept sandboxes
#   (`.gridcc-init`),
# is the daemons' CPU per build. The compilers (gcc, cc1, as) are not in
# it. The coordinator, which distcc has no counterpart of, is reported on
# its own. PROJECT is a source dir: configured once (./configure when it
# has one and no Makefile), then built with `make CC="TOOL gcc"`; a
# PROJECT of the form DIR:ARGS passes ARGS to make (e.g. lua's
# `target/workloads/lua5.4:linux`).
#
# Prints one line per build and, per project, the medians and the ratio of
# gridcc's daemon CPU to distcc's; writes the same to OUT/summary.md
# (default target/daemon-cpu). Uses target/release binaries (built here if
# missing); installs distcc and acct when missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REPS=3
JOBS=2
OUT=$ROOT/target/daemon-cpu
WARM=0
usage="usage: $0 [-r REPS] [-j JOBS] [-o OUT] [-w] PROJECT..."
while getopts r:j:o:w opt; do
    case $opt in
        r) REPS=$OPTARG ;;
        j) JOBS=$OPTARG ;;
        o) OUT=$OPTARG ;;
        w) WARM=1 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
BIN=${BIN:-$ROOT/target/release}
[ -x "$BIN/gridcc-worker" ] || (cd "$ROOT" && cargo build --release --workspace --bins)
need=()
command -v distccd >/dev/null || need+=(distcc)
command -v accton >/dev/null || need+=(acct)
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/gridcc-daemon-cpu.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$OUT"
# shellcheck source=grid-lib.sh
. "$HERE/grid-lib.sh"
distccd_pids=()
stop_distcc() {
    for p in "${distccd_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${distccd_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    distccd_pids=()
}
cleanup() {
    accton off >/dev/null 2>&1 || true
    stop_distcc
    grid_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# daemon_ns ROOT_PID...: nanoseconds on CPU so far (every thread, from
# /proc/PID/task/*/schedstat) of ROOT_PIDs and their descendants whose
# command is a daemon's (not a compiler's).
daemon_ns() {
    local total=0 pid comm
    local -a todo=("$@")
    while [ ${#todo[@]} -gt 0 ]; do
        pid=${todo[0]}; todo=("${todo[@]:1}")
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        case $comm in
            gridcc-worker | bwrap | .gridcc-init | distccd)
                total=$((total + $(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}')))
                # shellcheck disable=SC2207 # pids are words
                todo+=($(cat /proc/"$pid"/task/*/children 2>/dev/null))
                ;;
        esac
    done
    echo "$total"
}

# acct_sum FILE REGEX: seconds of own CPU of the processes whose command
# matches REGEX.
acct_sum() {
    dump-acct "$1" | awk -F'|' -v re="$2" '
        { c = $1; gsub(/ +$/, "", c); if (c ~ re) s += $3 + $4 }
        END { printf "%.3f", s / 100 }'
}
# acct_count FILE REGEX: how many such processes.
acct_count() {
    dump-acct "$1" | awk -F'|' -v re="$2" '{ c = $1; gsub(/ +$/, "", c); if (c ~ re) n++ } END { print n + 0 }'
}

# start_daemons TOOL: starts TOOL's two daemons; sets grid_url (gridcc) or
# distcc_ports (distcc).
url="" cc="" grid_url="" roots=() ports=() distcc_ports=()
start_daemons() {
    case $1 in
        gridcc)
            mkdir -m 755 "$WORK/stages1" "$WORK/stages2"
            grid_pids=()
            grid_server "$WORK" coordinator "$BIN/gridcc-coordinator" --listen 127.0.0.1:0
            grid_url="http://$addr"
            for n in 1 2; do
                grid_server "$WORK" "worker$n" "$BIN/gridcc-worker" --coordinator "$grid_url" \
                    --listen 127.0.0.1:0 --slots 1 --cache-size 0 --work-dir "$WORK/stages$n"
            done
            for _ in $(seq 1 200); do
                [ "$("$BIN/gridcc" status --json --coordinator "$grid_url" | grep -c '"address"')" -eq 2 ] && break
                sleep 0.1
            done
            ;;
        distcc)
            distcc_ports=()
            for n in 1 2; do
                local port=$((20000 + RANDOM % 20000))
                : >"$WORK/distccd$n.log"
                chown nobody "$WORK/distccd$n.log"
                distccd --daemon --no-detach --listen 127.0.0.1 --port "$port" --jobs 1 \
                    --allow 127.0.0.1 --user nobody --log-file "$WORK/distccd$n.log" \
                    --log-level info 2>>"$WORK/distccd.stderr" &
                distccd_pids+=($!)
                distcc_ports+=("127.0.0.1:$port/1")
            done
            sleep 0.5
            ;;
    esac
}

# stop_daemons TOOL
stop_daemons() {
    case $1 in
        gridcc)
            grid_stop
            grid_pids=()
            # Kept sandboxes die with their worker (--die-with-parent).
            for _ in $(seq 1 50); do pgrep -x bwrap >/dev/null || break; sleep 0.1; done
            rm -rf "$WORK/stages1" "$WORK/stages2"
            ;;
        distcc)
            stop_distcc
            rm -f "$WORK"/distccd[12].log
            ;;
    esac
}

# remote_count TOOL: compiles the running daemons have run.
remote_count() {
    case $1 in
        gridcc) "$BIN/gridcc" status --json --coordinator "$grid_url" | sed -n 's/.*"jobs_remote": *\([0-9]*\).*/\1/p' | head -1 ;;
        distcc) cat "$WORK"/distccd[12].log 2>/dev/null | grep -c 'COMPILE_OK' || true ;;
    esac
}

# make_once TOOL PROJECT SRC MAKEARGS LOG: one build from a fresh copy,
# through TOOL's running daemons.
make_once() {
    local tool=$1 name=$2 src=$3 makeargs=$4 log=$5 dir=$WORK/build
    case $tool in
        gridcc) url=$grid_url cc="$BIN/gridcc gcc" ports=() ;;
        distcc) url="" cc="distcc gcc" ports=("${distcc_ports[@]}") ;;
    esac
    rm -rf "$dir"
    cp -a "$src" "$dir"
    (
        cd "$dir"
        export GRIDCC_COORDINATOR=$url GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$WORK/client-cache
        export DISTCC_HOSTS="${ports[*]:-}" DISTCC_FALLBACK=0 DISTCC_SKIP_LOCAL_RETRY=1
        # shellcheck disable=SC2086 # makeargs split on purpose
        make -j"$JOBS" CC="$cc" $makeargs
    ) >"$log" 2>&1 || { echo "daemon-cpu: the $tool build of $name failed; see $log" >&2; tail -20 "$log" >&2; exit 1; }
}

# build TOOL REP PROJECT SRC MAKEARGS: one measured build; appends a result
# line. Cold: new daemons for it. Warm (-w): the daemons TOOL kept from
# its last build of PROJECT, or new ones that build it once unmeasured.
declare -A warm_for=()
build() {
    local tool=$1 rep=$2 name=$3 src=$4 makeargs=$5
    local acct=$WORK/acct-$name-$tool-$rep log=$WORK/$name-$tool-$rep.log
    if [ "$WARM" = 1 ] && [ "${warm_for[$tool]:-}" != "$name" ]; then
        [ -z "${warm_for[$tool]:-}" ] || stop_daemons "$tool"
        start_daemons "$tool"
        make_once "$tool" "$name" "$src" "$makeargs" "$WORK/$name-$tool-warmup.log"
        warm_for[$tool]=$name
    fi
    # Each system's daemons are running only while it builds (warm: the
    # other system's stay idle).
    : >"$acct"
    chmod 600 "$acct"
    accton "$acct" >/dev/null
    [ "$WARM" = 1 ] || start_daemons "$tool"
    case $tool in
        gridcc) roots=("${grid_pids[@]:1}") ;;
        distcc) roots=("${distccd_pids[@]}") ;;
    esac
    local remote0 remote t0 t1 ns0 ns1
    remote0=$(remote_count "$tool")
    ns0=$(daemon_ns "${roots[@]}")
    t0=$(date +%s.%N)
    make_once "$tool" "$name" "$src" "$makeargs" "$log"
    t1=$(date +%s.%N)
    ns1=$(daemon_ns "${roots[@]}")
    remote=$(($(remote_count "$tool") - ${remote0:-0}))
    [ "$WARM" = 1 ] || stop_daemons "$tool"
    if [ "$remote" -le 0 ]; then
        echo "daemon-cpu: no compile of the $tool build of $name ran on a daemon; see $log" >&2
        exit 1
    fi
    # Cold: the daemons have exited, so their records are written.
    accton off >/dev/null
    local daemon compilers coordinator procs whole
    case $tool in
        gridcc)
            whole=$(acct_sum "$acct" '^(gridcc-worker|bwrap|\.gridcc-init)$')
            procs=$(acct_count "$acct" '^(gridcc-worker|bwrap|\.gridcc-init)$')
            coordinator=$(acct_sum "$acct" '^gridcc-coordin')
            ;;
        distcc)
            whole=$(acct_sum "$acct" '^distccd$')
            procs=$(acct_count "$acct" '^distccd$')
            coordinator=-
            ;;
    esac
    if [ "$WARM" = 1 ]; then whole=- procs=- coordinator=-; fi
    # During the build, to the ns: the daemons' processes alive at its
    # start and its end (a daemon process that started and exited within
    # the build would be missed: "daemon processes" counts them all).
    daemon=$(awk -v a="$ns0" -v b="$ns1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    # Every compiler run as the compile user (nobody) by either daemon.
    compilers=$(dump-acct "$acct" | awk -F'|' '
        { c = $1; gsub(/ +$/, "", c); u = $6 + 0
          if (u == 65534 && c !~ /^(bwrap|\.gridcc-init|distccd|gridcc-worker)$/) s += $3 + $4 }
        END { printf "%.3f", s / 100 }')
    local wall
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    printf '| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$tool" "$rep" "$wall" \
        "$remote" "$daemon" "$whole" "$procs" "$compilers" "$coordinator" | tee -a "$WORK/rows"
}

{
    echo "# Daemon CPU per build: gridcc vs distcc"
    echo
    mode="new daemons for each build (cold)"
    [ "$WARM" = 0 ] || mode="daemons kept across builds, after one unmeasured build (warm)"
    echo "2 workers x 1 slot, make -j$JOBS, $REPS builds per system, interleaved, $mode; $(nproc) CPUs,"
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; $(gcc --version | head -1); $(distcc --version | head -1)."
    echo
    echo "| project | system | rep | wall s | remote compiles | daemon CPU s, build | daemon CPU s, whole life (acct) | daemon processes | compilers CPU s | coordinator CPU s |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$OUT/summary.md"
: >"$WORK/rows"
for spec in "$@"; do
    srcdir=${spec%%:*}
    makeargs=""
    [ "$spec" = "$srcdir" ] || makeargs=${spec#*:}
    srcdir=$(cd "$srcdir" && pwd)
    name=$(basename "$srcdir")
    src=$WORK/src-$name
    cp -a "$srcdir" "$src"
    # A tree built before (by hand, or by another script) would leave make
    # nothing to do: every build starts from a clean one.
    (cd "$src" && make clean) >"$WORK/$name-clean.log" 2>&1 || true
    # Configured already when configure left its log (zlib ships a
    # Makefile that only says to run configure).
    if [ -x "$src/configure" ] && [ ! -f "$src/config.status" ] && [ ! -f "$src/configure.log" ]; then
        (cd "$src" && ./configure) >"$WORK/$name-configure.log" 2>&1
    fi
    for rep in $(seq 1 "$REPS"); do
        if [ $((rep % 2)) -eq 1 ]; then order="gridcc distcc"; else order="distcc gridcc"; fi
        for tool in $order; do build "$tool" "$rep" "$name" "$src" "$makeargs"; done
    done
    rm -rf "$src"
done
{
    echo
    echo "| project | gridcc daemon CPU s (median) | distcc daemon CPU s (median) | gridcc / distcc |"
    echo "|---|---:|---:|---:|"
    awk -F'|' '
        { p = $2; t = $3; gsub(/ /, "", p); gsub(/ /, "", t); v[p, t, ++n[p, t]] = $7 + 0; projects[p] = 1 }
        function med(p, t,   k, a, i, j, x) {
            k = n[p, t]; for (i = 1; i <= k; i++) a[i] = v[p, t, i]
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        END { for (p in projects) { g = med(p, "gridcc"); d = med(p, "distcc")
              printf "| %s | %.2f | %.2f | %.2f |\n", p, g, d, (d > 0) ? g / d : 0 } }' "$WORK/rows"
} | tee -a "$OUT/summary.md"
