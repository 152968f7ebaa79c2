//! End-to-end tests: a real coordinator and real workers (the built
//! binaries, as processes on 127.0.0.1:0), the `gridcc` wrapper, real gcc and
//! make, and the small C project in `testdata/calc`.
//!
//! Readiness is awaited by polling (`listening on` lines, `Status`), never by
//! fixed sleeps.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Token and TLS: refusals, fallbacks and remote compiles over TLS. In a
/// folder of its own so cargo does not build it as a second test binary.
#[path = "grid/auth.rs"]
mod auth;

/// The workers' shared cache: hits across client caches, corrupt entries,
/// header edits, inputs not uploaded twice.
#[path = "grid/shared.rs"]
mod shared;

/// The coordinator's monitor: its API, event stream, token, and the page
/// in headless Chromium.
#[path = "grid/monitor.rs"]
mod monitor;

/// Clients that go away mid-compile (Ctrl-C, SIGKILL, a cut connection)
/// leave no busy slot, compiler process or job directory behind.
#[path = "grid/cancel.rs"]
mod cancel;

/// Hermetic jobs: the client's command line over its input tree in a
/// worker's sandbox; no worker file is ever read.
#[path = "grid/hermetic.rs"]
mod hermetic;

/// Leases are single-use and only their holder releases them.
#[path = "grid/leases.rs"]
mod leases;

/// Roles, a worker's memory and disk bounds, diagnostics that never quote a
/// worker file.
#[path = "grid/trust.rs"]
mod trust;

/// A worker's stderr without terminal controls but colour.
#[path = "grid/terminal.rs"]
mod terminal;

fn gridcc() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gridcc"))
}

