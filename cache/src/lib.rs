//! gridcc's object cache: the wrapper's local one in
//! `GRIDCC_CACHE_DIR/objects` and each worker's shared one in
//! `--cache-dir/objects` use the same keys, entry codec and store.
//!
//! - [`KeyInputs`]: the local key (over the preprocessed text).
//! - [`GridJob`]: the grid key, which client, coordinator and worker all
//!   compute from the fields of one `CompileHeader` (over the text's
//!   digest, so a worker can answer a hit before any text is uploaded).
//! - [`uncacheable`]: text whose object would not be a function of the key.
//! - [`encode`]/[`decode`], [`Cache`]: checksummed entries, atomic store,
//!   LRU eviction.
//!
//! A key is blake3 over everything that decides what the compiler prints and
//! writes: the compiler's identity digest, how the text was preprocessed and
//! its language, the compile arguments, the source path as given, the
//! working directory when the object records it, the locale, and the
//! preprocessed text itself (which holds the contents and names of every
//! header). Each field is length-prefixed, so no two different inputs can
//! hash the same byte stream.
//!
//! One entry is one file, `objects/<k0k1>/<key>`, written to a temp file in
//! the same directory and renamed, so readers see a whole entry or none and
//! many writers of one key leave one valid entry. The file carries a
//! checksum over the key and the payload: an entry that was truncated,
//! bit-flipped or copied under another key's name is detected, reported,
//! removed and recompiled, never returned. LRU order is the file's mtime,
//! refreshed on every hit; eviction only unlinks, which is safe under
//! concurrent readers (a reader either has the bytes or misses). The
//! wrapper's direct-mode manifests (`manifests/<k0k1>/<key>`, the wrapper's
//! `direct` module) share the size bound, the LRU order and `--clear`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gridcc_proto::payload::PayloadError;

/// Changing anything about what goes into a key or an entry changes this,
/// so old entries simply stop matching.
const KEY_VERSION: &[u8] = b"gridcc object cache key v1";
const MAGIC: &[u8; 8] = b"GRIDCCE1";
/// Largest uncompressed payload an entry may claim (matches the wire limit).
const MAX_PAYLOAD: u64 = gridcc_proto::payload::MAX_PAYLOAD_BYTES;
/// Default size bound: a few GiB, as sccache's 10 GiB and ccache's 5 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Eviction goes down to this fraction of the bound, so it runs rarely.
const EVICT_TO_PERCENT: u64 = 90;
/// Temp files older than this are leftovers of a killed wrapper.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Environment variables that change the compiler's messages (translation,
/// quoting, colour codes, URLs), so they belong in the key. Anything that
/// changes which programs run keeps the command local (`args::classify`).
pub const KEY_ENV: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_MESSAGES",
    "LC_CTYPE",
    "GCC_COLORS",
    "GCC_URLS",
    "TERM_URLS",
];

/// A cache key: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// A key read back from a file name or the wire: 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Key> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Key(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that is `hash`.
    pub fn from_hash(hash: blake3::Hash) -> Self {
        Key(hash.to_hex().to_string())
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything a key is made of.
#[derive(Debug, Clone)]
pub struct KeyInputs<'a> {
    /// `gridcc_toolchain::Identity::digest`.
    pub compiler: &'a str,
    /// How `text` was made (`source`: `-fdirectives-only`, `preprocessed`:
    /// `-E`, `as-is`: the input file).
    pub mode: &'a str,
    pub language: &'a str,
    /// The arguments of the compile proper (`RemoteCompile::compile_args`):
    /// the original ones minus preprocessor options, whose effect is in
    /// `text`, and minus the names of the object and dependency files,
    /// which never reach the object (the worker compiles without them and
    /// its objects are byte-identical).
    pub args: &'a [String],
    /// The source path as given: `__FILE__` is still unexpanded in
    /// directives-only text, and `DW_AT_name` records it.
    pub source: &'a str,
    /// The working directory, when the object can record it (debug info).
    pub cwd: Option<&'a str>,
    /// `(name, value)` of the [`KEY_ENV`] variables that are set.
    pub env: &'a [(String, String)],
    pub text: &'a [u8],
}

