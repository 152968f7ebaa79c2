//! Hermetic jobs, the client's side: the input tree of one compile and the
//! command line a worker runs over it in a sandbox.
//!
//! The tree holds every file the compile may read, by blake3 digest, at
//! its absolute client path: the source, every file the local
//! preprocessing entered (its line markers), and every other file an
//! include lookup or `__has_include` could have found (the probes of
//! [`crate::direct::lookups`]). With the directories lookups start in, a
//! lookup in the sandbox answers as it does here: what exists here exists
//! there, and nothing else does. Where that cannot be known (a computed
//! `__has_include`, `#embed`, a header whose search directory cannot be
//! told, the assembler's `.incbin`), or the compile would write a file
//! other than its object, there is no tree and the job is sent as text.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;

use crate::args::{Language, RemoteCompile};
use crate::compiler::Resolved;
use crate::direct::{self, Probe, Seen, Strictness};

/// Options whose compile writes a file besides the object, which a
/// hermetic job cannot return (the classifier runs most of them locally
/// already).
const WRITES_OTHER_FILES: &[&str] = &[
    "-fstack-usage",
    "-fcallgraph-info",
    "-save-temps",
    "-gsplit-dwarf",
    "-fdump",
    "-aux-info",
    "--coverage",
    "-ftest-coverage",
    "-fprofile",
    "-fopt-info",
    "-Xassembler",
    "-fplugin",
    "-specs",
    "--specs",
    "-B",
    "-wrapper",
    "@",
];

/// Whether an argument makes the compile write a file besides the object
/// or run another program. Assembler options pass only when they are
/// plain flags (`-Wa,--noexecstack`), not a listing (`-a…`) or a file.
fn writes_other_files(arg: &str) -> bool {
    if let Some(opts) = arg.strip_prefix("-Wa,") {
        return opts
            .split(',')
            .any(|o| !o.starts_with("--") || o.contains('=') || o.starts_with("--MD"));
    }
    WRITES_OTHER_FILES.iter().any(|w| arg.starts_with(w))
}

/// One file of the tree.
#[derive(Debug, Clone)]
pub struct File {
    pub path: String,
    pub digest: [u8; 32],
    pub size: u64,
    pub executable: bool,
}

/// A hermetic job: its input tree and command line.
#[derive(Debug)]
pub struct InputTree {
    pub files: Vec<File>,
    pub dirs: Vec<String>,
    /// The arguments after the compiler.
    pub argv: Vec<String>,
    /// The source as the command line names it, and its language (`c`,
    /// `c++`, `objective-c`, `objective-c++`).
    pub source: String,
    pub language: &'static str,
    /// The object's absolute path.
    pub object: String,
    /// [`gridcc_cache::tree_digest`] and the files' total size.
    pub digest: [u8; 32],
    pub size: u64,
    /// Every file's bytes, by digest, for the ones a worker lacks.
    blobs: HashMap<[u8; 32], Vec<u8>>,
}

impl InputTree {
    /// The bytes of a file of this tree.
    pub fn blob(&self, digest: &[u8]) -> Option<&[u8]> {
        let digest: [u8; 32] = digest.try_into().ok()?;
        self.blobs.get(&digest).map(Vec::as_slice)
    }
}

/// The hermetic job of `job`, whose preprocessing (run in `cwd`) printed
/// `text`, or why it has none; `lists` keeps the compiler's include search
/// list between compiles.
pub(crate) fn plan(
    compiler: &Resolved,
    job: &RemoteCompile,
    cwd: &str,
    text: &[u8],
    lists: Option<direct::ListCache<'_>>,
) -> Result<InputTree, &'static str> {
    if job.preprocessed_input {
        return Err("the input is preprocessed already");
    }
    if job
        .search_args
        .iter()
        .chain(&job.compile_args)
        .any(|a| writes_other_files(a))
    {
        return Err("an option writes a file besides the object or runs other programs");
    }
    if !cwd.starts_with('/') {
        return Err("the working directory is not absolute");
    }
    let language = match job.language {
        Language::C => "c",
        Language::Cxx => "c++",
        Language::ObjC => "objective-c",
        Language::ObjCxx => "objective-c++",
        _ => return Err("not a source language"),
    };
    let source_bytes = std::fs::read(absolute(cwd, &job.source).ok_or(NOT_NORMAL)?)
        .map_err(|_| "cannot read the source")?;
    let found = direct::lookups(
        &Seen {
            compiler,
            lists,
            job,
            source: &job.source,
            source_bytes: &source_bytes,
            text,
        },
        Strictness::Inputs,
    )?;

    let mut tree = Builder::default();
    tree.file(cwd, &job.source, source_bytes)?;
    for (path, bytes) in found.entered {
        tree.file(cwd, &path, bytes)?;
    }
    for (path, probe) in found.probes {
        match probe {
            Probe::File(hash) => {
                let bytes = std::fs::read(&path).map_err(|_| "a header vanished")?;
                if *blake3::hash(&bytes).as_bytes() != hash {
                    return Err("a header changed during the compile");
                }
                tree.file(cwd, &path, bytes)?;
            }
            Probe::Dir => tree.dir(cwd, &path)?,
            Probe::Other => return Err("a header path is neither a file nor a directory"),
            Probe::Missing | Probe::NotDir => {}
        }
    }
    tree.dir(cwd, cwd)?;
    for dir in &found.dirs {
        let dir = if dir.is_empty() { "." } else { dir.as_str() };
        if std::fs::metadata(absolute(cwd, dir).ok_or(NOT_NORMAL)?).is_ok_and(|m| m.is_dir()) {
            tree.dir(cwd, dir)?;
        }
    }
    if tree
        .files
        .values()
        .any(|f| memchr::memmem::find(&tree.blobs[&f.digest], b"incbin").is_some())
    {
        return Err(INCBIN);
    }
    let object = absolute(cwd, &job.output).ok_or(NOT_NORMAL)?;
    if tree.files.contains_key(&object) || tree.dirs.contains(&object) {
        return Err("the object's path is an input");
    }
    let parent = object.rsplit_once('/').map_or("/", |(p, _)| p);
    tree.dir(cwd, if parent.is_empty() { "/" } else { parent })?;

    let mut argv = job.search_args.clone();
    argv.extend(["-c".to_owned(), job.source.clone()]);
    argv.extend(["-o".to_owned(), job.output.clone()]);
    Ok(tree.finish(argv, object, job.source.clone(), language))
}

