//! The harnesses of gridcc's fuzz targets, one module per decoder family.
//! Each `run` takes the fuzzer's bytes, feeds them to the real code the way
//! a peer or a user could, and panics when a property breaks (a panic in
//! the code under test is a finding too).
//!
//! - [`args`]: the wrapper's command-line classifier, with response files.
//! - [`wire`]: every prost message a peer decodes.
//! - [`payload`]: chunked payload reassembly and zstd decompression.
//! - [`cache`]: the object cache's entry decoder.
//! - [`worker_input`]: what a worker does with a compile header and the
//!   text a client sends (allowlist, job layout, header split, dependency
//!   check).
//! - [`terminal`]: a worker's output made safe for the user's terminal.
//!
//! `fuzz_targets/*.rs` are one line each; `tests/corpus.rs` replays
//! `corpus/<target>/` through the same functions on stable Rust, and
//! `examples/make_corpus.rs` writes the seed inputs.

pub mod args;
pub mod cache;
pub mod payload;
pub mod terminal;
pub mod wire;
pub mod worker_input;

/// The names of the targets, as in `corpus/<name>/` and `fuzz_targets/`.
pub const TARGETS: &[&str] = &[
    "args",
    "wire",
    "payload",
    "cache",
    "worker_input",
    "terminal",
];

/// Runs the harness of target `name`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "args" => args::run(data),
        "wire" => wire::run(data),
        "payload" => payload::run(data),
        "cache" => cache::run(data),
        "worker_input" => worker_input::run(data),
        "terminal" => terminal::run(data),
        _ => panic!("no fuzz target {name}"),
    }
}

/// A little-endian u64 from up to 8 bytes at the front of `data`, and the
/// rest.
fn take_u64(data: &[u8]) -> (u64, &[u8]) {
    let n = data.len().min(8);
    let mut b = [0u8; 8];
    b[..n].copy_from_slice(&data[..n]);
    (u64::from_le_bytes(b), &data[n..])
}
