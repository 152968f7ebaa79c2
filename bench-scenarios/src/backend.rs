//! Where a benchmark run's grid lives. A [`Backend`] starts one coordinator
//! and the scenario's workers with their CPU (and memory) limits, and hands
//! back a [`Grid`]: the coordinator's URL for the client, the trace file the
//! coordinator writes, the CPU seconds each server used, and whether any of
//! them died. The client (`make` through the wrapper) always runs on this
//! host, under the scenario's client CPU limit; see `run.rs`.
//!
//! - `local` (`local.rs`): server processes on 127.0.0.1, each in its own
//!   cgroup CPU quota where the machine allows one.
//! - `docker` (`docker.rs`): one container per server through the Docker
//!   engine API (bollard), `NanoCpus`/`Memory` limits, host networking.
//!
//! Both also start the peers' servers (`peers.rs`) under the same limits.

use std::path::{Path, PathBuf};

use crate::peers::{Peer, PeerGrid, PeerSpec};

/// The coordinator's `--queue-timeout-ms` in benchmark grids. The default
/// (30 s) sends a job back to the client after half a minute in the queue,
/// which happens on a one-slot grid under `make -j8` while a few long
/// compiles run; the benchmark measures the grid, so it waits longer, but
/// below the wrapper's own 60 s limit for a placement answer, so a job that
/// still waits that long is told to compile locally (and the run is marked
/// as having fallen back) rather than timing out.
pub const QUEUE_TIMEOUT_MS: u64 = 55_000;

/// One worker of a configuration, as the scenario file gives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// CPU limit in cores (0.25 = a quarter of one core).
    pub cpus: f64,
    /// Memory limit in MiB; none when absent.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Jobs the worker runs at once; default: `cpus` rounded up.
    #[serde(default)]
    pub slots: Option<u32>,
}

impl WorkerSpec {
    /// The slots the worker is started with.
    pub fn slots(&self) -> u32 {
        self.slots
            .unwrap_or_else(|| (self.cpus.ceil() as u32).max(1))
            .max(1)
    }
}

/// What one run's grid must look like.
#[derive(Debug, Clone)]
pub struct GridSpec<'a> {
    /// Placement policy for `gridcc-coordinator --policy`.
    pub policy: &'a str,
    pub workers: &'a [WorkerSpec],
    /// Directory holding `gridcc-coordinator` and `gridcc-worker`.
    pub bin_dir: &'a Path,
    /// This run's directory on the host: server logs go here, and the
    /// coordinator writes its job trace to [`GridSpec::trace_path`].
    pub run_dir: &'a Path,
    /// A costs file inside `run_dir` for `gridcc-coordinator --costs`.
    pub costs: Option<PathBuf>,
}

impl GridSpec<'_> {
    /// `--costs FILE` for the coordinator, when the run has one.
    pub fn costs_args(&self) -> Vec<String> {
        self.costs
            .iter()
            .flat_map(|c| ["--costs".to_owned(), c.display().to_string()])
            .collect()
    }

    /// The coordinator's `--trace-out` file (a host path; the docker backend
    /// mounts `run_dir` at the same path inside the container).
    pub fn trace_path(&self) -> PathBuf {
        self.run_dir.join("trace.jsonl")
    }
}

/// CPU seconds (user + system, children included) the servers used.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerCpu {
    pub coordinator_s: f64,
    /// One entry per worker, in [`GridSpec::workers`] order.
    pub workers_s: Vec<f64>,
}

/// A place to run grids.
pub trait Backend {
    /// `local` or `docker`.
    fn name(&self) -> &'static str;
    /// Confounders the report must state (e.g. "no cgroup CPU quota: the
    /// workers' CPU limits were not enforced").
    fn notes(&self) -> Vec<String>;
    /// Starts the coordinator and every worker, and returns once all
    /// workers have registered with the coordinator.
    fn start(&mut self, spec: &GridSpec<'_>) -> anyhow::Result<Box<dyn Grid>>;
    /// Starts a peer's servers (distcc's, icecream's) on the same workers,
    /// each under the limits a gridcc worker of that shape gets here, and
    /// returns once they are ready for a build.
    fn start_peer(&mut self, peer: Peer, spec: &PeerSpec<'_>) -> anyhow::Result<PeerGrid>;
}

/// A started grid. Dropping it without [`Grid::stop`] must still stop
/// every server (containers removed, processes killed).
pub trait Grid {
    /// `http://127.0.0.1:PORT`, for `GRIDCC_COORDINATOR`.
    fn coordinator_url(&self) -> &str;
    /// Each worker's `IP:PORT` as it registered, in [`GridSpec::workers`]
    /// order, so the report can tell workers apart; empty when unknown
    /// (workers are then matched by their capacity).
    fn worker_addresses(&self) -> Vec<String> {
        Vec::new()
    }
    /// Err with a one-line reason when a server died (a container killed
    /// or exited, a process gone).
    fn check_alive(&mut self) -> Result<(), String>;
    /// CPU seconds used so far by each server.
    fn cpu_seconds(&mut self) -> anyhow::Result<ServerCpu>;
    /// Stops and removes every server.
    fn stop(self: Box<Self>) -> anyhow::Result<()>;
}
