//! From what the walk saw to a [`Classification`]: which reason to stay
//! local wins, the checks on the one input and the one output, and the two
//! command lines of a remote split, with the dependency-file options the
//! driver would derive made explicit.

use super::Scan;
use crate::args::input::{basename, default_object, strip_suffix, InputKind};
use crate::args::{Classification, Language, LocalReason, RemoteCompile};

impl Scan<'_> {
    pub(super) fn decide(self) -> Classification {
        use Classification::Local;
        if let Some(q) = self.query {
            return Local(LocalReason::Query(q));
        }
        if self.preprocess_only {
            return Local(LocalReason::PreprocessOnly);
        }
        if self.deps_only {
            return Local(LocalReason::DependenciesOnly);
        }
        if self.syntax_only {
            return Local(LocalReason::SyntaxOnly);
        }
        if self.assembly_output {
            return Local(LocalReason::AssemblyOutput);
        }
        if !self.compile {
            return Local(LocalReason::Linking);
        }
        if let Some(reason) = self.reason {
            return Local(reason);
        }
        let input = match self.inputs.as_slice() {
            [] => return Local(LocalReason::NoSource),
            [one] => one,
            many => {
                if many.iter().any(|i| i.path == "-") {
                    return Local(LocalReason::SourceFromStdin);
                }
                return Local(LocalReason::MultipleSources);
            }
        };
        if input.path == "-" {
            return Local(LocalReason::SourceFromStdin);
        }
        let language = match &input.kind {
            InputKind::Source(Language::Asm | Language::AsmCpp) => {
                return Local(LocalReason::Assembly)
            }
            InputKind::Source(l) => *l,
            InputKind::Header => return Local(LocalReason::HeaderCompile),
            InputKind::Unsupported(l) => return Local(LocalReason::UnsupportedLanguage(l.clone())),
            InputKind::Unknown(l) => return Local(LocalReason::UnknownLanguage(l.clone())),
            InputKind::Linker => return Local(LocalReason::LinkerInput(input.path.clone())),
        };
        let output = match self.outputs.as_slice() {
            [] => default_object(&input.path),
            [one] => one.clone(),
            _ => return Local(LocalReason::MultipleOutputs),
        };
        if output == "-" {
            return Local(LocalReason::OutputToStdout);
        }
        if output.is_empty() {
            return Local(LocalReason::EmptyOutputName);
        }
        if output.starts_with("/dev/") {
            return Local(LocalReason::OutputToDevice(output));
        }
        if self.dep_to_stdout {
            return Local(LocalReason::DependenciesToStdout);
        }
        if self.debug {
            if let Some(option) = self.recorded {
                return Local(LocalReason::RecordedPreprocessorOption(option));
            }
            if self.no_working_directory {
                return Local(LocalReason::NoWorkingDirectory);
            }
        }
        let Some(remote_language) = language.preprocessed_name() else {
            return Local(LocalReason::Assembly);
        };
        let preprocessed_input = language.is_preprocessed();
        let mut preprocess_args = Vec::new();
        let mut search_args = Vec::new();
        let mut dep_files = Vec::new();
        if !preprocessed_input {
            preprocess_args = self.pre;
            search_args = self.search;
            if self.md {
                // gcc's cpp_unique_options: %{MD:-MD %{!o:%b.d}%{o*:%.d%*}}
                // and, only when not -E, -MQ <output> when no -MT/-MQ.
                if !self.mf {
                    let dep = match self.outputs.first() {
                        Some(o) => replace_suffix(o, ".d"),
                        None => format!("{}.d", strip_suffix(basename(&input.path))),
                    };
                    preprocess_args.push("-MF".to_owned());
                    preprocess_args.push(dep.clone());
                    dep_files.push(dep);
                }
                dep_files.extend(self.mf_values);
                if !self.mt {
                    if let Some(o) = self.outputs.first() {
                        preprocess_args.push("-MQ".to_owned());
                        preprocess_args.push(o.clone());
                    }
                }
            }
            dep_files.extend(self.wp_dep_files);
        }
        Classification::Remote(RemoteCompile {
            source: input.path.clone(),
            output,
            language,
            preprocessed_input,
            preprocess_args,
            compile_args: self.comp,
            search_args,
            dep_files,
            remote_language,
        })
    }
}

/// gcc's `%.SUFFIX%*` (give_switch): drop the last `.suffix` of the last path
/// component, even a leading one, then append `suffix`.
fn replace_suffix(path: &str, suffix: &str) -> String {
    let dir_end = path.rfind('/').map_or(0, |p| p + 1);
    let stem = match path[dir_end..].rfind('.') {
        Some(pos) => &path[..dir_end + pos],
        None => path,
    };
    format!("{stem}{suffix}")
}

