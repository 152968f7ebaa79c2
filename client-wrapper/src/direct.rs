//! Direct mode, in the manner of ccache's: a hit skips even the local
//! preprocessing.
//!
//! A *manifest key* is blake3 over everything that decides what the
//! preprocessing reads and prints before it opens a header: the compiler
//! (its path, since the default include directories hang off its install,
//! and its identity digest), every argument verbatim and once more with
//! response files expanded, the working directory, the source path and the
//! blake3 of its contents, and the environment variables the preprocessor
//! or the object key read ([`MANIFEST_ENV`], [`cache::KEY_ENV`]). The
//! manifest stored under it (`manifests/<k0k1>/<key>`, checksummed like an
//! object entry) names the object key the preprocessing led to and what
//! that preprocessing depended on:
//!
//! - every file it entered (the line markers with flag 1 in its output:
//!   headers, `-include` files, `stdc-predef.h`) with the blake3 of its
//!   contents;
//! - *probes*: the state (missing, a directory, a file with its blake3, …)
//!   of every path where a header could have been found instead. For every
//!   include name (each `#include`/`__has_include` spelled literally in any
//!   file read, and each marker path with a search directory stripped off)
//!   and every directory a lookup can start in (the compiler's quote and
//!   bracket search list from `-E -v`, the directories it ignored as missing
//!   or duplicate, the `-I`-style arguments, the directory of every file
//!   read and of every name a line marker gives it (`#line` renames a file;
//!   gcc keeps searching from the real one's directory, probing both costs
//!   little), and the working directory) the probe records `DIR/NAME`. That is
//!   a superset of the paths gcc tried for each lookup, including lookups it
//!   made and did not print (a guarded header included again, a `#pragma
//!   once` copy skipped); a new header earlier in the path, a header that
//!   moved, or a `__has_include` that would now answer differently changes
//!   a probe. A directory that does not exist is one probe for every name
//!   below it;
//! - the dependency file's path and bytes, when `-MD`/`-MMD` writes one, so
//!   a hit rewrites it exactly as the preprocessing would have.
//!
//! A lookup re-hashes every file and re-checks every probe; any difference,
//! or a corrupt manifest, falls back to the preprocessed key (and the
//! manifest is rewritten). When anything is uncertain no manifest is written
//! and the compile stays in preprocessed mode: `__DATE__`, `__TIME__` or
//! `__TIMESTAMP__` anywhere, `__has_include` with an argument that is not a
//! literal name, `#embed`, `#pragma GCC dependency` (it reads file times),
//! `-imacros`, `-Wp,`/`-Xpreprocessor` options other than `-Wp,-MD,FILE`,
//! `DEPENDENCIES_OUTPUT`, a header path whose search directory cannot be
//! told, a file that vanished, a source that changed during the compile, and
//! a file modified within a second of the compile's start (ccache's "file
//! too new": for editors racing the compile, and for timestamps coarser
//! than the change; its ctime counts too, so `touch -r` cannot hide an
//! edit).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::args::{Language, RemoteCompile};
use crate::cache::{self, Corrupt, Key};
use crate::compiler::Resolved;

/// Changing what goes into a manifest key or a manifest changes this.
const KEY_VERSION: &[u8] = b"gridcc direct manifest key v1";
const MAGIC: &[u8; 8] = b"GRIDCCM1";
/// Largest uncompressed manifest accepted.
const MAX_MANIFEST: u64 = 256 << 20;
/// ccache's "file too new" margin: a file whose mtime or ctime is later
/// than the compile's start minus this may have changed after the
/// preprocessing read it, within the timestamp's granularity.
const TOO_NEW: Duration = Duration::from_secs(1);

/// Environment variables that change what the preprocessor reads or
/// prints (include paths, `__DATE__` under `SOURCE_DATE_EPOCH`, dependency
/// output, which `cc1` runs). They are in the manifest key whether set or
/// not.
pub const MANIFEST_ENV: &[&str] = &[
    "CPATH",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "OBJC_INCLUDE_PATH",
    "OBJCPLUS_INCLUDE_PATH",
    "SOURCE_DATE_EPOCH",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "LIBRARY_PATH",
    "DEPENDENCIES_OUTPUT",
    "SUNPRO_DEPENDENCIES",
    "GCC_COMPARE_DEBUG",
];

/// What the manifest key is made of.
pub struct PlanInputs<'a> {
    /// The compiler as run (its path decides its default include
    /// directories).
    pub compiler: &'a Path,
    /// `gridcc_toolchain::Identity::digest`.
    pub identity: &'a str,
    /// The arguments as given.
    pub args: &'a [String],
    /// The same with response files expanded.
    pub expanded: &'a [String],
    pub job: &'a RemoteCompile,
    pub cwd: &'a str,
    /// Reads an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// When the compile started: files changed after it are "too new".
    pub start: SystemTime,
}

/// A compile that may be answered in direct mode.
#[derive(Debug)]
pub struct Plan {
    key: Key,
    source: String,
    source_hash: blake3::Hash,
    start: SystemTime,
    dep_file: Option<String>,
}

/// Why direct mode does not apply to a command line at all, if it does
/// not.
fn refusal(
    job: &RemoteCompile,
    expanded: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<&'static str> {
    if job.preprocessed_input {
        return Some("input is already preprocessed");
    }
    if env("DEPENDENCIES_OUTPUT").is_some() || env("SUNPRO_DEPENDENCIES").is_some() {
        // Appends to its file: the bytes a hit would write are unknown.
        return Some("DEPENDENCIES_OUTPUT or SUNPRO_DEPENDENCIES is set");
    }
    if job.dep_files.len() > 1 {
        return Some("more than one dependency file");
    }
    for arg in expanded {
        if ["__DATE__", "__TIME__", "__TIMESTAMP__", "__has_include"]
            .iter()
            .any(|w| arg.contains(w))
        {
            return Some("__DATE__, __TIME__, __TIMESTAMP__ or __has_include on the command line");
        }
        if arg.starts_with("-imacros") {
            // Its output is discarded, and with it the markers of what it read.
            return Some("-imacros");
        }
        if arg == "-Xpreprocessor" {
            return Some("-Xpreprocessor");
        }
        if let Some(list) = arg.strip_prefix("-Wp,") {
            let subs: Vec<&str> = list.split(',').collect();
            if !matches!(subs.as_slice(), ["-MD" | "-MMD", _]) {
                return Some("-Wp, preprocessor options");
            }
        }
        if arg == "-MG" {
            // Missing headers become dependencies instead of errors.
            return Some("-MG");
        }
    }
    None
}

/// Hashes one length-prefixed field after another.
struct Fields(blake3::Hasher);

