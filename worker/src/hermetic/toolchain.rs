//! The files one compiler needs inside a sandbox: its driver, the programs
//! the driver runs for a `-c` compile (cc1, cc1plus, as), every shared
//! library they load, the dynamic loader, and the symlinks met on the way
//! to each, so the paths the kernel and the loader resolve exist inside.
//! Never the compiler's include dirs: headers come from the client's tree.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::HermeticError;

/// The files of one compiler that must exist inside the sandbox, read-only,
/// at their own paths. Computed once per compiler at worker start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolchainFiles {
    /// Regular files, at their real paths (no symlink on the way), sorted.
    pub files: Vec<PathBuf>,
    /// `(link path, target as stored in the link)`, sorted by link path:
    /// `/lib64 -> usr/lib64`, `/usr/bin/gcc -> gcc-12`, …
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    /// The directories the driver searches for the programs it runs by
    /// name (`as`): the sandbox's `PATH`.
    pub path: Vec<PathBuf>,
    /// Directories of data the compiler reads by locale, bound read-only
    /// whole: the locale definitions (`/usr/lib/locale`, so `LANG=C.UTF-8`
    /// gives gcc's typographic quotes as it does locally) and the message
    /// catalogs (`/usr/share/locale`, for translated diagnostics). Public
    /// data of the system, never a header.
    pub data_dirs: Vec<PathBuf>,
}

/// The locale data a compile reads, where the system has it.
const LOCALE_DIRS: &[&str] = &["/usr/lib/locale", "/usr/share/locale"];

impl ToolchainFiles {
    /// The file `path` names inside the sandbox, following only the
    /// toolchain's own symlinks (no file system access); `None` unless it
    /// is one of [`Self::files`].
    pub fn resolve_inside(&self, path: &Path) -> Option<PathBuf> {
        if !path.is_absolute() {
            return None;
        }
        let mut pending = Vec::new();
        push_components(&mut pending, path);
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let next = cur.join(&c);
            match self.symlinks.iter().find(|(link, _)| *link == next) {
                Some((_, target)) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.is_absolute() {
                        cur = PathBuf::from("/");
                    }
                    push_components(&mut pending, target);
                }
                None => cur = next,
            }
        }
        self.files.contains(&cur).then_some(cur)
    }
}

/// Programs a gcc-style driver runs for `-c`, asked with
/// `-print-prog-name`: the compilers proper by absolute path, `as` by name.
const PROGRAMS: &[&str] = &["cc1", "cc1plus", "as"];

/// The toolchain closure of `driver` (an absolute path): see
/// [`ToolchainFiles`]. Runs the driver (`-print-prog-name`) and `ldd`.
pub fn toolchain_files(driver: &Path) -> Result<ToolchainFiles, HermeticError> {
    if !driver.is_absolute() {
        return Err(HermeticError::NotAbsolute(driver.to_owned()));
    }
    let mut programs = vec![driver.to_owned()];
    let mut path = Vec::new();
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    for prog in PROGRAMS {
        let out = Command::new(driver)
            .arg(format!("-print-prog-name={prog}"))
            .env_clear()
            .env("PATH", &search)
            .output()
            .map_err(|source| HermeticError::Run {
                program: driver.to_owned(),
                source,
            })?;
        let name = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if name.is_absolute() {
            // An absolute answer is a file the driver found in its own
            // prefix; clang, say, has no cc1 file and answers the bare name.
            if name.is_file() {
                programs.push(name);
            }
        } else if let Some(found) = find_in_path(&name, &search) {
            // The driver will run it by name through PATH: the sandbox's
            // PATH holds that directory and nothing else.
            if let Some(dir) = found.parent() {
                if !path.iter().any(|d: &PathBuf| d == dir) {
                    path.push(dir.to_owned());
                }
            }
            programs.push(found);
        }
    }
    closure(&programs, path)
}

/// The files, loader and symlinks `programs` need to run.
pub(crate) fn closure(
    programs: &[PathBuf],
    path: Vec<PathBuf>,
) -> Result<ToolchainFiles, HermeticError> {
    let mut files = BTreeSet::new();
    let mut links = BTreeMap::new();
    for program in programs {
        let real = resolve(program, &mut links)?;
        let out = Command::new("ldd")
            .arg(&real)
            .env_clear()
            .output()
            .map_err(|source| HermeticError::Run {
                program: "ldd".into(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        // A static program: ldd says so and exits 1; it loads nothing.
        if out.status.success() {
            for lib in parse_ldd(&text).map_err(|lib| HermeticError::MissingLibrary {
                program: real.clone(),
                lib,
            })? {
                files.insert(resolve(&lib, &mut links)?);
            }
        }
        files.insert(real);
    }
    let data_dirs = LOCALE_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| {
            // A real directory only: a symlink would be followed on the host.
            std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir())
                && d.ancestors()
                    .skip(1)
                    .all(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.is_dir()))
        })
        .collect();
    Ok(ToolchainFiles {
        files: files.into_iter().collect(),
        symlinks: links.into_iter().collect(),
        path,
        data_dirs,
    })
}