/// The coordinator and worker binaries live next to the wrapper's.
fn sibling_bin(name: &str) -> PathBuf {
    let path = gridcc().with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A process killed when the test ends, even on panic.
struct Proc {
    child: Child,
    addr: String,
    /// Kept open (and buffered) for the lines after the first.
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    /// Starts `bin args…`, waits for its `listening on IP:PORT` line.
    fn start(bin: &Path, args: &[&str], log: &Path) -> Proc {
        Self::start_env(bin, args, &[], log)
    }

    /// [`Proc::start`] with extra environment variables.
    fn start_env(bin: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Proc {
        let log_file = std::fs::File::create(log).unwrap();
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .env("GRIDCC_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; log: {}", log.display()))
            .to_owned();
        Proc {
            child,
            addr,
            stdout,
        }
    }

    /// The address the next stdout line announces after `prefix`
    /// (`metrics listening on IP:PORT`).
    fn announced(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}…, got {line:?}"))
            .to_owned()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A grid's token and TLS settings (none by default: plain TCP, no token).
#[derive(Default)]
struct Security {
    /// `GRIDCC_TOKEN` of every process of the grid and of its clients.
    token: Option<String>,
    tls: Option<auth::TestCa>,
}

impl Security {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The environment a client (or a server) of this grid gets.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(token) = &self.token {
            env.push(("GRIDCC_TOKEN".to_owned(), token.clone()));
        }
        if let Some(tls) = &self.tls {
            env.push(("GRIDCC_TLS_CA".to_owned(), tls.ca.display().to_string()));
        }
        env
    }

    /// Server flags: the certificate and key.
    fn server_args(&self) -> Vec<String> {
        match &self.tls {
            Some(tls) => vec![
                "--tls-cert".to_owned(),
                tls.cert.display().to_string(),
                "--tls-key".to_owned(),
                tls.key.display().to_string(),
            ],
            None => Vec::new(),
        }
    }
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

struct Grid {
    coordinator: Proc,
    workers: Vec<Proc>,
    dir: tempfile::TempDir,
    security: Security,
}

impl Grid {
    fn start(workers: usize, slots: u32) -> Grid {
        Self::start_with(workers, slots, &[])
    }

    fn start_with(workers: usize, slots: u32, coordinator_args: &[&str]) -> Grid {
        Self::start_secured(workers, slots, coordinator_args, Security::default())
    }

    fn start_secured(
        workers: usize,
        slots: u32,
        coordinator_args: &[&str],
        security: Security,
    ) -> Grid {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--worker-timeout-ms",
            "3000",
            "--keepalive-interval-ms",
            "500",
            // The tests count remote jobs; with the default a client with
            // an idle core compiles locally when the slots are full.
            "--when-busy",
            "queue",
        ];
        args.extend_from_slice(coordinator_args);
        let server_args = security.server_args();
        args.extend(server_args.iter().map(String::as_str));
        let coordinator = Proc::start_env(
            &sibling_bin("gridcc-coordinator"),
            &args,
            &env_refs(&security.env()),
            &dir.path().join("coordinator.log"),
        );
        let mut grid = Grid {
            coordinator,
            workers: Vec::new(),
            dir,
            security,
        };
        for _ in 0..workers {
            grid.add_worker(slots);
        }
        grid.wait_for_workers(workers);
        grid
    }

    fn url(&self) -> String {
        format!("{}://{}", self.security.scheme(), self.coordinator.addr)
    }

    fn add_worker(&mut self, slots: u32) {
        self.add_worker_with(slots, &[], &[]);
    }

    /// A worker with extra flags and environment variables.
    fn add_worker_with(&mut self, slots: u32, extra: &[&str], env: &[(&str, &str)]) {
        let n = self.workers.len();
        let log = self.dir.path().join(format!("worker{n}.log"));
        let url = self.url();
        let slots = slots.to_string();
        let mut args = vec![
            "--coordinator",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--slots",
            &slots,
        ];
        // Each worker's shared cache lives in the test's temp dir. It is off
        // unless a test turns it on (`--cache-size`): the grid tests count
        // compiles, and repeated builds would otherwise be hits.
        let cache_dir = self.worker_cache_dir(n).display().to_string();
        args.extend(["--cache-dir", &cache_dir]);
        if !extra.contains(&"--cache-size") {
            args.extend(["--cache-size", "0"]);
        }
        args.extend_from_slice(extra);
        let server_args = self.security.server_args();
        args.extend(server_args.iter().map(String::as_str));
        let mut all_env = self.security.env();
        all_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let worker = Proc::start_env(
            &sibling_bin("gridcc-worker"),
            &args,
            &env_refs(&all_env),
            &log,
        );
        self.workers.push(worker);
    }

    /// The shared-cache dir of the `n`th worker started.
    fn worker_cache_dir(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("worker{n}-cache"))
    }

    fn status(&self) -> serde_json::Value {
        let out = Command::new(gridcc())
            .args(["status", "--json", "--coordinator", &self.url()])
            .envs(self.security.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn wait_for(&self, what: &str, mut ok: impl FnMut(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status();
            if ok(&status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_workers(&self, n: usize) {
        self.wait_for(&format!("{n} workers"), |s| {
            s["workers"].as_array().unwrap().len() == n
        });
    }

    fn jobs_done(status: &serde_json::Value) -> Vec<u64> {
        status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["jobs_done"].as_u64().unwrap())
            .collect()
    }
}

/// A copy of testdata/calc in a temp dir.
fn calc_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo_root().join("testdata/calc");
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_str().unwrap();
        let keep = name.ends_with(".c")
            || name.ends_with(".h")
            || name == "Makefile"
            || name == "expected.out";
        if keep {
            std::fs::copy(entry.path(), dir.path().join(name)).unwrap();
        }
    }
    dir
}

/// The grid tests count remote jobs, so repeated builds must not be
/// answered from the object cache: it is off here, and on in
/// [`cache_env`].
fn gridcc_env(cmd: &mut Command, url: &str, cache: &Path) {
    cmd.env("GRIDCC_COORDINATOR", url)
        .env("GRIDCC_CACHE_DIR", cache)
        .env("GRIDCC_CACHE", "0")
        .env_remove("GRIDCC_DISABLE")
        .env_remove("GRIDCC_LOG");
}

fn make(dir: &Path, cc: &str, jobs: u32, url: Option<&str>, cache: &Path) -> Output {
    let mut cmd = Command::new("make");
    cmd.current_dir(dir)
        .arg(format!("-j{jobs}"))
        .arg(format!("CC={cc}"));
    match url {
        Some(url) => gridcc_env(&mut cmd, url, cache),
        None => {
            cmd.env_remove("GRIDCC_COORDINATOR");
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "make CC={cc} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every .o and .d file in `dir`, by name.
fn build_products(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let name = e.file_name().into_string().unwrap();
            (name.ends_with(".o") || name.ends_with(".d"))
                .then(|| (name, std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

fn clean(dir: &Path) {
    let out = Command::new("make")
        .current_dir(dir)
        .arg("clean")
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Builds calc locally in `dir`, returns its products and cleans up.
fn local_build(dir: &Path, cache: &Path) -> BTreeMap<String, Vec<u8>> {
    make(dir, "gcc", 4, None, cache);
    let products = build_products(dir);
    assert_eq!(products.len(), 26, "13 objects and 13 dependency files");
    clean(dir);
    products
}

fn assert_same_products(local: &BTreeMap<String, Vec<u8>>, grid: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        grid.keys().collect::<Vec<_>>()
    );
    let differing: Vec<&String> = local.keys().filter(|k| local[*k] != grid[*k]).collect();
    assert!(
        differing.is_empty(),
        "files differ from the local build: {differing:?}"
    );
}

#[test]
fn calc_builds_through_two_workers_with_identical_objects() {
    let grid = Grid::start(2, 2);
    let project = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(project.path(), cache.path());

    let cc = format!("{} gcc", gridcc().display());
    let out = make(project.path(), &cc, 4, Some(&grid.url()), cache.path());
    // warn.c's deliberate warning reaches the terminal on success.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warn.c") && stderr.contains("warning"),
        "stderr: {stderr}"
    );
    assert_same_products(&local, &build_products(project.path()));

    let status = grid.status();
    let done = Grid::jobs_done(&status);
    assert!(done.iter().all(|&n| n > 0), "both workers used: {done:?}");
    assert_eq!(
        done.iter().sum::<u64>(),
        13,
        "every translation unit ran remotely: {status}"
    );
    assert_eq!(status["jobs_remote"].as_u64(), Some(13));

    // The linked program works.
    let check = Command::new("make")
        .current_dir(project.path())
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Starts `make` through the grid, lets `when_started` act once the grid
/// has finished `after_jobs` jobs, and checks the build completes with the
/// local build's objects.
fn build_survives(grid: &mut Grid, after_jobs: u64, when_started: impl FnOnce(&mut Grid)) {
    let project = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(project.path(), cache.path());
    let cc = format!("{} gcc", gridcc().display());
    // CFLAGS with -O3 and more debug info make each job long enough that a
    // kill lands mid-build.
    let mut cmd = Command::new("make");
    cmd.current_dir(project.path())
        .args(["-j2", &format!("CC={cc}")]);
    gridcc_env(&mut cmd, &grid.url(), cache.path());
    let build = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    grid.wait_for(&format!("{after_jobs} finished jobs"), |s| {
        s["jobs_remote"].as_u64().unwrap_or(0) >= after_jobs
    });
    when_started(grid);
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grid_products = build_products(project.path());
    assert_same_products(&local, &grid_products);
    let check = Command::new("make")
        .current_dir(project.path())
        .arg("check")
        .output()
        .unwrap();
    assert!(check.status.success());
}

#[test]
fn build_completes_when_the_coordinator_is_killed_midway() {
    let mut grid = Grid::start(2, 1);
    build_survives(&mut grid, 2, |grid| grid.coordinator.kill());
}

#[test]
fn build_completes_when_a_worker_is_killed_midway() {
    let mut grid = Grid::start(2, 1);
    build_survives(&mut grid, 2, |grid| {
        grid.workers[0].kill();
    });
    // The dead worker's session ended: only one worker is left.
    grid.wait_for_workers(1);
}

// The fault suite (issue 7): each fault ends with the build complete and
// its objects identical to a local build's.

fn signal(p: &Proc, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} failed");
}

#[test]
fn fault_a_hung_worker_midway_costs_time_not_the_build() {
    // SIGSTOP: the worker's sockets stay open but nothing answers. The
    // wrapper's HTTP/2 keep-alive gives up on it, the coordinator's session
    // times out, and the jobs it held are retried elsewhere or run locally.
    let mut grid = Grid::start(2, 1);
    build_survives(&mut grid, 2, |grid| signal(&grid.workers[0], "STOP"));
    grid.wait_for_workers(1);
    signal(&grid.workers[0], "CONT");
}

#[test]
fn a_worker_sent_sigterm_drains_and_leaves() {
    // SIGTERM: the worker tells the coordinator it is going away, gets no
    // new jobs, finishes the ones it is running and exits 0; the build
    // goes on on the other worker.
    let mut grid = Grid::start(2, 1);
    build_survives(&mut grid, 2, |grid| signal(&grid.workers[0], "TERM"));
    let exit = wait_timeout(&mut grid.workers[0].child, Duration::from_secs(60));
    assert!(exit.success(), "the drained worker exited with {exit:?}");
    let log = std::fs::read_to_string(grid.dir.path().join("worker0.log")).unwrap();
    assert!(log.contains("draining: refusing new jobs"), "{log}");
    grid.wait_for_workers(1);
    // A job it was running when told to go finished there: none failed.
    let s = grid.status();
    assert_eq!(s["jobs_failed"], 0, "{s:#}");
}

#[test]
fn fault_a_coordinator_restarted_midway_gets_its_workers_back() {
    let mut grid = Grid::start(2, 1);
    let listen = grid.coordinator.addr.clone();
    let log = grid.dir.path().join("coordinator2.log");
    build_survives(&mut grid, 2, |grid| {
        grid.coordinator.kill();
        // Clients compile locally meanwhile; workers reconnect on their own.
        grid.coordinator = Proc::start(
            &sibling_bin("gridcc-coordinator"),
            &["--listen", &listen, "--when-busy", "queue"],
            &log,
        );
    });
    grid.wait_for_workers(2);
}

/// Bytes that are not gRPC, or gRPC cut short.
fn garbage_inputs() -> Vec<Vec<u8>> {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let mut huge_frame = preface.clone();
    // A frame header claiming 16 MiB of DATA, then nothing.
    huge_frame.extend_from_slice(&[0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    let mut settings_cut = preface.clone();
    settings_cut.extend_from_slice(&[0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    let noise: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        preface[..10].to_vec(),
        huge_frame,
        settings_cut,
        noise,
        Vec::new(),
    ]
}

fn send_garbage(addr: &str) {
    use std::io::{Read, Write};
    for bytes in garbage_inputs() {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // The peer may close on us mid-write; that is a fine answer.
        let _ = s.write_all(&bytes);
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    }
}

#[test]
fn fault_garbage_and_truncated_bytes_on_every_port_are_shrugged_off() {
    let mut grid = Grid::start(2, 1);
    let mut ports = vec![grid.coordinator.addr.clone()];
    ports.extend(grid.workers.iter().map(|w| w.addr.clone()));
    for addr in &ports {
        send_garbage(addr);
    }
    // A connection left open half-way through a frame during the build.
    let mut stuck = Vec::new();
    for addr in &ports {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00")
            .unwrap();
        stuck.push(s);
    }
    build_survives(&mut grid, 1, |grid| {
        for w in &grid.workers {
            send_garbage(&w.addr);
        }
    });
    // Every server is still up and every job ran remotely.
    let status = grid.status();
    assert_eq!(status["workers"].as_array().unwrap().len(), 2, "{status}");
    assert_eq!(status["jobs_remote"].as_u64(), Some(13), "{status}");
}

#[test]
fn fault_a_compiler_the_worker_lacks_is_compiled_locally() {
    // The only worker has gcc but no g++: the coordinator knows it from
    // the worker's hello and tells the wrapper to compile a C++ file
    // locally; a C file still goes remote.
    let mut grid = Grid::start(0, 1);
    let bin = tempfile::tempdir().unwrap();
    for tool in ["gcc", "as"] {
        let real = which(tool);
        std::os::unix::fs::symlink(&real, bin.path().join(tool)).unwrap();
    }
    let path = bin.path().display().to_string();
    grid.add_worker_with(1, &[], &[("PATH", &path)]);
    grid.wait_for_workers(1);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "v.cc",
        "#include <vector>\nint n() { return std::vector<int>(3).size(); }\n",
    );
    write(dir.path(), "c.c", "int c(void) { return 4; }\n");
    let cache = dir.path().join("cache");
    let out = run_gridcc(
        dir.path(),
        &grid.url(),
        &cache,
        &["g++", "-O2", "-c", "v.cc", "-o", "grid.o"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = Command::new("g++")
        .current_dir(dir.path())
        .args(["-O2", "-c", "v.cc", "-o", "local.o"])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read(dir.path().join("grid.o")).unwrap(),
        std::fs::read(dir.path().join("local.o")).unwrap()
    );
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(0));
    let out = run_gridcc(
        dir.path(),
        &grid.url(),
        &cache,
        &["gcc", "-O2", "-c", "c.c"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(1));
}

fn which(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool} not found");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A full tmpfs, unmounted when dropped.
struct TinyFs(tempfile::TempDir);

impl TinyFs {
    fn mount() -> TinyFs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8k", "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the disk-full fault needs root to mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyFs(dir)
    }

    /// Fills it: not one byte of a job's input fits.
    fn fill(&self) {
        let _ = std::fs::write(self.0.path().join("fill"), vec![0u8; 64 << 10]);
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn fault_a_worker_with_a_full_disk_fails_its_jobs_over() {
    let full = TinyFs::mount();
    let work = full.0.path().display().to_string();
    {
        // The compile user starts the sandbox there.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(full.0.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut grid = Grid::start(0, 1);
    grid.add_worker_with(1, &["--work-dir", &work], &[]);
    grid.add_worker(1);
    grid.wait_for_workers(2);
    // Full once the worker serves: its sandbox probe at start had room.
    full.fill();
    build_survives(&mut grid, 0, |_| {});
    // Both workers are still there, the healthy one did the jobs, and the
    // full one left no temp dir behind.
    let status = grid.status();
    assert_eq!(status["workers"].as_array().unwrap().len(), 2, "{status}");
    // Workers get their ids as their hellos arrive: find it by address.
    let full_worker = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["address"] == grid.workers[0].addr.as_str())
        .unwrap_or_else(|| panic!("full worker not in {status}"));
    assert!(
        full_worker["jobs_failed"].as_u64().unwrap() > 0 && full_worker["jobs_done"] == 0,
        "the full worker was tried and failed: {status}"
    );
    let left: Vec<_> = std::fs::read_dir(full.0.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "fill")
        .collect();
    assert!(left.is_empty(), "temp dirs left on the full disk: {left:?}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run_gridcc(dir: &Path, url: &str, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir).args(args);
    gridcc_env(&mut cmd, url, cache);
    cmd.output().unwrap()
}

#[test]
fn compiles_locally_when_the_coordinator_is_down() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.c", "int x(void) { return 42; }\n");
    let out = run_gridcc(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &dir.path().join("cache"),
        &["gcc", "-c", "x.c", "-o", "x.o"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no noise on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(dir.path().join("x.o"))
        .unwrap()
        .starts_with(b"\x7fELF"));
}

#[test]
fn compile_errors_pass_through_and_are_not_retried() {
    let grid = Grid::start(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    write(
        dir.path(),
        "bad.c",
        "int f(void) { return undefined_name; }\n",
    );
    std::fs::write(dir.path().join("bad.o"), b"stale").unwrap();
    let out = run_gridcc(
        dir.path(),
        &grid.url(),
        &cache,
        &["gcc", "-c", "bad.c", "-o", "bad.o"],
    );
    let expected = Command::new("gcc")
        .current_dir(dir.path())
        .args(["-c", "bad.c", "-o", "local-bad.o"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), expected.status.code());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("undefined_name"), "{stderr}");
    assert!(
        !dir.path().join("bad.o").exists(),
        "gcc removes the output of a failed compile"
    );
    let status = grid.status();
    assert_eq!(
        status["jobs_remote"].as_u64(),
        Some(1),
        "ran once, remotely: {status}"
    );
}

#[test]
fn status_reports_workers_and_policy() {
    let grid = Grid::start(2, 3);
    let status = grid.status();
    assert_eq!(status["policy"], "least-loaded");
    let workers = status["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for w in workers {
        for key in ["id", "address", "slots", "running", "jobs_done"] {
            assert!(!w[key].is_null(), "worker has {key}: {w}");
        }
        assert_eq!(w["slots"], 3);
        assert!(w["compilers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains("gcc")));
    }
    let table = Command::new(gridcc())
        .args(["status", "--coordinator", &grid.url()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("ADDRESS") && text.contains(&grid.workers[0].addr),
        "{text}"
    );
}

#[test]
fn status_without_a_coordinator_is_a_one_line_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(gridcc())
        .args([
            "status",
            "--coordinator",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("gridcc status: coordinator unreachable"),
        "{stderr}"
    );
}

#[test]
fn a_restarted_worker_rejoins_and_a_new_coordinator_gets_workers_back() {
    let mut grid = Grid::start(1, 1);
    let port = grid.coordinator.addr.rsplit(':').next().unwrap().to_owned();
    grid.coordinator.kill();
    // Restart on the same port; the worker reconnects with backoff.
    let listen = format!("127.0.0.1:{port}");
    grid.coordinator = Proc::start(
        &sibling_bin("gridcc-coordinator"),
        &["--listen", &listen],
        &grid.dir.path().join("coordinator2.log"),
    );
    grid.wait_for_workers(1);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "y.c", "int y(void) { return 1; }\n");
    let out = run_gridcc(
        dir.path(),
        &grid.url(),
        &dir.path().join("cache"),
        &["gcc", "-O2", "-c", "y.c"],
    );
    assert!(out.status.success());
    assert!(dir.path().join("y.o").exists());
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(1));
}

/// Copies a testdata directory tree into a temp dir.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file under `dir`, by relative path.
fn tree_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The tricky project (testdata/tricky): each command line is run locally
/// and through the grid in the same directory; objects and dependency files
/// must be byte-identical, and only the assembly file may run locally.
#[test]
fn tricky_command_lines_give_identical_objects_and_dependency_files() {
    let grid = Grid::start(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("tricky");
    copy_tree(&repo_root().join("testdata/tricky"), &project);
    let abs_columns = project.join("src/columns.c").to_string_lossy().into_owned();
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "gcc",
            "-O2",
            "-g",
            "-Wall",
            "-mavx2",
            "-pthread",
            "-include",
            "config.h",
            "-isystem",
            "include/sys",
            "-iquote",
            "include/quote",
            "-MD",
            "-MT",
            "out/features.o",
            "-MF",
            "out/features.o.d",
            "-o",
            "out/features.o",
            "-c",
            "src/features.c",
        ],
        // CMake passes absolute source paths.
        vec![
            "gcc",
            "-O2",
            "-g",
            "-Wall",
            "-MD",
            "-MT",
            "out/columns.o",
            "-MF",
            "out/columns.o.d",
            "-o",
            "out/columns.o",
            "-c",
            &abs_columns,
        ],
        vec![
            "gcc",
            "-O2",
            "-g",
            "-MD",
            "-MT",
            "out/with space.o",
            "-MF",
            "out/with space.o.d",
            "-o",
            "out/with space.o",
            "-c",
            "src/with space.c",
        ],
        vec![
            "gcc",
            "-g",
            "-MD",
            "-MT",
            "out/asm.o",
            "-MF",
            "out/asm.o.d",
            "-o",
            "out/asm.o",
            "-c",
            "src/asm.S",
        ],
        vec![
            "g++",
            "-O2",
            "-g",
            "-std=c++17",
            "-MD",
            "-MT",
            "out/plus.o",
            "-MF",
            "out/plus.o.d",
            "-o",
            "out/plus.o",
            "-c",
            "src/plus.cpp",
        ],
        vec![
            "gcc",
            "-O2",
            "-g",
            "-Wall",
            "-MMD",
            "-MP",
            "-c",
            "src/warned.c",
            "-o",
            "out/warned.o",
        ],
        // A header entered twice with different text, warning in each entry.
        vec![
            "gcc",
            "-O2",
            "-g",
            "-Wall",
            "-iquote",
            "include/quote",
            "-MD",
            "-MF",
            "out/templates.o.d",
            "-c",
            "src/templates.c",
            "-o",
            "out/templates.o",
        ],
    ];
    let cache = dir.path().join("cache");
    let run_all = |through_grid: bool| -> Vec<Output> {
        let _ = std::fs::remove_dir_all(project.join("out"));
        std::fs::create_dir(project.join("out")).unwrap();
        commands
            .iter()
            .map(|argv| {
                let out = if through_grid {
                    run_gridcc(&project, &grid.url(), &cache, argv)
                } else {
                    Command::new(argv[0])
                        .args(&argv[1..])
                        .current_dir(&project)
                        .output()
                        .unwrap()
                };
                assert!(
                    out.status.success(),
                    "{argv:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out
            })
            .collect()
    };
    let local_out = run_all(false);
    let local = tree_files(&project.join("out"));
    assert_eq!(
        local.len(),
        14,
        "7 objects and 7 dependency files: {:?}",
        local.keys()
    );
    let grid_out = run_all(true);
    let remote = tree_files(&project.join("out"));
    assert_same_products(&local, &remote);
    assert!(
        remote["asm.o"].len() > 500,
        "the .S object is a real object"
    );

    // The warning reaches the terminal on success, as locally.
    let local_warning = String::from_utf8_lossy(&local_out[5].stderr).into_owned();
    let grid_warning = String::from_utf8_lossy(&grid_out[5].stderr).into_owned();
    assert!(
        grid_warning.contains("src/warned.c:3:9: warning: unused variable"),
        "{grid_warning}"
    );
    assert_eq!(
        local_warning.lines().next(),
        grid_warning.lines().next(),
        "same first diagnostic line"
    );
    // Diagnostics inside a header name the client's files and include
    // lines, never the worker's; only the source excerpts are missing.
    let diagnostics = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| {
                !l.trim_start()
                    .split(' ')
                    .next()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                    && !l.trim_start().starts_with('|')
            })
            .map(str::to_owned)
            .collect()
    };
    let local_templates = diagnostics(&local_out[6]);
    assert!(
        local_templates.contains(&"In file included from src/templates.c:11:".to_owned()),
        "{local_templates:?}"
    );
    assert_eq!(local_templates, diagnostics(&grid_out[6]));
    // Everything but the assembly file compiled remotely.
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(6));
}

#[test]
fn explain_says_why_a_command_stays_local() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.c", "#include <stdio.h>\nint a;\n");
    write(
        dir.path(),
        "m.c",
        "#define H <stdio.h>\n#if __has_include(H)\nint m;\n#endif\n",
    );
    write(
        dir.path(),
        "i.c",
        "__asm__(\".incbin \\\"/etc/hostname\\\"\");\n",
    );
    let explain = |args: &[&str]| {
        let out = Command::new(gridcc())
            .current_dir(dir.path())
            .arg("explain")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        explain(&["gcc", "-c", "a.c", "-o", "a.o"]),
        "remote (hermetic where the worker runs hermetic jobs)\n"
    );
    // A job whose inputs cannot be known goes as text, and says why.
    assert_eq!(
        explain(&["gcc", "-c", "m.c"]),
        "remote (as text: __has_include with an argument that is not a literal name)\n"
    );
    assert!(
        explain(&["gcc", "-c", "i.c"]).starts_with("local: .incbin"),
        "the assembler would read a file only the client has right"
    );
    assert!(explain(&["gcc", "a.c", "-o", "a"]).starts_with("local: "));
    // What the compile itself does with clang (explain said "remote" once).
    if Command::new("clang").arg("--version").output().is_ok() {
        assert_eq!(
            explain(&["clang", "-c", "a.c", "-o", "a.o"]),
            "local: clang compiles stay local until verified\n"
        );
    } else {
        eprintln!("clang is not installed: its explain line is not checked");
    }
    let json = explain(&["--json", "gcc", "-E", "a.c"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["decision"], "local");
    assert!(v["reason"].as_str().unwrap().contains("-E"), "{v}");
    let v: serde_json::Value =
        serde_json::from_str(&explain(&["--json", "gcc", "-c", "a.c"])).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"decision": "remote", "reason": null, "mode": "hermetic", "text_reason": null})
    );
}

#[test]
fn masquerade_symlink_finds_the_real_compiler_and_never_itself() {
    let grid = Grid::start(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let shims = dir.path().join("shims");
    std::fs::create_dir(&shims).unwrap();
    std::os::unix::fs::symlink(gridcc(), shims.join("gcc")).unwrap();
    write(dir.path(), "m.c", "int m(void) { return 7; }\n");
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new(shims.join("gcc"));
    cmd.current_dir(dir.path())
        .env("PATH", &path)
        .args(["-O2", "-c", "m.c", "-o", "m.o"]);
    gridcc_env(&mut cmd, &grid.url(), &dir.path().join("cache"));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("m.o").exists());
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(1));
    // CMake's launcher form: the compiler as an absolute path.
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir.path())
        .args(["/usr/bin/gcc", "-O2", "-c", "m.c", "-o", "m2.o"]);
    gridcc_env(&mut cmd, &grid.url(), &dir.path().join("cache"));
    assert!(cmd.output().unwrap().status.success());
    assert_eq!(
        std::fs::read(dir.path().join("m.o")).unwrap(),
        std::fs::read(dir.path().join("m2.o")).unwrap()
    );
}

#[test]
fn every_policy_builds_calc_remotely_with_identical_objects() {
    let project = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(project.path(), cache.path());
    for policy in ["round-robin", "p2c", "weighted", "lookahead"] {
        let grid = Grid::start_with(2, 1, &["--policy", policy]);
        assert_eq!(grid.status()["policy"], policy);
        let cc = format!("{} gcc", gridcc().display());
        make(project.path(), &cc, 4, Some(&grid.url()), cache.path());
        assert_same_products(&local, &build_products(project.path()));
        assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(13), "{policy}");
        clean(project.path());
    }
}

// ---- The object cache -------------------------------------------------

/// The wrapper's environment with the object cache on, with or without a
/// grid. Direct mode is off: these tests count preprocessed-key hits, and
/// whether a manifest is written depends on how old the files are (see
/// [`direct_env`]).
fn cache_env(cmd: &mut Command, url: Option<&str>, cache: &Path) {
    cmd.env("GRIDCC_CACHE_DIR", cache)
        .env("GRIDCC_DIRECT", "0")
        .env_remove("GRIDCC_CACHE")
        .env_remove("GRIDCC_CACHE_SIZE")
        .env_remove("GRIDCC_DISABLE")
        .env_remove("GRIDCC_LOG");
    match url {
        Some(url) => cmd.env("GRIDCC_COORDINATOR", url),
        None => cmd.env_remove("GRIDCC_COORDINATOR"),
    };
}

/// `make CC="gridcc gcc"` with the cache on; returns make's output.
fn cached_make(dir: &Path, url: Option<&str>, cache: &Path) -> Output {
    let mut cmd = Command::new("make");
    cmd.current_dir(dir)
        .arg("-j4")
        .arg(format!("CC={} gcc", gridcc().display()));
    cache_env(&mut cmd, url, cache);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cached make failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn cached_gridcc(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir).args(args);
    cache_env(&mut cmd, None, cache);
    cmd.output().unwrap()
}

fn cache_stats(cache: &Path, zero: bool) -> serde_json::Value {
    let mut cmd = Command::new(gridcc());
    cmd.args(["stats", "--json"]);
    if zero {
        cmd.arg("--zero");
    }
    cache_env(&mut cmd, None, cache);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Entry files (not temp files) under the cache's objects directory.
fn cache_entries(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(shards) = std::fs::read_dir(cache.join("objects")) else {
        return found;
    };
    for shard in shards.flatten().filter(|s| s.path().is_dir()) {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            found.push(f.path());
        }
    }
    found
}

fn warning_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("warning:"))
        .map(str::to_owned)
        .collect()
}

/// With no coordinator: a cold build fills the cache, a rebuild after
/// `make clean` is all hits with identical objects and dependency files
/// and the same warning.
#[test]
fn cache_without_a_grid_rebuilds_from_hits_with_identical_files() {
    let project = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(project.path(), cache.path());

    let cold = cached_make(project.path(), None, cache.path());
    assert_same_products(&local, &build_products(project.path()));
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["misses"], 13, "{s:#}");
    assert_eq!(s["compiles_local"], 13, "{s:#}");
    assert_eq!(s["hits_local"], 0, "{s:#}");
    assert_eq!(cache_entries(cache.path()).len(), 13);

    clean(project.path());
    let warm = cached_make(project.path(), None, cache.path());
    assert_same_products(&local, &build_products(project.path()));
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["hits_local"], 13, "{s:#}");
    assert_eq!(s["misses"], 13, "{s:#}");
    assert_eq!(s["compiles_local"], 13, "no compile on the rebuild: {s:#}");
    assert_eq!(s["not_distributable"]["Linking"], 2, "{s:#}");
    // warn.c's deliberate warning is replayed on the hit.
    assert_eq!(warning_lines(&cold), warning_lines(&warm));
    assert_eq!(warning_lines(&warm).len(), 1, "{warm:?}");

    // --zero resets the counters, not the cache.
    let z = cache_stats(cache.path(), true);
    assert_eq!(z["hits_local"], 0);
    assert!(z["cache_bytes"].as_u64().unwrap() > 0);
    assert!(project.path().join("calc").exists());
}

