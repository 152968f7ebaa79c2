//! The `docker` backend: each server of a benchmark grid runs in its own
//! container, started through the Docker engine API (bollard) on
//! `/var/run/docker.sock` (or a `unix://` `DOCKER_HOST`).
//!
//! - The coordinator runs from `gridcc-coordinator:local`, the workers from
//!   `gridcc-worker:local`, the peers' servers from `gridcc-peers:local`
//!   (all made by `docker/build-images.sh`; the peers in [`peers`]).
//! - Every container uses host networking and listens on `127.0.0.1:0`; the
//!   port it got is read back from its first stdout line (`listening on
//!   IP:PORT`), so there is no window in which another process can take a
//!   port picked in advance.
//! - A worker's CPU limit is the container's `NanoCpus` (`cpus * 1e9`), its
//!   memory limit `Memory` (and `MemorySwap`, so no swap on top) when the
//!   scenario gives one. The worker derives its speed from that cgroup quota.
//! - The run directory is bind-mounted read-write at the same absolute path,
//!   so the coordinator's `--trace-out` is a host path; the coordinator runs
//!   as the run directory's owner so the trace is not left owned by root.
//! - Containers are named `gridcc-bench-<pid>-<n>` and labelled
//!   `gridcc-bench=1` and `gridcc-bench.pid=<pid>`; [`remove_containers`]
//!   removes this process's (the runner calls it on Ctrl-C) or those whose
//!   process is gone (at start). Another session's live containers are
//!   left alone: several sessions may share one engine. A grid removes
//!   its containers on [`Grid::stop`] and on drop, after saving each
//!   container's output as `coordinator.log` / `worker-<i>.log` in the run
//!   directory.
//!
//! The API is synchronous: the backend owns a private current-thread tokio
//! runtime and blocks on it (from a helper thread when it is itself called
//! from inside an async runtime); `engine` holds that and the calls the
//! backend makes.

mod engine;
mod peers;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bollard::models::SystemInfoCgroupVersionEnum;
use bollard::query_parameters::ListContainersOptionsBuilder;

use crate::backend::{Backend, Grid, GridSpec, ServerCpu};
use crate::peers::{Peer, PeerGrid, PeerSpec};
use engine::{ContainerSpec, Engine};

const LABEL: &str = "gridcc-bench";
const ROLE_LABEL: &str = "gridcc-bench.role";
/// The pid of the gridcc-bench process that made the container.
const PID_LABEL: &str = "gridcc-bench.pid";
const COORDINATOR_IMAGE: &str = "gridcc-coordinator:local";
const WORKER_IMAGE: &str = "gridcc-worker:local";
const PEERS_IMAGE: &str = "gridcc-peers:local";
/// How long a server may take to print `listening on`, and the workers to
/// register once they all listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Runs grids as containers on the local Docker engine.
pub struct DockerBackend {
    engine: Arc<Engine>,
    notes: Vec<String>,
}

impl DockerBackend {
    /// Connects to the engine; a one-line error when it does not answer.
    pub fn connect() -> anyhow::Result<Self> {
        let engine = Engine::connect()?;
        let docker = engine.docker.clone();
        let info = engine
            .block_on(async move { docker.info().await })
            .with_context(|| format!("docker engine at {}: cannot read its info", engine.socket))?;
        let mut notes = Vec::new();
        if info.cpu_cfs_quota == Some(false) {
            notes.push(
                "docker engine has no CFS CPU quota: the workers' CPU limits were not enforced"
                    .to_owned(),
            );
        }
        if info.memory_limit == Some(false) {
            notes.push(
                "docker engine has no memory cgroup: the workers' memory limits were not enforced"
                    .to_owned(),
            );
        } else if info.swap_limit == Some(false) {
            notes.push(
                "docker engine has no swap limit support: workers with a memory limit could swap"
                    .to_owned(),
            );
        }
        if let Some(ncpu) = info.ncpu {
            let cgroup = match info.cgroup_version {
                Some(SystemInfoCgroupVersionEnum::_1) => "cgroup v1",
                Some(SystemInfoCgroupVersionEnum::_2) => "cgroup v2",
                _ => "cgroup version unknown",
            };
            notes.push(format!(
                "servers in containers (docker {}, {cgroup}, host network) sharing this host's {ncpu} CPUs with the client",
                info.server_version.as_deref().unwrap_or("?")
            ));
        }
        Ok(DockerBackend {
            engine: Arc::new(engine),
            notes,
        })
    }

