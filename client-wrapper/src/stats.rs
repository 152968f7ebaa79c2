//! `gridcc stats`: counters every wrapper process adds to, kept in
//! `GRIDCC_CACHE_DIR/stats.json`. Each wrapper folds its one [`Event`] in
//! under an exclusive `flock` on `stats.lock` and replaces the file by a
//! rename, so concurrent `make -j` wrappers never lose an update and a
//! reader without the lock still sees a whole file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Seconds since the epoch when counting started (`--zero` resets it).
    pub since_unix: u64,
    /// Compiles run by a worker.
    pub compiles_remote: u64,
    /// Of those (and of shared-cache hits), jobs sent as an input tree run
    /// in a worker's sandbox, and jobs sent as preprocessed text.
    pub jobs_hermetic: u64,
    pub jobs_text: u64,
    /// Distributable compiles run by the local compiler (no grid, a grid
    /// failure, or not cacheable).
    pub compiles_local: u64,
    /// Hits in this machine's object cache.
    pub hits_local: u64,
    /// Compiles a worker answered from its shared cache, without running
    /// the compiler (another client, or this one, compiled it before).
    pub hits_shared: u64,
    /// Hits without local preprocessing (direct mode: a manifest whose
    /// every file and include-path probe still matched).
    pub hits_direct: u64,
    /// Cacheable compiles whose key was not in the cache.
    pub misses: u64,
    /// Entries that failed verification, were removed and recompiled.
    pub corrupt_entries: u64,
    /// Entries removed to stay under the size bound.
    pub evictions: u64,
    /// Entries that could not be written.
    pub cache_write_errors: u64,
    /// Bytes of compressed source sent to workers.
    pub bytes_sent: u64,
    /// Bytes of object received from workers.
    pub bytes_received: u64,
    /// Sum over hits of (the compile's time − the hit's time).
    pub time_saved_ms: u64,
    /// Approximate size of the object cache (exact after each eviction).
    pub cache_bytes: u64,
    /// A distributable compile that ran locally: why (grid failures, no
    /// coordinator, …).
    pub fallbacks: BTreeMap<String, u64>,
    /// A compile that was not cached: why (`__DATE__`, compile error, …).
    pub not_cached: BTreeMap<String, u64>,
    /// Command lines that are not a plain compile (linking, `-E`, …): run
    /// by the real compiler unchanged, never cached.
    pub not_distributable: BTreeMap<String, u64>,
    /// A direct-mode lookup that fell back to preprocessing: why (no
    /// manifest yet, a header changed, an include-path probe changed, …).
    pub direct_misses: BTreeMap<String, u64>,
    /// A compile that left no direct-mode manifest: why (`__DATE__` in a
    /// header, a file too new, `__has_include` with a macro argument, …).
    pub direct_not_recorded: BTreeMap<String, u64>,
    /// A remote job sent as text rather than hermetic: why (the worker
    /// does not sandbox, `.incbin`, a computed `__has_include`, …).
    pub text_jobs: BTreeMap<String, u64>,
}

/// What one wrapper process did.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub remote: bool,
    pub local: bool,
    pub hit_local: bool,
    pub hit_shared: bool,
    pub hit_direct: bool,
    pub miss: bool,
    pub corrupt: bool,
    pub cache_write_error: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub time_saved_ms: u64,
    /// Bytes this process added to the cache (new entry minus the one it
    /// replaced), and entries it evicted with the cache's measured size.
    pub cache_added: i64,
    pub evicted: Option<(u64, u64)>,
    pub fallback: Option<String>,
    pub not_cached: Option<String>,
    pub not_distributable: Option<String>,
    pub direct_miss: Option<String>,
    pub direct_not_recorded: Option<String>,
    /// A remote job ran: hermetic or not.
    pub hermetic: Option<bool>,
    /// Why the job had no input tree, when it had none.
    pub text_reason: Option<String>,
}

impl Stats {
    fn apply(&mut self, e: &Event) {
        let bump = |b: bool| u64::from(b);
        self.compiles_remote += bump(e.remote);
        self.compiles_local += bump(e.local);
        self.hits_local += bump(e.hit_local);
        self.hits_shared += bump(e.hit_shared);
        self.hits_direct += bump(e.hit_direct);
        self.jobs_hermetic += bump(e.hermetic == Some(true));
        self.jobs_text += bump(e.hermetic == Some(false));
        self.misses += bump(e.miss);
        self.corrupt_entries += bump(e.corrupt);
        self.cache_write_errors += bump(e.cache_write_error);
        self.bytes_sent += e.bytes_sent;
        self.bytes_received += e.bytes_received;
        self.time_saved_ms += e.time_saved_ms;
        self.cache_bytes = self.cache_bytes.saturating_add_signed(e.cache_added);
        if let Some((removed, left)) = e.evicted {
            self.evictions += removed;
            self.cache_bytes = left;
        }
        for (map, reason) in [
            (&mut self.fallbacks, &e.fallback),
            (&mut self.not_cached, &e.not_cached),
            (&mut self.not_distributable, &e.not_distributable),
            (&mut self.direct_misses, &e.direct_miss),
            (&mut self.direct_not_recorded, &e.direct_not_recorded),
            (
                &mut self.text_jobs,
                &e.hermetic.filter(|h| !h).and(
                    e.text_reason
                        .clone()
                        .or(Some("the worker does not run hermetic jobs".to_owned())),
                ),
            ),
        ] {
            if let Some(r) = reason {
                *map.entry(r.clone()).or_default() += 1;
            }
        }
    }

