//! What gcc makes of an input file: its language, from `-x` or from the
//! file name's suffix, and the names gcc derives from it when the command
//! line gives none.

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

/// What a `-x` name or a file suffix makes of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum InputKind {
    Source(Language),
    Header,
    Unsupported(String),
    Unknown(String),
    Linker,
}

pub(super) fn kind_from_x(name: &str) -> Option<InputKind> {
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

pub(super) fn kind_from_suffix(path: &str) -> InputKind {
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

pub(super) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// gcc's `%b`: the basename without its last suffix (a leading dot is not a
/// suffix).
pub(super) fn strip_suffix(base: &str) -> &str {
    match base.rfind('.') {
        Some(pos) if pos > 0 => &base[..pos],
        _ => base,
    }
}

/// The object gcc writes for `-c` without `-o`: `%b.o` in the working
/// directory.
pub(super) fn default_object(source: &str) -> String {
    format!("{}.o", strip_suffix(basename(source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_suffixes_and_x_names() {
        for (path, kind) in [
            ("a.c", InputKind::Source(Language::C)),
            ("a.C", InputKind::Source(Language::Cxx)),
            ("a.ii", InputKind::Source(Language::PreprocessedCxx)),
            ("a.S", InputKind::Source(Language::AsmCpp)),
            ("a.hpp", InputKind::Header),
            ("a.f90", InputKind::Unsupported(".f90".to_owned())),
            // A leading dot is not a suffix; a dot in a directory is none.
            (".c", InputKind::Linker),
            ("dir.c/noext", InputKind::Linker),
            ("a.CXX", InputKind::Linker),
        ] {
            assert_eq!(kind_from_suffix(path), kind, "{path}");
        }
        for (name, kind) in [
            ("none", None),
            ("c++", Some(InputKind::Source(Language::Cxx))),
            (
                "objc-cpp-output",
                Some(InputKind::Source(Language::PreprocessedObjC)),
            ),
            ("c-header", Some(InputKind::Header)),
            ("ada", Some(InputKind::Unsupported("-x ada".to_owned()))),
            (
                "fortran-ish",
                Some(InputKind::Unknown("fortran-ish".to_owned())),
            ),
        ] {
            assert_eq!(kind_from_x(name), kind, "-x {name}");
        }
    }

    #[test]
    fn the_object_gcc_names_without_o() {
        for (source, object) in [
            ("a.c", "a.o"),
            ("src/a.c", "a.o"),
            ("a.b.c", "a.b.o"),
            ("noext", "noext.o"),
            (".c", ".c.o"),
            ("dir.x/noext", "noext.o"),
        ] {
            assert_eq!(default_object(source), object, "{source}");
        }
    }
}
