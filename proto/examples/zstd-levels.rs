//! How large and how costly the wire payloads are at each zstd level and
//! chunk size, on real preprocessed C (`scripts/zstd-bench.sh` makes the
//! files and runs this):
//!
//! `cargo run --release -p gridcc-proto --example zstd-levels -- FILE…`
//!
//! For each level: raw and compressed bytes, compress and decompress CPU
//! time (this thread's, the best of `REPEATS` passes, so other load on the
//! machine inflates it less than wall time would), and the time one job's
//! input costs end to end at 1 Gbit/s and 100 Mbit/s (compress, transfer,
//! decompress). For each chunk size: messages per payload and the gRPC and
//! protobuf framing bytes they add, measured with prost's encoder.

use std::time::Duration;

use gridcc_proto::v1::{compile_request, CompileRequest};
use prost::Message;

const LEVELS: [i32; 5] = [1, 3, 6, 9, 19];
const CHUNKS: [usize; 5] = [16 << 10, 64 << 10, 256 << 10, 1 << 20, 3 << 20];
const REPEATS: usize = 3;
/// gRPC's length prefix on every message.
const GRPC_PREFIX: usize = 5;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which we own.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() -> std::process::ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: zstd-levels FILE… (preprocessed C, e.g. from scripts/zstd-bench.sh)");
        return std::process::ExitCode::from(2);
    }
    let mut files = Vec::new();
    for p in &paths {
        match std::fs::read(p) {
            Ok(b) => files.push(b),
            Err(e) => {
                eprintln!("zstd-levels: cannot read {p}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let raw: usize = files.iter().map(Vec::len).sum();
    let n = files.len() as f64;
    println!(
        "{} files, {:.1} MiB ({:.0} KiB per file on average)\n",
        files.len(),
        raw as f64 / (1 << 20) as f64,
        raw as f64 / n / 1024.0
    );
    println!("| zstd level | compressed | ratio | compress CPU ms/file | decompress CPU ms/file | compress MB/s | per job at 1 Gbit/s | per job at 100 Mbit/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut at_default = Vec::new();
    for level in LEVELS {
        let mut best_c = Duration::MAX;
        let mut best_d = Duration::MAX;
        let mut packed = Vec::new();
        for _ in 0..REPEATS {
            let start = thread_cpu();
            packed = files
                .iter()
                .map(|f| zstd::bulk::compress(f, level).expect("zstd compress"))
                .collect::<Vec<_>>();
            best_c = best_c.min(thread_cpu() - start);
            let start = thread_cpu();
            for (p, f) in packed.iter().zip(&files) {
                let back = zstd::bulk::decompress(p, f.len()).expect("zstd decompress");
                assert_eq!(back.len(), f.len());
            }
            best_d = best_d.min(thread_cpu() - start);
        }
        let compressed: usize = packed.iter().map(Vec::len).sum();
        let c_ms = best_c.as_secs_f64() * 1000.0 / n;
        let d_ms = best_d.as_secs_f64() * 1000.0 / n;
        let per_job =
            |bits_per_s: f64| c_ms + d_ms + compressed as f64 / n * 8.0 / bits_per_s * 1000.0;
        println!(
            "| {level} | {:.2} MiB | {:.2} | {c_ms:.2} | {d_ms:.2} | {:.0} | {:.2} ms | {:.2} ms |",
            compressed as f64 / (1 << 20) as f64,
            raw as f64 / compressed as f64,
            raw as f64 / best_c.as_secs_f64() / 1e6,
            per_job(1e9),
            per_job(1e8),
        );
        if level == gridcc_proto::payload::ZSTD_LEVEL {
            at_default = packed;
        }
    }
    if at_default.is_empty() {
        at_default = files
            .iter()
            .map(|f| zstd::bulk::compress(f, gridcc_proto::payload::ZSTD_LEVEL).expect("zstd"))
            .collect();
    }
    let compressed: usize = at_default.iter().map(Vec::len).sum();
    let largest = at_default.iter().map(Vec::len).max().unwrap_or(0);
    println!(
        "\nChunk sizes, payloads compressed at level {} (largest {:.0} KiB):\n",
        gridcc_proto::payload::ZSTD_LEVEL,
        largest as f64 / 1024.0
    );
    println!("| chunk | messages per payload (mean) | framing bytes | framing / payload |");
    println!("|---:|---:|---:|---:|");
    for chunk in CHUNKS {
        let mut messages = 0usize;
        let mut framing = 0usize;
        for p in &at_default {
            for c in p.chunks(chunk) {
                let msg = CompileRequest {
                    msg: Some(compile_request::Msg::Chunk(c.to_vec())),
                };
                messages += 1;
                framing += GRPC_PREFIX + msg.encoded_len() - c.len();
            }
        }
        println!(
            "| {} KiB | {:.2} | {framing} | {:.4} % |",
            chunk >> 10,
            messages as f64 / n,
            framing as f64 / compressed as f64 * 100.0
        );
    }
    std::process::ExitCode::SUCCESS
}
