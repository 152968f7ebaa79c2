//! `@file` response files, expanded the way gcc's driver does
//! (libiberty's `expandargv` and `buildargv`), within limits that leave a
//! stray `@big.log` or `@/dev/zero` to the real compiler.

use std::path::Path;

/// A command line that cannot even be read.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("response file {path}: {source}")]
    ResponseFileUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("response file {path} is a directory")]
    ResponseFileIsDirectory { path: String },
    #[error("response file {path} is not valid UTF-8")]
    ResponseFileNotUtf8 { path: String },
    #[error("too many response files (more than {limit} @file expansions; recursive?)")]
    TooManyResponseFiles { limit: usize },
    #[error("response file {path} is not a regular file")]
    ResponseFileNotRegular { path: String },
    #[error("response files hold more than {limit} bytes")]
    ResponseFilesTooLarge { limit: u64 },
}

/// gcc (libiberty's `expandargv`) gives up after this many expansions.
const RESPONSE_FILE_LIMIT: usize = 2000;

/// Most bytes read from all the response files of one command line. Far
/// above any real build's (Linux allows 2 MiB of arguments and a command
/// line of 32 000 characters is already rare), small enough that a stray
/// `@big.log` cannot exhaust memory; past it the compile runs locally.
const RESPONSE_BYTES_LIMIT: u64 = 64 * 1024 * 1024;

/// Expands `@file` arguments the way gcc's driver does: recursively, with
/// libiberty's quoting rules, relative to the working directory, and leaving
/// an `@file` that cannot be opened as a literal argument.
pub fn expand_response_files(args: &[String], cwd: &Path) -> Result<Vec<String>, ArgsError> {
    let mut out: Vec<String> = args.to_vec();
    let mut expansions = 0usize;
    let mut budget = RESPONSE_BYTES_LIMIT;
    let mut i = 0usize;
    while i < out.len() {
        let Some(name) = out[i].strip_prefix('@') else {
            i += 1;
            continue;
        };
        // gcc stats the name as written, and "" names nothing (joined to
        // cwd it would name the working directory).
        if name.is_empty() {
            i += 1;
            continue;
        }
        let path = cwd.join(name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            // gcc: "if (!f) continue;" — the argument stays as it is.
            Err(_) => {
                i += 1;
                continue;
            }
        };
        if meta.is_dir() {
            return Err(ArgsError::ResponseFileIsDirectory {
                path: name.to_owned(),
            });
        }
        expansions += 1;
        if expansions > RESPONSE_FILE_LIMIT {
            return Err(ArgsError::TooManyResponseFiles {
                limit: RESPONSE_FILE_LIMIT,
            });
        }
        let bytes = read_response_file(&path, name, &mut budget)?;
        let text = String::from_utf8(bytes).map_err(|_| ArgsError::ResponseFileNotUtf8 {
            path: name.to_owned(),
        })?;
        let inserted = split_response_file(&text);
        // The inserted arguments are scanned again from `i`, so nested
        // @files expand too (relative to cwd, as gcc does).
        out.splice(i..=i, inserted);
    }
    Ok(out)
}

