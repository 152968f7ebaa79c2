//! Peers as cells: the same build on the same worker shapes with distcc
//! or icecream instead of gridcc, so that every table sets gridcc's
//! policies beside them. A scenario lists them in
//! `peers = ["distcc", "icecc"]`; each becomes one cell per configuration,
//! named by the peer in the policy column. icecream's set-up (a scheduler,
//! a daemon per worker and one for the client, in a network namespace of
//! their own) is in [`icecc`].
//!
//! distcc: one `distccd` per worker on 127.0.0.1, each under the worker's
//! CPU quota as gridcc's workers are (a cgroup on the local backend, a
//! container's `NanoCpus` on docker: [`launch`] says where servers run),
//! `--jobs` = the worker's slots, the client told the hosts through
//! `DISTCC_HOSTS` (fastest first, as distcc's manual advises, since distcc
//! fills hosts in list order) with `CC="distcc gcc"`. Fallback to local
//! compiles is distcc's default and stays on; a run in which the daemons
//! compiled fewer jobs than there are objects is marked as fallen back.
//! The daemons' own job counts come from their logs (`COMPILE_OK` lines);
//! their CPU from the process group or the container each runs in.
//!
//! The packages are installed with `apt-get` when missing (as root); where
//! that is impossible the run stops with one line saying so. The client
//! side always runs on the host, so the host needs them on the docker
//! backend too (its servers run from the `gridcc-peers:local` image).

mod icecc;
pub(crate) mod launch;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::backend::{Grid, ServerCpu, WorkerSpec};
use launch::{Launcher, Server, ServerSpec};

/// A peer system a scenario can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Distcc,
    Icecc,
}

/// Every peer name a scenario may use.
pub const PEER_NAMES: [&str; 2] = ["distcc", "icecc"];

impl Peer {
    /// The peer a cell's policy column names, if any.
    pub fn of(name: &str) -> Option<Self> {
        match name {
            "distcc" => Some(Self::Distcc),
            "icecc" => Some(Self::Icecc),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Distcc => "distcc",
            Self::Icecc => "icecc",
        }
    }

    /// The Debian packages and the programs they must provide.
    fn packages(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Self::Distcc => (&["distcc"], &["distcc", "distccd"]),
            // `ip` (iproute2) makes the network namespace icecream's
            // daemons run in (see icecc.rs).
            Self::Icecc => (
                &["icecc", "iproute2"],
                &[
                    "icecc",
                    "iceccd",
                    "icecc-scheduler",
                    "icecc-create-env",
                    "ip",
                ],
            ),
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Installs the peer's Debian packages unless its programs are on `PATH`.
pub fn ensure_installed(peer: Peer) -> anyhow::Result<()> {
    let (packages, programs) = peer.packages();
    if programs.iter().all(|p| on_path(p)) {
        return Ok(());
    }
    let package = packages.join(" ");
    if !on_path("apt-get") {
        bail!("{package} is not installed and there is no apt-get to install it with");
    }
    eprintln!("gridcc-bench: installing {package} (apt-get install -y {package})");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    let mut ok = install().is_ok_and(|s| s.success());
    if !ok {
        // The package lists may be missing or stale.
        let _ = Command::new("apt-get")
            .arg("update")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        ok = install().is_ok_and(|s| s.success());
    }
    if !ok || !programs.iter().all(|p| on_path(p)) {
        bail!("{package} is not installed and `apt-get install {package}` failed (root is needed)");
    }
    Ok(())
}

/// One daemon of a peer grid.
#[derive(Debug)]
struct Daemon {
    server: Box<dyn Server>,
    port: u16,
    log: PathBuf,
    cpus: f64,
    slots: u32,
    /// Its CPU before the build (icecream's warm-up), left out of the run's.
    cpu_base_s: f64,
}

/// A process of a peer grid that is not a worker (icecream's scheduler
/// and the client's daemon): its CPU counts as the coordinator's.
#[derive(Debug)]
struct Helper {
    name: &'static str,
    server: Box<dyn Server>,
    /// As [`Daemon::cpu_base_s`].
    cpu_base_s: f64,
}

/// How the build reaches a peer grid.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerClient {
    pub cc: String,
    pub cxx: String,
    pub env: Vec<(String, String)>,
    /// The network namespace the build must run in (icecream's daemons
    /// live in one; see icecc.rs).
    pub netns: Option<String>,
}

/// A peer grid: one daemon per worker (`distccd`, or `iceccd` with
/// icecream's scheduler and the client's daemon beside them).
#[derive(Debug)]
pub struct PeerGrid {
    peer: Peer,
    daemons: Vec<Daemon>,
    helpers: Vec<Helper>,
    client: PeerClient,
    /// icecream's namespace and state, torn down after the processes.
    site: Option<icecc::Site>,
}

/// A free TCP port on 127.0.0.1 (the kernel's choice, released at once;
/// distccd binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// What one run's peer grid must look like.
#[derive(Debug, Clone)]
pub struct PeerSpec<'a> {
    pub workers: &'a [WorkerSpec],
    /// This run's directory: logs and state go here.
    pub run_dir: &'a Path,
    /// What every run of the session can share (icecream's compiler
    /// environment).
    pub session_dir: &'a Path,
    /// The run's number in the session, which keeps its cgroups'
    /// and namespace's names apart from other runs'.
    pub index: usize,
}

