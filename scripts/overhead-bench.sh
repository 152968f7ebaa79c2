#!/usr/bin/env bash
# overhead-bench.sh — per-job wall time that a distributed compiler adds over
# plain gcc, for one small and one large translation unit.
#
# Usage:
#   scripts/overhead-bench.sh [-n N] [--tools gcc,distcc,gridcc,hermetic] [--out DIR]
#                             [--small FILE] [--large FILE | --large=] [--cflags "..."]
#                             [--gridcc PATH] [--coordinator-bin PATH]
#                             [--worker-bin PATH] [--warmup K]
#
# For each TU it runs N (default 100) sequential compiles per tool,
# interleaved (iteration i runs every tool once, in a rotating order, so
# drift hits all tools alike), timing each whole command with
# time.perf_counter_ns (sub-microsecond resolution).  Every sample is kept
# (no outlier dropping) and written to DIR/samples.csv; the summary table
# (median, p10, p90, added ms over gcc) goes to stdout and DIR/results.md.
# --warmup K runs K extra untimed compiles per tool first (default 0), which
# are reported as such and not part of the statistics.
#
#   gcc     `gcc CFLAGS -c TU -o OUT`
#   distcc  `distcc gcc CFLAGS -c TU -o OUT` against a private distccd on
#           127.0.0.1:<free port> (DISTCC_HOSTS=127.0.0.1:PORT/1 — not
#           "localhost", which distcc treats as "compile locally"),
#           DISTCC_FALLBACK=0 and DISTCC_SKIP_LOCAL_RETRY=1 so a failed
#           distribution fails loudly instead of silently running locally,
#           and distccd's --log-file (--log-level info) is checked afterwards:
#           the number of COMPILE_OK job summaries must equal the number of
#           distcc compiles we ran.
#   gridcc  `gridcc gcc CFLAGS -c TU -o OUT`, text jobs.  If
#           GRIDCC_COORDINATOR is set, that running grid is used.  Otherwise
#           the script starts `gridcc-coordinator --listen 127.0.0.1:0` and one
#           `gridcc-worker --coordinator URL --listen 127.0.0.1:0 --slots 1
#           --no-sandbox` (the preprocessed-text mode that was the default
#           before the sandbox was)
#           (waiting for their `listening on IP:PORT` lines) and stops them at
#           the end.  All gridcc compiles share one GRIDCC_CACHE_DIR made for
#           the run: it holds the compiler-identity cache, which every real
#           user has warm after the first compile (gridcc has no object cache
#           yet; once it does, this benchmark must turn it off).
#           Skipped with a message if the binaries are missing.  Remote
#           execution is checked with `gridcc explain` and, when it reports
#           counts, `gridcc status --json` before/after.
#   hermetic  the same `gridcc gcc …` against a second grid of its own, whose
#           one worker runs hermetic jobs (the default: the input tree in a
#           bubblewrap sandbox, kept per slot when run as root; needs bwrap
#           and user namespaces). Not in the
#           default --tools; `--tools gcc,distcc,gridcc,hermetic` puts text
#           and hermetic mode side by side in one run. Every compile must
#           count as hermetic in `gridcc stats` (its own client cache dir).
#           Both gridcc workers get --cache-dir and --work-dir inside the
#           run's work dir, so no input store of an earlier run is reused
#           across runs (within a run the repeated TU's inputs are held).
#
# Defaults: small TU = testdata/calc/hashtab.c (~150 lines of real C),
# large TU = Lua 5.4's src/lvm.c (fetched with scripts/fetch-lua.sh;
# ~1,800 lines, ~250 KB preprocessed, ~1 s at -O2 -g), CFLAGS = "-O2 -g".
# Binaries default to target/release/{gridcc,gridcc-coordinator,gridcc-worker}
# (or $GRIDCC_BIN, $GRIDCC_COORDINATOR_BIN, $GRIDCC_WORKER_BIN).
# Everything listens on 127.0.0.1 only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

need_large=1
for a in "$@"; do
    case "$a" in
        --large|--large=*) need_large=0 ;;
        -h|--help) sed -n '2,56p' "$0"; exit 0 ;;
    esac
done

