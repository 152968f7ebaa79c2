//! Inputs kept by content: blobs on disk named by their blake3 digest,
//! bounded in bytes, least recently used evicted first. A client that
//! offers an input by digest uploads it only when the store lacks it.
//!
//! On disk, not in memory: the worker's resident memory is then its own
//! working set, whatever the job mix, and a spawn of the compiler does not
//! copy the page tables of a few hundred megabytes of kept inputs. The page
//! cache keeps the hot blobs in memory anyway, and shares them.
//!
//! A blob is `DIR/ab/<64 hex digits>`: written to a temp file and renamed,
//! so a reader never sees half of one. The index (digest → size, last use)
//! is in memory and rebuilt from the directory at start-up, oldest file
//! first. A blob is checked against its digest once per worker run: as it
//! arrives (the caller checks it), or at its first read after a restart.
//! One that fails is removed and reported missing, so the client is asked
//! for it again. After that a job's link to it reads nothing: the files
//! are the worker's, and a sandbox sees them read-only.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A blake3 digest.
pub type Digest = [u8; 32];

/// The content-addressed store of one worker.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Every blob: its size, last-use tick and what its one check found.
    blobs: HashMap<Digest, Held>,
    /// Blobs by last use, oldest first.
    by_use: BTreeMap<u64, Digest>,
    bytes: u64,
    tick: u64,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    size: u64,
    used: u64,
    /// `Some(dated)` once the blob's bytes matched its digest in this run:
    /// whether they hold `__DATE__`, `__TIME__` or `__TIMESTAMP__`.
    checked: Option<bool>,
}

impl Index {
    fn touch(&mut self, digest: &Digest) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(held) = self.blobs.get_mut(digest) {
            self.by_use.remove(&held.used);
            held.used = tick;
            self.by_use.insert(tick, *digest);
        }
    }

    fn insert(&mut self, digest: Digest, size: u64, checked: Option<bool>) {
        self.tick += 1;
        let held = Held {
            size,
            used: self.tick,
            checked,
        };
        if let Some(old) = self.blobs.insert(digest, held) {
            self.by_use.remove(&old.used);
            self.bytes -= old.size;
        }
        self.by_use.insert(self.tick, digest);
        self.bytes += size;
    }

    fn remove(&mut self, digest: &Digest) {
        if let Some(held) = self.blobs.remove(digest) {
            self.by_use.remove(&held.used);
            self.bytes -= held.size;
        }
    }
}

/// Whether `bytes` use a macro whose value changes from run to run.
fn dated(bytes: &[u8]) -> bool {
    ["__DATE__", "__TIME__", "__TIMESTAMP__"]
        .iter()
        .any(|w| memchr::memmem::find(bytes, w.as_bytes()).is_some())
}

impl Store {
    /// Opens (creating) the store in `dir`, bounded to `max_bytes`, and
    /// indexes the blobs already there. Blocking.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for fan in std::fs::read_dir(dir)? {
            let fan = fan?;
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for blob in std::fs::read_dir(fan.path())? {
                let blob = blob?;
                let name = blob.file_name();
                let digest = name.to_str().and_then(parse_hex);
                let meta = blob.metadata()?;
                match digest {
                    Some(d) if meta.is_file() => {
                        let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                        found.push((mtime, d, meta.len()));
                    }
                    // Temp files of a write that never finished.
                    _ => {
                        let _ = std::fs::remove_file(blob.path());
                    }
                }
            }
        }
        found.sort();
        let mut index = Index::default();
        for (_, digest, size) in found {
            index.insert(digest, size, None);
        }
        let store = Self {
            dir: dir.to_owned(),
            max_bytes,
            index: Mutex::new(index),
        };
        store.evict_to(max_bytes);
        Ok(store)
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        let hex = blake3::Hash::from(*digest).to_hex();
        self.dir.join(&hex[..2]).join(hex.as_str())
    }

    /// Whether the store holds a blob of this digest and size (counted as
    /// a use).
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let held = index.blobs.get(digest).is_some_and(|h| h.size == size);
        if held {
            index.touch(digest);
        }
        held
    }

    /// Blocking: the blob's bytes, checked against its digest. `None` when
    /// it is not held, or was corrupt (then it is removed).
    pub fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.read_checked(digest).map(|(bytes, _)| bytes)
    }

    /// [`Store::get`], and whether the bytes hold `__DATE__`-like macros
    /// (what the index now remembers of the blob).
    fn read_checked(&self, digest: &Digest) -> Option<(Vec<u8>, bool)> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok();
        match bytes {
            Some(b) if blake3::hash(&b).as_bytes() == digest => {
                let is_dated = dated(&b);
                let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
                index.touch(digest);
                if let Some(held) = index.blobs.get_mut(digest) {
                    held.checked = Some(is_dated);
                }
                Some((b, is_dated))
            }
            found => {
                if found.is_some() {
                    tracing::warn!(blob = %path.display(), "input blob is corrupt; removed");
                }
                let _ = std::fs::remove_file(&path);
                self.index
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(digest);
                None
            }
        }
    }

    /// Blocking: keeps `bytes`, whose digest the caller has checked, and
    /// evicts the least recently used blobs past the bound.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> std::io::Result<()> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Ok(());
        }
        {
            let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            if index.blobs.contains_key(digest) {
                index.touch(digest);
                return Ok(());
            }
        }
        let path = self.path(digest);
        let fan = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(fan)?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(fan)?;
        tmp.write_all(bytes)?;
        // Readable by a sandboxed compile, which sees it through a link.
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        tmp.persist(&path).map_err(|e| e.error)?;
        self.index.lock().unwrap_or_else(|e| e.into_inner()).insert(
            *digest,
            size,
            Some(dated(bytes)),
        );
        self.evict_to(self.max_bytes);
        Ok(())
    }

    /// Removes least recently used blobs until at most `bound` bytes stay.
    fn evict_to(&self, bound: u64) {
        loop {
            let victim = {
                let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
                if index.bytes <= bound {
                    return;
                }
                let Some((_, digest)) = index.by_use.pop_first() else {
                    return;
                };
                index.remove(&digest);
                digest
            };
            let _ = std::fs::remove_file(self.path(&victim));
        }
    }

    /// Blocking: puts the blob of `digest` at `dest` (which must not
    /// exist): a hard link, or a copy across filesystems or when
    /// `executable` (a link shares the blob's mode). A blob not checked
    /// in this run yet is read and checked first. `Ok(None)` when the blob
    /// is not held or was corrupt (then dropped); else whether it holds
    /// `__DATE__`, `__TIME__` or `__TIMESTAMP__`.
    pub fn link(
        &self,
        digest: &Digest,
        dest: &Path,
        executable: bool,
    ) -> std::io::Result<Option<bool>> {
        use std::os::unix::fs::PermissionsExt;
        let checked = {
            let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            index.touch(digest);
            match index.blobs.get(digest) {
                None => return Ok(None),
                Some(held) => held.checked,
            }
        };
        let src = self.path(digest);
        let (dated, bytes) = match checked {
            Some(dated) => (dated, None),
            None => {
                let Some((bytes, dated)) = self.read_checked(digest) else {
                    return Ok(None);
                };
                // Blobs kept before they were made readable to all.
                if std::fs::metadata(&src)?.permissions().mode() & 0o044 != 0o044 {
                    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644))?;
                }
                (dated, Some(bytes))
            }
        };
        if executable || std::fs::hard_link(&src, dest).is_err() {
            let Some(bytes) = bytes.or_else(|| self.get(digest)) else {
                return Ok(None);
            };
            std::fs::write(dest, &bytes)?;
            let mode = if executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
        }
        Ok(Some(dated))
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

