//! Options the driver forwards to the preprocessor (`-Wp,`,
//! `-Xpreprocessor`) and to the assembler (`-Wa,`, `-Xassembler`): the
//! files they write or read, and what they record in debug info.

use super::Scan;
use crate::args::LocalReason;

impl Scan<'_> {
    /// Options for the preprocessor given with `-Wp,` or `-Xpreprocessor`.
    pub(super) fn preprocessor_option(&mut self, subs: &[&str]) {
        let mut expect_dep_file = false;
        // `-MD FILE`/`-MMD FILE` write FILE; a bare `-MF FILE` does not.
        let mut writes_deps = false;
        for sub in subs {
            if expect_dep_file {
                expect_dep_file = false;
                self.deps.preprocessor_file(sub, writes_deps);
                continue;
            }
            match *sub {
                "-MD" | "-MMD" => (expect_dep_file, writes_deps) = (true, true),
                "-MF" => (expect_dep_file, writes_deps) = (true, false),
                "-M" | "-MM" => self.deps_only = true,
                "-E" => self.preprocess_only = true,
                _ => {}
            }
            if !sub.starts_with('-') {
                continue;
            }
            // What gen_producer_string leaves out of DW_AT_producer.
            let unrecorded = ["-M", "-i", "-W", "-D", "-I", "-U"]
                .iter()
                .any(|p| sub.starts_with(p))
                || sub.starts_with("-fmacro-prefix-map")
                || sub.starts_with("-fdebug-prefix-map")
                || sub.starts_with("-ffile-prefix-map")
                || *sub == "-nostdinc"
                || *sub == "-nostdinc++";
            if !unrecorded {
                self.record(sub);
            }
            if sub.starts_with("-fplugin") {
                self.local(LocalReason::Plugin((*sub).to_owned()));
            }
            if sub.starts_with("-fdirectives-only") || sub.starts_with("-fpreprocessed") {
                self.local(LocalReason::PreprocessorMode((*sub).to_owned()));
            }
            if sub.starts_with("-d") || sub.starts_with("-P") || sub.starts_with("-traditional") {
                self.local(LocalReason::PreprocessorMode((*sub).to_owned()));
            }
        }
    }

    /// Options for the assembler given with `-Wa,` or `-Xassembler`: local
    /// when one writes a listing or names a file.
    pub(super) fn assembler_options(&mut self, subs: &[&str]) {
        for sub in subs {
            let names_file = sub.starts_with("-a")
                || sub.starts_with("-o")
                || sub.starts_with("--MD")
                || sub.starts_with("-MD")
                || sub.starts_with("-I")
                || sub.starts_with('@')
                || sub.starts_with("--listing")
                || sub.starts_with("-Z")
                || sub.starts_with("--gen-debug")
                || sub.starts_with("-g")
                || (!sub.starts_with('-') && sub.contains('/'));
            if names_file {
                let reason = if sub.starts_with("-a") || sub.starts_with("--listing") {
                    LocalReason::ExtraOutput(format!("assembler listing {sub}"))
                } else {
                    LocalReason::ReadsFile(format!("assembler option {sub}"))
                };
                self.local(reason);
            }
        }
    }
}
