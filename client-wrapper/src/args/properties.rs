//! Properties over arbitrary command lines: real gcc options from a
//! vocabulary mixed with random words, empty words and `@file` response
//! files (nested, missing, devices). Classification never panics, is
//! deterministic, and the two command lines of a remote split classify
//! back to the same split.

use super::{classify, Classification};
use proptest::prelude::*;

/// Words gcc and clang command lines are made of, the awkward ones
/// included: options that take values, prefixes of other options,
/// inputs of every kind, and values that look like options.
const VOCABULARY: &[&str] = &[
    "-c",
    "-o",
    "-E",
    "-S",
    "-M",
    "-MM",
    "-MD",
    "-MMD",
    "-MF",
    "-MT",
    "-MQ",
    "-MP",
    "-MG",
    "-MJ",
    "-x",
    "c",
    "c++",
    "none",
    "cpp-output",
    "assembler",
    "c-header",
    "f95",
    "-I",
    "-Iinc",
    "-I-",
    "-D",
    "-DX=1",
    "-DY",
    "-U",
    "-UX",
    "-include",
    "pch.h",
    "-include-pch",
    "-imacros",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-iplugindir=x",
    "-ifoo",
    "-g",
    "-g0",
    "-g3",
    "-ggdb",
    "-gdwarf-4",
    "-gsplit-dwarf",
    "-gz",
    "-gno-column-info",
    "-O0",
    "-O2",
    "-Os",
    "-Wall",
    "-Werror",
    "-Wp,-MD,dep.d",
    "-Wp,-MMD,-",
    "-Wp,-E",
    "-Wp,-C",
    "-Wp,",
    "-Wa,-adhln=x.lst",
    "-Wa,--noexecstack",
    "-Wa,",
    "-Wl,-z,now",
    "-Xpreprocessor",
    "-Xlinker",
    "-Xassembler",
    "-Xclang",
    "-fcolor-diagnostics",
    "-Xarch_x86_64",
    "-C",
    "-CC",
    "-P",
    "-H",
    "-fPIC",
    "-fno-working-directory",
    "-fworking-directory",
    "-fsyntax-only",
    "-fplugin=x.so",
    "-fprofile-use",
    "-fprofile-generate",
    "-fprofile-arcs",
    "--coverage",
    "-fdump-tree-all",
    "-fstack-usage",
    "-fdirectives-only",
    "-fpreprocessed",
    "-fpch-preprocess",
    "-fdebug-prefix-map=/a=/b",
    "-fmacro-prefix-map=/a=.",
    "-fsanitize=address",
    "-fsanitize-ignorelist=x",
    "-fmodules",
    "-march=native",
    "-march=x86-64",
    "-mavx2",
    "-std=c11",
    "-std=gnu++17",
    "-pedantic",
    "-pthread",
    "-pipe",
    "-B",
    "/opt/bin",
    "-specs",
    "-specs=x",
    "-wrapper",
    "-save-temps",
    "-dumpbase",
    "-aux-info",
    "-dM",
    "-dD",
    "-d",
    "-v",
    "--version",
    "-###",
    "-print-file-name=x",
    "--help=x",
    "-undef",
    "-emit-llvm",
    "--param",
    "max-inline-insns-single=5",
    "--sysroot",
    "--sysroot=/s",
    "-target",
    "--target=x86_64-linux-gnu",
    "-arch",
    "x86_64",
    "-framework",
    "--foo",
    "-lm",
    "-L.",
    "-static",
    "-shared",
    "-nostdinc",
    "-traditional-cpp",
    "-fdebug-compilation-dir",
    ".",
    "a.c",
    "b.c",
    "src/a.c",
    "../up/a.c",
    "a.cpp",
    "a.C",
    "a.i",
    "a.ii",
    "a.m",
    "a.mm",
    "a.s",
    "a.S",
    "h.h",
    "a.f90",
    "lib.a",
    "a.o",
    ".c",
    "a.",
    "-",
    "--",
    "/dev/null",
    "/dev/stdout",
    "obj/a.o",
    "a.d",
    "",
    "@",
    "@rsp0",
    "@rsp1",
    "@rsp2",
    "@missing",
    "@.",
    "@/dev/null",
    "@/dev/zero",
    "@/nonexistent/rsp",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(VOCABULARY).prop_map(str::to_owned),
        1 => "-[a-zA-Z0-9=,._/+-]{0,10}",
        1 => ".{0,8}",
        1 => Just(String::new()),
    ]
}

fn argv() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(word(), 0..14)
}

/// Words of command lines that go remote, and values that look like
/// options (`-D -E`).
const REMOTE_WORDS: &[&str] = &[
    "-O2",
    "-g",
    "-g0",
    "-Wall",
    "-DX=1",
    "-D",
    "-E",
    "-Iinc",
    "-I",
    "inc",
    "-MD",
    "-MMD",
    "-MF",
    "dep.d",
    "-MT",
    "t",
    "-MQ",
    "$q",
    "-MP",
    "-fPIC",
    "-std=c11",
    "-x",
    "c",
    "c++",
    "-include",
    "h.h",
    "-isystem",
    "/usr/inc",
    "--param",
    "max-inline-insns-single=5",
    "-G",
    "8",
    "-Xclang",
    "-fcolor-diagnostics",
    "-C",
    "-P",
    "-fno-working-directory",
    "-fdebug-prefix-map=/a=/b",
    "-fmacro-prefix-map=/a=.",
    "-Wa,--noexecstack",
    "-pipe",
    "-Wp,-MD,dep.d",
    "-lm",
    "-L.",
    "-static",
    "-nostdinc",
    "-undef",
    "-target",
    "x86_64",
    "-fdebug-compilation-dir",
    ".",
    "-Xlinker",
    "-o",
    "-U",
    "-Wp,-DX",
];