impl KeyInputs<'_> {
    pub fn key(&self) -> Key {
        let mut h = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(KEY_VERSION);
        field(self.compiler.as_bytes());
        field(self.mode.as_bytes());
        field(self.language.as_bytes());
        field(&(self.args.len() as u64).to_le_bytes());
        for a in self.args {
            field(a.as_bytes());
        }
        field(self.source.as_bytes());
        match self.cwd {
            Some(cwd) => {
                field(b"cwd");
                field(cwd.as_bytes());
            }
            None => field(b"no cwd"),
        }
        field(&(self.env.len() as u64).to_le_bytes());
        for (name, value) in self.env {
            field(name.as_bytes());
            field(value.as_bytes());
        }
        field(self.text);
        Key::from_hash(h.finalize())
    }
}

/// The [`KEY_ENV`] variables that are set, in a fixed order.
pub fn key_env() -> Vec<(String, String)> {
    KEY_ENV
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
        .collect()
}

/// Whether the compile records the working directory: debug info is on
/// (`DW_AT_comp_dir`). The last `-g…` flag decides, as it does for gcc.
pub fn debug_info_on(args: &[String]) -> bool {
    args.iter().fold(false, |on, a| match a.as_str() {
        "-g0" => false,
        a if a.starts_with("-gno-") || a.starts_with("-gz") || a == "-gsplit-dwarf" => on,
        a if a.starts_with("-g") => true,
        _ => on,
    })
}

/// Why a text must not be cached, or `None` when it may be. `source_mode`:
/// the text is `-fdirectives-only` output, where `__DATE__`, `__TIME__`
/// and `__TIMESTAMP__` are still unexpanded, so the object would depend on
/// the clock and on a file's mtime. Text without line markers does not
/// name its headers, so it cannot stand for them in a key.
pub fn uncacheable(source_mode: bool, text: &[u8]) -> Option<&'static str> {
    if source_mode {
        for word in ["__DATE__", "__TIME__", "__TIMESTAMP__"] {
            if memchr::memmem::find(text, word.as_bytes()).is_some() {
                return Some("__DATE__, __TIME__ or __TIMESTAMP__ in the source");
            }
        }
    }
    if !text.starts_with(b"# ") {
        return Some("preprocessed text has no line markers");
    }
    None
}

/// What kind of remote job a [`GridJob`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridMode {
    /// Directives-only text compiled under the client's source name.
    Source,
    /// `-E` text in a file of its own name.
    Preprocessed,
    /// The client's command line run over an input tree in a sandbox.
    Hermetic,
}

/// One file of a hermetic job's input tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile<'a> {
    pub path: &'a str,
    pub digest: &'a [u8],
    pub size: u64,
    pub executable: bool,
}

/// The digest that stands for a hermetic job's input tree in its grid key:
/// blake3 over every file (path, digest, size, executable bit) and every
/// directory that must exist, each sorted, and the object path. The same
/// tree named in any order has the same digest.
pub fn tree_digest(files: &[TreeFile<'_>], dirs: &[&str], object: &str) -> [u8; 32] {
    let mut files: Vec<&TreeFile<'_>> = files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(b.path));
    let mut dirs: Vec<&str> = dirs.to_vec();
    dirs.sort_unstable();
    dirs.dedup();
    let mut h = blake3::Hasher::new();
    h.update(b"gridcc input tree v1\0");
    let field = |h: &mut blake3::Hasher, bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    h.update(&(files.len() as u64).to_le_bytes());
    for f in files {
        field(&mut h, f.path.as_bytes());
        field(&mut h, f.digest);
        h.update(&f.size.to_le_bytes());
        h.update(&[u8::from(f.executable)]);
    }
    h.update(&(dirs.len() as u64).to_le_bytes());
    for d in dirs {
        field(&mut h, d.as_bytes());
    }
    field(&mut h, object.as_bytes());
    *h.finalize().as_bytes()
}

/// One remote job as the worker sees it: exactly the `CompileHeader`
/// fields the worker's compile depends on. The wrapper computes the same
/// key before `Assign` (so the coordinator can place the job on a worker
/// that holds it), and the worker recomputes it from the header it
/// received, never trusting the client's.
#[derive(Debug, Clone)]
pub struct GridJob<'a> {
    /// Compiler identity digest.
    pub toolchain: &'a str,
    pub mode: GridMode,
    pub language: &'a str,
    pub args: &'a [String],
    /// `source_path` in source and hermetic mode, `input_name` in
    /// preprocessed mode. In hermetic mode `args` is the whole command line
    /// after the compiler.
    pub name: &'a str,
    /// The client's working directory; in the key only with debug info.
    pub cwd: &'a str,
    /// The environment the worker passes to the compiler (locale only).
    pub env: &'a [(String, String)],
    /// blake3 of the uncompressed input (`input_digest`; in hermetic mode
    /// the [`tree_digest`] of the input tree). Hashing the
    /// digest instead of the text is as determining (blake3 is collision
    /// resistant) and lets a worker answer from its cache on the header
    /// alone; a worker stores only results it compiled from text it
    /// checked against this digest.
    pub input_digest: &'a [u8],
    pub input_size: u64,
}

