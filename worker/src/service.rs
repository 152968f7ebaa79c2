//! The `gridcc.v1.Worker` gRPC service: checks a job (lease, compiler,
//! arguments, sizes), receives its input, waits for a slot, runs it and
//! streams the result back. Errors become `tonic::Status` here only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gridcc_proto::lease::KEY_LEN;
use gridcc_proto::payload::{self, Assembler};
use gridcc_proto::v1::{
    self, compile_request, compile_response, worker_message, CompileRequest, CompileResponse,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use futures_util::StreamExt;
use gridcc_cache::{Entry, Key, Lookup};

use crate::job::{self, Job};
use crate::jobs::Jobs;
use crate::layout::Layout;
use crate::metrics::{CacheEvent, JobOutcome, Metrics};
use crate::session::SharedRegistration;
use crate::shared_cache::ResultCache;
use crate::store::Store;

/// Languages of preprocessed input (preprocessed mode).
const PREPROCESSED_LANGUAGES: &[&str] = &[
    "cpp-output",
    "c++-cpp-output",
    "objective-c-cpp-output",
    "objective-c++-cpp-output",
];

/// Languages of directives-only source (source mode).
const SOURCE_LANGUAGES: &[&str] = &["c", "c++", "objective-c", "objective-c++"];

pub(crate) struct Shared {
    pub(crate) toolchains: HashMap<String, PathBuf>,
    pub(crate) registration: SharedRegistration,
    /// Held leases, counters, and the events that report them.
    pub(crate) jobs: Arc<Jobs>,
    pub(crate) slots: Semaphore,
    /// Jobs allowed to wait for a slot; more are refused at once.
    pub(crate) queue_limit: u32,
    pub(crate) stages: Arc<crate::stage::Stages>,
    pub(crate) max_payload: u64,
    pub(crate) limits: crate::sandbox::Limits,
    /// Fires when the worker drains: new jobs are refused.
    pub(crate) draining: CancellationToken,
    /// Jobs this worker runs at once.
    pub(crate) slots_total: u32,
    pub(crate) metrics: Metrics,
    /// The shared result cache; `None` when `--cache-size 0`.
    pub(crate) results: Option<Arc<ResultCache>>,
    /// Recently received inputs by digest (`offer_input` jobs).
    pub(crate) inputs: Option<Arc<Store>>,
    /// Set when this worker runs hermetic jobs.
    pub(crate) hermetic: Option<Arc<crate::sandboxed::Hermetic>>,
}

impl Shared {
    /// The `/metrics` page.
    pub(crate) fn metrics_text(&self) -> String {
        let snapshot = crate::metrics::Snapshot {
            slots: self.slots_total,
            running: self.jobs.running.load(Ordering::SeqCst),
            waiting: self.jobs.waiting.load(Ordering::SeqCst),
            temp_dirs: crate::stage::live(),
            draining: self.draining.is_cancelled(),
            registered: self
                .registration
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_some(),
            cache_bytes: self.results.as_ref().map_or(0, |r| r.bytes()),
        };
        crate::metrics::render(&self.metrics, &snapshot)
    }
}

/// A job's hold on its lease, from its checked header on: reports the job's
/// end to the coordinator exactly once. Dropped without [`HeldLease::end`],
/// the job's future was dropped mid-way because its client went away
/// (interrupted, killed, its connection cut): reported as cancelled, after
/// the job's processes were killed and its directory removed (they belong
/// to the `run_job` future, dropped first; see `accept`).
struct HeldLease {
    shared: Arc<Shared>,
    key: [u8; KEY_LEN],
    id: u64,
    ended: bool,
}

impl HeldLease {
    fn end(mut self, finished: v1::JobFinished) {
        self.ended = true;
        self.shared.jobs.end(self.key, finished);
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        tracing::info!(lease = self.id, "the client went away; job cancelled");
        self.shared.metrics.job(JobOutcome::Cancelled);
        self.shared.jobs.end(
            self.key,
            v1::JobFinished {
                lease_id: self.id,
                ran: false,
                exit_code: -1,
                cancelled: true,
                ..Default::default()
            },
        );
    }
}

pub(crate) struct WorkerService {
    shared: Arc<Shared>,
}

impl WorkerService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

type CompileStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<CompileResponse, Status>> + Send>>;

/// A job that did not produce a result: the client's answer, and how the
/// metrics count it. A bare `Status` (through `?`) is a refusal: every
/// check before the compiler runs answers with one.
struct Failure {
    status: Status,
    outcome: JobOutcome,
}

impl Failure {
    fn new(status: Status, outcome: JobOutcome) -> Self {
        Self { status, outcome }
    }

    /// The client's stream ended early: not a refusal.
    fn stream(status: Status) -> Self {
        Self::new(status, JobOutcome::Error)
    }

    /// The client's stream broke: it went away.
    fn gone(status: Status) -> Self {
        Self::new(status, JobOutcome::Cancelled)
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Self::new(status, JobOutcome::Refused)
    }
}

/// Decrements a counter when dropped, so early returns keep it right.
struct CountGuard<'a>(&'a AtomicU32);

