//! A compiler's identity: blake3 over the driver binary, the compiler proper
//! it runs (`cc1`, `cc1plus` for gcc; clang is its own compiler proper) and
//! its `-v` output with path-dependent lines removed. Two installs with equal
//! identities produce the same objects from the same preprocessed input.
//!
//! Hashing ~60 MB of gcc internals costs tens of milliseconds, so results
//! are cached in a small JSON file per compiler path, trusted while the
//! path still resolves to the same driver and every hashed file keeps its
//! size, mtime, ctime and inode. The ctime matters: an edit in place whose
//! mtime is put back (`touch -r`, `cp -p` over the file) cannot reset it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::ToolchainError;

/// The identity of one compiler install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Hex blake3 digest.
    pub digest: String,
    /// The `gcc version …` / `clang version …` line, for humans.
    pub version: String,
}

/// Computes a compiler's identity without any cache.
pub fn identify(compiler: &Path) -> Result<Identity, ToolchainError> {
    compute(compiler).map(|(identity, _, _)| identity)
}

/// Size, mtime, ctime and inode of one hashed file: the cache is valid
/// while they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    identity: Identity,
    /// The driver the compiler path resolved to. A symlink retargeted to
    /// another install (`update-alternatives`) leaves the old install's
    /// stamps intact, so the path must still resolve here.
    driver: PathBuf,
    stamps: Vec<Stamp>,
}

