//! Talking to the grid: `Assign` on the coordinator, then the `Compile`
//! stream on the chosen worker, with one retry on another worker. Every
//! failure is a typed [`RemoteError`]; the caller's fallback decision is a
//! `match` on it.

use std::time::Duration;

use gridcc_proto::auth::{AttachToken, AuthChannel, Token};
use gridcc_proto::payload::{self, Assembler};
use gridcc_proto::tls::{self, ClientTls};
use gridcc_proto::v1::{
    self, assign_reply, compile_request, compile_response, coordinator_client::CoordinatorClient,
    worker_client::WorkerClient, CompileRequest,
};
use tonic::transport::Endpoint;

/// What every grid call needs besides the URL: the token it carries and
/// the CA that `https://` servers are checked with.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token: Option<Token>,
    pub tls: Option<ClientTls>,
}

impl Access {
    /// From `GRIDCC_TOKEN` / `GRIDCC_TOKEN_FILE` and `GRIDCC_TLS_CA`.
    pub fn from_env() -> Result<Self, RemoteError> {
        let config = |e: &dyn std::fmt::Display| RemoteError::Config(e.to_string());
        Ok(Self {
            token: gridcc_proto::auth::load(None).map_err(|e| config(&e))?,
            tls: ClientTls::from_flag_or_env(None).map_err(|e| config(&e))?,
        })
    }
}

/// Why the grid did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The token or TLS settings are unusable (an empty token, an
    /// unreadable CA, https without a CA): nothing to retry.
    #[error("grid settings: {0}")]
    Config(String),
    /// A server refused the token (or its absence): nothing to retry,
    /// since every server of a grid checks the same token.
    #[error("{server} refused the token: {message}")]
    TokenRefused { server: String, message: String },
    #[error("coordinator unreachable: {0}")]
    CoordinatorUnavailable(String),
    #[error("coordinator failed: {0}")]
    Coordinator(tonic::Status),
    #[error("coordinator says compile locally: {0}")]
    CompileLocally(String),
    #[error("worker {addr} unreachable: {msg}")]
    WorkerUnavailable { addr: String, msg: String },
    #[error("worker {addr} failed the job: {status}")]
    WorkerFailed { addr: String, status: tonic::Status },
    #[error("worker {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("worker {addr} sent a bad reply: {msg}")]
    Protocol { addr: String, msg: String },
    /// SIGINT or SIGTERM arrived: the call was cancelled, its lease given
    /// back.
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
}

impl RemoteError {
    /// Errors that are this worker's fault, so another worker may succeed.
    fn worker_fault(&self) -> bool {
        matches!(
            self,
            Self::WorkerUnavailable { .. }
                | Self::WorkerFailed { .. }
                | Self::Timeout { .. }
                | Self::Protocol { .. }
        )
    }
}

/// One translation unit, preprocessed and compressed.
#[derive(Debug)]
pub struct Job {
    pub toolchain: String,
    pub args: Vec<String>,
    pub language: String,
    pub input_name: String,
    /// Source mode: the client's source path; empty in preprocessed mode.
    pub source_path: String,
    /// Stable key of this translation unit, for the coordinator's cost model.
    pub source_key: String,
    pub cwd: String,
    pub input_size: u64,
    pub compressed: Vec<u8>,
    pub digest: Vec<u8>,
    pub env: Vec<v1::EnvVar>,
    /// Grid key (`gridcc_cache::GridJob`), the coordinator's placement hint.
    pub cache_key: String,
    /// The source file's name without its directory: all the coordinator's
    /// monitor page shows of the job (never its arguments).
    pub source_name: String,
    /// The job as an input tree and command line, for a worker that runs
    /// hermetic jobs; `None` when it has none (the reason is in
    /// `text_reason`).
    pub hermetic: Option<crate::hermetic::InputTree>,
    pub text_reason: Option<&'static str>,
}