fn parse_hex(name: &str) -> Option<Digest> {
    blake3::Hash::from_hex(name).ok().map(|h| *h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8, len: usize) -> (Digest, Vec<u8>) {
        let bytes = vec![n; len];
        (*blake3::hash(&bytes).as_bytes(), bytes)
    }

    #[test]
    fn blobs_are_kept_by_digest_and_evicted_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 30).unwrap();
        let (a, b, c) = (blob(1, 10), blob(2, 10), blob(3, 10));
        store.put(&a.0, &a.1).unwrap();
        store.put(&b.0, &b.1).unwrap();
        store.put(&c.0, &c.1).unwrap();
        assert!(store.has(&a.0, 10), "a is used, so b is now the oldest");
        assert!(!store.has(&a.0, 11), "the size must match too");
        let d = blob(4, 10);
        store.put(&d.0, &d.1).unwrap();
        assert!(store.get(&b.0).is_none(), "b was evicted");
        assert_eq!(store.get(&a.0).as_deref(), Some(&a.1[..]));
        assert_eq!(store.bytes(), 30);
        let big = blob(5, 31);
        store.put(&big.0, &big.1).unwrap();
        assert!(!store.has(&big.0, 31), "larger than the bound");
    }

    #[test]
    fn a_corrupt_blob_is_removed_and_reported_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (d, bytes) = blob(7, 100);
        store.put(&d, &bytes).unwrap();
        let path = store.path(&d);
        std::fs::write(&path, b"not the blob").unwrap();
        assert!(store.has(&d, 100), "the index does not read the file");
        assert!(store.get(&d).is_none());
        assert!(!path.exists());
        assert!(!store.has(&d, 100), "asked for again");
    }

    #[test]
    fn a_blob_is_checked_once_per_run_when_linked() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let dated = b"const char *d = __DATE__;\n".to_vec();
        let d = *blake3::hash(&dated).as_bytes();
        let (plain, plain_bytes) = blob(8, 100);
        {
            let store = Store::open(&store_dir, 1 << 20).unwrap();
            store.put(&d, &dated).unwrap();
            store.put(&plain, &plain_bytes).unwrap();
            // Checked as it arrived: the link says what the put saw.
            assert_eq!(
                store.link(&d, &dir.path().join("a"), false).unwrap(),
                Some(true)
            );
        }
        // After a restart each blob is read and checked at its first use.
        std::fs::write(blob_path(&store_dir, &plain), b"rotten").unwrap();
        let store = Store::open(&store_dir, 1 << 20).unwrap();
        assert_eq!(
            store.link(&d, &dir.path().join("b"), false).unwrap(),
            Some(true)
        );
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), dated);
        assert_eq!(
            store.link(&plain, &dir.path().join("c"), false).unwrap(),
            None
        );
        assert!(!dir.path().join("c").exists());
        assert!(!store.has(&plain, 100), "a corrupt blob is asked for again");
    }

    #[test]
    fn a_reopened_store_finds_its_blobs_and_drops_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let (d, bytes) = blob(9, 64);
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            store.put(&d, &bytes).unwrap();
        }
        let fan = store_fan(dir.path(), &d);
        std::fs::write(fan.join(".tmp-half"), b"half").unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(store.has(&d, 64));
        assert_eq!(store.bytes(), 64);
        assert!(!fan.join(".tmp-half").exists());
        let store = Store::open(dir.path(), 10).unwrap();
        assert!(!store.has(&d, 64), "evicted to the new bound");
    }

    fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
        store_fan(dir, d).join(blake3::Hash::from(*d).to_hex().as_str())
    }

    fn store_fan(dir: &Path, d: &Digest) -> PathBuf {
        dir.join(&blake3::Hash::from(*d).to_hex()[..2])
    }
}
