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
//! from inside an async runtime).

mod peers;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HostConfig, Mount, MountTypeEnum,
    SystemInfoCgroupVersionEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions, StatsOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt as _;

use crate::backend::{Backend, Grid, GridSpec, ServerCpu, WorkerSpec};
use crate::peers::{Peer, PeerGrid, PeerSpec};

/// The engine socket used unless `DOCKER_HOST` names another `unix://` one.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
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
/// Lines of a container's output quoted in an error.
const LOG_LINES: usize = 3;
/// Characters kept of each quoted line.
const LINE_CHARS: usize = 160;

/// Numbers the containers of this process (`gridcc-bench-<pid>-<n>`).
static CONTAINER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// The private runtime. Dropping a tokio runtime blocks, which panics
/// inside an async context, so it is shut down in the background instead.
struct Rt(Option<tokio::runtime::Runtime>);

impl Rt {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0
            .as_ref()
            .expect("the runtime lives until Rt is dropped")
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A connection to the engine and the runtime its futures run on.
struct Engine {
    rt: Rt,
    docker: Docker,
    socket: String,
}

impl Engine {
    fn connect() -> anyhow::Result<Self> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if host.starts_with("unix://") => host["unix://".len()..].to_owned(),
            _ => DEFAULT_SOCKET.to_owned(),
        };
        let unreachable = |why: String| {
            anyhow!("docker engine not reachable at {socket}: run scripts/docker-engine.sh ({why})")
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("docker backend: cannot create its tokio runtime")?;
        let rt = Rt(Some(rt));
        let docker = Docker::connect_with_socket(&socket, 120, API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?;
        let engine = Engine {
            rt,
            docker,
            socket: socket.clone(),
        };
        // The engine may speak an older API than bollard's default (Debian
        // bookworm's 20.10 speaks 1.41): settle on the older of the two.
        let docker = engine.docker.clone();
        let negotiated = engine
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await
            })
            .map_err(|_| unreachable("no answer within 10 s".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine {
            docker: negotiated,
            ..engine
        })
    }