impl Fields {
    fn put(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn list(&mut self, items: &[String]) {
        self.put(&(items.len() as u64).to_le_bytes());
        for item in items {
            self.put(item.as_bytes());
        }
    }
}

/// Whether a file's mtime or ctime is later than `limit`.
fn too_new(meta: &std::fs::Metadata, limit: SystemTime) -> bool {
    let ctime = UNIX_EPOCH
        .checked_add(Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        ))
        .unwrap_or(UNIX_EPOCH);
    let mtime = meta.modified().unwrap_or(SystemTime::now());
    mtime > limit || ctime > limit
}

/// Reads a regular file (never a FIFO or a device, which could block).
fn read_regular(path: &str) -> Option<(std::fs::Metadata, Vec<u8>)> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    Some((meta, bytes))
}

/// The direct-mode plan of a compile, or why it has none.
pub fn plan(inputs: &PlanInputs<'_>) -> Result<Plan, &'static str> {
    let job = inputs.job;
    if let Some(why) = refusal(job, inputs.expanded, inputs.env) {
        return Err(why);
    }
    let (_, source) = read_regular(&job.source).ok_or("cannot read the source")?;
    let source_hash = blake3::hash(&source);
    let mut f = Fields(blake3::Hasher::new());
    f.put(KEY_VERSION);
    f.put(inputs.compiler.as_os_str().as_encoded_bytes());
    f.put(inputs.identity.as_bytes());
    f.put(inputs.cwd.as_bytes());
    f.list(inputs.args);
    f.list(inputs.expanded);
    f.put(job.source.as_bytes());
    f.put(source_hash.as_bytes());
    for name in MANIFEST_ENV.iter().chain(cache::KEY_ENV) {
        f.put(name.as_bytes());
        match (inputs.env)(name) {
            Some(value) => {
                f.put(b"set");
                f.put(value.as_bytes());
            }
            None => f.put(b"unset"),
        }
    }
    Ok(Plan {
        key: Key::from_hash(f.0.finalize()),
        source: job.source.clone(),
        source_hash,
        start: inputs.start,
        dep_file: job.dep_files.first().cloned(),
    })
}

/// The state of one path where a header could have been found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Nothing there (`ENOENT`, `ENOTDIR`).
    Missing,
    /// A directory (gcc skips it and searches on).
    Dir,
    /// Something that is not a directory, on the way to a name (so nothing
    /// below it exists).
    NotDir,
    /// A regular file with this blake3 (one that gcc skipped, or could
    /// have found).
    File([u8; 32]),
    /// Neither a regular file nor a directory.
    Other,
}

/// What a `stat` says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    Dir,
    File,
    Other,
    /// Any other error (permissions, loops): never recorded.
    Error,
}

fn kind_of(path: &str) -> Kind {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(m) if m.is_file() => Kind::File,
        Ok(_) => Kind::Other,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc_errno::ENOENT | libc_errno::ENOTDIR)
            ) =>
        {
            Kind::Missing
        }
        Err(_) => Kind::Error,
    }
}

/// The two errno values that mean "not there".
mod libc_errno {
    pub(super) const ENOENT: i32 = 2;
    pub(super) const ENOTDIR: i32 = 20;
}

impl Probe {
    /// Whether `path` is still in this state.
    fn holds(&self, path: &str) -> bool {
        let kind = kind_of(path);
        match self {
            Probe::Missing => kind == Kind::Missing,
            Probe::Dir => kind == Kind::Dir,
            Probe::NotDir => matches!(kind, Kind::File | Kind::Other),
            Probe::Other => kind == Kind::Other,
            Probe::File(hash) => {
                kind == Kind::File
                    && read_regular(path).is_some_and(|(_, b)| blake3::hash(&b).as_bytes() == hash)
            }
        }
    }
}

/// What a compile's preprocessing depended on, and what it led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The object cache key.
    object: Key,
    /// Every file entered, with the blake3 of its contents.
    files: Vec<(String, [u8; 32])>,
    probes: Vec<(String, Probe)>,
    /// The dependency file the preprocessing wrote: path and bytes.
    dep_file: Option<(String, Vec<u8>)>,
}

impl Manifest {
    /// `Ok` when every file and probe still matches, else why not.
    fn verify(&self) -> Result<(), &'static str> {
        for (path, hash) in &self.files {
            match read_regular(path) {
                Some((_, bytes)) if blake3::hash(&bytes).as_bytes() == hash => {}
                Some(_) => return Err("a header changed"),
                None => return Err("a header is gone"),
            }
        }
        for (path, probe) in &self.probes {
            if !probe.holds(path) {
                return Err("an include path changed (a header appeared, vanished or moved)");
            }
        }
        Ok(())
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes a manifest stored under `key`, [`cache::seal`]ed with `MAGIC`
/// (the checksum binds the key's hex spelling); payload: the object key; `u64 n` × (path, 32-byte hash); `u64 n` ×
/// (path, tag, hash when a file); `u8` dependency file present, then its
/// path and bytes. Strings and byte runs are `u64 len | bytes`,
/// little-endian.
fn encode(key: &Key, m: &Manifest) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    put_bytes(&mut raw, m.object.as_str().as_bytes());
    raw.extend_from_slice(&(m.files.len() as u64).to_le_bytes());
    for (path, hash) in &m.files {
        put_bytes(&mut raw, path.as_bytes());
        raw.extend_from_slice(hash);
    }
    raw.extend_from_slice(&(m.probes.len() as u64).to_le_bytes());
    for (path, probe) in &m.probes {
        put_bytes(&mut raw, path.as_bytes());
        match probe {
            Probe::Missing => raw.push(0),
            Probe::Dir => raw.push(1),
            Probe::NotDir => raw.push(2),
            Probe::Other => raw.push(3),
            Probe::File(hash) => {
                raw.push(4);
                raw.extend_from_slice(hash);
            }
        }
    }
    match &m.dep_file {
        None => raw.push(0),
        Some((path, bytes)) => {
            raw.push(1);
            put_bytes(&mut raw, path.as_bytes());
            put_bytes(&mut raw, bytes);
        }
    }
    cache::seal(key.as_str().as_bytes(), MAGIC, &raw)
}

/// Reads a payload field by field; any shortfall is [`Corrupt::Fields`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.0.len() < n {
            return Err(Corrupt::Fields);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Corrupt::Fields)?,
        ))
    }

    fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(self.take(1)?[0])
    }

    fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let len = usize::try_from(self.u64()?).map_err(|_| Corrupt::Fields)?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, Corrupt> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| Corrupt::Fields)
    }

    fn hash(&mut self) -> Result<[u8; 32], Corrupt> {
        self.take(32)?.try_into().map_err(|_| Corrupt::Fields)
    }

    /// A count of items of at least `min_size` bytes each, checked against
    /// what is left so a bad count cannot make a huge allocation.
    fn count(&mut self, min_size: usize) -> Result<usize, Corrupt> {
        let n = usize::try_from(self.u64()?).map_err(|_| Corrupt::Fields)?;
        if n.checked_mul(min_size)
            .is_none_or(|need| need > self.0.len())
        {
            return Err(Corrupt::Fields);
        }
        Ok(n)
    }
}

