//! The walk over one command line: which arguments are options, which
//! options take a value (joined or separate), which arguments are inputs,
//! and where each goes in the split: the preprocessing command, the
//! remote compile, or neither. The rules for each family of options are in
//! the child modules: `flag` (no value), `valued` (a value) and
//! `forwarded` (options for the preprocessor and the assembler); `decide`
//! turns what the walk saw into a [`Classification`].

mod decide;
mod flag;
mod forwarded;
mod valued;

use std::path::Path;

use super::dep_file::DepFiles;
use super::input::{kind_from_suffix, InputKind};
use super::{Classification, LocalReason};

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

struct Input {
    path: String,
    kind: InputKind,
}

/// What the walk has seen so far; `decide` turns it into the answer.
pub(super) struct Scan<'a> {
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
    /// `-MD`, `-MF`, `-MT`/`-MQ` and the preprocessor's own dependency files.
    deps: DepFiles,
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
    pub(super) fn new(cwd: &'a Path) -> Self {
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
            deps: DepFiles::default(),
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

    pub(super) fn run(mut self, args: &[String]) -> Classification {
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

    fn record(&mut self, option: &str) {
        if self.recorded.is_none() {
            self.recorded = Some(option.to_owned());
        }
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