/// Through a real grid: the cold build compiles remotely and stores; the
/// rebuild sends nothing to the workers.
#[test]
fn cache_through_a_grid_stores_remote_results_and_answers_rebuilds() {
    let grid = Grid::start(1, 2);
    let project = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(project.path(), cache.path());

    let url = grid.url();
    cached_make(project.path(), Some(&url), cache.path());
    assert_same_products(&local, &build_products(project.path()));
    assert_eq!(Grid::jobs_done(&grid.status()), vec![13]);
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["compiles_remote"], 13, "{s:#}");
    assert!(s["bytes_sent"].as_u64().unwrap() > 0, "{s:#}");
    assert!(s["bytes_received"].as_u64().unwrap() > 0, "{s:#}");

    clean(project.path());
    cached_make(project.path(), Some(&url), cache.path());
    assert_same_products(&local, &build_products(project.path()));
    assert_eq!(
        Grid::jobs_done(&grid.status()),
        vec![13],
        "no new remote job"
    );
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["hits_local"], 13, "{s:#}");
    assert_eq!(s["compiles_remote"], 13, "{s:#}");
}

/// Touching a header makes make rerun exactly its includers, which hit;
/// changing its content while keeping its size and mtime is a miss for
/// exactly those objects, and they match a local build of the edited tree.
#[test]
fn header_edits_are_detected_by_content_not_by_stat() {
    let project = calc_copy();
    let dir = project.path();
    let cache = tempfile::tempdir().unwrap();
    cached_make(dir, None, cache.path());
    // Includers of hashtab.h, from the dependency files.
    let includers: Vec<String> = build_products(dir)
        .into_iter()
        .filter(|(name, text)| {
            name.ends_with(".d") && String::from_utf8_lossy(text).contains("hashtab.h")
        })
        .map(|(name, _)| name.replace(".d", ".o"))
        .collect();
    assert!(
        includers.len() >= 2 && includers.len() < 13,
        "{includers:?}"
    );
    let before = build_products(dir);

    // 1. touch: make reruns exactly the includers; all hits.
    cache_stats(cache.path(), true);
    let header = dir.join("hashtab.h");
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&header)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = cached_make(dir, None, cache.path());
    let rerun: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" -c "))
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    let mut sorted = rerun.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        includers,
        "make output:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["hits_local"], includers.len() as u64, "{s:#}");
    assert_eq!(s["misses"], 0, "{s:#}");
    assert_eq!(build_products(dir), before);

    // 2. Same size, same mtime, different content.
    let text = std::fs::read_to_string(&header).unwrap();
    let edited = text.replace("    int tombstone;", "   char tombstone;");
    assert_ne!(edited, text);
    assert_eq!(edited.len(), text.len());
    let mtime = std::fs::metadata(&header).unwrap().modified().unwrap();
    std::fs::write(&header, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&header)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&header).unwrap().len(), text.len() as u64);
    clean(dir);
    cache_stats(cache.path(), true);
    cached_make(dir, None, cache.path());
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["misses"], includers.len() as u64, "{s:#}");
    assert_eq!(s["hits_local"], 13 - includers.len() as u64, "{s:#}");
    let grid_built = build_products(dir);
    clean(dir);
    let local = local_build(dir, cache.path());
    assert_same_products(&local, &grid_built);
    // The struct's layout changed: hashtab.o's code differs (includers
    // that never use the struct may come out the same; they were still
    // recompiled, as the miss count shows).
    assert!(
        before["hashtab.o"] != grid_built["hashtab.o"],
        "hashtab.o must have changed"
    );
}

