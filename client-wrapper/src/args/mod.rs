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
//! The parts, in the order a command line meets them:
//! - `response_file`: `@file` expansion with gcc's quoting, within limits;
//!   [`ArgsError`] when a command line cannot be read.
//! - `scan`: the walk over the arguments (which are options, which take a
//!   value, which are inputs) and where each goes in the split; its rules
//!   for each family of options are in `scan/flag.rs`, `scan/valued.rs`
//!   and `scan/forwarded.rs`, and `scan/decide.rs` turns what the walk saw
//!   into a [`Classification`].
//! - `dep_file`: the dependency-file options (`-MD`, `-MF`, `-MQ`, …): the
//!   files a compile writes besides the object, and the options that make
//!   the preprocessing step alone write them.
//! - `input`: what gcc makes of an input ([`Language`] from `-x` or the
//!   suffix) and the names it derives from it.
//! - `reason`: [`LocalReason`], every reason to compile locally, shown as
//!   one line.
//!
//! Findings this module relies on (gcc 12, checked against the real gcc by
//! the tests in `dep_file.rs` and `scan/decide.rs`):
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

mod dep_file;
mod input;
#[cfg(test)]
mod properties;
mod reason;
mod response_file;
mod scan;

pub use input::Language;
pub use reason::LocalReason;
pub use response_file::{expand_response_files, ArgsError};

use scan::Scan;
use std::path::Path;

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

/// The whole classifier, table-driven, and what the tests of its parts
/// share: command lines written as one string, and the real gcc.
#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    pub(super) fn no_env(_: &str) -> Option<String> {
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
    pub(super) fn summary(c: &Classification) -> String {
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
        ("gcc -fdiagnostics-generate-patch -c a.c", "local: diagnostics quote source files (-fdiagnostics-generate-patch)"),
        ("gcc -fdiagnostics-format=sarif-stderr -c a.c", "local: diagnostics quote source files (-fdiagnostics-format)"),
        ("gcc -fdiagnostics-format=sarif-file -c a.c", "local: diagnostics quote source files (-fdiagnostics-format)"),
        ("gcc -fno-diagnostics-generate-patch -c a.c", "remote a.c a.o"),
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

    pub(super) fn remote(line: &str) -> RemoteCompile {
        match classify_line(line) {
            Classification::Remote(r) => r,
            Classification::Local(reason) => panic!("{line}: local: {reason}"),
        }
    }

    pub(super) fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
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

    // ---- the real gcc, for the tests that compare against it -------------

    pub(super) fn gcc() -> Option<&'static str> {
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

    pub(super) fn project() -> tempfile::TempDir {
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

    pub(super) fn run(
        gcc: &str,
        args: &[String],
        cwd: &Path,
        env: &[(&str, &str)],
    ) -> std::process::Output {
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
}
