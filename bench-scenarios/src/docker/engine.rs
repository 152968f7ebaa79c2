//! The Docker engine API as the backend uses it, synchronously: a
//! connection with its private tokio runtime ([`Engine`]), and what one
//! container is started with ([`ContainerSpec`]): create and start, logs,
//! liveness, CPU seconds, removal.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HostConfig, Mount, MountTypeEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, StatsOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt as _;

use crate::backend::WorkerSpec;

use super::{LABEL, PID_LABEL, ROLE_LABEL};

/// The engine socket used unless `DOCKER_HOST` names another `unix://` one.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
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
pub(super) struct Engine {
    rt: Rt,
    pub(super) docker: Docker,
    pub(super) socket: String,
}

impl Engine {
    pub(super) fn connect() -> anyhow::Result<Self> {
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
    pub(super) fn block_on<F>(&self, fut: F) -> F::Output
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
    pub(super) fn logs(
        &self,
        name: &str,
        stderr: bool,
        tail: Option<usize>,
    ) -> anyhow::Result<String> {
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
    pub(super) fn last_lines(&self, name: &str) -> String {
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
    pub(super) fn remove(&self, name: &str) -> anyhow::Result<()> {
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
    pub(super) fn run(&self, spec: &ContainerSpec) -> anyhow::Result<String> {
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
    pub(super) fn pid(&self, name: &str) -> anyhow::Result<u32> {
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
    pub(super) fn not_running(&self, name: &str) -> Option<String> {
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
    pub(super) fn cpu_seconds(&self, name: &str) -> anyhow::Result<f64> {
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

/// What one container is started with.
pub(super) struct ContainerSpec {
    pub(super) role: String,
    pub(super) image: &'static str,
    pub(super) args: Vec<String>,
    /// `KEY=VALUE`.
    pub(super) env: Vec<String>,
    pub(super) user: Option<String>,
    /// `host`, or `none` and `container:NAME` for icecream's namespace.
    pub(super) network: String,
    /// Host paths mounted read-write at the same path.
    pub(super) binds: Vec<String>,
    pub(super) nano_cpus: Option<i64>,
    pub(super) memory: Option<i64>,
}

impl ContainerSpec {
    pub(super) fn new(role: impl Into<String>, image: &'static str) -> Self {
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
    pub(super) fn limit(&mut self, w: &WorkerSpec) {
        self.nano_cpus = Some((w.cpus * 1e9).round() as i64);
        self.memory = w
            .memory_mb
            .map(|mb| i64::try_from(mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX));
    }
}

/// `line` cut to [`LINE_CHARS`] characters.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
}
