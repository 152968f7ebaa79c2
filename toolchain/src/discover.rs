//! Finding the compilers on a worker: every gcc/g++/cc/c++/clang/clang++
//! (optionally with a target prefix and a version suffix) in `PATH`, grouped
//! by identity so that `cc`, `gcc` and `gcc-12` of one install are one
//! toolchain with several names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::identity::{Identity, IdentityCache};

/// One toolchain found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub identity: Identity,
    /// Path used to run it.
    pub path: PathBuf,
    /// Every name it was found under.
    pub names: Vec<String>,
}

/// True for compiler driver names: `gcc`, `g++`, `cc`, `c++`, `clang`,
/// `clang++`, with an optional `target-` prefix and `-version` suffix
/// (`x86_64-linux-gnu-gcc-12`), but not tools like `gcc-ar` or `clang-tidy`.
pub fn is_compiler_name(name: &str) -> bool {
    const BASES: [&str; 6] = ["clang++", "clang", "g++", "gcc", "c++", "cc"];
    let without_version = match name.rsplit_once('-') {
        Some((head, tail))
            if !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            head
        }
        _ => name,
    };
    BASES.iter().any(|base| {
        without_version == *base
            || without_version
                .strip_suffix(base)
                .is_some_and(|prefix| prefix.ends_with('-') && prefix.len() > 1)
    })
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// Scans `path_var` (a `PATH`-style list) for compilers, skipping `skip`
/// (the running executable, so a masquerading gridcc is never offered).
pub fn discover(path_var: &str, cache: &IdentityCache, skip: Option<&Path>) -> Vec<Discovered> {
    let skip = skip.and_then(|p| std::fs::canonicalize(p).ok());
    let mut by_digest: BTreeMap<String, Discovered> = BTreeMap::new();
    for dir in std::env::split_paths(path_var) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_compiler_name(n))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue;
            };
            // Compilers are native binaries; this skips shell wrappers such
            // as Debian's c89-gcc, which are not the compiler they run.
            if skip.as_deref() == Some(real.as_path()) || !is_elf(&real) {
                continue;
            }
            let Ok(identity) = cache.identify(&path) else {
                continue;
            };
            by_digest
                .entry(identity.digest.clone())
                .and_modify(|d| {
                    if !d.names.contains(&name) {
                        d.names.push(name.clone());
                    }
                })
                .or_insert_with(|| Discovered {
                    identity,
                    path: path.clone(),
                    names: vec![name.clone()],
                });
        }
    }
    let mut found: Vec<Discovered> = by_digest.into_values().collect();
    // The plain driver name first (`gcc` rather than `cc` or
    // `x86_64-linux-gnu-gcc-12`), then shortest.
    const PLAIN: [&str; 4] = ["gcc", "g++", "clang", "clang++"];
    for d in &mut found {
        d.names
            .sort_by_key(|n| (!PLAIN.contains(&n.as_str()), n.len(), n.clone()));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_compiler_names_only() {
        for yes in [
            "gcc",
            "g++",
            "cc",
            "c++",
            "clang",
            "clang++",
            "gcc-12",
            "clang-14",
            "x86_64-linux-gnu-gcc-12",
            "x86_64-linux-gnu-g++",
            "clang++-14",
        ] {
            assert!(is_compiler_name(yes), "{yes}");
        }
        for no in [
            "gcc-ar",
            "gcc-nm",
            "clang-tidy",
            "cpp",
            "ld",
            "gridcc",
            "-gcc",
            "occ",
            "gcc-",
            "ccache",
        ] {
            assert!(!is_compiler_name(no), "{no}");
        }
    }

    #[test]
    fn finds_system_gcc_and_groups_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IdentityCache::new(dir.path().to_owned());
        let found = discover("/usr/bin", &cache, None);
        let gcc = found
            .iter()
            .find(|d| d.names.iter().any(|n| n == "gcc"))
            .unwrap();
        assert!(
            !found.iter().any(|d| d.names.iter().any(|n| n == "c89-gcc")),
            "scripts are skipped"
        );
        assert_eq!(gcc.names[0], "gcc", "{:?}", gcc.names);
        assert!(gcc.identity.version.contains("gcc version"));
        let gxx = found
            .iter()
            .find(|d| d.names.iter().any(|n| n == "g++"))
            .unwrap();
        assert_ne!(gcc.identity.digest, gxx.identity.digest);
    }
}