/// Reads one response file, taking its size from `budget`. Only regular
/// files: `@/dev/zero` would never end and a FIFO could block forever, so
/// such command lines are left to the real compiler.
fn read_response_file(path: &Path, name: &str, budget: &mut u64) -> Result<Vec<u8>, ArgsError> {
    use std::io::Read;
    let unreadable = |source| ArgsError::ResponseFileUnreadable {
        path: name.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // The opened file's own metadata, so it cannot be swapped after a check.
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(ArgsError::ResponseFileNotRegular {
            path: name.to_owned(),
        });
    }
    let mut bytes = Vec::new();
    file.take(budget.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    *budget = budget
        .checked_sub(bytes.len() as u64)
        .ok_or(ArgsError::ResponseFilesTooLarge {
            limit: RESPONSE_BYTES_LIMIT,
        })?;
    Ok(bytes)
}

/// libiberty's `buildargv`: whitespace separates arguments; single and double
/// quotes group; a backslash escapes the next character everywhere.
fn split_response_file(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut arg = String::new();
        let (mut squote, mut dquote, mut escaped) = (false, false, false);
        while let Some(&c) = chars.peek() {
            if c.is_ascii_whitespace() && !squote && !dquote && !escaped {
                break;
            }
            chars.next();
            if escaped {
                escaped = false;
                arg.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if squote {
                if c == '\'' {
                    squote = false;
                } else {
                    arg.push(c);
                }
            } else if dquote {
                if c == '"' {
                    dquote = false;
                } else {
                    arg.push(c);
                }
            } else if c == '\'' {
                squote = true;
            } else if c == '"' {
                dquote = true;
            } else {
                arg.push(c);
            }
        }
        args.push(arg);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::classify;
    use crate::args::tests::{no_env, summary};

    #[test]
    fn response_files_expand_with_gcc_quoting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rsp"),
            "-c  'my file.c'\n\"-DX=\\\"y z\\\"\"\t-o obj/o.o @inner -DA=it\\'s ''\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("inner"), "-O2 -DIN='a b'").unwrap();
        let args = expand_response_files(&["-g".into(), "@rsp".into()], dir.path()).unwrap();
        assert_eq!(
            args,
            [
                "-g",
                "-c",
                "my file.c",
                "-DX=\"y z\"",
                "-o",
                "obj/o.o",
                "-O2",
                "-DIN=a b",
                "-DA=it's",
                ""
            ]
        );
    }

    #[test]
    fn response_file_edge_cases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("empty"), " \n\t ").unwrap();
        std::fs::write(d.join("self"), "-O2 @self").unwrap();
        std::fs::write(d.join("bad"), [b'-', b'D', 0xff, 0xfe]).unwrap();
        std::fs::create_dir(d.join("adir")).unwrap();
        std::fs::write(d.join("compile"), "-c a.c -o b.o").unwrap();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            expand_response_files(&s(&["@empty", "-c"]), d).unwrap(),
            ["-c"]
        );
        // A missing @file stays a literal argument, as gcc leaves it.
        assert_eq!(expand_response_files(&s(&["@nope"]), d).unwrap(), ["@nope"]);
        assert!(matches!(
            expand_response_files(&s(&["@self"]), d),
            Err(ArgsError::TooManyResponseFiles { .. })
        ));
        assert!(matches!(
            expand_response_files(&s(&["@bad"]), d),
            Err(ArgsError::ResponseFileNotUtf8 { .. })
        ));
        assert!(matches!(
            expand_response_files(&s(&["@adir"]), d),
            Err(ArgsError::ResponseFileIsDirectory { .. })
        ));
        let c = classify(&s(&["-O2", "@compile"]), d, &no_env).unwrap();
        assert_eq!(summary(&c), "remote a.c b.o");
        let c = classify(&s(&["-c", "@nope"]), d, &no_env).unwrap();
        assert_eq!(summary(&c), "local: linking (linker input @nope)");
        // The message is one line.
        let e = classify(&s(&["@self"]), d, &no_env)
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
    }

    /// Found while writing the fuzz targets: `@` joined the empty name to
    /// the working directory and failed as "a directory" where gcc keeps
    /// it as a literal argument, `@/dev/zero` read until memory ran out,
    /// and a huge file was read whole.
    #[test]
    fn response_files_that_are_empty_names_devices_or_huge() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            expand_response_files(&s(&["@", "-c"]), d).unwrap(),
            ["@", "-c"]
        );
        let c = classify(&s(&["-c", "a.c", "@"]), d, &no_env).unwrap();
        assert_eq!(summary(&c), "local: multiple source files");
        for device in ["@/dev/zero", "@/dev/null"] {
            assert!(matches!(
                expand_response_files(&s(&[device]), d),
                Err(ArgsError::ResponseFileNotRegular { .. })
            ));
        }
        let big = std::fs::File::create(d.join("big")).unwrap();
        big.set_len(RESPONSE_BYTES_LIMIT + 1).unwrap();
        assert!(matches!(
            expand_response_files(&s(&["@big"]), d),
            Err(ArgsError::ResponseFilesTooLarge { .. })
        ));
        // The limit is on all the files together.
        big.set_len(RESPONSE_BYTES_LIMIT / 2 + 1).unwrap();
        assert!(matches!(
            expand_response_files(&s(&["@big", "@big"]), d),
            Err(ArgsError::ResponseFilesTooLarge { .. })
        ));
    }
}
