//! The `gridcc.v1.Worker` gRPC service: checks a job (lease, compiler,
//! arguments, sizes), receives its input, waits for a slot, runs it and
//! streams the result back. Errors become `tonic::Status` here only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gridcc_proto::payload::{self, Assembler};
use gridcc_proto::v1::{
    self, compile_request, compile_response, worker_message, CompileRequest, CompileResponse,
    WorkerMessage,
};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::job::{self, Job};
use crate::layout::Layout;
use crate::metrics::{JobOutcome, Metrics};
use crate::session::SharedRegistration;

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
    pub(crate) events: mpsc::Sender<WorkerMessage>,
    pub(crate) slots: Semaphore,
    /// Jobs allowed to wait for a slot; more are refused at once.
    pub(crate) queue_limit: u32,
    pub(crate) waiting: AtomicU32,
    pub(crate) running: AtomicU32,
    pub(crate) work_dir: PathBuf,
    pub(crate) max_payload: u64,
    pub(crate) limits: crate::sandbox::Limits,
    /// Fires when the worker drains: new jobs are refused.
    pub(crate) draining: CancellationToken,
    /// Jobs this worker runs at once.
    pub(crate) slots_total: u32,
    pub(crate) metrics: Metrics,
}

impl Shared {
    fn event(&self, msg: worker_message::Msg) {
        // Dropped only when the session is down or far behind; then the
        // coordinator has written this worker's leases off anyway.
        let _ = self.events.try_send(WorkerMessage { msg: Some(msg) });
    }

    /// The `/metrics` page.
    pub(crate) fn metrics_text(&self) -> String {
        let snapshot = crate::metrics::Snapshot {
            slots: self.slots_total,
            running: self.running.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            temp_dirs: job::live_dirs(),
            draining: self.draining.is_cancelled(),
            registered: self
                .registration
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_some(),
        };
        crate::metrics::render(&self.metrics, &snapshot)
    }

    fn report_load(&self) {
        self.event(worker_message::Msg::Load(v1::LoadUpdate {
            running: self.running.load(Ordering::SeqCst),
            queued: self.waiting.load(Ordering::SeqCst),
        }));
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

    /// The client's stream broke or ended early: not a refusal.
    fn stream(status: Status) -> Self {
        Self::new(status, JobOutcome::Error)
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
    /// The `Compile` call: checks, runs and answers one job.
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
        shared.event(worker_message::Msg::Started(v1::JobStarted { lease_id }));

        let result = self.run_job(header, compiler, &mut inbound).await;
        let (ran, exit_code, compile_ms, queue_ms, input_bytes) = match &result {
            Ok((r, _, input_bytes)) => (true, r.exit_code, r.compile_ms, r.queue_ms, *input_bytes),
            Err(_) => (false, -1, 0, 0, 0),
        };
        shared.event(worker_message::Msg::Finished(v1::JobFinished {
            lease_id,
            ran,
            exit_code,
            compile_ms,
            queue_ms,
            input_bytes,
        }));
        shared.report_load();
        let (result, chunks, _) = result?;
        shared.metrics.job(if result.exit_code == 0 {
            JobOutcome::Ok
        } else {
            JobOutcome::CompileError
        });
        shared.metrics.sent(chunks.iter().map(Vec::len).sum());
        let messages = std::iter::once(CompileResponse {
            msg: Some(compile_response::Msg::Result(result)),
        })
        .chain(chunks.into_iter().map(|chunk| CompileResponse {
            msg: Some(compile_response::Msg::Chunk(chunk)),
        }))
        .map(Ok);
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    /// Receives the input, waits for a slot, compiles. Returns the result
    /// header, the compressed object's chunks and the input size.
    async fn run_job(
        &self,
        header: v1::CompileHeader,
        compiler: PathBuf,
        inbound: &mut Streaming<CompileRequest>,
    ) -> Result<(v1::CompileResult, Vec<Vec<u8>>, u64), Failure> {
        let shared = &self.shared;
        let mut assembler = Assembler::new(
            header.input_size,
            header.compressed_size,
            header.input_digest.clone(),
            shared.max_payload,
        )
        .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        while !assembler.is_complete() {
            match inbound.message().await.map_err(Failure::stream)? {
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
        let input = tokio::task::spawn_blocking(move || assembler.finish())
            .await
            .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let input_bytes = input.len() as u64;
        crate::directives::check_text(&input)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let layout = if header.source_path.is_empty() {
            Layout::Preprocessed {
                input_name: header.input_name,
            }
        } else {
            Layout::Source {
                source_path: header.source_path,
                cwd: header.cwd,
            }
        };
        // Refuse a bad layout before taking a slot.
        crate::layout::plan(std::path::Path::new("/gridcc-check"), &layout, &header.args)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;

        let queued_at = Instant::now();
        let permit = {
            let _waiting = CountGuard::new(&shared.waiting);
            if shared.waiting.load(Ordering::SeqCst)
                > shared.queue_limit + shared.slots.available_permits() as u32
            {
                return Err(Status::resource_exhausted("worker queue is full").into());
            }
            shared.report_load();
            shared
                .slots
                .acquire()
                .await
                .map_err(|_| Status::unavailable("worker is shutting down"))?
        };
        let slot_wait = queued_at.elapsed();
        let queue_ms = slot_wait.as_millis() as u64;
        let _running = CountGuard::new(&shared.running);
        shared.report_load();

        let job = Job {
            compiler,
            args: header.args,
            language: header.language,
            layout,
            input,
            env: header.env.into_iter().map(|v| (v.name, v.value)).collect(),
        };
        let outcome = job::run(job, &shared.work_dir, &shared.limits)
            .await
            .map_err(|e| {
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
            })?;
        drop(permit);
        shared.metrics.ran(outcome.elapsed, slot_wait);

        let object = outcome.object.unwrap_or_default();
        let object_size = object.len() as u64;
        let (compressed, digest) = tokio::task::spawn_blocking(move || {
            (payload::compress(&object), payload::digest(&object))
        })
        .await
        .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
        let compressed = compressed
            .map_err(|e| Failure::new(Status::internal(e.to_string()), JobOutcome::Error))?;
        let result = v1::CompileResult {
            exit_code: outcome.exit_code,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            object_size,
            compressed_size: compressed.len() as u64,
            object_digest: digest,
            compile_ms: outcome.elapsed.as_millis() as u64,
            queue_ms,
        };
        let chunks = payload::chunks(&compressed).map(<[u8]>::to_vec).collect();
        Ok((result, chunks, input_bytes))
    }
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
