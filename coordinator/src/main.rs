use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// gridcc coordinator: places compile jobs on workers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: String,
    /// Placement policy.
    #[arg(long, default_value = "least-loaded")]
    policy: String,
    /// Remove a worker not heard from for this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    worker_timeout_ms: u64,
    /// Keep-alive interval on worker sessions, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    keepalive_interval_ms: u64,
    /// How long a lease stays valid, in ms: a worker refuses it later.
    #[arg(long, default_value_t = 60_000)]
    lease_ttl_ms: u64,
    /// Free a lease whose worker has not taken up its job this many ms
    /// after it was handed out (the client went away or never connected;
    /// a slow client still compiles, the worker's reports keep the count).
    #[arg(long, default_value_t = 1_000)]
    start_timeout_ms: u64,
    /// How long a placement request waits for a free slot before the client
    /// is told to compile locally, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    queue_timeout_ms: u64,
    /// Most placement requests waiting at once; more compile locally.
    #[arg(long, default_value_t = 1024)]
    max_waiting: usize,
    /// What a placement request does when every slot is busy: `queue` waits
    /// up to --queue-timeout-ms for a slot, then compiles locally;
    /// `local-if-client-idle` (default) tells a client that reports at least
    /// one idle CPU to compile locally at once (its core runs the job now,
    /// a queued job waits a whole job's time for a slot) and queues the rest.
    #[arg(long, value_name = "MODE", default_value = "local-if-client-idle",
          value_parser = ["queue", "local-if-client-idle"])]
    when_busy: String,
    /// Serve the HTTP port on ADDR: the live monitor page at `/`, its JSON
    /// API and event stream under `/api/v1/`, Prometheus metrics at
    /// `/metrics` (port 0 picks a free port, announced on stdout as `http
    /// listening on IP:PORT` after the `listening on` line). With a token,
    /// the page and the API ask for it; with --tls-cert, it speaks TLS.
    /// Off unless given.
    #[arg(long, value_name = "ADDR", conflicts_with = "metrics_listen")]
    http_listen: Option<String>,
    /// The former name of --http-listen (announced as `metrics listening
    /// on IP:PORT`, as before).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Append one JSON line per finished job to this file (for
    /// `gridcc-bench simulate --trace`).
    #[arg(long)]
    trace_out: Option<std::path::PathBuf>,
    /// Load costs learned from earlier builds before the first job: a
    /// --trace-out file (or any JSON lines with `key` and `cost_s`), so
    /// `weighted` and `lookahead` know the heavy files from the first build
    /// of a session.
    #[arg(long, value_name = "FILE")]
    costs: Option<std::path::PathBuf>,
    /// Read the grid's token from FILE (contents trimmed) instead of
    /// GRIDCC_TOKEN or GRIDCC_TOKEN_FILE: one token for every role (workers,
    /// clients, `gridcc status`), for a small trusted grid. With a token,
    /// every call without it is refused; without one (and without
    /// --worker-token-file), anyone who reaches the port may use the grid.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["worker_token_file", "client_tokens"])]
    token_file: Option<PathBuf>,
    /// Separate roles: workers must present the token in FILE to register
    /// (a client token cannot), and clients one of --client-tokens (the
    /// worker token cannot place or run jobs). Needs --client-tokens.
    #[arg(long, value_name = "FILE", requires = "client_tokens")]
    worker_token_file: Option<PathBuf>,
    /// The client users' tokens, one `NAME TOKEN` per line (`#` comments);
    /// the name shows in the logs and on the monitor. Workers are told
    /// (digests only) which tokens to take. Needs --worker-token-file.
    #[arg(long, value_name = "FILE", requires = "worker_token_file")]
    client_tokens: Option<PathBuf>,
    /// Serve TLS with this PEM certificate (chain); needs --tls-key.
    /// Clients then use an https:// URL. Without it the coordinator serves
    /// plain TCP: for loopback or a trusted network only.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "gridcc-coordinator: {}",
                gridcc_proto::error_line(e.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve(args: Args) -> anyhow::Result<()> {
    gridcc_proto::serve::init_tracing();
    gridcc_scheduler::by_name(&args.policy)?;
    use gridcc_proto::auth::{self, Credentials};
    let credentials = match (&args.worker_token_file, &args.client_tokens) {
        (Some(worker), Some(clients)) => Some(Credentials::Roles {
            worker: auth::Token::from_file(worker)?,
            clients: auth::load_client_tokens(clients)?,
        }),
        _ => auth::load(args.token_file.as_deref())?.map(Credentials::Shared),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(gridcc_proto::tls::ServerTls::load(cert, key)?),
        _ => None,
    };
    let listener = gridcc_proto::serve::bind_and_announce(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let http = match (&args.http_listen, &args.metrics_listen) {
        (Some(addr), _) => Some(
            bind_http(addr)
                .await
                .with_context(|| format!("cannot listen for HTTP on {addr}"))?,
        ),
        (None, Some(addr)) => Some(
            gridcc_proto::metrics::bind_and_announce(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?,
        ),
        (None, None) => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(gridcc_proto::serve::cancel_on_signal(shutdown.clone()));
    let config = gridcc_coordinator::Config {
        policy: args.policy,
        worker_timeout_ms: args.worker_timeout_ms,
        keepalive_interval_ms: args.keepalive_interval_ms,
        lease_ttl_ms: args.lease_ttl_ms,
        start_timeout_ms: args.start_timeout_ms,
        queue_timeout_ms: args.queue_timeout_ms,
        max_waiting: args.max_waiting,
        local_when_client_idle: args.when_busy == "local-if-client-idle",
        trace_out: args.trace_out,
        costs: args.costs,
        credentials,
        tls,
    };
    gridcc_coordinator::run_with_http(config, listener, http, shutdown).await?;
    Ok(())
}

/// Binds the HTTP port and announces it as `http listening on IP:PORT`.
async fn bind_http(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    use std::io::Write as _;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // Not println!: a reader that closed our stdout must not take the
    // coordinator down with a panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "http listening on {bound}");
    let _ = out.flush();
    Ok(listener)
}