impl<'a> CountGuard<'a> {
    fn new(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn check_input_name(name: &str) -> Result<(), Status> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.starts_with('-')
        && !name.contains('/')
        && name != "gridcc-out.o";
    let preprocessed = [".i", ".ii", ".mi", ".mii"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if plain && preprocessed {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "input name {name:?} must be a plain .i/.ii/.mi/.mii file name"
        )))
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tonic::async_trait]
impl v1::worker_server::Worker for WorkerService {
    type CompileStream = CompileStream;

    async fn compile(
        &self,
        request: Request<Streaming<CompileRequest>>,
    ) -> Result<Response<CompileStream>, Status> {
        self.accept(request).await.map_err(|f| {
            self.shared.metrics.job(f.outcome);
            f.status
        })
    }
}

impl WorkerService {
    /// The `Compile` call: checks a job, then answers it from the shared
    /// cache or runs it. The checks answer as the call's status; from the
    /// input on, the job runs as the response stream is read (so the
    /// worker can ask an `offer_input` client for its input first), and a
    /// failure is the stream's error.
    async fn accept(
        &self,
        request: Request<Streaming<CompileRequest>>,
    ) -> Result<Response<CompileStream>, Failure> {
        let shared = &self.shared;
        if shared.draining.is_cancelled() {
            return Err(Status::unavailable("worker is draining").into());
        }
        let mut inbound = request.into_inner();
        let header = match inbound.message().await? {
            Some(CompileRequest {
                msg: Some(compile_request::Msg::Header(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("the first message must be a header").into()),
        };

        // Lease: signed by the coordinator for this worker, not expired.
        let registration = shared
            .registration
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Status::unavailable("worker is not registered with a coordinator"))?;
        let lease = header
            .lease
            .as_ref()
            // Not `unauthenticated`: that code means a missing or wrong
            // token, which clients do not retry.
            .ok_or_else(|| Status::permission_denied("job has no lease"))?;
        gridcc_proto::lease::verify(
            &registration.lease_key,
            registration.worker_id,
            lease,
            unix_ms(),
        )
        .map_err(|e| Status::permission_denied(e.to_string()))?;
        let lease_id = lease.id;
        let lease_expires_ms = lease.expires_unix_ms;

        // Only compilers this worker advertised, only checked arguments.
        let compiler = shared
            .toolchains
            .get(&header.toolchain)
            .cloned()
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "this worker has no compiler with identity {}",
                    header.toolchain
                ))
            })?;
        let tree = match &header.hermetic {
            Some(h) => Some(check_hermetic(shared, &header, h)?),
            None => {
                crate::allowlist::check(&header.args)
                    .map_err(|e| Status::permission_denied(e.to_string()))?;
                let source_mode = !header.source_path.is_empty();
                let languages = if source_mode {
                    SOURCE_LANGUAGES
                } else {
                    PREPROCESSED_LANGUAGES
                };
                if !languages.contains(&header.language.as_str()) {
                    return Err(Failure::from(Status::invalid_argument(format!(
                        "language {:?} is not allowed in {} mode",
                        header.language,
                        if source_mode {
                            "source"
                        } else {
                            "preprocessed"
                        }
                    ))));
                }
                if !source_mode {
                    check_input_name(&header.input_name)?;
                }
                None
            }
        };
        if header.input_digest.len() != 32 {
            return Err(Status::invalid_argument("input digest must be 32 bytes").into());
        }
        shared
            .jobs
            .hold(
                registration.lease_key,
                lease_id,
                lease_expires_ms,
                unix_ms(),
            )
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let lease = HeldLease {
            shared: Arc::clone(shared),
            key: registration.lease_key,
            id: lease_id,
            ended: false,
        };

        let key = shared.results.as_ref().map(|_| grid_key(&header));
        if let Some(key) = &key {
            if let Some(entry) = self.lookup(key).await {
                // A hit needs neither the input nor a slot.
                shared
                    .jobs
                    .event(worker_message::Msg::Started(v1::JobStarted { lease_id }));
                let saved = header.compressed_size;
                let done = answer_from_cache(key, entry).await;
                if done.is_ok() && header.offer_input {
                    shared.metrics.upload_saved(false, saved);
                }
                let messages = finish(shared, lease, done);
                return Ok(Response::new(Box::pin(tokio_stream::iter(messages))));
            }
        }
        if let Some(tree) = tree {
            return Ok(Response::new(hermetic_stream(
                shared, header, tree, compiler, inbound, key, lease,
            )));
        }
        let held = match (
            &shared.inputs,
            <[u8; 32]>::try_from(&header.input_digest[..]),
        ) {
            (Some(store), Ok(digest))
                if header.offer_input && store.has(&digest, header.input_size) =>
            {
                // Read and checked now, so a blob lost or corrupt since is
                // asked of the client like any other.
                let store = Arc::clone(store);
                tokio::task::spawn_blocking(move || store.get(&digest))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        if held.is_some() {
            shared.metrics.upload_saved(true, header.compressed_size);
        }
        let ask = header.offer_input && held.is_none();
        let shared = Arc::clone(shared);
        let job = async move {
            // A local declared before the `run_job` future, so that when a
            // client going away drops this future mid-way, the job's
            // processes and directory go first and the coordinator hears
            // of its end after.
            let lease = lease;
            let input = Input {
                held,
                inbound: &mut inbound,
            };
            let done = run_job(&shared, header, compiler, input, key, lease_id).await;
            tokio_stream::iter(finish(&shared, lease, done))
        };
        let first = ask.then(|| {
            Ok(CompileResponse {
                msg: Some(compile_response::Msg::SendInput(v1::SendInput::default())),
            })
        });
        let stream = tokio_stream::iter(first).chain(futures_util::stream::once(job).flatten());
        Ok(Response::new(Box::pin(stream)))
    }

    /// The shared cache's entry for `key`, when it holds a good one.
    async fn lookup(&self, key: &Key) -> Option<Entry> {
        let results = Arc::clone(self.shared.results.as_ref()?);
        let lookup_key = key.clone();
        let found = tokio::task::spawn_blocking(move || results.lookup(&lookup_key))
            .await
            .ok()?;
        let metrics = &self.shared.metrics;
        match found {
            Lookup::Hit(entry) => {
                metrics.cache(CacheEvent::Hit);
                Some(entry)
            }
            Lookup::Corrupt(why) => {
                // Removed by the lookup, so this is said once per bad entry.
                tracing::warn!(%key, %why, "shared cache entry is corrupt; removed, recompiling");
                metrics.cache(CacheEvent::Corrupt);
                None
            }
            Lookup::Miss => {
                metrics.cache(CacheEvent::Miss);
                None
            }
        }
    }
}