#[cfg(test)]
mod tests {
    use crate::args::classify;
    use crate::args::tests::{gcc, no_env, project, remote, run, words};
    use crate::args::Classification;
    use std::path::{Path, PathBuf};

    /// Exact preprocess and compile command lines.
    const SPLITS: &[(&str, &str, &str, &str)] = &[
        // (command, remote language, preprocess args, compile args)
        ("gcc -c a.c", "cpp-output", "-E a.c", ""),
        (
            "gcc -O2 -g -c src/a.c -o obj/a.o",
            "cpp-output",
            "-O2 -g -E src/a.c",
            "-O2 -g",
        ),
        (
            "g++ -std=c++17 -c a.cpp",
            "c++-cpp-output",
            "-std=c++17 -E a.cpp",
            "-std=c++17",
        ),
        ("gcc -c a.m", "objective-c-cpp-output", "-E a.m", ""),
        ("gcc -c a.mm", "objective-c++-cpp-output", "-E a.mm", ""),
        ("gcc -x c++ -c a.c", "c++-cpp-output", "-x c++ -E a.c", ""),
        (
            "gcc -I inc -Iinc2 -DX=1 -D Y -UZ -include c.h -isystem /s -O2 -c a.c -o a.o",
            "cpp-output",
            "-I inc -Iinc2 -DX=1 -D Y -UZ -include c.h -isystem /s -O2 -E a.c",
            "-O2",
        ),
        (
            "gcc -MD -c src/a.c -o obj/a.o",
            "cpp-output",
            "-MD -E src/a.c -MF obj/a.d -MQ obj/a.o",
            "",
        ),
        (
            "gcc -MD -c src/a.c",
            "cpp-output",
            "-MD -E src/a.c -MF a.d",
            "",
        ),
        (
            "gcc -MMD -MP -c a.c -o x/a.c.o",
            "cpp-output",
            "-MMD -MP -E a.c -MF x/a.c.d -MQ x/a.c.o",
            "",
        ),
        (
            "gcc -MD -MF x.d -MT t -c a.c -o a.o",
            "cpp-output",
            "-MD -MF x.d -MT t -E a.c",
            "",
        ),
        (
            "gcc -MD -MF x.d -c a.c -o o/a.o",
            "cpp-output",
            "-MD -MF x.d -E a.c -MQ o/a.o",
            "",
        ),
        (
            "gcc -MD -MQ t -c a.c -o o/a.o",
            "cpp-output",
            "-MD -MQ t -E a.c -MF o/a.d",
            "",
        ),
        (
            "gcc -MD -c a.c -o noext",
            "cpp-output",
            "-MD -E a.c -MF noext.d -MQ noext",
            "",
        ),
        (
            "gcc -MD -c a.c -o d.x/noext",
            "cpp-output",
            "-MD -E a.c -MF d.x/noext.d -MQ d.x/noext",
            "",
        ),
        (
            "gcc -Wp,-MD,.a.d -g -c a.c",
            "cpp-output",
            "-Wp,-MD,.a.d -g -E a.c",
            "-g",
        ),
        (
            "gcc -c a.c -Wall -Wa,--noexecstack -lm",
            "cpp-output",
            "-E a.c -Wall -Wa,--noexecstack",
            "-Wall -Wa,--noexecstack",
        ),
        ("gcc -c a.c -P -C", "cpp-output", "-E a.c -C", ""),
        (
            "gcc -fmacro-prefix-map=/a=b -fdebug-prefix-map=/a=b -c a.c",
            "cpp-output",
            "-fmacro-prefix-map=/a=b -fdebug-prefix-map=/a=b -E a.c",
            "-fdebug-prefix-map=/a=b",
        ),
        ("gcc -c a.i -O2 -DX", "cpp-output", "", "-O2"),
        ("gcc -undef -c a.c", "cpp-output", "-undef -E a.c", "-undef"),
        (
            "clang -emit-llvm -c a.c",
            "cpp-output",
            "-emit-llvm -E a.c",
            "-emit-llvm",
        ),
        ("gcc -I- -Iinc -c a.c", "cpp-output", "-I- -Iinc -E a.c", ""),
        (
            "gcc -e start -u sym -z now -c a.c",
            "cpp-output",
            "-E a.c",
            "",
        ),
        (
            "gcc -estart -usym -znow -Tl.ld -c a.c",
            "cpp-output",
            "-E a.c",
            "",
        ),
        ("g++ -c a.ii -O2", "c++-cpp-output", "", "-O2"),
        (
            "clang -target x86_64-linux-gnu -mllvm -x=1 -c a.c",
            "cpp-output",
            "-target x86_64-linux-gnu -mllvm -x=1 -E a.c",
            "-target x86_64-linux-gnu -mllvm -x=1",
        ),
        (
            "gcc --param max-unroll-times=4 -Xassembler --noexecstack -c a.c",
            "cpp-output",
            "--param max-unroll-times=4 -Xassembler --noexecstack -E a.c",
            "--param max-unroll-times=4 -Xassembler --noexecstack",
        ),
        (
            "gcc --sysroot /r --sysroot=/q -nostdinc -c a.c",
            "cpp-output",
            "--sysroot /r --sysroot=/q -nostdinc -E a.c",
            "",
        ),
    ];