    fn check_images(&self, images: &[&'static str]) -> anyhow::Result<()> {
        for &image in images {
            let docker = self.engine.docker.clone();
            self.engine
                .block_on(async move { docker.inspect_image(image).await })
                .map_err(|e| {
                    anyhow!("docker image {image} missing: run docker/build-images.sh ({e})")
                })?;
        }
        Ok(())
    }
}

impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn start(&mut self, spec: &GridSpec<'_>) -> anyhow::Result<Box<dyn Grid>> {
        for (i, w) in spec.workers.iter().enumerate() {
            if !w.cpus.is_finite() || w.cpus <= 0.0 {
                bail!("worker {}: cpus must be > 0 (got {})", i + 1, w.cpus);
            }
        }
        self.check_images(&[COORDINATOR_IMAGE, WORKER_IMAGE])?;
        let gridcc = spec.bin_dir.join("gridcc");
        if !gridcc.is_file() {
            bail!(
                "{} not found (build with cargo build --release --bins)",
                gridcc.display()
            );
        }
        std::fs::create_dir_all(spec.run_dir)
            .with_context(|| format!("cannot create {}", spec.run_dir.display()))?;
        let run_dir = std::path::absolute(spec.run_dir)
            .with_context(|| format!("cannot make {} absolute", spec.run_dir.display()))?;
        let trace = std::path::absolute(spec.trace_path())
            .context("cannot make the trace path absolute")?;
        let owner = std::fs::metadata(&run_dir)
            .with_context(|| format!("cannot stat {}", run_dir.display()))?;

        let mut grid = DockerGrid {
            engine: Arc::clone(&self.engine),
            url: String::new(),
            run_dir: run_dir.clone(),
            coordinator: None,
            workers: Vec::new(),
            addresses: Vec::new(),
            stopped: false,
        };

        // The coordinator, writing its trace into the mounted run directory.
        let run_dir_str = path_str(&run_dir)?;
        let mut coordinator = ContainerSpec::new("coordinator", COORDINATOR_IMAGE);
        coordinator.args = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--policy".into(),
            spec.policy.into(),
            "--trace-out".into(),
            path_str(&trace)?.into(),
            // As on the local backend: the benchmark measures the grid, so
            // a busy grid queues rather than sending work back to the
            // limited client.
            "--when-busy".into(),
            "queue".into(),
            "--queue-timeout-ms".into(),
            crate::backend::QUEUE_TIMEOUT_MS.to_string(),
        ];
        // Inside the mounted run directory, so the same path works.
        coordinator.args.extend(spec.costs_args());
        coordinator.user = Some(format!("{}:{}", owner.uid(), owner.gid()));
        coordinator.binds = vec![run_dir_str.to_owned()];
        let name = grid.create(&coordinator)?;
        let addr = grid.wait_listening(&name, "coordinator")?;
        grid.url = format!("http://{addr}");

        // The workers, each with its own limits.
        for w in spec.workers {
            let mut worker = ContainerSpec::new("worker", WORKER_IMAGE);
            worker.args = vec![
                "--coordinator".into(),
                grid.url.clone(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--slots".into(),
                w.slots().to_string(),
                // The runs measure compiles: repetitions must not be
                // shared-cache hits (as the wrapper runs with GRIDCC_CACHE=0).
                "--cache-size".into(),
                "0".into(),
                // Docker's default settings do not let bwrap make its
                // namespaces (docker/README.md, "Hermetic jobs"), so the
                // docker backend measures unsandboxed text jobs, said so
                // here rather than left to a worker that exits.
                "--no-sandbox".into(),
            ];
            worker.limit(w);
            grid.create(&worker)?;
        }
        // Started all at once; now wait for each to listen.
        let mut addresses = Vec::new();
        for (i, name) in grid.workers.iter().enumerate() {
            addresses.push(grid.wait_listening(name, &format!("worker {}", i + 1))?);
        }
        grid.wait_registered(&gridcc, &addresses)?;
        grid.addresses = addresses;
        Ok(Box::new(grid))
    }

