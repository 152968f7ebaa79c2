//! The gcc/clang command-line model: what one compiler invocation compiles,
//! whether it may run on the grid (and if not, why), and the two command
//! lines of the split: local preprocessing and remote compilation.
//!
//! The model is deliberately conservative. A command line goes remote only
//! when it compiles exactly one C-family source to one object file and no
//! option could make the remote object differ from the local one, read a
//! file the worker does not have, or write a file besides the object and the
//! dependency file (the dependency file is written by the local preprocessing
//! step). Everything else compiles locally with a [`LocalReason`].
//!
//! Findings this module relies on (gcc 12, checked by the tests below):
//! - `gcc -E` with the same flags writes the same `-MD`/`-MMD` dependency
//!   file as the compile, once the `-MF` file and the `-MQ` target that the
//!   driver derives from `-o` are made explicit (the driver only adds the
//!   `-MQ` when it is not running `-E`).
//! - `-C`, `-CC`, `-P`, `-H` and preprocessor options passed with `-Wp,` or
//!   `-Xpreprocessor` are recorded in `DW_AT_producer` but never reach the
//!   compiler of preprocessed text, so with debug info they force a local
//!   compile. `-D`, `-I`, `-U`, `-i…`, `-M…` and `-W…` are not recorded.
//! - `-g3` macro information differs when compiled from preprocessed text.
//! - `-fno-working-directory` with debug info would give the remote object
//!   the worker's directory as `DW_AT_comp_dir`.

use std::fmt;
use std::path::Path;

/// The source language of the one input, as gcc decides it (from `-x` or the
/// file name's suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    C,
    Cxx,
    ObjC,
    ObjCxx,
    PreprocessedC,
    PreprocessedCxx,
    PreprocessedObjC,
    PreprocessedObjCxx,
    Asm,
    AsmCpp,
}

impl Language {
    /// Whether the input is already preprocessed text.
    pub fn is_preprocessed(self) -> bool {
        matches!(
            self,
            Language::PreprocessedC
                | Language::PreprocessedCxx
                | Language::PreprocessedObjC
                | Language::PreprocessedObjCxx
        )
    }

    /// The `-x` name of this language's preprocessed form, `None` for
    /// assembly.
    pub fn preprocessed_name(self) -> Option<&'static str> {
        match self {
            Language::C | Language::PreprocessedC => Some("cpp-output"),
            Language::Cxx | Language::PreprocessedCxx => Some("c++-cpp-output"),
            Language::ObjC | Language::PreprocessedObjC => Some("objective-c-cpp-output"),
            Language::ObjCxx | Language::PreprocessedObjCxx => Some("objective-c++-cpp-output"),
            Language::Asm | Language::AsmCpp => None,
        }
    }
}

/// One compile that may run on the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCompile {
    /// Source path exactly as given on the command line.
    pub source: String,
    /// Object path: the -o value, or the default gcc would use (basename of
    /// source with .o, in cwd).
    pub output: String,
    pub language: Language,
    /// true when the input is already preprocessed (.i/.ii/.mi/.mii or -x
    /// cpp-output): no local preprocessing step; send the file as-is.
    pub preprocessed_input: bool,
    /// Arguments (without the compiler itself) that make the same compiler
    /// write the preprocessed text to stdout and write every dependency file
    /// the original command would have written, byte for byte. Run them in
    /// the same working directory and environment as the original command
    /// (`DEPENDENCIES_OUTPUT` and `SUNPRO_DEPENDENCIES` act through the
    /// environment). Empty when `preprocessed_input`.
    pub preprocess_args: Vec<String>,
    /// Arguments for the remote compile of the preprocessed text: the
    /// original flags minus everything that only affects preprocessing or
    /// names files. The worker adds `-x <remote_language> -c <input> -o
    /// <out>` itself.
    pub compile_args: Vec<String>,
    /// The preprocessing arguments without the input, `-E` and every
    /// dependency-file option (`-M…`, `-Wp,…`, `-Xpreprocessor …`): what
    /// decides the include search list, so `COMPILER search_args -E -v -x
    /// LANG /dev/null` prints the list the preprocessing used and writes
    /// nothing. Empty when `preprocessed_input`.
    pub search_args: Vec<String>,
    /// Every file the preprocessing is told to write dependencies to: the
    /// `-MF` value (given or derived) under `-MD`/`-MMD`, and the FILE of
    /// each `-Wp,-MD,FILE`/`-Wp,-MMD,FILE`. Empty when `preprocessed_input`.
    pub dep_files: Vec<String>,
    /// The -x language name for the preprocessed input on the worker.
    pub remote_language: &'static str,
}

/// What to do with a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    Remote(RemoteCompile),
    Local(LocalReason),
}

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

/// Classifies one compiler command line.
///
/// `args` excludes the compiler; `cwd` resolves relative @file response
/// files (and `-include` files, to spot precompiled headers); `env` reads
/// environment variables.
pub fn classify(
    args: &[String],
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Classification, ArgsError> {
    let args = expand_response_files(args, cwd)?;
    // These change which cc1/as the driver runs, or make it compile twice;
    // GCC_EXTRA_DIAGNOSTIC_OUTPUT adds fix-it lines to stderr, which a
    // worker (not given it) would leave out and a cache entry made without
    // it would not hold.
    for var in [
        "GCC_COMPARE_DEBUG",
        "COMPILER_PATH",
        "GCC_EXEC_PREFIX",
        "GCC_EXTRA_DIAGNOSTIC_OUTPUT",
    ] {
        if env(var).is_some_and(|v| !v.is_empty()) {
            return Ok(Classification::Local(LocalReason::Environment(
                var.to_owned(),
            )));
        }
    }
    Ok(Scan::new(cwd).run(&args))
}

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

/// What a `-x` name or a file suffix makes of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InputKind {
    Source(Language),
    Header,
    Unsupported(String),
    Unknown(String),
    Linker,
}

