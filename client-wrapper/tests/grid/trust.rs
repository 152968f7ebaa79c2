//! Trust boundaries (issue 25 items 2, 4, 5): roles (a client token cannot
//! register a worker, nor can a wrong one), a worker's memory and disk under
//! decompression bombs and a job that writes gigabytes, and diagnostics that
//! never quote a worker's file, whatever line markers the client sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gridcc_proto::auth::{AttachToken, Token};
use gridcc_proto::payload;
use gridcc_proto::v1::{
    self, compile_request, compile_response, coordinator_client::CoordinatorClient,
    worker_client::WorkerClient,
};

use super::*;

const WORKER_TOKEN: &str = "worker-token-5e1f";
const ALICE: &str = "alice-token-77aa";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn toolchain() -> String {
    let cache = tempfile::tempdir().unwrap();
    gridcc_toolchain::IdentityCache::new(cache.path().to_owned())
        .identify(&which("gcc"))
        .unwrap()
        .digest
}

/// A placement from the coordinator at `url`, as a client with `token`.
async fn assign(url: &str, token: Option<&str>, toolchain: &str) -> v1::Placement {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = token.map(|t| Token::new(t).unwrap());
    let mut coordinator =
        CoordinatorClient::with_interceptor(channel, AttachToken::new(token.as_ref()));
    let reply = coordinator
        .assign(v1::AssignRequest {
            toolchain: toolchain.to_owned(),
            source_bytes: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match reply.outcome {
        Some(v1::assign_reply::Outcome::Placement(p)) => p,
        other => panic!("not placed: {other:?}"),
    }
}

/// Sends `messages` as one Compile to `addr` with `token`; the status it
/// ended with, or the result.
async fn compile(
    addr: &str,
    token: Option<&str>,
    messages: Vec<v1::CompileRequest>,
) -> Result<v1::CompileResult, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = token.map(|t| Token::new(t).unwrap());
    let mut worker = WorkerClient::with_interceptor(channel, AttachToken::new(token.as_ref()));
    let mut replies = worker
        .compile(tokio_stream::iter(messages))
        .await?
        .into_inner();
    loop {
        match replies.message().await? {
            Some(v1::CompileResponse {
                msg: Some(compile_response::Msg::Result(r)),
            }) => return Ok(r),
            Some(_) => continue,
            None => return Err(tonic::Status::unknown("no result")),
        }
    }
}

/// A preprocessed job: header (with `args`) and the compressed `text`.
fn preprocessed_job(
    lease: Option<v1::Lease>,
    toolchain: &str,
    args: &[&str],
    text: &[u8],
) -> Vec<v1::CompileRequest> {
    let compressed = payload::compress(text).unwrap();
    let header = v1::CompileHeader {
        lease,
        toolchain: toolchain.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        language: "cpp-output".into(),
        input_name: "a.i".into(),
        input_size: text.len() as u64,
        compressed_size: compressed.len() as u64,
        input_digest: payload::digest(text),
        ..Default::default()
    };
    std::iter::once(compile_request::Msg::Header(header))
        .chain(payload::chunks(&compressed).map(|c| compile_request::Msg::Chunk(c.to_vec())))
        .map(|msg| v1::CompileRequest { msg: Some(msg) })
        .collect()
}

fn jobs_done(grid: &Grid) -> u64 {
    grid.status()["jobs_remote"].as_u64().unwrap()
}

#[test]
fn roles_a_client_token_cannot_register_a_worker_nor_can_a_wrong_one() {
    let secrets = tempfile::tempdir().unwrap();
    let worker_file = write(secrets.path(), "worker.token", WORKER_TOKEN);
    let clients = write(
        secrets.path(),
        "clients",
        &format!("# one line per user\nalice {ALICE}\nbob bob-token-0042\n"),
    );
    let (worker_file, clients) = (
        worker_file.display().to_string(),
        clients.display().to_string(),
    );
    // The servers' GRIDCC_TOKEN is the worker token: the coordinator's role
    // flags win over it, workers present it, `Grid::status` reads with it.
    let mut grid = Grid::start_secured(
        0,
        1,
        &[
            "--worker-token-file",
            &worker_file,
            "--client-tokens",
            &clients,
        ],
        Security {
            token: Some(WORKER_TOKEN.to_owned()),
            tls: None,
        },
    );

    let one_line = |log: &str, expected: &str| {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("gridcc-worker:"))
            .collect();
        assert_eq!(lines.len(), 1, "one line of reason; log: {log}");
        assert!(lines[0].contains(expected), "{}", lines[0]);
    };
    let (code, log) = auth::worker_exit(&grid, &[], &[("GRIDCC_TOKEN", ALICE)], "as-client");
    assert_eq!(code, 1, "{log}");
    one_line(
        &log,
        "refused the token: a client token cannot register a worker",
    );
    let (code, log) = auth::worker_exit(&grid, &[], &[("GRIDCC_TOKEN", "guess")], "wrong");
    assert_eq!(code, 1, "{log}");
    one_line(&log, "refused the token: wrong token");
    assert_eq!(grid.status()["workers"].as_array().unwrap().len(), 0);

    grid.add_worker(1);
    grid.wait_for_workers(1);

    // Alice compiles remotely, and the coordinator names her.
    let work = tempfile::tempdir().unwrap();
    write(work.path(), "x.c", "int x(void) { return 42; }\n");
    let client = |token: &str| {
        let mut cmd = Command::new(gridcc());
        cmd.current_dir(work.path())
            .args(["gcc", "-c", "x.c", "-o", "x.o"])
            .env_remove("GRIDCC_TOKEN_FILE")
            .env("GRIDCC_TOKEN", token);
        gridcc_env(&mut cmd, &grid.url(), &work.path().join("cache"));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    client(ALICE);
    assert_eq!(jobs_done(&grid), 1, "alice's compile ran on the worker");
    let log = std::fs::read_to_string(grid.dir.path().join("coordinator.log")).unwrap();
    assert!(log.contains("client=alice@"), "{log}");

    // The worker token places nothing: the build goes on locally.
    client(WORKER_TOKEN);
    assert_eq!(jobs_done(&grid), 1, "the worker token placed no job");

    // The worker takes client tokens it was never given (the coordinator
    // told it their digests), and refuses its own on Compile.
    let addr = grid.status()["workers"][0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let toolchain = toolchain();
    runtime().block_on(async {
        let job = || preprocessed_job(None, &toolchain, &["-O2"], b"int f;\n");
        let refused = compile(&addr, Some(WORKER_TOKEN), job()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let no_lease = compile(&addr, Some("bob-token-0042"), job())
            .await
            .unwrap_err();
        assert_eq!(
            no_lease.code(),
            tonic::Code::PermissionDenied,
            "{no_lease:?}"
        );
        assert!(no_lease.message().contains("no lease"), "{no_lease:?}");
    });
}

/// The peak resident memory of process `pid` so far, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// A 16 KB zstd frame of 4096 RLE blocks that inflates to 512 MiB of zeros.
fn bomb() -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]; // magic, no size, 128 KiB window
    for i in 0..4096u32 {
        let last = u32::from(i == 4095);
        let header = last | (1 << 1) | (131_072 << 3); // RLE block of 128 KiB
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

const MIB: u64 = 1 << 20;

#[test]
fn resources_eight_decompression_bombs_cost_the_worker_at_most_its_slots_inputs() {
    const SLOTS: u64 = 2;
    // Leases not brought to the worker are freed fast, so eight can be had
    // from a 2-slot grid (a client can do as much by waiting).
    let grid = Grid::start_with(1, SLOTS as u32, &["--start-timeout-ms", "100"]);
    let pid = grid.workers[0].child.id();
    let before = peak_rss(pid);
    let toolchain = toolchain();
    let url = grid.url();
    let frame = bomb();
    let outcomes = runtime().block_on(async {
        let mut placements = Vec::new();
        for _ in 0..8 {
            placements.push(assign(&url, None, &toolchain).await);
        }
        let calls = placements.into_iter().map(|p| {
            let header = v1::CompileHeader {
                lease: p.lease,
                toolchain: toolchain.clone(),
                args: vec!["-O2".into()],
                language: "cpp-output".into(),
                input_name: "a.i".into(),
                input_size: payload::MAX_PAYLOAD_BYTES,
                compressed_size: frame.len() as u64,
                // Any digest: the worker finds it wrong only once it has
                // decompressed all 512 MiB.
                input_digest: vec![0; 32],
                ..Default::default()
            };
            let messages = vec![
                v1::CompileRequest {
                    msg: Some(compile_request::Msg::Header(header)),
                },
                v1::CompileRequest {
                    msg: Some(compile_request::Msg::Chunk(frame.clone())),
                },
            ];
            let addr = p.worker_addr;
            tokio::spawn(async move { compile(&addr, None, messages).await })
        });
        let mut outcomes = Vec::new();
        for call in calls.collect::<Vec<_>>() {
            outcomes.push(call.await.unwrap());
        }
        outcomes
    });
    let decompressed = outcomes
        .iter()
        .filter(|o| matches!(o, Err(s) if s.message().contains("digest does not match")))
        .count();
    assert!(
        outcomes.iter().all(Result::is_err),
        "no bomb compiled: {outcomes:?}"
    );
    assert!(
        decompressed >= 2,
        "the bombs were decompressed: {outcomes:?}"
    );
    let peak = peak_rss(pid);
    // The stated bound (docs/security.md): `slots` inputs being received or
    // decompressed at once, each at most max_payload decompressed plus its
    // compressed bytes, over what the worker held before.
    let bound = before + SLOTS * (payload::MAX_PAYLOAD_BYTES + frame.len() as u64) + 64 * MIB;
    eprintln!(
        "worker peak RSS: {} MiB before, {} MiB after 8 bombs ({decompressed} decompressed); bound {} MiB",
        before / MIB,
        peak / MIB,
        bound / MIB
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB",
        peak / MIB,
        bound / MIB
    );
}

/// Bytes on disk under `dir` (allocated blocks), files vanishing meanwhile
/// ignored.
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_use(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[test]
fn resources_a_job_writing_3_gb_stops_at_the_output_bound() {
    let mut grid = Grid::start(0, 1);
    let work = grid.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let work_s = work.display().to_string();
    grid.add_worker_with(1, &["--work-dir", &work_s], &[]);
    grid.wait_for_workers(1);
    let toolchain = toolchain();
    let url = grid.url();

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, work) = (Arc::clone(&stop), work.clone());
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::SeqCst) {
                peak = peak.max(disk_use(&work));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(disk_use(&work))
        })
    };
    let outcome = runtime().block_on(async {
        let p = assign(&url, None, &toolchain).await;
        let text = b"__asm__(\".data\\n.skip 3000000000\");\n";
        compile(
            &p.worker_addr,
            None,
            preprocessed_job(p.lease, &toolchain, &["-O2"], text),
        )
        .await
    });
    stop.store(true, Ordering::SeqCst);
    let peak = watcher.join().unwrap();
    let status = outcome.unwrap_err();
    assert!(
        status.message().contains("File size limit exceeded"),
        "a resource failure, with its reason: {status:?}"
    );
    let bound = payload::MAX_PAYLOAD_BYTES + 64 * MIB;
    eprintln!(
        "peak disk under the worker's work dir: {} MiB (bound {} MiB)",
        peak / MIB,
        bound / MIB
    );
    assert!(peak <= bound, "{} MiB on disk", peak / MIB);
}

