//! A grid with a token, and one over TLS: every role is refused without the
//! token (wrapper, worker, `gridcc status`, a raw gRPC call), with it the
//! compiles go remote, and over TLS a plain client fails at once with a
//! clear line. The CA and certificate are made here, with rcgen.

use super::*;

use gridcc_proto::v1::{self, coordinator_client::CoordinatorClient, worker_client::WorkerClient};

const TOKEN: &str = "grid-test-token-0c1d";

/// A private CA and a server certificate it signed, for 127.0.0.1 and
/// localhost (an IP SAN: clients check workers by their advertised IP).
pub(super) struct TestCa {
    _dir: tempfile::TempDir,
    pub(super) ca: PathBuf,
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

impl TestCa {
    pub(super) fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "gridcc test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        let cert = params.signed_by(&key, &issuer).unwrap();

        let ca = write(dir.path(), "ca.pem", &ca_cert.pem());
        let cert = write(dir.path(), "server.pem", &cert.pem());
        let key = write(dir.path(), "server-key.pem", &key.serialize_pem());
        TestCa {
            _dir: dir,
            ca,
            cert,
            key,
        }
    }
}

/// `gridcc gcc -c x.c -o x.o` in `dir` against `url`, with exactly `env`
/// as the grid settings (none inherited).
fn compile_one(dir: &Path, url: &str, env: &[(String, String)]) -> Output {
    if !dir.join("x.c").exists() {
        write(dir, "x.c", "int x(void) { return 42; }\n");
    }
    let _ = std::fs::remove_file(dir.join("x.o"));
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir).args(["gcc", "-c", "x.c", "-o", "x.o"]);
    gridcc_env(&mut cmd, url, &dir.join("cache"));
    cmd.env_remove("GRIDCC_TOKEN")
        .env_remove("GRIDCC_TOKEN_FILE")
        .env_remove("GRIDCC_TLS_CA")
        .envs(env.iter().cloned());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "the compile succeeds either way: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(dir.join("x.o"))
        .unwrap()
        .starts_with(b"\x7fELF"));
    out
}

