//! Options without a separate value: the driver's modes (`-c`, `-S`, `-E`,
//! `-M`, queries), debug info, and the `--…` and `-f…` families: where each
//! goes in the split, and which keep a compile local.

use super::{Dest, Scan};
use crate::args::LocalReason;

/// Queries that make the driver print something instead of compiling.
const QUERIES: &[&str] = &[
    "--version",
    "--help",
    "--target-help",
    "-###",
    "-v",
    "-Q",
    "-dumpversion",
    "-dumpfullversion",
    "-dumpmachine",
    "-dumpspecs",
    "--print-search-dirs",
];

/// Driver-only linker options with no value that are harmless with `-c`.
const LINK_FLAGS: &[&str] = &[
    "-static",
    "-shared",
    "-rdynamic",
    "-s",
    "-pie",
    "-no-pie",
    "-static-pie",
    "-nostdlib",
    "-nostartfiles",
    "-nodefaultlibs",
    "-nolibc",
    "-static-libgcc",
    "-shared-libgcc",
    "-static-libstdc++",
    "-static-libasan",
    "-static-libtsan",
    "-static-liblsan",
    "-static-libubsan",
    "-symbolic",
];

impl Scan<'_> {
    /// An option without a separate value.
    pub(super) fn flag(&mut self, arg: &str) {
        let dest = self.flag_dest(arg);
        self.push(dest, &[arg]);
    }

    fn flag_dest(&mut self, arg: &str) -> Dest {
        if QUERIES.contains(&arg)
            || arg.starts_with("-print-")
            || arg.starts_with("--print-")
            || arg.starts_with("--help=")
        {
            if self.query.is_none() {
                self.query = Some(arg.to_owned());
            }
            return Dest::Neither;
        }
        match arg {
            "-c" => {
                let first = !self.compile;
                self.compile = true;
                if first {
                    self.pre.push("-E".to_owned());
                }
                return Dest::Neither;
            }
            "-S" => {
                self.assembly_output = true;
                return Dest::Neither;
            }
            "-E" => {
                self.preprocess_only = true;
                return Dest::Neither;
            }
            "-M" | "-MM" => {
                self.deps_only = true;
                return Dest::Neither;
            }
            "-MD" | "-MMD" => {
                self.deps.md();
                return Dest::Preprocess;
            }
            "-MP" | "-MG" => return Dest::Preprocess,
            "-C" | "-CC" | "-H" => {
                self.record(arg);
                return Dest::Preprocess;
            }
            // Without linemarkers the remote object would lose its file and
            // line information; without -g the flag changes nothing in the
            // object, so the preprocess step keeps its linemarkers.
            "-P" => {
                self.record(arg);
                return Dest::Neither;
            }
            "-nostdinc" | "-nostdinc++" | "-nostdlibinc" | "-nobuiltininc" | "-I-" => {
                return Dest::Preprocess
            }
            "-undef" => return Dest::Both,
            "-emit-llvm" => return Dest::Both,
            "-traditional-cpp" | "-traditional" => {
                self.local(LocalReason::PreprocessorMode(arg.to_owned()));
                return Dest::Neither;
            }
            "-fsyntax-only" => {
                self.syntax_only = true;
                return Dest::Neither;
            }
            "--coverage" | "-ftest-coverage" | "-fcoverage-mapping" => {
                self.local(LocalReason::Coverage(arg.to_owned()));
                return Dest::Neither;
            }
            "-fbranch-probabilities" | "-fauto-profile" => {
                self.local(LocalReason::ProfileFeedback(arg.to_owned()));
                return Dest::Neither;
            }
            "-fstack-usage" => {
                self.local(LocalReason::ExtraOutput(arg.to_owned()));
                return Dest::Neither;
            }
            "-fpch-preprocess" => {
                self.local(LocalReason::PrecompiledHeader(arg.to_owned()));
                return Dest::Neither;
            }
            "-fdirectives-only" | "-fpreprocessed" => {
                self.local(LocalReason::PreprocessorMode(arg.to_owned()));
                return Dest::Neither;
            }
            "-fno-working-directory" => {
                self.no_working_directory = true;
                return Dest::Both;
            }
            "-fworking-directory" => {
                self.no_working_directory = false;
                return Dest::Both;
            }
            "-gsplit-dwarf" => {
                self.local(LocalReason::SplitDwarf);
                return Dest::Neither;
            }
            "-g3" | "-ggdb3" | "-gstabs3" | "-gstabs+3" | "-gxcoff3" | "-gxcoff+3" | "-gvms3"
            | "-gdwarf3" | "-fdebug-macro" => {
                self.local(LocalReason::MacroDebugInfo(arg.to_owned()));
                return Dest::Neither;
            }
            "-march=native" | "-mtune=native" | "-mcpu=native" => {
                self.local(LocalReason::Native(arg.to_owned()));
                return Dest::Neither;
            }
            "-emit-ast" | "-emit-module" | "-emit-module-interface" | "-emit-header-unit" => {
                self.local(LocalReason::Modules(arg.to_owned()));
                return Dest::Neither;
            }
            _ => {}
        }
        if LINK_FLAGS.contains(&arg) {
            return Dest::Neither;
        }
        if let Some(list) = arg.strip_prefix("-Wp,") {
            let subs: Vec<&str> = list.split(',').collect();
            self.preprocessor_option(&subs);
            return Dest::Preprocess;
        }
        if let Some(list) = arg.strip_prefix("-Wa,") {
            let subs: Vec<&str> = list.split(',').collect();
            self.assembler_options(&subs);
            return Dest::Both;
        }
        if arg.starts_with("-Wl,") {
            return Dest::Neither;
        }
        if arg.starts_with("-Xarch_") {
            // Its value follows; the whole command stays local, so the
            // stray value cannot be misread as anything that matters.
            self.local(LocalReason::PerArchOption(arg.to_owned()));
            return Dest::Neither;
        }
        if arg.starts_with("--") {
            return self.long_flag(arg);
        }
        if let Some(rest) = arg.strip_prefix("-f") {
            return self.f_flag(arg, rest);
        }
        if let Some(rest) = arg.strip_prefix("-g") {
            if rest != "0" && !rest.starts_with("no-") && !rest.starts_with('z') {
                self.debug = true;
            }
            if rest == "0" {
                self.debug = false;
            }
            return Dest::Both;
        }
        if let Some(rest) = arg.strip_prefix("-d") {
            if !rest.is_empty() {
                // -dD/-dM/-dN/-dI/-dU change the preprocessed text; the
                // compile-time dump letters write extra files.
                self.local(LocalReason::DebugDump(arg.to_owned()));
                return Dest::Neither;
            }
        }
        if arg.starts_with("-save-temps") || arg == "-save-stats" {
            self.local(LocalReason::SaveTemps);
            return Dest::Neither;
        }
        if arg.starts_with("-specs=") {
            self.local(LocalReason::Specs);
            return Dest::Neither;
        }
        if arg.starts_with("-iplugindir") {
            self.local(LocalReason::Plugin(arg.to_owned()));
            return Dest::Neither;
        }
        if arg.starts_with("-i") {
            // Every -i option gcc or clang knows is in the value tables; an
            // unknown one is probably a preprocessor search option with a
            // value.
            self.local(LocalReason::Unrecognised(arg.to_owned()));
            return Dest::Neither;
        }
        if arg.starts_with("-M") {
            self.local(LocalReason::Unrecognised(arg.to_owned()));
            return Dest::Neither;
        }
        if arg.starts_with("-X") || arg.starts_with("-objcmt") || arg.starts_with("-lang-") {
            // -Xfoo options take a separate value as a rule.
            self.local(LocalReason::Unrecognised(arg.to_owned()));
            return Dest::Neither;
        }
        if arg.starts_with("-m") && arg.ends_with("=native") {
            self.local(LocalReason::Native(arg.to_owned()));
            return Dest::Neither;
        }
        // -O*, -m*, -W*, -w, -std=, -ansi, -pedantic, -pthread, -pipe and
        // everything else: both steps see it, so gcc accepts or rejects it
        // the same way.
        Dest::Both
    }

    fn long_flag(&mut self, arg: &str) -> Dest {
        if let Some(v) = arg.strip_prefix("--sysroot=") {
            let _ = v;
            return Dest::Preprocess;
        }
        if arg.starts_with("--param=") || arg.starts_with("--target=") {
            return Dest::Both;
        }
        if arg.starts_with("--gcc-toolchain=") {
            self.local(LocalReason::Unrecognised("--gcc-toolchain".to_owned()));
            return Dest::Neither;
        }
        if arg.starts_with("--offload") || arg.starts_with("--cuda") {
            self.local(LocalReason::Offload(arg.to_owned()));
            return Dest::Neither;
        }
        if arg == "--precompile" {
            self.local(LocalReason::Modules(arg.to_owned()));
            return Dest::Neither;
        }
        // gcc accepts abbreviated and aliased long options (--include-dir…,
        // --output…), some with separate values: too many to model safely.
        self.local(LocalReason::Unrecognised(arg.to_owned()));
        Dest::Neither
    }

    fn f_flag(&mut self, arg: &str, rest: &str) -> Dest {
        let name = arg.split('=').next().unwrap_or(arg);
        let positive = rest.strip_prefix("no-").unwrap_or(rest);
        if positive.starts_with("plugin") {
            self.local(LocalReason::Plugin(name.to_owned()));
            return Dest::Neither;
        }
        // gcc opens the files that line markers (and `#line`) name to
        // print these: on a worker, a marker could name one of its files.
        if rest.starts_with("diagnostics-generate-patch")
            || rest.starts_with("diagnostics-format=sarif")
        {
            self.local(LocalReason::QuotesSourceFiles(name.to_owned()));
            return Dest::Neither;
        }
        if positive.starts_with("profile-use")
            || positive.starts_with("profile-sample-use")
            || positive.starts_with("profile-instr-use")
            || positive.starts_with("auto-profile")
            || positive.starts_with("branch-probabilities")
        {
            self.local(LocalReason::ProfileFeedback(name.to_owned()));
            return Dest::Neither;
        }
        if positive.starts_with("profile") || positive.starts_with("cs-profile") {
            self.local(LocalReason::ProfileInstrumentation(name.to_owned()));
            return Dest::Neither;
        }
        if positive.starts_with("dump")
            || positive.starts_with("callgraph-info")
            || positive.starts_with("save-optimization-record")
            || positive.starts_with("optimization-record-file")
            || positive.starts_with("time-trace")
            || positive.starts_with("stack-usage")
            || (positive.starts_with("opt-info") && positive.contains('='))
            || positive == "diagnostics-format=json-file"
            || positive == "diagnostics-format=sarif-file"
            || positive.starts_with("compare-debug")
            || positive.starts_with("record-command-line")
            || positive.starts_with("crash-diagnostics")
        {
            self.local(LocalReason::ExtraOutput(name.to_owned()));
            return Dest::Neither;
        }
        if positive.starts_with("sanitize-blacklist")
            || positive.starts_with("sanitize-ignorelist")
            || positive.starts_with("sanitize-system-ignorelist")
            || positive.starts_with("sanitize-coverage-allowlist")
            || positive.starts_with("sanitize-coverage-ignorelist")
            || positive.starts_with("sanitize-coverage-blocklist")
            || positive.starts_with("sanitize-coverage-whitelist")
            || positive.starts_with("sanitize-coverage-blacklist")
            || positive.starts_with("xray-always-instrument")
            || positive.starts_with("xray-never-instrument")
            || positive.starts_with("xray-attr-list")
            || positive.starts_with("embed-dir")
            || positive.starts_with("ms-compatibility-version")
            || positive.starts_with("build-session-file")
        {
            self.local(LocalReason::ReadsFile(name.to_owned()));
            return Dest::Neither;
        }
        if positive.starts_with("module")
            || positive.starts_with("cxx-modules")
            || positive.starts_with("implicit-module")
            || positive.starts_with("prebuilt-module")
            || positive.starts_with("builtin-module-map")
            || positive.starts_with("header-unit")
        {
            // -fno-modules and friends are defaults, but harmless to keep
            // local.
            self.local(LocalReason::Modules(name.to_owned()));
            return Dest::Neither;
        }
        if positive.starts_with("openmp-targets") || positive.starts_with("gpu-") {
            self.local(LocalReason::Offload(name.to_owned()));
            return Dest::Neither;
        }
        match positive {
            "syntax-only" => {
                self.syntax_only = true;
                Dest::Neither
            }
            "preprocessed" | "directives-only" => {
                self.local(LocalReason::PreprocessorMode(name.to_owned()));
                Dest::Neither
            }
            "pch-preprocess" => {
                self.local(LocalReason::PrecompiledHeader(name.to_owned()));
                Dest::Neither
            }
            "test-coverage" | "coverage-mapping" => {
                self.local(LocalReason::Coverage(name.to_owned()));
                Dest::Neither
            }
            // Preprocess-only options that gcc does not record; the compile
            // of preprocessed text has nothing left for them to change.
            _ if positive.starts_with("macro-prefix-map") => Dest::Preprocess,
            _ => Dest::Both,
        }
    }
}