fn kind_from_x(name: &str) -> Option<InputKind> {
    Some(match name {
        "none" => return None,
        "c" => InputKind::Source(Language::C),
        "c++" => InputKind::Source(Language::Cxx),
        "objective-c" => InputKind::Source(Language::ObjC),
        "objective-c++" => InputKind::Source(Language::ObjCxx),
        "cpp-output" => InputKind::Source(Language::PreprocessedC),
        "c++-cpp-output" => InputKind::Source(Language::PreprocessedCxx),
        "objective-c-cpp-output" | "objc-cpp-output" => {
            InputKind::Source(Language::PreprocessedObjC)
        }
        "objective-c++-cpp-output" | "objc++-cpp-output" => {
            InputKind::Source(Language::PreprocessedObjCxx)
        }
        "assembler" => InputKind::Source(Language::Asm),
        "assembler-with-cpp" => InputKind::Source(Language::AsmCpp),
        "c-header"
        | "c++-header"
        | "objective-c-header"
        | "objective-c++-header"
        | "c++-system-header"
        | "c++-user-header"
        | "c-header-cpp-output"
        | "c++-header-cpp-output" => InputKind::Header,
        "f77"
        | "f77-cpp-input"
        | "f95"
        | "f95-cpp-input"
        | "ada"
        | "d"
        | "go"
        | "rust"
        | "modula-2"
        | "cuda"
        | "cuda-cpp-output"
        | "hip"
        | "hip-cpp-output"
        | "cl"
        | "clcpp"
        | "renderscript"
        | "ir"
        | "ast"
        | "c++-module"
        | "pcm"
        | "lto"
        | "java"
        | "jit"
        | "objective-c++-module"
        | "hlsl" => InputKind::Unsupported(format!("-x {name}")),
        _ => InputKind::Unknown(name.to_owned()),
    })
}

fn kind_from_suffix(path: &str) -> InputKind {
    let base = path.rsplit('/').next().unwrap_or(path);
    // A leading dot is not a suffix (gcc's set_input).
    let suffix = match base.rfind('.') {
        Some(pos) if pos > 0 => &base[pos + 1..],
        _ => return InputKind::Linker,
    };
    match suffix {
        "c" => InputKind::Source(Language::C),
        "i" => InputKind::Source(Language::PreprocessedC),
        "cc" | "cp" | "cxx" | "cpp" | "CPP" | "c++" | "C" => InputKind::Source(Language::Cxx),
        "ii" => InputKind::Source(Language::PreprocessedCxx),
        "m" => InputKind::Source(Language::ObjC),
        "mi" => InputKind::Source(Language::PreprocessedObjC),
        "mm" | "M" => InputKind::Source(Language::ObjCxx),
        "mii" => InputKind::Source(Language::PreprocessedObjCxx),
        "s" => InputKind::Source(Language::Asm),
        "S" | "sx" => InputKind::Source(Language::AsmCpp),
        "h" | "hh" | "H" | "hp" | "hxx" | "hpp" | "HPP" | "h++" | "tcc" => InputKind::Header,
        "f" | "for" | "ftn" | "F" | "FOR" | "FTN" | "fpp" | "FPP" | "f90" | "f95" | "f03"
        | "f08" | "F90" | "F95" | "F03" | "F08" | "ads" | "adb" | "d" | "di" | "dd" | "go"
        | "rs" | "mod" | "def" | "cu" | "hip" | "cl" | "cppm" | "ixx" | "cxxm" | "c++m" | "ccm"
        | "m2" => InputKind::Unsupported(format!(".{suffix}")),
        _ => InputKind::Linker,
    }
}

/// Where an argument goes in the split.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    Both,
    Preprocess,
    Neither,
}

/// Options that take a value, joined (`-Ifoo`) or separate (`-I foo`).
/// Longer names first where one is a prefix of another.
const JOINED_OR_SEPARATE: &[&str] = &[
    "-iwithprefixbefore",
    "-iwithprefix",
    "-iframeworkwithsysroot",
    "-iframework",
    "-isystem-after",
    "-isystem",
    "-iwithsysroot",
    "-include-pch",
    "-include",
    "-imacros",
    "-iquote",
    "-idirafter",
    "-iprefix",
    "-isysroot",
    "-imultilib",
    "-imultiarch",
    "-iembed-dir",
    "-cxx-isystem",
    "-MF",
    "-MT",
    "-MQ",
    "-MJ",
    "-I",
    "-D",
    "-U",
    "-A",
    "-F",
    "-o",
    "-x",
    "-L",
    "-l",
    "-T",
    "-u",
    "-z",
    "-e",
    "-B",
    "-G",
];

/// Options that only take a separate value.
const SEPARATE_ONLY: &[&str] = &[
    "-Xpreprocessor",
    "-Xassembler",
    "-Xlinker",
    "-Xclang",
    "-Xanalyzer",
    "-Xcuda-fatbinary",
    "-Xcuda-ptxas",
    "-Xopenmp-target",
    "-Xoffload-linker",
    "-Xarch_device",
    "-Xarch_host",
    "-aux-info",
    "-auxbase",
    "-auxbase-strip",
    "-dumpbase",
    "-dumpbase-ext",
    "-dumpdir",
    "-wrapper",
    "-specs",
    "--param",
    "--sysroot",
    "-target",
    "-arch",
    "-mllvm",
    "-ivfsoverlay",
    "-serialize-diagnostics",
    "-resource-dir",
    "-gcc-toolchain",
    "-working-directory",
    "-index-store-path",
    "-mthread-model",
    "-fdebug-compilation-dir",
];

/// Darwin linker options with one or more separate values; gcc on Linux
/// rejects them, so they never go remote.
const DARWIN_MULTI: &[&str] = &[
    "-framework",
    "-weak_framework",
    "-filelist",
    "-install_name",
    "-sectcreate",
    "-segaddr",
    "-sectalign",
    "-sectorder",
    "-segprot",
    "-seg_addr_table",
    "-bundle_loader",
    "-allowable_client",
    "-compatibility_version",
    "-current_version",
    "-dylib_file",
    "-dylinker_install_name",
    "-exported_symbols_list",
    "-unexported_symbols_list",
    "-image_base",
    "-init",
    "-multiply_defined",
    "-pagezero_size",
    "-read_only_relocs",
    "-sub_library",
    "-sub_umbrella",
    "-umbrella",
    "-weak_reference_mismatches",
    "-arch_only",
    "-seg1addr",
    "-segs_read_only_addr",
    "-segs_read_write_addr",
    "-object_path_lto",
    "-lazy_framework",
    "-reexport_framework",
];

/// `-Xclang` values that only change how diagnostics look.
const HARMLESS_XCLANG: &[&str] = &[
    "-fcolor-diagnostics",
    "-fno-color-diagnostics",
    "-fdiagnostics-show-option",
];

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

struct Input {
    path: String,
    kind: InputKind,
}

struct Scan<'a> {
    cwd: &'a Path,
    pre: Vec<String>,
    /// `pre` without the input, `-E` and dependency-file options.
    search: Vec<String>,
    comp: Vec<String>,
    inputs: Vec<Input>,
    outputs: Vec<String>,
    lang: Option<InputKind>,
    compile: bool,
    assembly_output: bool,
    preprocess_only: bool,
    deps_only: bool,
    syntax_only: bool,
    query: Option<String>,
    /// Driver-level `-MD`/`-MMD`.
    md: bool,
    /// Driver-level `-MF` given.
    mf: bool,
    /// Every driver-level `-MF` value.
    mf_values: Vec<String>,
    /// The FILE of each `-Wp,-MD,FILE` or `-Wp,-MMD,FILE`.
    wp_dep_files: Vec<String>,
    /// Driver-level `-MT`/`-MQ` given.
    mt: bool,
    dep_to_stdout: bool,
    debug: bool,
    no_working_directory: bool,
    /// First option recorded in `DW_AT_producer` that the compiler of
    /// preprocessed text never sees.
    recorded: Option<String>,
    archs: usize,
    /// First option-level reason to stay local.
    reason: Option<LocalReason>,
}