/// Why a compile whose source or a header holds `.incbin` runs locally:
/// the assembler reads that file wherever it runs, and only the client has
/// the right one (a text job would read the worker's; its worker refuses).
pub const INCBIN: &str = ".incbin in the source or a header (the assembler reads that file)";

const NOT_NORMAL: &str = "a path cannot be made absolute";

/// `path` made absolute against `cwd`, with `.` and `..` taken lexically
/// (a tree file sits where the compiler's open of that spelling lands
/// when every directory is a real one, as in the sandbox).
fn absolute(cwd: &str, path: &str) -> Option<String> {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

#[derive(Default)]
struct Builder {
    files: BTreeMap<String, File>,
    dirs: BTreeSet<String>,
    blobs: HashMap<[u8; 32], Vec<u8>>,
}

impl Builder {
    fn file(&mut self, cwd: &str, path: &str, bytes: Vec<u8>) -> Result<(), &'static str> {
        let abs = absolute(cwd, path).ok_or(NOT_NORMAL)?;
        let executable = std::fs::metadata(&abs)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        let digest = *blake3::hash(&bytes).as_bytes();
        let file = File {
            path: abs.clone(),
            digest,
            size: bytes.len() as u64,
            executable,
        };
        if let Some(old) = self.files.get(&abs) {
            // One path reached by two spellings (a symlinked directory and
            // `..`) with different contents cannot be laid out as one file.
            return if old.digest == digest {
                Ok(())
            } else {
                Err("one path names two different files (a symlink and ..)")
            };
        }
        self.files.insert(abs, file);
        self.blobs.entry(digest).or_insert(bytes);
        Ok(())
    }

    fn dir(&mut self, cwd: &str, path: &str) -> Result<(), &'static str> {
        let abs = absolute(cwd, path.trim_end_matches('/')).ok_or(NOT_NORMAL)?;
        self.dirs.insert(abs);
        Ok(())
    }

    fn finish(
        self,
        argv: Vec<String>,
        object: String,
        source: String,
        language: &'static str,
    ) -> InputTree {
        // Directories that hold a file exist anyway; a file's path is never
        // also a directory (the filesystem it came from says so).
        let mut dirs = self.dirs;
        dirs.retain(|d| d != "/" && !self.files.contains_key(d));
        let files: Vec<File> = self.files.into_values().collect();
        let dirs: Vec<String> = dirs.into_iter().collect();
        let tree_files: Vec<gridcc_cache::TreeFile<'_>> = files
            .iter()
            .map(|f| gridcc_cache::TreeFile {
                path: &f.path,
                digest: &f.digest,
                size: f.size,
                executable: f.executable,
            })
            .collect();
        let dir_refs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let digest = gridcc_cache::tree_digest(&tree_files, &dir_refs, &object);
        let size = files.iter().map(|f| f.size).sum();
        InputTree {
            files,
            dirs,
            argv,
            source,
            language,
            object,
            digest,
            size,
            blobs: self.blobs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{absolute, writes_other_files};

    #[test]
    fn options_that_write_files_are_told_apart() {
        for arg in [
            "-fstack-usage",
            "-save-temps=obj",
            "-Wa,-alh=x.lst",
            "-Wa,-a",
            "@rsp",
            "-B/x",
        ] {
            assert!(writes_other_files(arg), "{arg}");
        }
        for arg in ["-O2", "-g", "-Wa,--noexecstack", "-Wall", "-fPIC"] {
            assert!(!writes_other_files(arg), "{arg}");
        }
    }

    #[test]
    fn paths_are_made_absolute_lexically() {
        assert_eq!(absolute("/p/q", "a.c").as_deref(), Some("/p/q/a.c"));
        assert_eq!(absolute("/p/q", "./x/../a.h").as_deref(), Some("/p/q/a.h"));
        assert_eq!(absolute("/p/q", "../../a.h").as_deref(), Some("/a.h"));
        assert_eq!(absolute("/p", "../../a.h"), None);
        assert_eq!(
            absolute("/p", "/usr//include/./s.h").as_deref(),
            Some("/usr/include/s.h")
        );
        assert_eq!(absolute("/p", ".").as_deref(), Some("/p"));
    }
}