    #[test]
    fn exact_splits() {
        for (line, lang, pre, comp) in SPLITS {
            let r = remote(line);
            assert_eq!(r.remote_language, *lang, "{line}");
            assert_eq!(r.preprocess_args, words(pre), "{line}");
            assert_eq!(r.compile_args, words(comp), "{line}");
            assert_eq!(r.preprocessed_input, pre.is_empty(), "{line}");
        }
    }

    #[test]
    fn search_args_keep_what_decides_the_include_path_and_write_nothing() {
        for (line, search) in [
            ("gcc -c a.c", ""),
            (
                "gcc -Iinc -MD -MF a.d -MT t -include h.h -c a.c -DX -o a.o -O2",
                "-Iinc -include h.h -DX -O2",
            ),
            (
                "gcc -c -x c a.c -isystem sys -Wp,-MD,a.d -MMD -MP -iquote q",
                "-x c -isystem sys -iquote q",
            ),
            ("gcc -c a.i", ""),
        ] {
            assert_eq!(remote(line).search_args, words(search), "{line}");
        }
    }

    #[test]
    fn dependency_files_are_named() {
        for (line, files) in [
            ("gcc -c a.c", ""),
            ("gcc -c a.c -MF x.d", ""),
            ("gcc -c a.c -o obj/a.o -MD", "obj/a.d"),
            ("gcc -c src/a.c -MMD", "a.d"),
            ("gcc -c a.c -MD -MFx.d", "x.d"),
            ("gcc -c a.c -Wp,-MD,.a.o.d", ".a.o.d"),
            ("gcc -c a.c -Wp,-MF,x.d", ""),
            ("gcc -c a.c -MD -MF x.d -Wp,-MMD,y.d", "x.d y.d"),
            ("gcc -c a.i -MD", ""),
        ] {
            assert_eq!(remote(line).dep_files, words(files), "{line}");
        }
    }

    fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    /// The files a command created or changed, minus the object.
    fn side_files(
        before: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
        after: std::collections::BTreeMap<PathBuf, Vec<u8>>,
        object: &str,
    ) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        after
            .into_iter()
            .filter(|(p, c)| before.get(p) != Some(c) && p != Path::new(object))
            .collect()
    }

    #[test]
    fn preprocess_args_write_the_same_dependency_files_as_gcc() {
        let Some(gcc) = gcc() else { return };
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("-Iinc -MD -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MMD -MP -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -MF x.d -MT t -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -MF x.d -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -MQ q$t -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -c src/a.c -o obj/sub/a.c.o", &[]),
            ("-Iinc -MD -c src/a.c -o obj/sub/a$x.o", &[]),
            ("-Iinc -MD -c src/a.c -o obj/noext", &[]),
            ("-Iinc -MMD -c src/a.c", &[]),
            ("-Iinc -MD -MP -c src/a.c", &[]),
            ("-Iinc -Wp,-MD,obj/.a.d -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -Wp,-MMD,obj/.a.d -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -Wp,-MT,extra -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -O2 -g -c src/a.c -o obj/a.o", &[("DEPENDENCIES_OUTPUT", "env.d")]),
            ("-Iinc -c src/a.c -o obj/a.o", &[("DEPENDENCIES_OUTPUT", "env.d my-target")]),
            ("-Iinc -c src/a.c -o obj/a.o", &[("SUNPRO_DEPENDENCIES", "sun.d")]),
            (
                "-DHAVE_CONFIG_H -I. -Iinc -g -O2 -MT foo.lo -MD -MP -MF obj/foo.Tpo -c src/a.c -fPIC -DPIC -o obj/sub/foo.o",
                &[],
            ),
            (
                "-DFOO -Iinc -O3 -DNDEBUG -std=gnu11 -MD -MT obj/a.c.o -MF obj/a.c.o.d -o obj/a.c.o -c src/a.c",
                &[],
            ),
        ];
        for (line, env) in cases {
            let dir = project();
            let d = dir.path();
            let args = words(line);
            let envf = |k: &str| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            };
            let Classification::Remote(job) = classify(&args, d, &envf).unwrap() else {
                panic!("{line}: not remote");
            };
            let before = snapshot(d);
            run(gcc, &args, d, env);
            let original = side_files(&before, snapshot(d), &job.output);
            assert!(!original.is_empty(), "{line}: gcc wrote no dependency file");

            let fresh = project();
            let f = fresh.path();
            let before = snapshot(f);
            let out = run(gcc, &job.preprocess_args, f, env);
            assert!(
                !out.stdout.is_empty(),
                "{line}: no preprocessed text on stdout"
            );
            let split = side_files(&before, snapshot(f), &job.output);
            assert_eq!(
                original.keys().collect::<Vec<_>>(),
                split.keys().collect::<Vec<_>>(),
                "{line}: different dependency files"
            );
            for (path, bytes) in &original {
                assert!(
                    split[path] == *bytes,
                    "{line}: {} differs:\n{}\n---\n{}",
                    path.display(),
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(&split[path])
                );
            }
        }
    }

    /// Preprocesses in the project directory, compiles the text the way a
    /// worker does (another directory, its own input name), and returns the
    /// original and the split object.
    fn both_objects(gcc: &str, line: &str, worker_input: &str) -> (Vec<u8>, Vec<u8>) {
        let dir = project();
        let d = dir.path();
        let line = line.replace("$DIR", &d.display().to_string());
        let args = words(&line);
        let Classification::Remote(job) = classify(&args, d, &no_env).unwrap() else {
            panic!("{line}: not remote");
        };
        run(gcc, &args, d, &[]);
        let original = std::fs::read(d.join(&job.output)).unwrap();
        let text = run(gcc, &job.preprocess_args, d, &[]).stdout;
        let worker = tempfile::tempdir().unwrap();
        let w = worker.path();
        std::fs::write(w.join(worker_input), text).unwrap();
        let mut compile = job.compile_args.clone();
        compile.extend(words(&format!(
            "-x {} -c {worker_input} -o out.o",
            job.remote_language
        )));
        run(gcc, &compile, w, &[]);
        (original, std::fs::read(w.join("out.o")).unwrap())
    }

    #[test]
    fn split_compile_gives_the_same_object_as_gcc() {
        let Some(gcc) = gcc() else { return };
        let lines = [
            "-O2 -g -Iinc -c src/a.c -o obj/a.o",
            "-O2 -g -Iinc -DFOO=1 -MD -MP -Wall -c src/a.c -o obj/sub/a.o",
            "-O2 -g -Iinc -fPIC -std=gnu11 -c src/a.c",
            "-O2 -g -gdwarf-4 -Iinc -c src/a.c -o obj/a.o",
            "-O2 -g -Iinc -fdebug-prefix-map=$DIR=. -c src/a.c -o obj/a.o",
            "-O2 -g -Iinc -x c++ -std=c++17 -c src/a.c -o obj/a.o",
            "-O2 -g -C -Iinc -g0 -c src/a.c -o obj/a.o",
            "-O2 -P -Iinc -c src/a.c -o obj/a.o",
            "-O0 -g -Iinc -c src/a.c -o obj/a.o",
            // Without debug info, macro expansion anywhere is fine.
            "-O2 -Iinc -c src/m.c -o obj/m.o",
            "-O2 -g0 -Iinc -c src/m.c -o obj/m.o",
        ];
        for line in lines {
            for input in ["in.i", "job-1234.ii", "x"] {
                let (original, split) = both_objects(gcc, line, input);
                assert!(
                    original == split,
                    "{line} (worker input {input}): objects differ"
                );
            }
        }
    }

    /// Documents a limit of compiling preprocessed text: with debug info,
    /// the line table's column numbers refer to the expanded text, so a
    /// macro that expands mid-line to text of another length moves the
    /// columns after it. The code itself is unchanged (see the -g0 lines
    /// above). distcc and icecream's plain-cpp mode have the same property.
    #[test]
    fn columns_move_with_macros() {
        let Some(gcc) = gcc() else { return };
        let (original, split) = both_objects(gcc, "-O2 -g -Iinc -c src/m.c -o obj/m.o", "in.i");
        assert!(
            original != split,
            "gcc now keeps columns through -E; update the module docs"
        );
        let (original, split) = both_objects(
            gcc,
            "-O2 -g -gno-column-info -Iinc -c src/m.c -o obj/m.o",
            "in.i",
        );
        assert!(
            original == split,
            "with -gno-column-info the objects should match"
        );
    }
}
