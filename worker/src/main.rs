use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// gridcc worker: compiles jobs placed on it by the coordinator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Coordinator URL: http://HOST:PORT, or https://HOST:PORT for TLS
    /// (then also --tls-ca, --tls-cert and --tls-key).
    #[arg(long, env = "GRIDCC_COORDINATOR")]
    coordinator: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Address clients should connect to (default: the bound address).
    #[arg(long)]
    advertise: Option<String>,
    /// Jobs to run at once (default: the CPU quota rounded up).
    #[arg(long)]
    slots: Option<u32>,
    /// Relative CPU speed reported to the coordinator (default: CPU quota).
    #[arg(long, conflicts_with = "calibrate")]
    capacity: Option<f64>,
    /// Measure the CPU speed at start-up (a 0.3 s integer benchmark on
    /// ceil(quota) threads) and report that as capacity instead of the
    /// quota. 1.0 means one core of gridcc's reference machine (a 2-core
    /// x86-64 VM, unthrottled); the result is never above the CPU quota.
    /// The coordinator refines it further from finished jobs.
    #[arg(long)]
    calibrate: bool,
    /// Jobs allowed to wait for a slot (default: twice the slots).
    #[arg(long)]
    queue: Option<u32>,
    /// Directory for the job stages: one per slot, kept across jobs so a job writes only the files that differ from the last one's
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// CPU seconds a compile may use (each of its processes); 0 = no limit.
    #[arg(long, default_value_t = 300)]
    job_cpu_s: u64,
    /// Address space a compile's process may map, in MiB; 0 = no limit.
    #[arg(long, default_value_t = 4096)]
    job_memory_mb: u64,
    /// Wall-clock seconds a compile may take before it is killed; 0 = no
    /// limit.
    #[arg(long, default_value_t = 600)]
    job_wall_s: u64,
    /// Serve Prometheus metrics over plain HTTP at http://ADDR/metrics
    /// (port 0 picks a free port, announced on stdout as `metrics listening
    /// on IP:PORT` after the `listening on` line). Off unless given.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// When started as root, run compiles as this user (default: nobody).
    #[arg(long, value_name = "USER")]
    compile_user: Option<String>,
    /// When started as root, run compiles as root too. Without this flag a
    /// root worker never does.
    #[arg(long, conflicts_with = "compile_user")]
    compile_as_root: bool,
    /// Read the worker's token from FILE (contents trimmed) instead of
    /// GRIDCC_TOKEN or GRIDCC_TOKEN_FILE: the grid's shared token, or on a
    /// grid with roles the coordinator's --worker-token-file. The worker
    /// sends it to the coordinator; clients must show a client token, which
    /// the coordinator names to the worker (until then, this one). A
    /// coordinator that refuses the token makes the worker exit with status
    /// 1 (retrying cannot fix a token).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Serve TLS with this PEM certificate (chain); needs --tls-key and an
    /// https:// coordinator URL (clients reach workers with the
    /// coordinator's scheme). The certificate must name the --advertise
    /// address (an IP SAN for an IP address).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) to check an https:// coordinator with
    /// [env: GRIDCC_TLS_CA].
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Directory of the shared cache: results of finished jobs by key,
    /// answered to any client that sends the same job (default:
    /// $GRIDCC_CACHE_DIR/worker, else ~/.cache/gridcc/worker).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Size bound of the shared cache, e.g. 10G, 500M; least recently used
    /// entries are evicted past it. 0 turns the shared cache off.
    #[arg(long, value_name = "SIZE", default_value = "10G")]
    cache_size: String,
    /// Disk for received inputs, kept by digest under the cache dir's
    /// `inputs/` so a repeated job's input is not uploaded again (e.g. 1G,
    /// 256M; 0 = off). Least recently used inputs are evicted past it
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    input_cache_size: String,
    /// Run jobs without the sandbox. By default every job runs in a
    /// bubblewrap sandbox holding only the compiler's files and the job's
    /// (hermetic jobs: the client's own command line over its input tree),
    /// and a worker that cannot start one exits with the reason. This flag
    /// accepts the risk instead: a job can then read any file the compile
    /// user can (docs/security.md). `gridcc status` shows such a worker's
    /// job mode as "unsandboxed".
    #[arg(long)]
    no_sandbox: bool,
    /// The sandbox is the default now; kept so that existing command lines
    /// still work.
    #[arg(long, hide = true, conflicts_with = "no_sandbox")]
    hermetic: bool,
}

