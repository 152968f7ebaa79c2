//! gridcc's coordinator: knows the workers, places each compile job on one of
//! them through a `gridcc-scheduler` policy, and hands out signed leases.
//!
//! - [`registry`]: workers, leases, counters; synchronous, clock injected.
//! - [`service`]: the tonic service (worker sessions, `Assign`, `Status`) and
//!   the background sweep that expires leases and silent workers.
//! - [`trace`]: the `--trace-out` JSON-lines file of finished jobs.
//! - [`costs`]: the `--costs` file (a trace of earlier builds) whose costs
//!   are loaded before the first job.
//! - `metrics`: the Prometheus series behind `/metrics`.
//! - `monitor`: what the monitor page shows (jobs, workers, one sample a
//!   second) in bounded rings, and the events its live stream sends.
//! - `web`: the HTTP port (`--http-listen`): the page, the JSON API, the
//!   event stream, `/metrics`; token and TLS as on the gRPC port.
//! - [`run`]: serve on a bound listener until the shutdown token fires;
//!   [`run_with_http`] also serves the HTTP port on a second one.

pub mod costs;
mod metrics;
mod monitor;
pub mod registry;
mod service;
pub mod trace;
mod web;

use std::sync::Arc;

use gridcc_proto::v1::coordinator_server::CoordinatorServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Coordinator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Placement policy name (see `gridcc_scheduler::POLICY_NAMES`).
    pub policy: String,
    /// A worker not heard from for this long is removed and its leases fail.
    pub worker_timeout_ms: u64,
    /// How often each side of a worker session sends a keep-alive.
    pub keepalive_interval_ms: u64,
    /// How long a lease's signature is valid: a worker refuses it later.
    pub lease_ttl_ms: u64,
    /// A lease its worker does not hold within this time after it was
    /// handed out is freed: its client went away (Ctrl-C while the answer
    /// was on its way) or never connected. A client that is only slow
    /// still compiles (the worker checks the signature, not the
    /// coordinator); the worker's own load reports then keep the count.
    pub start_timeout_ms: u64,
    /// How long an `Assign` waits for a free slot before answering
    /// "compile locally".
    pub queue_timeout_ms: u64,
    /// Most `Assign` requests waiting for a slot at once; more are answered
    /// "compile locally" at once.
    pub max_waiting: usize,
    /// When every slot is busy, tell a client that reports at least one
    /// idle CPU to compile locally at once instead of queueing it.
    pub local_when_client_idle: bool,
    /// Where to append one JSON line per finished job, if anywhere.
    pub trace_out: Option<std::path::PathBuf>,
    /// Costs learned from earlier builds (a trace, or any JSON lines with
    /// `key` and `cost_s`), loaded before the first job; see `costs.rs`.
    pub costs: Option<std::path::PathBuf>,
    /// The grid's credentials: one shared token, or a worker token and a
    /// token per client user; every call without the one its method needs
    /// is refused. `None` accepts every call.
    pub credentials: Option<gridcc_proto::auth::Credentials>,
    /// Serve TLS with this certificate; `None` serves plain TCP.
    pub tls: Option<gridcc_proto::tls::ServerTls>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: "least-loaded".to_owned(),
            worker_timeout_ms: 10_000,
            keepalive_interval_ms: 2_000,
            lease_ttl_ms: 60_000,
            start_timeout_ms: 1_000,
            queue_timeout_ms: 30_000,
            max_waiting: 1024,
            local_when_client_idle: true,
            trace_out: None,
            costs: None,
            credentials: None,
            tls: None,
        }
    }
}

/// Errors that stop the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error(transparent)]
    Policy(#[from] gridcc_scheduler::UnknownPolicy),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("costs file {path}: {reason}")]
    Costs {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot open the trace file {path}: {source}")]
    Trace {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Serves the coordinator on `listener` until `shutdown` is cancelled, then
/// waits for every task it spawned.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    run_with_http(config, listener, None, shutdown).await
}

/// [`run`], and the HTTP port on `http` when given (the monitor page at
/// `/`, the JSON API and event stream under `/api/v1/`, Prometheus
/// metrics at `/metrics`), until the same shutdown.
pub async fn run_with_http(
    config: Config,
    listener: TcpListener,
    http: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    let policy = gridcc_scheduler::by_name(&config.policy)?;
    let mut registry =
        registry::Registry::new(policy, config.lease_ttl_ms, config.start_timeout_ms);
    if let Some(path) = &config.costs {
        let bad = |reason: String| CoordinatorError::Costs {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let costs = costs::parse(&text).map_err(|e| bad(e.to_string()))?;
        let n = registry.preload_costs(costs);
        tracing::info!(path = %path.display(), files = n, "loaded learned costs");
    }
    let trace = match &config.trace_out {
        Some(path) => {
            Some(
                trace::TraceFile::open(path).map_err(|source| CoordinatorError::Trace {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    if let Ok(bound) = listener.local_addr() {
        gridcc_proto::serve::log_protection(
            bound,
            config.tls.is_some(),
            config.credentials.is_some(),
        );
    }
    let gate = config
        .credentials
        .as_ref()
        .map(gridcc_proto::auth::Credentials::gate);
    let mut server = gridcc_proto::serve::server(
        config.tls.as_ref(),
        gridcc_proto::auth::RequireTokenLayer::new(gate),
    )?;
    let tasks = TaskTracker::new();
    // The monitor keeps its history only when someone can look at it.
    let monitor = http.as_ref().map(|_| Arc::new(monitor::Monitor::new()));
    let credentials = config.credentials.clone().map(Arc::new);
    let tls = config.tls.as_ref().map(|t| t.acceptor().clone());
    let shared = service::Shared::new(
        registry,
        config,
        shutdown.clone(),
        tasks.clone(),
        trace,
        monitor.clone(),
    );
    tasks.spawn(Arc::clone(&shared).sweep_forever());
    if let (Some(http), Some(monitor)) = (http, monitor) {
        tasks.spawn(Arc::clone(&shared).sample_forever());
        let batches = Arc::clone(&monitor);
        let stop = shutdown.clone();
        tasks.spawn(async move { batches.send_batches_forever(stop).await });
        let web = web::Web {
            shared: Arc::clone(&shared),
            monitor,
            credentials,
            tls,
        };
        tasks.spawn(web::serve(http, Arc::new(web), shutdown.clone()));
    }

    let incoming = gridcc_proto::serve::incoming(listener);
    let result = server
        .add_service(CoordinatorServer::new(service::CoordinatorService::new(
            shared,
        )))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
        .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    result.map_err(CoordinatorError::from)
}