/// A corrupted entry is reported in one line, removed and recompiled,
/// never returned; the next compile hits the fresh entry.
#[test]
fn a_corrupted_entry_is_recompiled_with_a_one_line_warning() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    write(
        dir.path(),
        "x.c",
        "int x(void) { return 42; }\nint y(int a) { return a * 3; }\n",
    );
    let compile = |out: &str| {
        cached_gridcc(
            dir.path(),
            &cache,
            &["gcc", "-O2", "-g", "-c", "x.c", "-o", out],
        )
    };
    let reference = {
        let out = Command::new("gcc")
            .current_dir(dir.path())
            .args(["-O2", "-g", "-c", "x.c", "-o", "ref.o"])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::read(dir.path().join("ref.o")).unwrap()
    };
    let first = compile("x.o");
    assert!(
        first.status.success() && first.stderr.is_empty(),
        "{first:?}"
    );
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    let key = entry.file_name().unwrap().to_str().unwrap().to_owned();

    for damage in ["flip", "truncate"] {
        let mut bytes = std::fs::read(entry).unwrap();
        match damage {
            "flip" => {
                let at = bytes.len() / 3;
                bytes[at] ^= 0x40;
            }
            _ => bytes.truncate(bytes.len() - 7),
        }
        std::fs::write(entry, &bytes).unwrap();
        std::fs::remove_file(dir.path().join("x.o")).unwrap();
        let out = compile("x.o");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("gridcc: cache entry {key} is corrupt; recompiling\n"),
            "{damage}"
        );
        assert_eq!(std::fs::read(dir.path().join("x.o")).unwrap(), reference);
        // The entry was rewritten; the next compile hits it silently.
        let again = compile("x.o");
        assert!(
            again.status.success() && again.stderr.is_empty(),
            "{again:?}"
        );
        assert_eq!(std::fs::read(dir.path().join("x.o")).unwrap(), reference);
    }
    let s = cache_stats(&cache, false);
    assert_eq!(s["corrupt_entries"], 2, "{s:#}");
    assert_eq!(s["hits_local"], 2, "{s:#}");
}