/// Starts the peer's daemons through `launcher`.
pub(crate) fn start(
    peer: Peer,
    spec: &PeerSpec<'_>,
    launcher: &mut dyn Launcher,
) -> anyhow::Result<PeerGrid> {
    match peer {
        Peer::Distcc => start_distcc(spec, launcher),
        Peer::Icecc => icecc::start(spec, launcher),
    }
}

fn start_distcc(spec: &PeerSpec<'_>, launcher: &mut dyn Launcher) -> anyhow::Result<PeerGrid> {
    let PeerSpec {
        workers,
        run_dir,
        index,
        ..
    } = *spec;
    let state_dir = run_dir.join("distcc-state");
    std::fs::create_dir_all(&state_dir)?;
    let mut grid = PeerGrid {
        peer: Peer::Distcc,
        daemons: Vec::new(),
        helpers: Vec::new(),
        client: PeerClient {
            cc: "distcc gcc".into(),
            cxx: "distcc g++".into(),
            env: Vec::new(),
            netns: None,
        },
        site: None,
    };
    for (i, w) in workers.iter().enumerate() {
        let log = daemon_log(run_dir, i);
        // distccd drops to its own user before opening the log.
        std::fs::write(&log, b"")?;
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        let port = free_port()?;
        let args: Vec<String> = [
            "--no-detach",
            "--daemon",
            "--listen",
            "127.0.0.1",
            "--allow",
            "127.0.0.1",
            "--log-level",
            "info",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            "--port".into(),
            port.to_string(),
            "--jobs".into(),
            w.slots().to_string(),
            "--log-file".into(),
            log.display().to_string(),
        ])
        .collect();
        let server = launcher.launch(&ServerSpec {
            name: format!("distccd{index}-{}", i + 1),
            program: "distccd",
            args,
            env: Vec::new(),
            limit: Some(w),
            netns: None,
            dirs: vec![run_dir.to_path_buf()],
        })?;
        grid.daemons.push(Daemon {
            server,
            port,
            log,
            cpus: w.cpus,
            slots: w.slots(),
            cpu_base_s: 0.0,
        });
    }
    // Ready when each daemon says it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    for d in &mut grid.daemons {
        while !std::fs::read_to_string(&d.log).is_ok_and(|t| t.contains("listening on")) {
            if let Some(why) = d.server.exited() {
                bail!("distccd on port {} {why}; see {}", d.port, d.log.display());
            }
            if Instant::now() > deadline {
                bail!(
                    "distccd on port {} did not start; see {}",
                    d.port,
                    d.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut order: Vec<&Daemon> = grid.daemons.iter().collect();
    order.sort_by(|a, b| b.cpus.total_cmp(&a.cpus));
    let hosts: Vec<String> = order
        .iter()
        .map(|d| format!("127.0.0.1:{}/{}", d.port, d.slots))
        .collect();
    grid.client.env = vec![
        ("DISTCC_HOSTS".into(), hosts.join(" ")),
        ("DISTCC_DIR".into(), state_dir.display().to_string()),
    ];
    Ok(grid)
}

/// What a peer's logs say about one worker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaemonJobs {
    pub ok: u64,
    pub failed: u64,
    /// Per job, the daemon's `time:` in seconds.
    pub times_s: Vec<f64>,
}

/// Counts a distccd log's job summaries: `COMPILE_OK` lines are jobs the
/// daemon compiled, other `(dcc_job_summary)` lines failed ones.
pub fn parse_distccd_log(text: &str) -> DaemonJobs {
    let mut jobs = DaemonJobs::default();
    for line in text.lines().filter(|l| l.contains("(dcc_job_summary)")) {
        if line.contains(" COMPILE_OK ") {
            jobs.ok += 1;
        } else {
            jobs.failed += 1;
        }
        let ms = line.split_whitespace().find_map(|f| {
            f.strip_prefix("time:")?
                .strip_suffix("ms")?
                .parse::<f64>()
                .ok()
        });
        if let Some(ms) = ms {
            jobs.times_s.push(ms / 1000.0);
        }
    }
    jobs
}

fn daemon_log(run_dir: &Path, i: usize) -> PathBuf {
    run_dir.join(format!("distccd{}.log", i + 1))
}

/// The jobs the peer ran on the client, by kind (icecream logs them; for
/// distcc the runner's object count is all there is).
pub fn local_jobs(peer: Peer, run_dir: &Path) -> std::collections::BTreeMap<String, u64> {
    match peer {
        Peer::Distcc => Default::default(),
        Peer::Icecc => icecc::local_jobs(run_dir),
    }
}

/// What the peer's logs in `run_dir` say about each worker's jobs (read
/// once the grid is stopped: icecream's logs reach the run directory then).
fn daemon_jobs(peer: Peer, run_dir: &Path, workers: usize) -> Vec<DaemonJobs> {
    match peer {
        Peer::Distcc => (0..workers)
            .map(|i| {
                parse_distccd_log(
                    &std::fs::read_to_string(daemon_log(run_dir, i)).unwrap_or_default(),
                )
            })
            .collect(),
        Peer::Icecc => icecc::daemon_jobs(run_dir, workers),
    }
}

/// The run's jobs as the peer's logs count them: per worker the jobs it
/// compiled, and in all the failed ones. A run fell back where icecream
/// logged an object compiled on the client; the runner adds the runs
/// whose daemons compiled fewer jobs than there are objects.
pub fn jobs_record(peer: Peer, run_dir: &Path, workers: &[WorkerSpec]) -> crate::run::JobsRecord {
    let per = daemon_jobs(peer, run_dir, workers.len());
    // An object the client compiled itself is a fallback even where the
    // daemons' count reaches the number of objects (icecream compiles a
    // file that printed a warning twice: remotely, then locally).
    let fell_back = local_jobs(peer, run_dir)
        .get(icecc::LOCAL_OBJECT)
        .is_some_and(|&n| n > 0);
    crate::run::JobsRecord {
        remote: per.iter().map(|j| j.ok).sum(),
        told_local: 0,
        failed: per.iter().map(|j| j.failed).sum(),
        fell_back,
        per_worker: workers
            .iter()
            .zip(&per)
            .enumerate()
            .map(|(i, (w, j))| crate::run::WorkerRecord {
                id: i as u64 + 1,
                address: String::new(),
                cpus: w.cpus,
                slots: w.slots(),
                jobs: j.ok,
                // The logs give each job's length, not its start.
                busy_s: 0.0,
                utilization: 0.0,
            })
            .collect(),
    }
}

/// Every job's time as the peer logged it, in seconds.
pub fn compile_times(peer: Peer, run_dir: &Path, workers: usize) -> Vec<f64> {
    daemon_jobs(peer, run_dir, workers)
        .into_iter()
        .flat_map(|j| j.times_s)
        .collect()
}

impl PeerGrid {
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// Counts the processes' CPU from now on: what they spent getting
    /// ready (icecream installing its compiler environment) is not the
    /// build's.
    fn start_cpu_count(&mut self) {
        for d in &mut self.daemons {
            d.cpu_base_s = d.server.cpu_s();
        }
        for h in &mut self.helpers {
            h.cpu_base_s = h.server.cpu_s();
        }
    }

    /// `CC`, `CXX`, the environment and the namespace the build needs.
    pub fn client(&self) -> PeerClient {
        self.client.clone()
    }

    /// Stops every process, then (icecream) keeps the logs in the run
    /// directory and removes the namespace and the state.
    fn kill_all(&mut self) {
        let servers = self
            .daemons
            .iter_mut()
            .map(|d| &mut d.server)
            .chain(self.helpers.iter_mut().map(|h| &mut h.server));
        for server in servers {
            server.kill();
        }
        self.daemons.clear();
        self.helpers.clear();
        if let Some(site) = self.site.take() {
            site.finish();
        }
    }
}

impl Grid for PeerGrid {
    fn coordinator_url(&self) -> &str {
        ""
    }

    fn worker_addresses(&self) -> Vec<String> {
        self.daemons
            .iter()
            .map(|d| format!("127.0.0.1:{}", d.port))
            .collect()
    }

    fn check_alive(&mut self) -> Result<(), String> {
        let daemon = match self.peer {
            Peer::Distcc => "distccd",
            Peer::Icecc => "iceccd",
        };
        for (i, d) in self.daemons.iter_mut().enumerate() {
            if let Some(why) = d.server.exited() {
                return Err(format!("{daemon} {} {why}; log {}", i + 1, d.log.display()));
            }
        }
        for h in &mut self.helpers {
            if let Some(why) = h.server.exited() {
                return Err(format!("{} {why}", h.name));
            }
        }
        Ok(())
    }

    fn cpu_seconds(&mut self) -> anyhow::Result<ServerCpu> {
        Ok(ServerCpu {
            // distcc has no coordinator; icecream's scheduler and the
            // client's daemon stand in its place.
            coordinator_s: 0.0
                + self
                    .helpers
                    .iter()
                    .map(|h| h.server.cpu_s() - h.cpu_base_s)
                    .sum::<f64>(),
            workers_s: self
                .daemons
                .iter()
                .map(|d| d.server.cpu_s() - d.cpu_base_s)
                .collect(),
        })
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        if let Some(site) = &self.site {
            site.drain();
        }
        self.kill_all();
        Ok(())
    }
}

impl Drop for PeerGrid {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distccd_logs_are_counted() {
        let log = "\
distccd[1] (dcc_listen_by_addr) listening on 127.0.0.1:36301
distccd[2] (dcc_job_summary) client: 127.0.0.1:40218 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:35ms x86_64-linux-gnu-gcc a.c
distccd[2] (dcc_job_summary) client: 127.0.0.1:40220 COMPILE_ERROR exit:1 sig:0 core:0 ret:1 time:12ms gcc b.c
distccd[3] (dcc_job_summary) client: 127.0.0.1:40222 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:1200ms gcc c.c
";
        let j = parse_distccd_log(log);
        assert_eq!((j.ok, j.failed), (2, 1));
        assert_eq!(j.times_s, [0.035, 0.012, 1.2]);
        assert_eq!(parse_distccd_log(""), DaemonJobs::default());
    }

    #[test]
    fn peer_names_round_trip() {
        for n in PEER_NAMES {
            assert_eq!(Peer::of(n).map(Peer::name), Some(n));
        }
        assert_eq!(Peer::of("least-loaded"), None);
    }
}
