//! Giving every header one file, and so one name, on the worker.
//!
//! Directives-only text holds each header inline between line markers
//! (`# 1 "x.h" 1` … `# 12 "a.c" 2`). Compiled as it stands, every marker
//! makes the preprocessor allocate a fresh copy of the file name, while a
//! local compile, which finds each header through its file cache, has one
//! copy per file. gcc's final pass starts a new line-table row whenever the
//! *address* of the current file name changes (`notice_source_line` compares
//! pointers), so where code from two entries of the same header meets —
//! CPython's `stringlib` templates, included once per character width and
//! inlined into each other — the remote object gets extra `.loc` rows.
//!
//! [`split`] turns the text back into files: every header becomes a file
//! that its includer `#include`s by an absolute worker path, so the
//! preprocessor opens it once and keeps one name for it, as locally. A header
//! entered several times with different text (the conditionals are already
//! resolved) holds every version, chosen by `__gridcc_v`, which the includer
//! defines just before the `#include`. Line numbers are restored with `#line`
//! (which keeps the current name), system headers say `#pragma GCC
//! system_header` (which does too), and only markers that name another file
//! stay as they are. All three directives are as old as gcc's line markers.
//!
//! The worker lays the files out and maps their paths back to the client's
//! names (`layout::headers`); [`names`] lists what it has to lay out.

use std::collections::HashMap;

/// The macro that selects a version of a header entered more than once.
const VERSION_MACRO: &str = "__gridcc_v";

/// One line marker: `# LINE "NAME" FLAGS…`.
#[derive(Debug, PartialEq, Eq)]
struct Marker<'a> {
    line: u64,
    name: &'a str,
    enter: bool,
    leave: bool,
    system: bool,
}

/// Parses a line marker as gcc writes them; `None` for any other line.
fn marker(line: &[u8]) -> Option<Marker<'_>> {
    let rest = line.strip_prefix(b"# ")?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let number = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b" \"")?;
    // Escaped names (`\\`, `\"`, octal) are never split, so a name ends at
    // the first quote; `names` refuses texts whose names hold a backslash.
    let end = rest.iter().position(|c| *c == b'"')?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    let mut m = Marker {
        line: number,
        name,
        enter: false,
        leave: false,
        system: false,
    };
    for flag in rest[end + 1..]
        .split(|c| *c == b' ')
        .filter(|f| !f.is_empty())
    {
        match flag {
            b"1" => m.enter = true,
            b"2" => m.leave = true,
            b"3" => m.system = true,
            b"4" => {}
            _ => return None,
        }
    }
    Some(m)
}

/// A piece of directives-only text: a run of ordinary lines (each with its
/// newline) or one line marker (without it).
enum Piece<'a> {
    Lines(&'a [u8]),
    Marker(&'a [u8]),
}

/// Cuts `text` into runs of lines and line-marker lines. Finding `\n# ` with
/// memchr keeps this fast: a translation unit is megabytes of text and only
/// its markers matter here.
fn pieces(text: &[u8]) -> impl Iterator<Item = Piece<'_>> {
    let mut at = 0;
    let mut pending: Option<&[u8]> = None;
    let starts = text
        .starts_with(b"# ")
        .then_some(0)
        .into_iter()
        .chain(memchr::memmem::find_iter(text, b"\n# ").map(|i| i + 1));
    let mut starts = starts.peekable();
    std::iter::from_fn(move || {
        if let Some(marker) = pending.take() {
            return Some(Piece::Marker(marker));
        }
        if at >= text.len() {
            return None;
        }
        let Some(start) = starts.next() else {
            let rest = &text[at..];
            at = text.len();
            return Some(Piece::Lines(rest));
        };
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
        let lines = &text[at..start];
        pending = Some(&text[start..end]);
        at = end + 1;
        if lines.is_empty() {
            return pending.take().map(Piece::Marker);
        }
        Some(Piece::Lines(lines))
    })
}

/// Whether `name` can stand in an `#include "…"` under a worker root.
fn splittable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 4096
        && !name.starts_with('<')
        && !name
            .bytes()
            .any(|c| c == b'"' || c == b'\\' || c < b' ' || c == 0x7f)
}