    /// Runs `fut` to completion on the private runtime. Called from inside
    /// another tokio runtime (where blocking on one is not allowed), it runs
    /// the future from a short-lived helper thread instead.
    fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                let helper = s.spawn(|| self.rt.get().block_on(fut));
                match helper.join() {
                    Ok(out) => out,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            })
        } else {
            self.rt.get().block_on(fut)
        }
    }

    /// The container's output so far (both streams, or stdout only), or
    /// its last `tail` lines.
    fn logs(&self, name: &str, stderr: bool, tail: Option<usize>) -> anyhow::Result<String> {
        let tail = tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(stderr)
            .tail(&tail)
            .build();
        let docker = self.docker.clone();
        self.block_on(async move {
            let mut stream = docker.logs(name, Some(opts));
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                match chunk? {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => {
                        text.push_str(&String::from_utf8_lossy(&message))
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<_, bollard::errors::Error>(text)
        })
        .with_context(|| format!("cannot read the logs of container {name}"))
    }

    /// The last lines of a container's output, joined into one line.
    fn last_lines(&self, name: &str) -> String {
        match self.logs(name, true, Some(LOG_LINES)) {
            Ok(text) => {
                let lines: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if lines.is_empty() {
                    "no output".to_owned()
                } else {
                    let lines: Vec<String> = lines.iter().map(|l| shorten(l)).collect();
                    format!("last output: {}", lines.join(" | "))
                }
            }
            Err(e) => format!("{e:#}"),
        }
    }

    /// Force-removes the container `name`; gone already counts as removed.
    fn remove(&self, name: &str) -> anyhow::Result<()> {
        let docker = self.docker.clone();
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.block_on(async move { docker.remove_container(name, Some(opts)).await }) {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(anyhow!("cannot remove container {name}: {e}")),
        }
    }

    /// Creates and starts a container and returns its name; one that
    /// does not start is removed again.
    fn run(&self, spec: &ContainerSpec) -> anyhow::Result<String> {
        let name = format!(
            "{LABEL}-{}-{}",
            std::process::id(),
            CONTAINER_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let labels = HashMap::from([
            (LABEL.to_owned(), "1".to_owned()),
            (ROLE_LABEL.to_owned(), spec.role.clone()),
            (PID_LABEL.to_owned(), std::process::id().to_string()),
        ]);
        let mounts = spec
            .binds
            .iter()
            .map(|path| Mount {
                target: Some(path.clone()),
                source: Some(path.clone()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(false),
                ..Default::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            cmd: Some(spec.args.clone()),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            user: spec.user.clone(),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network.clone()),
                nano_cpus: spec.nano_cpus,
                memory: spec.memory,
                memory_swap: spec.memory,
                mounts: Some(mounts),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let docker = self.docker.clone();
        self.block_on(async move { docker.create_container(Some(opts), body).await })
            .map_err(|e| {
                anyhow!(
                    "cannot create the {} container ({}): {e}",
                    spec.role,
                    spec.image
                )
            })?;
        let docker = self.docker.clone();
        let container = name.clone();
        let started = self.block_on(async move {
            docker
                .start_container(&container, None::<StartContainerOptions>)
                .await
        });
        if let Err(e) = started {
            let _ = self.remove(&name);
            bail!("cannot start the {} container {name}: {e}", spec.role);
        }
        Ok(name)
    }

    /// The host pid of the container's first process.
    fn pid(&self, name: &str) -> anyhow::Result<u32> {
        let docker = self.docker.clone();
        let inspect = self
            .block_on(async move {
                docker
                    .inspect_container(name, None::<InspectContainerOptions>)
                    .await
            })
            .with_context(|| format!("cannot inspect container {name}"))?;
        inspect
            .state
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0)
            .ok_or_else(|| anyhow!("container {name} has no process"))
    }

    /// None while the container runs; otherwise why it does not.
    fn not_running(&self, name: &str) -> Option<String> {
        let docker = self.docker.clone();
        let inspect = match self.block_on(async move {
            docker
                .inspect_container(name, None::<InspectContainerOptions>)
                .await
        }) {
            Ok(inspect) => inspect,
            Err(e) => return Some(format!("container {name} cannot be inspected: {e}")),
        };
        let Some(state) = inspect.state else {
            return Some(format!("container {name} has no state"));
        };
        if state.running == Some(true) {
            return None;
        }
        let status = state
            .status
            .map_or_else(|| "not running".to_owned(), |s| s.to_string());
        let mut why = format!("container {name} is {status}");
        if let Some(code) = state.exit_code {
            if state.status != Some(ContainerStateStatusEnum::CREATED) {
                why.push_str(&format!(", exit code {code}"));
                if (129..=159).contains(&code) {
                    why.push_str(&format!(" (killed by signal {})", code - 128));
                }
            }
        }
        if state.oom_killed == Some(true) {
            why.push_str(", OOM-killed (memory limit)");
        }
        if let Some(err) = state.error.filter(|e| !e.is_empty()) {
            why.push_str(&format!(", {err}"));
        }
        Some(why)
    }

    /// Total CPU time the container has used, in seconds.
    fn cpu_seconds(&self, name: &str) -> anyhow::Result<f64> {
        let docker = self.docker.clone();
        let opts = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let stats = self
            .block_on(async move { docker.stats(name, Some(opts)).next().await })
            .ok_or_else(|| anyhow!("container {name}: the engine returned no stats"))?
            .with_context(|| format!("cannot read the stats of container {name}"))?;
        let ns = stats
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        Ok(ns as f64 / 1e9)
    }
}

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

/// What one container is started with.
struct ContainerSpec {
    role: String,
    image: &'static str,
    args: Vec<String>,
    /// `KEY=VALUE`.
    env: Vec<String>,
    user: Option<String>,
    /// `host`, or `none` and `container:NAME` for icecream's namespace.
    network: String,
    /// Host paths mounted read-write at the same path.
    binds: Vec<String>,
    nano_cpus: Option<i64>,
    memory: Option<i64>,
}

impl ContainerSpec {
    fn new(role: impl Into<String>, image: &'static str) -> Self {
        ContainerSpec {
            role: role.into(),
            image,
            args: Vec::new(),
            env: Vec::new(),
            user: None,
            network: "host".to_owned(),
            binds: Vec::new(),
            nano_cpus: None,
            memory: None,
        }
    }

    /// A worker's CPU and memory limits, for gridcc's workers and the
    /// peers' daemons alike.
    fn limit(&mut self, w: &WorkerSpec) {
        self.nano_cpus = Some((w.cpus * 1e9).round() as i64);
        self.memory = w
            .memory_mb
            .map(|mb| i64::try_from(mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX));
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

/// `line` cut to [`LINE_CHARS`] characters.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
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
