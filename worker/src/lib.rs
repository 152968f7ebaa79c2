//! gridcc's worker: compiles preprocessed translation units for clients that
//! hold a coordinator lease, in private temp dirs, at most `slots` at once.
//!
//! - [`capacity`]: CPUs this process may use (cgroup quota aware).
//! - [`session`]: the long-lived session with the coordinator (hello, load,
//!   job events, keep-alives, reconnect with backoff).
//! - [`allowlist`]: the check every job's arguments pass before running.
//! - [`directives`]: refusing input text that would read worker files.
//! - [`headers`]: splitting source-mode text into one file per header, so
//!   the compiler keeps one name per file as it does locally.
//! - [`layout`]: where a job's input goes and the prefix maps that make the
//!   object name the client's paths.
//! - [`stage`]: job roots kept per slot across jobs, so a job writes only
//!   the files that differ from the last one's.
//! - [`job`]: running one compile in a stage.
//! - `jobs`: the leases this worker holds (each good for one job) and the
//!   load updates that report them to the coordinator.
//! - `shared_cache`: finished results by grid key on disk (the shared
//!   cache).
//! - [`tree`]: a hermetic job's input tree: checked, and laid out in a stage
//!   from the store.
//! - [`store`]: received inputs by digest on disk, so a repeated input is
//!   not uploaded again.
//! - [`sandbox`]: the user a compile runs as and its CPU, memory, wall-clock
//!   and output limits.
//! - [`hermetic`]: the bubblewrap sandbox every job runs in (unless the
//!   worker was started with `--no-sandbox`): only the job's input tree (at
//!   the client's paths), the compiler's own files, a private temp dir and
//!   its declared outputs; kept per slot, with a launcher inside, where the
//!   worker runs as root with a compile user.
//! - `service`: the tonic `Worker` service.
//! - `metrics`: the Prometheus series behind `--metrics-listen`.
//! - [`run`]: serve on a bound listener; drain on shutdown;
//!   [`run_with_metrics`] also answers `GET /metrics` on a second one.

pub mod allowlist;
pub mod capacity;
pub mod directives;
pub mod headers;
pub mod hermetic;
pub mod job;
mod jobs;
pub mod layout;
mod metrics;
pub mod sandbox;
pub mod sandboxed;
mod service;
pub mod session;
mod shared_cache;
pub mod stage;
pub mod store;
pub mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gridcc_proto::v1::{self, worker_server::WorkerServer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Default bound of the shared cache on disk.
pub const DEFAULT_SHARED_CACHE_BYTES: u64 = 10 << 30;
/// Default disk for inputs kept by digest: a few thousand large
/// translation units.
pub const DEFAULT_INPUT_CACHE_BYTES: u64 = 1 << 30;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Coordinator URL, e.g. `http://127.0.0.1:7700`.
    pub coordinator: String,
    /// Address clients connect to; defaults to the bound address.
    pub advertise: Option<String>,
    /// Jobs run at once.
    pub slots: u32,
    /// Relative CPU speed reported to the coordinator (1.0 = one core).
    pub capacity: f64,
    /// Jobs that may wait for a slot beyond those running.
    pub queue_limit: u32,
    /// Where job stages are made (one per slot, kept across jobs).
    pub work_dir: PathBuf,
    /// Largest input or output accepted, in bytes.
    pub max_payload: u64,
    /// Limits of each compile (its output limit is `max_payload`).
    pub limits: sandbox::Limits,
    /// `PATH`-style list of directories searched for compilers.
    pub compiler_path: String,
    /// Where compiler identities are cached.
    pub cache_dir: PathBuf,
    /// The shared result cache's directory (entries under `objects/`).
    pub shared_cache_dir: PathBuf,
    /// The shared cache's size bound in bytes; 0 turns it off.
    pub shared_cache_bytes: u64,
    /// Disk for received inputs kept by digest (under
    /// `shared_cache_dir/inputs`); 0 turns it off.
    pub input_cache_bytes: u64,
    /// Run every job in the sandbox (the default); `false` is
    /// `--no-sandbox`, the operator's explicit acceptance that jobs can
    /// read what the compile user can.
    pub sandbox: bool,
    /// The worker's token (the grid's shared token, or its worker token):
    /// sent to the coordinator. Clients must show it too until the
    /// coordinator's welcome names the client tokens to take instead.
    pub token: Option<gridcc_proto::auth::Token>,
    /// Serve TLS with this certificate (clients come with `https://`).
    pub tls: Option<gridcc_proto::tls::ServerTls>,
    /// The CA to check an `https://` coordinator with.
    pub coordinator_ca: Option<gridcc_proto::tls::ClientTls>,
}

