//! Keeping client text from reading files on the worker.
//!
//! Source-mode input is compiled with the full preprocessor, so a crafted
//! text could `#include` a worker file and leak it through diagnostics. The
//! compile therefore runs with `-nostdinc -MD -MF <deps>` (neither is
//! recorded in the object) and [`check_deps`] withholds the whole result
//! when the dependency list names any file but the input. Scanning the text
//! for directives instead would have to lex C exactly as cpp does (comments,
//! raw strings, digit separators) or be fooled.
//!
//! `#pragma GCC dependency` only compares a file's date, which the dependency
//! list may not show; [`check_text`] refuses texts that use it.

/// Why a job's output was withheld.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileAccess {
    #[error("input line {0} uses #pragma GCC dependency, which reads files on the worker")]
    DependencyPragma(usize),
    #[error("the input read {0:?} on the worker; output withheld")]
    Read(String),
    #[error("the compiler wrote no dependency list; output withheld")]
    NoDeps,
    #[error("the input holds .incbin, with which the assembler reads files on the worker")]
    Incbin,
}

/// Refuses texts with `#pragma GCC dependency` (or its `_Pragma` form): a
/// line that holds both words, read as the preprocessor reads it, after
/// line splices (`\` + newline, blanks allowed between) are joined, so
/// `dep\` + newline + `endency` is caught too.
pub fn check_text(text: &[u8]) -> Result<(), FileAccess> {
    // The assembler's `.incbin "FILE"` (in an `asm` statement) reads FILE
    // where `as` runs, which no dependency list shows. A text job runs
    // among the worker's files: refused. (A hermetic job's sandbox holds
    // only the client's files; the client runs those locally.)
    if memchr::memmem::find(text, b"incbin").is_some() {
        return Err(FileAccess::Incbin);
    }
    let (joined, splices) = join_splices(text);
    let text = joined.as_deref().unwrap_or(text);
    for at in memchr::memmem::find_iter(text, b"dependency") {
        let start = memchr::memrchr(b'\n', &text[..at]).map_or(0, |n| n + 1);
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |n| at + n);
        if memchr::memmem::find(&text[start..end], b"ragma").is_some() {
            // The physical line the logical one starts on.
            let newlines = memchr::memchr_iter(b'\n', &text[..start]).count();
            let spliced = splices.iter().take_while(|p| **p < start).count();
            return Err(FileAccess::DependencyPragma(newlines + spliced + 1));
        }
    }
    Ok(())
}

/// `text` with its line splices removed (`None` when it has none, the
/// common case), and where each splice was, in the joined text.
fn join_splices(text: &[u8]) -> (Option<Vec<u8>>, Vec<usize>) {
    // A backslash, then blanks, then a newline (gcc accepts the blanks with
    // a warning).
    let splice_len = |at: usize| {
        let blanks = text[at + 1..]
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c'))
            .count();
        (text.get(at + 1 + blanks) == Some(&b'\n')).then_some(blanks + 2)
    };
    let mut joined: Option<Vec<u8>> = None;
    let mut splices = Vec::new();
    let mut kept = 0;
    for at in memchr::memchr_iter(b'\\', text) {
        if at < kept {
            continue;
        }
        let Some(len) = splice_len(at) else {
            continue;
        };
        let out = joined.get_or_insert_with(|| Vec::with_capacity(text.len()));
        out.extend_from_slice(&text[kept..at]);
        splices.push(out.len());
        kept = at + len;
    }
    if let Some(out) = &mut joined {
        out.extend_from_slice(&text[kept..]);
    }
    (joined, splices)
}

/// Splits a make-style dependency list into unescaped file names.
fn dep_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('\n') => {
                    chars.next();
                    if !current.is_empty() {
                        names.push(std::mem::take(&mut current));
                    }
                }
                Some(' ' | '#' | '\\') => current.push(chars.next().unwrap_or(' ')),
                _ => current.push('\\'),
            },
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                current.push('$');
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    names.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        names.push(current);
    }
    names
}