impl GridJob<'_> {
    pub fn key(&self) -> Key {
        let size = self.input_size.to_le_bytes();
        let mut text = Vec::with_capacity(self.input_digest.len() + 8);
        text.extend_from_slice(&size);
        text.extend_from_slice(self.input_digest);
        KeyInputs {
            compiler: self.toolchain,
            // Never equal to a local key's mode, so the two kinds of key
            // can never name each other's entries.
            mode: match self.mode {
                GridMode::Source => "grid source",
                GridMode::Preprocessed => "grid preprocessed",
                GridMode::Hermetic => "grid hermetic",
            },
            language: self.language,
            args: self.args,
            source: self.name,
            cwd: debug_info_on(self.args).then_some(self.cwd),
            env: self.env,
            text: &text,
        }
        .key()
    }
}

/// What a finished compile left: replayed as it was on a hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub exit_code: i32,
    pub object: Vec<u8>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// How long the compile took that made this entry (for "time saved").
    pub compile_ms: u64,
}

/// Why an entry's bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Corrupt {
    #[error("too short")]
    Short,
    #[error("bad magic")]
    Magic,
    #[error("checksum mismatch")]
    Checksum,
    #[error("payload does not decompress")]
    Decompress,
    #[error("payload fields do not add up")]
    Fields,
}

/// Encodes an entry for `key`, [`seal`]ed with `MAGIC`, where the payload is `i32 exit | u64 compile_ms | (u64 len | bytes)` × object,
/// stdout, stderr. Integers are little-endian.
pub fn encode(key: &Key, entry: &Entry) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(entry.object.len() + entry.stderr.len() + 64);
    raw.extend_from_slice(&entry.exit_code.to_le_bytes());
    raw.extend_from_slice(&entry.compile_ms.to_le_bytes());
    for part in [&entry.object, &entry.stdout, &entry.stderr] {
        raw.extend_from_slice(&(part.len() as u64).to_le_bytes());
        raw.extend_from_slice(part);
    }
    seal(key.0.as_bytes(), MAGIC, &raw)
}

/// The container an entry (and a direct-mode manifest) is stored in:
/// `magic | u64 raw_len | u64 packed_len | zstd(raw) | blake3(key | header | packed)`,
/// integers little-endian. `key` is the bytes the checksum binds the file
/// to, so a file under another key's name is refused.
pub fn seal(key: &[u8], magic: &[u8; 8], raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let packed = zstd::bulk::compress(raw, gridcc_proto::payload::ZSTD_LEVEL)?;
    let mut out = Vec::with_capacity(packed.len() + 56);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend_from_slice(&(packed.len() as u64).to_le_bytes());
    out.extend_from_slice(&packed);
    let sum = checksum(key, &out);
    out.extend_from_slice(sum.as_bytes());
    Ok(out)
}