LUA_DIR=
if [ $need_large = 1 ]; then
    LUA_DIR=$("$HERE/fetch-lua.sh" | tail -n1)
fi

export GRIDCC_BENCH_ROOT=$ROOT GRIDCC_BENCH_LUA_DIR=$LUA_DIR
exec python3 - "$@" <<'PY'
import argparse, csv, json, os, shutil, signal, statistics, subprocess, sys
import tempfile, threading, time

ROOT = os.environ["GRIDCC_BENCH_ROOT"]
LUA_DIR = os.environ.get("GRIDCC_BENCH_LUA_DIR", "")

ap = argparse.ArgumentParser(prog="overhead-bench.sh")
ap.add_argument("-n", type=int, default=100, help="timed compiles per tool and TU")
ap.add_argument("--warmup", type=int, default=0)
ap.add_argument("--tools", default="gcc,distcc,gridcc")
ap.add_argument("--small", default=os.path.join(ROOT, "testdata/calc/hashtab.c"))
ap.add_argument("--large", default=os.path.join(LUA_DIR, "src/lvm.c") if LUA_DIR else None)
ap.add_argument("--cflags", default="-O2 -g")
ap.add_argument("--compiler", default="gcc")
ap.add_argument("--out", default=None)
ap.add_argument("--gridcc", default=os.environ.get("GRIDCC_BIN", os.path.join(ROOT, "target/release/gridcc")))
ap.add_argument("--coordinator-bin", default=os.environ.get("GRIDCC_COORDINATOR_BIN", os.path.join(ROOT, "target/release/gridcc-coordinator")))
ap.add_argument("--worker-bin", default=os.environ.get("GRIDCC_WORKER_BIN", os.path.join(ROOT, "target/release/gridcc-worker")))
args = ap.parse_args()
# compiles run with cwd = a temp dir: make every path absolute now
args.gridcc = os.path.abspath(args.gridcc)
args.coordinator_bin = os.path.abspath(args.coordinator_bin)
args.worker_bin = os.path.abspath(args.worker_bin)

def log(msg):
    print(f"overhead-bench: {msg}", file=sys.stderr, flush=True)

def die(msg):
    log("error: " + msg)
    cleanup()
    sys.exit(1)

tools = [t.strip() for t in args.tools.split(",") if t.strip()]
for t in tools:
    if t not in ("gcc", "distcc", "gridcc", "hermetic"):
        ap.error(f"unknown tool {t}")
if args.n < 1:
    ap.error("-n must be >= 1")
tus = [("small", os.path.abspath(args.small))]
if args.large:
    tus.append(("large", os.path.abspath(args.large)))
for _, f in tus:
    if not os.path.isfile(f):
        ap.error(f"no such file: {f}")

stamp = time.strftime("%Y%m%d-%H%M%S")
out_dir = os.path.abspath(args.out or os.path.join(ROOT, "target/overhead-bench", stamp))
os.makedirs(out_dir, exist_ok=True)
work = tempfile.mkdtemp(prefix="gridcc-overhead-")
os.chmod(work, 0o777)  # distccd drops root privileges and writes its log here
procs = []  # (name, Popen) we started; stopped in cleanup()

def cleanup():
    for name, p in reversed(procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)  # own session: pid == pgid
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
    procs.clear()

import atexit
atexit.register(cleanup)  # also on exceptions and sys.exit
def _on_signal(signum, frame):
    raise SystemExit(128 + signum)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def start_listening(name, cmd, logpath, timeout=30.0):
    """Start cmd, wait for its first stdout line `listening on IP:PORT`."""
    errf = open(logpath + ".stderr", "wb")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append((name, p))
    box = {}
    def reader():
        first = p.stdout.readline()
        box["line"] = first.decode(errors="replace").strip()
        with open(logpath + ".stdout", "wb") as f:  # keep draining the pipe
            f.write(first)
            for chunk in iter(lambda: p.stdout.read1(65536), b""):
                f.write(chunk)
                f.flush()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    deadline = time.monotonic() + timeout
    while "line" not in box:
        if p.poll() is not None and "line" not in box:
            th.join(1)
            if "line" in box:
                break
            die(f"{name} exited with {p.returncode} before listening; see {logpath}.stderr")
        if time.monotonic() > deadline:
            die(f"{name} printed no 'listening on' line within {timeout:.0f}s")
        time.sleep(0.01)
    line = box["line"]
    if not line.startswith("listening on "):
        die(f"{name}: unexpected first line {line!r}")
    return line[len("listening on "):].strip()

