#!/usr/bin/env bash
# secure-lua.sh [LUA_DIR]
#
# Lua 5.4 (Debian source) through a local grid that requires a token, first
# on plain TCP, then with TLS on every hop (a throwaway CA from
# make-test-ca.sh). For each grid:
#
# 1. the refusals: `gridcc status`, a worker, and raw gRPC calls (curl, HTTP/2)
#    to the coordinator and to the worker, without the token; a wrapper with a wrong
#    token (it compiles locally and says why);
# 2. the Lua build with the token (`make -j2 linux CC="gridcc gcc -std=gnu99"`,
#    object cache off so every compile goes to the grid): the job log must
#    show every object compiled remotely, each object must be byte-identical
#    to a plain `make CC=gcc` build's, and the interpreter must run.
#
# Uses target/release binaries when present, else target/debug (build them
# first: cargo build --release --bins). Exits non-zero on the first check
# that fails.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LUA=${1:-$ROOT/target/workloads/lua5.4}
[ -f "$LUA/src/lvm.c" ] || LUA=$("$HERE/fetch-lua.sh" "$LUA" | tail -1)
BIN=$ROOT/target/release
[ -x "$BIN/gridcc-worker" ] || BIN=$ROOT/target/debug
for b in gridcc gridcc-coordinator gridcc-worker; do
    [ -x "$BIN/$b" ] || { echo "build it first: cargo build --release --bins" >&2; exit 1; }
done
command -v openssl >/dev/null || { echo "needs openssl" >&2; exit 1; }
# shellcheck source=grid-lib.sh
. "$HERE/grid-lib.sh"

