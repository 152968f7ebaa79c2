//! gridcc's coordinator: knows the workers, places each compile job on one of
//! them through a `gridcc-scheduler` policy, and hands out signed leases.
//!
//! - [`registry`]: workers, leases, counters; synchronous, clock injected.
//! - [`service`]: the tonic service (worker sessions, `Assign`, `Status`) and
//!   the background sweep that expires leases and silent workers.
//! - [`trace`]: the `--trace-out` JSON-lines file of finished jobs.
//! - `metrics`: the Prometheus series behind `--metrics-listen`.
//! - [`run`]: serve on a bound listener until the shutdown token fires;
//!   [`run_with_metrics`] also answers `GET /metrics` on a second one.

mod metrics;
pub mod registry;
mod service;
pub mod trace;

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
    /// The grid's token: every call without it is refused. `None` accepts
    /// every call.
    pub token: Option<gridcc_proto::auth::Token>,
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
            token: None,
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
    run_with_metrics(config, listener, None, shutdown).await
}

/// [`run`], and Prometheus metrics on `metrics` (plain HTTP, `GET
/// /metrics`) when given, until the same shutdown.
pub async fn run_with_metrics(
    config: Config,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    let policy = gridcc_scheduler::by_name(&config.policy)?;
    let registry = registry::Registry::new(policy, config.lease_ttl_ms, config.start_timeout_ms);
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
        gridcc_proto::serve::log_protection(bound, config.tls.is_some(), config.token.is_some());
    }
    let mut server = gridcc_proto::serve::server(config.tls.as_ref(), config.token.clone())?;
    let tasks = TaskTracker::new();
    let shared = service::Shared::new(registry, config, shutdown.clone(), tasks.clone(), trace);
    tasks.spawn(Arc::clone(&shared).sweep_forever());
    if let Some(metrics) = metrics {
        let shared = Arc::clone(&shared);
        tasks.spawn(gridcc_proto::metrics::serve(
            metrics,
            move || shared.metrics_text(),
            shutdown.clone(),
        ));
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