impl Config {
    /// Defaults for this machine: slots and capacity from the CPU quota.
    pub fn new(coordinator: String) -> Self {
        let quota = capacity::cpu_quota();
        let slots = capacity::default_slots();
        Self {
            coordinator,
            advertise: None,
            slots,
            capacity: quota,
            queue_limit: slots * 2,
            work_dir: std::env::temp_dir(),
            sandbox: true,
            max_payload: gridcc_proto::payload::MAX_PAYLOAD_BYTES,
            limits: sandbox::Limits::output_only(gridcc_proto::payload::MAX_PAYLOAD_BYTES),
            compiler_path: std::env::var("PATH")
                .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            cache_dir: gridcc_toolchain::cache_dir().join("toolchains"),
            shared_cache_dir: gridcc_toolchain::cache_dir().join("worker"),
            shared_cache_bytes: DEFAULT_SHARED_CACHE_BYTES,
            input_cache_bytes: DEFAULT_INPUT_CACHE_BYTES,
            token: None,
            tls: None,
            coordinator_ca: None,
        }
    }
}

/// Errors that stop the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no C/C++ compiler found in {0}")]
    NoCompilers(String),
    #[error("cannot read the bound address: {0}")]
    Addr(#[source] std::io::Error),
    #[error("advertise address {0:?} is not IP:PORT")]
    BadAdvertise(String),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] gridcc_proto::tls::TlsError),
    #[error("the coordinator URL is https://, so clients will reach this worker over TLS too: give it --tls-cert and --tls-key")]
    PlainWorkerInTlsGrid,
    #[error("--tls-cert makes this worker serve TLS, and clients use the coordinator's scheme for workers: the coordinator URL must be https://")]
    TlsWorkerInPlainGrid,
    #[error(transparent)]
    TokenRefused(#[from] session::TokenRefused),
    #[error("cannot make the work dir {0}: {1}")]
    WorkDir(PathBuf, #[source] std::io::Error),
    #[error("cannot sandbox jobs here: {0}; start with --no-sandbox to run them without one (they can then read any file the compile user can; docs/security.md)")]
    NoSandbox(String),
}

/// Serves jobs on `listener` until `shutdown` is cancelled; then drains:
/// tells the coordinator it is going away, refuses new jobs, lets running
/// ones finish, and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    run_with_metrics(config, listener, None, shutdown).await
}