/// Checks and unpacks a [`seal`]ed file: its magic, its checksum under
/// `key`, its lengths (`raw_len` at most `max`), then the payload.
pub fn unseal(key: &[u8], magic: &[u8; 8], bytes: &[u8], max: u64) -> Result<Vec<u8>, Corrupt> {
    const HEADER: usize = 24;
    if bytes.len() < HEADER + 32 {
        return Err(Corrupt::Short);
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if &body[..8] != magic {
        return Err(Corrupt::Magic);
    }
    // Constant-time comparison is not needed; blake3::Hash's == is anyway.
    if checksum(key, body) != blake3::Hash::from_bytes(sum.try_into().map_err(|_| Corrupt::Short)?)
    {
        return Err(Corrupt::Checksum);
    }
    let raw_len = u64::from_le_bytes(body[8..16].try_into().map_err(|_| Corrupt::Short)?);
    let packed_len = u64::from_le_bytes(body[16..24].try_into().map_err(|_| Corrupt::Short)?);
    if raw_len > max || packed_len != (body.len() - HEADER) as u64 {
        return Err(Corrupt::Fields);
    }
    // Memory follows the bytes that decompress, not the header's claim.
    gridcc_proto::payload::decompress(&body[HEADER..], raw_len).map_err(|e| match e {
        PayloadError::SizeMismatch { .. } | PayloadError::Overlong { .. } => Corrupt::Fields,
        _ => Corrupt::Decompress,
    })
}

fn checksum(key: &[u8], body: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(key);
    h.update(body);
    h.finalize()
}

/// Decodes and verifies an entry read from `key`'s file.
pub fn decode(key: &Key, bytes: &[u8]) -> Result<Entry, Corrupt> {
    let raw = unseal(key.0.as_bytes(), MAGIC, bytes, MAX_PAYLOAD)?;
    let mut rest = raw.as_slice();
    let mut take = |n: usize| -> Result<&[u8], Corrupt> {
        if rest.len() < n {
            return Err(Corrupt::Fields);
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let exit_code = i32::from_le_bytes(take(4)?.try_into().map_err(|_| Corrupt::Fields)?);
    let compile_ms = u64::from_le_bytes(take(8)?.try_into().map_err(|_| Corrupt::Fields)?);
    let mut part = || -> Result<Vec<u8>, Corrupt> {
        let len = u64::from_le_bytes(take(8)?.try_into().map_err(|_| Corrupt::Fields)?);
        let len = usize::try_from(len).map_err(|_| Corrupt::Fields)?;
        Ok(take(len)?.to_vec())
    };
    let object = part()?;
    let stdout = part()?;
    let stderr = part()?;
    if !rest.is_empty() {
        return Err(Corrupt::Fields);
    }
    Ok(Entry {
        exit_code,
        object,
        stdout,
        stderr,
        compile_ms,
    })
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Entry),
    Miss,
    /// The entry existed but failed verification; it has been removed.
    Corrupt(Corrupt),
}

/// The object store under one cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    /// Every directory of entries under the size bound: `objects` and the
    /// wrapper's direct-mode `manifests` (absent on a worker).
    stores: [PathBuf; 2],
}

/// Writes `bytes` to `path` through a temp file in the same directory and a
/// rename, so readers see a whole file or none and many writers of one name
/// leave one whole file. Returns the bytes written and the size of the file
/// it replaced, if any.
pub fn write_entry_file(path: &Path, bytes: &[u8]) -> std::io::Result<(u64, u64)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    let replaced = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    tmp.persist(path).map_err(|e| e.error)?;
    Ok((bytes.len() as u64, replaced))
}

/// Refreshes a file's LRU time. Best effort: a failed touch only makes
/// eviction less exact.
pub fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
}