WORK=$(mktemp -d /tmp/secure-lua.XXXXXX)
trap 'grid_stop; rm -rf "$WORK"' EXIT
unset GRIDCC_COORDINATOR GRIDCC_DISABLE GRIDCC_TOKEN_FILE GRIDCC_TLS_CA GRIDCC_LOG
export GRIDCC_CACHE=0 GRIDCC_CACHE_DIR=$WORK/cache
TOKEN=$(head -c 32 /dev/urandom | base64)
printf '\0\0\0\0\0' >"$WORK/empty.grpc"
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== reference: plain make CC=gcc ($(gcc --version | head -1))"
make -s -C "$LUA" clean >/dev/null
make -s -C "$LUA" -j2 linux CC="gcc -std=gnu99" >/dev/null 2>&1
mkdir -p "$WORK/ref"
cp "$LUA"/src/*.o "$WORK/ref/"
echo "$(ls "$WORK/ref" | wc -l) objects"

# Raw gRPC call to URL (server + method path): prints the grpc-status and grpc-message the server
# answers with. BODY is a file: the 5-byte frame of an empty message
# (no compression, length 0), or an empty file for no message at all. A
# server refusing a call answers before reading the body and resets the
# stream (RST_STREAM NO_ERROR, as HTTP/2 allows); curl 7.88 reports that as a
# framing error when it is still sending, so the refused calls send no body.
raw_status() {
    local url=$1 body=$2; shift 2
    local tls=()
    [[ $url == https://* ]] && tls=(--cacert "$WORK/ca/ca.pem")
    curl -sS --http2-prior-knowledge "${tls[@]}" -X POST "$@" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$body" -D - -o /dev/null \
        "$url" | tr -d '\r' | grep -E '^grpc-(status|message)' | tr '\n' ' '
    echo
}

# one_grid NAME COORDINATOR_ARGS WORKER_ARGS
one_grid() {
    local name=$1 cargs=$2 wargs=$3 scheme=http
    [[ $cargs == *--tls-cert* ]] && scheme=https
    echo
    echo "== $name"
    export GRIDCC_TOKEN=$TOKEN
    # shellcheck disable=SC2086 # word splitting of the argument strings is wanted
    grid_server "$WORK" "coordinator-$name" "$BIN/gridcc-coordinator" --listen 127.0.0.1:0 $cargs
    local url=$scheme://$addr
    # shellcheck disable=SC2086
    grid_server "$WORK" "worker-$name" "$BIN/gridcc-worker" --coordinator "$url" \
        --listen 127.0.0.1:0 --slots 2 $wargs
    echo "coordinator $url, one worker with 2 slots on $addr"
    export GRIDCC_COORDINATOR=$url
    for _ in $(seq 1 100); do
        "$BIN/gridcc" status --json 2>/dev/null | grep -q '"address"' && break
        sleep 0.1
    done

    echo "-- without the token"
    local out rc
    out=$(env -u GRIDCC_TOKEN "$BIN/gridcc" status 2>&1) && fail "status without token succeeded"
    echo "gridcc status: exit $?: $out"
    set +e
    # shellcheck disable=SC2086
    out=$(env -u GRIDCC_TOKEN timeout 20 "$BIN/gridcc-worker" --coordinator "$url" \
        --listen 127.0.0.1:0 --slots 1 $wargs 2>&1 >/dev/null)
    rc=$?
    set -e
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "worker without token: exit $rc"
    echo "worker: exit $rc: $(echo "$out" | grep -i token | tail -1)"
    out=$(raw_status "$url/gridcc.v1.Coordinator/Status" /dev/null)
    [[ $out == *"grpc-status: 16"* ]] || fail "raw gRPC without token: $out"
    echo "raw gRPC Status: $out"
    out=$(raw_status "$scheme://$addr/gridcc.v1.Worker/Compile" /dev/null)
    [[ $out == *"grpc-status: 16"* ]] || fail "raw gRPC to the worker without token: $out"
    echo "raw gRPC Compile to the worker: $out"
    out=$(raw_status "$url/gridcc.v1.Coordinator/Status" "$WORK/empty.grpc" -H "authorization: Bearer $TOKEN")
    [[ $out == *"grpc-status: 0"* ]] || fail "raw gRPC with token: $out"
    echo "raw gRPC Status with the token: $out"
    out=$(cd "$LUA/src" && GRIDCC_TOKEN=wrong "$BIN/gridcc" gcc -std=gnu99 -O2 -c lapi.c -o "$WORK/wrong.o" 2>&1)
    cmp -s "$WORK/wrong.o" "$WORK/ref/lapi.o" || fail "wrong-token local compile differs"
    echo "wrapper, wrong token: $out (object identical to gcc's: yes)"

    echo "-- Lua build with the token"
    make -s -C "$LUA" clean >/dev/null
    export GRIDCC_JOB_LOG=$WORK/jobs-$name.jsonl
    local t0 t1
    t0=$(date +%s.%N)
    make -s -C "$LUA" -j2 linux CC="$BIN/gridcc gcc -std=gnu99" >/dev/null 2>"$WORK/build-$name.err" \
        || { cat "$WORK/build-$name.err"; fail "build"; }
    t1=$(date +%s.%N)
    unset GRIDCC_JOB_LOG
    local remote local_ links n same
    remote=$(grep -c '"mode":"remote"' "$WORK/jobs-$name.jsonl" || true)
    links=$(grep -c '"reason":"linking"' "$WORK/jobs-$name.jsonl" || true)
    local_=$(($(grep -vc '"mode":"remote"' "$WORK/jobs-$name.jsonl" || true) - links))
    n=0; same=0
    for o in "$WORK"/ref/*.o; do
        n=$((n + 1))
        cmp -s "$o" "$LUA/src/$(basename "$o")" && same=$((same + 1))
    done
    "$LUA/src/lua" -e 'assert(string.format("%d", 6 * 7) == "42")' || fail "lua does not run"
    printf 'built in %.1f s: %s compiles remote, %s local (and %s links, always local); objects identical to gcc: %s/%s; src/lua runs\n' \
        "$(echo "$t1 - $t0" | bc)" "$remote" "$local_" "$links" "$same" "$n"
    [ "$same" -eq "$n" ] && [ "$remote" -eq "$n" ] && [ "$local_" -eq 0 ] || fail "$name"
    "$BIN/gridcc" status | head -4
    grep -c "refused unauthenticated" "$WORK/coordinator-$name.log" \
        | sed 's/^/coordinator log lines "refused unauthenticated call": /'
    grid_stop
    grid_pids=()
    unset GRIDCC_COORDINATOR GRIDCC_TLS_CA
}

one_grid token "" ""
"$HERE/make-test-ca.sh" "$WORK/ca" 127.0.0.1 >/dev/null
export GRIDCC_TLS_CA=$WORK/ca/ca.pem
tls="--tls-cert $WORK/ca/server.pem --tls-key $WORK/ca/server-key.pem"
one_grid token+tls "$tls" "$tls --tls-ca $WORK/ca/ca.pem"
echo
echo "PASS: token and token+TLS grids refuse calls without the token and build Lua remotely, objects identical"