/// [`run`], and Prometheus metrics on `metrics` (plain HTTP, `GET
/// /metrics`) when given, served until the worker has drained.
pub async fn run_with_metrics(
    config: Config,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    // Clients reach workers with the coordinator URL's scheme
    // (`gridcc_proto::tls::worker_url`), so a grid is TLS on every hop or
    // on none.
    match (
        gridcc_proto::tls::is_https(&config.coordinator),
        config.tls.is_some(),
    ) {
        (true, false) => return Err(WorkerError::PlainWorkerInTlsGrid),
        (false, true) => return Err(WorkerError::TlsWorkerInPlainGrid),
        _ => {}
    }
    gridcc_proto::tls::endpoint(&config.coordinator, config.coordinator_ca.as_ref())?;
    let gate = gridcc_proto::auth::RequireTokenLayer::new(
        config.token.as_ref().map(gridcc_proto::auth::Gate::shared),
    );
    let gate_cell = gate.cell();
    let server = gridcc_proto::serve::server(config.tls.as_ref(), gate)?;
    let skip = std::env::current_exe().ok();
    let cache = gridcc_toolchain::IdentityCache::new(config.cache_dir.clone());
    let compiler_path = config.compiler_path.clone();
    let mut found = tokio::task::spawn_blocking(move || {
        gridcc_toolchain::discover(&compiler_path, &cache, skip.as_deref())
    })
    .await
    .unwrap_or_default();
    if found.is_empty() {
        return Err(WorkerError::NoCompilers(config.compiler_path));
    }
    // Made when missing, as the cache dirs are: job stages and the
    // sandbox probe go there.
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|e| WorkerError::WorkDir(config.work_dir.clone(), e))?;
    let bound = listener.local_addr().map_err(WorkerError::Addr)?;
    let advertise = match &config.advertise {
        Some(a) => a.clone(),
        None if bound.ip().is_unspecified() => format!("127.0.0.1:{}", bound.port()),
        None => bound.to_string(),
    };
    if advertise.parse::<std::net::SocketAddr>().is_err() {
        return Err(WorkerError::BadAdvertise(advertise));
    }
    for t in &found {
        tracing::info!(names = ?t.names, version = %t.identity.version, "offering compiler");
    }
    let results = if config.shared_cache_bytes == 0 {
        None
    } else {
        let dir = config.shared_cache_dir.clone();
        let max = config.shared_cache_bytes;
        let opened =
            tokio::task::spawn_blocking(move || shared_cache::ResultCache::open(&dir, max))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match opened {
            Ok(results) => {
                tracing::info!(dir = %results.dir().display(), bytes = results.bytes(), max, "shared cache");
                Some(Arc::new(results))
            }
            // The worker still compiles; it only cannot keep results.
            Err(e) => {
                tracing::warn!(dir = %config.shared_cache_dir.display(), error = %e, "shared cache off: cannot use its directory");
                None
            }
        }
    };
    let inputs = if config.input_cache_bytes == 0 {
        None
    } else {
        let dir = config.shared_cache_dir.join("inputs");
        let max = config.input_cache_bytes;
        let opened = tokio::task::spawn_blocking(move || store::Store::open(&dir, max))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        match opened {
            Ok(store) => Some(Arc::new(store)),
            // The worker still compiles; clients only upload every input.
            Err(e) => {
                tracing::warn!(dir = %config.shared_cache_dir.join("inputs").display(), error = %e, "input store off: cannot use its directory");
                None
            }
        }
    };
    let hermetic = if config.sandbox {
        let h = hermetic_setup(&config, &found)
            .await
            .map_err(WorkerError::NoSandbox)?;
        tracing::info!(
            compilers = h.toolchains.len(),
            "jobs run in a bubblewrap sandbox"
        );
        // A compiler whose own files could not be listed cannot run in the
        // sandbox, so it is not offered at all (hermetic_setup said why).
        found.retain(|t| h.toolchains.contains_key(&t.identity.digest));
        Some(Arc::new(h))
    } else {
        tracing::warn!(
            "--no-sandbox: jobs run without a sandbox and can read any file the compile user can"
        );
        None
    };
    // Hermetic jobs need the sandbox and the input store; text jobs run in
    // the sandbox all the same.
    let hermetic_refusal = match (&hermetic, &inputs) {
        (Some(_), Some(_)) => String::new(),
        (Some(_), None) => "no input store (--input-cache-size 0)".to_owned(),
        (None, _) => "started with --no-sandbox".to_owned(),
    };
    if !hermetic_refusal.is_empty() {
        tracing::warn!("hermetic jobs: off: {hermetic_refusal}; this worker takes text jobs only");
    }
    let cached_keys = match &results {
        Some(r) => {
            let r = Arc::clone(r);
            tokio::task::spawn_blocking(move || r.recent_keys(shared_cache::HELLO_KEYS))
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|k| k.to_string())
                .collect()
        }
        None => Vec::new(),
    };
    let hello = v1::WorkerHello {
        advertise_addr: advertise,
        slots: config.slots.max(1),
        capacity: config.capacity,
        toolchains: found
            .iter()
            .map(|t| v1::Toolchain {
                identity: t.identity.digest.clone(),
                names: t.names.clone(),
                version: t.identity.version.clone(),
            })
            .collect(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        version: gridcc_proto::VERSION.to_owned(),
        cached_keys,
        takes_input_offers: config.input_cache_bytes > 0,
        reports_leases: true,
        hermetic: hermetic.is_some() && inputs.is_some(),
        hermetic_refusal,
        unsandboxed: hermetic.is_none(),
    };
    let toolchains: HashMap<String, PathBuf> = found
        .into_iter()
        .map(|t| (t.identity.digest, t.path))
        .collect();

    gridcc_proto::serve::log_protection(bound, config.tls.is_some(), config.token.is_some());
    let registration = Arc::new(RwLock::new(None));
    let (events_tx, events_rx) = mpsc::channel(1024);
    let jobs = Arc::new(jobs::Jobs::new(events_tx, Arc::clone(&registration)));
    // Draining has two steps: the session tells the coordinator
    // (`going_away`), then, [`LEASE_GRACE`] later, the worker refuses
    // new jobs (`draining`); a client placed here just before the
    // coordinator heard is still served.
    let going_away = CancellationToken::new();
    let draining = CancellationToken::new();
    let session_stop = CancellationToken::new();
    // Fires on shutdown, or when the coordinator refuses the token.
    let stop = shutdown.child_token();
    let tasks = TaskTracker::new();
    let session = session::run(
        session::SessionConfig {
            coordinator: config.coordinator.clone(),
            token: config.token.clone(),
            gate: gate_cell,
            tls: config.coordinator_ca.clone(),
            hello,
            connect_timeout: Duration::from_secs(2),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        },
        Arc::clone(&registration),
        events_rx,
        {
            let jobs = Arc::clone(&jobs);
            move || jobs.report_load()
        },
        going_away.clone(),
        session_stop.clone(),
    );
    let session = tasks.spawn({
        let stop = stop.clone();
        async move {
            let result = session.await;
            if result.is_err() {
                stop.cancel();
            }
            result
        }
    });

    let shared = Arc::new(service::Shared {
        toolchains,
        registration,
        jobs,
        slots: Semaphore::new(config.slots.max(1) as usize),
        queue_limit: config.queue_limit,
        stages: stage::Stages::new(&config.work_dir, config.limits.run_as),
        hermetic,
        max_payload: config.max_payload,
        limits: sandbox::Limits {
            max_output: config.max_payload,
            ..config.limits.clone()
        },
        draining: draining.clone(),
        slots_total: config.slots.max(1),
        metrics: Default::default(),
        results,
        inputs,
    });
    if let Some(metrics) = metrics {
        let shared = Arc::clone(&shared);
        // Stopped with the session, after the drain: a scrape during the
        // drain still sees the last jobs finish.
        tasks.spawn(gridcc_proto::metrics::serve(
            metrics,
            move || shared.metrics_text(),
            session_stop.clone(),
        ));
    }
    let incoming = gridcc_proto::serve::incoming(listener);
    let drain = {
        let draining = draining.clone();
        async move {
            stop.cancelled().await;
            going_away.cancel();
            tokio::time::sleep(LEASE_GRACE).await;
            tracing::info!("draining: refusing new jobs, finishing running ones");
            draining.cancel();
        }
    };
    // Graceful shutdown lets in-flight Compile calls finish.
    let mut server = server;
    let result = server
        .add_service(WorkerServer::new(service::WorkerService::new(shared)))
        .serve_with_incoming_shutdown(incoming, drain)
        .await;
    session_stop.cancel();
    tasks.close();
    tasks.wait().await;
    if let Ok(Err(refused)) = session.await {
        return Err(refused.into());
    }
    result.map_err(WorkerError::from)
}