impl Cache {
    /// The object store of the cache directory `cache_dir`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("objects"),
            stores: [cache_dir.join("objects"), cache_dir.join("manifests")],
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(&key.0[..2]).join(&key.0)
    }

    /// Reads and verifies `key`'s entry; refreshes its LRU time on a hit and
    /// removes it when it is corrupt.
    pub fn lookup(&self, key: &Key) -> Lookup {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => return Lookup::Miss,
        };
        match decode(key, &bytes) {
            Ok(entry) => {
                touch(&path);
                Lookup::Hit(entry)
            }
            Err(why) => {
                // A concurrent writer may have replaced the file with a good
                // entry since we read it; unlinking that only costs a miss.
                let _ = std::fs::remove_file(&path);
                Lookup::Corrupt(why)
            }
        }
    }

    /// Stores `entry` under `key` atomically; returns the bytes written and
    /// the size of the entry it replaced, if any.
    pub fn store(&self, key: &Key, entry: &Entry) -> std::io::Result<(u64, u64)> {
        write_entry_file(&self.path(key), &encode(key, entry)?)
    }

    /// Every entry and stale temp file: `(path, size, mtime)`; removes temp
    /// files left by killed writers on the way.
    fn scan(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut found = Vec::new();
        let now = SystemTime::now();
        for store in &self.stores {
            let Ok(shards) = std::fs::read_dir(store) else {
                continue;
            };
            Self::scan_shards(shards, now, &mut found);
        }
        found
    }

    fn scan_shards(
        shards: std::fs::ReadDir,
        now: SystemTime,
        found: &mut Vec<(PathBuf, u64, SystemTime)>,
    ) {
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.flatten() {
                let Ok(meta) = file.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let mtime = meta.modified().unwrap_or(now);
                if file.file_name().to_string_lossy().starts_with(".tmp-") {
                    if now.duration_since(mtime).is_ok_and(|age| age > STALE_TEMP) {
                        let _ = std::fs::remove_file(file.path());
                    }
                    continue;
                }
                found.push((file.path(), meta.len(), mtime));
            }
        }
    }

    /// The keys of the `limit` most recently used entries, newest first
    /// (what a worker tells its coordinator it holds when it starts).
    pub fn recent_keys(&self, limit: usize) -> Vec<Key> {
        // Objects only: a manifest's name is a key of another kind.
        let mut entries = Vec::new();
        if let Ok(shards) = std::fs::read_dir(&self.dir) {
            Self::scan_shards(shards, SystemTime::now(), &mut entries);
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.2));
        entries
            .iter()
            .filter_map(|(path, _, _)| Key::from_hex(path.file_name()?.to_str()?))
            .take(limit)
            .collect()
    }

    /// Total size of the entries now on disk.
    pub fn measure(&self) -> (u64, u64) {
        let entries = self.scan();
        (entries.iter().map(|e| e.1).sum(), entries.len() as u64)
    }

    /// When the entries on disk exceed `max_size`, removes least recently
    /// used ones until the total is at most `EVICT_TO_PERCENT` of it. Returns `(entries removed, bytes
    /// left)`. Only one process evicts at a time (a non-blocking lock);
    /// others return `None` and go on.
    pub fn evict(&self, max_size: u64) -> Option<(u64, u64)> {
        std::fs::create_dir_all(&self.dir).ok()?;
        let lock = std::fs::File::create(self.dir.join(".evict.lock")).ok()?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
        let mut entries = self.scan();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= max_size {
            return Some((0, total));
        }
        let target = (u128::from(max_size) * u128::from(EVICT_TO_PERCENT) / 100) as u64;
        entries.sort_by_key(|e| e.2);
        let mut removed = 0;
        for (path, size, _) in entries {
            if total <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(size);
                removed += 1;
            }
        }
        Some((removed, total))
    }

    /// Removes every entry (`gridcc --clear`); returns how many.
    pub fn clear(&self) -> u64 {
        let mut removed = 0;
        for (path, _, _) in self.scan() {
            if std::fs::remove_file(path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024,
/// optional `i`/`B`: `5G`, `500MiB`, `1.5G`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t.strip_suffix('B').unwrap_or(t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&t[..i], 1 << 20),
        (i, 'G' | 'g') => (&t[..i], 1 << 30),
        (i, 'T' | 't') => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let value: f64 = num.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value * mult as f64) as u64)
}

/// The size bound: `GRIDCC_CACHE_SIZE`, else the value `gridcc --max-size`
/// saved in the cache dir, else [`DEFAULT_MAX_SIZE`].
pub fn max_size(cache_dir: &Path) -> u64 {
    if let Some(v) = std::env::var("GRIDCC_CACHE_SIZE")
        .ok()
        .and_then(|v| parse_size(&v))
    {
        return v;
    }
    std::fs::read_to_string(cache_dir.join("max-size"))
        .ok()
        .and_then(|v| parse_size(&v))
        .unwrap_or(DEFAULT_MAX_SIZE)
}