/// Checks the dependency list `deps` of a compile whose object is `object`
/// and whose only legitimate inputs are `inputs` (the input and the header
/// files the worker wrote for it).
pub fn check_deps(deps: Option<&str>, object: &str, inputs: &[&str]) -> Result<(), FileAccess> {
    let deps = deps.ok_or(FileAccess::NoDeps)?;
    let rest = deps
        .strip_prefix(object)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or(FileAccess::NoDeps)?;
    match dep_names(rest)
        .into_iter()
        .find(|name| !inputs.contains(&name.as_str()))
    {
        Some(other) => Err(FileAccess::Read(other)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_list_naming_only_the_input() {
        assert_eq!(
            check_deps(Some("/j/o.o: /j/in/a.c\n"), "/j/o.o", &["/j/in/a.c"]),
            Ok(())
        );
        assert_eq!(
            check_deps(
                Some("/j/o.o: /j/in/my\\ file.c\n"),
                "/j/o.o",
                &["/j/in/my file.c"]
            ),
            Ok(())
        );
        assert_eq!(
            check_deps(
                Some("/j/o.o: \\\n /j/in/a$$b.c\n"),
                "/j/o.o",
                &["/j/in/a$b.c"]
            ),
            Ok(())
        );
    }

    #[test]
    fn withholds_when_anything_else_was_read_or_the_list_is_missing() {
        assert_eq!(
            check_deps(
                Some("/j/o.o: /j/in/a.c \\\n /etc/passwd\n"),
                "/j/o.o",
                &["/j/in/a.c"]
            ),
            Err(FileAccess::Read("/etc/passwd".into()))
        );
        assert_eq!(
            check_deps(None, "/j/o.o", &["/j/in/a.c"]),
            Err(FileAccess::NoDeps)
        );
        assert_eq!(
            check_deps(Some("other: x"), "/j/o.o", &["x"]),
            Err(FileAccess::NoDeps)
        );
    }

    #[test]
    fn accepts_the_header_files_the_worker_wrote() {
        let deps = "/j/o.o: /j/in/a.c /j/ha/usr/include/s.h\n";
        let inputs = ["/j/in/a.c", "/j/ha/usr/include/s.h"];
        assert_eq!(check_deps(Some(deps), "/j/o.o", &inputs), Ok(()));
        assert!(check_deps(Some(deps), "/j/o.o", &inputs[..1]).is_err());
    }

    #[test]
    fn refuses_dependency_pragmas() {
        assert_eq!(
            check_text(b"int a;\n#pragma GCC dependency \"/etc/passwd\"\n"),
            Err(FileAccess::DependencyPragma(2))
        );
        assert_eq!(
            check_text(b"_Pragma(\"GCC dependency \\\"x\\\"\")"),
            Err(FileAccess::DependencyPragma(1))
        );
        assert_eq!(check_text(b"/* see #include <x.h> */\nint a;\n"), Ok(()));
        assert_eq!(check_text(b"a dependency\nno pragma\n"), Ok(()));
    }

    #[test]
    fn sees_dependency_pragmas_through_line_splices() {
        assert_eq!(
            check_text(b"int a;\n#pragma GCC dep\\\nendency \"/etc/passwd\"\n"),
            Err(FileAccess::DependencyPragma(2))
        );
        assert_eq!(
            check_text(b"\\\nint a;\n#pra\\ \t\ngma GCC \\\r\ndependency \"x\"\n"),
            Err(FileAccess::DependencyPragma(3))
        );
        assert_eq!(
            check_text(b"#pragma once\\\n\nint dependency;\n"),
            Ok(()),
            "a splice followed by an empty line ends the directive"
        );
        assert_eq!(check_text(b"char *s = \"\\\\\";\nint a;\\"), Ok(()));
    }
}

/// Properties of the dependency-list check over arbitrary lists and names.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// How gcc writes one name in a dependency list.
    fn escape(name: &str) -> String {
        name.replace(' ', "\\ ")
            .replace('#', "\\#")
            .replace('$', "$$")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_lists_and_texts_never_panic(
            deps in proptest::option::of(".{0,80}"),
            object in "[a-z/.]{0,6}",
            text in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let _ = check_deps(deps.as_deref(), &object, &["/j/in/a.c"]);
            let _ = check_text(&text);
        }

        /// Names as gcc escapes them, split over lines with `\`, read back
        /// as exactly those names; one more name is always reported.
        #[test]
        fn escaped_names_read_back(
            names in proptest::collection::vec("[a-zA-Z0-9_./ #$:-]{1,12}", 1..6),
            breaks in proptest::collection::vec(any::<bool>(), 6),
        ) {
            let mut list = "/j/o.o:".to_owned();
            for (name, wrap) in names.iter().zip(&breaks) {
                list.push_str(if *wrap { " \\\n " } else { " " });
                list.push_str(&escape(name));
            }
            list.push('\n');
            let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
            prop_assert_eq!(check_deps(Some(&list), "/j/o.o", &inputs), Ok(()));
            list.push_str(" /etc/passwd\n");
            prop_assert_eq!(
                check_deps(Some(&list), "/j/o.o", &inputs),
                Err(FileAccess::Read("/etc/passwd".to_owned()))
            );
        }
    }
}