/// A compile command line: `-c`, one source and maybe `-o` among
/// mostly harmless words, so that a good share of them go remote.
fn compile_line() -> impl Strategy<Value = Vec<String>> {
    let source = proptest::sample::select(&["a.c", "src/b.cpp", "x.i", "../m.m", "-"][..]);
    let output = proptest::option::of(proptest::sample::select(&["a.o", "obj/x.o"][..]));
    let word = prop_oneof![
        4 => proptest::sample::select(REMOTE_WORDS).prop_map(str::to_owned),
        1 => word(),
    ];
    (
        proptest::collection::vec(word, 0..8),
        source,
        output,
        any::<usize>(),
    )
        .prop_map(|(mut words, source, output, at)| {
            words.insert(at % (words.len() + 1), "-c".to_owned());
            words.insert((at / 7) % (words.len() + 1), source.to_owned());
            if let Some(o) = output {
                words.insert((at / 49) % (words.len() + 1), o.to_owned());
                words.insert((at / 49) % (words.len() + 1), "-o".to_owned());
            }
            words
        })
}

/// A response file's text: words, quoted or escaped the ways
/// libiberty reads them, or arbitrary text.
fn response_text() -> impl Strategy<Value = String> {
    let quoted = (word(), 0..4u8).prop_map(|(w, how)| match how {
        0 => format!("'{w}'"),
        1 => format!("\"{w}\""),
        2 => w.replace(' ', "\\ "),
        _ => w,
    });
    prop_oneof![
        4 => proptest::collection::vec(quoted, 0..8).prop_map(|w| w.join(" \n\t")),
        1 => ".{0,40}",
    ]
}

/// A working directory holding up to three response files, a
/// precompiled header and a directory.
fn project(files: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("rsp{i}")), text).unwrap();
    }
    std::fs::write(dir.path().join("pch.h.gch"), "gch").unwrap();
    std::fs::create_dir(dir.path().join("inc")).unwrap();
    dir
}

fn no_env(_: &str) -> Option<String> {
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classification_is_total_and_deterministic(
        args in argv(),
        files in proptest::collection::vec(response_text(), 0..3),
    ) {
        let dir = project(&files);
        let first = classify(&args, dir.path(), &no_env);
        let second = classify(&args, dir.path(), &no_env);
        match (&first, &second) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => {
                let message = a.to_string();
                prop_assert_eq!(&message, &b.to_string());
                prop_assert!(!message.contains('\n'), "{}", message);
            }
            _ => prop_assert!(false, "{first:?} then {second:?}"),
        }
        if let Ok(Classification::Local(reason)) = &first {
            let shown = reason.to_string();
            prop_assert!(!shown.is_empty() && !shown.contains('\n'));
        }
    }

    /// The two halves of a split, run as command lines of their own,
    /// classify back to the same split: the worker's compile of the
    /// preprocessed text is itself a remote compile with the same
    /// arguments, and the preprocessing step with `-c` for `-E` is the
    /// same compile with every derived dependency option explicit.
    #[test]
    fn a_remote_split_classifies_back_to_itself(
        args in prop_oneof![1 => argv(), 3 => compile_line()],
        files in proptest::collection::vec(response_text(), 0..3),
    ) {
        let dir = project(&files);
        let Ok(Classification::Remote(job)) = classify(&args, dir.path(), &no_env) else {
            return Ok(());
        };
        prop_assert!(!job.output.is_empty() && job.output != "-");
        prop_assert!(!job.output.starts_with("/dev/"));
        prop_assert_eq!(job.preprocessed_input, job.preprocess_args.is_empty());

        let mut worker = job.compile_args.clone();
        worker.extend(
            ["-x", job.remote_language, "-c", "job.i", "-o", "out.o"].map(str::to_owned),
        );
        let back = classify(&worker, dir.path(), &no_env).unwrap();
        let Classification::Remote(back) = back else {
            return Err(TestCaseError::fail(format!("worker line {worker:?}: {back:?}")));
        };
        prop_assert_eq!(&back.compile_args, &job.compile_args);
        prop_assert_eq!(back.source.as_str(), "job.i");
        prop_assert_eq!(back.output.as_str(), "out.o");
        prop_assert!(back.preprocessed_input);
        prop_assert_eq!(back.remote_language, job.remote_language);

        // Only when the -E the split added is the only one: a value
        // (`-D -E`) can be spelled the same.
        if job.preprocess_args.iter().filter(|a| *a == "-E").count() == 1 {
            let again: Vec<String> = job
                .preprocess_args
                .iter()
                .map(|a| if a == "-E" { "-c".to_owned() } else { a.clone() })
                .collect();
            let back = classify(&again, dir.path(), &no_env).unwrap();
            let Classification::Remote(back) = back else {
                return Err(TestCaseError::fail(format!("{again:?}: {back:?}")));
            };
            prop_assert_eq!(&back.source, &job.source);
            prop_assert_eq!(back.language, job.language);
            prop_assert_eq!(&back.preprocess_args, &job.preprocess_args);
            prop_assert_eq!(&back.compile_args, &job.compile_args);
        }
    }

    /// Arguments that are not UTF-8 reach `gridcc explain` as
    /// `OsString`s: an answer, never a panic.
    #[test]
    fn explain_takes_any_os_string(
        args in argv(),
        raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..3),
        json in any::<bool>(),
    ) {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let mut argv: Vec<OsString> = ["gridcc", "explain"].map(OsString::from).to_vec();
        if json {
            argv.push("--json".into());
        }
        argv.push("gcc".into());
        argv.extend(args.into_iter().map(OsString::from));
        argv.extend(raw.into_iter().map(OsString::from_vec));
        prop_assert_eq!(crate::cli::main(argv), 0);
    }
}