/// Decodes and verifies a manifest read from `key`'s file.
fn decode(key: &Key, bytes: &[u8]) -> Result<Manifest, Corrupt> {
    let raw = cache::unseal(key.as_str().as_bytes(), MAGIC, bytes, MAX_MANIFEST)?;
    let mut r = Reader(&raw);
    let object = Key::from_hex(&r.string()?).ok_or(Corrupt::Fields)?;
    let n = r.count(8 + 32)?;
    let mut files = Vec::with_capacity(n);
    for _ in 0..n {
        files.push((r.string()?, r.hash()?));
    }
    let n = r.count(8 + 1)?;
    let mut probes = Vec::with_capacity(n);
    for _ in 0..n {
        let path = r.string()?;
        let probe = match r.u8()? {
            0 => Probe::Missing,
            1 => Probe::Dir,
            2 => Probe::NotDir,
            3 => Probe::Other,
            4 => Probe::File(r.hash()?),
            _ => return Err(Corrupt::Fields),
        };
        probes.push((path, probe));
    }
    let dep_file = match r.u8()? {
        0 => None,
        1 => Some((r.string()?, r.bytes()?.to_vec())),
        _ => return Err(Corrupt::Fields),
    };
    if !r.0.is_empty() {
        return Err(Corrupt::Fields);
    }
    Ok(Manifest {
        object,
        files,
        probes,
        dep_file,
    })
}

/// What a direct-mode lookup found.
#[derive(Debug)]
pub enum Found {
    /// Every file and probe matched: this object key, and the dependency
    /// file to write.
    Hit {
        object: Key,
        dep_file: Option<(String, Vec<u8>)>,
    },
    /// Fall back to preprocessing: why.
    Miss(&'static str),
    /// The manifest failed verification and has been removed.
    Corrupt(Corrupt),
}

impl Plan {
    /// The manifest key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    fn path(&self, cache_dir: &Path) -> std::path::PathBuf {
        let key = self.key.as_str();
        cache_dir.join("manifests").join(&key[..2]).join(key)
    }

    /// Reads this compile's manifest and checks it against the files.
    pub fn lookup(&self, cache_dir: &Path) -> Found {
        let path = self.path(cache_dir);
        let Ok(bytes) = std::fs::read(&path) else {
            return Found::Miss("no manifest yet");
        };
        let manifest = match decode(&self.key, &bytes) {
            Ok(m) => m,
            Err(why) => {
                // A concurrent writer's good manifest may be lost: a miss.
                let _ = std::fs::remove_file(&path);
                return Found::Corrupt(why);
            }
        };
        if let Err(why) = manifest.verify() {
            return Found::Miss(why);
        }
        cache::touch(&path);
        Found::Hit {
            object: manifest.object,
            dep_file: manifest.dep_file,
        }
    }
}

/// A finished compile whose manifest may be written.
pub struct Record<'a> {
    pub plan: &'a Plan,
    pub compiler: &'a Resolved,
    /// The compiler's identity digest and the working directory (for the
    /// kept search list, [`ListCache`]).
    pub identity: &'a str,
    pub cwd: &'a str,
    pub job: &'a RemoteCompile,
    /// The preprocessed text (its line markers name the files entered).
    pub text: &'a [u8],
    /// The object key of the stored entry.
    pub object: &'a Key,
}

impl Record<'_> {
    /// Builds and stores the manifest; returns the bytes it added to the
    /// cache, or why no manifest was written.
    pub fn write(&self, cache_dir: &Path) -> Result<i64, &'static str> {
        let manifest = self.build(cache_dir)?;
        tracing::debug!(
            files = manifest.files.len(),
            probes = manifest.probes.len(),
            "direct-mode manifest"
        );
        let bytes = encode(&self.plan.key, &manifest).map_err(|_| "cannot encode the manifest")?;
        let (written, replaced) = cache::write_entry_file(&self.plan.path(cache_dir), &bytes)
            .map_err(|_| "cannot write the manifest")?;
        Ok(written as i64 - replaced as i64)
    }

    fn build(&self, cache_dir: &Path) -> Result<Manifest, &'static str> {
        let limit = self.plan.start.checked_sub(TOO_NEW).unwrap_or(UNIX_EPOCH);
        let (meta, source) = read_regular(&self.plan.source).ok_or("the source vanished")?;
        if too_new(&meta, limit) {
            return Err(TOO_NEW_WHY);
        }
        if blake3::hash(&source) != self.plan.source_hash {
            return Err("the source changed during the compile");
        }
        let found = lookups(
            &Seen {
                compiler: self.compiler,
                lists: Some(ListCache {
                    dir: cache_dir,
                    identity: self.identity,
                    cwd: self.cwd,
                }),
                job: self.job,
                source: &self.plan.source,
                source_bytes: &source,
                text: self.text,
            },
            Strictness::Cache { limit },
        )?;
        let files = found
            .entered
            .into_iter()
            .map(|(path, bytes)| (path, *blake3::hash(&bytes).as_bytes()))
            .collect();
        let probes = found.probes;
        let dep_file = match &self.plan.dep_file {
            Some(path) => {
                let (_, bytes) = read_regular(path).ok_or("the dependency file is unreadable")?;
                Some((path.clone(), bytes))
            }
            None => None,
        };
        Ok(Manifest {
            object: self.object.clone(),
            files,
            probes,
            dep_file,
        })
    }
}

const TOO_NEW_WHY: &str = "a file is too new (changed within a second of the compile)";

/// Where include search lists are kept between compiles, and what besides
/// the compiler's path and the search arguments decides one. Running
/// `COMPILER -E -v` costs a compiler start (about 15 ms on a loaded
/// 2-core host) per job otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListCache<'a> {
    /// The object cache's directory (lists go under `search-lists/`).
    pub dir: &'a Path,
    /// `gridcc_toolchain::Identity::digest` of the compiler.
    pub identity: &'a str,
    pub cwd: &'a str,
}

/// What one preprocessing run looked at, for [`lookups`].
pub(crate) struct Seen<'a> {
    pub compiler: &'a Resolved,
    /// Where the compiler's include search list may be kept.
    pub lists: Option<ListCache<'a>>,
    pub job: &'a RemoteCompile,
    /// The source path as given, and its bytes.
    pub source: &'a str,
    pub source_bytes: &'a [u8],
    /// The preprocessed text (its line markers name the files entered).
    pub text: &'a [u8],
}

/// What [`lookups`] refuses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Strictness {
    /// For a cache key: also `__DATE__`-like macros and files changed after
    /// `limit`.
    Cache { limit: SystemTime },
    /// For a hermetic job's input tree: only what makes the lookups
    /// unknowable.
    Inputs,
}

