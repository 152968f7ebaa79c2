# Shared by the scripts that start a local grid on loopback. Source it, then:
#   grid_start BIN_DIR WORK_DIR WORKERS SLOTS   # sets $url, starts everything
#   grid_stop                                   # kills what grid_start started
# COORDINATOR_ARGS (environment) adds arguments to the coordinator, e.g.
#   COORDINATOR_ARGS="--trace-out /tmp/trace.jsonl --policy weighted",
# and WORKER_ARGS to each worker. COORDINATOR_PREFIX runs the coordinator
# under another program, e.g. COORDINATOR_PREFIX="valgrind --tool=callgrind"
# (which execs in place, so the coordinator's pid stays the one started).
# Servers print "listening on IP:PORT" as their first stdout line (contract).

grid_pids=()

# Starts a server in the background and sets $addr from its first line.
grid_server() {
    local work=$1 name=$2; shift 2
    "$@" >"$work/$name.out" 2>"$work/$name.log" </dev/null &
    local pid=$!
    grid_pids+=("$pid")
    local line=""
    for _ in $(seq 1 400); do
        read -r line 2>/dev/null <"$work/$name.out" || true
        if [ -n "$line" ]; then
            addr=${line#listening on }
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited:" >&2
            cat "$work/$name.log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "$name did not start within 20 s" >&2
    return 1
}

grid_start() {
    local bin=$1 work=$2 workers=$3 slots=$4
    # Workers run every job in a bubblewrap sandbox, and exit without one
    # (unless WORKER_ARGS has --no-sandbox).
    if ! command -v bwrap >/dev/null 2>&1 && [[ "${WORKER_ARGS:-}" != *--no-sandbox* ]]; then
        echo "== installing bubblewrap (the workers' sandbox)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null || return 1
    fi
    # shellcheck disable=SC2086 # word splitting of COORDINATOR_PREFIX and _ARGS is wanted
    grid_server "$work" coordinator ${COORDINATOR_PREFIX:-} "$bin/gridcc-coordinator" --listen 127.0.0.1:0 ${COORDINATOR_ARGS:-} || return 1
    url="http://$addr"
    echo "== coordinator on $url"
    for i in $(seq 1 "$workers"); do
        # shellcheck disable=SC2086 # word splitting of WORKER_ARGS is wanted
        grid_server "$work" "worker$i" "$bin/gridcc-worker" --coordinator "$url" \
            --listen 127.0.0.1:0 --slots "$slots" --cache-size 0 ${WORKER_ARGS:-} || return 1
        echo "== worker $i on $addr ($slots slot(s))"
    done
    for _ in $(seq 1 200); do
        n=$("$bin/gridcc" status --json --coordinator "$url" 2>/dev/null | grep -c '"address"' || true)
        [ "$n" -eq "$workers" ] && return 0
        sleep 0.1
    done
    echo "workers did not register" >&2
    return 1
}

grid_stop() {
    for pid in "${grid_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
