//! Target `args`: one argument per line (a real command line without the
//! compiler, as `tr ' ' '\n'` gives it). A line `@rspN:TEXT` (N = 0, 1, 2)
//! is not an argument but the text of response file `rspN` in the working
//! directory (`\n` in TEXT for a newline); `$NAME=VALUE` sets an
//! environment variable for the classifier. The working directory also
//! holds `pch.h.gch` and a directory `inc`.
//!
//! Properties: classification never panics and is deterministic; a remote
//! split's worker line (`compile_args -x LANG -c job.i -o out.o`) is remote
//! with the same compile arguments, and its preprocess line with `-c` for
//! its one `-E` is remote with the same source, language and arguments.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gridcc_client::args::{classify, Classification};

/// The working directory, made once per process.
fn cwd() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("gridcc-fuzz-args-")
            .tempdir()
            .expect("temp dir")
            .keep();
        std::fs::write(dir.join("pch.h.gch"), "gch").expect("pch");
        std::fs::create_dir(dir.join("inc")).expect("inc");
        dir
    })
}

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut args = Vec::new();
    let mut env = Vec::new();
    let mut files: [Option<String>; 3] = [None, None, None];
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix("@rsp") {
            if let Some((n, body)) = rest.split_once(':') {
                if let Ok(n @ 0..=2) = n.parse::<usize>() {
                    files[n] = Some(body.replace("\\n", "\n"));
                    continue;
                }
            }
        }
        if let Some((name, value)) = line.strip_prefix('$').and_then(|l| l.split_once('=')) {
            env.push((name.to_owned(), value.to_owned()));
            continue;
        }
        args.push(line.to_owned());
    }
    let dir = cwd();
    for (n, body) in files.iter().enumerate() {
        let path = dir.join(format!("rsp{n}"));
        match body {
            Some(b) => std::fs::write(&path, b).expect("response file"),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let env = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let first = classify(&args, dir, &env);
    let second = classify(&args, dir, &env);
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "not deterministic: {args:?}"
    );
    match &first {
        Err(e) => assert!(!e.to_string().contains('\n'), "two-line error: {e}"),
        Ok(Classification::Local(reason)) => {
            let shown = reason.to_string();
            assert!(!shown.is_empty() && !shown.contains('\n'), "{shown:?}");
        }
        Ok(Classification::Remote(job)) => {
            assert!(
                !job.output.is_empty() && job.output != "-" && !job.output.starts_with("/dev/"),
                "{args:?} -> {job:?}"
            );
            let no_env = |_: &str| None;
            let mut worker = job.compile_args.clone();
            worker.extend(
                ["-x", job.remote_language, "-c", "job.i", "-o", "out.o"].map(str::to_owned),
            );
            match classify(&worker, dir, &no_env) {
                Ok(Classification::Remote(back)) => {
                    assert_eq!(back.compile_args, job.compile_args, "{args:?}");
                    assert!(back.preprocessed_input && back.source == "job.i");
                }
                other => panic!("{args:?}: worker line {worker:?} gives {other:?}"),
            }
            if job.preprocess_args.iter().filter(|a| *a == "-E").count() == 1 {
                let again: Vec<String> = job
                    .preprocess_args
                    .iter()
                    .map(|a| {
                        if a == "-E" {
                            "-c".to_owned()
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                match classify(&again, dir, &no_env) {
                    Ok(Classification::Remote(back)) => {
                        assert_eq!(back.source, job.source, "{args:?}");
                        assert_eq!(back.language, job.language, "{args:?}");
                        assert_eq!(back.preprocess_args, job.preprocess_args, "{args:?}");
                        assert_eq!(back.compile_args, job.compile_args, "{args:?}");
                    }
                    other => panic!("{args:?}: preprocess line {again:?} gives {other:?}"),
                }
            }
        }
    }
}