/// The headers `text` enters, each once, in order of first entry; `None`
/// when one of them has a name that cannot be written as a file name here
/// (the text is then compiled as it stands).
pub fn names(text: &[u8]) -> Option<Vec<String>> {
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for piece in pieces(text) {
        let Piece::Marker(line) = piece else { continue };
        let Some(m) = marker(line) else { continue };
        if !m.enter {
            continue;
        }
        if !splittable(m.name) {
            return None;
        }
        if seen.insert(m.name, ()).is_none() {
            out.push(m.name.to_owned());
        }
    }
    Some(out)
}

/// Whether the debug info records macro definitions (`-g3`, `-ggdb3`; the
/// last level given decides), in which case the text is compiled whole.
pub fn records_macros(args: &[String]) -> bool {
    let mut level = 0;
    for arg in args {
        let Some(rest) = arg.strip_prefix("-g") else {
            continue;
        };
        let digits = ["gdb", "stabs+", "stabs", "xcoff+", "xcoff", "vms", ""]
            .iter()
            .find_map(|format| rest.strip_prefix(format))
            .unwrap_or(rest);
        if digits.is_empty() {
            level = 2;
        } else if let Ok(n) = digits.parse::<u32>() {
            level = n;
        }
    }
    level >= 3
}

/// The text split into a main file and header files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// The translation unit's own text.
    pub main: Vec<u8>,
    /// The text of each header file, by the file index `split` was given.
    pub files: Vec<Vec<u8>>,
}

/// Where a header lives on the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The path its `#include` names; mapped back to the client's name.
    pub include_path: String,
    /// Its file. Names that reach the same file (`a/../b.h` and `b.h`)
    /// share one, as they do on the client, and so share its versions.
    pub file: usize,
}

/// One file being rebuilt: the main text or one entry of a header.
struct Open {
    /// The name it was entered under (empty for the main text).
    entered: String,
    /// The name markers give it now (a `#line N "other"` renames it).
    name: String,
    system: bool,
    text: Vec<u8>,
}

impl Open {
    fn push(&mut self, line: &[u8]) {
        self.text.extend_from_slice(line);
        self.text.push(b'\n');
    }
}

