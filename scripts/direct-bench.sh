#!/usr/bin/env bash
# direct-bench.sh [-n RUNS] [GRIDCC]
#
# Hit latency of the object cache with and without direct mode (no grid):
# a mid-size C file (stdio.h, stdlib.h, string.h, unistd.h and a local
# header) compiled with `gridcc gcc -O2 -c x.c -o x.o`, RUNS times (default
# 20) as a direct hit and RUNS times as a preprocessed-key hit
# (GRIDCC_DIRECT=0), interleaved; prints every run's wall time and the
# median, p10 and p90 of each. Every hit's object is compared with gcc's.
#
# GRIDCC defaults to target/release/gridcc, else target/debug/gridcc.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=20
while getopts n: opt; do
    case $opt in
        n) RUNS=$OPTARG ;;
        *) echo "usage: $0 [-n RUNS] [GRIDCC]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
GRIDCC=${1:-$ROOT/target/release/gridcc}
[ -x "$GRIDCC" ] || GRIDCC=$ROOT/target/debug/gridcc
[ -x "$GRIDCC" ] || { echo "build it first: cargo build --release -p gridcc" >&2; exit 1; }

WORK=$(mktemp -d /tmp/direct-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
unset GRIDCC_COORDINATOR GRIDCC_DISABLE GRIDCC_CACHE GRIDCC_CACHE_SIZE GRIDCC_LOG GRIDCC_DIRECT
export GRIDCC_CACHE_DIR=$WORK/cache
cd "$WORK"
cat > util.h <<'EOF'
#include <stddef.h>
struct buf { char *data; size_t len, cap; };
int buf_put(struct buf *b, const char *s);
EOF
cat > x.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"

int buf_put(struct buf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
    return 0;
}

int main(int argc, char **argv) {
    struct buf b = {0};
    for (int i = 0; i < argc; i++) buf_put(&b, argv[i]);
    printf("%zu %s %d\n", b.len, b.data, (int)getpid());
    free(b.data);
    return 0;
}
EOF
gcc -O2 -c x.c -o ref.o
# Direct mode writes no manifest for files changed within the last second.
sleep 1.1
cc() { "$GRIDCC" gcc -O2 -c x.c -o x.o; }
cc
cc # writes the manifest if the first compile could not
now() { date +%s%N; }
direct=(); pre=()
for i in $(seq 1 "$RUNS"); do
    t0=$(now); cc; t1=$(now)
    cmp -s x.o ref.o || { echo "direct hit $i: object differs" >&2; exit 1; }
    t2=$(now); GRIDCC_DIRECT=0 cc; t3=$(now)
    cmp -s x.o ref.o || { echo "preprocessed hit $i: object differs" >&2; exit 1; }
    direct+=("$(( (t1 - t0) / 1000 ))"); pre+=("$(( (t3 - t2) / 1000 ))")
done
"$GRIDCC" stats --json | grep -E '"(hits_direct|hits_local|misses)"'
summary() {
    local name=$1; shift
    printf '%s\n' "$@" | sort -n | awk -v name="$name" '
        { v[NR] = $1 }
        END {
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            p10 = v[int((NR - 1) * 0.1) + 1]; p90 = v[int((NR - 1) * 0.9) + 1]
            printf "%-28s median %6.1f ms  p10 %6.1f ms  p90 %6.1f ms  (n=%d)\n", name, med / 1000, p10 / 1000, p90 / 1000, NR
        }'
}
echo "runs (us): direct ${direct[*]}"
echo "runs (us): preprocessed ${pre[*]}"
summary "direct hit" "${direct[@]}"
summary "preprocessed-key hit" "${pre[@]}"
