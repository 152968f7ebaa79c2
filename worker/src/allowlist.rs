//! The arguments a worker accepts from a client for one compile.
//!
//! The client preprocesses locally and sends only compile flags; the worker
//! adds `-x <language> -c <input> -o <output>` itself and runs the compiler
//! in a private temp dir. Anything that could read or write a file outside
//! that dir, load code into the compiler, run another program, or change
//! what kind of output is produced is refused. The check is an allowlist in
//! spirit: options that take a separate value are only accepted when the
//! option is known, so a value can never smuggle in an input or an option.

/// One refused argument, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused compiler argument {arg:?}: {why}")]
pub struct Refused {
    /// The argument as the client sent it.
    pub arg: String,
    /// Why it is refused.
    pub why: &'static str,
}

/// Options with a separate value that are safe with any value not starting
/// with `-` or `@` and naming no path outside the job directory (as their
/// joined `--param=…` spellings are checked).
const SAFE_WITH_VALUE: &[&str] = &["--param", "-target", "-arch", "-G", "-mthread-model"];

/// `-Xclang` values that only change how diagnostics look.
const HARMLESS_XCLANG: &[&str] = &[
    "-fcolor-diagnostics",
    "-fno-color-diagnostics",
    "-fdiagnostics-show-option",
];

/// `=`-options whose value is a path mapping or a directory name written
/// into debug info, never opened.
const PATH_VALUE_OK: &[&str] = &[
    "-fdebug-prefix-map=",
    "-ffile-prefix-map=",
    "-fmacro-prefix-map=",
    "-fprofile-prefix-map=",
    "-fdebug-compilation-dir=",
    "-ffile-compilation-dir=",
    "-fcoverage-compilation-dir=",
];

/// Prefixes refused outright, with the reason.
const REFUSED_PREFIXES: &[(&str, &str)] = &[
    ("-fplugin", "loads a compiler plugin"),
    ("-iplugindir", "loads a compiler plugin"),
    ("-B", "runs programs from another directory"),
    ("-specs", "reads a spec file"),
    ("--specs", "reads a spec file"),
    ("-wrapper", "runs the compiler under another program"),
    ("-o", "the worker names the output"),
    ("-x", "the worker sets the language"),
    ("-c", "the worker adds -c"),
    ("-E", "changes the output kind"),
    ("-S", "changes the output kind"),
    ("-fsyntax-only", "changes the output kind"),
    ("-M", "dependency files are written by the client"),
    ("-I", "preprocessing is done by the client"),
    ("-i", "preprocessing is done by the client"),
    ("-F", "preprocessing is done by the client"),
    ("-nostdinc", "preprocessing is done by the client"),
    ("--sysroot", "preprocessing is done by the client"),
    ("-Wp,", "preprocessing is done by the client"),
    ("-Xpreprocessor", "preprocessing is done by the client"),
    ("-Wl,", "linker options are not used on a worker"),
    ("-Xlinker", "linker options are not used on a worker"),
    ("-L", "linker options are not used on a worker"),
    ("-l", "linker options are not used on a worker"),
    ("-T", "linker options are not used on a worker"),
    ("-fprofile", "profile data names files"),
    ("-fauto-profile", "profile data names files"),
    ("-fbranch-probabilities", "profile data names files"),
    ("-fcs-profile", "profile data names files"),
    ("--coverage", "writes coverage files"),
    ("-ftest-coverage", "writes coverage files"),
    ("-fcoverage-mapping", "writes coverage files"),
    ("-fdump", "writes dump files"),
    ("-d", "writes dump files"),
    (
        "-fcompare-debug",
        "runs the compiler twice and writes dump files",
    ),
    (
        "-fdiagnostics-generate-patch",
        "reads the files line markers name to print a patch",
    ),
    (
        "-fdiagnostics-format=sarif",
        "reads the files line markers name into its output",
    ),
    ("-fstack-usage", "writes extra files"),
    ("-fcallgraph-info", "writes extra files"),
    ("-save-temps", "writes extra files"),
    ("-aux-info", "writes extra files"),
    ("-fsave-optimization-record", "writes extra files"),
    ("-foptimization-record-file", "writes extra files"),
    ("-ftime-trace", "writes extra files"),
    ("-fcrash-diagnostics", "writes extra files"),
    ("-serialize-diagnostics", "writes extra files"),
    ("-gsplit-dwarf", "writes extra files"),
    ("-fmodule", "reads module files"),
    ("-fprebuilt-module", "reads module files"),
    ("-Xassembler", "assembler option not on the allowlist"),
    ("-Xclang", "clang option not on the allowlist"),
    ("-X", "passes options to another tool"),
    ("-mllvm", "LLVM option not on the allowlist"),
    (
        "-resource-dir",
        "reads compiler files from another directory",
    ),
    (
        "-gcc-toolchain",
        "reads compiler files from another directory",
    ),
    (
        "--gcc-toolchain",
        "reads compiler files from another directory",
    ),
    ("-working-directory", "changes directory"),
    ("-framework", "linker option"),
];

