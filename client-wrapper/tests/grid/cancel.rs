//! Cancellation end to end (issue 25): a client that goes away in the
//! middle of a real compile (Ctrl-C to its process group, SIGKILL, its
//! connection cut) leaves no busy slot, no compiler process and no job
//! directory behind, and the next compile runs remotely at once. A 2-slot
//! grid (two workers, one slot each), real gcc, each way repeated
//! [`rounds`] times in a row.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// Rounds per way of going away: `GRIDCC_CANCEL_ROUNDS`, 20 by default.
fn rounds() -> usize {
    std::env::var("GRIDCC_CANCEL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// The workers run every job in their sandbox (the default), so the jobs
/// cancelled are hermetic ones; `GRIDCC_CANCEL_UNSANDBOXED=1` runs the
/// same suite against workers started with `--no-sandbox`, whose jobs run
/// as text, unsandboxed.
fn hermetic_workers() -> bool {
    !std::env::var("GRIDCC_CANCEL_UNSANDBOXED").is_ok_and(|v| v == "1")
}

/// Whether `ancestor` is `pid`'s parent, or its parent's, and so on.
fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            return false;
        };
        if ppid == ancestor {
            return true;
        }
        if ppid <= 1 {
            return false;
        }
        pid = ppid;
    }
    false
}

/// How fast the grid must be clean again once the client is gone.
const CLEAN_WITHIN: Duration = Duration::from_secs(2);

/// C that takes gcc a few seconds at -O2: long enough to be interrupted
/// in the middle, and the rounds never wait for it to finish.
fn slow_source() -> String {
    (0..3000)
        .map(|i| {
            format!(
                "int f{i}(int *a, int n) {{ int s = {i}; for (int k = 0; k < n; k++) \
                 {{ s += a[k] * {i} ^ (s >> 3); if (s & 1) s = s * 7 + k; }} return s; }}\n"
            )
        })
        .collect()
}

/// A TCP proxy in front of one worker (which advertises the proxy's
/// address) whose open connections the test cuts at once, both sides, as
/// a killed middlebox would, or silences, as a link gone down does.
struct Proxy {
    addr: String,
    upstream: Arc<Mutex<Option<String>>>,
    open: Connections,
}

/// The proxy's open connections (both sockets of each), each with the
/// flag that silences it.
type Connections = Arc<Mutex<Vec<(TcpStream, Arc<AtomicBool>)>>>;

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream: Arc<Mutex<Option<String>>> = Arc::default();
        let open: Connections = Arc::default();
        let (to, conns) = (Arc::clone(&upstream), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Some(to) = to.lock().unwrap().clone() else {
                    continue;
                };
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                let silent = Arc::new(AtomicBool::new(false));
                let mut conns = conns.lock().unwrap();
                conns.push((client.try_clone().unwrap(), Arc::clone(&silent)));
                conns.push((server.try_clone().unwrap(), Arc::clone(&silent)));
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Arc::clone(&silent),
                );
                pump(server, client, silent);
            }
        });
        Proxy {
            addr,
            upstream,
            open,
        }
    }

    fn forward_to(&self, addr: &str) {
        *self.upstream.lock().unwrap() = Some(addr.to_owned());
    }

    /// Closes every connection open now, on both sides.
    fn cut(&self) {
        for (conn, _) in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Every connection open now stays open but carries nothing more, in
    /// either direction: no FIN, no RST, as when a link goes down.
    fn silence(&self) {
        for (_, silent) in self.open.lock().unwrap().iter() {
            silent.store(true, Ordering::SeqCst);
        }
    }
}

/// Copies `from` to `to` on a thread until either ends; once `silent`,
/// swallows what it reads.
fn pump(mut from: TcpStream, mut to: TcpStream, silent: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if silent.load(Ordering::SeqCst) => {}
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        if silent.load(Ordering::SeqCst) {
            // A dead link closes nothing.
            return;
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Live processes (zombies aside) whose working directory is under `dir`:
/// a job's driver, cc1 and as all run in its directory. `(pid, name)`.
pub(super) fn processes_in(dir: &Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, state)| (name.to_owned(), state.trim_start().starts_with('Z')));
        if let Some((name, false)) = name {
            if cwd.starts_with(dir) {
                found.push((pid, name));
            }
        }
    }
    found
}