/// 16 wrapper processes compiling the same key at once leave one valid
/// entry (no temp files) and 16 correct objects.
#[test]
fn sixteen_concurrent_compiles_of_one_key_leave_one_valid_entry() {
    let project = calc_copy();
    let dir = project.path();
    let cache = dir.join("cache");
    let out = Command::new("gcc")
        .current_dir(dir)
        .args(["-O2", "-g", "-c", "hashtab.c", "-o", "ref.o"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let reference = std::fs::read(dir.join("ref.o")).unwrap();
    let children: Vec<Child> = (0..16)
        .map(|i| {
            let mut cmd = Command::new(gridcc());
            cmd.current_dir(dir)
                .args(["gcc", "-O2", "-g", "-c", "hashtab.c", "-o"])
                .arg(format!("out{i}.o"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cache_env(&mut cmd, None, &cache);
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }
    for i in 0..16 {
        assert_eq!(
            std::fs::read(dir.join(format!("out{i}.o"))).unwrap(),
            reference,
            "out{i}.o"
        );
    }
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let s = cache_stats(&cache, false);
    assert_eq!(
        s["hits_local"].as_u64().unwrap() + s["misses"].as_u64().unwrap(),
        16,
        "{s:#}"
    );
    // The one entry is valid: the next compile hits it.
    let out = cached_gridcc(
        dir,
        &cache,
        &["gcc", "-O2", "-g", "-c", "hashtab.c", "-o", "last.o"],
    );
    assert!(out.status.success() && out.stderr.is_empty());
    assert_eq!(std::fs::read(dir.join("last.o")).unwrap(), reference);
    let after = cache_stats(&cache, false);
    assert_eq!(
        after["hits_local"].as_u64().unwrap(),
        s["hits_local"].as_u64().unwrap() + 1
    );
}

/// GRIDCC_DISABLE=1 and GRIDCC_CACHE=0 store nothing; __DATE__ in
/// directives-only text is never cached; a different cwd under -g misses.
#[test]
fn what_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    write(dir.path(), "x.c", "int x(void) { return 42; }\n");
    for (var, value) in [("GRIDCC_DISABLE", "1"), ("GRIDCC_CACHE", "0")] {
        let mut cmd = Command::new(gridcc());
        cmd.current_dir(dir.path())
            .args(["gcc", "-c", "x.c", "-o", "x.o"]);
        cache_env(&mut cmd, None, &cache);
        let out = cmd.env(var, value).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(cache_entries(&cache).is_empty(), "{var}={value}");
    }

    write(
        dir.path(),
        "d.c",
        "const char *built = __DATE__ \" \" __TIME__;\n",
    );
    for _ in 0..2 {
        let out = cached_gridcc(dir.path(), &cache, &["gcc", "-c", "d.c", "-o", "d.o"]);
        assert!(out.status.success(), "{out:?}");
    }
    assert!(cache_entries(&cache).is_empty());
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_local"], 0, "{s:#}");
    assert_eq!(
        s["not_cached"]["__DATE__, __TIME__ or __TIMESTAMP__ in the source"], 2,
        "{s:#}"
    );

    // -g records the working directory: another directory is another key.
    let other = dir.path().join("sub");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(dir.path().join("x.c"), other.join("x.c")).unwrap();
    for d in [dir.path(), other.as_path(), dir.path()] {
        let out = cached_gridcc(d, &cache, &["gcc", "-g", "-c", "x.c", "-o", "x.o"]);
        assert!(out.status.success(), "{out:?}");
    }
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_local"], 1, "{s:#}");
    assert_eq!(s["misses"], 2, "{s:#}");
}

// Observability (issue 7): Prometheus metrics on both servers and
// `gridcc status --watch`.

/// One HTTP/1.1 request over a plain socket; the whole response.
fn http(addr: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// `GET /metrics`: checks the response and every line of the exposition
/// (HELP and TYPE before a family's samples, names and labels well formed,
/// values numbers); returns the samples by `name{labels}`.
fn scrape(addr: &str) -> BTreeMap<String, f64> {
    let response = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: test\r\nAccept: text/plain\r\n\r\n",
    );
    let (head, body) = response.split_once("\r\n\r\n").expect("no header end");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(length, body.len());
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.starts_with("gridcc_")
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            helped.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(name_ok(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(typed.insert(name.to_owned(), kind.to_owned()).is_none());
        } else {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let name = series.split('{').next().unwrap();
            assert!(name_ok(name), "{line}");
            if let Some(labels) = series.strip_prefix(name) {
                if !labels.is_empty() {
                    assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                    for pair in labels[1..labels.len() - 1].split(',') {
                        let (k, v) = pair.split_once('=').expect(line);
                        assert!(name_ok(&format!("gridcc_{k}")), "{line}");
                        assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                    }
                }
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            let kind = typed
                .get(family)
                .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
            if kind == "counter" {
                assert!(name.ends_with("_total") && value >= 0.0, "{line}");
            }
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "duplicate {line}"
            );
        }
    }
    samples
}

fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing in {samples:#?}"))
}

#[test]
fn metrics_count_the_jobs_on_both_servers_and_survive_garbage() {
    let mut grid = Grid::start_with(0, 1, &["--metrics-listen", "127.0.0.1:0"]);
    let coordinator_metrics = grid.coordinator.announced("metrics listening on ");
    grid.add_worker_with(2, &["--metrics-listen", "127.0.0.1:0"], &[]);
    let worker_metrics = grid.workers[0].announced("metrics listening on ");
    grid.wait_for_workers(1);
    let worker_addr = grid.workers[0].addr.clone();

    let before = scrape(&coordinator_metrics);
    assert_eq!(sample(&before, "gridcc_coordinator_workers"), 1.0);
    assert_eq!(sample(&before, "gridcc_coordinator_slots"), 2.0);
    assert_eq!(
        sample(
            &before,
            &format!("gridcc_coordinator_worker_slots{{worker=\"{worker_addr}\"}}")
        ),
        2.0
    );

    // Three good files and one compile error, all through the grid.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for i in 0..3 {
        let name = format!("m{i}.c");
        write(
            dir.path(),
            &name,
            &format!("int m{i}(void) {{ return {i}; }}\n"),
        );
        let out = run_gridcc(dir.path(), &grid.url(), &cache, &["gcc", "-c", &name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    write(dir.path(), "bad.c", "int bad(void) { return nope; }\n");
    let out = run_gridcc(dir.path(), &grid.url(), &cache, &["gcc", "-c", "bad.c"]);
    assert_eq!(out.status.code(), Some(1));

    // Garbage on both metrics ports, a wrong path, a wrong method, and a
    // connection that just hangs up.
    for addr in [&coordinator_metrics, &worker_metrics] {
        send_garbage(addr);
        let reply = http(addr, b"GET /nope HTTP/1.1\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
        let reply = http(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 405 "), "{reply}");
        drop(std::net::TcpStream::connect(addr).unwrap());
    }

    // The coordinator hears of the last job finishing over the worker's
    // session, a moment after the client has its result.
    let deadline = Instant::now() + Duration::from_secs(20);
    let coordinator = loop {
        let m = scrape(&coordinator_metrics);
        if sample(
            &m,
            "gridcc_coordinator_jobs_total{outcome=\"compile_error\"}",
        ) >= 1.0
            && sample(&m, "gridcc_coordinator_jobs_total{outcome=\"ok\"}") >= 3.0
        {
            break m;
        }
        assert!(Instant::now() < deadline, "jobs not counted: {m:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for (series, value) in [
        ("gridcc_coordinator_jobs_total{outcome=\"ok\"}", 3.0),
        (
            "gridcc_coordinator_jobs_total{outcome=\"compile_error\"}",
            1.0,
        ),
        ("gridcc_coordinator_jobs_total{outcome=\"lost\"}", 0.0),
        ("gridcc_coordinator_assign_total{result=\"placed\"}", 4.0),
        ("gridcc_coordinator_assign_total{result=\"no_worker\"}", 0.0),
        ("gridcc_coordinator_assign_wait_seconds_count", 4.0),
        ("gridcc_coordinator_slots_busy", 0.0),
        ("gridcc_coordinator_workers", 1.0),
    ] {
        assert_eq!(sample(&coordinator, series), value, "{series}");
    }
    assert!(
        sample(
            &coordinator,
            "gridcc_coordinator_assigned_source_bytes_total"
        ) > 0.0
    );

    let worker = scrape(&worker_metrics);
    for (series, value) in [
        ("gridcc_worker_jobs_total{outcome=\"ok\"}", 3.0),
        ("gridcc_worker_jobs_total{outcome=\"compile_error\"}", 1.0),
        ("gridcc_worker_jobs_total{outcome=\"refused\"}", 0.0),
        ("gridcc_worker_compile_seconds_count", 4.0),
        ("gridcc_worker_compile_seconds_bucket{le=\"+Inf\"}", 4.0),
        ("gridcc_worker_slots", 2.0),
        ("gridcc_worker_slots_busy", 0.0),
        ("gridcc_worker_coordinator_connected", 1.0),
    ] {
        assert_eq!(sample(&worker, series), value, "{series}");
    }
    assert!(sample(&worker, "gridcc_worker_received_bytes_total") > 0.0);
    assert!(sample(&worker, "gridcc_worker_sent_bytes_total") > 0.0);
    assert!(sample(&worker, "gridcc_worker_compile_seconds_sum") > 0.0);
    // Job dirs are removed in the background after the answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&scrape(&worker_metrics), "gridcc_worker_temp_dirs") != 0.0 {
        assert!(Instant::now() < deadline, "temp dirs still counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both gRPC servers are still serving.
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(4));
}

/// Reads `child`'s stdout on a thread, line by line, into a shared buffer.
fn collect_stdout(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&out);
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    out
}

fn wait_for_text(out: &std::sync::Mutex<String>, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok(&out.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; output so far:\n{}",
            out.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn status_watch_redraws_until_interrupted_and_survives_a_lost_coordinator() {
    let mut grid = Grid::start(1, 2);
    let help = Command::new(gridcc())
        .args(["status", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--watch [SECONDS]"));

    let mut watch = Command::new(gridcc())
        .args(["status", "--watch", "0.2", "--coordinator", &grid.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect_stdout(&mut watch);
    let frames = |text: &str| text.matches("BUSY/SLOTS").count();
    wait_for_text(&out, "two frames", |t| frames(t) >= 2);
    {
        let text = out.lock().unwrap();
        // Not a terminal: no escape codes, frames separated by a blank line.
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("\n\ncoordinator "), "{text}");
        assert!(text.contains(&grid.workers[0].addr), "{text}");
        assert!(text.contains("0/2"), "{text}");
        assert!(text.contains("jobs/s: 0.0 compiled remotely"), "{text}");
    }
    grid.coordinator.kill();
    wait_for_text(&out, "the unreachable frame", |t| {
        t.contains("coordinator unreachable")
    });
    signal_pid(watch.id(), "INT");
    let status = wait_timeout(&mut watch, Duration::from_secs(10));
    assert!(
        matches!(status.code(), Some(0 | 130)),
        "watch exited with {status:?}"
    );

    // SIGTERM ends it too.
    let grid = Grid::start(1, 1);
    let mut watch = Command::new(gridcc())
        .args(["status", "--watch=0.2", "--coordinator", &grid.url()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect_stdout(&mut watch);
    wait_for_text(&out, "a frame", |t| frames(t) >= 1);
    signal_pid(watch.id(), "TERM");
    let status = wait_timeout(&mut watch, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn status_watch_without_a_coordinator_is_a_one_line_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(gridcc())
        .args([
            "status",
            "--watch",
            "--coordinator",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("gridcc status: coordinator unreachable"),
        "{stderr}"
    );
    for bad in [&["--watch", "0"][..], &["--watch=x"], &["--bogus"]] {
        let out = Command::new(gridcc())
            .arg("status")
            .args(bad)
            .args(["--coordinator", "http://127.0.0.1:1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

fn signal_pid(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} failed");
}

/// Waits for `child` to exit; kills it and fails after `limit`.
fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- Direct mode ------------------------------------------------------

/// The wrapper's environment with the cache and direct mode on, no grid.
fn direct_env(cmd: &mut Command, cache: &Path) {
    cache_env(cmd, None, cache);
    cmd.env_remove("GRIDCC_DIRECT");
}

fn direct_gridcc(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir).args(args);
    direct_env(&mut cmd, cache);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    out
}

/// The newest mtime or ctime of anything under `dir`.
fn newest_change(dir: &Path) -> std::time::SystemTime {
    use std::os::unix::fs::MetadataExt;
    let mut newest = std::time::UNIX_EPOCH;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let ctime = std::time::UNIX_EPOCH
                + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32);
            newest = newest.max(ctime).max(meta.modified().unwrap());
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    newest
}

/// Waits until every file under `dir` is older than direct mode's "file
/// too new" margin (1 s, mtime and ctime), so the next compile may write a
/// manifest. A wait for the clock, not for a process.
fn age(dir: &Path) {
    let ready = newest_change(dir) + Duration::from_millis(1100);
    while std::time::SystemTime::now() < ready {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The real compiler's object for `args` (the first word is the
/// compiler), written to a scratch name in `dir` and removed.
fn fresh_object(dir: &Path, args: &[&str]) -> Vec<u8> {
    let mut args: Vec<&str> = args.to_vec();
    let at = args.iter().position(|a| *a == "-o").unwrap();
    args[at + 1] = "fresh.o";
    let out = Command::new(args[0])
        .current_dir(dir)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let object = std::fs::read(dir.join("fresh.o")).unwrap();
    std::fs::remove_file(dir.join("fresh.o")).unwrap();
    object
}

/// Files under the cache's manifests directory.
fn manifests(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(shards) = std::fs::read_dir(cache.join("manifests")) else {
        return found;
    };
    for shard in shards.flatten() {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            if !f.file_name().to_string_lossy().starts_with('.') {
                found.push(f.path());
            }
        }
    }
    found
}

/// A second compile of the same file is a direct hit: no compiler process
/// runs at all (a logging compiler script proves it), and the object and
/// the `-MD` dependency file are byte-identical to a plain gcc run's.
#[test]
fn direct_mode_hits_without_running_the_preprocessor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    std::fs::create_dir(d.join("inc")).unwrap();
    write(d, "inc/h.h", "#define GREETING \"hi\"\nint twice(int);\n");
    write(
        d,
        "x.c",
        "#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n#include \"h.h\"\n\
         int twice(int v) { return 2 * v; }\n\
         int main(void) { printf(\"%s %zu\\n\", GREETING, strlen(GREETING)); return twice(getpid() & 1); }\n",
    );
    let log = d.join("cc.log");
    let fake = write(
        d,
        "fakecc",
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec gcc \"$@\"\n",
            log.display()
        ),
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fake = fake.display().to_string();
    let line = ["-O2", "-g", "-Iinc", "-MD", "-c", "x.c", "-o", "x.o"];
    let with_fake: Vec<&str> = [&[fake.as_str()][..], &line[..]].concat();

    let reference = Command::new("gcc")
        .current_dir(d)
        .args(line)
        .output()
        .unwrap();
    assert!(reference.status.success(), "{reference:?}");
    let ref_o = std::fs::read(d.join("x.o")).unwrap();
    let ref_d = std::fs::read(d.join("x.d")).unwrap();
    let remove_outputs = || {
        std::fs::remove_file(d.join("x.o")).unwrap();
        std::fs::remove_file(d.join("x.d")).unwrap();
    };
    remove_outputs();
    age(d);

    direct_gridcc(d, &cache, &with_fake);
    assert_eq!(std::fs::read(d.join("x.o")).unwrap(), ref_o);
    assert_eq!(std::fs::read(d.join("x.d")).unwrap(), ref_d);
    let s = cache_stats(&cache, false);
    assert_eq!(s["misses"], 1, "{s:#}");
    assert_eq!(s["direct_misses"]["no manifest yet"], 1, "{s:#}");
    assert_eq!(manifests(&cache).len(), 1, "{s:#}");
    let runs = std::fs::read_to_string(&log).unwrap();
    assert!(runs.lines().any(|l| l.contains("-E")), "{runs}");

    remove_outputs();
    let out = direct_gridcc(d, &cache, &with_fake);
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        runs,
        "a direct hit runs no compiler"
    );
    assert_eq!(std::fs::read(d.join("x.o")).unwrap(), ref_o);
    assert_eq!(std::fs::read(d.join("x.d")).unwrap(), ref_d);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "{s:#}");
    assert_eq!(s["hits_local"], 0, "{s:#}");

    // With GRIDCC_DIRECT=0 the same compile preprocesses (and hits the
    // preprocessed key): the log shows it.
    remove_outputs();
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(d).args(with_fake);
    direct_env(&mut cmd, &cache);
    let out = cmd.env("GRIDCC_DIRECT", "0").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(after[runs.len()..].contains("-E"), "{after}");
    assert_eq!(std::fs::read(d.join("x.o")).unwrap(), ref_o);
    assert_eq!(std::fs::read(d.join("x.d")).unwrap(), ref_d);
    let s = cache_stats(&cache, false);
    assert_eq!(
        (s["hits_direct"].as_u64(), s["hits_local"].as_u64()),
        (Some(1), Some(1)),
        "{s:#}"
    );
}

/// A header edited to new content of the same size, its mtime put back
/// (`touch -r`), is a direct miss and compiles the edited header.
#[test]
fn direct_mode_sees_a_header_edit_that_keeps_size_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    let header = write(d, "h.h", "#define V 1\n");
    write(d, "x.c", "#include \"h.h\"\nint v = V;\n");
    let line = ["gcc", "-O2", "-c", "x.c", "-o", "x.o"];
    age(d);
    direct_gridcc(d, &cache, &line);
    direct_gridcc(d, &cache, &line);
    assert_eq!(cache_stats(&cache, false)["hits_direct"], 1);
    let before = std::fs::read(d.join("x.o")).unwrap();

    let mtime = std::fs::metadata(&header).unwrap().modified().unwrap();
    std::fs::write(&header, "#define V 2\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&header)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let meta = std::fs::metadata(&header).unwrap();
    assert_eq!((meta.len(), meta.modified().unwrap()), (12, mtime));
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "no direct hit for the edit: {s:#}");
    assert_eq!(s["direct_misses"]["a header changed"], 1, "{s:#}");
    let after = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(after, fresh_object(d, &line));
    assert_ne!(after, before);
}

/// A new header of the same name earlier in the include path (in a `-I`
/// directory that did not exist, then in an `-iquote` directory, then in
/// the including file's own directory) is a direct miss, and the object is
/// the one gcc makes with the new header.
#[test]
fn direct_mode_sees_a_new_header_earlier_in_the_include_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    for sub in ["inc", "src"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    write(d, "inc/h.h", "#define V 1\n");
    write(d, "src/x.c", "#include \"h.h\"\nint v = V;\n");
    let line = [
        "gcc", "-O2", "-iquote", "quote", "-Ifirst", "-Iinc", "-c", "src/x.c", "-o", "x.o",
    ];
    let objects: Vec<Vec<u8>> = ["first/h.h", "quote/h.h", "src/h.h"]
        .iter()
        .enumerate()
        .map(|(i, shadow)| {
            age(d);
            direct_gridcc(d, &cache, &line);
            direct_gridcc(d, &cache, &line);
            let s = cache_stats(&cache, false);
            assert_eq!(s["hits_direct"], i as u64 + 1, "{shadow}: {s:#}");
            let before = std::fs::read(d.join("x.o")).unwrap();

            std::fs::create_dir_all(d.join(shadow).parent().unwrap()).unwrap();
            write(d, shadow, &format!("#define V {}\n", i + 2));
            direct_gridcc(d, &cache, &line);
            let s = cache_stats(&cache, false);
            assert_eq!(s["hits_direct"], i as u64 + 1, "{shadow}: {s:#}");
            let object = std::fs::read(d.join("x.o")).unwrap();
            assert_eq!(object, fresh_object(d, &line), "{shadow}");
            assert_ne!(object, before, "{shadow}");
            object
        })
        .collect();
    assert_ne!(objects[0], objects[1]);
    assert_ne!(objects[1], objects[2]);
    // Each shadowing header, and the first compile of each later round
    // (its manifest still expects the previous shadow missing).
    let s = cache_stats(&cache, false);
    assert_eq!(
        s["direct_misses"]["an include path changed (a header appeared, vanished or moved)"], 5,
        "{s:#}"
    );
}

/// A header that `__has_include` did not find, created later, is a direct
/// miss; glibc's own `__has_include` (in `unistd.h`) does not stop direct
/// hits.
#[test]
fn direct_mode_sees_a_header_that_has_include_now_finds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    std::fs::create_dir_all(d.join("inc")).unwrap();
    std::fs::create_dir_all(d.join("sys")).unwrap();
    write(
        d,
        "x.c",
        "#include <unistd.h>\n\
         #if __has_include(\"opt.h\")\n#include \"opt.h\"\n#else\n#define OPT 0\n#endif\n\
         #if __has_include(<more.h>)\n#define MORE 1\n#else\n#define MORE 0\n#endif\n\
         int opt = OPT + MORE;\nint pid(void) { return getpid(); }\n",
    );
    let line = [
        "gcc", "-O2", "-Iinc", "-isystem", "sys", "-c", "x.c", "-o", "x.o",
    ];
    for (i, (path, text)) in [("inc/opt.h", "#define OPT 5\n"), ("sys/more.h", "\n")]
        .iter()
        .enumerate()
    {
        age(d);
        direct_gridcc(d, &cache, &line);
        direct_gridcc(d, &cache, &line);
        let s = cache_stats(&cache, false);
        assert_eq!(s["hits_direct"], i as u64 + 1, "{path}: {s:#}");
        let before = std::fs::read(d.join("x.o")).unwrap();
        write(d, path, text);
        direct_gridcc(d, &cache, &line);
        let s = cache_stats(&cache, false);
        assert_eq!(s["hits_direct"], i as u64 + 1, "{path}: {s:#}");
        let object = std::fs::read(d.join("x.o")).unwrap();
        assert_eq!(object, fresh_object(d, &line), "{path}");
        assert_ne!(object, before, "{path}");
    }
}

/// `__DATE__`, `__TIME__` or `__TIMESTAMP__`, in the source or in a header, is never a
/// direct hit: not in directives-only mode (where the object is not cached
/// either) and not with fully preprocessed text (`-pedantic`), where the
/// expanded date is in the object key but would not be in a manifest's.
#[test]
fn direct_mode_never_answers_a_compile_that_uses_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    write(d, "d.c", "const char *built = __DATE__;\n");
    write(d, "t.h", "#define WHEN __TIME__\n");
    write(d, "e.c", "#include \"t.h\"\nconst char *when = WHEN;\n");
    write(d, "s.c", "const char *stamp = __TIMESTAMP__;\n");
    age(d);
    for source in ["d.c", "e.c", "s.c"] {
        for flags in [&["-O2"][..], &["-O2", "-pedantic"][..]] {
            let line = [&["gcc"][..], flags, &["-c", source, "-o", "x.o"][..]].concat();
            for _ in 0..3 {
                direct_gridcc(d, &cache, &line);
            }
        }
    }
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 0, "{s:#}");
    assert!(manifests(&cache).is_empty(), "{s:#}");
    assert_eq!(
        s["direct_not_recorded"]["__DATE__, __TIME__ or __TIMESTAMP__ in the source or a header"],
        9,
        "the -pedantic compiles: {s:#}"
    );
}

/// A corrupt manifest is reported in one line, removed, and the compile
/// goes on with the preprocessed key; the manifest written again answers
/// the next compile.
#[test]
fn a_corrupt_manifest_is_reported_once_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    write(
        d,
        "x.c",
        "#include <string.h>\nint n(const char *s) { return strlen(s); }\n",
    );
    let line = ["gcc", "-O2", "-g", "-c", "x.c", "-o", "x.o"];
    let reference = fresh_object(d, &line);
    age(d);
    direct_gridcc(d, &cache, &line);
    let found = manifests(&cache);
    assert_eq!(found.len(), 1);
    let manifest = &found[0];
    let key = manifest.file_name().unwrap().to_str().unwrap().to_owned();
    for damage in ["flip", "truncate"] {
        let mut bytes = std::fs::read(manifest).unwrap();
        match damage {
            "flip" => {
                let at = bytes.len() / 2;
                bytes[at] ^= 0x10;
            }
            _ => bytes.truncate(bytes.len() - 5),
        }
        std::fs::write(manifest, &bytes).unwrap();
        std::fs::remove_file(d.join("x.o")).unwrap();
        let out = direct_gridcc(d, &cache, &line);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("gridcc: direct-mode manifest {key} is corrupt; preprocessing\n"),
            "{damage}"
        );
        assert_eq!(std::fs::read(d.join("x.o")).unwrap(), reference, "{damage}");
        let again = direct_gridcc(d, &cache, &line);
        assert!(again.stderr.is_empty(), "{damage}: {again:?}");
        assert_eq!(std::fs::read(d.join("x.o")).unwrap(), reference, "{damage}");
    }
    let s = cache_stats(&cache, false);
    assert_eq!(s["corrupt_entries"], 2, "{s:#}");
    assert_eq!(s["direct_misses"]["manifest corrupt"], 2, "{s:#}");
    assert_eq!(s["hits_local"], 2, "{s:#}");
    assert_eq!(s["hits_direct"], 2, "{s:#}");
}

/// calc rebuilt after `make clean` is all direct hits, with objects and
/// dependency files identical to a local build's.
#[test]
fn direct_mode_rebuilds_calc_with_identical_files() {
    let project = calc_copy();
    let dir = project.path();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(dir, cache.path());
    age(dir);
    let direct_make = || {
        let mut cmd = Command::new("make");
        cmd.current_dir(dir)
            .arg("-j4")
            .arg(format!("CC={} gcc", gridcc().display()));
        direct_env(&mut cmd, cache.path());
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    direct_make();
    assert_same_products(&local, &build_products(dir));
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["misses"], 13, "{s:#}");
    assert_eq!(manifests(cache.path()).len(), 13, "{s:#}");
    clean(dir);
    direct_make();
    assert_same_products(&local, &build_products(dir));
    let s = cache_stats(cache.path(), false);
    assert_eq!(s["hits_direct"], 13, "{s:#}");
    assert_eq!(s["misses"], 13, "{s:#}");
}

/// `#line` renames the current file in the markers, never where gcc looks:
/// a quote include still starts in the real file's directory. The
/// directory the new name points at is probed anyway, so a header created
/// there (which plain gcc ignores) is a direct miss, not a wrong answer,
/// and the object stays the one gcc makes.
#[test]
fn direct_mode_is_not_fooled_by_line_directives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    std::fs::create_dir(d.join("src")).unwrap();
    write(d, "src/h.h", "#define V 1\n");
    write(
        d,
        "src/x.c",
        "#line 1 \"gen/other.c\"\n#include \"h.h\"\nint v = V;\nconst char *f = __FILE__;\n",
    );
    let line = ["gcc", "-O2", "-c", "src/x.c", "-o", "x.o"];
    age(d);
    direct_gridcc(d, &cache, &line);
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "{s:#}");
    let before = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(before, fresh_object(d, &line));

    std::fs::create_dir(d.join("gen")).unwrap();
    write(d, "gen/h.h", "#define V 2\n");
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "{s:#}");
    assert_eq!(
        s["direct_misses"]["an include path changed (a header appeared, vanished or moved)"], 1,
        "{s:#}"
    );
    let after = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(after, fresh_object(d, &line));
    assert_eq!(after, before, "gcc still reads src/h.h");

    // The real directory's header is still the one that counts.
    age(d);
    direct_gridcc(d, &cache, &line);
    direct_gridcc(d, &cache, &line);
    assert_eq!(cache_stats(&cache, false)["hits_direct"], 2);
    write(d, "src/h.h", "#define V 3\n");
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 2, "{s:#}");
    let edited = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(edited, fresh_object(d, &line));
    assert_ne!(edited, before);
}

/// [`direct_gridcc`] with extra environment variables.
fn direct_gridcc_env(dir: &Path, cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir).args(args);
    direct_env(&mut cmd, cache);
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{args:?} {env:?}: {out:?}");
    out
}

/// [`fresh_object`] with extra environment variables.
fn fresh_object_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let mut args: Vec<&str> = args.to_vec();
    let at = args.iter().position(|a| *a == "-o").unwrap();
    args[at + 1] = "fresh.o";
    let out = Command::new(args[0])
        .current_dir(dir)
        .args(&args[1..])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let object = std::fs::read(dir.join("fresh.o")).unwrap();
    std::fs::remove_file(dir.join("fresh.o")).unwrap();
    object
}

/// A header found through `__FILE__`'s spelling: an identical copy created
/// earlier in the path changes no file's contents, only the path gcc
/// finds (and `__FILE__` expands to). That is a direct miss, and the object
/// names the new path as gcc's does.
#[test]
fn direct_mode_sees_an_identical_header_copy_whose_path_is_in_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    std::fs::create_dir(d.join("inc")).unwrap();
    let text = "static const char *where = __FILE__;\nconst char *f(void) { return where; }\n";
    write(d, "inc/f.h", text);
    write(d, "x.c", "#include <f.h>\n");
    let line = ["gcc", "-O2", "-Ifirst", "-Iinc", "-c", "x.c", "-o", "x.o"];
    age(d);
    direct_gridcc(d, &cache, &line);
    direct_gridcc(d, &cache, &line);
    assert_eq!(cache_stats(&cache, false)["hits_direct"], 1);
    let before = std::fs::read(d.join("x.o")).unwrap();
    std::fs::create_dir(d.join("first")).unwrap();
    write(d, "first/f.h", text);
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "{s:#}");
    let after = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(after, fresh_object(d, &line));
    assert_ne!(after, before);
    assert!(memchr::memmem::find(&after, b"first/f.h").is_some());
}

/// An `-include` file is entered like a header: an edit is a miss, and so
/// is a copy created in the working directory, which gcc searches first for
/// it. `-imacros` (whose output gcc throws away, markers and all) never
/// writes a manifest.
#[test]
fn direct_mode_follows_include_files_and_refuses_imacros() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    std::fs::create_dir(d.join("inc")).unwrap();
    write(d, "inc/cfg.h", "#define V 1\n");
    write(d, "x.c", "int v = V;\n");
    let line = [
        "gcc", "-O2", "-Iinc", "-include", "cfg.h", "-c", "x.c", "-o", "x.o",
    ];
    for (round, (path, text)) in [("inc/cfg.h", "#define V 2\n"), ("cfg.h", "#define V 3\n")]
        .iter()
        .enumerate()
    {
        age(d);
        direct_gridcc(d, &cache, &line);
        direct_gridcc(d, &cache, &line);
        let s = cache_stats(&cache, false);
        assert_eq!(s["hits_direct"], round as u64 + 1, "{path}: {s:#}");
        let before = std::fs::read(d.join("x.o")).unwrap();
        write(d, path, text);
        direct_gridcc(d, &cache, &line);
        let s = cache_stats(&cache, false);
        assert_eq!(s["hits_direct"], round as u64 + 1, "{path}: {s:#}");
        let after = std::fs::read(d.join("x.o")).unwrap();
        assert_eq!(after, fresh_object(d, &line), "{path}");
        assert_ne!(after, before, "{path}");
    }

    let line = ["gcc", "-O2", "-imacros", "cfg.h", "-c", "x.c", "-o", "x.o"];
    for _ in 0..2 {
        direct_gridcc(d, &cache, &line);
        assert_eq!(
            std::fs::read(d.join("x.o")).unwrap(),
            fresh_object(d, &line)
        );
    }
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 2, "{s:#}");
    assert_eq!(s["direct_not_recorded"]["-imacros"], 2, "{s:#}");
}

/// A response file's contents are part of the manifest key: editing it
/// (the command line itself unchanged) is never a direct hit.
#[test]
fn direct_mode_keys_on_response_file_contents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    write(d, "x.c", "int v = V;\n");
    write(d, "flags.rsp", "-DV=1 -O2\n");
    let line = ["gcc", "@flags.rsp", "-c", "x.c", "-o", "x.o"];
    age(d);
    direct_gridcc(d, &cache, &line);
    direct_gridcc(d, &cache, &line);
    assert_eq!(cache_stats(&cache, false)["hits_direct"], 1);
    let before = std::fs::read(d.join("x.o")).unwrap();
    write(d, "flags.rsp", "-DV=2 -O2\n");
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "{s:#}");
    let after = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(after, fresh_object(d, &line));
    assert_ne!(after, before);
}