/// Checks the compile arguments a client sent.
pub fn check(args: &[String]) -> Result<(), Refused> {
    let refuse = |arg: &str, why: &'static str| Refused {
        arg: arg.to_owned(),
        why,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if !arg.starts_with('-') || arg == "-" {
            return Err(refuse(
                arg,
                "not an option (inputs, @files and stray values are refused)",
            ));
        }
        if SAFE_WITH_VALUE.contains(&arg) {
            match args.get(i) {
                Some(v) if !v.starts_with('-') && !v.starts_with('@') && !escapes(v) => {
                    i += 1;
                    continue;
                }
                _ => return Err(refuse(arg, "missing or suspicious value")),
            }
        }
        if arg == "-Xclang" {
            match args.get(i) {
                Some(v) if HARMLESS_XCLANG.contains(&v.as_str()) => {
                    i += 1;
                    continue;
                }
                _ => return Err(refuse(arg, "clang option not on the allowlist")),
            }
        }
        if arg == "-Xassembler" {
            match args.get(i) {
                Some(v) if v.starts_with('-') && assembler_option_ok(v) => {
                    i += 1;
                    continue;
                }
                _ => return Err(refuse(arg, "assembler option not on the allowlist")),
            }
        }
        if let Some(list) = arg.strip_prefix("-Wa,") {
            if !list.split(',').all(assembler_option_ok) {
                return Err(refuse(arg, "assembler option that names a file"));
            }
            continue;
        }
        if let Some((_, why)) = REFUSED_PREFIXES.iter().find(|(p, _)| arg.starts_with(p)) {
            return Err(refuse(arg, why));
        }
        if arg.starts_with("--") && !arg.starts_with("--param=") && !arg.starts_with("--target=") {
            return Err(refuse(arg, "unknown long option"));
        }
        if arg.starts_with("-f") && arg.contains("-file") {
            return Err(refuse(arg, "names a file"));
        }
        if let Some((_, value)) = arg.split_once('=') {
            if !PATH_VALUE_OK.iter().any(|p| arg.starts_with(p)) && escapes(value) {
                return Err(refuse(arg, "names a path outside the job directory"));
            }
        }
    }
    Ok(())
}

/// Whether one `-Wa,` sub-option is safe: no listings, no output or include
/// files, no response files, no paths.
fn assembler_option_ok(sub: &str) -> bool {
    const BAD: &[&str] = &[
        "-a",
        "-o",
        "--MD",
        "-MD",
        "-I",
        "@",
        "--listing",
        "-Z",
        "-g",
        "--gen-debug",
    ];
    !BAD.iter().any(|b| sub.starts_with(b)) && !escapes(sub) && !sub.contains('/')
}

/// Whether a value could name a file outside the job directory: an absolute
/// path, a `..` component, a home directory, or a list holding one.
fn escapes(value: &str) -> bool {
    value.split([',', ':', '=', ';']).any(|part| {
        part.starts_with('/') || part.starts_with('~') || part.split('/').any(|c| c == "..")
    })
}