/// CPU time cc1 must have used before the client goes away: 0.3 s at the
/// usual 100 clock ticks per second.
const MID_COMPILE_TICKS: u64 = 30;

/// User + system CPU time of a process, in clock ticks (0 once gone).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields 14 and 15 (utime, stime); the name, field 2, may hold spaces.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum()
}

/// Job roots (stages) in a worker's work dir, with what they hold. A
/// worker keeps one per slot across jobs once a job ended cleanly, and
/// discards (removes) the one of a job that did not, a cancelled one.
fn job_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("gridcc-stage-"))
        .map(|e| {
            let mut files = Vec::new();
            let mut stack = vec![e.path()];
            while let Some(d) = stack.pop() {
                for f in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if f.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(f.path());
                    }
                    files.push(f.path().strip_prefix(dir).unwrap().display().to_string());
                }
            }
            format!("{} {files:?}", e.file_name().to_string_lossy())
        })
        .collect()
}

/// Polls `ok` until it holds or `limit` passes; then fails with `what`.
fn within(limit: Duration, what: &str, mut ok: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match ok() {
            Ok(()) => return,
            Err(why) if Instant::now() > deadline => {
                panic!("{what} not within {limit:?}: {why}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// How the client goes away.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Away {
    /// SIGINT to its process group, as a terminal's Ctrl-C.
    CtrlC,
    /// SIGTERM to the wrapper alone, as a supervisor stops it.
    Term,
    /// SIGKILL: no chance to say anything.
    Killed,
    /// Its connection to the worker cut; it lives on (and retries).
    Cut,
}

struct CancelGrid {
    grid: Grid,
    /// Each worker's `--work-dir`.
    work: Vec<PathBuf>,
    proxies: Vec<Proxy>,
    project: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl CancelGrid {
    /// Two workers with one slot each; behind proxies when `proxied`.
    fn start(proxied: bool) -> CancelGrid {
        let mut grid = Grid::start(0, 1);
        let mut work = Vec::new();
        let mut proxies = Vec::new();
        let hermetic = hermetic_workers();
        if hermetic {
            // The compile user starts the sandbox in the work dirs.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(grid.dir.path(), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        for n in 0..2 {
            let dir = grid.dir.path().join(format!("work{n}"));
            std::fs::create_dir(&dir).unwrap();
            let dir_arg = dir.display().to_string();
            let mut extra = vec!["--work-dir", &dir_arg];
            if !hermetic {
                extra.push("--no-sandbox");
            }
            let proxy = proxied.then(Proxy::start);
            if let Some(proxy) = &proxy {
                extra.extend(["--advertise", &proxy.addr]);
            }
            grid.add_worker_with(1, &extra, &[]);
            if let Some(proxy) = proxy {
                proxy.forward_to(&grid.workers[n].addr);
                proxies.push(proxy);
            }
            work.push(dir);
        }
        grid.wait_for_workers(2);
        if hermetic {
            let status = grid.status();
            for w in status["workers"].as_array().unwrap() {
                assert_eq!(w["job_mode"], "hermetic", "{status}");
            }
        }
        let project = tempfile::tempdir().unwrap();
        write(project.path(), "slow.c", &slow_source());
        CancelGrid {
            grid,
            work,
            proxies,
            project,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    /// The wrapper compiling slow.c, leader of its own process group as a
    /// shell with job control makes it.
    fn start_slow_compile(&self) -> Child {
        let mut cmd = Command::new(gridcc());
        cmd.current_dir(self.project.path())
            .args(["gcc", "-O2", "-c", "slow.c", "-o", "slow.o"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        gridcc_env(&mut cmd, &self.grid.url(), self.cache.path());
        let child = cmd.spawn().unwrap();
        // A background job of a non-interactive shell has SIGINT ignored
        // (BENCHMARKING.md); then this test would test nothing.
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        assert_eq!(
            ignored & (1 << (2 - 1)),
            0,
            "the test runs with SIGINT ignored"
        );
        child
    }

    /// Waits until some worker runs the job's cc1 and as, and cc1 has
    /// been compiling for a while (0.3 s of CPU, of the 15 or so it needs);
    /// returns the worker's index.
    fn wait_until_compiling(&self, client: &mut Child) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for (n, dir) in self.work.iter().enumerate() {
                let procs = self.job_processes(n, dir);
                let cc1 = procs.iter().find(|p| p.1 == "cc1");
                let has_as = procs.iter().any(|p| p.1 == "as");
                if cc1.is_some_and(|p| cpu_ticks(p.0) >= MID_COMPILE_TICKS) && has_as {
                    return n;
                }
            }
            if let Some(status) = client.try_wait().unwrap() {
                panic!("the client ended ({status}) before its job ran remotely");
            }
            assert!(Instant::now() < deadline, "the job never ran on a worker");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The processes of worker `n`'s jobs: those whose cwd is under its
    /// work dir, and with hermetic workers those in the project directory
    /// (a sandboxed job's cwd is the client's) that descend from worker
    /// `n`.
    fn job_processes(&self, n: usize, dir: &Path) -> Vec<(u32, String)> {
        let mut procs = processes_in(dir);
        if hermetic_workers() {
            let worker = self.grid.workers[n].child.id();
            procs.extend(
                processes_in(self.project.path())
                    .into_iter()
                    .filter(|(pid, _)| descends_from(*pid, worker)),
            );
        }
        procs
    }

    /// The worker `n` runs nothing and holds no job root beyond the one
    /// its single slot keeps for the next job.
    fn worker_clean(&self, n: usize) -> Result<(), String> {
        let procs = self.job_processes(n, &self.work[n]);
        let dirs = job_dirs(&self.work[n]);
        if procs.is_empty() && dirs.len() <= 1 {
            Ok(())
        } else {
            Err(format!(
                "worker {n}: processes {procs:?}, job directories {dirs:?}"
            ))
        }
    }

    /// No busy slot, no job process, no job root left over anywhere.
    fn grid_clean(&self) -> Result<(), String> {
        for n in 0..self.work.len() {
            self.worker_clean(n)?;
        }
        let status = self.grid.status();
        match status["running"].as_u64() {
            Some(0) => Ok(()),
            _ => Err(format!("busy slots: {status}")),
        }
    }

    /// A new small compile runs remotely, and at once (not after the
    /// coordinator's 30 s queue timeout, which a stuck slot would cost).
    fn next_compile_runs_remotely(&self, round: usize) {
        let before = self.grid.status()["jobs_remote"].as_u64().unwrap();
        let name = format!("quick{round}.c");
        write(
            self.project.path(),
            &name,
            &format!("int quick(void) {{ return {round}; }}\n"),
        );
        let started = Instant::now();
        let out = run_gridcc(
            self.project.path(),
            &self.grid.url(),
            self.cache.path(),
            &["gcc", "-O2", "-c", &name, "-o", "quick.o"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = self.grid.status()["jobs_remote"].as_u64().unwrap();
        assert_eq!(
            after,
            before + 1,
            "round {round}: the next compile ran locally"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "round {round}: the next compile took {:?}",
            started.elapsed()
        );
    }

    /// One round; returns how long the grid took to be clean once the
    /// client was gone (`gridcc status` polls included).
    fn round(&self, away: Away, round: usize) -> Duration {
        // A stale object from an earlier build: interrupted, gcc removes
        // its output, so a later make does not take it as up to date.
        write(self.project.path(), "slow.o", "stale");
        let mut client = self.start_slow_compile();
        let worker = self.wait_until_compiling(&mut client);
        let pid = client.id().to_string();
        let gone_at = match away {
            Away::CtrlC | Away::Term => {
                let (how, target, number) = match away {
                    Away::CtrlC => ("INT", format!("-{pid}"), 2),
                    _ => ("TERM", pid.clone(), 15),
                };
                kill(&["-s", how, "--", &target]);
                let status = wait_timeout(&mut client, Duration::from_secs(10));
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    status.signal(),
                    Some(number),
                    "round {round}: the wrapper did not die of SIG{how}: {status}"
                );
                assert!(
                    !self.project.path().join("slow.o").exists(),
                    "round {round}: the output was left"
                );
                let temps: Vec<String> = std::fs::read_dir(self.project.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".gridcc-"))
                    .collect();
                assert!(temps.is_empty(), "round {round}: temp files {temps:?}");
                Instant::now()
            }
            Away::Killed => {
                kill(&["-s", "KILL", &pid]);
                wait_timeout(&mut client, Duration::from_secs(10));
                Instant::now()
            }
            Away::Cut => {
                for proxy in &self.proxies {
                    proxy.cut();
                }
                let cut_at = Instant::now();
                // The client lives on (its retry runs on the other
                // worker); the job it left is gone all the same.
                within(CLEAN_WITHIN, "the cut job's end", || {
                    self.worker_clean(worker)
                });
                assert!(
                    cut_at.elapsed() <= CLEAN_WITHIN + Duration::from_millis(500),
                    "round {round}: the worker took {:?} to drop the job",
                    cut_at.elapsed()
                );
                kill(&["-s", "INT", "--", &format!("-{pid}")]);
                wait_timeout(&mut client, Duration::from_secs(10));
                Instant::now()
            }
        };
        within(
            CLEAN_WITHIN,
            &format!("round {round} ({away:?}): a clean grid"),
            || self.grid_clean(),
        );
        let cleaned = gone_at.elapsed();
        assert!(
            cleaned <= CLEAN_WITHIN + Duration::from_millis(500),
            "round {round}: cleaning took {cleaned:?}"
        );
        self.next_compile_runs_remotely(round);
        cleaned
    }

    fn run(&self, away: Away, rounds: usize) {
        let slowest = (0..rounds)
            .map(|round| self.round(away, round))
            .max()
            .unwrap_or_default();
        eprintln!("{away:?}: {rounds} rounds, the grid clean at most {slowest:?} after");
        let status = self.grid.status();
        assert_eq!(status["running"], 0, "{status:#}");
        // Each job left was cancelled by its worker, which said so (not
        // found out later by the coordinator's reconciliation).
        let cancelled: usize = (0..self.work.len())
            .map(|n| {
                std::fs::read_to_string(self.grid.dir.path().join(format!("worker{n}.log")))
                    .unwrap()
                    .matches("the client went away; job cancelled")
                    .count()
            })
            .sum();
        // (With a cut, the retry interrupted to end the round may be
        // cancelled too, if it reached its worker.)
        assert!(
            cancelled >= rounds,
            "{cancelled} jobs cancelled by the workers, {rounds} expected"
        );
    }
}

fn kill(args: &[&str]) {
    let st = Command::new("kill").args(args).status().unwrap();
    assert!(st.success(), "kill {args:?} failed");
}

#[test]
fn fault_ctrl_c_mid_compile_frees_the_grid_every_time() {
    CancelGrid::start(false).run(Away::CtrlC, rounds());
}

#[test]
fn fault_sigterm_mid_compile_frees_the_grid() {
    // The same path as Ctrl-C in the wrapper; a few rounds suffice.
    CancelGrid::start(false).run(Away::Term, rounds().min(5));
}

#[test]
fn fault_a_client_killed_mid_compile_frees_the_grid_every_time() {
    CancelGrid::start(false).run(Away::Killed, rounds());
}

#[test]
fn fault_a_clients_connection_cut_mid_compile_frees_its_worker_every_time() {
    CancelGrid::start(true).run(Away::Cut, rounds());
}

/// The servers' HTTP/2 ping interval and timeout (gridcc_proto::serve).
const SERVER_KEEPALIVE: Duration = Duration::from_secs(5 + 10);

#[test]
fn fault_a_client_gone_silent_mid_compile_is_dropped_by_its_worker() {
    // Once, not per round: finding a silent peer takes the keep-alive's
    // interval and timeout.
    let grid = CancelGrid::start(true);
    let mut client = grid.start_slow_compile();
    let worker = grid.wait_until_compiling(&mut client);
    for proxy in &grid.proxies {
        proxy.silence();
    }
    let silenced = Instant::now();
    within(
        SERVER_KEEPALIVE + Duration::from_secs(5),
        "the silent client's job dropped",
        || grid.worker_clean(worker),
    );
    eprintln!(
        "the worker dropped the job {:?} after the link went silent",
        silenced.elapsed()
    );
    kill(&["-s", "INT", "--", &format!("-{}", client.id())]);
    wait_timeout(&mut client, Duration::from_secs(10));
    within(CLEAN_WITHIN, "a clean grid", || grid.grid_clean());
    grid.next_compile_runs_remotely(0);
}
