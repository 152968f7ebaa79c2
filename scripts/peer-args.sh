#!/usr/bin/env bash
# Runs compile command lines that write files besides the object through
# gridcc and, when installed, distcc (distccd on 127.0.0.1), and reports
# which of those files each tool leaves where a local compile would.
#
#   scripts/peer-args.sh        # apt-get install distcc first to compare
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --bins --manifest-path "$root/Cargo.toml"
bin="$root/target/release"
work=$(mktemp -d /tmp/gridcc-peer-args.XXXXXX)
# shellcheck source=scripts/grid-lib.sh
. "$root/scripts/grid-lib.sh"
distccd_pid=""
stop_all() {
    if [ -n "$distccd_pid" ]; then kill "$distccd_pid" 2>/dev/null || true; fi
    grid_stop
    rm -rf "$work"
}
trap stop_all EXIT INT TERM
grid_start "$bin" "$work" 1 1 >/dev/null
cd "$work"
cat > a.c <<'C'
#include <stdio.h>
#define SQ(x) ((x) * (x))
int f(int v) { return SQ(v) + SQ(v + 1); }
int main(void) { printf("%d\n", f(3)); return 0; }
C
# flags|file a local compile writes besides a.o
cases=("-gsplit-dwarf -g|a.dwo" "-save-temps|a.s" "-fdump-tree-original|a.c.005t.original"
       "-Wa,-adhln=a.lst|a.lst" "--coverage|a.gcno" "-fstack-usage|a.su" "-fcallgraph-info|a.ci")
clean() { rm -f a.o a.i a.s a.dwo a.lst a.gcno a.su a.ci a.c.0*; }
has() { [ -f "$1" ] && echo present || echo MISSING; }
tools=(gridcc)
if command -v distcc >/dev/null && command -v distccd >/dev/null; then
    port=$((20000 + RANDOM % 20000))
    distccd --no-detach --daemon --allow 127.0.0.1 --listen 127.0.0.1 --port "$port" \
        --log-stderr 2>"$work/distccd.log" &
    distccd_pid=$!
    sleep 0.5
    tools+=(distcc)
else
    echo "(distcc not installed: gridcc only)"
fi
printf '%-24s %-8s %-34s %s\n' FLAGS TOOL "RAN" "EXTRA FILE"
for c in "${cases[@]}"; do
    flags=${c%%|*} file=${c#*|}
    for tool in "${tools[@]}"; do
        clean
        # shellcheck disable=SC2086 # the flags are words
        case $tool in
            gridcc)
                GRIDCC_COORDINATOR=$url GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$work/cache "$bin/gridcc" gcc -O2 $flags -c a.c -o a.o 2>/dev/null
                ran=$("$bin/gridcc" explain gcc -O2 $flags -c a.c -o a.o | cut -c1-34) ;;
            distcc)
                DISTCC_HOSTS=127.0.0.1:$port DISTCC_VERBOSE=1 distcc gcc -O2 $flags -c a.c -o a.o 2>dc.err
                if grep -q "compile a.c on 127.0.0.1" dc.err; then ran=remote; else ran=local; fi ;;
        esac
        printf '%-24s %-8s %-34s %s %s\n' "$flags" "$tool" "$ran" "$file" "$(has "$file")"
    done
done
gcc -O2 -g -c a.c -o ref.o
for tool in "${tools[@]}"; do
    clean
    case $tool in
        gridcc) GRIDCC_COORDINATOR=$url GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$work/cache "$bin/gridcc" gcc -O2 -g -c a.c -o a.o ;;
        distcc) DISTCC_HOSTS=127.0.0.1:$port distcc gcc -O2 -g -c a.c -o a.o ;;
    esac
    printf '%-24s %-8s %-34s %s\n' "-O2 -g" "$tool" "" "$(cmp -s a.o ref.o && echo 'object identical to local' || echo 'object DIFFERS from local')"
done