/// What a hermetic job's command line may not hold: anything that writes
/// a file besides the object, runs another program or loads code into the
/// compiler, changes the output kind, or links. Reading is not the
/// concern there: the sandbox holds only the job's own files.
const REFUSED_HERMETIC: &[(&str, &str)] = &[
    ("-o", "the object is named once, last"),
    ("-c", "-c is given once, last"),
    ("-E", "changes the output kind"),
    ("-S", "changes the output kind"),
    ("-fsyntax-only", "changes the output kind"),
    ("-M", "dependency files are written by the client"),
    ("-Wp,", "preprocessor options may write files"),
    ("-Xpreprocessor", "preprocessor options may write files"),
    ("-fplugin", "loads a compiler plugin"),
    ("-iplugindir", "loads a compiler plugin"),
    ("-B", "runs programs from another directory"),
    ("-specs", "reads a spec file"),
    ("--specs", "reads a spec file"),
    ("-wrapper", "runs the compiler under another program"),
    ("-save-temps", "writes temporary files next to the object"),
    ("-fdump", "writes dump files"),
    ("-d", "writes dump files"),
    ("-fstack-usage", "writes a file besides the object"),
    ("-fcallgraph-info", "writes a file besides the object"),
    ("-gsplit-dwarf", "writes a file besides the object"),
    ("-aux-info", "writes a file besides the object"),
    ("-fopt-info", "may write a file besides the object"),
    ("--coverage", "writes coverage files"),
    ("-ftest-coverage", "writes coverage files"),
    ("-fprofile", "profile data names files"),
    ("-fauto-profile", "profile data names files"),
    ("-fbranch-probabilities", "profile data names files"),
    ("-fcs-profile", "profile data names files"),
    ("-Wl,", "linker options are not used on a worker"),
    ("-Xlinker", "linker options are not used on a worker"),
    ("-L", "linker options are not used on a worker"),
    ("-l", "linker options are not used on a worker"),
    ("-T", "linker options are not used on a worker"),
    ("-Xassembler", "assembler options may write files"),
    ("@", "response files are expanded by the client"),
];