/// Every file a preprocessing entered and every path where a header could
/// have been found instead, with their states.
pub(crate) struct Lookups {
    /// The files entered (the source aside), with their bytes.
    pub entered: Vec<(String, Vec<u8>)>,
    /// Every other path a lookup could try.
    pub probes: Vec<(String, Probe)>,
    /// The directories lookups start in (search list, `-I`-style values,
    /// the directory of every file read); some may not exist.
    pub dirs: BTreeSet<String>,
}

/// Walks what the preprocessing of `seen` looked at (see the module
/// documentation), or says why that cannot be known.
pub(crate) fn lookups(seen: &Seen<'_>, strictness: Strictness) -> Result<Lookups, &'static str> {
    let (dates_ok, limit) = match strictness {
        Strictness::Cache { limit } => (false, limit),
        Strictness::Inputs => (true, UNIX_EPOCH),
    };
    let strict = !dates_ok;
    let mut names = BTreeSet::new();
    scan(seen.source_bytes, &mut names, dates_ok)?;

    let (entered, named) = markers(seen.text)?;
    let mut files = Vec::with_capacity(entered.len());
    for path in &entered {
        if *path == seen.source {
            continue;
        }
        let (meta, bytes) = read_regular(path).ok_or("a header vanished")?;
        if strict && too_new(&meta, limit) {
            return Err(TOO_NEW_WHY);
        }
        scan(&bytes, &mut names, dates_ok)?;
        files.push((path.clone(), bytes));
    }

    let mut dirs = search_list(seen.compiler, seen.job, seen.lists)?;
    dirs.extend(include_arg_dirs(&seen.job.search_args));
    let mut searched: BTreeSet<String> = dirs.iter().map(|d| prefix(d)).collect();
    searched.insert(String::new());
    searched.insert("./".to_owned());
    let mut file_dirs: BTreeMap<&str, usize> = BTreeMap::new();
    for path in entered.iter().map(String::as_str).chain([seen.source]) {
        *file_dirs.entry(dir_of(path)).or_default() += 1;
    }
    let mut prefixes = searched.clone();
    prefixes.extend(file_dirs.keys().map(|d| (*d).to_owned()));
    // Whether gcc starts a quote include in the directory of the file
    // or of the name a `#line` gave it, both are probed.
    prefixes.extend(named.iter().map(|n| dir_of(n).to_owned()));

    // The include names behind the marker paths: each path minus any
    // directory a lookup could have started in (the real spelling is one
    // of them). gcc may print a system header's path shortened by
    // realpath, so the directories' real paths count too.
    let mut bases: BTreeSet<String> = prefixes.clone();
    bases.extend(
        prefixes
            .iter()
            .filter(|p| !p.is_empty())
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .filter_map(|p| p.to_str().map(prefix)),
    );
    for path in &entered {
        let own = dir_of(path);
        let mut told = false;
        for base in &bases {
            let rest = if base.is_empty() {
                // The working directory: relative paths only.
                (!path.starts_with('/')).then_some(path.as_str())
            } else {
                path.strip_prefix(base.as_str()).filter(|r| !r.is_empty())
            };
            let Some(rest) = rest else { continue };
            names.insert(rest.to_owned());
            // A file's own directory tells nothing unless it is searched
            // anyway or another file read lives there too.
            told |= base != own
                || searched.contains(own)
                || file_dirs.get(own).copied().unwrap_or(0) >= 2;
        }
        // An absolute `#include "/x/y.h"` searches nothing.
        let absolute_include = path.starts_with('/') && names.contains(path);
        if !told && !absolute_include {
            return Err("cannot tell which search directory a header came from");
        }
    }

    let entered_set: HashSet<&str> = entered
        .iter()
        .map(String::as_str)
        .chain([seen.source])
        .collect();
    let probes = probe_all(&prefixes, &names, &entered_set, limit, strict)?;
    Ok(Lookups {
        entered: files,
        probes,
        dirs: prefixes,
    })
}

/// A directory as the prefix gcc puts before an include name: `""` for the
/// working directory, else ending in one `/`.
fn prefix(dir: &str) -> String {
    if dir.is_empty() || dir.ends_with('/') {
        dir.to_owned()
    } else {
        format!("{dir}/")
    }
}

/// A file's directory as gcc derives it for `#include "…"` lookups: the
/// path up to and including its last `/`.
fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..=i])
}

/// The values of `-I`, `-iquote`, `-isystem` and `-idirafter` (gcc drops
/// the ones that are not directories from its list; they are probed all the
/// same, in case they become directories).
fn include_arg_dirs(args: &[String]) -> Vec<String> {
    const OPTIONS: [&str; 4] = ["-iquote", "-isystem", "-idirafter", "-I"];
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(o) = OPTIONS.iter().find(|o| arg.starts_with(**o)) {
            if arg.len() == o.len() {
                if let Some(v) = it.next() {
                    out.push(v.clone());
                }
            } else if *o != "-I" || arg != "-I-" {
                out.push(arg[o.len()..].to_owned());
            }
        }
    }
    out
}

/// Every path a lookup of any of `names` from any of `prefixes` would try,
/// with its state. A missing directory (or a file where a directory would
/// be) is one probe for every name below it; files entered are already
/// hashed and not probed again.
fn probe_all(
    prefixes: &BTreeSet<String>,
    names: &BTreeSet<String>,
    entered: &HashSet<&str>,
    limit: SystemTime,
    strict: bool,
) -> Result<Vec<(String, Probe)>, &'static str> {
    // path → (state, whether a lookup ends there)
    let mut seen: HashMap<String, (Kind, bool)> = HashMap::new();
    let mut stat = |path: String, leaf: bool| -> Kind {
        let entry = seen.entry(path).or_insert_with_key(|p| (kind_of(p), leaf));
        entry.1 |= leaf;
        entry.0
    };
    for base in prefixes {
        if !base.is_empty() && base != "/" {
            let dir = base.trim_end_matches('/');
            if stat(dir.to_owned(), false) != Kind::Dir {
                continue;
            }
        }
        for name in names.iter().filter(|n| !n.starts_with('/')) {
            let mut reachable = true;
            for (i, _) in name.match_indices('/').filter(|(i, _)| *i > 0) {
                if stat(format!("{base}{}", &name[..i]), false) != Kind::Dir {
                    reachable = false;
                    break;
                }
            }
            if reachable {
                stat(format!("{base}{name}"), true);
            }
        }
    }
    for name in names.iter().filter(|n| n.starts_with('/')) {
        stat(name.clone(), true);
    }
    let mut probes = Vec::new();
    let mut seen: Vec<(String, (Kind, bool))> = seen.into_iter().collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, (kind, leaf)) in seen {
        if entered.contains(path.as_str()) {
            continue;
        }
        let probe = match (kind, leaf) {
            (Kind::Error, _) => return Err("cannot check a path a header could be found at"),
            (Kind::Missing, _) => Probe::Missing,
            (Kind::Dir, false) => continue,
            (Kind::Dir, true) => Probe::Dir,
            (Kind::File | Kind::Other, false) => Probe::NotDir,
            (Kind::File, true) => {
                let (meta, bytes) = read_regular(&path).ok_or("a header vanished")?;
                if strict && too_new(&meta, limit) {
                    return Err(TOO_NEW_WHY);
                }
                Probe::File(*blake3::hash(&bytes).as_bytes())
            }
            (Kind::Other, true) => Probe::Other,
        };
        probes.push((path, probe));
    }
    Ok(probes)
}