fn main() -> ExitCode {
    // The launcher of a kept sandbox is this binary, run inside it: no
    // argument parsing, no runtime, nothing but its loop.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            gridcc_worker::hermetic::launcher::INIT_ARG,
        ))
    {
        return ExitCode::from(gridcc_worker::hermetic::launcher::serve());
    }
    let args = Args::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridcc-worker: {}", gridcc_proto::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn serve(args: Args) -> anyhow::Result<()> {
    gridcc_proto::serve::init_tracing();

    let mut config = gridcc_worker::Config::new(args.coordinator);
    if let Some(slots) = args.slots {
        anyhow::ensure!(
            (1..=4096).contains(&slots),
            "--slots must be between 1 and 4096"
        );
        config.slots = slots;
        config.queue_limit = slots * 2;
        // Each job uses at most one CPU, so fewer slots cap the speed too.
        config.capacity = config.capacity.min(f64::from(slots));
    }
    if let Some(capacity) = args.capacity {
        anyhow::ensure!(
            capacity.is_finite() && capacity > 0.0,
            "--capacity must be a positive number"
        );
        config.capacity = capacity;
    }
    if args.calibrate {
        let quota = config.capacity;
        config.capacity =
            tokio::task::spawn_blocking(move || gridcc_worker::capacity::calibrate(quota))
                .await
                .context("CPU calibration failed")?;
        tracing::info!(quota, capacity = config.capacity, "calibrated CPU speed");
    }
    if let Some(queue) = args.queue {
        config.queue_limit = queue;
    }
    config.sandbox = !args.no_sandbox;
    if let Some(dir) = args.work_dir {
        config.work_dir = dir;
    }
    config.limits.cpu_s = (args.job_cpu_s > 0).then_some(args.job_cpu_s);
    config.limits.memory_bytes = match args.job_memory_mb {
        0 => None,
        mb => Some(
            mb.checked_mul(1 << 20)
                .context("--job-memory-mb is too large")?,
        ),
    };
    config.limits.wall =
        (args.job_wall_s > 0).then(|| std::time::Duration::from_secs(args.job_wall_s));
    let root = gridcc_worker::sandbox::is_root();
    config.limits.run_as = match (root, &args.compile_user, args.compile_as_root) {
        (true, _, true) => {
            tracing::warn!("--compile-as-root: client compiles run as root");
            None
        }
        (true, user, false) => Some(
            gridcc_worker::sandbox::lookup_user(user.as_deref().unwrap_or("nobody"))
                .context("choosing the user compiles run as")?,
        ),
        (false, Some(_), _) => anyhow::bail!("--compile-user needs a worker started as root"),
        (false, None, _) => None,
    };
    config.shared_cache_bytes = gridcc_cache::parse_size(&args.cache_size).with_context(|| {
        format!(
            "--cache-size {:?} is not a size like 10G or 500M",
            args.cache_size
        )
    })?;
    config.input_cache_bytes =
        gridcc_cache::parse_size(&args.input_cache_size).with_context(|| {
            format!(
                "--input-cache-size {:?} is not a size like 256M",
                args.input_cache_size
            )
        })?;
    if let Some(dir) = args.cache_dir {
        config.shared_cache_dir = dir;
    }
    config.advertise = args.advertise;
    config.token = gridcc_proto::auth::load(args.token_file.as_deref())?;
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(gridcc_proto::tls::ServerTls::load(cert, key)?),
        _ => None,
    };
    config.coordinator_ca = gridcc_proto::tls::ClientTls::from_flag_or_env(args.tls_ca.as_deref())?;
    let listener = gridcc_proto::serve::bind_and_announce(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics = match &args.metrics_listen {
        Some(addr) => Some(
            gridcc_proto::metrics::bind_and_announce(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?,
        ),
        None => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(gridcc_proto::serve::cancel_on_signal(shutdown.clone()));
    gridcc_worker::run_with_metrics(config, listener, metrics, shutdown).await?;
    Ok(())
}