/// Lines of a worker-only file, each a syntax error where a marker puts it.
const SECRET: &str = "kq7 WORKER-SECRET-1 x\nkq7 WORKER-SECRET-2 y\nkq7 WORKER-SECRET-3 z\n";

/// Runs `gridcc args…` in `dir` inside a mount namespace of its own where
/// `hidden` is an empty tmpfs: the client cannot see the worker's file.
fn gridcc_without(hidden: &Path, dir: &Path, url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.current_dir(dir)
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs none \"$0\" && exec \"$@\"",
        ])
        .arg(hidden)
        .arg(gridcc())
        .args(args);
    gridcc_env(&mut cmd, url, &dir.join("cache"));
    cmd.output().unwrap()
}

#[test]
fn diagnostics_never_quote_a_file_of_the_worker() {
    let grid = Grid::start(1, 1);
    // The worker's file: readable by its compile user (nobody when root).
    let root = tempfile::tempdir().unwrap();
    let hidden = root.path().join("worker-only");
    std::fs::create_dir(&hidden).unwrap();
    let secret = write(&hidden, "secret.txt", SECRET);
    use std::os::unix::fs::PermissionsExt;
    for d in [root.path(), &hidden] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let probe = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs none \"$0\" && ! test -e \"$1\"",
        ])
        .arg(&hidden)
        .arg(&secret)
        .status()
        .unwrap();
    assert!(
        probe.success(),
        "this test needs `unshare -m` and tmpfs mounts (root, or a user namespace)"
    );
    let work = tempfile::tempdir().unwrap();
    let url = grid.url();
    let leaks = |out: &Output| {
        let mut seen = String::from_utf8_lossy(&out.stderr).into_owned();
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        for f in tree_files(work.path()).values() {
            seen.push_str(&String::from_utf8_lossy(f));
        }
        seen.contains("WORKER-SECRET")
    };

    // A `.i` whose markers name the worker's file, an error on each line:
    // compiled remotely, the errors name the file, but quote none of it.
    let errors: String = (0..3).map(|_| "@@@ ;\n").collect();
    write(
        work.path(),
        "evil.i",
        &format!("# 1 \"{}\"\n{errors}", secret.display()),
    );
    let done = jobs_done(&grid);
    let out = gridcc_without(
        &hidden,
        work.path(),
        &url,
        &["gcc", "-c", "evil.i", "-o", "evil.o"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        jobs_done(&grid),
        done + 1,
        "compiled on the worker: {stderr}"
    );
    assert!(
        stderr.contains("secret.txt:3:"),
        "an error per line: {stderr}"
    );
    assert!(!leaks(&out), "the worker's file leaked: {stderr}");

    // `#line` naming it, with a fix-it (malloc without its header) and
    // -fdiagnostics-generate-patch: compiled locally, where the file is
    // not there.
    write(
        work.path(),
        "patch.c",
        &format!(
            "#line 1 \"{}\"\nvoid *f(void) {{ return malloc(4); }}\n",
            secret.display()
        ),
    );
    let args = [
        "gcc",
        "-fdiagnostics-generate-patch",
        "-c",
        "patch.c",
        "-o",
        "patch.o",
    ];
    let explain = gridcc_without(
        &hidden,
        work.path(),
        &url,
        &[&["explain"][..], &args].concat(),
    );
    assert_eq!(
        String::from_utf8_lossy(&explain.stdout).trim(),
        "local: diagnostics quote source files (-fdiagnostics-generate-patch)"
    );
    let done = jobs_done(&grid);
    let out = gridcc_without(&hidden, work.path(), &url, &args);
    assert_eq!(jobs_done(&grid), done, "not sent to the worker");
    assert!(!leaks(&out), "{}", String::from_utf8_lossy(&out.stderr));

    // A client that sends it anyway is refused by the worker.
    let toolchain = toolchain();
    let status = runtime().block_on(async {
        let p = assign(&url, None, &toolchain).await;
        let text = format!(
            "# 1 \"{}\"\nvoid *f(void) {{ return malloc(4); }}\n",
            secret.display()
        );
        let job = preprocessed_job(
            p.lease,
            &toolchain,
            &["-fdiagnostics-generate-patch"],
            text.as_bytes(),
        );
        compile(&p.worker_addr, None, job).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(!status.message().contains("WORKER-SECRET"), "{status:?}");
}