/// The grid key of a job, from its header alone (a hermetic job's tree
/// digest was checked against its tree before).
fn grid_key(header: &v1::CompileHeader) -> Key {
    if let Some(h) = &header.hermetic {
        let env = passed_env(&header.env);
        return gridcc_cache::GridJob {
            toolchain: &header.toolchain,
            mode: gridcc_cache::GridMode::Hermetic,
            language: &header.language,
            args: &h.argv,
            name: &header.source_path,
            cwd: &header.cwd,
            env: &env,
            input_digest: &header.input_digest,
            input_size: header.input_size,
        }
        .key();
    }
    let source_mode = !header.source_path.is_empty();
    let env = passed_env(&header.env);
    gridcc_cache::GridJob {
        toolchain: &header.toolchain,
        mode: if source_mode {
            gridcc_cache::GridMode::Source
        } else {
            gridcc_cache::GridMode::Preprocessed
        },
        language: &header.language,
        args: &header.args,
        name: if source_mode {
            &header.source_path
        } else {
            &header.input_name
        },
        cwd: &header.cwd,
        env: &env,
        input_digest: &header.input_digest,
        input_size: header.input_size,
    }
    .key()
}

/// The client's variables the compiler gets (`job::PASSED_ENV`), in order.
fn passed_env(env: &[v1::EnvVar]) -> Vec<(String, String)> {
    env.iter()
        .filter(|v| job::PASSED_ENV.contains(&v.name.as_str()))
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

/// A job that ended with a result.
struct Done {
    result: v1::CompileResult,
    /// The compressed object, in chunks.
    chunks: Vec<Vec<u8>>,
    input_bytes: u64,
    /// The shared cache holds this result under this key now.
    cached: Option<Key>,
}

/// Where a job's input comes from: held by digest, else the client's chunks.
struct Input<'a> {
    held: Option<Vec<u8>>,
    inbound: &'a mut Streaming<CompileRequest>,
}