/// Saves the size bound for later wrappers (`gridcc --max-size`).
pub fn save_max_size(cache_dir: &Path, size: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(cache_dir)?;
    writeln!(tmp, "{size}")?;
    tmp.persist(cache_dir.join("max-size"))
        .map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            exit_code: 0,
            object: b"\x7fELF object bytes".repeat(100),
            stdout: b"".to_vec(),
            stderr: b"a.c:1:5: warning: unused variable 'x'\n".to_vec(),
            compile_ms: 1234,
        }
    }

    fn key(text: &[u8]) -> Key {
        KeyInputs {
            compiler: "c0ffee",
            mode: "source",
            language: "c",
            args: &["-O2".to_owned()],
            source: "a.c",
            cwd: None,
            env: &[],
            text,
        }
        .key()
    }

    fn grid_job<'a>(
        args: &'a [String],
        env: &'a [(String, String)],
        digest: &'a [u8],
    ) -> GridJob<'a> {
        GridJob {
            toolchain: "t",
            mode: GridMode::Source,
            language: "c",
            args,
            name: "a.c",
            cwd: "/home/one",
            env,
            input_digest: digest,
            input_size: 10,
        }
    }

    #[test]
    fn tree_digests_ignore_order_and_change_with_every_field() {
        static D1: [u8; 32] = [1; 32];
        static D2: [u8; 32] = [2; 32];
        let (d1, d2) = (&D1, &D2);
        let file = |path, digest: &'static [u8; 32], size, executable| TreeFile {
            path,
            digest,
            size,
            executable,
        };
        let a = file("/p/a.c", d1, 10, false);
        let b = file("/usr/include/b.h", d2, 20, false);
        let base = tree_digest(&[a.clone(), b.clone()], &["/p", "/q"], "/p/a.o");
        assert_eq!(
            base,
            tree_digest(&[b.clone(), a.clone()], &["/q", "/p", "/p"], "/p/a.o")
        );
        let others = [
            tree_digest(std::slice::from_ref(&a), &["/p", "/q"], "/p/a.o"),
            tree_digest(
                &[a.clone(), file("/usr/include/c.h", d2, 20, false)],
                &["/p", "/q"],
                "/p/a.o",
            ),
            tree_digest(
                &[a.clone(), file("/usr/include/b.h", d1, 20, false)],
                &["/p", "/q"],
                "/p/a.o",
            ),
            tree_digest(
                &[a.clone(), file("/usr/include/b.h", d2, 21, false)],
                &["/p", "/q"],
                "/p/a.o",
            ),
            tree_digest(
                &[a.clone(), file("/usr/include/b.h", d2, 20, true)],
                &["/p", "/q"],
                "/p/a.o",
            ),
            tree_digest(&[a.clone(), b.clone()], &["/p"], "/p/a.o"),
            tree_digest(&[a, b], &["/p", "/q"], "/p/b.o"),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(*other, base, "change {i}");
        }
    }

    #[test]
    fn grid_keys_change_with_every_field_and_cwd_only_with_debug_info() {
        let args = vec!["-O2".to_owned()];
        let debug = vec!["-O2".to_owned(), "-g".to_owned()];
        let env = vec![("LANG".to_owned(), "C".to_owned())];
        let base = grid_job(&args, &[], b"digest-1");
        let k = base.key();
        let other_cwd = GridJob {
            cwd: "/home/two",
            ..base.clone()
        };
        assert_eq!(other_cwd.key(), k, "without -g the cwd is not recorded");
        let dbg = grid_job(&debug, &[], b"digest-1");
        assert_ne!(
            GridJob {
                cwd: "/home/two",
                ..dbg.clone()
            }
            .key(),
            dbg.key()
        );
        let variants = [
            GridJob {
                toolchain: "u",
                ..base.clone()
            },
            GridJob {
                mode: GridMode::Preprocessed,
                ..base.clone()
            },
            GridJob {
                language: "c++",
                ..base.clone()
            },
            GridJob {
                name: "b.c",
                ..base.clone()
            },
            GridJob {
                env: &env,
                ..base.clone()
            },
            GridJob {
                input_digest: b"digest-2",
                ..base.clone()
            },
            GridJob {
                input_size: 11,
                ..base.clone()
            },
            dbg,
        ];
        for v in &variants {
            assert_ne!(v.key(), k, "{v:?}");
        }
        assert!(Key::from_hex(k.as_str()).is_some());
        assert!(Key::from_hex("../etc").is_none());
        assert!(Key::from_hex(&"A".repeat(64)).is_none());
    }

    #[test]
    fn clock_macros_and_missing_line_markers_are_uncacheable() {
        assert_eq!(uncacheable(true, b"# 1 \"a.c\"\nint x;\n"), None);
        assert!(uncacheable(true, b"# 1 \"a.c\"\nchar *d = __DATE__;\n").is_some());
        // Fully preprocessed text has the date expanded already.
        assert_eq!(uncacheable(false, b"# 1 \"a.c\"\n__DATE__\n"), None);
        assert!(uncacheable(false, b"int x;\n").is_some());
        assert!(debug_info_on(&["-g".into()]));
        assert!(!debug_info_on(&["-g".into(), "-g0".into()]));
        assert!(!debug_info_on(&["-gsplit-dwarf".into()]));
    }

    #[test]
    fn entries_round_trip() {
        let k = key(b"int x;");
        let bytes = encode(&k, &entry()).unwrap();
        assert_eq!(decode(&k, &bytes).unwrap(), entry());
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let k = key(b"int x;");
        let bytes = encode(&k, &entry()).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&k, &bad).is_err(), "flip at {i} not detected");
        }
        for len in 0..bytes.len() {
            assert!(decode(&k, &bytes[..len]).is_err(), "truncation to {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&k, &longer).is_err());
    }

    #[test]
    fn an_entry_under_another_keys_name_is_refused() {
        let bytes = encode(&key(b"int x;"), &entry()).unwrap();
        assert_eq!(
            decode(&key(b"int y;"), &bytes).unwrap_err(),
            Corrupt::Checksum
        );
    }

    #[test]
    fn every_key_field_changes_the_key() {
        let args = vec!["-O2".to_owned()];
        let env = vec![("LANG".to_owned(), "C".to_owned())];
        let base = KeyInputs {
            compiler: "c0ffee",
            mode: "source",
            language: "c",
            args: &args,
            source: "a.c",
            cwd: None,
            env: &env,
            text: b"int x;",
        };
        let other_args = vec!["-O3".to_owned()];
        let split_args = vec!["-O".to_owned(), "2".to_owned()];
        let other_env = vec![("LANG".to_owned(), "de_DE.UTF-8".to_owned())];
        let variants = [
            KeyInputs {
                compiler: "c0ffef",
                ..base.clone()
            },
            KeyInputs {
                mode: "preprocessed",
                ..base.clone()
            },
            KeyInputs {
                language: "c++",
                ..base.clone()
            },
            KeyInputs {
                args: &other_args,
                ..base.clone()
            },
            KeyInputs {
                args: &split_args,
                ..base.clone()
            },
            KeyInputs {
                source: "b.c",
                ..base.clone()
            },
            KeyInputs {
                cwd: Some("/src"),
                ..base.clone()
            },
            KeyInputs {
                env: &other_env,
                ..base.clone()
            },
            KeyInputs {
                text: b"int x; ",
                ..base.clone()
            },
        ];
        let k = base.key();
        assert_eq!(k.as_str().len(), 64);
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v.key(), k, "variant {i}");
        }
    }

    #[test]
    fn store_lookup_corrupt_and_evict() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let k = key(b"int x;");
        assert!(matches!(cache.lookup(&k), Lookup::Miss));
        cache.store(&k, &entry()).unwrap();
        match cache.lookup(&k) {
            Lookup::Hit(e) => assert_eq!(e, entry()),
            other => panic!("{other:?}"),
        }
        // Corrupt it in place: detected, removed.
        let path = cache.path(&k);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(cache.lookup(&k), Lookup::Corrupt(_)));
        assert!(!path.exists());
        assert!(matches!(cache.lookup(&k), Lookup::Miss));

        // LRU: the entry touched last survives.
        let keys: Vec<Key> = (0..4)
            .map(|i| key(format!("int x{i};").as_bytes()))
            .collect();
        let mut size = 0;
        for (i, k) in keys.iter().enumerate() {
            size = cache.store(k, &entry()).unwrap().0;
            let t = SystemTime::now() - Duration::from_secs(100 - i as u64);
            std::fs::File::options()
                .write(true)
                .open(cache.path(k))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        assert!(matches!(cache.lookup(&keys[0]), Lookup::Hit(_)));
        let (removed, left) = cache.evict(size * 2 + size / 2).unwrap();
        assert_eq!(removed, 2);
        assert_eq!(left, size * 2);
        assert!(matches!(cache.lookup(&keys[0]), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(&keys[3]), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(&keys[1]), Lookup::Miss));
        assert_eq!(cache.measure(), (size * 2, 2));
        assert_eq!(cache.clear(), 2);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("5G"), Some(5 << 30));
        assert_eq!(parse_size("500MiB"), Some(500 << 20));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("1234"), Some(1234));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1G"), None);
    }
}