env_base = dict(os.environ)
env_base.pop("GRIDCC_DISABLE", None)
cflags = args.cflags.split()
tool_env = {"gcc": dict(env_base)}
notes = []
remote_check = {}

# ---------------------------------------------------------------- distcc
distcc_log = None
if "distcc" in tools:
    if not shutil.which("distcc") or not shutil.which("distccd"):
        log("distcc/distccd not installed (apt-get install -y distcc); skipping distcc")
        tools.remove("distcc")
    else:
        port = free_port()
        distcc_log = os.path.join(work, "distccd.log")
        open(distcc_log, "w").close()
        os.chmod(distcc_log, 0o666)
        cmd = ["distccd", "--daemon", "--no-detach", "--listen", "127.0.0.1",
               "--port", str(port), "--allow", "127.0.0.1/32", "--jobs", "1",
               "--log-file", distcc_log, "--log-level", "info"]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(work, "distccd.stderr"), "wb"),
                             start_new_session=True)
        procs.append(("distccd", p))
        deadline = time.monotonic() + 10
        while "listening on" not in open(distcc_log, errors="replace").read():
            if p.poll() is not None:
                die(f"distccd exited with {p.returncode}; see {distcc_log}")
            if time.monotonic() > deadline:
                die(f"distccd did not start listening; see {distcc_log}")
            time.sleep(0.02)
        ddir = os.path.join(work, "distcc-dir")
        os.makedirs(ddir, exist_ok=True)
        e = dict(env_base)
        e.update(DISTCC_HOSTS=f"127.0.0.1:{port}/1", DISTCC_DIR=ddir,
                 DISTCC_FALLBACK="0", DISTCC_SKIP_LOCAL_RETRY="1",
                 DISTCC_BACKOFF_PERIOD="0",
                 DISTCC_LOG=os.path.join(work, "distcc-client.log"))
        e.pop("DISTCC_VERBOSE", None)
        tool_env["distcc"] = e
        log(f"distccd on 127.0.0.1:{port} (log {distcc_log})")

# ---------------------------------------------------------------- gridcc
grid_url = None
if "gridcc" in tools:
    if not os.access(args.gridcc, os.X_OK):
        log(f"gridcc binary not found at {args.gridcc} (cargo build --release?); skipping gridcc")
        tools.remove("gridcc")
    elif os.environ.get("GRIDCC_COORDINATOR"):
        grid_url = os.environ["GRIDCC_COORDINATOR"]
        log(f"using the running grid at {grid_url}")
    elif not (os.access(args.coordinator_bin, os.X_OK) and os.access(args.worker_bin, os.X_OK)):
        log(f"GRIDCC_COORDINATOR unset and {args.coordinator_bin} / {args.worker_bin} "
            "not built; skipping gridcc")
        tools.remove("gridcc")
    else:
        addr = start_listening("gridcc-coordinator",
                               [args.coordinator_bin, "--listen", "127.0.0.1:0"],
                               os.path.join(work, "coordinator"))
        grid_url = f"http://{addr}"
        waddr = start_listening("gridcc-worker",
                                [args.worker_bin, "--coordinator", grid_url,
                                 "--listen", "127.0.0.1:0", "--slots", "1", "--no-sandbox",
                                 "--cache-size", "0",
                                 "--cache-dir", os.path.join(work, "worker-cache"),
                                 "--work-dir", work],
                                os.path.join(work, "worker"))
        log(f"started gridcc-coordinator at {grid_url}, worker at {waddr} (logs in {work})")