/// `gridcc status` against `url` with exactly `env`: exit code, stderr.
fn status_with(url: &str, env: &[(String, String)]) -> (Option<i32>, String) {
    let out = Command::new(gridcc())
        .args(["status", "--coordinator", url])
        .env_remove("GRIDCC_TOKEN")
        .env_remove("GRIDCC_TOKEN_FILE")
        .env_remove("GRIDCC_TLS_CA")
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn token_env(token: &str) -> Vec<(String, String)> {
    vec![("GRIDCC_TOKEN".to_owned(), token.to_owned())]
}

/// Starts a worker for `grid` with only `env` and `extra`, and waits for it
/// to exit; returns its exit code and log.
pub(super) fn worker_exit(
    grid: &Grid,
    extra: &[&str],
    env: &[(&str, &str)],
    name: &str,
) -> (i32, String) {
    let log = grid.dir.path().join(format!("{name}.log"));
    let url = grid.url();
    let mut args = vec![
        "--coordinator",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--slots",
        "1",
    ];
    args.extend_from_slice(extra);
    let mut worker = Proc::start_env(&sibling_bin("gridcc-worker"), &args, env, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            let text = std::fs::read_to_string(&log).unwrap();
            return (status.code().unwrap_or(-1), text);
        }
        assert!(
            Instant::now() < deadline,
            "a refused worker exits; log: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A plain tonic client with no metadata at all.
fn raw_calls_without_a_token(
    coordinator_url: &str,
    worker_url: &str,
) -> (tonic::Code, tonic::Code) {
    runtime().block_on(async {
        let mut coordinator = CoordinatorClient::connect(coordinator_url.to_owned())
            .await
            .unwrap();
        let status = coordinator.status(v1::StatusRequest {}).await.unwrap_err();
        let mut worker = WorkerClient::connect(worker_url.to_owned()).await.unwrap();
        let compile = worker
            .compile(tokio_stream::iter(Vec::<v1::CompileRequest>::new()))
            .await
            .unwrap_err();
        (status.code(), compile.code())
    })
}

#[test]
fn auth_without_the_token_every_role_is_refused_and_builds_still_finish() {
    let mut grid = Grid::start_secured(
        1,
        2,
        &[],
        Security {
            token: Some(TOKEN.to_owned()),
            tls: None,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let url = grid.url();

    // The wrapper: local compile, one warning line naming the reason.
    for (env, reason) in [
        (vec![], "missing token"),
        (token_env("not-the-token"), "wrong token"),
    ] {
        let out = compile_one(dir.path(), &url, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one warning line: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "gridcc: coordinator {url} refused the token: {reason}"
            )) && stderr.trim_end().ends_with("compiling locally"),
            "{stderr}"
        );
    }
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(0));

    // gridcc status: exit 1, one line.
    let (code, stderr) = status_with(&url, &token_env("not-the-token"));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "gridcc status: coordinator {url} refused the token: wrong token"
        )),
        "{stderr}"
    );

    // A worker without the token, or with another one, is refused and
    // exits non-zero instead of retrying forever.
    let (code, log) = worker_exit(&grid, &[], &[], "no-token-worker");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("refused the token: missing token"), "{log}");
    let wrong = write(dir.path(), "wrong-token", "not-the-token\n");
    let (code, log) = worker_exit(
        &grid,
        &["--token-file", wrong.to_str().unwrap()],
        &[],
        "wrong-token-worker",
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("refused the token: wrong token"), "{log}");
    assert_eq!(grid.status()["workers"].as_array().unwrap().len(), 1);

    // Raw gRPC calls with no metadata, on the coordinator and on a worker.
    let worker_url = format!("http://{}", grid.workers[0].addr);
    let (status_code, compile_code) = raw_calls_without_a_token(&url, &worker_url);
    assert_eq!(status_code, tonic::Code::Unauthenticated);
    assert_eq!(compile_code, tonic::Code::Unauthenticated);

    let coordinator_log = std::fs::read_to_string(grid.dir.path().join("coordinator.log")).unwrap();
    for line in [
        "to /gridcc.v1.Coordinator/Assign: missing token",
        "to /gridcc.v1.Coordinator/Assign: wrong token",
        "to /gridcc.v1.Coordinator/WorkerSession: missing token",
        "to /gridcc.v1.Coordinator/WorkerSession: wrong token",
        "to /gridcc.v1.Coordinator/Status: missing token",
    ] {
        assert!(
            coordinator_log.contains("refused unauthenticated call from 127.0.0.1:")
                && coordinator_log.contains(line),
            "coordinator log names {line:?}: {coordinator_log}"
        );
    }
    let worker_log = std::fs::read_to_string(grid.dir.path().join("worker0.log")).unwrap();
    assert!(
        worker_log.contains("to /gridcc.v1.Worker/Compile: missing token"),
        "{worker_log}"
    );

    // With the token (here from a file, trimmed, winning over a wrong
    // GRIDCC_TOKEN), a worker joins and compiles go remote, silently.
    let right = write(dir.path(), "token", &format!("  {TOKEN}\n"));
    grid.add_worker_with(
        1,
        &["--token-file", right.to_str().unwrap()],
        &[("GRIDCC_TOKEN", "not-the-token")],
    );
    grid.wait_for_workers(2);
    let out = compile_one(dir.path(), &url, &token_env(TOKEN));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = vec![("GRIDCC_TOKEN_FILE".to_owned(), right.display().to_string())];
    let out = compile_one(dir.path(), &url, &token_file);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(2));

    // A token that cannot be used at all is named, and the build goes on.
    let out = compile_one(dir.path(), &url, &token_env(" "));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GRIDCC_TOKEN is set but empty") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn auth_tls_grid_compiles_remotely_and_refuses_plain_clients_clearly() {
    let grid = Grid::start_secured(
        2,
        2,
        &[],
        Security {
            token: Some(TOKEN.to_owned()),
            tls: Some(TestCa::new()),
        },
    );
    let url = grid.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // A real build over TLS: every object remote, identical to local.
    let project = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    let local = local_build(project.path(), cache.path());
    let mut make = Command::new("make");
    make.current_dir(project.path())
        .arg("-j4")
        .arg(format!("CC={} gcc", gridcc().display()));
    gridcc_env(&mut make, &url, cache.path());
    let out = make.envs(grid.security.env()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("gridcc:"),
        "no gridcc warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_products(&local, &build_products(project.path()));
    let status = grid.status();
    assert_eq!(status["jobs_remote"].as_u64(), Some(13), "{status}");
    assert!(
        Grid::jobs_done(&status).iter().all(|&n| n > 0),
        "both TLS workers used: {status}"
    );

    // Plain TCP on the TLS port: a one-line error that says so, quickly.
    let plain = format!("http://{}", grid.coordinator.addr);
    let started = Instant::now();
    let (code, stderr) = status_with(&plain, &token_env(TOKEN));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("coordinator unreachable") && stderr.contains("TLS"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    // The wrapper on a plain URL still builds (locally).
    let dir = tempfile::tempdir().unwrap();
    compile_one(dir.path(), &plain, &token_env(TOKEN));
    // A raw plain gRPC client on a TLS worker's port fails, not hangs.
    let worker = format!("http://{}", grid.workers[0].addr);
    let failed = runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut client = WorkerClient::connect(worker).await?;
            client
                .compile(tokio_stream::iter(Vec::<v1::CompileRequest>::new()))
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })
        .await
    });
    assert!(
        matches!(failed, Ok(Err(_))),
        "a plain call to a TLS worker fails at once: {failed:?}"
    );

    // TLS with a CA that did not sign the server's certificate.
    let other = TestCa::new();
    let mut env = token_env(TOKEN);
    env.push(("GRIDCC_TLS_CA".to_owned(), other.ca.display().to_string()));
    let (code, stderr) = status_with(&url, &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    // https without any CA is a settings error, not a handshake.
    let (code, stderr) = status_with(&url, &token_env(TOKEN));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no CA"), "{stderr}");

    // The token is still required over TLS.
    let (code, stderr) = status_with(
        &url,
        &[(
            "GRIDCC_TLS_CA".to_owned(),
            grid.security.tls.as_ref().unwrap().ca.display().to_string(),
        )],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the token: missing token"),
        "{stderr}"
    );
    assert_eq!(grid.status()["jobs_remote"].as_u64(), Some(13));
}

#[test]
fn auth_a_worker_whose_tls_does_not_match_the_coordinator_url_does_not_start() {
    let grid = Grid::start_secured(
        0,
        1,
        &[],
        Security {
            token: None,
            tls: Some(TestCa::new()),
        },
    );
    let ca = grid.security.tls.as_ref().unwrap();
    // An https coordinator, but the worker would serve plain TCP.
    let (code, log) = worker_exit(
        &grid,
        &["--tls-ca", ca.ca.to_str().unwrap()],
        &[],
        "plain-worker",
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("give it --tls-cert and --tls-key"), "{log}");
}
