//! Leases (issue 25): each is good for one job, and only the client it was
//! given to can release it. Raw gRPC calls, as a misbehaving client makes.

use gridcc_proto::payload;
use gridcc_proto::v1::{
    self, compile_request, compile_response, coordinator_client::CoordinatorClient,
    worker_client::WorkerClient,
};

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A small preprocessed job for `lease`, header and chunks.
fn job(lease: &v1::Lease, toolchain: &str) -> Vec<v1::CompileRequest> {
    let text = b"int answer(void) { return 42; }\n";
    let compressed = payload::compress(text).unwrap();
    let header = v1::CompileHeader {
        lease: Some(lease.clone()),
        toolchain: toolchain.to_owned(),
        args: vec!["-O2".into()],
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

#[test]
fn a_lease_is_good_for_one_job_and_only_its_holder_releases_it() {
    // Long enough that the lease not brought to its worker stays put.
    let grid = Grid::start_with(1, 2, &["--start-timeout-ms", "60000"]);
    let cache = tempfile::tempdir().unwrap();
    let toolchain = gridcc_toolchain::IdentityCache::new(cache.path().to_owned())
        .identify(&which("gcc"))
        .unwrap()
        .digest;
    let url = grid.url();
    runtime().block_on(async {
        let mut coordinator = CoordinatorClient::connect(url.clone()).await.unwrap();
        let assign = || {
            let request = v1::AssignRequest {
                toolchain: toolchain.clone(),
                source_bytes: 100,
                ..Default::default()
            };
            let mut coordinator = coordinator.clone();
            async move {
                match coordinator
                    .assign(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .outcome
                {
                    Some(v1::assign_reply::Outcome::Placement(p)) => p,
                    other => panic!("not placed: {other:?}"),
                }
            }
        };

        // One job per lease: the second Compile with it is refused.
        let placement = assign().await;
        let lease = placement.lease.clone().unwrap();
        let mut worker = WorkerClient::connect(format!("http://{}", placement.worker_addr))
            .await
            .unwrap();
        let mut replies = worker
            .compile(tokio_stream::iter(job(&lease, &toolchain)))
            .await
            .unwrap()
            .into_inner();
        match replies.message().await.unwrap() {
            Some(v1::CompileResponse {
                msg: Some(compile_response::Msg::Result(r)),
            }) => assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr)),
            other => panic!("expected a result, got {other:?}"),
        }
        while replies.message().await.unwrap().is_some() {}
        let again = match worker
            .compile(tokio_stream::iter(job(&lease, &toolchain)))
            .await
        {
            Err(status) => status,
            Ok(replies) => replies.into_inner().message().await.unwrap_err(),
        };
        assert_eq!(again.code(), tonic::Code::PermissionDenied, "{again:?}");
        assert!(again.message().contains("used already"), "{again:?}");

        // Someone else's lease: a Release without its MAC is refused, and
        // the slot stays taken; its holder's Release frees it.
        let held = assign().await.lease.unwrap();
        for mac in [Vec::new(), vec![0; 32], lease.mac.clone()] {
            let refused = coordinator
                .release(v1::ReleaseRequest {
                    lease_id: held.id,
                    mac,
                })
                .await
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
            assert!(refused.message().contains("not yours"), "{refused:?}");
        }
        assert_eq!(grid.status()["running"], 1);
        let released = coordinator
            .release(v1::ReleaseRequest {
                lease_id: held.id,
                mac: held.mac.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(released.released);
        assert_eq!(grid.status()["running"], 0);
    });
}