impl Job {
    /// The grid key of this job: what the worker will compute from the
    /// header it receives.
    /// It names the text form: hermetic jobs are opt-in on workers, so the
    /// coordinator's placement by cached key follows the text jobs' keys
    /// (a hermetic job is placed by load alone).
    pub fn grid_key(&self) -> String {
        self.text_key()
    }

    /// The grid key of the job's hermetic form (what a hermetic worker
    /// stores its result under).
    pub fn hermetic_key(&self, tree: &crate::hermetic::InputTree) -> String {
        let env = self.env_pairs();
        gridcc_cache::GridJob {
            toolchain: &self.toolchain,
            mode: gridcc_cache::GridMode::Hermetic,
            language: tree.language,
            args: &tree.argv,
            name: &tree.source,
            cwd: &self.cwd,
            env: &env,
            input_digest: &tree.digest,
            input_size: tree.size,
        }
        .key()
        .to_string()
    }

    /// The locale variables sent, as the grid key takes them.
    fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect()
    }

    /// The grid key of the job's text form.
    fn text_key(&self) -> String {
        let env = self.env_pairs();
        let source_mode = !self.source_path.is_empty();
        gridcc_cache::GridJob {
            toolchain: &self.toolchain,
            mode: if source_mode {
                gridcc_cache::GridMode::Source
            } else {
                gridcc_cache::GridMode::Preprocessed
            },
            language: &self.language,
            args: &self.args,
            name: if source_mode {
                &self.source_path
            } else {
                &self.input_name
            },
            cwd: &self.cwd,
            env: &env,
            input_digest: &self.digest,
            input_size: self.input_size,
        }
        .key()
        .to_string()
    }
}

/// What the worker's compiler did.
#[derive(Debug)]
pub struct Output {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub object: Vec<u8>,
    pub worker_addr: String,
    pub compile_ms: u64,
    /// Compressed object bytes that came over the wire.
    pub received_bytes: u64,
    /// Compressed input bytes uploaded (0 when the worker had the input
    /// or the result already).
    pub sent_bytes: u64,
    /// The worker answered from its shared cache.
    pub shared_hit: bool,
    /// This is the second attempt: the first worker failed the job.
    pub retried: bool,
    /// It ran as a hermetic job (input tree in a sandbox), not as text.
    pub hermetic: bool,
    /// The encoded size of the job's header (for a hermetic job mostly the
    /// input tree's listing, sent with every job; not in `sent_bytes`).
    pub header_bytes: u64,
}

/// Timeouts for grid calls.
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub assign: Duration,
    /// Whole job on a worker, including its queue.
    pub job: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(500),
            // The coordinator may hold an Assign while every slot is busy.
            assign: Duration::from_secs(60),
            job: Duration::from_secs(600),
        }
    }
}