async fn answer_from_cache(key: &Key, entry: Entry) -> Result<Done, Failure> {
    let Entry {
        exit_code,
        object,
        stdout,
        stderr,
        compile_ms,
    } = entry;
    let object_size = object.len() as u64;
    let (compressed, digest) = here_when_small(object.len() < SMALL_OBJECT, move || {
        (payload::compress(&object), payload::digest(&object))
    })
    .await
    .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
    let compressed =
        compressed.map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
    Ok(Done {
        result: v1::CompileResult {
            exit_code,
            stdout,
            stderr,
            object_size,
            compressed_size: compressed.len() as u64,
            object_digest: digest,
            compile_ms,
            queue_ms: 0,
            cache_hit: true,
        },
        chunks: payload::chunks(&compressed).map(<[u8]>::to_vec).collect(),
        input_bytes: 0,
        cached: Some(key.clone()),
    })
}

/// Reports the job's end to the coordinator and the metrics, and turns it
/// into the response messages.
fn finish(
    shared: &Shared,
    lease: HeldLease,
    done: Result<Done, Failure>,
) -> Vec<Result<CompileResponse, Status>> {
    let lease_id = lease.id;
    let finished = match &done {
        Ok(d) => v1::JobFinished {
            lease_id,
            ran: true,
            exit_code: d.result.exit_code,
            compile_ms: d.result.compile_ms,
            queue_ms: d.result.queue_ms,
            input_bytes: d.input_bytes,
            cache_key: d.cached.as_ref().map(|k| k.to_string()).unwrap_or_default(),
            cache_hit: d.result.cache_hit,
            cancelled: false,
        },
        Err(f) => v1::JobFinished {
            lease_id,
            ran: false,
            exit_code: -1,
            cancelled: f.outcome == JobOutcome::Cancelled,
            ..Default::default()
        },
    };
    lease.end(finished);
    let done = match done {
        Ok(done) => done,
        Err(f) => {
            shared.metrics.job(f.outcome);
            return vec![Err(f.status)];
        }
    };
    shared.metrics.job(if done.result.exit_code == 0 {
        JobOutcome::Ok
    } else {
        JobOutcome::CompileError
    });
    shared.metrics.sent(done.chunks.iter().map(Vec::len).sum());
    std::iter::once(CompileResponse {
        msg: Some(compile_response::Msg::Result(done.result)),
    })
    .chain(done.chunks.into_iter().map(|chunk| CompileResponse {
        msg: Some(compile_response::Msg::Chunk(chunk)),
    }))
    .map(Ok)
    .collect()
}

/// Feeds the client's chunks to `assembler` until it has the announced
/// bytes (a text job's input, or a hermetic job's missing blobs).
async fn take_chunks(
    shared: &Shared,
    inbound: &mut Streaming<CompileRequest>,
    assembler: &mut Assembler,
) -> Result<(), Failure> {
    while !assembler.is_complete() {
        match inbound.message().await.map_err(Failure::gone)? {
            Some(CompileRequest {
                msg: Some(compile_request::Msg::Chunk(chunk)),
            }) => {
                shared.metrics.received(chunk.len());
                assembler
                    .push(&chunk)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?
            }
            Some(_) => return Err(Status::invalid_argument("expected an input chunk").into()),
            None => {
                return Err(Failure::stream(Status::invalid_argument(
                    "input ended early",
                )))
            }
        }
    }
    Ok(())
}