/// Checks a hermetic job's command line: its options, then `-c SOURCE -o
/// OBJECT` last, OBJECT naming `object` (absolute, from `cwd`).
pub fn check_hermetic(
    argv: &[String],
    source: &str,
    object: &str,
    cwd: &str,
) -> Result<(), Refused> {
    let refuse = |arg: &str, why| {
        Err(Refused {
            arg: arg.to_owned(),
            why,
        })
    };
    let Some((options, [c, src, o, out])) = argv.split_last_chunk::<4>() else {
        return refuse("", "the command line must end in -c SOURCE -o OBJECT");
    };
    let joined = if out.starts_with('/') {
        out.clone()
    } else {
        format!("{cwd}/{out}")
    };
    // `.` and `..` taken lexically, as the client made the object's path.
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return refuse(out, "the object's path leaves /");
                }
            }
            p => parts.push(p),
        }
    }
    let named = format!("/{}", parts.join("/"));
    if c != "-c" || o != "-o" || src != source || named != object {
        return refuse(
            out,
            "the command line must end in -c SOURCE -o OBJECT, as named",
        );
    }
    for arg in options {
        if let Some(opts) = arg.strip_prefix("-Wa,") {
            if opts
                .split(',')
                .any(|o| !o.starts_with("--") || o.contains('=') || o.starts_with("--MD"))
            {
                return refuse(arg, "assembler options may write files");
            }
            continue;
        }
        if let Some((_, why)) = REFUSED_HERMETIC.iter().find(|(p, _)| arg.starts_with(p)) {
            return refuse(arg, why);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermetic_command_lines_end_in_their_source_and_object_and_write_nothing_else() {
        let argv = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let ok = |s: &str| check_hermetic(&argv(s), "a.c", "/p/o/a.o", "/p");
        assert!(ok("-O2 -Iinc -DX=1 -Wa,--noexecstack -c a.c -o o/a.o").is_ok());
        assert!(ok("-c a.c -o /p/o/a.o").is_ok());
        assert!(ok("-c a.c -o ./o/../o/a.o").is_ok());
        for bad in [
            "-c a.c -o o/b.o",
            "-c b.c -o o/a.o",
            "a.c -o o/a.o",
            "-fplugin=x.so -c a.c -o o/a.o",
            "-MD -c a.c -o o/a.o",
            "-fstack-usage -c a.c -o o/a.o",
            "-o x.o -c a.c -o o/a.o",
            "-Wa,-alh=l.txt -c a.c -o o/a.o",
            "@rsp -c a.c -o o/a.o",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    fn line(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    const ACCEPTED: &[&str] = &[
        "",
        "-O2",
        "-O2 -g -Wall -Wextra -Werror",
        "-std=gnu11 -pedantic",
        "-fPIC -fvisibility=hidden -ffunction-sections",
        "-march=x86-64-v3 -mtune=generic",
        "-flto -ffat-lto-objects",
        "-fsanitize=address,undefined",
        "-fdebug-prefix-map=/home/u/src=.",
        "-ffile-prefix-map=/home/u/src=/src",
        "-frandom-seed=abc",
        "-frecord-gcc-switches",
        "-fdiagnostics-color=always",
        "--param max-inline-insns-single=100",
        "--param=max-inline-insns-single=100",
        "-target x86_64-linux-gnu",
        "--target=aarch64-linux-gnu",
        "-arch x86_64",
        "-Wa,--noexecstack",
        "-Wa,--noexecstack,--compress-debug-sections",
        "-Xassembler --noexecstack",
        "-Xclang -fcolor-diagnostics",
        "-g -gdwarf-4 -gz",
        "-fdebug-compilation-dir=/home/u/src",
        "-undef",
        "-pthread -fopenmp",
        "-w",
        "-fopt-info-vec",
        "-ftime-report",
    ];

    const REFUSED: &[(&str, &str)] = &[
        ("a.c", "a.c"),
        ("-O2 /etc/passwd", "/etc/passwd"),
        ("@args", "@args"),
        ("-", "-"),
        ("-fplugin=/tmp/evil.so", "-fplugin=/tmp/evil.so"),
        ("-fplugin-arg-x-y=1", "-fplugin-arg-x-y=1"),
        ("-iplugindir=/p", "-iplugindir=/p"),
        ("-B/tmp/bin", "-B/tmp/bin"),
        ("-B /tmp/bin", "-B"),
        ("-specs=x", "-specs=x"),
        ("-specs x", "-specs"),
        // Found by accepted_arguments_hold_no_file_input_or_output: the
        // separate spelling took paths that `--param=…` refuses.
        ("--param /etc/passwd", "--param"),
        ("-target ../../x", "-target"),
        ("-wrapper gdb", "-wrapper"),
        ("-o /etc/x", "-o"),
        ("-o/etc/x", "-o/etc/x"),
        ("-x c", "-x"),
        ("-xc", "-xc"),
        ("-c", "-c"),
        ("-E", "-E"),
        ("-S", "-S"),
        ("-fsyntax-only", "-fsyntax-only"),
        ("-MD", "-MD"),
        ("-MF /tmp/x.d", "-MF"),
        ("-I/usr/include", "-I/usr/include"),
        ("-include /etc/passwd", "-include"),
        ("-imacros x.h", "-imacros"),
        ("-isystem /s", "-isystem"),
        ("-iquote q", "-iquote"),
        ("-idirafter d", "-idirafter"),
        ("-F/f", "-F/f"),
        ("-nostdinc", "-nostdinc"),
        ("--sysroot=/", "--sysroot=/"),
        ("--sysroot /", "--sysroot"),
        ("-Wp,-MD,/tmp/x", "-Wp,-MD,/tmp/x"),
        ("-Xpreprocessor -DX", "-Xpreprocessor"),
        ("-Wl,-T,/x", "-Wl,-T,/x"),
        ("-Xlinker -T", "-Xlinker"),
        ("-L/usr/lib", "-L/usr/lib"),
        ("-lm", "-lm"),
        ("-Tlink.ld", "-Tlink.ld"),
        ("-fprofile-use=/p", "-fprofile-use=/p"),
        ("-fprofile-generate", "-fprofile-generate"),
        ("-fprofile-arcs", "-fprofile-arcs"),
        ("-fauto-profile", "-fauto-profile"),
        ("-fbranch-probabilities", "-fbranch-probabilities"),
        ("--coverage", "--coverage"),
        ("-ftest-coverage", "-ftest-coverage"),
        ("-fdump-tree-all", "-fdump-tree-all"),
        ("-dA", "-dA"),
        ("-dumpdir /tmp/", "-dumpdir"),
        ("-dumpbase x", "-dumpbase"),
        ("-fcompare-debug", "-fcompare-debug"),
        ("-fcompare-debug-second", "-fcompare-debug-second"),
        (
            "-fdiagnostics-generate-patch",
            "-fdiagnostics-generate-patch",
        ),
        (
            "-fdiagnostics-format=sarif-stderr",
            "-fdiagnostics-format=sarif-stderr",
        ),
        ("-fstack-usage", "-fstack-usage"),
        ("-fcallgraph-info=su", "-fcallgraph-info=su"),
        ("-save-temps", "-save-temps"),
        ("-aux-info /tmp/x", "-aux-info"),
        ("-gsplit-dwarf", "-gsplit-dwarf"),
        ("-Wa,-adhln=/tmp/x.lst", "-Wa,-adhln=/tmp/x.lst"),
        ("-Wa,-al", "-Wa,-al"),
        ("-Wa,-I,/inc", "-Wa,-I,/inc"),
        ("-Wa,@file", "-Wa,@file"),
        ("-Wa,--defsym,x=/etc", "-Wa,--defsym,x=/etc"),
        ("-Xassembler -al=x", "-Xassembler"),
        ("-Xassembler", "-Xassembler"),
        ("-Xclang -load", "-Xclang"),
        ("-Xclang", "-Xclang"),
        ("-mllvm -x", "-mllvm"),
        ("--param", "--param"),
        ("--param -fplugin=x", "--param"),
        ("-target @x", "-target"),
        (
            "-fsanitize-ignorelist=/etc/x",
            "-fsanitize-ignorelist=/etc/x",
        ),
        ("-fsanitize-blacklist=../x", "-fsanitize-blacklist=../x"),
        ("-fsave-optimization-record", "-fsave-optimization-record"),
        ("-ftime-trace", "-ftime-trace"),
        ("-fmodules", "-fmodules"),
        ("-fmodule-file=/x.pcm", "-fmodule-file=/x.pcm"),
        (
            "-fdiagnostics-format=json-file",
            "-fdiagnostics-format=json-file",
        ),
        ("-fsomething=~/x", "-fsomething=~/x"),
        ("-fsomething=a/../../x", "-fsomething=a/../../x"),
        ("--output=x", "--output=x"),
        ("-resource-dir /r", "-resource-dir"),
        ("-serialize-diagnostics x", "-serialize-diagnostics"),
        ("-O2 -g -Wall x.o", "x.o"),
    ];

    #[test]
    fn accepted() {
        for args in ACCEPTED {
            assert_eq!(check(&line(args)), Ok(()), "{args}");
        }
    }

    #[test]
    fn refused() {
        for (args, culprit) in REFUSED {
            match check(&line(args)) {
                Ok(()) => panic!("{args}: accepted"),
                Err(e) => {
                    assert_eq!(e.arg, *culprit, "{args}");
                    let message = e.to_string();
                    assert!(
                        !message.contains('\n') && message.contains(culprit),
                        "{message}"
                    );
                }
            }
        }
    }
}

/// Properties over arbitrary argument lists: an answer, never a panic, and
/// nothing accepted that names a file, loads code or changes the output.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        let known = proptest::sample::select(
            &[
                "-O2",
                "-g",
                "-o",
                "-c",
                "-x",
                "c",
                "-B",
                "-Bx",
                "-fplugin=p.so",
                "-specs=s",
                "--param",
                "-target",
                "-arch",
                "-G",
                "-mthread-model",
                "-Xclang",
                "-Xassembler",
                "-fcolor-diagnostics",
                "-Wa,",
                "-Wa,--noexecstack",
                "-Wa,-a",
                "-Wa,@f",
                "-I",
                "-isystem",
                "/etc",
                "../x",
                "@rsp",
                "-",
                "--",
                "--param=x=1",
                "-fx-file=y",
                "-ffile-prefix-map=/a=/b",
                "-fa=/etc",
                "-D",
                "x=1",
                "",
            ][..],
        );
        prop_oneof![
            3 => known.prop_map(str::to_owned),
            1 => "-[a-zA-Z0-9=,./@~:;-]{0,10}",
            1 => ".{0,6}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn accepted_arguments_hold_no_file_input_or_output(
            args in proptest::collection::vec(word(), 0..10)
        ) {
            if check(&args).is_err() {
                return Ok(());
            }
            let mut i = 0;
            while i < args.len() {
                let arg = args[i].as_str();
                i += 1;
                prop_assert!(arg.starts_with('-') && arg != "-", "{args:?}");
                for bad in ["-o", "-c", "-x", "-B", "-fplugin", "-specs", "-wrapper", "-I", "-E"] {
                    prop_assert!(!arg.starts_with(bad), "{args:?} accepted {arg}");
                }
                if SAFE_WITH_VALUE.contains(&arg) || arg == "-Xclang" || arg == "-Xassembler" {
                    let value = &args[i];
                    prop_assert!(!value.starts_with('@') && !escapes(value), "{args:?}");
                    i += 1;
                }
            }
        }
    }
}