hermetic_url = None
if "hermetic" in tools:
    if not all(os.access(b, os.X_OK) for b in
               (args.gridcc, args.coordinator_bin, args.worker_bin)):
        log("gridcc binaries not built; skipping hermetic")
        tools.remove("hermetic")
    else:
        addr = start_listening("gridcc-coordinator (hermetic)",
                               [args.coordinator_bin, "--listen", "127.0.0.1:0"],
                               os.path.join(work, "coordinator-hermetic"))
        hermetic_url = f"http://{addr}"
        waddr = start_listening("gridcc-worker (hermetic)",
                                [args.worker_bin, "--coordinator", hermetic_url,
                                 "--listen", "127.0.0.1:0", "--slots", "1",
                                 "--cache-size", "0", "--hermetic",
                                 "--cache-dir", os.path.join(work, "worker-hermetic-cache"),
                                 "--work-dir", work],
                                os.path.join(work, "worker-hermetic"))
        log(f"started a hermetic grid at {hermetic_url}, worker at {waddr}")

def grid_status(url=None):
    """Best-effort: (n_workers, remote_jobs) from `gridcc status --json`."""
    try:
        r = subprocess.run([args.gridcc, "status", "--json", "--coordinator", url or grid_url],
                           capture_output=True, timeout=10, env=tool_env.get("gridcc", env_base))
        if r.returncode != 0:
            return None, None
        doc = json.loads(r.stdout)
    except Exception:
        return None, None
    workers = None
    remote = None
    def walk(o, path=""):
        nonlocal workers, remote
        if isinstance(o, dict):
            for k, v in o.items():
                kl = k.lower()
                if kl == "workers" and isinstance(v, list):
                    workers = len(v)
                if "remote" in kl and isinstance(v, int) and not isinstance(v, bool) \
                        and remote is None and "worker" not in path:
                    remote = v
                walk(v, path + "/" + kl)
        elif isinstance(o, list):
            for v in o:
                walk(v, path + "[]")
    walk(doc)
    if remote is None and isinstance(doc, dict) and isinstance(doc.get("workers"), list):
        tot = 0; found = False
        for w in doc["workers"]:
            if isinstance(w, dict):
                for k, v in w.items():
                    if ("done" in k.lower() or "completed" in k.lower()) and isinstance(v, int):
                        tot += v; found = True; break
        remote = tot if found else None
    return workers, remote

grid_remote_before = None
if "gridcc" in tools:
    e = dict(env_base)
    e["GRIDCC_COORDINATOR"] = grid_url
    e["GRIDCC_CACHE_DIR"] = tempfile.mkdtemp(prefix="gridcc-cache-", dir=work)
    # Every sample must be a real remote compile, not an object-cache hit.
    e["GRIDCC_CACHE"] = "0"
    tool_env["gridcc"] = e
    deadline = time.monotonic() + 15
    while True:
        nw, _ = grid_status()
        if nw is not None and nw >= 1:
            break
        if time.monotonic() > deadline:
            log("warning: `gridcc status --json` shows no registered worker after 15s; going on")
            break
        time.sleep(0.2)
    _, grid_remote_before = grid_status()
if "hermetic" in tools:
    e = dict(env_base)
    e["GRIDCC_COORDINATOR"] = hermetic_url
    e["GRIDCC_CACHE_DIR"] = tempfile.mkdtemp(prefix="gridcc-cache-hermetic-", dir=work)
    e["GRIDCC_CACHE"] = "0"
    tool_env["hermetic"] = e
    deadline = time.monotonic() + 15
    while True:
        r = subprocess.run([args.gridcc, "status", "--json", "--coordinator", hermetic_url],
                           capture_output=True, text=True, env=e)
        if '"hermetic"' in r.stdout:
            break
        if time.monotonic() > deadline:
            die("the hermetic worker did not register as hermetic within 15s; "
                f"see {os.path.join(work, 'worker-hermetic.stderr')}")
        time.sleep(0.2)

def compile_cmd(tool, src, obj):
    base = [args.compiler] + cflags + ["-c", src, "-o", obj]
    if tool == "gcc":
        return base
    if tool == "distcc":
        return ["distcc"] + base
    return [args.gridcc] + base

