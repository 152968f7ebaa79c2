//! Framing of large payloads: zstd-compressed, sent as chunks of
//! [`CHUNK_SIZE`], reassembled with every size checked against the header and
//! against a hard limit, then verified by blake3 digest.

use thiserror::Error;

/// Size of one streamed chunk. Far below gRPC's 4 MiB message limit, large
/// enough that per-message overhead is negligible: measured on CPython's
/// preprocessed sources (`scripts/zstd-bench.sh`, docs/design.md, "Wire payloads"),
/// framing is 0.006 % of the bytes at 256 KiB and 0.003 % at 1 MiB, while
/// smaller messages keep what one stream buffers small.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// zstd level for sources and objects, chosen by measurement
/// (`scripts/zstd-bench.sh`, docs/design.md, "Wire payloads"): on CPython's
/// directives-only sources level 1 compresses 4.5x at ~300 MB/s; level 3
/// saves 10 % more bytes for 1.6x the CPU, which pays only below about
/// 75 Mbit/s; levels 6-19 cost 4-130x the CPU for 18-27 % fewer bytes.
/// Objects show the same order.
pub const ZSTD_LEVEL: i32 = 1;

/// Largest uncompressed payload accepted (preprocessed source or object).
pub const MAX_PAYLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// Most memory reserved up front for a payload on the strength of a size
/// its sender announced; past this, buffers grow with the bytes that
/// actually arrive. A header costs its sender a few bytes, so it must not
/// buy a limit-sized allocation on the receiver.
const MAX_RESERVE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum PayloadError {
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("payload truncated: got {got} of {expected} compressed bytes")]
    Truncated { got: u64, expected: u64 },
    #[error("payload decompresses to {got} bytes, header said {expected}")]
    SizeMismatch { got: u64, expected: u64 },
    #[error("payload decompresses to more than the {expected} bytes its header said")]
    Overlong { expected: u64 },
    #[error("payload digest does not match its header")]
    DigestMismatch,
    #[error("payload is not valid zstd: {0}")]
    Corrupt(#[source] std::io::Error),
    #[error("payload compression failed: {0}")]
    Compress(#[source] std::io::Error),
}

/// Compresses a payload for the wire.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, PayloadError> {
    thread_local! {
        // A context per thread, made once: a new one is a few hundred KB
        // that must be allocated and zeroed, as much work as compressing
        // a small object.
        static BULK: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok());
    }
    let reused = BULK.with(|bulk| bulk.borrow_mut().as_mut().map(|c| c.compress(data)));
    match reused {
        Some(done) => done,
        None => zstd::bulk::compress(data, ZSTD_LEVEL),
    }
    .map_err(PayloadError::Compress)
}

/// Decompresses `compressed`, which must hold exactly `expected` bytes; a
/// stream that would grow past `expected` stops there (no zstd bomb), and
/// memory grows with the output, not with the declared size.
pub fn decompress(compressed: &[u8], expected: u64) -> Result<Vec<u8>, PayloadError> {
    // Small enough to reserve whole: one pass into the buffer, which zstd
    // writes without it being zeroed first (the streaming read below
    // zeroes every byte it reads into, the largest cost of a big input).
    // A frame that does not fit is told apart by the streaming path.
    if expected < MAX_RESERVE_BYTES {
        thread_local! {
            // A context per thread, made once: making one costs as much as
            // decompressing a small input.
            static BULK: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
        }
        let mut data = Vec::with_capacity(expected as usize + 1);
        let done = BULK.with(|bulk| {
            bulk.borrow_mut()
                .as_mut()
                .is_some_and(|b| b.decompress_to_buffer(compressed, &mut data).is_ok())
        });
        if done {
            return match data.len() as u64 {
                n if n == expected => Ok(data),
                n if n > expected => Err(PayloadError::Overlong { expected }),
                got => Err(PayloadError::SizeMismatch { got, expected }),
            };
        }
    }
    decompress_streaming(compressed, expected)
}