/// The include-path variables are in the manifest key: the same command
/// with `CPATH` (or `C_INCLUDE_PATH`, `CPLUS_INCLUDE_PATH`) naming another
/// directory is never answered by the manifest written under the first,
/// even though every file that manifest lists is unchanged.
#[test]
fn direct_mode_keys_on_include_path_variables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    for (sub, v) in [("a", 1), ("b", 2)] {
        std::fs::create_dir(d.join(sub)).unwrap();
        write(d, &format!("{sub}/h.h"), &format!("#define V {v}\n"));
    }
    write(d, "x.c", "#include <h.h>\nint v = V;\n");
    write(d, "y.cc", "#include <h.h>\nint v = V;\n");
    age(d);
    let mut hits = 0;
    for (var, source) in [
        ("CPATH", "x.c"),
        ("C_INCLUDE_PATH", "x.c"),
        ("CPLUS_INCLUDE_PATH", "y.cc"),
    ] {
        let line = ["gcc", "-O2", "-c", source, "-o", "x.o"];
        let a = [(var, "a")];
        let b = [(var, "b")];
        direct_gridcc_env(d, &cache, &line, &a);
        direct_gridcc_env(d, &cache, &line, &a);
        hits += 1;
        let s = cache_stats(&cache, false);
        assert_eq!(s["hits_direct"], hits, "{var}: {s:#}");
        let before = std::fs::read(d.join("x.o")).unwrap();
        assert_eq!(before, fresh_object_env(d, &line, &a), "{var}");
        direct_gridcc_env(d, &cache, &line, &b);
        let s = cache_stats(&cache, false);
        assert_eq!(s["hits_direct"], hits, "{var}: {s:#}");
        let after = std::fs::read(d.join("x.o")).unwrap();
        assert_eq!(after, fresh_object_env(d, &line, &b), "{var}");
        assert_ne!(after, before, "{var}");
    }
}

