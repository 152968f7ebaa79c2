//! The `gridcc.v1.Coordinator` gRPC service: worker sessions, `Assign`,
//! `Status`. Errors become `tonic::Status` here and nowhere else.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gridcc_proto::lease::KEY_LEN;
use gridcc_proto::v1::{
    self, coordinator_message, worker_message, AssignReply, AssignRequest, CoordinatorMessage,
    StatusReply, StatusRequest, WorkerMessage,
};
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::{AssignResult, Metrics};
use crate::monitor::{Monitor, Outcome};
use crate::registry::{Placement, Registry, Release};
use crate::Config;

/// Milliseconds since the Unix epoch: leases carry absolute expiry times
/// that workers on other hosts can check.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// State shared by every request and background task.
pub(crate) struct Shared {
    registry: Mutex<Registry>,
    /// Woken whenever a slot may have become free or a worker joined.
    capacity_changed: Notify,
    config: Config,
    started_ms: u64,
    /// Assign requests currently waiting for a slot.
    waiting: std::sync::atomic::AtomicUsize,
    /// The waiting requests in arrival order, per toolchain: only the
    /// oldest of a toolchain may take a freed slot, so a request is never
    /// overtaken by later ones until it times out.
    queue: Mutex<WaitQueue>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    trace: Option<crate::trace::TraceFile>,
    metrics: Metrics,
    /// The monitor page's history, when the HTTP port is open.
    monitor: Option<Arc<Monitor>>,
}

impl Shared {
    pub(crate) fn new(
        registry: Registry,
        config: Config,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        trace: Option<crate::trace::TraceFile>,
        monitor: Option<Arc<Monitor>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            trace,
            registry: Mutex::new(registry),
            capacity_changed: Notify::new(),
            config,
            started_ms: unix_ms(),
            waiting: 0.into(),
            queue: Mutex::default(),
            shutdown,
            tasks,
            metrics: Metrics::new(),
            monitor,
        })
    }

    /// The `/metrics` page: the `Assign` counters and a snapshot of the
    /// registry, taken under its lock once.
    pub(crate) fn metrics_text(&self) -> String {
        let snapshot = {
            let registry = self.registry();
            crate::metrics::Snapshot {
                totals: registry.totals().clone(),
                workers: registry.worker_loads(),
                waiting: self.waiting.load(std::sync::atomic::Ordering::SeqCst),
                monitor_streams: self.monitor.as_ref().map(|m| m.streams()),
            }
        };
        crate::metrics::render(&self.metrics, &snapshot)
    }

    fn queue(&self) -> MutexGuard<'_, WaitQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the registry in a
        // state worse than stale counters, so keep serving.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Periodically frees leases whose client never arrived and removes
    /// workers that went silent.
    pub(crate) async fn sweep_forever(self: Arc<Self>) {
        // Often enough that a lease or a worker outlives its timeout by a
        // quarter of it at most.
        let shortest = self
            .config
            .worker_timeout_ms
            .min(self.config.start_timeout_ms);
        let mut tick = tokio::time::interval(Duration::from_millis((shortest / 4).clamp(50, 1000)));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            let now = unix_ms();
            let silent_before = now.saturating_sub(self.config.worker_timeout_ms);
            let (gone, freed) = self.registry().sweep(now, silent_before);
            for id in &gone {
                if let Some(m) = &self.monitor {
                    m.worker_left(*id, now);
                }
                tracing::warn!(
                    worker = id,
                    "worker silent too long; removed, its leases failed"
                );
            }
            if freed || !gone.is_empty() {
                self.capacity_changed.notify_waiters();
            }
        }
    }

    /// Once a second, while the HTTP port is open: closes the monitor's
    /// jobs whose lease is gone (expired, lost) and takes a sample.
    pub(crate) async fn sample_forever(self: Arc<Self>) {
        let Some(monitor) = self.monitor.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            let now = unix_ms();
            let waiting = self.waiting.load(std::sync::atomic::Ordering::SeqCst);
            let registry = self.registry();
            monitor.reconcile(&registry, now);
            monitor.sample(&registry, waiting, now);
        }
    }
}

pub(crate) struct CoordinatorService {
    shared: Arc<Shared>,
}

impl CoordinatorService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn local(reason: impl Into<String>) -> Response<AssignReply> {
    Response::new(AssignReply {
        outcome: Some(v1::assign_reply::Outcome::Local(v1::CompileLocally {
            reason: reason.into(),
        })),
    })
}

