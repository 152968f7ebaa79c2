//! Target `cache`: the object cache's entry decoder, in three modes picked
//! by the first byte (modulo 3).
//!
//! - 0: the rest is a cache file's bytes, read under a fixed key: an
//!   entry comes back only when the file ends in the right checksum.
//! - 1: the rest is an entry without its checksum, which the harness
//!   appends, so the fuzzer reaches the header and field parser: an entry
//!   or an error, and an entry re-encodes to itself.
//! - 2: bytes 1..9 pick a byte (u64 LE) and byte 9 a bit mask, the rest is
//!   split into object, stdout and stderr of a real entry; the entry with
//!   that byte flipped is refused.

use gridcc_client::cache::{decode, encode, Entry, Key, KeyInputs};

fn key() -> Key {
    KeyInputs {
        compiler: "fuzz",
        mode: "source",
        language: "c",
        args: &[],
        source: "a.c",
        cwd: None,
        env: &[],
        text: b"int x;\n",
    }
    .key()
}

/// The entry format's checksum: blake3 over the key's text and the body.
fn seal(key: &Key, body: &[u8]) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(key.as_str().as_bytes());
    h.update(body);
    let mut out = body.to_vec();
    out.extend_from_slice(h.finalize().as_bytes());
    out
}

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = key();
    match mode % 3 {
        0 => {
            if decode(&key, rest).is_ok() {
                let body = &rest[..rest.len() - 32];
                assert_eq!(seal(&key, body), rest, "unsealed bytes accepted");
            }
        }
        1 => {
            if let Ok(entry) = decode(&key, &seal(&key, rest)) {
                let again = encode(&key, &entry).expect("encode");
                assert_eq!(decode(&key, &again).expect("re-decode"), entry);
            }
        }
        _ => {
            let (at, rest) = crate::take_u64(rest);
            let Some((&mask, rest)) = rest.split_first() else {
                return;
            };
            let third = rest.len() / 3;
            let entry = Entry {
                exit_code: i32::from(mask),
                object: rest[..third].to_vec(),
                stdout: rest[third..2 * third].to_vec(),
                stderr: rest[2 * third..].to_vec(),
                compile_ms: at,
            };
            let mut bytes = encode(&key, &entry).expect("encode");
            assert_eq!(decode(&key, &bytes).as_ref(), Ok(&entry));
            let i = usize::try_from(at % bytes.len() as u64).expect("index");
            bytes[i] ^= mask | 1;
            assert!(decode(&key, &bytes).is_err(), "flip at {i} accepted");
        }
    }
}
