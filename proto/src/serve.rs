//! What both gridcc servers (coordinator and worker) need around their tonic
//! service: logging set-up, the announced bind, an accept stream with
//! TCP_NODELAY, the server builder with TLS and the token check, and
//! shutdown on SIGTERM or SIGINT.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// Accepted connections of `listener`, with TCP_NODELAY set: small RPCs on
/// loopback otherwise stall 40 ms on Nagle and delayed ACKs.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|s| {
            // Best effort: a socket without NODELAY still works, only slower.
            let _ = s.set_nodelay(true);
        })
    })
}

/// How often a server pings a connection's peer (HTTP/2 PING).
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a server waits for the answer before dropping the connection.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The tonic server builder every gridcc server starts from: TLS when
/// `tls` is given, and every call checked by `gate` (see
/// [`crate::auth::RequireTokenLayer`]).
pub fn server(
    tls: Option<&crate::tls::ServerTls>,
    gate: crate::auth::RequireTokenLayer,
) -> Result<
    tonic::transport::Server<
        tower_layer::Stack<crate::auth::RequireTokenLayer, tower_layer::Identity>,
    >,
    tonic::transport::Error,
> {
    // HTTP/2 pings find a peer that vanished without closing its
    // connection (a link gone down, a host powered off): its calls are
    // dropped, so a worker kills the job of a client that cannot read its
    // result, within interval + timeout instead of TCP's many minutes.
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config())?;
    }
    Ok(builder.layer(gate))
}

/// Logs how a server at `bound` is protected; warns when it takes plain,
/// tokenless calls on an address other machines can reach.
pub fn log_protection(bound: std::net::SocketAddr, tls: bool, token: bool) {
    match (tls, token) {
        (true, true) => tracing::info!("TLS on; every call must carry the grid's token"),
        (true, false) => tracing::info!("TLS on; no token required (GRIDCC_TOKEN unset)"),
        (false, true) => tracing::info!(
            "plain TCP (no --tls-cert): the token travels in clear; trusted networks only"
        ),
        (false, false) if bound.ip().is_loopback() => {
            tracing::info!("plain TCP, no token: loopback only")
        }
        (false, false) => tracing::warn!(
            "plain TCP and no token on {bound}: anyone who reaches this port can use it; \
             set GRIDCC_TOKEN and --tls-cert/--tls-key outside a trusted network"
        ),
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

/// Binds `addr` and prints the first stdout line that scripts and tests rely
/// on (a contract): `listening on IP:PORT`, with the port actually bound.
pub async fn bind_and_announce(addr: &str) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    println!("listening on {bound}");
    Ok(listener)
}

/// Server logging: the `GRIDCC_LOG` filter (default `info`) to stderr,
/// coloured only on a terminal; see [`init_logs`].
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRIDCC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    init_logs(filter);
}

/// Logs with `filter` to stderr: one JSON object per line when
/// `GRIDCC_LOG_FORMAT=json` (for log shippers: timestamp, level, target,
/// message and fields as keys), else text, coloured only on a terminal.
/// Does nothing when a subscriber is already set.
pub fn init_logs(filter: tracing_subscriber::EnvFilter) {
    let json = std::env::var("GRIDCC_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
