//! Finding the real compiler. `gridcc gcc …` looks `gcc` up in `PATH`;
//! `gridcc /usr/bin/cc …` (CMake's launcher form) uses the path as given; a
//! `gcc -> gridcc` symlink (masquerade) looks its own name up in `PATH`. In
//! every case a candidate that is gridcc itself is skipped, so gridcc never
//! calls itself, and the child's `PATH` loses the directories that hold
//! gridcc symlinks.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The compiler to run and the `PATH` to run it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: PathBuf,
    /// `PATH` without directories whose entry of this name is gridcc.
    pub child_path: Option<OsString>,
}

/// Why no compiler could be found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("compiler {0:?} not found in PATH (gridcc itself skipped)")]
    NotFound(String),
    #[error("{0} is gridcc itself; name the real compiler")]
    IsGridcc(PathBuf),
}

fn is_same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves `name` against `path_var`, skipping `own_exe`.
pub fn resolve(
    name: &str,
    path_var: Option<&OsString>,
    own_exe: &Path,
) -> Result<Resolved, ResolveError> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        if is_same_file(&path, own_exe) {
            return Err(ResolveError::IsGridcc(path));
        }
        return Ok(Resolved {
            path,
            child_path: None,
        });
    }
    let dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    let mut skipped = Vec::new();
    for dir in &dirs {
        // An empty PATH entry means the current directory.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let candidate = dir.join(name);
        if !is_executable(&candidate) {
            continue;
        }
        if is_same_file(&candidate, own_exe) {
            skipped.push(dir.to_owned());
            continue;
        }
        let child_path = if skipped.is_empty() {
            None
        } else {
            let kept = dirs.iter().filter(|d| !skipped.contains(d));
            std::env::join_paths(kept).ok()
        };
        return Ok(Resolved {
            path: candidate,
            child_path,
        });
    }
    Err(ResolveError::NotFound(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn finds_the_real_compiler_behind_a_masquerade_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("gridcc");
        std::fs::copy("/bin/true", &own).unwrap();
        let shims = dir.path().join("shims");
        std::fs::create_dir(&shims).unwrap();
        symlink(&own, shims.join("gcc")).unwrap();
        let path = std::env::join_paths([shims.as_path(), Path::new("/usr/bin")]).unwrap();
        let found = resolve("gcc", Some(&path), &own).unwrap();
        assert_eq!(found.path, Path::new("/usr/bin/gcc"));
        assert_eq!(found.child_path, Some(OsString::from("/usr/bin")));
    }

    #[test]
    fn never_resolves_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("gridcc");
        std::fs::copy("/bin/true", &own).unwrap();
        symlink(&own, dir.path().join("gcc")).unwrap();
        let path = OsString::from(dir.path());
        assert_eq!(
            resolve("gcc", Some(&path), &own),
            Err(ResolveError::NotFound("gcc".into()))
        );
        let abs = dir.path().join("gcc");
        assert_eq!(
            resolve(abs.to_str().unwrap(), None, &own),
            Err(ResolveError::IsGridcc(abs.clone()))
        );
    }

    #[test]
    fn absolute_compiler_paths_are_used_as_given() {
        let found = resolve("/usr/bin/cc", None, Path::new("/nonexistent/gridcc")).unwrap();
        assert_eq!(found.path, Path::new("/usr/bin/cc"));
    }
}
