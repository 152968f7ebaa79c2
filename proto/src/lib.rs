//! gridcc's wire protocol.
//!
//! - [`v1`]: the generated `gridcc.v1` messages and tonic clients/servers
//!   (from `proto/gridcc/v1/gridcc.proto`).
//! - [`payload`]: how large blobs travel: zstd, fixed-size chunks, size and
//!   digest checks on arrival, a hard size limit.
//! - [`lease`]: signing and checking the leases the coordinator hands out, so a
//!   worker can trust a lease without asking the coordinator.
//! - [`auth`]: the grid's token: loading it, sending it with every call,
//!   refusing calls without it (constant-time check).
//! - [`tls`]: server certificates, the CA clients check servers with, the
//!   endpoint a client builds from an `http://` or `https://` URL.
//! - [`serve`]: the server builder (TLS, token check), accept stream and
//!   signal handling both servers share.
//! - [`metrics`]: Prometheus text exposition, histograms and the plain-HTTP
//!   `/metrics` responder both servers share.

pub mod auth;
pub mod lease;
pub mod metrics;
pub mod payload;
pub mod serve;
pub mod tls;

#[allow(unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("gridcc.v1");
}

/// Version string shared by all binaries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An error and its causes on one line, `outer: cause: cause`, for the
/// binaries' last words. A cause whose text the message already shows (an
/// error type that prints its `source` and also reports it as the source)
/// is not repeated.
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod error_line_tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {path}: {source}")]
    struct Open {
        path: String,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("starting the server")]
    struct Start(#[source] Open);

    #[test]
    fn causes_are_joined_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Start(Open {
            path: "/x".into(),
            source: io,
        });
        assert_eq!(
            super::error_line(&e),
            "starting the server: cannot open /x: no such file"
        );
    }
}

/// Every message a peer decodes from the wire, fed arbitrary bytes and
/// damaged encodings of real messages: decoding gives a message or an
/// error, never a panic, and whatever decodes encodes back to a stable
/// form.
#[cfg(test)]
mod wire_properties {
    use super::v1;
    use proptest::prelude::*;
    use prost::Message;

    /// Decodes `bytes` as `M`; a message that decodes re-encodes to bytes
    /// that decode to the same encoding again. (prost drops unknown fields
    /// and keeps the last of repeated scalars, so the first bytes need not
    /// come back; floats may be NaN, so encodings are compared, not values.)
    fn decodes_stably<M: Message + Default>(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(m) = M::decode(bytes) {
            let once = m.encode_to_vec();
            let again = M::decode(once.as_slice())
                .map_err(|e| TestCaseError::fail(format!("re-decode failed: {e}")))?;
            prop_assert_eq!(again.encode_to_vec(), once);
        }
        Ok(())
    }