/// A compiler that changes (here a script rewritten to the same size, its
/// mtime put back) is another compiler: no direct hit from the manifest
/// the old one wrote, and the object is the new compiler's.
#[test]
fn direct_mode_sees_a_changed_compiler() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = d.join("cache");
    write(d, "x.c", "int v = V;\n");
    let cc = d.join("cc");
    let script = |v: u32| {
        write(d, "cc", &format!("#!/bin/sh\nexec gcc -DV={v} \"$@\"\n"));
        std::fs::set_permissions(&cc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    script(1);
    let cc_str = cc.display().to_string();
    let line = [cc_str.as_str(), "-O2", "-c", "x.c", "-o", "x.o"];
    age(d);
    direct_gridcc(d, &cache, &line);
    direct_gridcc(d, &cache, &line);
    assert_eq!(cache_stats(&cache, false)["hits_direct"], 1);
    let before = std::fs::read(d.join("x.o")).unwrap();
    let mtime = std::fs::metadata(&cc).unwrap().modified().unwrap();
    script(2);
    std::fs::File::options()
        .write(true)
        .open(&cc)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    direct_gridcc(d, &cache, &line);
    let s = cache_stats(&cache, false);
    assert_eq!(s["hits_direct"], 1, "{s:#}");
    let after = std::fs::read(d.join("x.o")).unwrap();
    assert_eq!(after, fresh_object(d, &line));
    assert_ne!(after, before);
}

/// gcc names the working directory by `$PWD` when that is the same
/// directory (libiberty's `getpwd`), and writes it into debug info. The
/// same directory reached through a symlink and through its real path is
/// therefore two different objects under `-g`: neither the preprocessed
/// key nor the direct one may hand one the other's.
#[test]
fn a_symlinked_working_directory_is_keyed_as_gcc_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("real")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
    write(&d.join("real"), "x.c", "int x(void) { return 1; }\n");
    let line = ["gcc", "-g", "-O2", "-c", "x.c", "-o", "x.o"];
    age(d);
    for direct in ["0", "1"] {
        let cache = d.join(format!("cache{direct}"));
        let mut objects = Vec::new();
        for name in ["link", "real", "link", "real"] {
            let cwd = d.join(name);
            let env = [("PWD", cwd.to_str().unwrap()), ("GRIDCC_DIRECT", direct)];
            direct_gridcc_env(&cwd, &cache, &line, &env);
            let object = std::fs::read(cwd.join("x.o")).unwrap();
            assert_eq!(
                object,
                fresh_object_env(&cwd, &line, &env[..1]),
                "{name} direct={direct}"
            );
            objects.push(object);
        }
        assert_ne!(objects[0], objects[1]);
        let s = cache_stats(&cache, false);
        assert_eq!(s["misses"], 2, "direct={direct}: {s:#}");
        let hits = s["hits_local"].as_u64().unwrap() + s["hits_direct"].as_u64().unwrap();
        assert_eq!(hits, 2, "direct={direct}: {s:#}");
    }
}