/// Runs `COMPILER search_args -E -v -x LANG /dev/null` and reads every
/// directory it names: the quote and bracket search lists, and the ones it
/// ignored (missing, duplicate, not a directory), which a new directory or
/// header could bring back. So the names listed do not depend on which
/// directories exist, only on the compiler, its arguments, the
/// environment variables it reads and (for relative names) the working
/// directory: with `cache`, the run's output is kept under a key over
/// those and read back instead of running the compiler again.
fn search_list(
    compiler: &Resolved,
    job: &RemoteCompile,
    cache: Option<ListCache<'_>>,
) -> Result<Vec<String>, &'static str> {
    let path = cache.map(|c| {
        c.dir
            .join("search-lists")
            .join(list_key(compiler, job, &c, &|name| {
                std::env::var(name).ok()
            }))
    });
    if let Some(kept) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        // A list that does not parse is run again and replaced.
        if let Ok(dirs) = parse_search_list(&kept) {
            return Ok(dirs);
        }
    }
    let stderr = run_search_list(compiler, job)?;
    let dirs = parse_search_list(&stderr)?;
    if let Some(path) = path {
        // Best effort, atomic: a reader sees a whole list or none.
        let _ = write_atomically(&path, &stderr);
    }
    Ok(dirs)
}

/// The name a search list is kept under: blake3 over the compiler's path
/// and identity, the working directory, the language, the search
/// arguments and the environment variables that change the list.
fn list_key(
    compiler: &Resolved,
    job: &RemoteCompile,
    cache: &ListCache<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"gridcc search list v1");
    field(compiler.path.as_os_str().as_encoded_bytes());
    field(cache.identity.as_bytes());
    field(cache.cwd.as_bytes());
    field(format!("{:?}", job.language).as_bytes());
    field(&(job.search_args.len() as u64).to_le_bytes());
    for arg in &job.search_args {
        field(arg.as_bytes());
    }
    for var in MANIFEST_ENV {
        match env(var) {
            Some(v) => field(format!("{var}={v}").as_bytes()),
            None => field(format!("{var} unset").as_bytes()),
        }
    }
    h.finalize().to_hex().to_string()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The stderr of `COMPILER search_args -E -v -x LANG /dev/null`.
fn run_search_list(compiler: &Resolved, job: &RemoteCompile) -> Result<Vec<u8>, &'static str> {
    let language = match job.language {
        Language::C => "c",
        Language::Cxx => "c++",
        Language::ObjC => "objective-c",
        Language::ObjCxx => "objective-c++",
        _ => return Err("no source language"),
    };
    let mut cmd = Command::new(&compiler.path);
    cmd.args(&job.search_args)
        .args(["-E", "-v", "-x", language, "/dev/null", "-o", "/dev/null"])
        // The headings are translated otherwise.
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(path) = &compiler.child_path {
        cmd.env("PATH", path);
    }
    let out = cmd
        .output()
        .map_err(|_| "cannot run the compiler for its include search list")?;
    if !out.status.success() {
        return Err("the compiler's include search list run failed");
    }
    Ok(out.stderr)
}

fn parse_search_list(stderr: &[u8]) -> Result<Vec<String>, &'static str> {
    const UNREADABLE: &str = "cannot read the compiler's include search list";
    let text = std::str::from_utf8(stderr).map_err(|_| UNREADABLE)?;
    let mut dirs = Vec::new();
    let (mut quote, mut bracket, mut end, mut inside) = (false, false, false, false);
    for line in text.lines() {
        let ignored = line
            .strip_prefix("ignoring nonexistent directory \"")
            .or_else(|| line.strip_prefix("ignoring duplicate directory \""));
        if let Some(rest) = ignored {
            dirs.push(rest.strip_suffix('"').ok_or(UNREADABLE)?.to_owned());
            continue;
        }
        if let Some((_, dir)) = line
            .strip_suffix(": not a directory")
            .and_then(|l| l.split_once(": warning: "))
        {
            dirs.push(dir.to_owned());
            continue;
        }
        match line {
            "#include \"...\" search starts here:" => {
                (quote, inside) = (true, true);
                continue;
            }
            "#include <...> search starts here:" => {
                (bracket, inside) = (true, true);
                continue;
            }
            "End of search list." => {
                (end, inside) = (true, false);
                continue;
            }
            _ => {}
        }
        if inside {
            let dir = line.strip_prefix(' ').ok_or(UNREADABLE)?;
            if dir.ends_with("(framework directory)") {
                return Err("framework directories");
            }
            dirs.push(dir.to_owned());
        }
    }
    if quote && bracket && end {
        Ok(dirs)
    } else {
        Err(UNREADABLE)
    }
}

/// The files the preprocessing entered, in order, once each: the paths of
/// the line markers with flag 1 (`# 1 "inc/h.h" 1`); and every name any
/// marker shows (`#line` can rename the current file).
fn markers(text: &[u8]) -> Result<(Vec<String>, BTreeSet<String>), &'static str> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut named = BTreeSet::new();
    for line in text.split(|c| *c == b'\n') {
        let Some(rest) = line.strip_prefix(b"# ") else {
            continue;
        };
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let Some(rest) = rest[digits..].strip_prefix(b" \"") else {
            continue;
        };
        let (name, flags) = unquote(rest)?;
        if flags.split(|c| *c == b' ').any(|f| f == b"1") && seen.insert(name.clone()) {
            out.push(name.clone());
        }
        named.insert(name);
    }
    Ok((out, named))
}

/// A line marker's file name (after its opening quote), unescaped as gcc's
/// `cpp_quote_string` escaped it, and what follows the closing quote.
fn unquote(text: &[u8]) -> Result<(String, &[u8]), &'static str> {
    const ODD: &str = "a line marker gridcc cannot read";
    let mut name = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let name = String::from_utf8(name).map_err(|_| "a header name is not UTF-8")?;
                return Ok((name, &text[i + 1..]));
            }
            b'\\' => match text.get(i + 1) {
                Some(c @ (b'\\' | b'"')) => {
                    name.push(*c);
                    i += 2;
                }
                _ => return Err(ODD),
            },
            c => {
                name.push(c);
                i += 1;
            }
        }
    }
    Err(ODD)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn skip_blanks(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
        i += 1;
    }
    i
}