fn compute(compiler: &Path) -> Result<(Identity, PathBuf, Vec<Stamp>), ToolchainError> {
    let driver = fs::canonicalize(compiler).map_err(|source| ToolchainError::Read {
        path: compiler.to_owned(),
        source,
    })?;
    let mut files = vec![driver.clone()];
    // gcc's driver runs cc1/cc1plus, which do the real work; clang answers
    // with the bare name (it has no separate compiler proper).
    for prog in ["cc1", "cc1plus"] {
        if let Ok(out) = Command::new(&driver)
            .arg(format!("-print-prog-name={prog}"))
            .output()
        {
            let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let path = PathBuf::from(&found);
            if out.status.success() && path.is_absolute() && path.is_file() {
                files.push(fs::canonicalize(&path).unwrap_or(path));
            }
        }
    }

    let out = Command::new(&driver)
        .arg("-v")
        .output()
        .map_err(|source| ToolchainError::Run {
            path: driver.clone(),
            source,
        })?;
    let verbose =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let version = verbose
        .lines()
        .find(|l| l.contains(" version "))
        .map(str::to_owned)
        .ok_or_else(|| ToolchainError::NotACompiler {
            path: driver.clone(),
        })?;

    let mut hasher = blake3::Hasher::new();
    hasher.update(b"gridcc-toolchain-v1\0");
    // COLLECT_GCC names the path the driver was called by, which differs
    // between `cc`, `gcc` and `/usr/bin/gcc` of one install.
    for line in verbose.lines().filter(|l| !l.starts_with("COLLECT_")) {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    let mut stamps = Vec::with_capacity(files.len());
    for file in &files {
        let bytes = fs::read(file).map_err(|source| ToolchainError::Read {
            path: file.clone(),
            source,
        })?;
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        stamps.push(Stamp::of(file).map_err(|source| ToolchainError::Read {
            path: file.clone(),
            source,
        })?);
    }
    let identity = Identity {
        digest: hasher.finalize().to_hex().to_string(),
        version,
    };
    Ok((identity, driver, stamps))
}

/// On-disk cache of identities, one small JSON file per compiler path.
#[derive(Debug, Clone)]
pub struct IdentityCache {
    dir: PathBuf,
}

impl IdentityCache {
    /// A cache stored in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn entry_path(&self, compiler: &Path) -> PathBuf {
        let key = blake3::hash(compiler.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{}.json", &key.to_hex()[..32]))
    }

    /// The identity of `compiler` (an absolute path), from the cache while it
    /// is valid, computed and stored otherwise. A broken cache file is
    /// ignored and rewritten.
    pub fn identify(&self, compiler: &Path) -> Result<Identity, ToolchainError> {
        let entry_path = self.entry_path(compiler);
        if let Some(identity) = self.lookup(compiler, &entry_path) {
            return Ok(identity);
        }
        let (identity, driver, stamps) = compute(compiler)?;
        let entry = CacheEntry {
            identity: identity.clone(),
            driver,
            stamps,
        };
        // A failed cache write costs only speed; the identity is still right.
        if let Ok(json) = serde_json::to_vec(&entry) {
            let _ = fs::create_dir_all(&self.dir).and_then(|()| {
                let tmp = entry_path.with_extension(format!("tmp{}", std::process::id()));
                fs::write(&tmp, json)?;
                fs::rename(&tmp, &entry_path)
            });
        }
        Ok(identity)
    }

    fn lookup(&self, compiler: &Path, entry_path: &Path) -> Option<Identity> {
        let bytes = fs::read(entry_path).ok()?;
        // An entry written before a field existed does not parse: recomputed.
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        let fresh = fs::canonicalize(compiler).is_ok_and(|d| d == entry.driver)
            && entry
                .stamps
                .iter()
                .all(|s| Stamp::of(&s.path).is_ok_and(|now| now == *s));
        fresh.then_some(entry.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcc() -> PathBuf {
        PathBuf::from("/usr/bin/gcc")
    }

    #[test]
    fn gcc_and_its_aliases_share_an_identity() {
        let gcc = identify(&gcc()).unwrap();
        assert_eq!(gcc.digest.len(), 64);
        assert!(gcc.version.contains("gcc version"), "{}", gcc.version);
        // /usr/bin/cc is the same install under another name.
        if Path::new("/usr/bin/cc").exists() {
            let cc = identify(Path::new("/usr/bin/cc")).unwrap();
            if fs::canonicalize("/usr/bin/cc").unwrap() == fs::canonicalize("/usr/bin/gcc").unwrap()
            {
                assert_eq!(cc.digest, gcc.digest);
            }
        }
        let gxx = identify(Path::new("/usr/bin/g++")).unwrap();
        assert_ne!(gxx.digest, gcc.digest);
    }

    #[test]
    fn cache_returns_the_computed_identity_and_survives_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IdentityCache::new(dir.path().to_owned());
        let first = cache.identify(&gcc()).unwrap();
        let entry = cache.entry_path(&gcc());
        assert!(entry.exists());
        assert_eq!(cache.identify(&gcc()).unwrap(), first);
        fs::write(&entry, b"{not json").unwrap();
        assert_eq!(cache.identify(&gcc()).unwrap(), first);
    }

    /// A script that runs gcc with `-DV=<v>`: a compiler of its own (its
    /// bytes are hashed), and always the same size.
    fn script(path: &Path, v: u32) {
        fs::write(path, format!("#!/bin/sh\nexec gcc -DV={v} \"$@\"\n")).unwrap();
        let mut perms = fs::metadata(path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(path, perms).unwrap();
    }

    #[test]
    fn a_compiler_changed_in_place_with_its_mtime_put_back_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IdentityCache::new(dir.path().join("ids"));
        let cc = dir.path().join("cc");
        script(&cc, 1);
        let first = cache.identify(&cc).unwrap();
        let meta = fs::metadata(&cc).unwrap();
        script(&cc, 2);
        fs::File::options()
            .write(true)
            .open(&cc)
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        let now = fs::metadata(&cc).unwrap();
        assert_eq!(
            (now.len(), now.modified().unwrap(), now.ino()),
            (meta.len(), meta.modified().unwrap(), meta.ino())
        );
        let second = cache.identify(&cc).unwrap();
        assert_ne!(first.digest, second.digest);
        assert_eq!(second, identify(&cc).unwrap());
    }

    #[test]
    fn a_retargeted_symlink_is_another_compiler() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IdentityCache::new(dir.path().join("ids"));
        let (a, b, link) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("cc"),
        );
        script(&a, 1);
        script(&b, 2);
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let first = cache.identify(&link).unwrap();
        assert_eq!(first, identify(&a).unwrap());
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&b, &link).unwrap();
        let second = cache.identify(&link).unwrap();
        assert_eq!(second, identify(&b).unwrap());
        assert_ne!(first.digest, second.digest);
    }

    #[test]
    fn a_non_compiler_is_refused() {
        assert!(identify(Path::new("/bin/true")).is_err());
        assert!(identify(Path::new("/nonexistent/gcc")).is_err());
    }
}