/// Receives the client's input chunks and verifies them.
async fn receive(
    shared: &Shared,
    header: &v1::CompileHeader,
    inbound: &mut Streaming<CompileRequest>,
) -> Result<Vec<u8>, Failure> {
    let mut assembler = Assembler::new(
        header.input_size,
        header.compressed_size,
        header.input_digest.clone(),
        shared.max_payload,
    )
    .map_err(|e| Status::resource_exhausted(e.to_string()))?;
    take_chunks(shared, inbound, &mut assembler).await?;
    let input = tokio::task::spawn_blocking(move || assembler.finish())
        .await
        .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(input)
}

/// Gets the input, waits for a slot, compiles, and stores a successful
/// result in the shared cache under `key`.
async fn run_job(
    shared: &Shared,
    header: v1::CompileHeader,
    compiler: PathBuf,
    input: Input<'_>,
    key: Option<Key>,
    lease_id: u64,
) -> Result<Done, Failure> {
    // The slot first, then the input: receiving and decompressing an
    // input takes up to its announced size in memory (`max_payload` each,
    // compressed and decompressed), so only jobs holding a slot may do it.
    // A burst of clients (or of decompression bombs) then costs at most
    // `slots` inputs at once, not one per connection.
    let header_toolchain = header.toolchain.clone();
    let slot = take_slot(shared).await?;

    let (input, received) = match (input.held, shared.limits.wall) {
        (Some(text), _) => (text, false),
        // A client that holds a slot must not hold it by trickling its
        // input: the upload counts against the job's wall-clock limit.
        (None, Some(wall)) => {
            let receiving = receive(shared, &header, input.inbound);
            let input = tokio::time::timeout(wall, receiving).await.map_err(|_| {
                Failure::stream(Status::deadline_exceeded(format!(
                    "input not received within the job's wall-clock limit of {wall:?}"
                )))
            })??;
            (input, true)
        }
        (None, None) => (receive(shared, &header, input.inbound).await?, true),
    };
    let input_bytes = input.len() as u64;
    crate::directives::check_text(&input).map_err(|e| Status::permission_denied(e.to_string()))?;
    let input = match (
        &shared.inputs,
        <[u8; 32]>::try_from(&header.input_digest[..]),
    ) {
        // Kept only once it passed every check on the text (its digest was
        // checked as it arrived).
        (Some(store), Ok(digest)) if received && header.offer_input => {
            let store = Arc::clone(store);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.put(&digest, &input) {
                    tracing::warn!(error = %e, "cannot keep an input in the store");
                }
                input
            })
            .await
            .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?
        }
        _ => input,
    };
    let source_mode = !header.source_path.is_empty();
    let cacheable = gridcc_cache::uncacheable(source_mode, &input).is_none();
    let layout = if source_mode {
        Layout::Source {
            source_path: header.source_path,
            cwd: header.cwd,
        }
    } else {
        Layout::Preprocessed {
            input_name: header.input_name,
        }
    };
    crate::layout::plan(std::path::Path::new("/gridcc-check"), &layout, &header.args)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;

    // Now the job really starts: its input is here and checked.
    shared
        .jobs
        .event(worker_message::Msg::Started(v1::JobStarted { lease_id }));

    let job = Job {
        compiler,
        // Checked against the text as it arrived, or as the store read it.
        input_digest: <[u8; 32]>::try_from(&header.input_digest[..]).unwrap_or_default(),
        args: header.args,
        language: header.language,
        layout,
        input,
        env: header.env.into_iter().map(|v| (v.name, v.value)).collect(),
    };
    // Where the worker can sandbox, a text job runs in the sandbox too,
    // among its own files only.
    let toolchain = shared
        .hermetic
        .as_ref()
        .and_then(|h| h.toolchains.get(&header_toolchain).map(|t| (h, t)));
    let sandbox = toolchain.map(|(h, t)| job::TextSandbox {
        bwrap: &h.bwrap,
        toolchain: t,
    });
    let outcome = job::run(job, &shared.stages, &shared.limits, sandbox)
        .await
        .map_err(job_failure)?;
    let queue_ms = slot.end(shared, outcome.elapsed);
    deliver(shared, outcome, key, cacheable, queue_ms, input_bytes).await
}