    fn start_peer(&mut self, peer: Peer, spec: &PeerSpec<'_>) -> anyhow::Result<PeerGrid> {
        self.check_images(&[PEERS_IMAGE])?;
        crate::peers::start(
            peer,
            spec,
            &mut peers::Containers::new(Arc::clone(&self.engine)),
        )
    }
}

/// A grid of running containers.
struct DockerGrid {
    engine: Arc<Engine>,
    url: String,
    run_dir: PathBuf,
    coordinator: Option<String>,
    workers: Vec<String>,
    /// Each worker's `IP:PORT`, in spec order.
    addresses: Vec<String>,
    stopped: bool,
}

impl DockerGrid {
    /// Creates and starts a container, which belongs to the grid (and is
    /// removed with it) from then on.
    fn create(&mut self, spec: &ContainerSpec) -> anyhow::Result<String> {
        let name = self.engine.run(spec)?;
        if spec.role == "coordinator" {
            self.coordinator = Some(name.clone());
        } else {
            self.workers.push(name.clone());
        }
        Ok(name)
    }

    /// Waits for `listening on IP:PORT` on the container's stdout and
    /// returns `IP:PORT`.
    fn wait_listening(&self, name: &str, what: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.engine.logs(name, false, None)?;
            if let Some(addr) = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("listening on "))
            {
                return Ok(addr.trim().to_owned());
            }
            if let Some(why) = self.engine.not_running(name) {
                bail!(
                    "{what} did not start: {why}; {}",
                    self.engine.last_lines(name)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what} ({name}) did not print `listening on` within {} s; {}",
                    START_TIMEOUT.as_secs(),
                    self.engine.last_lines(name)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls `gridcc status --json` until every worker address is registered.
    fn wait_registered(&self, gridcc: &Path, addresses: &[String]) -> anyhow::Result<()> {
        let want: HashSet<&str> = addresses.iter().map(String::as_str).collect();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let last = match self.registered(gridcc) {
                Ok(have) => {
                    let missing: Vec<&str> = want
                        .iter()
                        .copied()
                        .filter(|a| !have.contains(*a))
                        .collect();
                    if missing.is_empty() {
                        return Ok(());
                    }
                    format!("not registered: {}", missing.join(", "))
                }
                Err(e) => format!("{e:#}"),
            };
            if let Err(why) = self.check_alive_inner() {
                bail!("grid did not start: {why}");
            }
            if Instant::now() >= deadline {
                bail!(
                    "workers did not register with the coordinator within {} s ({last}); coordinator {}",
                    START_TIMEOUT.as_secs(),
                    self.coordinator
                        .as_deref()
                        .map_or_else(String::new, |c| self.engine.last_lines(c))
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The worker addresses the coordinator lists.
    fn registered(&self, gridcc: &Path) -> anyhow::Result<HashSet<String>> {
        let out = Command::new(gridcc)
            .args(["status", "--json", "--coordinator", &self.url])
            .output()
            .with_context(|| format!("cannot run {}", gridcc.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!("gridcc status: {}", err.lines().last().unwrap_or("failed"));
        }
        let status: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("gridcc status --json: bad JSON")?;
        Ok(status
            .get("workers")
            .and_then(|w| w.as_array())
            .map(|ws| {
                ws.iter()
                    .filter_map(|w| w.get("address").and_then(|a| a.as_str()))
                    .map(|a| a.trim_start_matches("http://").to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// (label, container) for every server, coordinator first.
    fn servers(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        if let Some(c) = &self.coordinator {
            all.push(("coordinator".to_owned(), c.clone()));
        }
        for (i, w) in self.workers.iter().enumerate() {
            all.push((format!("worker {}", i + 1), w.clone()));
        }
        all
    }

    fn check_alive_inner(&self) -> Result<(), String> {
        for (what, name) in self.servers() {
            if let Some(why) = self.engine.not_running(&name) {
                return Err(format!(
                    "{what} died: {why}; {}",
                    self.engine.last_lines(&name)
                ));
            }
        }
        Ok(())
    }

    /// Saves each container's output in the run directory, then removes
    /// every container. Returns the first error.
    fn remove_all(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut first_err = None;
        for (what, name) in self.servers() {
            let file = self.run_dir.join(format!("{}.log", what.replace(' ', "-")));
            if let Ok(text) = self.engine.logs(&name, true, None) {
                // Best effort: the logs are a debugging aid.
                let _ = std::fs::write(&file, text);
            }
            if let Err(e) = self.engine.remove(&name) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Grid for DockerGrid {
    fn coordinator_url(&self) -> &str {
        &self.url
    }

    fn worker_addresses(&self) -> Vec<String> {
        self.addresses.clone()
    }

    fn check_alive(&mut self) -> Result<(), String> {
        self.check_alive_inner()
    }

    fn cpu_seconds(&mut self) -> anyhow::Result<ServerCpu> {
        let coordinator_s = match &self.coordinator {
            Some(c) => self.engine.cpu_seconds(c)?,
            None => 0.0,
        };
        let workers_s = self
            .workers
            .iter()
            .map(|w| self.engine.cpu_seconds(w))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        Ok(ServerCpu {
            coordinator_s,
            workers_s,
        })
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        self.remove_all()
    }
}

impl Drop for DockerGrid {
    fn drop(&mut self) {
        let _ = self.remove_all();
    }
}

/// Whose containers [`remove_containers`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This process's (on Ctrl-C).
    ThisProcess,
    /// Those whose gridcc-bench process is gone (an interrupted run's, or
    /// one made before containers carried the pid label).
    Gone,
}

impl Owner {
    /// Whether a container made by process `pid` (None: unlabelled) is
    /// `self`'s, seen from process `me`.
    fn owns(self, pid: Option<u32>, me: u32, alive: impl Fn(u32) -> bool) -> bool {
        match self {
            Owner::ThisProcess => pid == Some(me),
            Owner::Gone => pid.is_none_or(|p| !alive(p)),
        }
    }
}

/// Whether the gridcc-bench process `pid` still runs.
fn bench_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "gridcc-bench")
}

/// Removes the containers labelled `gridcc-bench=1`, running or not, that
/// belong to `owner`. Returns how many.
pub fn remove_containers(owner: Owner) -> anyhow::Result<usize> {
    let engine = Engine::connect()?;
    let filters = HashMap::from([("label", vec![format!("{LABEL}=1")])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let docker = engine.docker.clone();
    let list = engine
        .block_on(async move { docker.list_containers(Some(opts)).await })
        .context("cannot list containers")?;
    let mut removed = 0;
    for c in list {
        let Some(id) = c.id else { continue };
        let pid = c
            .labels
            .as_ref()
            .and_then(|l| l.get(PID_LABEL))
            .and_then(|p| p.parse::<u32>().ok());
        if owner.owns(pid, std::process::id(), bench_alive) {
            engine.remove(&id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow!("path {} is not UTF-8", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_or_orphaned_containers_are_removed() {
        let alive = |p: u32| p == 7 || p == 8;
        // (owner, the container's pid label, removed?), seen from pid 7
        // while another session (pid 8) runs too.
        let table = [
            (Owner::ThisProcess, Some(7), true),
            (Owner::ThisProcess, Some(8), false),
            (Owner::ThisProcess, Some(9), false),
            (Owner::ThisProcess, None, false),
            (Owner::Gone, Some(7), false),
            (Owner::Gone, Some(8), false),
            (Owner::Gone, Some(9), true),
            (Owner::Gone, None, true),
        ];
        for (owner, pid, removed) in table {
            assert_eq!(owner.owns(pid, 7, alive), removed, "{owner:?} {pid:?}");
        }
    }

    #[test]
    fn a_test_binary_is_no_bench_process() {
        assert!(!bench_alive(std::process::id()));
    }
}
