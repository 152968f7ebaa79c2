//! Every reason a command line compiles locally, and the one-line phrase
//! `gridcc explain`, the logs and the job log show for it.

use std::fmt;

/// Every reason to compile locally. `Display` gives a short phrase for
/// `gridcc explain` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalReason {
    /// No `-c`: the driver links.
    Linking,
    /// `-S`.
    AssemblyOutput,
    /// `-E`.
    PreprocessOnly,
    /// `-M` or `-MM` (dependency output only, implies `-E`).
    DependenciesOnly,
    /// `-fsyntax-only`.
    SyntaxOnly,
    /// `--version`, `-dumpmachine`, `-print-…`, `--help`, `-###`, `-v`, `-Q`.
    Query(String),
    NoSource,
    MultipleSources,
    SourceFromStdin,
    OutputToStdout,
    /// `-o /dev/…`: the object must not be replaced by a rename.
    OutputToDevice(String),
    /// `-o ''`, which gcc refuses with its own message.
    EmptyOutputName,
    /// More than one `-o`.
    MultipleOutputs,
    /// A dependency file written to stdout would mix with the preprocessed
    /// text.
    DependenciesToStdout,
    /// `.s`, `.S`, `.sx` or `-x assembler…`.
    Assembly,
    /// An input gcc hands to the linker (unknown suffix).
    LinkerInput(String),
    /// A language gcc knows but the grid does not compile (Fortran, Ada, …).
    UnsupportedLanguage(String),
    /// `-x` with a name gcc does not know.
    UnknownLanguage(String),
    /// Compiling a header makes a precompiled header.
    HeaderCompile,
    /// A precompiled header would be used (`-include-pch`, `-include x`
    /// with `x.gch` present, `-fpch-preprocess`).
    PrecompiledHeader(String),
    /// `-fprofile-use`, `-fauto-profile`, `-fbranch-probabilities`, …
    ProfileFeedback(String),
    /// `-fprofile-generate`, `-fprofile-arcs`, and other `-fprofile-*`:
    /// the object names paths derived from the output location.
    ProfileInstrumentation(String),
    /// `--coverage`, `-ftest-coverage`, `-fcoverage-mapping`.
    Coverage(String),
    /// `-fplugin…`, `-iplugindir=`.
    Plugin(String),
    /// `-specs`.
    Specs,
    /// `-B`: another compiler's programs.
    ProgramPrefix,
    /// `-wrapper`.
    Wrapper,
    /// `-gsplit-dwarf`.
    SplitDwarf,
    /// `-save-temps…`.
    SaveTemps,
    /// An option that writes another file next to the object
    /// (`-fdump-…`, `-fstack-usage`, `-fcallgraph-info`, `-aux-info`, …).
    ExtraOutput(String),
    /// An option that makes the compiler read a file besides the source
    /// (`-fsanitize-ignorelist=`, `-Wa,-I…`, …).
    ReadsFile(String),
    /// Diagnostics that quote the files line markers name
    /// (`-fdiagnostics-generate-patch`, `-fdiagnostics-format=sarif-…`):
    /// on a worker, a marker could name one of the worker's files.
    QuotesSourceFiles(String),
    /// `-march=native`, `-mtune=native`, `-mcpu=native`.
    Native(String),
    /// `-Xclang X` with anything but a known harmless X.
    Xclang(String),
    /// `-Xarch_…`: options for one architecture only.
    PerArchOption(String),
    /// More than one `-arch` (universal binary).
    MultipleArchs,
    /// C++ modules or clang modules.
    Modules(String),
    /// Offloading (CUDA, HIP, OpenMP targets).
    Offload(String),
    /// `-g3` and friends: macro debug info differs when compiled from
    /// preprocessed text.
    MacroDebugInfo(String),
    /// An option recorded in `DW_AT_producer` that cannot reach the compiler
    /// of preprocessed text.
    RecordedPreprocessorOption(String),
    /// `-fno-working-directory` with debug info.
    NoWorkingDirectory,
    /// `-fdirectives-only`, `-fpreprocessed`, `-traditional-cpp`.
    PreprocessorMode(String),
    /// `-d…` dump letters.
    DebugDump(String),
    /// `-dumpbase`, `-dumpdir`, `-dumpbase-ext`.
    DumpNaming(String),
    /// An option gridcc does not know and that may consume the next argument.
    Unrecognised(String),
    /// An option whose value is missing at the end of the command line.
    MissingValue(String),
    /// An environment variable that changes which programs the driver runs.
    Environment(String),
}