/// A literal `<name>` or `"name"` at `text[i..]`: the name and the index
/// after it.
fn literal_name(text: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let close = match text.get(i)? {
        b'<' => b'>',
        b'"' => b'"',
        _ => return None,
    };
    let len = text[i + 1..]
        .iter()
        .position(|c| *c == close || *c == b'\n')?;
    (text[i + 1 + len] == close).then(|| (&text[i + 1..i + 1 + len], i + 2 + len))
}

/// Checks one file's text for what rules direct mode out, and adds the
/// include names it spells literally (`#include`, `#include_next`,
/// `#import`, `__has_include`) to `names`.
fn scan(text: &[u8], names: &mut BTreeSet<String>, dates_ok: bool) -> Result<(), &'static str> {
    use memchr::memmem;
    for word in ["__DATE__", "__TIME__", "__TIMESTAMP__"] {
        if !dates_ok && memmem::find(text, word.as_bytes()).is_some() {
            return Err("__DATE__, __TIME__ or __TIMESTAMP__ in the source or a header");
        }
    }
    if memmem::find(text, b"__has_embed").is_some() {
        return Err("#embed");
    }
    for at in memmem::find_iter(text, b"dependency") {
        if before_gap(&text[..at]).ends_with(b"GCC") {
            return Err("#pragma GCC dependency (it compares file times)");
        }
    }
    const MACRO_ARG: &str = "__has_include with an argument that is not a literal name";
    for at in memmem::find_iter(text, b"__has_include") {
        if at > 0 && is_ident(text[at - 1]) {
            continue;
        }
        let end = at + text[at..].iter().take_while(|c| is_ident(**c)).count();
        if !matches!(
            &text[at..end],
            b"__has_include" | b"__has_include_next" | b"__has_include__" | b"__has_include_next__"
        ) {
            continue;
        }
        let line_start = text[..at]
            .iter()
            .rposition(|c| *c == b'\n')
            .map_or(0, |i| i + 1);
        if is_define_of(&text[line_start..at]) {
            // `#define __has_include(x) 0` for other compilers: the
            // parameter is no lookup.
            continue;
        }
        let i = skip_blanks(text, end);
        if text.get(i) != Some(&b'(') {
            // `#ifdef __has_include`, `defined(__has_include)`, prose.
            continue;
        }
        let (name, after) = literal_name(text, skip_blanks(text, i + 1)).ok_or(MACRO_ARG)?;
        if text.get(skip_blanks(text, after)) != Some(&b')') {
            return Err(MACRO_ARG);
        }
        names.insert(
            std::str::from_utf8(name)
                .map_err(|_| "a header name is not UTF-8")?
                .to_owned(),
        );
    }
    for line in text.split(|c| *c == b'\n') {
        let i = skip_blanks(line, 0);
        if line.get(i) != Some(&b'#') {
            continue;
        }
        let i = skip_blanks(line, i + 1);
        let word_end = i + line[i..].iter().take_while(|c| is_ident(**c)).count();
        match &line[i..word_end] {
            b"include" | b"include_next" | b"import" => {
                if let Some((name, _)) = literal_name(line, skip_blanks(line, word_end)) {
                    if let Ok(name) = std::str::from_utf8(name) {
                        names.insert(name.to_owned());
                    }
                }
            }
            b"embed" => return Err("#embed"),
            _ => {}
        }
    }
    Ok(())
}

/// `text` without what may stand between two tokens at its end: blanks,
/// backslash-newlines and `/* … */` comments (gcc reads
/// `#pragma GCC /* x */ dependency` and one split over lines as the pragma).
fn before_gap(mut text: &[u8]) -> &[u8] {
    loop {
        let trimmed = text.trim_ascii_end();
        if let Some(rest) = trimmed.strip_suffix(b"\\") {
            text = rest;
        } else if let Some(rest) = trimmed.strip_suffix(b"*/") {
            match memchr::memmem::rfind(rest, b"/*") {
                Some(open) => text = &rest[..open],
                None => return trimmed,
            }
        } else {
            return trimmed;
        }
    }
}