fn endpoint(url: &str, access: &Access, timeouts: &Timeouts) -> Result<Endpoint, RemoteError> {
    Ok(tls::endpoint(url, access.tls.as_ref())
        .map_err(|e| RemoteError::Config(e.to_string()))?
        .connect_timeout(timeouts.connect)
        .tcp_nodelay(true)
        // HTTP/2 pings detect a hung (e.g. SIGSTOPped) peer during a long
        // compile, which TCP alone would not.
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// A connected coordinator, and what its workers are reached with.
pub struct Coordinator {
    url: String,
    access: Access,
    client: CoordinatorClient<AuthChannel>,
}

impl Coordinator {
    /// A failed call: a refused token, an unreachable coordinator, or
    /// another failure.
    fn failed(&self, status: tonic::Status) -> RemoteError {
        match status.code() {
            tonic::Code::Unauthenticated => RemoteError::TokenRefused {
                server: format!("coordinator {}", self.url),
                message: status.message().to_owned(),
            },
            _ if tls::is_transport_failure(&status) => {
                RemoteError::CoordinatorUnavailable(tls::explain_status(&self.url, &status))
            }
            _ => RemoteError::Coordinator(status),
        }
    }

    /// The grid's status (`gridcc status`).
    pub async fn status(&mut self) -> Result<v1::StatusReply, RemoteError> {
        match self.client.status(v1::StatusRequest {}).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => Err(self.failed(status)),
        }
    }
}

/// Connects to the coordinator.
pub async fn connect_coordinator(
    url: &str,
    access: &Access,
    timeouts: &Timeouts,
) -> Result<Coordinator, RemoteError> {
    let channel = endpoint(url, access, timeouts)?
        .connect()
        .await
        .map_err(|e| RemoteError::CoordinatorUnavailable(tls::explain_error(url, &e)))?;
    Ok(Coordinator {
        url: url.to_owned(),
        access: access.clone(),
        client: CoordinatorClient::with_interceptor(
            channel,
            AttachToken::new(access.token.as_ref()),
        ),
    })
}

/// Places and runs the job, retrying once on another worker when a worker
/// fails. A compile error is a successful [`Output`], never retried. When
/// `interrupted` resolves (to a signal number) first, the call in flight is
/// dropped, which cancels it (the worker kills the job), and the lease held
/// is given back.
pub async fn compile(
    coordinator: &mut Coordinator,
    job: &Job,
    timeouts: &Timeouts,
    mut interrupted: std::pin::Pin<&mut impl std::future::Future<Output = i32>>,
) -> Result<Output, RemoteError> {
    let mut exclude = Vec::new();
    let mut failed_lease = 0;
    let mut failed_lease_mac = Vec::new();
    loop {
        let request = v1::AssignRequest {
            toolchain: job.toolchain.clone(),
            source_bytes: job.input_size,
            cost_hint: 0.0,
            exclude_workers: exclude.clone(),
            failed_lease,
            failed_lease_mac: failed_lease_mac.clone(),
            client: client_name().to_owned(),
            source_key: job.source_key.clone(),
            client_idle_cpus: crate::idle::idle_cpus(),
            cache_key: job.cache_key.clone(),
            source_name: job.source_name.clone(),
            hermetic_cache_key: job
                .hermetic
                .as_ref()
                .map(|tree| job.hermetic_key(tree))
                .unwrap_or_default(),
        };
        let assign = tokio::time::timeout(timeouts.assign, coordinator.client.assign(request));
        let reply = tokio::select! {
            reply = assign => reply,
            sig = interrupted.as_mut() => {
                // A retry's request released the failed lease; a first one
                // holds none yet.
                return Err(RemoteError::Interrupted(sig));
            }
        };
        let reply = reply
            .map_err(|_| RemoteError::CoordinatorUnavailable("assign timed out".into()))?
            .map_err(|status| coordinator.failed(status))?
            .into_inner();
        let placement = match reply.outcome {
            Some(assign_reply::Outcome::Placement(p)) => p,
            Some(assign_reply::Outcome::Local(l)) => {
                return Err(RemoteError::CompileLocally(l.reason))
            }
            None => {
                return Err(RemoteError::Coordinator(tonic::Status::internal(
                    "empty assign reply",
                )))
            }
        };
        let lease_id = placement.lease.as_ref().map_or(0, |l| l.id);
        let lease_mac = placement
            .lease
            .as_ref()
            .map(|l| l.mac.clone())
            .unwrap_or_default();
        let run = tokio::select! {
            run = run_on_worker(coordinator, &placement, job, timeouts) => run,
            sig = interrupted.as_mut() => Err(RemoteError::Interrupted(sig)),
        };
        match run {
            Ok(out) => {
                return Ok(Output {
                    retried: !exclude.is_empty(),
                    ..out
                })
            }
            Err(e) if e.worker_fault() && exclude.is_empty() => {
                tracing::warn!(error = %e, "retrying on another worker");
                exclude.push(placement.worker_id);
                failed_lease = lease_id;
                failed_lease_mac = lease_mac;
            }
            Err(e) => {
                // Free the slot the failed lease holds; best effort.
                if lease_id != 0 {
                    let release = v1::ReleaseRequest {
                        lease_id,
                        mac: lease_mac,
                    };
                    let _ =
                        tokio::time::timeout(timeouts.connect, coordinator.client.release(release))
                            .await;
                }
                return Err(e);
            }
        }
    }
}

/// This host's name, for the coordinator's monitor (which clients are
/// building); empty when unknown, and the coordinator then shows the
/// client's address. Read from procfs: no `unsafe` `gethostname`, and one
/// small read per compile.
fn client_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    })
}