impl fmt::Display for LocalReason {
    /// One line, always: a reason quotes file names and options, which may
    /// hold a newline (a quoted name in a response file), and `gridcc
    /// explain`, the logs and the job log show one reason per line. Control
    /// characters are shown escaped (`\n`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let mut text = String::new();
        self.describe(&mut text)?;
        for c in text.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl LocalReason {
    fn describe(&self, f: &mut String) -> fmt::Result {
        use fmt::Write as _;
        match self {
            LocalReason::Linking => f.write_str("linking"),
            LocalReason::AssemblyOutput => f.write_str("assembly output (-S)"),
            LocalReason::PreprocessOnly => f.write_str("preprocess only (-E)"),
            LocalReason::DependenciesOnly => f.write_str("dependency generation only (-M/-MM)"),
            LocalReason::SyntaxOnly => f.write_str("syntax check only (-fsyntax-only)"),
            LocalReason::Query(o) => write!(f, "information query ({o})"),
            LocalReason::NoSource => f.write_str("no source file"),
            LocalReason::MultipleSources => f.write_str("multiple source files"),
            LocalReason::SourceFromStdin => f.write_str("source from stdin"),
            LocalReason::OutputToStdout => f.write_str("output to stdout"),
            LocalReason::OutputToDevice(o) => write!(f, "output to a device ({o})"),
            LocalReason::EmptyOutputName => f.write_str("empty output file name (-o '')"),
            LocalReason::MultipleOutputs => f.write_str("multiple -o"),
            LocalReason::DependenciesToStdout => f.write_str("dependency output to stdout"),
            LocalReason::Assembly => f.write_str("assembly"),
            LocalReason::LinkerInput(i) => write!(f, "linking (linker input {i})"),
            LocalReason::UnsupportedLanguage(l) => write!(f, "unsupported language ({l})"),
            LocalReason::UnknownLanguage(l) => write!(f, "unknown language (-x {l})"),
            LocalReason::HeaderCompile => f.write_str("precompiled header generation"),
            LocalReason::PrecompiledHeader(o) => write!(f, "precompiled header ({o})"),
            LocalReason::ProfileFeedback(o) => write!(f, "profile feedback ({o})"),
            LocalReason::ProfileInstrumentation(o) => write!(f, "profile instrumentation ({o})"),
            LocalReason::Coverage(o) => write!(f, "coverage ({o})"),
            LocalReason::Plugin(o) => write!(f, "plugin ({o})"),
            LocalReason::Specs => f.write_str("spec file (-specs)"),
            LocalReason::ProgramPrefix => f.write_str("program prefix (-B)"),
            LocalReason::Wrapper => f.write_str("subprocess wrapper (-wrapper)"),
            LocalReason::SplitDwarf => f.write_str("split DWARF (-gsplit-dwarf)"),
            LocalReason::SaveTemps => f.write_str("keeps temporaries (-save-temps)"),
            LocalReason::ExtraOutput(o) => write!(f, "writes extra files ({o})"),
            LocalReason::ReadsFile(o) => write!(f, "reads extra files ({o})"),
            LocalReason::QuotesSourceFiles(o) => {
                write!(f, "diagnostics quote source files ({o})")
            }
            LocalReason::Native(o) => write!(f, "{o}"),
            LocalReason::Xclang(o) => write!(f, "-Xclang {o}"),
            LocalReason::PerArchOption(o) => write!(f, "per-architecture option ({o})"),
            LocalReason::MultipleArchs => f.write_str("multiple -arch"),
            LocalReason::Modules(o) => write!(f, "modules ({o})"),
            LocalReason::Offload(o) => write!(f, "offloading ({o})"),
            LocalReason::MacroDebugInfo(o) => write!(f, "macro debug info ({o})"),
            LocalReason::RecordedPreprocessorOption(o) => {
                write!(f, "preprocessor option {o} recorded in debug info")
            }
            LocalReason::NoWorkingDirectory => {
                f.write_str("debug info without working directory (-fno-working-directory)")
            }
            LocalReason::PreprocessorMode(o) => write!(f, "preprocessor mode ({o})"),
            LocalReason::DebugDump(o) => write!(f, "debug dump ({o})"),
            LocalReason::DumpNaming(o) => write!(f, "auxiliary file naming ({o})"),
            LocalReason::Unrecognised(o) => write!(f, "unrecognised option {o}"),
            LocalReason::MissingValue(o) => write!(f, "missing argument to {o}"),
            LocalReason::Environment(v) => write!(f, "environment variable {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::args::{classify, Classification};

    #[test]
    fn a_reason_quoting_a_name_with_a_newline_stays_on_one_line() {
        // Found by the `args` fuzz target: a quoted name in a response file
        // may span lines.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rsp"), "-O2 -c 'my file.cit\nc\n").unwrap();
        let args = vec!["@rsp".to_owned()];
        match classify(&args, dir.path(), &|_| None) {
            Ok(Classification::Local(reason)) => {
                assert_eq!(
                    reason.to_string(),
                    "linking (linker input my file.cit\\nc\\n)"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