/// [`decompress`] a frame at a time: memory follows the bytes that really
/// decompress, never the size the sender claims.
fn decompress_streaming(compressed: &[u8], expected: u64) -> Result<Vec<u8>, PayloadError> {
    use std::io::Read;
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(compressed).map_err(PayloadError::Corrupt)?;
    let reserve = usize::try_from(expected.min(MAX_RESERVE_BYTES)).unwrap_or(0);
    let mut data = Vec::with_capacity(reserve);
    // One byte more than expected tells "too long" from "exactly right".
    (&mut decoder)
        .take(expected.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(PayloadError::Corrupt)?;
    if data.len() as u64 > expected {
        return Err(PayloadError::Overlong { expected });
    }
    if data.len() as u64 != expected {
        return Err(PayloadError::SizeMismatch {
            got: data.len() as u64,
            expected,
        });
    }
    Ok(data)
}

/// blake3 digest of a payload, as carried in headers.
pub fn digest(data: &[u8]) -> Vec<u8> {
    blake3::hash(data).as_bytes().to_vec()
}

/// The chunks a compressed payload is sent as.
pub fn chunks(compressed: &[u8]) -> impl Iterator<Item = &[u8]> {
    compressed.chunks(CHUNK_SIZE)
}

/// Collects chunks of a payload whose sizes were announced in a header.
#[derive(Debug)]
pub struct Assembler {
    expected_compressed: u64,
    expected_size: u64,
    digest: Vec<u8>,
    buf: Vec<u8>,
}

impl Assembler {
    /// Starts a payload; refuses announced sizes over `limit` before any
    /// byte is buffered.
    pub fn new(
        expected_size: u64,
        expected_compressed: u64,
        digest: Vec<u8>,
        limit: u64,
    ) -> Result<Self, PayloadError> {
        for size in [expected_size, expected_compressed] {
            if size > limit {
                return Err(PayloadError::TooLarge { size, limit });
            }
        }
        let capacity = usize::try_from(expected_compressed.min(MAX_RESERVE_BYTES)).unwrap_or(0);
        Ok(Self {
            expected_compressed,
            expected_size,
            digest,
            buf: Vec::with_capacity(capacity),
        })
    }

    /// Adds one chunk; a chunk that would pass the announced size is an error.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), PayloadError> {
        let size = self.buf.len() as u64 + chunk.len() as u64;
        if size > self.expected_compressed {
            return Err(PayloadError::TooLarge {
                size,
                limit: self.expected_compressed,
            });
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// True when every announced compressed byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.buf.len() as u64 == self.expected_compressed
    }

    /// Decompresses and verifies the payload.
    pub fn finish(self) -> Result<Vec<u8>, PayloadError> {
        if !self.is_complete() {
            return Err(PayloadError::Truncated {
                got: self.buf.len() as u64,
                expected: self.expected_compressed,
            });
        }
        let data = decompress(&self.buf, self.expected_size)?;
        if digest(&data) != self.digest {
            return Err(PayloadError::DigestMismatch);
        }
        Ok(data)
    }

    /// Decompresses an upload of several blobs, concatenated in the order
    /// of `blobs` (digest, size), and checks each against its digest. The
    /// assembler's own digest is not used: each part has one.
    pub fn finish_blobs(self, blobs: &[(Vec<u8>, u64)]) -> Result<Vec<Vec<u8>>, PayloadError> {
        if !self.is_complete() {
            return Err(PayloadError::Truncated {
                got: self.buf.len() as u64,
                expected: self.expected_compressed,
            });
        }
        let total: u64 = blobs.iter().map(|(_, size)| size).sum();
        if total != self.expected_size {
            return Err(PayloadError::SizeMismatch {
                got: total,
                expected: self.expected_size,
            });
        }
        let data = decompress(&self.buf, self.expected_size)?;
        let mut parts = Vec::with_capacity(blobs.len());
        let mut at = 0usize;
        for (want, size) in blobs {
            let end = at + *size as usize;
            let part = data.get(at..end).ok_or(PayloadError::SizeMismatch {
                got: data.len() as u64,
                expected: total,
            })?;
            if digest(part) != *want {
                return Err(PayloadError::DigestMismatch);
            }
            parts.push(part.to_vec());
            at = end;
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(data: &[u8]) -> Result<Vec<u8>, PayloadError> {
        let compressed = compress(data).unwrap();
        let mut asm = Assembler::new(
            data.len() as u64,
            compressed.len() as u64,
            digest(data),
            MAX_PAYLOAD_BYTES,
        )?;
        for chunk in chunks(&compressed) {
            asm.push(chunk)?;
        }
        asm.finish()
    }

    #[test]
    fn round_trips_empty_small_and_multi_chunk_payloads() {
        let big: Vec<u8> = (0..3 * CHUNK_SIZE as u32 * 4)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for data in [&b""[..], b"int main(void) { return 0; }\n", &big] {
            assert_eq!(assemble(data).unwrap(), data);
        }
    }

    #[test]
    fn refuses_announced_size_over_limit() {
        let err = Assembler::new(10, 10, vec![], 5).unwrap_err();
        assert!(matches!(err, PayloadError::TooLarge { size: 10, limit: 5 }));
    }

    #[test]
    fn refuses_more_bytes_than_announced() {
        let mut asm = Assembler::new(4, 3, vec![], 100).unwrap();
        assert!(asm.push(b"abcd").is_err());
    }

    #[test]
    fn detects_truncation_corruption_and_digest_mismatch() {
        let data = b"hello hello hello hello";
        let compressed = compress(data).unwrap();
        let n = compressed.len() as u64;

        let mut asm = Assembler::new(23, n, digest(data), 1000).unwrap();
        asm.push(&compressed[..3]).unwrap();
        assert!(matches!(asm.finish(), Err(PayloadError::Truncated { .. })));

        let mut garbage = compressed.clone();
        garbage[0] ^= 0xff;
        let mut asm = Assembler::new(23, n, digest(data), 1000).unwrap();
        asm.push(&garbage).unwrap();
        assert!(matches!(asm.finish(), Err(PayloadError::Corrupt(_))));

        let mut asm = Assembler::new(23, n, digest(b"other"), 1000).unwrap();
        asm.push(&compressed).unwrap();
        assert!(matches!(asm.finish(), Err(PayloadError::DigestMismatch)));
    }
}

/// Properties over arbitrary payloads and arbitrary damage to their chunk
/// streams: every outcome is the payload itself or an error, never a panic
/// or a wrong payload, and no announced size buys memory.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// What a stream of chunks can suffer on the way.
    #[derive(Debug, Clone)]
    enum Damage {
        None,
        /// Stop after this many bytes.
        Truncate(usize),
        /// Swap two chunks.
        Swap(usize, usize),
        /// Flip bits of one byte.
        Flip(usize, u8),
        /// Add bytes at the end.
        Extend(Vec<u8>),
        /// Announce another uncompressed size.
        Size(u64),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            Just(Damage::None),
            any::<usize>().prop_map(Damage::Truncate),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Swap(a, b)),
            (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Damage::Flip(i, m)),
            proptest::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Extend),
            any::<u64>().prop_map(Damage::Size),
        ]
    }

    /// Payloads that compress well and badly, so frames hold raw, RLE and
    /// compressed blocks.
    fn payload() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            (any::<u8>(), 0..100_000usize).prop_map(|(b, n)| vec![b; n]),
            "[a-z ;(){}\n]{0,3000}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn damaged_chunk_streams_give_the_payload_or_an_error(
            data in payload(),
            chunk_size in 1..512usize,
            damage in damage(),
        ) {
            let compressed = compress(&data).unwrap();
            let mut chunks: Vec<Vec<u8>> =
                compressed.chunks(chunk_size).map(<[u8]>::to_vec).collect();
            let mut size = data.len() as u64;
            let mut compressed_size = compressed.len() as u64;
            match &damage {
                Damage::None => {}
                Damage::Truncate(n) => {
                    let mut left = n % (compressed.len() + 1);
                    for c in &mut chunks {
                        let keep = left.min(c.len());
                        c.truncate(keep);
                        left -= keep;
                    }
                }
                Damage::Swap(a, b) => {
                    let (a, b) = (a % chunks.len(), b % chunks.len());
                    chunks.swap(a, b);
                }
                Damage::Flip(i, mask) => {
                    let i = i % compressed.len();
                    chunks[i / chunk_size][i % chunk_size] ^= mask;
                }
                Damage::Extend(extra) => {
                    chunks.push(extra.clone());
                    compressed_size += extra.len() as u64;
                }
                Damage::Size(s) => size = *s,
            }
            let outcome = (|| {
                let mut asm =
                    Assembler::new(size, compressed_size, digest(&data), MAX_PAYLOAD_BYTES)?;
                for c in &chunks {
                    asm.push(c)?;
                }
                asm.finish()
            })();
            match outcome {
                // The digest makes any payload that comes out the sent one.
                Ok(got) => prop_assert_eq!(got, data),
                Err(_) => prop_assert!(
                    !matches!(damage, Damage::None),
                    "an undamaged stream was refused"
                ),
            }
        }

        #[test]
        fn arbitrary_bytes_and_sizes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            size in prop_oneof![0..4096u64, any::<u64>()],
            limit in prop_oneof![Just(MAX_PAYLOAD_BYTES), any::<u64>()],
        ) {
            match Assembler::new(size, bytes.len() as u64, vec![0; 32], limit) {
                Ok(mut asm) => {
                    prop_assert!(asm.buf.capacity() as u64 <= MAX_RESERVE_BYTES);
                    asm.push(&bytes).unwrap();
                    // A 32-byte digest of zeros matches nothing.
                    prop_assert!(asm.finish().is_err());
                }
                Err(PayloadError::TooLarge { size: s, limit: l }) => {
                    prop_assert!(s > l && l == limit)
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
            let _ = decompress(&bytes, size);
        }

        #[test]
        fn announced_sizes_reserve_little_memory(size in 0..=MAX_PAYLOAD_BYTES) {
            let asm = Assembler::new(size, size, vec![], MAX_PAYLOAD_BYTES).unwrap();
            prop_assert!(asm.buf.capacity() as u64 <= MAX_RESERVE_BYTES);
        }
    }

    /// A few bytes of zstd that expand far past what their header claims
    /// stop at the claim instead of filling memory.
    #[test]
    fn a_compression_bomb_stops_at_the_announced_size() {
        let bomb = compress(&vec![0u8; 64 * 1024 * 1024]).unwrap();
        assert!(bomb.len() < 64 * 1024);
        let err = decompress(&bomb, 1000).unwrap_err();
        assert!(
            matches!(err, PayloadError::Overlong { expected: 1000 }),
            "{err}"
        );
        let err = decompress(&bomb[..bomb.len() / 2], 64 * 1024 * 1024).unwrap_err();
        assert!(matches!(err, PayloadError::Corrupt(_)), "{err}");
    }
}