/// The client user's name from `--client-tokens`, when the call carried one.
fn caller_name<T>(request: &Request<T>) -> Option<String> {
    request
        .extensions()
        .get::<gridcc_proto::auth::Caller>()
        .and_then(|c| c.name.as_deref().map(str::to_owned))
}

fn validate_hello(hello: &v1::WorkerHello) -> Result<(), Status> {
    if hello
        .advertise_addr
        .parse::<std::net::SocketAddr>()
        .is_err()
    {
        return Err(Status::invalid_argument(format!(
            "hello: advertise address {:?} is not IP:PORT",
            hello.advertise_addr
        )));
    }
    if hello.slots == 0 || hello.slots > 4096 {
        return Err(Status::invalid_argument(format!(
            "hello: slots must be 1..=4096, got {}",
            hello.slots
        )));
    }
    if !(hello.capacity.is_finite() && hello.capacity >= 0.0) {
        return Err(Status::invalid_argument(
            "hello: capacity must be a finite number >= 0",
        ));
    }
    Ok(())
}

type SessionStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl v1::coordinator_server::Coordinator for CoordinatorService {
    type WorkerSessionStream = SessionStream;

    async fn worker_session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::WorkerSessionStream>, Status> {
        let shared = Arc::clone(&self.shared);
        let timeout = Duration::from_millis(shared.config.worker_timeout_ms);
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(timeout, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello from worker in time"))??;
        let Some(WorkerMessage {
            msg: Some(worker_message::Msg::Hello(hello)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first session message must be a hello",
            ));
        };
        validate_hello(&hello)?;

        let key: [u8; KEY_LEN] = rand::random();
        let addr = hello.advertise_addr.clone();
        let slots = hello.slots;
        // What the monitor lists, without the (long) list of cached keys.
        let shown = shared.monitor.as_ref().map(|_| v1::WorkerHello {
            cached_keys: Vec::new(),
            toolchains: Vec::new(),
            advertise_addr: hello.advertise_addr.clone(),
            hostname: hello.hostname.clone(),
            version: hello.version.clone(),
            hermetic_refusal: hello.hermetic_refusal.clone(),
            ..hello
        });
        let id = shared.registry().add_worker(hello, key, unix_ms());
        if let (Some(m), Some(shown)) = (&shared.monitor, &shown) {
            m.worker_joined(id, shown, unix_ms());
        }
        tracing::info!(worker = id, %addr, slots, "worker joined");
        shared.capacity_changed.notify_waiters();

        let (tx, rx) = mpsc::channel(8);
        let welcome = CoordinatorMessage {
            msg: Some(coordinator_message::Msg::Welcome(v1::Welcome {
                worker_id: id,
                lease_key: key.to_vec(),
                keepalive_interval_ms: shared.config.keepalive_interval_ms,
                // The worker takes exactly these on Compile: so a client
                // needs a client token there too, and a new user needs only
                // the coordinator's file.
                client_tokens: shared
                    .config
                    .credentials
                    .iter()
                    .flat_map(gridcc_proto::auth::Credentials::client_digests)
                    .map(|(name, digest)| v1::ClientToken {
                        name,
                        digest: digest.to_vec(),
                    })
                    .collect(),
            })),
        };
        // The channel is empty and the receiver alive: this cannot fail.
        let _ = tx.try_send(Ok(welcome));

        let session_shared = Arc::clone(&shared);
        shared.tasks.spawn(async move {
            let shared = session_shared;
            let why = run_session(&shared, id, &mut inbound, &tx).await;
            if shared.registry().remove_worker(id) {
                tracing::info!(worker = id, %addr, reason = why, "worker left; its leases failed");
            }
            if let Some(m) = &shared.monitor {
                m.worker_left(id, unix_ms());
            }
            shared.capacity_changed.notify_waiters();
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn assign(
        &self,
        request: Request<AssignRequest>,
    ) -> Result<Response<AssignReply>, Status> {
        let peer = request.remote_addr();
        let user = caller_name(&request);
        let req = request.into_inner();
        if req.toolchain.is_empty() {
            return Err(Status::invalid_argument("assign: toolchain is required"));
        }
        let shared = &self.shared;
        // Clients name themselves; older ones do not, and then their
        // address stands for them.
        let host = match (&req.client, peer) {
            (name, _) if !name.is_empty() => name.clone(),
            (_, Some(peer)) => peer.ip().to_string(),
            (_, None) => "?".to_owned(),
        };
        // A user known by its token is named so (the host a client gives is
        // its own say), in the monitor and the logs.
        let client = match &user {
            Some(user) => format!("{user}@{host}"),
            None => host,
        };
        tracing::debug!(%client, toolchain = %req.toolchain, "assign");
        if let (Some(m), lease) = (&shared.monitor, req.failed_lease) {
            if lease != 0 {
                m.after_failure(lease, Outcome::Retried, unix_ms());
            }
        }
        let arrived = tokio::time::Instant::now();
        let deadline = arrived + Duration::from_millis(shared.config.queue_timeout_ms);
        let mut req = req;
        // Left however this call ends: a client that goes away while it
        // waits (Ctrl-C) drops this future at the `select!` below, and a
        // ticket left behind would hold every later request of its
        // toolchain back until their queue timeout.
        let mut place = QueuePlace {
            shared,
            toolchain: req.toolchain.clone(),
            ticket: None,
            counted: false,
        };
        let outcome = loop {
            // Register interest before checking, so a slot freed between the
            // check and the wait is not missed.
            let notified = shared.capacity_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // A newcomer goes behind the requests already waiting for its
            // toolchain; a waiting one tries only when it is the oldest.
            let my_turn = shared.queue().may_try(&req.toolchain, place.ticket);
            let placement = if my_turn || req.failed_lease != 0 {
                shared.registry().assign(&req, unix_ms())
            } else {
                Placement::Busy
            };
            // Only the first attempt releases the failed lease.
            req.failed_lease = 0;
            match placement {
                Placement::Placed(p) => break Ok(p),
                // The registry counted this local answer itself.
                Placement::NoWorker(reason) => break Err((reason, false, AssignResult::NoWorker)),
                Placement::Busy
                    if !place.counted
                        && shared.config.local_when_client_idle
                        && client_should_compile(&req) =>
                {
                    break Err((
                        "every slot is busy and the client has idle CPU".to_owned(),
                        true,
                        AssignResult::BusyLocal,
                    ));
                }
                Placement::Busy | Placement::Held => {}
            }
            if place.ticket.is_none() {
                place.ticket = Some(shared.queue().join(&req.toolchain));
            }
            if !place.counted {
                let waiting = shared
                    .waiting
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                place.counted = true;
                if waiting >= shared.config.max_waiting {
                    break Err((
                        format!("grid saturated: {waiting} requests already waiting for a slot"),
                        true,
                        AssignResult::Saturated,
                    ));
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => {
                    break Err((
                        "no free slot within the queue timeout".to_owned(),
                        true,
                        AssignResult::QueueTimeout,
                    ));
                }
                () = shared.shutdown.cancelled() => {
                    break Err((
                        "coordinator shutting down".to_owned(),
                        true,
                        AssignResult::ShuttingDown,
                    ));
                }
            }
        };
        let counted_waiting = place.counted;
        drop(place);
        let result = match &outcome {
            Ok(_) => AssignResult::Placed,
            Err((_, _, result)) => *result,
        };
        shared
            .metrics
            .answered(result, counted_waiting, arrived.elapsed());
        if let Some(m) = &shared.monitor {
            match &outcome {
                Ok(p) => {
                    let lease = p.lease.as_ref().map_or(0, |l| l.id);
                    m.placed(lease, p.worker_id, &req, &client, unix_ms());
                }
                Err(_) => m.local(&req, &client, unix_ms()),
            }
        }
        match outcome {
            Ok(placement) => Ok(Response::new(AssignReply {
                outcome: Some(v1::assign_reply::Outcome::Placement(placement)),
            })),
            Err((reason, uncounted, _)) => {
                if uncounted {
                    shared.registry().count_local_answer();
                }
                Ok(local(reason))
            }
        }
    }

    async fn release(
        &self,
        request: Request<v1::ReleaseRequest>,
    ) -> Result<Response<v1::ReleaseReply>, Status> {
        let user = caller_name(&request);
        let v1::ReleaseRequest { lease_id, mac } = request.into_inner();
        let release = self.shared.registry().release_failed(lease_id, &mac);
        if release == Release::NotHolder {
            tracing::warn!(
                lease = lease_id,
                user = user.as_deref().unwrap_or("-"),
                "refused a release of a lease by a client it was not given to"
            );
            return Err(Status::permission_denied(format!(
                "release: lease {lease_id} is not yours (only the client it was given to can release it)"
            )));
        }
        if let Some(m) = &self.shared.monitor {
            // The client compiles it locally now.
            m.after_failure(lease_id, Outcome::Local, unix_ms());
        }
        if release == Release::Released {
            self.shared.capacity_changed.notify_waiters();
        }
        Ok(Response::new(v1::ReleaseReply {
            released: release == Release::Released,
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusReply>, Status> {
        let reply = self
            .shared
            .registry()
            .status(unix_ms(), self.shared.started_ms);
        Ok(Response::new(reply))
    }
}

/// An `Assign` call's place in the wait queue and in the waiting count,
/// given up when the call ends, however it ends.
struct QueuePlace<'a> {
    shared: &'a Shared,
    toolchain: String,
    ticket: Option<u64>,
    /// Counted in `Shared::waiting`.
    counted: bool,
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.shared
                .waiting
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(t) = self.ticket {
            // The next in line may find a slot this one left (or took while
            // more were free): let it look.
            self.shared.queue().leave(&self.toolchain, t);
            self.shared.capacity_changed.notify_waiters();
        }
    }
}

/// Whether a request that finds every slot busy is better compiled on the
/// client at once than queued. Queueing costs the client nothing while its
/// own CPUs are busy anyway (the build is bounded by grid plus client), and a
/// queued job starts as soon as any slot frees. But a whole idle core on the
/// client runs the job now, at about the speed of one worker slot, while a
/// queued one waits a whole job's time for a slot. Less than one idle core
/// would slow the client's own preprocessing, which feeds every other job,
/// so then the request queues (bounded by `--queue-timeout-ms`).
fn client_should_compile(req: &AssignRequest) -> bool {
    req.client_idle_cpus >= 1.0
}

/// Serves one worker session until it ends; returns why it ended.
async fn run_session(
    shared: &Shared,
    id: u64,
    inbound: &mut Streaming<WorkerMessage>,
    tx: &mpsc::Sender<Result<CoordinatorMessage, Status>>,
) -> &'static str {
    let mut keepalive = tokio::time::interval(Duration::from_millis(
        shared.config.keepalive_interval_ms.max(10),
    ));
    loop {
        tokio::select! {
            msg = inbound.message() => {
                let msg = match msg {
                    Ok(Some(m)) => m,
                    Ok(None) => return "session closed",
                    Err(e) => {
                        tracing::debug!(worker = id, error = %e, "session stream failed");
                        return "session stream failed";
                    }
                };
                handle_message(shared, id, msg);
            }
            _ = keepalive.tick() => {
                if !shared.registry().has_worker(id) {
                    return "silent past the worker timeout";
                }
                let ping = CoordinatorMessage {
                    msg: Some(coordinator_message::Msg::KeepAlive(v1::KeepAlive {})),
                };
                // A full channel means the worker is not reading; the
                // silence timeout deals with that.
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Ok(ping)) {
                    return "session closed";
                }
            }
            () = shared.shutdown.cancelled() => return "coordinator shutting down",
        }
    }
}

fn handle_message(shared: &Shared, id: u64, msg: WorkerMessage) {
    let now = unix_ms();
    let mut registry = shared.registry();
    registry.touch(id, now);
    let (freed, record) = match msg.msg {
        Some(worker_message::Msg::Load(load)) => (registry.on_load(id, &load), None),
        Some(worker_message::Msg::Started(s)) => {
            registry.on_started(id, s.lease_id);
            (false, None)
        }
        Some(worker_message::Msg::Finished(f)) => {
            if let Some(m) = &shared.monitor {
                // Under the registry's lock, so the once-a-second
                // reconciliation cannot take this job for a lost one.
                m.finished(id, &f, now);
            }
            registry.on_finished(id, &f, now)
        }
        Some(worker_message::Msg::GoingAway(_)) => {
            registry.on_going_away(id);
            tracing::info!(worker = id, "worker draining");
            (false, None)
        }
        Some(worker_message::Msg::KeepAlive(_)) | Some(worker_message::Msg::Hello(_)) | None => {
            (false, None)
        }
    };
    drop(registry);
    // File I/O stays outside the registry lock, which every placement takes.
    if let (Some(record), Some(trace)) = (record, &shared.trace) {
        trace.write(&record);
    }
    if freed {
        shared.capacity_changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::coordinator_server::Coordinator as _;

    #[tokio::test]
    async fn a_client_that_goes_away_while_queued_leaves_the_queue() {
        let mut registry = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            60_000,
            1000,
        );
        let hello = v1::WorkerHello {
            advertise_addr: "127.0.0.1:1".into(),
            slots: 1,
            toolchains: vec![v1::Toolchain {
                identity: "t".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let worker = registry.add_worker(hello, [1; KEY_LEN], unix_ms());
        let request = || AssignRequest {
            toolchain: "t".into(),
            ..Default::default()
        };
        // Its one slot is taken.
        let Placement::Placed(busy) = registry.assign(&request(), unix_ms()) else {
            panic!("not placed");
        };
        let config = Config {
            local_when_client_idle: false,
            ..Config::default()
        };
        let shared = Shared::new(
            registry,
            config,
            CancellationToken::new(),
            TaskTracker::new(),
            None,
            None,
        );
        let service = Arc::new(CoordinatorService::new(Arc::clone(&shared)));
        let waiting = tokio::spawn({
            let service = Arc::clone(&service);
            async move { service.assign(Request::new(request())).await }
        });
        let waited = std::sync::atomic::Ordering::SeqCst;
        while shared.waiting.load(waited) == 0 {
            tokio::task::yield_now().await;
        }
        // The client goes away: tonic drops its call.
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert_eq!(shared.waiting.load(waited), 0);
        assert!(shared.queue().waiting.is_empty(), "its ticket is gone");
        // The slot frees: the next client gets it at once.
        let lease = busy.lease.unwrap();
        assert_eq!(
            shared.registry().release_failed(lease.id, &lease.mac),
            Release::Released
        );
        let reply = service.assign(Request::new(request())).await.unwrap();
        assert!(
            matches!(
                reply.into_inner().outcome,
                Some(v1::assign_reply::Outcome::Placement(p)) if p.worker_id == worker
            ),
            "placed at once, not behind a lost ticket"
        );
    }

    #[test]
    fn only_a_whole_idle_core_compiles_locally_at_once() {
        let req = |idle| AssignRequest {
            client_idle_cpus: idle,
            ..Default::default()
        };
        assert!(client_should_compile(&req(1.0)));
        assert!(client_should_compile(&req(6.0)));
        // Unknown (old clients send nothing), a fraction of a core, garbage.
        for idle in [0.0, 0.9, -1.0, f64::NAN] {
            assert!(!client_should_compile(&req(idle)), "{idle}");
        }
    }
}

/// Tickets of the waiting Assign requests, oldest first, per toolchain.
#[derive(Default)]
pub(crate) struct WaitQueue {
    next: u64,
    waiting: std::collections::HashMap<String, std::collections::BTreeSet<u64>>,
}

impl WaitQueue {
    /// Queues a request; returns its ticket.
    fn join(&mut self, toolchain: &str) -> u64 {
        let t = self.next;
        self.next += 1;
        self.waiting
            .entry(toolchain.to_owned())
            .or_default()
            .insert(t);
        t
    }

    fn leave(&mut self, toolchain: &str, ticket: u64) {
        if let Some(set) = self.waiting.get_mut(toolchain) {
            set.remove(&ticket);
            if set.is_empty() {
                self.waiting.remove(toolchain);
            }
        }
    }

    /// Whether a request may ask the registry for a slot now: a newcomer
    /// (no ticket) when nobody waits for its toolchain, a queued one when
    /// it is the oldest waiting.
    fn may_try(&self, toolchain: &str, ticket: Option<u64>) -> bool {
        let oldest = self
            .waiting
            .get(toolchain)
            .and_then(|set| set.first().copied());
        match (ticket, oldest) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(t), oldest) => oldest.is_none_or(|o| o == t),
        }
    }
}

#[cfg(test)]
mod queue_tests {
    use super::WaitQueue;

    #[test]
    fn requests_are_served_in_arrival_order_per_toolchain() {
        let mut q = WaitQueue::default();
        assert!(q.may_try("gcc", None));
        let a = q.join("gcc");
        let b = q.join("gcc");
        let other = q.join("clang");
        assert!(!q.may_try("gcc", None), "a newcomer queues behind a and b");
        assert!(q.may_try("gcc", Some(a)));
        assert!(!q.may_try("gcc", Some(b)));
        assert!(
            q.may_try("clang", Some(other)),
            "toolchains do not block each other"
        );
        q.leave("gcc", a);
        assert!(q.may_try("gcc", Some(b)));
        q.leave("gcc", b);
        assert!(q.may_try("gcc", None));
        q.leave("clang", other);
        assert!(q.waiting.is_empty());
    }
}
