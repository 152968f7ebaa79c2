//! From what the walk saw to a [`Classification`]: which reason to stay
//! local wins, the checks on the one input and the one output, and the two
//! command lines of a remote split.

use super::Scan;
use crate::args::input::{default_object, InputKind};
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
        if self.deps.to_stdout() {
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
            dep_files = self
                .deps
                .make_explicit(&input.path, &self.outputs, &mut preprocess_args);
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

#[cfg(test)]
mod tests {
    use crate::args::classify;
    use crate::args::tests::{gcc, no_env, project, remote, run, words};
    use crate::args::Classification;

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