impl<'a> Scan<'a> {
    fn new(cwd: &'a Path) -> Self {
        Scan {
            cwd,
            pre: Vec::new(),
            search: Vec::new(),
            comp: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            lang: None,
            compile: false,
            assembly_output: false,
            preprocess_only: false,
            deps_only: false,
            syntax_only: false,
            query: None,
            md: false,
            mf: false,
            mf_values: Vec::new(),
            wp_dep_files: Vec::new(),
            mt: false,
            dep_to_stdout: false,
            debug: false,
            no_working_directory: false,
            recorded: None,
            archs: 0,
            reason: None,
        }
    }

    fn local(&mut self, reason: LocalReason) {
        if self.reason.is_none() {
            self.reason = Some(reason);
        }
    }

    fn push(&mut self, dest: Dest, items: &[&str]) {
        if matches!(dest, Dest::Both | Dest::Preprocess) {
            self.pre.extend(items.iter().map(|s| (*s).to_owned()));
            let writes_deps = items.first().is_some_and(|o| {
                o.starts_with("-M") || o.starts_with("-Wp,") || *o == "-Xpreprocessor"
            });
            if !writes_deps {
                self.search.extend(items.iter().map(|s| (*s).to_owned()));
            }
        }
        if dest == Dest::Both {
            self.comp.extend(items.iter().map(|s| (*s).to_owned()));
        }
    }