/// Properties of the entry format: whatever bytes a cache file holds, an
/// entry comes back only when it is the one stored under that key.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = Entry> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
        (any::<i32>(), bytes(), bytes(), bytes(), any::<u64>()).prop_map(
            |(exit_code, object, stdout, stderr, compile_ms)| Entry {
                exit_code,
                object,
                stdout,
                stderr,
                compile_ms,
            },
        )
    }

    fn key(text: &[u8]) -> Key {
        KeyInputs {
            compiler: "c0ffee",
            mode: "source",
            language: "c",
            args: &[],
            source: "a.c",
            cwd: None,
            env: &[],
            text,
        }
        .key()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn entries_round_trip(e in entry(), text in any::<Vec<u8>>()) {
            let k = key(&text);
            prop_assert_eq!(decode(&k, &encode(&k, &e).unwrap()).unwrap(), e);
        }

        #[test]
        fn arbitrary_bytes_are_refused(bytes in any::<Vec<u8>>()) {
            prop_assert!(decode(&key(b""), &bytes).is_err());
        }

        /// Real entries with one byte changed, cut short, lengthened, or
        /// read under another key.
        #[test]
        fn damaged_real_entries_are_refused(
            e in entry(),
            at in any::<usize>(),
            mask in 1..=255u8,
            tail in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let k = key(b"int x;");
            let good = encode(&k, &e).unwrap();
            let at = at % good.len();
            let mut flipped = good.clone();
            flipped[at] ^= mask;
            prop_assert!(decode(&k, &flipped).is_err());
            prop_assert!(decode(&k, &good[..at]).is_err());
            let mut longer = good.clone();
            longer.extend_from_slice(&tail);
            prop_assert!(decode(&k, &longer).is_err());
            prop_assert_eq!(decode(&key(b"int y;"), &good), Err(Corrupt::Checksum));
        }

        /// Past the checksum (a file written by a buggy or hostile writer
        /// that knew the format): any header and payload give an entry or
        /// an error, never a panic or a limit-sized allocation.
        #[test]
        fn checksummed_garbage_decodes_cleanly(
            raw_len in prop_oneof![0..1024u64, Just(MAX_PAYLOAD), any::<u64>()],
            payload in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                proptest::collection::vec(any::<u8>(), 0..200)
                    .prop_map(|raw| zstd::bulk::compress(&raw, 1).unwrap()),
            ],
        ) {
            let k = key(b"");
            let mut body = MAGIC.to_vec();
            body.extend_from_slice(&raw_len.to_le_bytes());
            body.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            body.extend_from_slice(&payload);
            let sum = checksum(k.0.as_bytes(), &body);
            body.extend_from_slice(sum.as_bytes());
            if let Ok(e) = decode(&k, &body) {
                // Whatever decodes re-encodes to an entry that decodes the same.
                prop_assert_eq!(decode(&k, &encode(&k, &e).unwrap()).unwrap(), e);
            }
        }
    }
}
