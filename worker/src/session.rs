//! The worker's side of its session with the coordinator: connect, say
//! hello, keep the lease key from the welcome, forward job events and
//! keep-alives; on any loss, forget the key (its leases are void) and
//! reconnect with exponential backoff, so a restarted coordinator gets its
//! workers back without an operator.
//!
//! One failure is not retried: a coordinator that refuses this worker's
//! token. Retrying cannot fix a wrong or missing token, and a worker that
//! keeps running looks healthy to a supervisor while it serves nobody; so
//! [`run`] returns [`TokenRefused`] and the worker exits non-zero, for an
//! operator (or a restart policy) to act on.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use gridcc_proto::lease::KEY_LEN;
use gridcc_proto::v1::{self, coordinator_message, worker_message, WorkerMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// What the current coordinator session gave this worker.
#[derive(Debug, Clone)]
pub struct Registration {
    pub worker_id: u64,
    pub lease_key: [u8; KEY_LEN],
}

/// The registration shared with the compile service; `None` while not
/// connected, so no lease is accepted then.
pub type SharedRegistration = Arc<RwLock<Option<Registration>>>;

/// Settings of the session loop.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub coordinator: String,
    /// Sent with every call to the coordinator.
    pub token: Option<gridcc_proto::auth::Token>,
    /// The worker's own server's gate: replaced by the client tokens the
    /// coordinator's welcome names.
    pub gate: gridcc_proto::auth::GateCell,
    /// The CA to check an `https://` coordinator with.
    pub tls: Option<gridcc_proto::tls::ClientTls>,
    pub hello: v1::WorkerHello,
    pub connect_timeout: Duration,
    /// Backoff bounds between reconnection attempts.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

fn set_registration(shared: &SharedRegistration, value: Option<Registration>) {
    *shared.write().unwrap_or_else(|e| e.into_inner()) = value;
}

/// The coordinator refused this worker's token (or its lack of one), or
/// found it is a client's.
#[derive(Debug, thiserror::Error)]
#[error("coordinator {url} refused the token: {message}")]
pub struct TokenRefused {
    pub url: String,
    pub message: String,
}

/// Runs sessions until `shutdown`; `events` carries job events and load
/// updates from the compile service, and `report_load` queues a load update
/// there; it is called with every keep-alive, so that the coordinator's
/// picture of this worker's jobs is never older than one interval. When
/// `going_away` fires, sends `GoingAway` on the current session. Returns early
/// only when the coordinator refuses the token.
pub async fn run(
    config: SessionConfig,
    registration: SharedRegistration,
    mut events: mpsc::Receiver<WorkerMessage>,
    report_load: impl Fn(),
    going_away: CancellationToken,
    shutdown: CancellationToken,
) -> Result<(), TokenRefused> {
    let mut backoff = config.min_backoff;
    loop {
        let result = one_session(
            &config,
            &registration,
            &mut events,
            &report_load,
            &going_away,
            &shutdown,
        )
        .await;
        let was_registered = registration
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        set_registration(&registration, None);
        if was_registered {
            // A session that worked restarts the backoff.
            backoff = config.min_backoff;
        }
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match result {
            Ok(()) => tracing::warn!("coordinator closed the session; reconnecting"),
            // A client's token on a worker session is PermissionDenied:
            // no more fixable by retrying than a wrong one.
            Err(SessionError::Refused(status))
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                let refused = TokenRefused {
                    url: config.coordinator.clone(),
                    message: status.message().to_owned(),
                };
                tracing::error!("{refused}; stopping");
                return Err(refused);
            }
            Err(e) => {
                tracing::warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "coordinator session failed: {e}"
                )
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Url(#[from] gridcc_proto::tls::TlsError),
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("coordinator refused the session: {0}")]
    Refused(#[from] tonic::Status),
    #[error("coordinator sent no welcome")]
    NoWelcome,
    #[error("coordinator silent for {0:?}")]
    Silent(Duration),
}

async fn one_session(
    config: &SessionConfig,
    registration: &SharedRegistration,
    events: &mut mpsc::Receiver<WorkerMessage>,
    report_load: &impl Fn(),
    going_away: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let url = &config.coordinator;
    let endpoint = gridcc_proto::tls::endpoint(url, config.tls.as_ref())?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| {
        SessionError::Connect(format!(
            "{url}: {}",
            gridcc_proto::tls::explain_error(url, &e)
        ))
    })?;
    let mut client = v1::coordinator_client::CoordinatorClient::with_interceptor(
        channel,
        gridcc_proto::auth::AttachToken::new(config.token.as_ref()),
    );

    let (out_tx, out_rx) = mpsc::channel::<WorkerMessage>(64);
    let hello = WorkerMessage {
        msg: Some(worker_message::Msg::Hello(config.hello.clone())),
    };
    // Fresh channel with room: cannot fail.
    let _ = out_tx.try_send(hello);
    let mut inbound = match client.worker_session(ReceiverStream::new(out_rx)).await {
        Ok(response) => response.into_inner(),
        // A plain worker on a TLS port (or the reverse) fails here, as a
        // bare transport error: say what it probably is.
        Err(status) if gridcc_proto::tls::is_transport_failure(&status) => {
            return Err(SessionError::Connect(format!(
                "{url}: {}",
                gridcc_proto::tls::explain_status(url, &status)
            )))
        }
        Err(status) => return Err(status.into()),
    };

    let welcome = match inbound.message().await? {
        Some(v1::CoordinatorMessage {
            msg: Some(coordinator_message::Msg::Welcome(w)),
        }) => w,
        _ => return Err(SessionError::NoWelcome),
    };
    let Ok(lease_key) = <[u8; KEY_LEN]>::try_from(welcome.lease_key.as_slice()) else {
        return Err(SessionError::NoWelcome);
    };
    if let Some(gate) = gridcc_proto::auth::Gate::from_client_digests(
        welcome
            .client_tokens
            .iter()
            .map(|c| (c.name.as_str(), c.digest.as_slice())),
    ) {
        *config.gate.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(gate));
        tracing::info!(
            clients = welcome.client_tokens.len(),
            "taking the client tokens the coordinator named"
        );
    }
    // Events queued while disconnected name leases of a dead session.
    while events.try_recv().is_ok() {}
    set_registration(
        registration,
        Some(Registration {
            worker_id: welcome.worker_id,
            lease_key,
        }),
    );
    tracing::info!(worker_id = welcome.worker_id, coordinator = %config.coordinator, "registered with coordinator");

    let interval = Duration::from_millis(welcome.keepalive_interval_ms.clamp(10, 60_000));
    // Three missed keep-alives mean the coordinator is gone.
    let silence_limit = interval * 3;
    let mut keepalive = tokio::time::interval(interval);
    let mut last_heard = tokio::time::Instant::now();
    let mut sent_going_away = false;
    loop {
        // Biased, going away first: once told, `GoingAway` goes out before
        // any job event still queued, so the coordinator never sees a slot
        // of this worker free after the worker decided to go.
        tokio::select! {
            biased;
            () = going_away.cancelled(), if !sent_going_away => {
                sent_going_away = true;
                let bye = WorkerMessage { msg: Some(worker_message::Msg::GoingAway(v1::GoingAway {})) };
                let _ = out_tx.send(bye).await;
            }
            msg = inbound.message() => {
                match msg? {
                    Some(_) => last_heard = tokio::time::Instant::now(),
                    None => return Ok(()),
                }
            }
            Some(event) = events.recv() => {
                if out_tx.send(event).await.is_err() {
                    return Ok(());
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > silence_limit {
                    return Err(SessionError::Silent(silence_limit));
                }
                let ping = WorkerMessage { msg: Some(worker_message::Msg::KeepAlive(v1::KeepAlive {})) };
                if out_tx.send(ping).await.is_err() {
                    return Ok(());
                }
                // Through the events channel, behind any job event queued
                // before it.
                report_load();
            }
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}
