//! Options with a value, joined (`-Ifoo`) or separate (`-I foo`): where
//! each goes in the split, and which keep a compile local.

use super::{Dest, Scan};
use crate::args::input::{kind_from_x, InputKind};
use crate::args::LocalReason;

/// `-Xclang` values that only change how diagnostics look.
const HARMLESS_XCLANG: &[&str] = &[
    "-fcolor-diagnostics",
    "-fno-color-diagnostics",
    "-fdiagnostics-show-option",
];

impl Scan<'_> {
    /// An option with a value. `items` is how it was written (one or two
    /// arguments), kept together wherever it goes.
    pub(super) fn valued(&mut self, name: &str, value: &str, items: &[&str]) {
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
                self.deps.mf(value);
                Dest::Preprocess
            }
            "-MT" | "-MQ" => {
                self.deps.target();
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
}