    /// All hits.
    pub fn hits(&self) -> u64 {
        self.hits_local + self.hits_shared + self.hits_direct
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the counters (all zero when there are none yet).
pub fn load(cache_dir: &Path) -> Stats {
    std::fs::read(cache_dir.join("stats.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| Stats {
            since_unix: now_unix(),
            ..Stats::default()
        })
}

/// Applies `change` to the counters under the lock. Returns the new
/// counters.
pub fn update(cache_dir: &Path, change: impl FnOnce(&mut Stats)) -> std::io::Result<Stats> {
    std::fs::create_dir_all(cache_dir)?;
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache_dir.join("stats.lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let mut stats = load(cache_dir);
    change(&mut stats);
    let mut tmp = tempfile::Builder::new()
        .prefix(".stats-")
        .tempfile_in(cache_dir)?;
    tmp.write_all(&serde_json::to_vec_pretty(&stats).map_err(std::io::Error::other)?)?;
    tmp.persist(cache_dir.join("stats.json"))
        .map_err(|e| e.error)?;
    // The lock is released when `lock` is closed, after the rename.
    drop(lock);
    Ok(stats)
}

/// Adds one wrapper's event; failures are logged, never fatal.
pub fn record(cache_dir: &Path, event: &Event) {
    if let Err(e) = update(cache_dir, |s| s.apply(event)) {
        tracing::debug!(error = %e, "cannot update gridcc stats");
    }
}

/// Resets every counter but the cache size, which is measured afresh.
pub fn zero(cache_dir: &Path, cache_bytes: u64) -> std::io::Result<Stats> {
    update(cache_dir, |s| {
        *s = Stats {
            since_unix: now_unix(),
            cache_bytes,
            ..Stats::default()
        }
    })
}

/// The human-readable table.
pub fn render(s: &Stats, max_size: u64, cache_dir: &Path) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<36}{v:>14}\n"));
    let cacheable = s.hits() + s.misses;
    line("Compiles run remotely", s.compiles_remote.to_string());
    line(
        "  of which hermetic (sandboxed)",
        s.jobs_hermetic.to_string(),
    );
    line("  of which text (preprocessed)", s.jobs_text.to_string());
    line("Compiles run locally", s.compiles_local.to_string());
    line("Cache hits (local)", s.hits_local.to_string());
    line("Cache hits (shared, on workers)", s.hits_shared.to_string());
    line("Cache hits (direct mode)", s.hits_direct.to_string());
    line("Cache misses", s.misses.to_string());
    line(
        "Cache hit rate",
        if cacheable == 0 {
            "-".to_owned()
        } else {
            format!("{:.1} %", s.hits() as f64 * 100.0 / cacheable as f64)
        },
    );
    line("Corrupt entries recompiled", s.corrupt_entries.to_string());
    line("Cache write errors", s.cache_write_errors.to_string());
    line("Evicted entries", s.evictions.to_string());
    line("Bytes sent to workers", human_bytes(s.bytes_sent));
    line("Bytes received from workers", human_bytes(s.bytes_received));
    line(
        "Time saved by hits",
        format!("{:.1} s", s.time_saved_ms as f64 / 1000.0),
    );
    line("Cache size (approximate)", human_bytes(s.cache_bytes));
    line("Cache size bound", human_bytes(max_size));
    let mut section = |title: &str, map: &BTreeMap<String, u64>| {
        if map.is_empty() {
            return;
        }
        out.push_str(&format!("{title}:\n"));
        for (reason, n) in map {
            out.push_str(&format!("  {reason:<48}{n:>8}\n"));
        }
    };
    section("Local fallbacks by reason", &s.fallbacks);
    section("Not cached, by reason", &s.not_cached);
    section("Sent as text, not hermetic, by reason", &s.text_jobs);
    section(
        "Not distributable (run unchanged), by reason",
        &s.not_distributable,
    );
    section(
        "Direct mode fell back to preprocessing, by reason",
        &s.direct_misses,
    );
    section(
        "Direct mode wrote no manifest, by reason",
        &s.direct_not_recorded,
    );
    out.push_str(&format!("Cache directory: {}\n", cache_dir.display()));
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_updates_are_all_counted() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.path().to_owned();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let e = Event {
                            hit_local: true,
                            fallback: Some("no coordinator".into()),
                            ..Event::default()
                        };
                        update(&d, |s| s.apply(&e)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = load(dir.path());
        assert_eq!(s.hits_local, 200);
        assert_eq!(s.fallbacks["no coordinator"], 200);
        let z = zero(dir.path(), 7).unwrap();
        assert_eq!(z.hits_local, 0);
        assert_eq!(z.cache_bytes, 7);
        assert!(render(&z, 1 << 30, dir.path()).contains("Cache hits (local)"));
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