/// Checks a hermetic job before it is accepted: this worker runs them
/// with this compiler, and the tree and command line are sound.
fn check_hermetic(
    shared: &Shared,
    header: &v1::CompileHeader,
    h: &v1::HermeticJob,
) -> Result<crate::tree::Tree, Failure> {
    let hermetic = shared
        .hermetic
        .as_ref()
        .ok_or_else(|| Status::failed_precondition("this worker does not run hermetic jobs"))?;
    if shared.inputs.is_none() || !hermetic.toolchains.contains_key(&header.toolchain) {
        return Err(Status::failed_precondition(
            "this worker runs no hermetic job with this compiler",
        )
        .into());
    }
    if !SOURCE_LANGUAGES.contains(&header.language.as_str()) {
        return Err(Status::invalid_argument(format!(
            "language {:?} is not allowed in a hermetic job",
            header.language
        ))
        .into());
    }
    let tree = crate::tree::check(h, &header.cwd, &header.input_digest)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    crate::allowlist::check_hermetic(&tree.argv, &header.source_path, &h.object, &header.cwd)
        .map_err(|e| Status::permission_denied(e.to_string()))?;
    if tree.size != header.input_size {
        return Err(
            Status::invalid_argument("the input tree's size does not match the job's").into(),
        );
    }
    Ok(tree)
}

/// The response of an accepted hermetic job: `SendInput` with the blobs
/// the store lacks (if any), then the job's answer.
fn hermetic_stream(
    shared: &Arc<Shared>,
    header: v1::CompileHeader,
    tree: crate::tree::Tree,
    compiler: PathBuf,
    mut inbound: Streaming<CompileRequest>,
    key: Option<Key>,
    lease: HeldLease,
) -> CompileStream {
    let store = shared.inputs.clone();
    let missing = store
        .as_ref()
        .map(|s| crate::tree::missing(&tree, s))
        .unwrap_or_default();
    let ask = (!missing.is_empty()).then(|| {
        Ok(CompileResponse {
            msg: Some(compile_response::Msg::SendInput(v1::SendInput {
                missing: missing.iter().map(|(d, _)| d.to_vec()).collect(),
            })),
        })
    });
    let shared = Arc::clone(shared);
    let job = async move {
        // Declared before the job's future, so a client going away drops
        // the job's processes first and reports its end after.
        let lease = lease;
        let lease_id = lease.id;
        let done = run_hermetic(
            &shared,
            header,
            tree,
            compiler,
            missing,
            &mut inbound,
            key,
            lease_id,
        )
        .await;
        tokio_stream::iter(finish(&shared, lease, done))
    };
    Box::pin(tokio_stream::iter(ask).chain(futures_util::stream::once(job).flatten()))
}

