//! Target `payload`: chunked payload reassembly and decompression, in two
//! modes picked by the low bit of the first byte.
//!
//! - Stream (bit 0 clear): bytes 1..9 are the announced uncompressed size
//!   (u64 LE), byte 9 the chunk size minus one, the rest the compressed
//!   stream as a peer sent it. Announced sizes over [`LIMIT`] are refused
//!   before anything is buffered; a payload that comes out has the
//!   announced size and digest.
//! - Damage (bit 0 set): byte 1 is the chunk size minus one, byte 2 picks
//!   a damage (none, truncate, swap two chunks, flip a byte, append bytes,
//!   announce another size), bytes 3..11 its parameter (u64 LE), the rest
//!   the payload, which is compressed and chunked for real. What comes out
//!   is the payload; an undamaged stream always comes out.

use gridcc_proto::payload::{compress, decompress, digest, Assembler, PayloadError};

/// The size limit the harness enforces: small, so that a fuzzer's memory
/// limit catches any allocation the announced sizes would buy.
pub const LIMIT: u64 = 1 << 20;

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        stream(rest);
    } else {
        damage(rest);
    }
}

fn stream(data: &[u8]) {
    let (size, rest) = crate::take_u64(data);
    let Some((&chunk, compressed)) = rest.split_first() else {
        return;
    };
    let expected = digest(b"");
    match Assembler::new(size, compressed.len() as u64, expected.clone(), LIMIT) {
        Err(PayloadError::TooLarge { size: s, limit }) => {
            assert!(s > limit && (size > LIMIT || compressed.len() as u64 > LIMIT))
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(mut asm) => {
            assert!(size <= LIMIT && compressed.len() as u64 <= LIMIT);
            for c in compressed.chunks(usize::from(chunk) + 1) {
                asm.push(c).expect("chunks within the announced size");
            }
            assert!(asm.is_complete());
            if let Ok(out) = asm.finish() {
                assert_eq!(out.len() as u64, size);
                assert_eq!(digest(&out), expected);
            }
        }
    }
    if let Ok(out) = decompress(compressed, size.min(LIMIT)) {
        assert_eq!(out.len() as u64, size.min(LIMIT));
    }
}

fn damage(data: &[u8]) {
    let [chunk, how, rest @ ..] = data else {
        return;
    };
    let (param, payload) = crate::take_u64(rest);
    let compressed = compress(payload).expect("compress");
    let mut chunks: Vec<Vec<u8>> = compressed
        .chunks(usize::from(*chunk) + 1)
        .map(<[u8]>::to_vec)
        .collect();
    let mut size = payload.len() as u64;
    let mut compressed_size = compressed.len() as u64;
    let p = usize::try_from(param).unwrap_or(usize::MAX);
    let damaged = match how % 6 {
        0 => false,
        1 => {
            let mut left = p % (compressed.len() + 1);
            for c in &mut chunks {
                let keep = left.min(c.len());
                c.truncate(keep);
                left -= keep;
            }
            true
        }
        2 => {
            let (a, b) = (p % chunks.len(), (p >> 16) % chunks.len());
            chunks.swap(a, b);
            true
        }
        3 => {
            let i = p % compressed.len();
            let c = usize::from(*chunk) + 1;
            chunks[i / c][i % c] ^= ((param >> 56) as u8) | 1;
            true
        }
        4 => {
            let extra = param.to_le_bytes();
            chunks.push(extra.to_vec());
            compressed_size += extra.len() as u64;
            true
        }
        _ => {
            size = param % (LIMIT + 1);
            true
        }
    };
    let outcome = (|| {
        let mut asm = Assembler::new(size, compressed_size, digest(payload), u64::MAX)?;
        for c in &chunks {
            asm.push(c)?;
        }
        asm.finish()
    })();
    match outcome {
        Ok(out) => assert_eq!(out, payload, "a wrong payload came out"),
        Err(e) => assert!(damaged, "an undamaged stream was refused: {e}"),
    }
}