/// How long a worker told to stop still takes new jobs after telling the
/// coordinator it is going: a client the coordinator placed here just
/// before it heard comes within a round trip or two.
const LEASE_GRACE: Duration = Duration::from_millis(500);

/// The sandbox every job runs in: `bwrap` on `PATH` starts one here (as
/// the compile user, under the work dir), and each compiler's own files
/// are found. `Err` is one line saying why not.
async fn hermetic_setup(
    config: &Config,
    found: &[gridcc_toolchain::Discovered],
) -> Result<sandboxed::Hermetic, String> {
    // PATH first, then where packages put it (a worker's PATH may be
    // narrowed to choose its compilers).
    let bwrap = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/bin", "/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or("bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)")?;
    hermetic::probe(&bwrap, &config.work_dir, config.limits.run_as).await?;
    let mut toolchains = HashMap::new();
    for t in found {
        match hermetic::toolchain_files(&t.path) {
            Ok(files) => {
                toolchains.insert(t.identity.digest.clone(), Arc::new(files));
            }
            Err(e) => {
                tracing::warn!(compiler = %t.path.display(), error = %e, "not offered: its files cannot be listed for the sandbox")
            }
        }
    }
    if toolchains.is_empty() {
        return Err("no compiler's own files could be listed".into());
    }
    let mut hermetic = sandboxed::Hermetic {
        bwrap,
        toolchains,
        kept: None,
    };
    // A sandbox kept per slot needs a compile user that is not the
    // worker's own (see hermetic::kept); without one, each job starts its
    // own sandbox, as it does when the kept one cannot start here.
    match config.limits.run_as {
        Some(user) => match hermetic.keep_sandboxes(&config.work_dir, user).await {
            Ok(()) => tracing::info!("hermetic jobs: one sandbox kept per slot"),
            Err(why) => tracing::warn!("hermetic jobs: a sandbox per job: {why}"),
        },
        None => tracing::info!(
            "hermetic jobs: a sandbox per job (kept ones need a root worker with a compile user)"
        ),
    }
    Ok(hermetic)
}
