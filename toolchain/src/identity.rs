//! A compiler's identity: blake3 over the driver binary, the compiler proper
//! it runs (`cc1`, `cc1plus` for gcc; clang is its own compiler proper) and
//! its `-v` output with path-dependent lines removed. Two installs with equal
//! identities produce the same objects from the same preprocessed input.
//!
//! Hashing ~60 MB of gcc internals costs tens of milliseconds, so results
//! are cached in a small JSON file per compiler path, trusted while every
//! hashed file keeps its size, mtime and inode.

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
    compute(compiler).map(|(identity, _)| identity)
}

/// Size, mtime and inode of one hashed file: the cache is valid while they
/// hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    ino: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ino: meta.ino(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    identity: Identity,
    stamps: Vec<Stamp>,
}

fn compute(compiler: &Path) -> Result<(Identity, Vec<Stamp>), ToolchainError> {
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
    Ok((identity, stamps))
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
        if let Some(identity) = self.lookup(&entry_path) {
            return Ok(identity);
        }
        let (identity, stamps) = compute(compiler)?;
        let entry = CacheEntry {
            identity: identity.clone(),
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

    fn lookup(&self, entry_path: &Path) -> Option<Identity> {
        let bytes = fs::read(entry_path).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        let fresh = entry
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

    #[test]
    fn a_non_compiler_is_refused() {
        assert!(identify(Path::new("/bin/true")).is_err());
        assert!(identify(Path::new("/nonexistent/gcc")).is_err());
    }
}
