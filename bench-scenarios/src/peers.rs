//! Peers as cells: the same build on the same worker shapes with distcc
//! (and, where it can run, icecream) instead of gridcc, so that every
//! table sets gridcc's policies beside them. A scenario lists them in
//! `peers = ["distcc"]`; each becomes one cell per configuration, named by
//! the peer in the policy column.
//!
//! distcc on the local backend: one `distccd` per worker on 127.0.0.1,
//! each in its own cgroup with the worker's CPU quota (as gridcc's workers
//! are), `--jobs` = the worker's slots, the client told the hosts through
//! `DISTCC_HOSTS` (fastest first, as distcc's manual advises, since distcc
//! fills hosts in list order) with `CC="distcc gcc"`. Fallback to local
//! compiles is distcc's default and stays on; a run in which the daemons
//! compiled fewer jobs than there are objects is marked as fallen back.
//! The daemons' own job counts come from their logs (`COMPILE_OK` lines);
//! their CPU from `/proc` over every process of their process group
//! (distccd preforks, and a child's CPU reaches the parent only when it
//! exits, so the parent alone would undercount).
//!
//! The packages are installed with `apt-get` when missing (as root); where
//! that is impossible the run stops with one line saying so.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::backend::{Grid, ServerCpu, WorkerSpec};
use crate::cgroup::{self, Cgroups};

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

    /// The Debian package and the programs it must provide.
    fn package(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::Distcc => ("distcc", &["distcc", "distccd"]),
            Self::Icecc => ("icecc", &["icecc", "iceccd", "icecc-scheduler"]),
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Installs the peer's Debian package unless its programs are on `PATH`.
pub fn ensure_installed(peer: Peer) -> anyhow::Result<()> {
    let (package, programs) = peer.package();
    if programs.iter().all(|p| on_path(p)) {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!("{package} is not installed and there is no apt-get to install it with");
    }
    eprintln!("gridcc-bench: installing {package} (apt-get install -y {package})");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
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
    child: Child,
    port: u16,
    log: PathBuf,
    cpus: f64,
    slots: u32,
}

/// A distcc grid: one `distccd` per worker.
#[derive(Debug)]
pub struct PeerGrid {
    peer: Peer,
    daemons: Vec<Daemon>,
    state_dir: PathBuf,
}

/// A free TCP port on 127.0.0.1 (the kernel's choice, released at once;
/// distccd binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Starts the peer's daemons for `workers`, logs and state in `run_dir`.
pub fn start(
    peer: Peer,
    workers: &[WorkerSpec],
    run_dir: &Path,
    cgroups: &mut Cgroups,
    index: usize,
) -> anyhow::Result<PeerGrid> {
    if peer == Peer::Icecc {
        // icecream's daemons expect one per machine (a fixed port, a
        // chroot per compile environment, scheduler discovery by
        // broadcast); several on one host under separate CPU quotas is not
        // a set-up it supports, and the docker backend has no peer images
        // yet.
        bail!("icecc cells are not supported on the local backend yet (one iceccd per host); see docs/experiments.md");
    }
    let state_dir = run_dir.join("distcc-state");
    std::fs::create_dir_all(&state_dir)?;
    let mut grid = PeerGrid {
        peer,
        daemons: Vec::new(),
        state_dir,
    };
    for (i, w) in workers.iter().enumerate() {
        let log = daemon_log(run_dir, i);
        // distccd drops to its own user before opening the log.
        std::fs::write(&log, b"")?;
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        let limit = cgroups.create(&format!("distccd{index}-{}", i + 1), w.cpus, w.memory_mb)?;
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
        let mut cmd = cgroup::command(limit.as_ref(), Path::new("distccd"), &args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = cmd.spawn().context("starting distccd")?;
        crate::reap::register(child.id());
        grid.daemons.push(Daemon {
            child,
            port,
            log,
            cpus: w.cpus,
            slots: w.slots(),
        });
    }
    // Ready when each daemon says it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    for d in &grid.daemons {
        while !std::fs::read_to_string(&d.log).is_ok_and(|t| t.contains("listening on")) {
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

/// The run's jobs as the daemons' logs count them: per worker the jobs it
/// compiled, and in all the failed ones. Whether jobs fell back to the
/// client is decided by the runner from the object count.
pub fn jobs_record(run_dir: &Path, workers: &[WorkerSpec]) -> crate::run::JobsRecord {
    let per: Vec<DaemonJobs> = (0..workers.len())
        .map(|i| {
            parse_distccd_log(&std::fs::read_to_string(daemon_log(run_dir, i)).unwrap_or_default())
        })
        .collect();
    crate::run::JobsRecord {
        remote: per.iter().map(|j| j.ok).sum(),
        told_local: 0,
        failed: per.iter().map(|j| j.failed).sum(),
        fell_back: false,
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

/// Every job's time as the daemons logged it, in seconds.
pub fn compile_times(run_dir: &Path, workers: usize) -> Vec<f64> {
    (0..workers)
        .flat_map(|i| {
            parse_distccd_log(&std::fs::read_to_string(daemon_log(run_dir, i)).unwrap_or_default())
                .times_s
        })
        .collect()
}

/// CPU seconds of every process in process group `pgid`: utime + stime of
/// each, plus the children each has reaped.
fn group_cpu_s(pgid: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut ticks = 0u64;
    for e in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is the state (field 3): pgrp is field 5, times 14–17.
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        ticks += f
            .get(11..15)
            .map_or(0, |t| t.iter().filter_map(|x| x.parse::<u64>().ok()).sum());
    }
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

impl PeerGrid {
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// `CC`, `CXX` and the environment the build needs.
    pub fn client(&self) -> (String, String, Vec<(String, String)>) {
        let mut order: Vec<&Daemon> = self.daemons.iter().collect();
        order.sort_by(|a, b| b.cpus.total_cmp(&a.cpus));
        let hosts: Vec<String> = order
            .iter()
            .map(|d| format!("127.0.0.1:{}/{}", d.port, d.slots))
            .collect();
        (
            "distcc gcc".into(),
            "distcc g++".into(),
            vec![
                ("DISTCC_HOSTS".into(), hosts.join(" ")),
                ("DISTCC_DIR".into(), self.state_dir.display().to_string()),
            ],
        )
    }

    fn kill_all(&mut self) {
        for d in &mut self.daemons {
            let pgid = d.child.id();
            // The whole group: the preforked children too.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
            let _ = d.child.wait();
            crate::reap::unregister(pgid);
        }
        self.daemons.clear();
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
        for (i, d) in self.daemons.iter_mut().enumerate() {
            match d.child.try_wait() {
                Ok(None) => {}
                Ok(Some(st)) => {
                    return Err(format!(
                        "distccd {} exited ({st}); log {}",
                        i + 1,
                        d.log.display()
                    ))
                }
                Err(e) => return Err(format!("distccd {}: cannot query: {e}", i + 1)),
            }
        }
        Ok(())
    }

    fn cpu_seconds(&mut self) -> anyhow::Result<ServerCpu> {
        Ok(ServerCpu {
            // distcc has no coordinator.
            coordinator_s: 0.0,
            workers_s: self
                .daemons
                .iter()
                .map(|d| group_cpu_s(d.child.id()))
                .collect(),
        })
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
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