    fn run(mut self, args: &[String]) -> Classification {
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_str();
            i += 1;
            if arg == "-" || !arg.starts_with('-') {
                let kind = match &self.lang {
                    Some(k) => k.clone(),
                    None => kind_from_suffix(arg),
                };
                self.inputs.push(Input {
                    path: arg.to_owned(),
                    kind,
                });
                self.pre.push(arg.to_owned());
                continue;
            }
            // Options with a value: find the name and the value.
            if let Some(name) = SEPARATE_ONLY.iter().find(|n| **n == arg) {
                let Some(value) = args.get(i) else {
                    self.local(LocalReason::MissingValue(arg.to_owned()));
                    continue;
                };
                i += 1;
                self.valued(name, value, &[arg, value]);
                continue;
            }
            if is_flag_with_value_prefix(arg) {
                self.flag(arg);
                continue;
            }
            if let Some(name) = JOINED_OR_SEPARATE.iter().find(|n| arg.starts_with(**n)) {
                if arg.len() == name.len() {
                    let Some(value) = args.get(i) else {
                        self.local(LocalReason::MissingValue(arg.to_owned()));
                        continue;
                    };
                    i += 1;
                    self.valued(name, value, &[arg, value]);
                } else {
                    self.valued(name, &arg[name.len()..], &[arg]);
                }
                continue;
            }
            if DARWIN_MULTI.contains(&arg) {
                // The values are unknown in number, so nothing after this
                // can be read with confidence.
                return Classification::Local(LocalReason::Unrecognised(arg.to_owned()));
            }
            self.flag(arg);
        }
        self.decide()
    }

    /// An option with a value. `items` is how it was written (one or two
    /// arguments), kept together wherever it goes.
    fn valued(&mut self, name: &str, value: &str, items: &[&str]) {
        let dest = match name {
            "-o" => {
                self.outputs.push(value.to_owned());
                Dest::Neither
            }
            "-x" => {
                match kind_from_x(value) {
                    Some(InputKind::Unknown(l)) => {
                        self.local(LocalReason::UnknownLanguage(l.clone()));
                        self.lang = Some(InputKind::Unknown(l));
                    }
                    other => self.lang = other,
                }
                // The preprocessor must see the same language; the worker
                // sets its own -x.
                Dest::Preprocess
            }
            "-I"
            | "-D"
            | "-U"
            | "-A"
            | "-F"
            | "-imacros"
            | "-isystem"
            | "-iquote"
            | "-idirafter"
            | "-iprefix"
            | "-iwithprefix"
            | "-iwithprefixbefore"
            | "-isysroot"
            | "-imultilib"
            | "-imultiarch"
            | "-iframework"
            | "-iframeworkwithsysroot"
            | "-isystem-after"
            | "-iwithsysroot"
            | "-cxx-isystem"
            | "-iembed-dir"
            | "-ivfsoverlay"
            | "--sysroot" => Dest::Preprocess,
            "-include" => {
                let gch = self.cwd.join(format!("{value}.gch"));
                if gch.exists() {
                    self.local(LocalReason::PrecompiledHeader(format!("{value}.gch")));
                }
                Dest::Preprocess
            }
            "-include-pch" => {
                self.local(LocalReason::PrecompiledHeader("-include-pch".to_owned()));
                Dest::Neither
            }
            "-MF" => {
                self.mf = true;
                self.mf_values.push(value.to_owned());
                if is_stdout(value) {
                    self.dep_to_stdout = true;
                }
                Dest::Preprocess
            }
            "-MT" | "-MQ" => {
                self.mt = true;
                Dest::Preprocess
            }
            "-MJ" | "-serialize-diagnostics" | "-index-store-path" => {
                self.local(LocalReason::ExtraOutput(name.to_owned()));
                Dest::Neither
            }
            "-aux-info" => {
                self.local(LocalReason::ExtraOutput("-aux-info".to_owned()));
                Dest::Neither
            }
            "-Xpreprocessor" => {
                self.preprocessor_option(&[value]);
                Dest::Preprocess
            }
            "-Xassembler" => {
                self.assembler_options(&[value]);
                Dest::Both
            }
            "-Xclang" => {
                if !HARMLESS_XCLANG.contains(&value) {
                    self.local(LocalReason::Xclang(value.to_owned()));
                }
                Dest::Both
            }
            "-Xanalyzer" => Dest::Both,
            "-Xcuda-fatbinary" | "-Xcuda-ptxas" | "-Xopenmp-target" | "-Xoffload-linker"
            | "-Xarch_device" | "-Xarch_host" => {
                self.local(LocalReason::Offload(name.to_owned()));
                Dest::Neither
            }
            // Linker-only: the driver ignores them with -c, silently.
            "-L" | "-l" | "-T" | "-u" | "-z" | "-e" | "-Xlinker" => Dest::Neither,
            "-B" => {
                self.local(LocalReason::ProgramPrefix);
                Dest::Neither
            }
            "-specs" => {
                self.local(LocalReason::Specs);
                Dest::Neither
            }
            "-wrapper" => {
                self.local(LocalReason::Wrapper);
                Dest::Neither
            }
            "-dumpbase" | "-dumpbase-ext" | "-dumpdir" | "-auxbase" | "-auxbase-strip" => {
                self.local(LocalReason::DumpNaming(name.to_owned()));
                Dest::Neither
            }
            "-arch" => {
                self.archs += 1;
                if self.archs > 1 {
                    self.local(LocalReason::MultipleArchs);
                }
                Dest::Both
            }
            "-resource-dir" | "-gcc-toolchain" | "-working-directory" => {
                self.local(LocalReason::Unrecognised(name.to_owned()));
                Dest::Neither
            }
            "-fdebug-compilation-dir" => Dest::Both,
            // -G (small data), --param, -target, -mllvm, -mthread-model:
            // compile options that both steps accept.
            _ => Dest::Both,
        };
        self.push(dest, items);
    }

    /// An option without a separate value.
    fn flag(&mut self, arg: &str) {
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
                self.md = true;
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

    /// Options for the preprocessor given with `-Wp,` or `-Xpreprocessor`.
    fn preprocessor_option(&mut self, subs: &[&str]) {
        let mut expect_dep_file = false;
        // `-MD FILE`/`-MMD FILE` write FILE; a bare `-MF FILE` does not.
        let mut writes_deps = false;
        for sub in subs {
            if expect_dep_file {
                expect_dep_file = false;
                if is_stdout(sub) {
                    self.dep_to_stdout = true;
                }
                if writes_deps {
                    self.wp_dep_files.push((*sub).to_owned());
                }
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
    fn assembler_options(&mut self, subs: &[&str]) {
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

    fn record(&mut self, option: &str) {
        if self.recorded.is_none() {
            self.recorded = Some(option.to_owned());
        }
    }

    fn decide(self) -> Classification {
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

/// Flags that begin with the name of a joined option (`-undef` is not `-u
/// ndef`, `-emit-llvm` is not `-e mit-llvm`).
fn is_flag_with_value_prefix(arg: &str) -> bool {
    matches!(arg, "-undef" | "-I-")
        || arg.starts_with("-emit-")
        || arg.starts_with("-objcmt")
        || arg.starts_with("-lang-")
}

fn is_stdout(path: &str) -> bool {
    path == "-" || path.starts_with("/dev/")
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// gcc's `%b`: the basename without its last suffix (a leading dot is not a
/// suffix).
fn strip_suffix(base: &str) -> &str {
    match base.rfind('.') {
        Some(pos) if pos > 0 => &base[..pos],
        _ => base,
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

/// The object gcc writes for `-c` without `-o`: `%b.o` in the working
/// directory.
fn default_object(source: &str) -> String {
    format!("{}.o", strip_suffix(basename(source)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn split(line: &str) -> Vec<String> {
        // The first word is the compiler.
        line.split_whitespace().skip(1).map(str::to_owned).collect()
    }

    fn classify_line(line: &str) -> Classification {
        classify(&split(line), Path::new("/nonexistent-cwd"), &no_env)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// "remote SOURCE OUTPUT" or "local: REASON".
    fn summary(c: &Classification) -> String {
        match c {
            Classification::Remote(r) => format!("remote {} {}", r.source, r.output),
            Classification::Local(reason) => format!("local: {reason}"),
        }
    }

    const CASES: &[(&str, &str)] = &[
        // Plain compiles.
        ("gcc -c a.c", "remote a.c a.o"),
        ("gcc -c a.c -o a.o", "remote a.c a.o"),
        ("gcc -c src/a.c", "remote src/a.c a.o"),
        ("gcc -c src/a.c -o obj/a.o", "remote src/a.c obj/a.o"),
        ("gcc -c src/a.c -oobj/a.o", "remote src/a.c obj/a.o"),
        ("gcc -o obj/a.o -c src/a.c", "remote src/a.c obj/a.o"),
        ("gcc -c /abs/dir/x.c", "remote /abs/dir/x.c x.o"),
        ("gcc -c a.b.c", "remote a.b.c a.b.o"),
        ("g++ -c a.cpp", "remote a.cpp a.o"),
        ("g++ -c a.cc -o a.o", "remote a.cc a.o"),
        ("g++ -c a.cxx", "remote a.cxx a.o"),
        ("g++ -c a.cp", "remote a.cp a.o"),
        ("g++ -c a.C", "remote a.C a.o"),
        ("g++ -c a.CPP", "remote a.CPP a.o"),
        ("g++ -c a.c++", "remote a.c++ a.o"),
        ("gcc -c a.m", "remote a.m a.o"),
        ("gcc -c a.mm", "remote a.mm a.o"),
        ("gcc -c a.M", "remote a.M a.o"),
        ("gcc -c a.i", "remote a.i a.o"),
        ("g++ -c a.ii", "remote a.ii a.o"),
        ("gcc -c a.mi", "remote a.mi a.o"),
        ("gcc -c a.mii", "remote a.mii a.o"),
        ("gcc -x c -c a.txt", "remote a.txt a.o"),
        ("gcc -xc -c noext", "remote noext noext.o"),
        ("gcc -x c++ -c a.c", "remote a.c a.o"),
        ("gcc -x cpp-output -c a.c", "remote a.c a.o"),
        ("gcc -x none -c a.c", "remote a.c a.o"),
        ("gcc -x c -x none -c a.c", "remote a.c a.o"),
        ("gcc -c a.c -x c++", "remote a.c a.o"),
        ("gcc -O2 -g -Wall -Wextra -Werror -c a.c -o a.o", "remote a.c a.o"),
        ("gcc -O3 -march=x86-64-v3 -mtune=generic -c a.c", "remote a.c a.o"),
        ("gcc -std=gnu11 -pedantic -ansi -c a.c", "remote a.c a.o"),
        ("gcc -fPIC -fvisibility=hidden -ffunction-sections -fdata-sections -c a.c", "remote a.c a.o"),
        ("gcc -flto -c a.c", "remote a.c a.o"),
        ("gcc -flto=auto -ffat-lto-objects -c a.c", "remote a.c a.o"),
        ("gcc -fsanitize=address,undefined -fno-omit-frame-pointer -c a.c", "remote a.c a.o"),
        ("gcc -fdebug-prefix-map=/src=. -g -c a.c", "remote a.c a.o"),
        ("gcc -ffile-prefix-map=/src=. -fmacro-prefix-map=/src=. -c a.c", "remote a.c a.o"),
        ("gcc -frecord-gcc-switches -c a.c", "remote a.c a.o"),
        ("gcc -frandom-seed=abc -c a.c", "remote a.c a.o"),
        ("gcc -ftime-report -c a.c", "remote a.c a.o"),
        ("gcc -fopt-info-vec -O3 -c a.c", "remote a.c a.o"),
        ("gcc -pipe -pthread -fopenmp -c a.c", "remote a.c a.o"),
        ("gcc --param max-inline-insns-single=100 -c a.c", "remote a.c a.o"),
        ("gcc --param=max-inline-insns-single=100 -c a.c", "remote a.c a.o"),
        ("gcc -I inc -Iinc2 -isystem /sys -iquote q -idirafter d -c a.c", "remote a.c a.o"),
        ("gcc -D FOO -DBAR=1 -U BAZ -UQUX -c a.c", "remote a.c a.o"),
        ("gcc -include config.h -imacros m.h -c a.c", "remote a.c a.o"),
        ("gcc -iprefix /p -iwithprefix w -iwithprefixbefore wb -c a.c", "remote a.c a.o"),
        ("gcc --sysroot=/sr -isysroot /sr2 -c a.c", "remote a.c a.o"),
        ("gcc --sysroot /sr -c a.c", "remote a.c a.o"),
        ("gcc -nostdinc -nostdinc++ -c a.c", "remote a.c a.o"),
        ("gcc -MD -c a.c", "remote a.c a.o"),
        ("gcc -MMD -MP -c a.c -o obj/a.o", "remote a.c obj/a.o"),
        ("gcc -MD -MF a.d -MT a.o -c a.c", "remote a.c a.o"),
        ("gcc -MD -MQ $(OBJ) -c a.c", "remote a.c a.o"),
        ("gcc -MD -MFdeps.d -MTtarget -c a.c", "remote a.c a.o"),
        ("gcc -Wp,-MD,.a.d -c a.c", "remote a.c a.o"),
        ("gcc -Wp,-MMD,dir/.a.o.d -c a.c -o dir/a.o", "remote a.c dir/a.o"),
        ("gcc -Wp,-DFOO -c a.c", "remote a.c a.o"),
        ("gcc -g -Wp,-DFOO,-Iinc -c a.c", "remote a.c a.o"),
        ("gcc -Xpreprocessor -DFOO -c a.c", "remote a.c a.o"),
        ("gcc -Wa,--noexecstack -c a.c", "remote a.c a.o"),
        ("gcc -Wa,--compress-debug-sections -c a.c", "remote a.c a.o"),
        ("gcc -Xassembler --noexecstack -c a.c", "remote a.c a.o"),
        ("gcc -c a.c -lm -L/usr/lib -Wl,-O1 -Xlinker -z -Xlinker now", "remote a.c a.o"),
        ("gcc -c a.c -static -shared -rdynamic -s", "remote a.c a.o"),
        ("gcc -c a.c -T link.ld -u sym -z now -e start", "remote a.c a.o"),
        ("gcc -g -C -c a.c", "local: preprocessor option -C recorded in debug info"),
        ("gcc -C -c a.c", "remote a.c a.o"),
        ("gcc -CC -c a.c", "remote a.c a.o"),
        ("gcc -P -c a.c", "remote a.c a.o"),
        ("gcc -H -c a.c", "remote a.c a.o"),
        ("gcc -g -P -c a.c", "local: preprocessor option -P recorded in debug info"),
        ("gcc -H -g -c a.c", "local: preprocessor option -H recorded in debug info"),
        ("gcc -g0 -C -c a.c", "remote a.c a.o"),
        ("gcc -g -g0 -C -c a.c", "remote a.c a.o"),
        ("gcc -g -Wp,-C -c a.c", "local: preprocessor option -C recorded in debug info"),
        ("gcc -g -Xpreprocessor -fno-show-column -c a.c", "local: preprocessor option -fno-show-column recorded in debug info"),
        ("gcc -undef -c a.c", "remote a.c a.o"),
        ("gcc -g -gdwarf-4 -gz -c a.c", "remote a.c a.o"),
        ("gcc -ggdb -c a.c", "remote a.c a.o"),
        ("gcc -g -fno-working-directory -c a.c", "local: debug info without working directory (-fno-working-directory)"),
        ("gcc -fno-working-directory -c a.c", "remote a.c a.o"),
        ("gcc -g -fno-working-directory -fworking-directory -c a.c", "remote a.c a.o"),
        ("gcc -g3 -c a.c", "local: macro debug info (-g3)"),
        ("gcc -ggdb3 -c a.c", "local: macro debug info (-ggdb3)"),
        ("clang -fdebug-macro -c a.c", "local: macro debug info (-fdebug-macro)"),
        // CMake and autotools.
        (
            "/usr/bin/cc -DFOO -I/x/include -O3 -DNDEBUG -std=gnu11 -MD -MT CMakeFiles/t.dir/a.c.o -MF CMakeFiles/t.dir/a.c.o.d -o CMakeFiles/t.dir/a.c.o -c /src/a.c",
            "remote /src/a.c CMakeFiles/t.dir/a.c.o",
        ),
        (
            "/usr/bin/c++ -DFOO -I/x/include -isystem /y/include -O2 -g -DNDEBUG -std=gnu++17 -fPIC -MD -MT CMakeFiles/t.dir/b.cpp.o -MF CMakeFiles/t.dir/b.cpp.o.d -o CMakeFiles/t.dir/b.cpp.o -c /src/b.cpp",
            "remote /src/b.cpp CMakeFiles/t.dir/b.cpp.o",
        ),
        (
            "/usr/bin/cc -I/src/inc -Wall -Werror=implicit-function-declaration -o CMakeFiles/t.dir/a.c.o -c /src/a.c",
            "remote /src/a.c CMakeFiles/t.dir/a.c.o",
        ),
        (
            "gcc -DHAVE_CONFIG_H -I. -I.. -g -O2 -MT foo.lo -MD -MP -MF .deps/foo.Tpo -c foo.c -fPIC -DPIC -o .libs/foo.o",
            "remote foo.c .libs/foo.o",
        ),
        (
            "gcc -DHAVE_CONFIG_H -I. -I.. -g -O2 -MT foo.lo -MD -MP -MF .deps/foo.Tpo -c foo.c -o foo.o >/dev/null",
            "local: multiple source files",
        ),
        (
            "gcc -DHAVE_CONFIG_H -I. -g -O2 -MT foo.o -MD -MP -MF .deps/foo.Tpo -c -o foo.o foo.c",
            "remote foo.c foo.o",
        ),
        (
            "cc -Wp,-MMD,drivers/.x.o.d -nostdinc -I./arch/x86/include -include ./include/linux/kconfig.h -D__KERNEL__ -fno-strict-aliasing -O2 -c -o drivers/x.o drivers/x.c",
            "remote drivers/x.c drivers/x.o",
        ),
        ("gcc -c a.c -o a.o -fdiagnostics-color=always", "remote a.c a.o"),
        // clang forms.
        ("clang -c a.c -o a.o", "remote a.c a.o"),
        ("clang++ -std=c++20 -stdlib=libc++ -c a.cpp", "remote a.cpp a.o"),
        ("clang -target x86_64-linux-gnu -c a.c", "remote a.c a.o"),
        ("clang --target=aarch64-linux-gnu -c a.c", "remote a.c a.o"),
        ("clang -arch x86_64 -c a.c", "remote a.c a.o"),
        ("clang -arch x86_64 -arch arm64 -c a.c", "local: multiple -arch"),
        ("clang -mllvm -inline-threshold=100 -c a.c", "remote a.c a.o"),
        ("clang -Xclang -fcolor-diagnostics -c a.c", "remote a.c a.o"),
        ("clang -Xclang -load -Xclang p.so -c a.c", "local: -Xclang -load"),
        ("clang -Xclang -emit-llvm -c a.c", "local: -Xclang -emit-llvm"),
        ("clang -Xarch_x86_64 -O2 -c a.c", "local: per-architecture option (-Xarch_x86_64)"),
        ("clang -include-pch a.pch -c a.c", "local: precompiled header (-include-pch)"),
        ("clang -fmodules -c a.m", "local: modules (-fmodules)"),
        ("clang++ -fmodule-file=a.pcm -c a.cpp", "local: modules (-fmodule-file)"),
        ("clang++ -c a.cppm", "local: unsupported language (.cppm)"),
        ("clang++ --precompile a.cppm", "local: linking"),
        ("g++ -fmodules-ts -c a.cpp", "local: modules (-fmodules-ts)"),
        ("clang -fprofile-instr-generate -c a.c", "local: profile instrumentation (-fprofile-instr-generate)"),
        ("clang -fprofile-instr-use=a.profdata -c a.c", "local: profile feedback (-fprofile-instr-use)"),
        ("clang -fprofile-sample-use=a.prof -c a.c", "local: profile feedback (-fprofile-sample-use)"),
        ("clang -fcoverage-mapping -c a.c", "local: coverage (-fcoverage-mapping)"),
        ("clang -fsanitize=cfi -fsanitize-ignorelist=ign.txt -c a.c", "local: reads extra files (-fsanitize-ignorelist)"),
        ("clang -fsanitize-blacklist=b.txt -c a.c", "local: reads extra files (-fsanitize-blacklist)"),
        ("clang -ftime-trace -c a.c", "local: writes extra files (-ftime-trace)"),
        ("clang -fsave-optimization-record -c a.c", "local: writes extra files (-fsave-optimization-record)"),
        ("clang -MJ a.json -c a.c", "local: writes extra files (-MJ)"),
        ("clang -serialize-diagnostics a.dia -c a.c", "local: writes extra files (-serialize-diagnostics)"),
        ("clang --gcc-toolchain=/opt/gcc -c a.c", "local: unrecognised option --gcc-toolchain"),
        ("clang -resource-dir /r -c a.c", "local: unrecognised option -resource-dir"),
        ("clang -x cuda -c a.cu", "local: unsupported language (-x cuda)"),
        ("clang -c a.cu", "local: unsupported language (.cu)"),
        ("clang --cuda-gpu-arch=sm_80 -c a.cu", "local: offloading (--cuda-gpu-arch=sm_80)"),
        ("clang -fopenmp -fopenmp-targets=nvptx64 -c a.c", "local: offloading (-fopenmp-targets)"),
        ("clang -emit-llvm -c a.c", "remote a.c a.o"),
        ("clang -ivfsoverlay o.yaml -c a.c", "remote a.c a.o"),
        ("clang -iframework /F -F/G -c a.m", "remote a.m a.o"),
        // Modes.
        ("gcc a.c", "local: linking"),
        ("gcc a.c -o prog", "local: linking"),
        ("gcc a.o b.o -o prog -lm", "local: linking"),
        ("gcc -S a.c", "local: assembly output (-S)"),
        ("gcc -S -c a.c", "local: assembly output (-S)"),
        ("gcc -E a.c", "local: preprocess only (-E)"),
        ("gcc -E -c a.c", "local: preprocess only (-E)"),
        ("gcc -M a.c", "local: dependency generation only (-M/-MM)"),
        ("gcc -MM -c a.c", "local: dependency generation only (-M/-MM)"),
        ("gcc -Wp,-M -c a.c", "local: dependency generation only (-M/-MM)"),
        ("gcc -fsyntax-only a.c", "local: syntax check only (-fsyntax-only)"),
        ("gcc -fsyntax-only -c a.c", "local: syntax check only (-fsyntax-only)"),
        ("gcc --version", "local: information query (--version)"),
        ("gcc -v -c a.c", "local: information query (-v)"),
        ("gcc -### -c a.c", "local: information query (-###)"),
        ("gcc -dumpmachine", "local: information query (-dumpmachine)"),
        ("gcc -print-file-name=libgcc.a", "local: information query (-print-file-name=libgcc.a)"),
        ("gcc -print-prog-name=cc1", "local: information query (-print-prog-name=cc1)"),
        ("gcc -Q -c a.c", "local: information query (-Q)"),
        // Inputs and outputs.
        ("gcc -c", "local: no source file"),
        ("gcc -c -o a.o", "local: no source file"),
        ("gcc -c a.c b.c", "local: multiple source files"),
        ("gcc -c a.c b.o", "local: multiple source files"),
        ("gcc -c -x c -", "local: source from stdin"),
        ("gcc -c - -x c", "local: source from stdin"),
        ("gcc -c a.c -", "local: source from stdin"),
        ("gcc -c a.c -o -", "local: output to stdout"),
        ("gcc -c a.c -o /dev/null", "local: output to a device (/dev/null)"),
        ("gcc -c a.c -o x.o -o y.o", "local: multiple -o"),
        ("gcc -c a.o", "local: linking (linker input a.o)"),
        ("gcc -c liba.a", "local: linking (linker input liba.a)"),
        ("gcc -c noext", "local: linking (linker input noext)"),
        ("gcc -c .c", "local: linking (linker input .c)"),
        ("gcc -c a.CXX", "local: linking (linker input a.CXX)"),
        ("gcc -c a.s", "local: assembly"),
        ("gcc -c a.S", "local: assembly"),
        ("gcc -c a.sx", "local: assembly"),
        ("gcc -x assembler -c a.c", "local: assembly"),
        ("gcc -x assembler-with-cpp -c a.asm", "local: assembly"),
        ("gcc -c a.h", "local: precompiled header generation"),
        ("g++ -c a.hpp", "local: precompiled header generation"),
        ("g++ -x c++-header -c a.cpp", "local: precompiled header generation"),
        ("gfortran -c a.f90", "local: unsupported language (.f90)"),
        ("gcc -c a.adb", "local: unsupported language (.adb)"),
        ("gcc -x fortran-ish -c a.c", "local: unknown language (-x fortran-ish)"),
        ("gcc -x ada -c a.c", "local: unsupported language (-x ada)"),
        ("gcc -x c -c a.c -x c++ b.c", "local: multiple source files"),
        ("gcc -MD -MF - -c a.c", "local: dependency output to stdout"),
        ("gcc -Wp,-MD,/dev/stdout -c a.c", "local: dependency output to stdout"),
        // Options that keep a compile local.
        ("gcc -fprofile-use -c a.c", "local: profile feedback (-fprofile-use)"),
        ("gcc -fprofile-use=dir -c a.c", "local: profile feedback (-fprofile-use)"),
        ("gcc -fprofile-generate -c a.c", "local: profile instrumentation (-fprofile-generate)"),
        ("gcc -fprofile-arcs -c a.c", "local: profile instrumentation (-fprofile-arcs)"),
        ("gcc -fprofile-update=atomic -c a.c", "local: profile instrumentation (-fprofile-update)"),
        ("gcc -fauto-profile -c a.c", "local: profile feedback (-fauto-profile)"),
        ("gcc -fauto-profile=a.afdo -c a.c", "local: profile feedback (-fauto-profile)"),
        ("gcc -fbranch-probabilities -c a.c", "local: profile feedback (-fbranch-probabilities)"),
        ("gcc --coverage -c a.c", "local: coverage (--coverage)"),
        ("gcc -ftest-coverage -c a.c", "local: coverage (-ftest-coverage)"),
        ("gcc -fplugin=foo.so -c a.c", "local: plugin (-fplugin)"),
        ("gcc -fplugin-arg-foo-bar=1 -c a.c", "local: plugin (-fplugin-arg-foo-bar)"),
        ("gcc -iplugindir=/p -c a.c", "local: plugin (-iplugindir=/p)"),
        ("gcc -specs=my.specs -c a.c", "local: spec file (-specs)"),
        ("gcc -specs my.specs -c a.c", "local: spec file (-specs)"),
        ("gcc -B/opt/bin -c a.c", "local: program prefix (-B)"),
        ("gcc -B /opt/bin -c a.c", "local: program prefix (-B)"),
        ("gcc -wrapper gdb,--args -c a.c", "local: subprocess wrapper (-wrapper)"),
        ("gcc -gsplit-dwarf -c a.c", "local: split DWARF (-gsplit-dwarf)"),
        ("gcc -save-temps -c a.c", "local: keeps temporaries (-save-temps)"),
        ("gcc -save-temps=obj -c a.c", "local: keeps temporaries (-save-temps)"),
        ("gcc -fdump-tree-all -c a.c", "local: writes extra files (-fdump-tree-all)"),
        ("gcc -fdump-rtl-expand -c a.c", "local: writes extra files (-fdump-rtl-expand)"),
        ("gcc -fstack-usage -c a.c", "local: writes extra files (-fstack-usage)"),
        ("gcc -fcallgraph-info -c a.c", "local: writes extra files (-fcallgraph-info)"),
        ("gcc -fcallgraph-info=su -c a.c", "local: writes extra files (-fcallgraph-info)"),
        ("gcc -fopt-info-vec=vec.txt -c a.c", "local: writes extra files (-fopt-info-vec)"),
        ("gcc -fcompare-debug -c a.c", "local: writes extra files (-fcompare-debug)"),
        ("gcc -aux-info protos.h -c a.c", "local: writes extra files (-aux-info)"),
        ("gcc -fdiagnostics-format=json-file -c a.c", "local: writes extra files (-fdiagnostics-format)"),
        ("gcc -Wa,-adhln=a.lst -c a.c", "local: writes extra files (assembler listing -adhln=a.lst)"),
        ("gcc -Wa,-al -c a.c", "local: writes extra files (assembler listing -al)"),
        ("gcc -Wa,-I,incdir -c a.c", "local: reads extra files (assembler option -I)"),
        ("gcc -Wa,-Iincdir -c a.c", "local: reads extra files (assembler option -Iincdir)"),
        ("gcc -Xassembler -al=x.lst -c a.c", "local: writes extra files (assembler listing -al=x.lst)"),
        ("gcc -Wa,@opts -c a.c", "local: reads extra files (assembler option @opts)"),
        ("gcc -march=native -c a.c", "local: -march=native"),
        ("gcc -mtune=native -c a.c", "local: -mtune=native"),
        ("gcc -mcpu=native -c a.c", "local: -mcpu=native"),
        ("gcc -fdirectives-only -c a.c", "local: preprocessor mode (-fdirectives-only)"),
        ("gcc -fpreprocessed -c a.c", "local: preprocessor mode (-fpreprocessed)"),
        ("gcc -traditional-cpp -c a.c", "local: preprocessor mode (-traditional-cpp)"),
        ("gcc -fpch-preprocess -c a.c", "local: precompiled header (-fpch-preprocess)"),
        ("gcc -dD -c a.c", "local: debug dump (-dD)"),
        ("gcc -dA -c a.c", "local: debug dump (-dA)"),
        ("gcc -dumpbase foo -c a.c", "local: auxiliary file naming (-dumpbase)"),
        ("gcc -dumpdir out/ -c a.c", "local: auxiliary file naming (-dumpdir)"),
        ("gcc --include-directory=x -c a.c", "local: unrecognised option --include-directory=x"),
        ("gcc --output=a.o -c a.c", "local: unrecognised option --output=a.o"),
        ("gcc -isomething x -c a.c", "local: unrecognised option -isomething"),
        ("gcc -Xfoo bar -c a.c", "local: unrecognised option -Xfoo"),
        ("gcc -MV -c a.c", "local: unrecognised option -MV"),
        ("gcc -framework Cocoa -c a.m", "local: unrecognised option -framework"),
        ("gcc -c a.c -o", "local: missing argument to -o"),
        ("gcc -c a.c -I", "local: missing argument to -I"),
        ("gcc -c a.c -Xclang", "local: missing argument to -Xclang"),
        // Unknown single-dash flags pass through.
        ("gcc -fsome-future-flag -c a.c", "remote a.c a.o"),
        ("clang -objcmt-migrate-literals -c a.m", "local: unrecognised option -objcmt-migrate-literals"),
        ("gcc -lang-asm -c a.c", "local: unrecognised option -lang-asm"),
        ("gcc -I- -Iinc -c a.c", "remote a.c a.o"),
        ("gcc -mfoo-bar -c a.c", "remote a.c a.o"),
        ("gcc -Wno-unknown-warning -c a.c", "remote a.c a.o"),
    ];

    #[test]
    fn table_of_command_lines() {
        let mut failures = Vec::new();
        for (line, expected) in CASES {
            let got = summary(&classify_line(line));
            if got != *expected {
                failures.push(format!(
                    "{line}\n   expected: {expected}\n   got:      {got}"
                ));
            }
        }
        assert!(CASES.len() >= 150, "only {} cases", CASES.len());
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn remote(line: &str) -> RemoteCompile {
        match classify_line(line) {
            Classification::Remote(r) => r,
            Classification::Local(reason) => panic!("{line}: local: {reason}"),
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

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
    fn environment_that_changes_programs_or_messages_keeps_a_compile_local() {
        for var in [
            "GCC_COMPARE_DEBUG",
            "COMPILER_PATH",
            "GCC_EXEC_PREFIX",
            "GCC_EXTRA_DIAGNOSTIC_OUTPUT",
        ] {
            let env = |name: &str| (name == var).then(|| "x".to_owned());
            let got = classify(&split("gcc -c a.c"), Path::new("/nonexistent-cwd"), &env).unwrap();
            assert_eq!(summary(&got), format!("local: environment variable {var}"));
            let empty = |name: &str| (name == var).then(String::new);
            let got = classify(&split("gcc -c a.c"), Path::new("/nonexistent-cwd"), &empty);
            assert_eq!(summary(&got.unwrap()), "remote a.c a.o", "{var} empty");
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

    // ---- response files -------------------------------------------------

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

    /// Found by `a_remote_split_classifies_back_to_itself`: `-o ''` went
    /// remote, and the wrapper would have had to write an object named "",
    /// where gcc says "output filename may not be empty".
    #[test]
    fn empty_output_name_stays_local() {
        let args: Vec<String> = ["a.c", "-c", "-MF", "a.o", "-o", ""]
            .map(str::to_owned)
            .to_vec();
        let c = classify(&args, Path::new("/nonexistent-cwd"), &no_env).unwrap();
        assert_eq!(summary(&c), "local: empty output file name (-o '')");
    }

    #[test]
    fn precompiled_header_next_to_include_stays_local() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pch.h.gch"), "x").unwrap();
        let args: Vec<String> = words("-include pch.h -c a.c");
        let c = classify(&args, dir.path(), &no_env).unwrap();
        assert_eq!(summary(&c), "local: precompiled header (pch.h.gch)");
        let args: Vec<String> = words("-include other.h -c a.c");
        assert_eq!(
            summary(&classify(&args, dir.path(), &no_env).unwrap()),
            "remote a.c a.o"
        );
    }

    #[test]
    fn driver_environment_stays_local() {
        let env = |k: &str| (k == "GCC_COMPARE_DEBUG").then(|| "1".to_owned());
        let c = classify(&words("-c a.c"), Path::new("/"), &env).unwrap();
        assert_eq!(summary(&c), "local: environment variable GCC_COMPARE_DEBUG");
        let env = |k: &str| (k == "DEPENDENCIES_OUTPUT").then(|| "x.d".to_owned());
        let c = classify(&words("-c a.c"), Path::new("/"), &env).unwrap();
        assert_eq!(summary(&c), "remote a.c a.o");
    }

    /// Every combination of up to three awkward tokens gives an answer, never
    /// a panic.
    #[test]
    fn no_panic_on_awkward_command_lines() {
        const TOKENS: &[&str] = &[
            "",
            "-",
            "--",
            "-c",
            "-o",
            "-x",
            "-x",
            "none",
            "c",
            "-I",
            "-MD",
            "-MF",
            "-MT",
            "-Wp,",
            "-Wp,-MD",
            "-Wa,",
            "-Wa,,",
            "-Xclang",
            "-Xarch_",
            "-D",
            "a.c",
            ".c",
            "a.",
            "/",
            "@",
            "-include",
            "-g",
            "-g0",
            "-P",
            "-E",
            "-M",
            "-f",
            "-f=",
            "-fprofile",
            "-d",
            "-i",
            "--sysroot",
            "-arch",
            "é.c",
            "-o-",
            "-xé",
        ];
        for a in TOKENS {
            for b in TOKENS {
                for c in TOKENS {
                    let args = [a, b, c].map(|t| (*t).to_owned());
                    let _ = classify(&args, Path::new("/nonexistent-cwd"), &no_env);
                }
            }
        }
    }

    // ---- against the real gcc --------------------------------------------

    fn gcc() -> Option<&'static str> {
        let found = Path::new("/usr/bin/gcc").exists();
        if !found {
            eprintln!("SKIPPED: /usr/bin/gcc not found; the gcc comparison tests did not run");
        }
        found.then_some("/usr/bin/gcc")
    }

    const HEADER: &str = "#define N 7\n#define TWICE(x) ((x) + (x))\nstruct pt { int x, y; };\n";
    /// Macros whose expansions are as long as their names, so that the
    /// columns in the line table do not move (see `columns_move_with_macros`).
    const SOURCE: &str = "#include <stdio.h>\n#include \"h.h\"\n\nstatic int tbl[N];\n\nint f(int i) {\n  tbl[i % N] += i;\n  return tbl[0];\n}\n\nint main(int argc, char **argv) {\n  struct pt p = { argc, f(argc) };\n  printf(\"%d %s\\n\", p.x + p.y, argv[0]);\n  return 0;\n}\n";
    /// Macros that expand mid-line to text of another length.
    const MACRO_SOURCE: &str = "#include \"h.h\"\nint g(int a) { int b = TWICE(a) * N; return b + TWICE(b); }\nconst char *name(void) { return __FILE__; }\n";

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["src", "inc", "obj/sub"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("inc/h.h"), HEADER).unwrap();
        std::fs::write(d.join("src/a.c"), SOURCE).unwrap();
        std::fs::write(d.join("src/m.c"), MACRO_SOURCE).unwrap();
        dir
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

    fn run(gcc: &str, args: &[String], cwd: &Path, env: &[(&str, &str)]) -> std::process::Output {
        let out = Command::new(gcc)
            .args(args)
            .current_dir(cwd)
            .env_remove("DEPENDENCIES_OUTPUT")
            .env_remove("SUNPRO_DEPENDENCIES")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gcc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// Properties over arbitrary command lines: real gcc options from a
/// vocabulary mixed with random words, empty words and `@file` response
/// files (nested, missing, devices). Classification never panics, is
/// deterministic, and the two command lines of a remote split classify
/// back to the same split.
#[cfg(test)]
mod properties {
    use super::*;
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
}