/// Whether `head` (a line up to a `__has_include`) is `#define ` and
/// blanks: the line defines a macro of that name.
fn is_define_of(head: &[u8]) -> bool {
    let i = skip_blanks(head, 0);
    if head.get(i) != Some(&b'#') {
        return false;
    }
    let i = skip_blanks(head, i + 1);
    let Some(rest) = head[i..].strip_prefix(b"define") else {
        return false;
    };
    !rest.is_empty() && rest.iter().all(|c| *c == b' ' || *c == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            object: Key::from_hash(blake3::hash(b"object")),
            files: vec![
                ("inc/h.h".into(), [7; 32]),
                ("/usr/include/stdio.h".into(), [9; 32]),
            ],
            probes: vec![
                ("h.h".into(), Probe::Missing),
                ("inc/sub".into(), Probe::Dir),
                ("x/y".into(), Probe::NotDir),
                ("fifo".into(), Probe::Other),
                ("o2.h".into(), Probe::File([3; 32])),
            ],
            dep_file: Some(("a.d".into(), b"a.o: a.c inc/h.h\n".to_vec())),
        }
    }

    #[test]
    fn manifests_round_trip_and_every_damage_is_detected() {
        let key = Key::from_hash(blake3::hash(b"manifest"));
        let bytes = encode(&key, &manifest()).unwrap();
        assert_eq!(decode(&key, &bytes).unwrap(), manifest());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&key, &bad).is_err(), "flip at {i}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&key, &bytes[..len]).is_err(), "truncation to {len}");
        }
        let other = Key::from_hash(blake3::hash(b"other"));
        assert_eq!(decode(&other, &bytes).unwrap_err(), Corrupt::Checksum);
        let none = Manifest {
            dep_file: None,
            files: vec![],
            probes: vec![],
            ..manifest()
        };
        assert_eq!(decode(&key, &encode(&key, &none).unwrap()).unwrap(), none);
    }

    #[test]
    fn entered_files_are_the_markers_with_flag_1() {
        let entered_files = |text: &[u8]| markers(text).map(|(entered, _)| entered);
        let text = b"# 0 \"a.c\"\n# 0 \"<command-line>\"\n# 1 \"./pre.h\" 1\n# 0 \"<command-line>\" 2\n# 1 \"a.c\"\n# 1 \"inc/h.h\" 1\n# 1 \"/usr/include/stdio.h\" 1 3 4\n# 2 \"inc/h.h\" 2\n# 1 \"/usr/include/stdio.h\" 1 3 4\n#define X 1\n# 12 \"we\\\\ird \\\"q\\\".h\" 1\nint x;\n";
        assert_eq!(
            entered_files(text).unwrap(),
            [
                "./pre.h",
                "inc/h.h",
                "/usr/include/stdio.h",
                "we\\ird \"q\".h"
            ]
        );
        assert!(entered_files(b"# 1 \"bad\\q.h\" 1\n").is_err());
        assert!(entered_files(b"# 1 \"unterminated 1\n").is_err());
        let (_, named) = markers(b"# 1 \"a.c\"\n# 7 \"gen/parse.y\"\n").unwrap();
        assert_eq!(
            named.into_iter().collect::<Vec<_>>(),
            ["a.c", "gen/parse.y"]
        );
    }

    /// The compile `gcc LINE` in `dir` (which holds its source).
    fn classified(dir: &Path, line: &str) -> (Vec<String>, RemoteCompile) {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        match crate::args::classify(&args, dir, &|_| None).unwrap() {
            crate::args::Classification::Remote(r) => (args, r),
            crate::args::Classification::Local(why) => panic!("{line}: local: {why}"),
        }
    }

    #[test]
    fn refusals_cover_what_direct_mode_cannot_see() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), "int a;\n").unwrap();
        let no_env = |_: &str| None;
        for (line, why) in [
            ("-c a.c", None),
            ("-MD -c a.c", Some("")),
            ("-DW=__DATE__ -c a.c", Some("__DATE__")),
            ("-DW=__TIMESTAMP__ -c a.c", Some("__DATE__")),
            ("-DH=__has_include(<x.h>) -c a.c", Some("__DATE__")),
            ("-imacros m.h -c a.c", Some("-imacros")),
            ("-Wp,-DX -c a.c", Some("-Wp,")),
            ("-Wp,-MD,a.d -c a.c", Some("")),
            ("-Wp,-MD,a.d,-MP -c a.c", Some("-Wp,")),
            ("-MD -MG -c a.c", Some("-MG")),
            ("-MD -MF x.d -Wp,-MMD,y.d -c a.c", Some("more than one")),
        ] {
            let (args, job) = classified(dir.path(), line);
            let got = refusal(&job, &args, &no_env);
            match why {
                None | Some("") => assert_eq!(got, None, "{line}"),
                Some(w) => assert!(got.is_some_and(|g| g.contains(w)), "{line}: {got:?}"),
            }
        }
        let (args, job) = classified(dir.path(), "-c a.c");
        for var in ["DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES"] {
            let env = |name: &str| (name == var).then(|| "deps.d".to_owned());
            assert!(refusal(&job, &args, &env).is_some(), "{var}");
        }
        let (args, job) = classified(dir.path(), "-c a.i");
        assert!(refusal(&job, &args, &no_env).is_some());
    }

    #[test]
    fn the_manifest_key_covers_compiler_arguments_cwd_source_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a.c");
        std::fs::write(&source, "int a;\n").unwrap();
        let (args, mut job) = classified(dir.path(), "-O2 -c a.c");
        // The source is read relative to this process: name it fully.
        job.source = source.display().to_string();
        let key = |compiler: &str,
                   identity: &str,
                   args: &[String],
                   expanded: &[String],
                   cwd: &str,
                   env: &dyn Fn(&str) -> Option<String>| {
            plan(&PlanInputs {
                compiler: Path::new(compiler),
                identity,
                args,
                expanded,
                job: &job,
                cwd,
                env,
                start: SystemTime::now(),
            })
            .unwrap()
            .key()
            .as_str()
            .to_owned()
        };
        let none = |_: &str| None;
        let base = key("/usr/bin/gcc", "id", &args, &args, "/w", &none);
        assert_eq!(base, key("/usr/bin/gcc", "id", &args, &args, "/w", &none));
        let other_args: Vec<String> = ["-O3", "-c", "a.c"].map(str::to_owned).to_vec();
        let mut differ = vec![
            key("/usr/bin/cc", "id", &args, &args, "/w", &none),
            key("/usr/bin/gcc", "id2", &args, &args, "/w", &none),
            key("/usr/bin/gcc", "id", &other_args, &args, "/w", &none),
            key("/usr/bin/gcc", "id", &args, &other_args, "/w", &none),
            key("/usr/bin/gcc", "id", &args, &args, "/v", &none),
        ];
        // The dependency-output variables are refused outright (above).
        for var in MANIFEST_ENV
            .iter()
            .chain(cache::KEY_ENV)
            .filter(|v| !["DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES"].contains(v))
        {
            let set = |name: &str| (name == *var).then(String::new);
            let other = |name: &str| (name == *var).then(|| "x".to_owned());
            differ.push(key("/usr/bin/gcc", "id", &args, &args, "/w", &set));
            differ.push(key("/usr/bin/gcc", "id", &args, &args, "/w", &other));
        }
        std::fs::write(&source, "int b;\n").unwrap();
        differ.push(key("/usr/bin/gcc", "id", &args, &args, "/w", &none));
        let mut all: Vec<&String> = differ.iter().chain([&base]).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), differ.len() + 1, "every change is another key");
    }

    #[test]
    fn a_search_list_is_kept_and_read_back_per_compiler_arguments_and_cwd() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A compiler that counts its runs and prints a search list.
        let runs = dir.path().join("runs");
        let cc = dir.path().join("cc");
        std::fs::write(
            &cc,
            format!(
                "#!/bin/sh\necho run >> '{}'\nprintf '#include \"...\" search starts here:\\n#include <...> search starts here:\\n /inc\\nEnd of search list.\\n' >&2\n",
                runs.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
        let compiler = Resolved {
            path: cc,
            child_path: None,
        };
        let cache_dir = dir.path().join("cache");
        let runs_so_far = || std::fs::read_to_string(&runs).unwrap().lines().count();
        let (_, job) = classified(dir.path(), "-Iinc -c a.c");
        let lists = |cwd| ListCache {
            dir: &cache_dir,
            identity: "id",
            cwd,
        };
        let got = search_list(&compiler, &job, Some(lists("/w"))).unwrap();
        assert_eq!(got, ["/inc"]);
        assert_eq!(runs_so_far(), 1);
        // Kept: the compiler does not run again for the same list.
        assert_eq!(
            search_list(&compiler, &job, Some(lists("/w"))).unwrap(),
            got
        );
        assert_eq!(runs_so_far(), 1);
        // Another working directory, other arguments, no cache: it runs.
        search_list(&compiler, &job, Some(lists("/v"))).unwrap();
        assert_eq!(runs_so_far(), 2);
        let (_, other) = classified(dir.path(), "-Iother -c a.c");
        search_list(&compiler, &other, Some(lists("/w"))).unwrap();
        assert_eq!(runs_so_far(), 3);
        search_list(&compiler, &job, None).unwrap();
        assert_eq!(runs_so_far(), 4);
        // A kept list that does not parse is run again and replaced.
        let kept = std::fs::read_dir(cache_dir.join("search-lists")).unwrap();
        for entry in kept {
            std::fs::write(entry.unwrap().path(), "garbage").unwrap();
        }
        assert_eq!(
            search_list(&compiler, &job, Some(lists("/w"))).unwrap(),
            got
        );
        assert_eq!(runs_so_far(), 5);
        search_list(&compiler, &job, Some(lists("/w"))).unwrap();
        assert_eq!(runs_so_far(), 5);
        // The key covers the compiler's identity and the environment.
        let none = |_: &str| None;
        let cpath = |n: &str| (n == "CPATH").then(|| "/x".to_owned());
        let other_id = ListCache {
            identity: "id2",
            ..lists("/w")
        };
        let keys = [
            list_key(&compiler, &job, &lists("/w"), &none),
            list_key(&compiler, &job, &lists("/w"), &cpath),
            list_key(&compiler, &job, &other_id, &none),
        ];
        assert!(keys[0] != keys[1] && keys[0] != keys[2] && keys[1] != keys[2]);
    }

    #[test]
    fn the_search_list_includes_ignored_directories() {
        let stderr = b"Using built-in specs.\n ignoring\nignoring nonexistent directory \"nope\"\nignoring duplicate directory \"inc/\"\n  as it is a non-system directory that duplicates a system directory\ncc1: warning: x.c: not a directory\n#include \"...\" search starts here:\n q\n#include <...> search starts here:\n inc\n /usr/include\nEnd of search list.\nCOMPILER_PATH=/usr/lib\n";
        assert_eq!(
            parse_search_list(stderr).unwrap(),
            ["nope", "inc/", "x.c", "q", "inc", "/usr/include"]
        );
        assert!(parse_search_list(b"#include <...> search starts here:\n /a\n").is_err());
        assert!(parse_search_list(b"#include \"...\" search starts here:\n#include <...> search starts here:\n /F (framework directory)\nEnd of search list.\n").is_err());
    }

    #[test]
    fn scanning_finds_literal_names_and_refuses_the_uncertain() {
        let mut names = BTreeSet::new();
        let text = b"#include <stdio.h>\n  #  include_next \"sub/x.h\"\n#import <objc.h>\n#include MACRO\n#ifdef __has_include\n# if __has_include (\"linux/close_range.h\") && __has_include_next(<a.h>)\n#endif\n#endif\n/* __has_include argument (GCC PR 80005) */\n#ifndef __has_include\n# define __has_include(x) 0\n#endif\n#  define BACKEND __has_include(<tbb/tbb.h>)\n";
        scan(text, &mut names, false).unwrap();
        assert_eq!(
            names.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "a.h",
                "linux/close_range.h",
                "objc.h",
                "stdio.h",
                "sub/x.h",
                "tbb/tbb.h"
            ]
        );
        for bad in [
            &b"#if __has_include(HEADER)\n#endif\n"[..],
            b"#define HAS(x) __has_include(x)\n",
            b"#if __has_include(<a.h> || 1)\n",
            b"const char *d = __DATE__;\n",
            b"#define T __TIMESTAMP__\n",
            b"#pragma GCC dependency \"parse.y\"\n",
            b"_Pragma(\"GCC  dependency \\\"x\\\"\")\n",
            b"#pragma GCC \\\ndependency \"parse.y\"\n",
            b"#pragma GCC /* a */ /* b\n */ \\\n dependency \"parse.y\"\n",
            b"#embed \"data.bin\"\n",
        ] {
            assert!(
                scan(bad, &mut BTreeSet::new(), false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Words that merely contain the names are fine.
        scan(
            b"int my__has_include_x; /* dependency */\n",
            &mut names,
            false,
        )
        .unwrap();
    }

    #[test]
    fn include_arguments_name_directories() {
        let args: Vec<String> = [
            "-Iinc",
            "-I",
            "b",
            "-I-",
            "-iquote",
            "q",
            "-isystemsys",
            "-idirafter",
            "late",
            "-include",
            "h.h",
            "-DX",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(include_arg_dirs(&args), ["inc", "b", "q", "sys", "late"]);
        assert_eq!(prefix(""), "");
        assert_eq!(prefix("inc"), "inc/");
        assert_eq!(prefix("/"), "/");
        assert_eq!(dir_of("a.c"), "");
        assert_eq!(dir_of("src/sub/a.h"), "src/sub/");
        assert_eq!(dir_of("/x.h"), "/");
    }

    #[test]
    fn probes_see_new_headers_missing_directories_and_skipped_copies() {
        let dir = tempfile::tempdir().unwrap();
        let d = |p: &str| format!("{}/{p}", dir.path().display());
        std::fs::create_dir_all(d("inc1")).unwrap();
        std::fs::create_dir_all(d("inc2/sub")).unwrap();
        std::fs::write(d("inc2/h.h"), "int h;\n").unwrap();
        std::fs::write(d("inc2/sub/s.h"), "int s;\n").unwrap();
        std::fs::write(d("o2.h"), "#pragma once\n").unwrap();
        let prefixes: BTreeSet<String> = ["inc1/", "inc2/", "gone/", ""]
            .iter()
            .map(|p| {
                if p.is_empty() {
                    format!("{}/", dir.path().display())
                } else {
                    d(p)
                }
            })
            .collect();
        let names: BTreeSet<String> = ["h.h", "sub/s.h", "o2.h", "deep/er/x.h"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let entered: HashSet<String> = [d("inc2/h.h"), d("inc2/sub/s.h")].into_iter().collect();
        let entered: HashSet<&str> = entered.iter().map(String::as_str).collect();
        // A limit in the future: nothing is too new.
        let later = SystemTime::now() + Duration::from_secs(3600);
        let probes = probe_all(&prefixes, &names, &entered, later, true).unwrap();
        let find = |p: &str| {
            probes
                .iter()
                .find(|(path, _)| *path == d(p))
                .map(|(_, s)| s.clone())
        };
        assert_eq!(find("inc1/h.h"), Some(Probe::Missing));
        assert_eq!(find("inc1/sub"), Some(Probe::Missing));
        assert_eq!(find("gone"), Some(Probe::Missing), "{probes:?}");
        assert_eq!(find("gone/h.h"), None, "pruned below a missing directory");
        assert_eq!(
            find("inc2/h.h"),
            None,
            "entered files are hashed, not probed"
        );
        assert_eq!(find("inc2/deep"), Some(Probe::Missing));
        assert_eq!(find("inc2/deep/er"), None);
        assert!(matches!(find("o2.h"), Some(Probe::File(_))));
        assert!(probes.iter().all(|(p, s)| s.holds(p)));

        // A header created earlier in the path, and a skipped copy edited.
        std::fs::write(d("inc1/h.h"), "int new_h;\n").unwrap();
        assert!(!Probe::Missing.holds(&d("inc1/h.h")));
        let o2 = find("o2.h").unwrap();
        std::fs::write(d("o2.h"), "#pragma once\nint changed;\n").unwrap();
        assert!(!o2.holds(&d("o2.h")));
        // A missing directory that appears.
        std::fs::create_dir(d("gone")).unwrap();
        assert!(!Probe::Missing.holds(&d("gone")));

        // Files changed after the start are too new.
        let now = SystemTime::now() - Duration::from_secs(5);
        assert!(probe_all(&prefixes, &names, &entered, now, true).is_err());
    }
}