fn find_in_path(name: &Path, search: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The libraries in `ldd`'s output, loader included, as it printed their
/// paths (symlinks not resolved); `Err(name)` for a library not found.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once(" => ") {
            Some((name, rest)) => {
                if rest.starts_with("not found") {
                    return Err(name.to_owned());
                }
                rest.split(" (").next().unwrap_or(rest)
            }
            // The loader (`/lib64/ld-linux-x86-64.so.2 (0x…)`), or the
            // vDSO, which is no file.
            None => line.split(" (").next().unwrap_or(line),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// The real path of `path`, recording each symlink met on the way (also in
/// parent directories) with its target as stored.
fn resolve(path: &Path, links: &mut BTreeMap<PathBuf, PathBuf>) -> Result<PathBuf, HermeticError> {
    if !path.is_absolute() {
        return Err(HermeticError::NotAbsolute(path.to_owned()));
    }
    // Components still to walk, last first; `cur` never holds a symlink, so
    // `..` is its parent lexically as well as physically.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        let meta = std::fs::symlink_metadata(&next).map_err(|source| HermeticError::Io {
            path: next.clone(),
            source,
        })?;
        if !meta.file_type().is_symlink() {
            cur = next;
            continue;
        }
        hops += 1;
        if hops > 40 {
            return Err(HermeticError::SymlinkLoop(path.to_owned()));
        }
        let target = std::fs::read_link(&next).map_err(|source| HermeticError::Io {
            path: next.clone(),
            source,
        })?;
        if target.is_absolute() {
            cur = PathBuf::from("/");
        }
        push_components(&mut pending, &target);
        links.insert(next, target);
    }
    Ok(cur)
}

/// Pushes `path`'s components onto `pending` so the first pops first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f46)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f46)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert_eq!(
            parse_ldd("\tlibisl.so.23 => not found\n"),
            Err("libisl.so.23".to_owned())
        );
    }

    #[test]
    fn symlinks_are_recorded_on_the_way_to_the_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(d.join("usr/lib64")).unwrap();
        std::fs::create_dir_all(d.join("usr/lib/x")).unwrap();
        std::fs::write(d.join("usr/lib/x/ld.so"), b"").unwrap();
        std::os::unix::fs::symlink("usr/lib64", d.join("lib64")).unwrap();
        std::os::unix::fs::symlink("usr/lib", d.join("lib")).unwrap();
        std::os::unix::fs::symlink(d.join("lib/x/ld.so"), d.join("usr/lib64/ld.so")).unwrap();
        let mut links = BTreeMap::new();
        let real = resolve(&d.join("lib64/ld.so"), &mut links).unwrap();
        assert_eq!(real, d.join("usr/lib/x/ld.so"));
        let want: BTreeMap<PathBuf, PathBuf> = [
            (d.join("lib64"), PathBuf::from("usr/lib64")),
            (d.join("usr/lib64/ld.so"), d.join("lib/x/ld.so")),
            (d.join("lib"), PathBuf::from("usr/lib")),
        ]
        .into_iter()
        .collect();
        assert_eq!(links, want);

        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        assert!(matches!(
            resolve(&d.join("loop"), &mut links),
            Err(HermeticError::SymlinkLoop(_))
        ));
    }

    fn check_gcc_closure(driver: &str, compiler: &str) {
        if !Path::new(driver).exists() {
            eprintln!("SKIPPED: no {driver}");
            return;
        }
        let t = toolchain_files(Path::new(driver)).unwrap();
        let has = |suffix: &str| t.files.iter().any(|f| f.ends_with(suffix));
        assert!(has(compiler), "{compiler} in {:?}", t.files);
        assert!(
            t.files.iter().any(|f| {
                let n = f.file_name().unwrap().to_string_lossy();
                n == "as" || n.ends_with("-as")
            }),
            "as in {:?}",
            t.files
        );
        assert!(has("libc.so.6"), "libc in {:?}", t.files);
        assert!(
            t.files.iter().any(|f| f
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ld-linux")),
            "the loader in {:?}",
            t.files
        );
        for f in &t.files {
            assert!(
                !f.components().any(|c| c.as_os_str() == "include"),
                "{} is under an include dir",
                f.display()
            );
            assert!(f.is_file(), "{}", f.display());
            // Real paths: no symlink anywhere on the way.
            assert_eq!(&f.canonicalize().unwrap(), f);
        }
        // The driver as invoked, a symlink here, resolves inside too.
        let mut seen = BTreeMap::new();
        let real = resolve(Path::new(driver), &mut seen).unwrap();
        assert!(t.files.contains(&real));
        assert_eq!(t.resolve_inside(Path::new(driver)), Some(real.clone()));
        assert_eq!(t.resolve_inside(Path::new("/usr/bin/python3")), None);
        let via_bin = Path::new("/bin").join(Path::new(driver).file_name().unwrap());
        if seen.contains_key(Path::new("/bin")) {
            assert_eq!(t.resolve_inside(&via_bin), Some(real));
        }
        for link in seen {
            assert!(t.symlinks.contains(&link), "{link:?}");
        }
        assert!(!t.path.is_empty(), "a directory to find `as` in");
    }

    #[test]
    fn gcc_needs_cc1_as_libc_and_the_loader_and_no_headers() {
        check_gcc_closure("/usr/bin/gcc", "cc1");
    }

    #[test]
    fn gxx_needs_cc1plus_as_libc_and_the_loader_and_no_headers() {
        check_gcc_closure("/usr/bin/g++", "cc1plus");
    }
}