/// Receives the blobs a hermetic job's worker lacked into the store,
/// takes a slot, and runs the job in the sandbox.
#[allow(clippy::too_many_arguments)]
async fn run_hermetic(
    shared: &Shared,
    header: v1::CompileHeader,
    tree: crate::tree::Tree,
    compiler: PathBuf,
    missing: Vec<(crate::store::Digest, u64)>,
    inbound: &mut Streaming<CompileRequest>,
    key: Option<Key>,
    lease_id: u64,
) -> Result<Done, Failure> {
    let internal = |e: String| Failure::new(Status::internal(e), JobOutcome::Error);
    let (Some(store), Some(hermetic)) = (&shared.inputs, &shared.hermetic) else {
        return Err(internal("hermetic jobs need the input store".into()));
    };
    // The slot before the blobs, as for a text job's input (`take_slot`).
    let slot = take_slot(shared).await?;
    let mut input_bytes = 0;
    if missing.is_empty() {
        shared.metrics.upload_saved(true, header.input_size);
    } else {
        let receiving = receive_blobs(shared, store, &missing, inbound);
        input_bytes = match shared.limits.wall {
            // Trickling blobs cannot hold a slot past the job's limit.
            Some(wall) => tokio::time::timeout(wall, receiving).await.map_err(|_| {
                Failure::stream(Status::deadline_exceeded(format!(
                    "input not received within the job's wall-clock limit of {wall:?}"
                )))
            })??,
            None => receiving.await?,
        };
    }
    shared
        .jobs
        .event(worker_message::Msg::Started(v1::JobStarted { lease_id }));
    let env: Vec<(String, String)> = passed_env(&header.env);
    let (outcome, dated) = crate::sandboxed::run(
        &shared.stages,
        store,
        hermetic,
        &header.toolchain,
        &compiler,
        tree,
        &env,
        &shared.limits,
    )
    .await
    .map_err(job_failure)?;
    if let Some(cpu) = outcome.cpu {
        shared.metrics.compiler_cpu(cpu);
    }
    let queue_ms = slot.end(shared, outcome.elapsed);
    deliver(shared, outcome, key, !dated, queue_ms, input_bytes).await
}

/// Receives an `Upload` and the blobs it announces, checks each against
/// its digest and keeps it in the store. Returns the bytes received.
async fn receive_blobs(
    shared: &Shared,
    store: &Arc<Store>,
    missing: &[(crate::store::Digest, u64)],
    inbound: &mut Streaming<CompileRequest>,
) -> Result<u64, Failure> {
    let upload = match inbound.message().await.map_err(Failure::gone)? {
        Some(CompileRequest {
            msg: Some(compile_request::Msg::Upload(u)),
        }) => u,
        Some(_) => return Err(Status::invalid_argument("expected an upload").into()),
        None => {
            return Err(Failure::stream(Status::invalid_argument(
                "input ended early",
            )))
        }
    };
    let total: u64 = missing.iter().map(|(_, size)| size).sum();
    if upload.size != total {
        return Err(Status::invalid_argument("the upload's size is not the missing blobs'").into());
    }
    let mut assembler = Assembler::new(
        upload.size,
        upload.compressed_size,
        Vec::new(),
        shared.max_payload,
    )
    .map_err(|e| Status::resource_exhausted(e.to_string()))?;
    take_chunks(shared, inbound, &mut assembler).await?;
    let parts: Vec<(Vec<u8>, u64)> = missing.iter().map(|(d, s)| (d.to_vec(), *s)).collect();
    let store = Arc::clone(store);
    let digests: Vec<crate::store::Digest> = missing.iter().map(|(d, _)| *d).collect();
    tokio::task::spawn_blocking(move || {
        let blobs = assembler
            .finish_blobs(&parts)
            .map_err(|e| Failure::from(Status::invalid_argument(e.to_string())))?;
        for (digest, blob) in digests.iter().zip(&blobs) {
            store
                .put(digest, blob)
                .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
        }
        Ok::<_, Failure>(())
    })
    .await
    .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))??;
    Ok(total)
}

/// A job's error as the client's status and the metrics' outcome.
fn job_failure(e: job::JobError) -> Failure {
    let kind = match &e {
        job::JobError::FileAccess(_) => JobOutcome::Refused,
        job::JobError::WallTime(_) => JobOutcome::WallTime,
        job::JobError::Resource(_)
        | job::JobError::Signal(_)
        | job::JobError::OutputTooLarge(_) => JobOutcome::Resource,
        job::JobError::Io(_)
        | job::JobError::Layout(_)
        | job::JobError::Spawn { .. }
        | job::JobError::NoObject => JobOutcome::Error,
    };
    let status = match e {
        job::JobError::FileAccess(e) => Status::permission_denied(e.to_string()),
        e => Status::internal(format!("compile failed on the worker: {e}")),
    };
    Failure::new(status, kind)
}

/// A job's slot, held until [`Slot::end`].
struct Slot<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    _running: CountGuard<'a>,
    wait: std::time::Duration,
}

impl Slot<'_> {
    /// Frees the slot; returns how long the job waited for it (ms).
    fn end(self, shared: &Shared, ran: std::time::Duration) -> u64 {
        shared.metrics.ran(ran, self.wait);
        self.wait.as_millis() as u64
    }
}

