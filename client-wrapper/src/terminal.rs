//! A worker's output made safe for the user's terminal.
//!
//! The compiler's stdout and stderr from a worker are printed as the
//! compiler wrote them, except for terminal control sequences other than
//! colour. A worker, or a program posing as one, could otherwise set the
//! window title, move the cursor and rewrite earlier lines (hiding a
//! warning), or send queries whose answers the terminal types into the
//! user's shell.
//!
//! Kept: text, tab, newline, a carriage return before a newline, SGR
//! (`ESC [ digits;… m`: colour, bold) and the erase-to-end-of-line `ESC [ K`
//! that gcc writes after each SGR (it moves nothing). Dropped: every other
//! escape sequence whole (CSI; OSC, DCS, SOS, PM and APC with their strings
//! up to BEL or ST, or to the end when unterminated; two-byte escapes), the
//! C1 controls U+0080–U+009F (which some terminals obey as 8-bit CSI or
//! OSC), other C0 controls and DEL.

const ESC: u8 = 0x1b;

/// `bytes` without the control sequences a terminal must not get.
pub fn sanitize(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let (len, keep) = match b {
            ESC => escape(&bytes[i..]),
            b'\n' | b'\t' => (1, true),
            b'\r' => (1, next == Some(b'\n')),
            0x00..=0x1f | 0x7f => (1, false),
            // U+0080..U+009F in UTF-8 is C2 80..9F. Checked against the
            // output, so that removing a sequence between the two bytes
            // cannot join them into one.
            0x80..=0x9f if out.last() == Some(&0xc2) => {
                out.pop();
                (1, false)
            }
            _ => (1, true),
        };
        if keep {
            out.extend_from_slice(&bytes[i..i + len]);
        }
        i += len;
    }
    out
}

/// The length of the escape sequence that `s` starts with (`s[0]` is
/// ESC), and whether it is kept.
fn escape(s: &[u8]) -> (usize, bool) {
    match s.get(1) {
        None => (1, false),
        Some(b'[') => csi(s),
        // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \).
        Some(b']' | b'P' | b'X' | b'^' | b'_') => {
            let end = (2..s.len()).find_map(|j| match s[j] {
                0x07 => Some(j + 1),
                ESC if s.get(j + 1) == Some(&b'\\') => Some(j + 2),
                _ => None,
            });
            (end.unwrap_or(s.len()), false)
        }
        // Intermediates, then a final byte (e.g. `ESC ( B`).
        Some(0x20..=0x2f) => {
            let end = (2..s.len()).find(|&j| !(0x20..=0x2f).contains(&s[j]));
            match end {
                Some(j) if (0x30..=0x7e).contains(&s[j]) => (j + 1, false),
                Some(j) => (j, false),
                None => (s.len(), false),
            }
        }
        // A two-byte escape (`ESC c` resets the terminal, `ESC 7` …).
        Some(0x30..=0x7e) => (2, false),
        // ESC before anything else: dropped alone.
        Some(_) => (1, false),
    }
}

/// A control sequence `ESC [ params intermediates final`: kept when it is
/// an SGR or gcc's `ESC [ K`.
fn csi(s: &[u8]) -> (usize, bool) {
    let params = 2 + s[2..]
        .iter()
        .take_while(|b| (0x30..=0x3f).contains(*b))
        .count();
    let body = params
        + s[params..]
            .iter()
            .take_while(|b| (0x20..=0x2f).contains(*b))
            .count();
    match s.get(body) {
        Some(&last) if (0x40..=0x7e).contains(&last) => {
            let sgr = last == b'm'
                && body == params
                && s[2..params]
                    .iter()
                    .all(|b| b.is_ascii_digit() || *b == b';');
            let erase_line = &s[..=body] == b"\x1b[K";
            (body + 1, sgr || erase_line)
        }
        // Cut short or broken: dropped up to where it broke.
        Some(_) => (body, false),
        None => (s.len(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn colour_stays_and_every_other_control_goes() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"plain text\n", b"plain text\n"),
            (b"tab\there\r\n", b"tab\there\r\n"),
            // gcc's colours, as -fdiagnostics-color=always writes them.
            (
                b"\x1b[01m\x1b[Ka.c:1:5:\x1b[m\x1b[K \x1b[01;35m\x1b[Kwarning: \x1b[m\x1b[Kx\n",
                b"\x1b[01m\x1b[Ka.c:1:5:\x1b[m\x1b[K \x1b[01;35m\x1b[Kwarning: \x1b[m\x1b[Kx\n",
            ),
            // Window title (OSC, BEL- and ST-terminated), unterminated.
            (b"a\x1b]0;pwned\x07b", b"ab"),
            (b"a\x1b]2;pwned\x1b\\b", b"ab"),
            (b"a\x1b]0;pwned and the rest", b"a"),
            // Cursor moves, erase screen, erase line with a parameter,
            // device queries, private modes.
            (b"x\x1b[2A\x1b[2Ky\x1b[2J\x1b[6n\x1b[?25lz", b"xyz"),
            (b"\x1b[1K\x1b[0K", b""),
            // SGR with a non-SGR look-alike: intermediates, private marks.
            (b"\x1b[ m\x1b[?1m\x1b[1;31m!", b"\x1b[1;31m!"),
            // DCS, APC, two-byte escapes, charset selection.
            (b"\x1bPq#0\x1b\\\x1b_x\x07\x1bc\x1b7\x1b(Bok", b"ok"),
            // Lone controls: BEL, backspace, a bare CR, DEL, NUL.
            (b"a\x07b\x08c\rd\x7fe\x00f", b"abcdef"),
            // C1 CSI and OSC encoded in UTF-8; other UTF-8 stays.
            ("é\u{9b}2J—\u{9d}0;x".as_bytes(), "é2J—0;x".as_bytes()),
            // Cut short at the end.
            (b"end\x1b", b"end"),
            (b"end\x1b[", b"end"),
            (b"end\x1b[12;3", b"end"),
        ];
        for (input, want) in cases {
            assert_eq!(
                sanitize(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    proptest! {
        #[test]
        fn the_output_holds_no_escape_but_colour_and_is_a_fixed_point(
            bytes in proptest::collection::vec(
                prop_oneof![
                    Just(0x1bu8),
                    Just(b'['),
                    Just(b']'),
                    Just(b'm'),
                    Just(0x07),
                    Just(0xc2),
                    Just(0x9b),
                    any::<u8>()
                ],
                0..200,
            )
        ) {
            let out = sanitize(&bytes);
            prop_assert_eq!(sanitize(&out), out.clone());
            let mut i = 0;
            while let Some(at) = out[i..].iter().position(|&b| b == ESC) {
                let (len, keep) = escape(&out[i + at..]);
                prop_assert!(keep, "{:?}", out);
                i += at + len;
            }
            prop_assert!(!out.iter().any(|&b| b < 0x20 && !b"\n\t\r\x1b".contains(&b)));
            prop_assert!(
                !out.windows(2).any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])),
                "a C1 control is left: {:?}",
                out
            );
        }

        #[test]
        fn text_without_controls_is_unchanged(text in "[^\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]{0,100}") {
            prop_assert_eq!(sanitize(text.as_bytes()), text.as_bytes());
        }
    }
}
