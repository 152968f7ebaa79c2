//! What a worker keeps between jobs: finished results by grid key (the
//! shared cache, on disk) and recently received inputs by digest (in
//! memory), so a second client compiling the same translation unit gets
//! the object without a compile, and a repeated job's input is not
//! uploaded again.
//!
//! The on-disk store is `gridcc_cache::Cache` (checksummed entries, temp
//! file + rename, LRU by mtime, eviction by unlink), the same code as the
//! wrapper's local cache. The size bound is kept with a running total so a
//! store does not rescan the directory; eviction rescans.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// Recently received inputs by blake3 digest, bounded in bytes, oldest
/// dropped first.
#[derive(Debug)]
pub(crate) struct Inputs {
    max_bytes: u64,
    inner: Mutex<InputsInner>,
}

#[derive(Debug, Default)]
struct InputsInner {
    by_digest: HashMap<Vec<u8>, Arc<Vec<u8>>>,
    order: VecDeque<Vec<u8>>,
    bytes: u64,
}

impl Inputs {
    pub(crate) fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            inner: Mutex::default(),
        }
    }

    /// The input with this digest and size, if it was received recently.
    /// The digest was checked against the text when it arrived.
    pub(crate) fn get(&self, digest: &[u8], size: u64) -> Option<Arc<Vec<u8>>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .by_digest
            .get(digest)
            .filter(|text| text.len() as u64 == size)
            .cloned()
    }

    /// Keeps a verified input.
    pub(crate) fn put(&self, digest: Vec<u8>, text: Arc<Vec<u8>>) {
        let size = text.len() as u64;
        if size > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.by_digest.contains_key(&digest) {
            return;
        }
        while inner.bytes + size > self.max_bytes {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(t) = inner.by_digest.remove(&old) {
                inner.bytes -= t.len() as u64;
            }
        }
        inner.bytes += size;
        inner.order.push_back(digest.clone());
        inner.by_digest.insert(digest, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_bounded_and_matched_by_digest_and_size() {
        let inputs = Inputs::new(10);
        inputs.put(b"a".to_vec(), Arc::new(b"12345".to_vec()));
        inputs.put(b"b".to_vec(), Arc::new(b"67890".to_vec()));
        assert!(inputs.get(b"a", 5).is_some());
        assert!(inputs.get(b"a", 6).is_none(), "size must match too");
        inputs.put(b"c".to_vec(), Arc::new(b"xyz".to_vec()));
        assert!(inputs.get(b"a", 5).is_none(), "oldest dropped");
        assert!(inputs.get(b"b", 5).is_some() && inputs.get(b"c", 3).is_some());
        inputs.put(b"d".to_vec(), Arc::new(vec![0; 11]));
        assert!(inputs.get(b"d", 11).is_none(), "larger than the bound");
    }

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