/// Waits for a slot (or refuses when the queue is full). The slot comes
/// before the input: receiving and decompressing an input takes up to its
/// announced size in memory (`max_payload` each, compressed and
/// decompressed), so only jobs holding a slot may do it. A burst of
/// clients (or of decompression bombs) then costs at most `slots` inputs
/// at once, not one per connection. The caller reports the job started
/// once its input is here and checked.
async fn take_slot(shared: &Shared) -> Result<Slot<'_>, Failure> {
    let queued_at = Instant::now();
    let permit = {
        let _waiting = CountGuard::new(&shared.jobs.waiting);
        if shared.jobs.waiting.load(Ordering::SeqCst)
            > shared.queue_limit + shared.slots.available_permits() as u32
        {
            return Err(Status::resource_exhausted("worker queue is full").into());
        }
        shared.jobs.report_load();
        shared
            .slots
            .acquire()
            .await
            .map_err(|_| Status::unavailable("worker is shutting down"))?
    };
    let wait = queued_at.elapsed();
    let _running = CountGuard::new(&shared.jobs.running);
    shared.jobs.report_load();
    Ok(Slot {
        _permit: permit,
        _running,
        wait,
    })
}

/// Objects smaller than this are compressed and digested on the thread
/// that answers (about a millisecond at most).
const SMALL_OBJECT: usize = 1 << 20;

/// Runs `work` on this thread when `small`, else on the blocking pool: a
/// hop there and back wakes two threads, which costs more than the work
/// itself on a small object.
async fn here_when_small<T: Send + 'static>(
    small: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if small {
        Ok(work())
    } else {
        tokio::task::spawn_blocking(work).await
    }
}

/// Turns a finished compile into its answer, storing a successful result
/// in the shared cache under `key` when `cacheable`.
async fn deliver(
    shared: &Shared,
    outcome: job::Outcome,
    key: Option<Key>,
    cacheable: bool,
    queue_ms: u64,
    input_bytes: u64,
) -> Result<Done, Failure> {
    let compile_ms = outcome.elapsed.as_millis() as u64;
    let object = outcome.object.unwrap_or_default();
    let object_size = object.len() as u64;
    // Only successful compiles are kept, as in the wrapper's cache.
    let store = match (&shared.results, key) {
        (Some(results), Some(key)) if outcome.exit_code == 0 && cacheable => Some((
            Arc::clone(results),
            key,
            outcome.stdout.clone(),
            outcome.stderr.clone(),
        )),
        _ => None,
    };
    let small = store.is_none() && object.len() < SMALL_OBJECT;
    let (compressed, digest, cached) = here_when_small(small, move || {
        let compressed = payload::compress(&object);
        let digest = payload::digest(&object);
        let cached = store.and_then(|(results, key, stdout, stderr)| {
            let entry = Entry {
                exit_code: 0,
                object,
                stdout,
                stderr,
                compile_ms,
            };
            match results.store(&key, &entry) {
                Ok(()) => Some(key),
                Err(e) => {
                    tracing::warn!(%key, error = %e, dir = %results.dir().display(), "cannot store in the shared cache");
                    None
                }
            }
        });
        (compressed, digest, cached)
    })
    .await
    .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
    if cached.is_some() {
        shared.metrics.cache(CacheEvent::Stored);
    }
    let compressed =
        compressed.map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
    let result = v1::CompileResult {
        exit_code: outcome.exit_code,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        object_size,
        compressed_size: compressed.len() as u64,
        object_digest: digest,
        compile_ms,
        queue_ms,
        cache_hit: false,
    };
    let chunks = payload::chunks(&compressed).map(<[u8]>::to_vec).collect();
    Ok(Done {
        result,
        chunks,
        input_bytes,
        cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_must_be_plain_preprocessed_files() {
        for ok in ["a.i", "foo bar.ii", "x.mi", "y.mii"] {
            assert!(check_input_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../a.i",
            "/tmp/a.i",
            "a.c",
            ".i",
            "-o.i",
            "a/b.i",
            "gridcc-out.o",
        ] {
            assert!(check_input_name(bad).is_err(), "{bad}");
        }
    }
}