async fn run_on_worker(
    coordinator: &Coordinator,
    placement: &v1::Placement,
    job: &Job,
    timeouts: &Timeouts,
) -> Result<Output, RemoteError> {
    let addr = placement.worker_addr.clone();
    // A TLS coordinator's workers are TLS too.
    let url = tls::worker_url(&coordinator.url, &addr);
    let channel = endpoint(&url, &coordinator.access, timeouts)?
        .connect()
        .await
        .map_err(|e| RemoteError::WorkerUnavailable {
            addr: addr.clone(),
            msg: tls::explain_error(&url, &e),
        })?;
    let access = AttachToken::new(coordinator.access.token.as_ref());
    let mut client = WorkerClient::with_interceptor(channel, access)
        .max_decoding_message_size(payload::CHUNK_SIZE * 4 + (64 << 20))
        .max_encoding_message_size(payload::CHUNK_SIZE * 4);

    // A worker that runs hermetic jobs gets the input tree and command
    // line; any other the text.
    let tree = job.hermetic.as_ref().filter(|_| placement.hermetic);
    let header = match tree {
        Some(tree) => v1::CompileHeader {
            lease: placement.lease.clone(),
            toolchain: job.toolchain.clone(),
            language: tree.language.to_owned(),
            input_size: tree.size,
            input_digest: tree.digest.to_vec(),
            env: job.env.clone(),
            source_path: tree.source.clone(),
            cwd: job.cwd.clone(),
            offer_input: true,
            hermetic: Some(v1::HermeticJob {
                files: tree
                    .files
                    .iter()
                    .map(|f| v1::InputFile {
                        path: f.path.clone(),
                        digest: f.digest.to_vec(),
                        size: f.size,
                        executable: f.executable,
                    })
                    .collect(),
                dirs: tree.dirs.clone(),
                argv: tree.argv.clone(),
                object: tree.object.clone(),
            }),
            ..Default::default()
        },
        None => v1::CompileHeader {
            lease: placement.lease.clone(),
            toolchain: job.toolchain.clone(),
            args: job.args.clone(),
            language: job.language.clone(),
            input_name: job.input_name.clone(),
            input_size: job.input_size,
            compressed_size: job.compressed.len() as u64,
            input_digest: job.digest.clone(),
            env: job.env.clone(),
            source_path: job.source_path.clone(),
            cwd: job.cwd.clone(),
            // The worker asks for the chunks only when it has neither the
            // result nor the input, so a repeated job is not uploaded again.
            offer_input: placement.takes_input_offer,
            hermetic: None,
        },
    };
    let offer = header.offer_input;
    let header_bytes = prost::Message::encoded_len(&header) as u64;
    let send = |msg| CompileRequest { msg: Some(msg) };
    // Offering: the request stream stays open until the exchange ends and
    // the chunks go only after the worker's `SendInput`. Not offering (an
    // older worker): header and chunks go at once, as a stream tonic
    // drives by itself, so a worker that answers early cannot leave the
    // client blocked on a full channel.
    let (requests, waiting) = tokio::sync::mpsc::channel::<CompileRequest>(4);
    let outgoing: std::pin::Pin<Box<dyn tokio_stream::Stream<Item = CompileRequest> + Send>> =
        if offer {
            Box::pin(tokio_stream::wrappers::ReceiverStream::new(waiting))
        } else {
            let messages: Vec<CompileRequest> =
                std::iter::once(compile_request::Msg::Header(header.clone()))
                    .chain(
                        payload::chunks(&job.compressed)
                            .map(|c| compile_request::Msg::Chunk(c.to_vec())),
                    )
                    .map(send)
                    .collect();
            Box::pin(tokio_stream::iter(messages))
        };

    let exchange = async {
        let failed = |status: tonic::Status| match status.code() {
            tonic::Code::Unauthenticated => RemoteError::TokenRefused {
                server: format!("worker {addr}"),
                message: status.message().to_owned(),
            },
            _ => RemoteError::WorkerFailed {
                addr: addr.clone(),
                status,
            },
        };
        let protocol = |msg: String| RemoteError::Protocol {
            addr: addr.clone(),
            msg,
        };
        let gone = || protocol("the worker closed the request stream".into());
        let mut sent_bytes = 0;
        if offer {
            requests
                .send(send(compile_request::Msg::Header(header)))
                .await
                .map_err(|_| gone())?;
        } else {
            sent_bytes = job.compressed.len() as u64;
        }
        let mut inbound = client.compile(outgoing).await.map_err(failed)?.into_inner();
        let mut first = inbound.message().await.map_err(failed)?;
        if let (
            true,
            Some(v1::CompileResponse {
                msg: Some(compile_response::Msg::SendInput(ask)),
            }),
        ) = (offer, &first)
        {
            let upload;
            let compressed = match tree {
                Some(tree) => {
                    // The blobs the worker lacks, in its order, as one
                    // payload after their sizes.
                    let mut blobs = Vec::new();
                    for digest in &ask.missing {
                        let blob = tree.blob(digest).ok_or_else(|| {
                            protocol("the worker asked for a blob not in the job".into())
                        })?;
                        blobs.extend_from_slice(blob);
                    }
                    upload = payload::compress(&blobs).map_err(|e| protocol(e.to_string()))?;
                    requests
                        .send(send(compile_request::Msg::Upload(v1::Upload {
                            size: blobs.len() as u64,
                            compressed_size: upload.len() as u64,
                        })))
                        .await
                        .map_err(|_| gone())?;
                    &upload
                }
                None => &job.compressed,
            };
            for chunk in payload::chunks(compressed) {
                requests
                    .send(send(compile_request::Msg::Chunk(chunk.to_vec())))
                    .await
                    .map_err(|_| gone())?;
            }
            sent_bytes = compressed.len() as u64;
            first = inbound.message().await.map_err(failed)?;
        }
        let result = match first {
            Some(v1::CompileResponse {
                msg: Some(compile_response::Msg::Result(r)),
            }) => r,
            _ => return Err(protocol("expected a result first".into())),
        };
        let mut assembler = Assembler::new(
            result.object_size,
            result.compressed_size,
            result.object_digest.clone(),
            payload::MAX_PAYLOAD_BYTES,
        )
        .map_err(|e| protocol(e.to_string()))?;
        while !assembler.is_complete() {
            match inbound.message().await.map_err(failed)? {
                Some(v1::CompileResponse {
                    msg: Some(compile_response::Msg::Chunk(c)),
                }) => assembler.push(&c).map_err(|e| protocol(e.to_string()))?,
                _ => return Err(protocol("object stream ended early".into())),
            }
        }
        let object = assembler.finish().map_err(|e| protocol(e.to_string()))?;
        Ok(Output {
            exit_code: result.exit_code,
            stdout: result.stdout,
            stderr: result.stderr,
            object,
            worker_addr: addr.clone(),
            compile_ms: result.compile_ms,
            received_bytes: result.compressed_size,
            sent_bytes,
            shared_hit: result.cache_hit,
            retried: false,
            hermetic: tree.is_some(),
            header_bytes,
        })
    };
    tokio::time::timeout(timeouts.job, exchange)
        .await
        .map_err(|_| RemoteError::Timeout {
            addr: addr.clone(),
            after: timeouts.job,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use tokio_stream::Stream;
    use tonic::{Request, Response, Status, Streaming};

    /// A worker from before `offer_input`: it ignores the flag, reads the
    /// header and every chunk, and only then answers (it echoes the input
    /// back as the object).
    struct OldWorker;

    type Replies = Pin<Box<dyn Stream<Item = Result<v1::CompileResponse, Status>> + Send>>;

    #[tonic::async_trait]
    impl v1::worker_server::Worker for OldWorker {
        type CompileStream = Replies;

        async fn compile(
            &self,
            request: Request<Streaming<CompileRequest>>,
        ) -> Result<Response<Replies>, Status> {
            let bad = |e: payload::PayloadError| Status::invalid_argument(e.to_string());
            let mut inbound = request.into_inner();
            let header = match inbound.message().await? {
                Some(CompileRequest {
                    msg: Some(compile_request::Msg::Header(h)),
                }) => h,
                _ => return Err(Status::invalid_argument("no header")),
            };
            let mut input = Assembler::new(
                header.input_size,
                header.compressed_size,
                header.input_digest,
                payload::MAX_PAYLOAD_BYTES,
            )
            .map_err(bad)?;
            while !input.is_complete() {
                match inbound.message().await? {
                    Some(CompileRequest {
                        msg: Some(compile_request::Msg::Chunk(c)),
                    }) => input.push(&c).map_err(bad)?,
                    _ => return Err(Status::invalid_argument("input ended early")),
                }
            }
            let object = input.finish().map_err(bad)?;
            let compressed = payload::compress(&object).map_err(bad)?;
            let result = v1::CompileResult {
                object_size: object.len() as u64,
                compressed_size: compressed.len() as u64,
                object_digest: payload::digest(&object),
                ..Default::default()
            };
            let reply = |msg| Ok(v1::CompileResponse { msg: Some(msg) });
            let replies: Vec<_> = std::iter::once(compile_response::Msg::Result(result))
                .chain(
                    payload::chunks(&compressed).map(|c| compile_response::Msg::Chunk(c.to_vec())),
                )
                .map(reply)
                .collect();
            Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
        }
    }

    /// An input of several chunks that zstd cannot shrink much.
    fn noisy_input(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn without_takes_input_offer_the_input_goes_with_the_header() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(v1::worker_server::WorkerServer::new(OldWorker))
                .serve_with_incoming(incoming),
        );

        // Never dialled: the job goes straight to the worker.
        let url = "http://127.0.0.1:9".to_owned();
        let channel = Endpoint::from_shared(url.clone()).unwrap().connect_lazy();
        let coordinator = Coordinator {
            url,
            access: Access::default(),
            client: CoordinatorClient::with_interceptor(channel, AttachToken::new(None)),
        };
        let input = noisy_input(3 * payload::CHUNK_SIZE);
        let compressed = payload::compress(&input).unwrap();
        assert!(compressed.len() > 2 * payload::CHUNK_SIZE);
        let job = Job {
            toolchain: "t".into(),
            args: vec!["-c".into()],
            language: "c".into(),
            input_name: "a.i".into(),
            source_path: String::new(),
            source_key: String::new(),
            cwd: "/".into(),
            input_size: input.len() as u64,
            digest: payload::digest(&input),
            compressed,
            env: Vec::new(),
            cache_key: String::new(),
            source_name: "a.c".into(),
            hermetic: None,
            text_reason: None,
        };
        let placement = v1::Placement {
            worker_addr: addr,
            takes_input_offer: false,
            ..Default::default()
        };
        // Were the chunks held back for a `SendInput`, this would hang
        // until the job timeout.
        let timeouts = Timeouts {
            job: Duration::from_secs(10),
            ..Timeouts::default()
        };
        let out = run_on_worker(&coordinator, &placement, &job, &timeouts)
            .await
            .unwrap();
        assert_eq!(out.object, input);
        assert_eq!(out.sent_bytes, job.compressed.len() as u64);
        assert!(!out.shared_hit);
    }
}