for tool in [t for t in ("gridcc", "hermetic") if t in tools]:
    for name, src in tus:
        cmd = [args.gridcc, "explain"] + compile_cmd("gcc", src, os.path.join(work, "explain.o"))
        r = subprocess.run(cmd, capture_output=True, text=True, env=tool_env[tool])
        decision = (r.stdout.strip() or r.stderr.strip()).splitlines()[:1]
        decision = decision[0] if decision else f"(exit {r.returncode}, no output)"
        log(f"{tool}: gridcc explain ({name} TU): {decision}")
        if not decision.startswith("remote"):
            notes.append(f"{tool}: gridcc explain for the {name} TU said: {decision}")

# ---------------------------------------------------------------- measure
samples = []   # (tu, tool, iteration, ns, rc)
counts = {(t, name): 0 for t in tools for name, _ in tus}

def run_one(tool, name, src, i, timed=True):
    obj = os.path.join(work, f"{tool}-{name}.o")
    env = tool_env[tool]
    cmd = compile_cmd(tool, src, obj)
    if os.path.exists(obj):
        os.unlink(obj)
    t0 = time.perf_counter_ns()
    r = subprocess.run(cmd, env=env, cwd=work, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter_ns() - t0
    counts[(tool, name)] += 1
    if r.returncode != 0:
        sys.stderr.write(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
        die(f"{tool} failed (exit {r.returncode}) on {src}: {' '.join(cmd)}")
    if not os.path.isfile(obj) or os.path.getsize(obj) == 0:
        die(f"{tool} exited 0 but wrote no object {obj}: {' '.join(cmd)}")
    if timed:
        samples.append((name, tool, i, dt, r.returncode))

log(f"tools: {', '.join(tools)}; N={args.n}; CFLAGS={args.cflags}; work dir {work}")
t_start = time.monotonic()
load_before = os.getloadavg()[0]
for name, src in tus:
    for w in range(args.warmup):
        for tool in tools:
            run_one(tool, name, src, -1 - w, timed=False)
    for i in range(args.n):
        k = i % len(tools)
        for tool in tools[k:] + tools[:k]:
            run_one(tool, name, src, i)
        if (i + 1) % 10 == 0 or i + 1 == args.n:
            log(f"{name}: {i + 1}/{args.n} iterations ({time.monotonic() - t_start:.0f}s)")

# ---------------------------------------------------------------- verify
if distcc_log:
    time.sleep(0.2)  # let distccd flush its last job summary
    summaries = [l for l in open(distcc_log, errors="replace").read().splitlines()
                 if "(dcc_job_summary)" in l]
    for name, src in tus:
        mine = [l for l in summaries if l.rstrip().endswith(" " + src)]
        ok = sum(1 for l in mine if " COMPILE_OK " in l)
        n_ = counts[("distcc", name)]
        remote_check[("distcc", name)] = f"{ok}/{n_} on distccd"
        if ok != n_ or len(mine) != ok:
            notes.append(f"distcc: for the {name} TU distccd logged {ok} COMPILE_OK and "
                         f"{len(mine) - ok} other job summaries for {n_} distcc compiles "
                         "— some ran locally or failed")
if "gridcc" in tools:
    _, after = grid_status()
    if grid_remote_before is not None and after is not None:
        done = after - grid_remote_before
        total = sum(counts[("gridcc", name)] for name, _ in tus)
        for name, _ in tus:
            remote_check[("gridcc", name)] = f"{done}/{total} remote, all TUs (gridcc status)"
        if done < total:
            notes.append(f"gridcc: status counted {done} remote jobs for {total} compiles")
    else:
        for name, _ in tus:
            remote_check[("gridcc", name)] = "unverified (status gave no count)"
        notes.append("gridcc: `gridcc status --json` reported no remote-job count; "
                     "remote execution not verified beyond `gridcc explain`")
if "hermetic" in tools:
    r = subprocess.run([args.gridcc, "stats", "--json"], capture_output=True, text=True,
                       env=tool_env["hermetic"])
    try:
        st = json.loads(r.stdout)
        herm, text_jobs = st.get("jobs_hermetic"), st.get("jobs_text")
    except Exception:
        herm = text_jobs = None
    total = sum(counts[("hermetic", name)] for name, _ in tus)
    for name, _ in tus:
        remote_check[("hermetic", name)] = f"{herm}/{total} hermetic, {text_jobs} text, all TUs (gridcc stats)"
    if herm != total:
        notes.append(f"hermetic: gridcc stats counted {herm} hermetic jobs for {total} compiles")
for name, _ in tus:
    remote_check[("gcc", name)] = "local"

def text_bytes(obj):
    r = subprocess.run(["objcopy", "-O", "binary", "--only-section=.text", obj, "/dev/stdout"],
                       capture_output=True)
    return r.stdout if r.returncode == 0 else None
if "gcc" in tools and shutil.which("objcopy"):
    for name, _ in tus:
        ref = text_bytes(os.path.join(work, f"gcc-{name}.o"))
        for tool in tools:
            if tool != "gcc" and ref is not None:
                other = text_bytes(os.path.join(work, f"{tool}-{name}.o"))
                if other != ref:
                    notes.append(f"{tool}: .text of the {name} TU's object differs from plain gcc's")
cleanup()

# ---------------------------------------------------------------- report
with open(os.path.join(out_dir, "samples.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["tu", "tool", "iteration", "wall_ns", "exit"])
    w.writerows(samples)

def q(xs, p):
    """Quantile with linear interpolation (numpy's default)."""
    xs = sorted(xs)
    pos = (len(xs) - 1) * p
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

def lines_of(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)

def pp_size(src):
    r = subprocess.run([args.compiler] + cflags + ["-E", src], capture_output=True)
    return len(r.stdout) if r.returncode == 0 else None

rows = []
rows.append(f"Per-job wall time, N={args.n} sequential compiles per tool and TU "
            f"(every sample kept), `{args.compiler} {args.cflags} -c`, ms.")
rows.append("")
for name, src in tus:
    pps = pp_size(src)
    rows.append(f"- {name}: `{os.path.relpath(src, ROOT) if src.startswith(ROOT) else src}` "
                f"({lines_of(src)} lines, {pps/1024:.0f} KiB preprocessed)" if pps else
                f"- {name}: `{src}`")
rows.append("")
rows.append("| TU | tool | n | median | p10 | p90 | added over gcc (median) | paired added, median [p10, p90] | where it ran |")
rows.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
for name, _ in tus:
    base = None
    for tool in tools:
        xs = [s[3] / 1e6 for s in samples if s[0] == name and s[1] == tool]
        if not xs:
            continue
        med = statistics.median(xs)
        if tool == "gcc":
            base = med
        added = "—" if tool == "gcc" or base is None else f"{med - base:+.1f} ms ({(med / base - 1) * 100:+.0f}%)"
        # paired: this tool minus gcc in the same iteration (cancels slow drift)
        g = {s[2]: s[3] for s in samples if s[0] == name and s[1] == "gcc"}
        d = [(s[3] - g[s[2]]) / 1e6 for s in samples
             if s[0] == name and s[1] == tool and s[2] in g]
        paired = "—" if tool == "gcc" or not d else \
            f"{statistics.median(d):+.1f} [{q(d, 0.10):+.1f}, {q(d, 0.90):+.1f}]"
        rows.append(f"| {name} | {tool} | {len(xs)} | {med:.1f} | {q(xs, 0.10):.1f} | "
                    f"{q(xs, 0.90):.1f} | {added} | {paired} | {remote_check.get((tool, name), '')} |")
if notes:
    rows.append("")
    for n_ in notes:
        rows.append(f"- **note:** {n_}")
rows.append("")
rows.append(f"Host: {os.cpu_count()} CPUs; `{subprocess.run([args.compiler, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}`"
            + (f"; `{subprocess.run(['distcc', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}`" if 'distcc' in tools else "")
            + f"; load avg {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
            + f"; total {time.monotonic() - t_start:.0f} s. Raw samples: `{os.path.join(out_dir, 'samples.csv')}`.")
report = "\n".join(rows) + "\n"
with open(os.path.join(out_dir, "results.md"), "w") as f:
    f.write(report)
shutil.rmtree(work, ignore_errors=True) if not notes else log(f"kept work dir {work} for inspection")
print(report, end="")
sys.exit(1 if any(n_.startswith("distcc:") for n_ in notes) else 0)
PY
