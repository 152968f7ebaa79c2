//! Target `terminal`: a worker's stdout or stderr, made safe for the user's
//! terminal before the wrapper prints it. The output is a fixed point,
//! holds no escape sequence but SGR and `ESC [ K`, no C0 control but tab,
//! newline and carriage return, and no C1 control (U+0080–U+009F).

use gridcc_client::terminal::sanitize;

pub fn run(data: &[u8]) {
    let out = sanitize(data);
    assert_eq!(sanitize(&out), out, "not a fixed point");
    assert!(out.len() <= data.len());
    let mut i = 0;
    while i < out.len() {
        match out[i] {
            0x1b => {
                let rest = &out[i..];
                let end = rest
                    .iter()
                    .position(|b| (0x40..=0x7e).contains(b) && *b != b'[')
                    .expect("an escape sequence is cut short");
                let seq = &rest[..=end];
                let sgr = seq.len() >= 3
                    && seq[1] == b'['
                    && seq[end] == b'm'
                    && seq[2..end].iter().all(|b| b.is_ascii_digit() || *b == b';');
                assert!(sgr || seq == b"\x1b[K", "kept {seq:?}");
                i += end + 1;
            }
            b'\n' | b'\t' | b'\r' => i += 1,
            b if b < 0x20 || b == 0x7f => panic!("control byte {b:#x} kept"),
            0xc2 if out.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => {
                panic!("C1 control kept")
            }
            _ => i += 1,
        }
    }
}