    /// Every message type that crosses the wire, in both directions.
    fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
        decodes_stably::<v1::WorkerMessage>(bytes)?;
        decodes_stably::<v1::CoordinatorMessage>(bytes)?;
        decodes_stably::<v1::AssignRequest>(bytes)?;
        decodes_stably::<v1::AssignReply>(bytes)?;
        decodes_stably::<v1::ReleaseRequest>(bytes)?;
        decodes_stably::<v1::ReleaseReply>(bytes)?;
        decodes_stably::<v1::StatusRequest>(bytes)?;
        decodes_stably::<v1::StatusReply>(bytes)?;
        decodes_stably::<v1::CompileRequest>(bytes)?;
        decodes_stably::<v1::CompileResponse>(bytes)?;
        Ok(())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9./-]{0,12}", ".{0,8}"]
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    fn lease() -> impl Strategy<Value = v1::Lease> {
        (any::<u64>(), any::<u64>(), any::<u64>(), bytes()).prop_map(|(id, w, e, mac)| v1::Lease {
            id,
            worker_id: w,
            expires_unix_ms: e,
            mac,
        })
    }

    fn worker_message() -> impl Strategy<Value = v1::WorkerMessage> {
        use v1::worker_message::Msg;
        let toolchain = (text(), proptest::collection::vec(text(), 0..3), text()).prop_map(
            |(identity, names, version)| v1::Toolchain {
                identity,
                names,
                version,
            },
        );
        let hello = (
            text(),
            any::<u32>(),
            any::<f64>(),
            proptest::collection::vec(toolchain, 0..3),
            text(),
            (
                proptest::collection::vec(text(), 0..3),
                any::<bool>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    advertise_addr,
                    slots,
                    capacity,
                    toolchains,
                    hostname,
                    (keys, offers, reports),
                )| {
                    Msg::Hello(v1::WorkerHello {
                        advertise_addr,
                        slots,
                        capacity,
                        toolchains,
                        hostname,
                        version: String::new(),
                        cached_keys: keys,
                        takes_input_offers: offers,
                        reports_leases: reports,
                        hermetic: offers && reports,
                        hermetic_refusal: if offers {
                            String::new()
                        } else {
                            "no bwrap".into()
                        },
                        unsandboxed: !reports,
                    })
                },
            );
        let msg = prop_oneof![
            hello,
            (
                any::<u32>(),
                any::<u32>(),
                proptest::collection::vec(any::<u64>(), 0..4)
            )
                .prop_map(|(running, queued, leases)| Msg::Load(v1::LoadUpdate {
                    running,
                    queued,
                    leases
                })),
            any::<u64>().prop_map(|lease_id| Msg::Started(v1::JobStarted { lease_id })),
            (
                any::<u64>(),
                any::<bool>(),
                any::<i32>(),
                any::<u64>(),
                (any::<bool>(), text(), any::<bool>())
            )
                .prop_map(
                    |(lease_id, ran, exit_code, compile_ms, (cache_hit, cache_key, cancelled))| {
                        Msg::Finished(v1::JobFinished {
                            lease_id,
                            ran,
                            exit_code,
                            compile_ms,
                            queue_ms: compile_ms / 3,
                            input_bytes: compile_ms / 7,
                            cache_hit,
                            cache_key,
                            cancelled,
                        })
                    }
                ),
            Just(Msg::KeepAlive(v1::KeepAlive {})),
            Just(Msg::GoingAway(v1::GoingAway {})),
        ];
        proptest::option::of(msg).prop_map(|msg| v1::WorkerMessage { msg })
    }

    fn assign_request() -> impl Strategy<Value = v1::AssignRequest> {
        (
            text(),
            any::<u64>(),
            any::<f64>(),
            proptest::collection::vec(any::<u64>(), 0..4),
            any::<u64>(),
            text(),
            any::<f64>(),
            text(),
            proptest::collection::vec(any::<u8>(), 0..33),
        )
            .prop_map(
                |(
                    toolchain,
                    source_bytes,
                    cost_hint,
                    exclude_workers,
                    failed_lease,
                    client,
                    idle,
                    cache_key,
                    failed_lease_mac,
                )| {
                    v1::AssignRequest {
                        toolchain,
                        source_bytes,
                        cost_hint,
                        exclude_workers,
                        failed_lease,
                        failed_lease_mac,
                        client: client.clone(),
                        source_key: client,
                        client_idle_cpus: idle,
                        hermetic_cache_key: cache_key.chars().rev().collect(),
                        cache_key,
                        source_name: String::new(),
                    }
                },
            )
    }

    fn compile_request() -> impl Strategy<Value = v1::CompileRequest> {
        use v1::compile_request::Msg;
        let header = (
            proptest::option::of(lease()),
            text(),
            proptest::collection::vec(text(), 0..6),
            text(),
            text(),
            (any::<u64>(), any::<u64>(), bytes()),
            proptest::collection::vec((text(), text()), 0..3),
            (text(), text(), any::<bool>()),
        )
            .prop_map(
                |(
                    lease,
                    toolchain,
                    args,
                    language,
                    input_name,
                    sizes,
                    env,
                    (source_path, cwd, offer_input),
                )| {
                    let hermetic = offer_input.then(|| v1::HermeticJob {
                        files: vec![v1::InputFile {
                            path: cwd.clone(),
                            digest: sizes.2.clone(),
                            size: sizes.0,
                            executable: sizes.1 % 2 == 0,
                        }],
                        dirs: vec![source_path.clone()],
                        argv: args.clone(),
                        object: input_name.clone(),
                    });
                    Msg::Header(v1::CompileHeader {
                        lease,
                        toolchain,
                        args,
                        language,
                        input_name,
                        input_size: sizes.0,
                        compressed_size: sizes.1,
                        input_digest: sizes.2,
                        env: env
                            .into_iter()
                            .map(|(name, value)| v1::EnvVar { name, value })
                            .collect(),
                        source_path,
                        cwd,
                        offer_input,
                        hermetic,
                    })
                },
            );
        let msg = prop_oneof![header, bytes().prop_map(Msg::Chunk)];
        proptest::option::of(msg).prop_map(|msg| v1::CompileRequest { msg })
    }

    fn compile_response() -> impl Strategy<Value = v1::CompileResponse> {
        use v1::compile_response::Msg;
        let result = (
            any::<i32>(),
            bytes(),
            bytes(),
            any::<u64>(),
            any::<u64>(),
            bytes(),
            any::<bool>(),
        )
            .prop_map(
                |(exit_code, stdout, stderr, object_size, compressed_size, digest, cache_hit)| {
                    Msg::Result(v1::CompileResult {
                        exit_code,
                        stdout,
                        stderr,
                        object_size,
                        compressed_size,
                        object_digest: digest,
                        compile_ms: object_size / 3,
                        queue_ms: compressed_size / 5,
                        cache_hit,
                    })
                },
            );
        let msg = prop_oneof![
            result,
            bytes().prop_map(Msg::Chunk),
            Just(Msg::SendInput(v1::SendInput {
                missing: vec![vec![7; 32], vec![9; 32]],
            })),
        ];
        proptest::option::of(msg).prop_map(|msg| v1::CompileResponse { msg })
    }

    /// Damage to an encoding: cut it, flip a byte, or splice in bytes.
    fn damaged(encoding: Vec<u8>, at: usize, mask: u8, insert: &[u8]) -> [Vec<u8>; 3] {
        let at = at % (encoding.len() + 1);
        let cut = encoding[..at].to_vec();
        let mut flipped = encoding.clone();
        if let Some(b) = flipped.get_mut(at) {
            *b ^= mask;
        }
        let mut spliced = encoding[..at].to_vec();
        spliced.extend_from_slice(insert);
        spliced.extend_from_slice(&encoding[at..]);
        [cut, flipped, spliced]
    }

    /// Round trip of a generated message, then its damaged encodings.
    fn round_trip_and_damage<M: Message + Default + PartialEq + std::fmt::Debug>(
        m: &M,
        at: usize,
        mask: u8,
        insert: &[u8],
    ) -> Result<(), TestCaseError> {
        let encoding = m.encode_to_vec();
        let back = M::decode(encoding.as_slice())
            .map_err(|e| TestCaseError::fail(format!("decode of an encoding failed: {e}")))?;
        prop_assert_eq!(back.encode_to_vec(), encoding.clone());
        for bad in damaged(encoding, at, mask, insert) {
            decode_all(&bad)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(
            bytes in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            decode_all(&bytes)?;
        }

        #[test]
        fn worker_messages_round_trip_and_survive_damage(
            m in worker_message(), at in any::<usize>(), mask in 1..=255u8, insert in bytes()
        ) {
            round_trip_and_damage(&m, at, mask, &insert)?;
        }

        #[test]
        fn assign_requests_round_trip_and_survive_damage(
            m in assign_request(), at in any::<usize>(), mask in 1..=255u8, insert in bytes()
        ) {
            round_trip_and_damage(&m, at, mask, &insert)?;
        }

        #[test]
        fn compile_requests_round_trip_and_survive_damage(
            m in compile_request(), at in any::<usize>(), mask in 1..=255u8, insert in bytes()
        ) {
            // Equal values, not only equal encodings: no float in here.
            let back = v1::CompileRequest::decode(m.encode_to_vec().as_slice()).unwrap();
            prop_assert_eq!(&back, &m);
            round_trip_and_damage(&m, at, mask, &insert)?;
        }

        #[test]
        fn compile_responses_round_trip_and_survive_damage(
            m in compile_response(), at in any::<usize>(), mask in 1..=255u8, insert in bytes()
        ) {
            let back = v1::CompileResponse::decode(m.encode_to_vec().as_slice()).unwrap();
            prop_assert_eq!(&back, &m);
            round_trip_and_damage(&m, at, mask, &insert)?;
        }
    }

    /// A field wrapping itself ten thousand times is refused without deep
    /// recursion or a large allocation.
    #[test]
    fn deeply_nested_garbage_is_refused() {
        // Field 1 (length-delimited) wrapping itself 10 000 times.
        let mut bytes = Vec::new();
        for _ in 0..10_000 {
            let mut outer = vec![0x0a];
            let mut len = bytes.len();
            while len >= 0x80 {
                outer.push((len as u8) | 0x80);
                len >>= 7;
            }
            outer.push(len as u8);
            outer.extend_from_slice(&bytes);
            bytes = outer;
        }
        assert!(v1::AssignReply::decode(bytes.as_slice()).is_err());
        assert!(v1::WorkerMessage::decode(bytes.as_slice()).is_err());
    }
}