/// Splits directives-only `text` so that each header is a file included as
/// `place(name)` says; `None` when the markers do not nest or a header has
/// no place (the text is then compiled as it stands). `files` is how many
/// files the places use.
pub fn split(text: &[u8], place: &dyn Fn(&str) -> Option<Place>, files: usize) -> Option<Split> {
    // How many entries each file gets, to know which need versions.
    let mut entries = vec![0u32; files];
    for piece in pieces(text) {
        let Piece::Marker(line) = piece else { continue };
        if let Some(m) = marker(line).filter(|m| m.enter) {
            *entries.get_mut(place(m.name)?.file)? += 1;
        }
    }
    let mut versions: Vec<Vec<Vec<u8>>> = vec![Vec::new(); files];
    let mut stack = vec![Open {
        entered: String::new(),
        name: String::new(),
        system: false,
        text: Vec::with_capacity(text.len()),
    }];
    for piece in pieces(text) {
        let current = stack.last_mut()?;
        let line = match piece {
            Piece::Lines(lines) => {
                current.text.extend_from_slice(lines);
                continue;
            }
            Piece::Marker(line) => line,
        };
        let Some(m) = marker(line) else {
            current.push(line);
            continue;
        };
        if m.enter {
            let mut open = Open {
                entered: m.name.to_owned(),
                name: m.name.to_owned(),
                system: m.system,
                text: Vec::new(),
            };
            if m.system {
                open.push(b"#pragma GCC system_header");
            }
            open.push(format!("#line {}", m.line).as_bytes());
            stack.push(open);
        } else if m.leave {
            let done = stack.pop()?;
            let includer = stack.last_mut()?;
            if includer.name != m.name || done.entered.is_empty() {
                return None;
            }
            let place = place(&done.entered)?;
            let list = versions.get_mut(place.file)?;
            list.push(done.text);
            if entries[place.file] > 1 {
                includer.push(format!("#undef {VERSION_MACRO}").as_bytes());
                includer.push(format!("#define {VERSION_MACRO} {}", list.len()).as_bytes());
            }
            // The `#include` stands on the line before the one the text
            // resumes at, so "included from" notes name the right line.
            if m.line > 1 {
                includer.push(format!("#line {}", m.line - 1).as_bytes());
            }
            includer.push(format!("#include \"{}\"", place.include_path).as_bytes());
            if m.line <= 1 {
                includer.push(format!("#line {}", m.line).as_bytes());
            }
            includer.system = m.system;
        } else if m.name == current.name && m.system == current.system {
            // Lines skipped within the same file: `#line` keeps the name.
            current.push(format!("#line {}", m.line).as_bytes());
        } else {
            current.name = m.name.to_owned();
            current.system = m.system;
            current.push(line);
        }
    }
    if stack.len() != 1 {
        return None;
    }
    let main = stack.pop()?.text;
    let files = versions
        .into_iter()
        .map(|mut list| {
            if list.len() <= 1 {
                return list.pop().unwrap_or_default();
            }
            let mut text = Vec::new();
            for (i, version) in list.iter().enumerate() {
                let directive = if i == 0 { "#if" } else { "#elif" };
                text.extend_from_slice(
                    format!("{directive} {VERSION_MACRO} == {}\n", i + 1).as_bytes(),
                );
                text.extend_from_slice(version);
            }
            text.extend_from_slice(b"#endif\n");
            text
        })
        .collect();
    Some(Split { main, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places each name in a file of its own, except that `x.h` and
    /// `d/../x.h` share one.
    fn place(name: &str) -> Option<Place> {
        let file = match name {
            "x.h" | "d/../x.h" => 0,
            "/usr/include/s.h" => 1,
            "t.h" => 2,
            "y.h" => 3,
            "/usr/include/stdc-predef.h" => 4,
            _ => return None,
        };
        let sep = if name.starts_with('/') { "" } else { "/" };
        Some(Place {
            include_path: format!("/R{sep}{name}"),
            file,
        })
    }

    fn text(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn macro_debug_info_is_the_last_level_three() {
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        for yes in [
            "-g3",
            "-O2 -ggdb3",
            "-g -g3",
            "-g3 -gdwarf-4",
            "-g3 -gsplit-dwarf",
        ] {
            assert!(records_macros(&args(yes)), "{yes}");
        }
        for no in ["-g", "-g3 -g", "-g3 -g0", "-gdwarf-3", "-O3", "-g3 -ggdb"] {
            assert!(!records_macros(&args(no)), "{no}");
        }
    }

    #[test]
    fn pieces_keep_every_byte_and_find_every_marker() {
        let texts: [&[u8]; 5] = [
            b"# 1 \"a.c\"\nint a;\nint b;\n# 2 \"a.c\"\n# 3 \"a.c\"\nx\n",
            b"int a;\n# 1 \"x\"",
            b"no markers",
            b"",
            b"#define A 1\n #  1 \"not\"\n",
        ];
        for text in texts {
            let mut rebuilt = Vec::new();
            let mut markers = 0;
            for piece in pieces(text) {
                match piece {
                    Piece::Lines(l) => rebuilt.extend_from_slice(l),
                    Piece::Marker(m) => {
                        assert!(m.starts_with(b"# ") && !m.contains(&b'\n'));
                        markers += 1;
                        rebuilt.extend_from_slice(m);
                        rebuilt.push(b'\n');
                    }
                }
            }
            let expected = text
                .split(|c| *c == b'\n')
                .filter(|l| l.starts_with(b"# "))
                .count();
            assert_eq!(markers, expected, "{}", String::from_utf8_lossy(text));
            let mut text = text.to_vec();
            if markers > 0 && !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            assert_eq!(rebuilt, text);
        }
    }

    #[test]
    fn parses_markers_and_nothing_else() {
        assert_eq!(
            marker(b"# 12 \"a/b.h\" 2 3 4"),
            Some(Marker {
                line: 12,
                name: "a/b.h",
                enter: false,
                leave: true,
                system: true
            })
        );
        assert!(marker(b"# 1 \"x.h\" 1").unwrap().enter);
        for other in [
            &b"#define X 1"[..],
            b"# define X",
            b"#  1 \"x\"",
            b"# 1 x.h",
            b"# 1 \"x.h\" 9",
            b"# 1 \"x.h",
        ] {
            assert_eq!(marker(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn lists_entered_headers_once_and_refuses_unwritable_names() {
        let t = text("# 0 \"a.c\"\n# 1 \"x.h\" 1\n# 1 \"y.h\" 1\n# 2 \"x.h\" 2\n# 2 \"a.c\" 2\n# 1 \"x.h\" 1\n# 3 \"a.c\" 2\n");
        assert_eq!(names(&t), Some(vec!["x.h".to_owned(), "y.h".to_owned()]));
        assert_eq!(names(b"# 1 \"a\\\\b.h\" 1\n"), None);
        assert_eq!(names(b"# 1 \"<x>\" 1\n"), None);
        assert_eq!(names(b"int x;\n"), Some(vec![]));
    }

    #[test]
    fn headers_become_included_files_with_their_line_numbers() {
        let t = text(concat!(
            "# 0 \"a.c\"\n",
            "# 1 \"a.c\"\n",
            "int a;\n",
            "# 1 \"/usr/include/s.h\" 1 3 4\n",
            "int s;\n",
            "# 9 \"/usr/include/s.h\" 3 4\n",
            "int t;\n",
            "# 3 \"a.c\" 2\n",
            "int b;\n",
        ));
        let split = split(&t, &place, 5).unwrap();
        assert_eq!(
            String::from_utf8(split.main).unwrap(),
            concat!(
                "# 0 \"a.c\"\n",
                "#line 1\n",
                "int a;\n",
                "#line 2\n",
                "#include \"/R/usr/include/s.h\"\n",
                "int b;\n",
            )
        );
        assert_eq!(
            String::from_utf8(split.files[1].clone()).unwrap(),
            "#pragma GCC system_header\n#line 1\nint s;\n#line 9\nint t;\n"
        );
    }

    #[test]
    fn a_header_entered_twice_holds_both_versions() {
        let t = text(concat!(
            "# 1 \"a.c\"\n",
            "# 1 \"t.h\" 1\n",
            "int one;\n",
            "# 2 \"a.c\" 2\n",
            "# 1 \"t.h\" 1\n",
            "int two;\n",
            "# 3 \"a.c\" 2\n",
        ));
        let split = split(&t, &place, 5).unwrap();
        assert_eq!(
            String::from_utf8(split.main).unwrap(),
            concat!(
                "# 1 \"a.c\"\n",
                "#undef __gridcc_v\n#define __gridcc_v 1\n#line 1\n#include \"/R/t.h\"\n",
                "#undef __gridcc_v\n#define __gridcc_v 2\n#line 2\n#include \"/R/t.h\"\n",
            )
        );
        assert_eq!(
            String::from_utf8(split.files[2].clone()).unwrap(),
            "#if __gridcc_v == 1\n#line 1\nint one;\n#elif __gridcc_v == 2\n#line 1\nint two;\n#endif\n"
        );
    }

    #[test]
    fn names_of_one_file_share_its_versions() {
        let t = text(concat!(
            "# 1 \"a.c\"\n",
            "# 1 \"x.h\" 1\n",
            "int one;\n",
            "# 2 \"a.c\" 2\n",
            "# 1 \"d/../x.h\" 1\n",
            "int two;\n",
            "# 3 \"a.c\" 2\n",
        ));
        let split = split(&t, &place, 5).unwrap();
        let main = String::from_utf8(split.main).unwrap();
        assert!(main.contains("#define __gridcc_v 2\n#line 2\n#include \"/R/d/../x.h\"\n"));
        assert!(String::from_utf8(split.files[0].clone())
            .unwrap()
            .contains("#elif __gridcc_v == 2\n#line 1\nint two;\n"));
        assert!(
            split.files[3].is_empty(),
            "a file no name entered stays empty"
        );
    }

    #[test]
    fn command_line_includes_resume_at_line_zero() {
        let t = text(concat!(
            "# 0 \"<command-line>\"\n",
            "# 1 \"/usr/include/stdc-predef.h\" 1 3 4\n",
            "# 0 \"<command-line>\" 2\n",
            "# 1 \"a.c\"\n",
        ));
        let split = split(&t, &place, 5).unwrap();
        assert_eq!(
            String::from_utf8(split.main).unwrap(),
            concat!(
                "# 0 \"<command-line>\"\n",
                "#include \"/R/usr/include/stdc-predef.h\"\n",
                "#line 0\n",
                "# 1 \"a.c\"\n",
            )
        );
    }

    #[test]
    fn markers_that_do_not_nest_or_have_no_place_leave_the_text_alone() {
        assert_eq!(
            split(b"# 1 \"a.c\"\n# 1 \"z.h\" 1\n# 2 \"a.c\" 2\n", &place, 5),
            None
        );
        assert_eq!(split(b"# 1 \"a.c\"\n# 2 \"a.c\" 2\n", &place, 5), None);
        assert_eq!(
            split(b"# 1 \"a.c\"\n# 1 \"x.h\" 1\nint x;\n", &place, 5),
            None
        );
        assert_eq!(
            split(b"# 1 \"a.c\"\n# 1 \"x.h\" 1\n# 2 \"b.c\" 2\n", &place, 5),
            None
        );
    }
}

/// Properties over arbitrary directives-only texts: markers that nest or
/// not, names that can be laid out or not. Splitting never panics, text
/// without markers comes back unchanged, and every line that is not a
/// marker lands in exactly one output file.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        let name = proptest::sample::select(&["a.c", "x.h", "y.h", "<built-in>", "a\\b.h", ""][..]);
        let flags = proptest::sample::select(&["", " 1", " 2", " 1 3 4", " 2 3", " 3", " 9"][..]);
        prop_oneof![
            3 => (0..20u64, name, flags).prop_map(|(n, name, f)| format!("# {n} \"{name}\"{f}")),
            2 => "[a-z; ]{0,10}",
            1 => "# [0-9a-z\" ]{0,10}",
            1 => ".{0,10}",
        ]
    }

    fn text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(line(), 0..16).prop_map(|l| l.join("\n").into_bytes())
    }

    /// Every name in a file of its own.
    fn places(names: &[String]) -> HashMap<String, Place> {
        names
            .iter()
            .enumerate()
            .map(|(file, n)| {
                let place = Place {
                    include_path: format!("/R/{file}"),
                    file,
                };
                (n.clone(), place)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn splitting_arbitrary_text_never_panics(text in text(), bytes in any::<Vec<u8>>()) {
            for text in [&text, &bytes] {
                let Some(names) = names(text) else { continue };
                let places = places(&names);
                let Some(split) = split(text, &|n| places.get(n).cloned(), names.len()) else {
                    continue;
                };
                // Each ordinary line of the text is in one of the outputs.
                let outputs: Vec<&[u8]> = std::iter::once(split.main.as_slice())
                    .chain(split.files.iter().map(Vec::as_slice))
                    .collect();
                for l in text.split(|c| *c == b'\n') {
                    if l.is_empty() || l.starts_with(b"# ") {
                        continue;
                    }
                    prop_assert!(
                        outputs.iter().any(|o| o.split(|c| *c == b'\n').any(|ol| ol == l)),
                        "line {:?} lost", String::from_utf8_lossy(l)
                    );
                }
            }
        }

        #[test]
        fn text_without_markers_is_unchanged(text in "[a-z#;\n ]{0,200}") {
            let text = text.replace("\n# ", "\n#x").into_bytes();
            prop_assume!(!text.starts_with(b"# "));
            prop_assert_eq!(names(&text), Some(vec![]));
            let split = split(&text, &|_| None, 0).unwrap();
            prop_assert_eq!(split.main, text);
            prop_assert!(split.files.is_empty());
        }
    }
}
