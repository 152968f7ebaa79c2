//! Finished results by grid key, on disk (the shared cache), so a second
//! client compiling the same translation unit gets the object without a
//! compile. (Inputs kept by digest are in [`crate::store`].)
//!
//! The on-disk store is `gridcc_cache::Cache` (checksummed entries, temp
//! file + rename, LRU by mtime, eviction by unlink), the same code as the
//! wrapper's local cache. The size bound is kept with a running total so a
//! store does not rescan the directory; eviction rescans.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gridcc_cache::{Cache, Entry, Key, Lookup};

/// Keys sent in the hello: enough for the coordinator to route a team's
/// working set, small enough for one message (64 bytes each).
pub(crate) const HELLO_KEYS: usize = 4096;

/// The shared result cache of one worker.
#[derive(Debug)]
pub(crate) struct ResultCache {
    cache: Cache,
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes on disk, approximately (exact after each eviction).
    bytes: AtomicU64,
}

impl ResultCache {
    /// Opens (creating) the cache under `dir`, bounded to `max_bytes`.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("objects"))?;
        let cache = Cache::new(dir);
        let (bytes, _) = cache.measure();
        Ok(Self {
            cache,
            dir: dir.to_owned(),
            max_bytes,
            bytes: AtomicU64::new(bytes),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn recent_keys(&self, limit: usize) -> Vec<Key> {
        self.cache.recent_keys(limit)
    }

    /// Blocking: reads and verifies an entry (a corrupt one is removed).
    pub(crate) fn lookup(&self, key: &Key) -> Lookup {
        self.cache.lookup(key)
    }

    /// Blocking: stores an entry, evicting least recently used ones when
    /// the bound is passed.
    pub(crate) fn store(&self, key: &Key, entry: &Entry) -> std::io::Result<()> {
        let (written, replaced) = self.cache.store(key, entry)?;
        let total = self.bytes.fetch_add(written, Ordering::Relaxed) + written;
        self.bytes.fetch_sub(replaced.min(total), Ordering::Relaxed);
        if total.saturating_sub(replaced) > self.max_bytes {
            if let Some((removed, left)) = self.cache.evict(self.max_bytes) {
                tracing::debug!(removed, left, "shared cache evicted");
                self.bytes.store(left, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_stored_found_and_evicted_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::open(dir.path(), 3000).unwrap();
        let entry = |n: u8| Entry {
            exit_code: 0,
            // Incompressible, so each entry is about 1 KiB on disk.
            object: (0..1000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8 ^ n)
                .collect(),
            stdout: vec![],
            stderr: vec![],
            compile_ms: 5,
        };
        let keys: Vec<Key> = (0..5u8)
            .map(|n| Key::from_hex(&format!("{n:02x}").repeat(32)).unwrap())
            .collect();
        for (n, key) in keys.iter().enumerate() {
            cache.store(key, &entry(n as u8)).unwrap();
        }
        assert!(cache.bytes() <= 3000, "{}", cache.bytes());
        assert!(matches!(cache.lookup(&keys[4]), Lookup::Hit(e) if e == entry(4)));
        assert!(matches!(cache.lookup(&keys[0]), Lookup::Miss));
        assert!(!cache.recent_keys(10).is_empty());
    }
}
