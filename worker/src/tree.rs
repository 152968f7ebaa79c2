//! A hermetic job's input tree: checked as it arrives, and laid out in a
//! stage from the input store.
//!
//! The client names every file (absolute path, blake3, size, executable
//! bit) and the directories that must exist. The worker checks that each
//! path is absolute and normal, that no path is both a file and a
//! directory, and recomputes the tree's digest itself (the grid key is
//! over it). A stage keeps the tree of its last job: the next job links
//! only the files that differ, and unlinks the ones it does not name, so
//! the sandbox holds exactly this job's tree. Files are hard links to the
//! store's blobs (a copy where the two are on different filesystems, or
//! for an executable file): no new inode per job, and the sandbox binds
//! the tree read-only, so a job can change no blob.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use gridcc_proto::v1;

use crate::store::{Digest, Store};

/// Most files and bytes one tree may name.
const MAX_FILES: usize = 100_000;
const MAX_TREE_BYTES: u64 = 4 << 30;

/// Paths the sandbox mounts itself; a tree may not put anything there.
const RESERVED: &[&str] = &["/dev", "/proc", "/.gridcc-tmp"];

/// One checked file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub executable: bool,
}

/// A checked input tree and the command line to run over it.
#[derive(Debug, Clone)]
pub struct Tree {
    pub files: Vec<Entry>,
    pub dirs: Vec<PathBuf>,
    pub argv: Vec<String>,
    pub object: PathBuf,
    pub cwd: PathBuf,
    /// `gridcc_cache::tree_digest`, as the worker computed it.
    pub digest: [u8; 32],
    pub size: u64,
}

/// Why a tree is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("input tree path {0:?} is not absolute and normal")]
    NotNormal(String),
    #[error("input tree path {0:?} is reserved for the sandbox")]
    Reserved(String),
    #[error("input tree names {0:?} twice, or as a file and a directory")]
    Conflict(String),
    #[error("input tree has more than {MAX_FILES} files or {MAX_TREE_BYTES} bytes")]
    TooLarge,
    #[error("input tree file {0:?} has a digest that is not 32 bytes")]
    BadDigest(String),
    #[error("the input tree's digest does not match the job's")]
    DigestMismatch,
    #[error("the object path {0:?} is an input")]
    ObjectIsInput(String),
}

/// Checks that `path` is a normal absolute path: `/`, then plain
/// components only (none empty, `.` or `..`), outside [`RESERVED`].
fn normal_str(path: &str) -> Result<&str, TreeError> {
    let ok = path.len() > 1
        && path.starts_with('/')
        && !path.contains('\0')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok {
        return Err(TreeError::NotNormal(path.to_owned()));
    }
    // Strings, compared at a `/`: the same as comparing components here.
    let under = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if RESERVED.iter().any(|r| under(path, r) || under(r, path)) {
        return Err(TreeError::Reserved(path.to_owned()));
    }
    Ok(path)
}

/// [`normal_str`], as a path.
fn normal(path: &str) -> Result<PathBuf, TreeError> {
    normal_str(path).map(PathBuf::from)
}

/// The directories above a normal absolute path, nearest first, without
/// `/`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        let cut = rest.rfind('/').filter(|&at| at > 0)?;
        rest = &rest[..cut];
        Some(rest)
    })
}

/// Checks a hermetic job's tree; `header_digest` is what the client says
/// the tree's digest is (the grid key the coordinator placed it by).
pub fn check(job: &v1::HermeticJob, cwd: &str, header_digest: &[u8]) -> Result<Tree, TreeError> {
    if job.files.len() > MAX_FILES {
        return Err(TreeError::TooLarge);
    }
    let mut files = Vec::with_capacity(job.files.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(job.files.len());
    let mut size = 0u64;
    for f in &job.files {
        let path = normal_str(&f.path)?;
        let digest: Digest = f
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| TreeError::BadDigest(f.path.clone()))?;
        size = size.saturating_add(f.size);
        if !seen.insert(path) {
            return Err(TreeError::Conflict(f.path.clone()));
        }
        files.push(Entry {
            path: PathBuf::from(path),
            digest,
            size: f.size,
            executable: f.executable,
        });
    }
    if size > MAX_TREE_BYTES {
        return Err(TreeError::TooLarge);
    }
    let mut dirs = Vec::with_capacity(job.dirs.len());
    for d in &job.dirs {
        if seen.contains(normal_str(d)?) {
            return Err(TreeError::Conflict(d.clone()));
        }
        dirs.push(PathBuf::from(d));
    }
    // No file may sit where another file needs a directory. Directories
    // already seen to be free are not looked up again.
    let mut free: HashSet<&str> = HashSet::new();
    for f in &job.files {
        for parent in parents(&f.path) {
            if !free.insert(parent) {
                break;
            }
            if seen.contains(parent) {
                return Err(TreeError::Conflict(parent.to_owned()));
            }
        }
    }
    let object = normal(&job.object)?;
    if seen.contains(job.object.as_str()) || job.dirs.contains(&job.object) {
        return Err(TreeError::ObjectIsInput(job.object.clone()));
    }
    let cwd = normal(cwd)?;
    let tree_files: Vec<gridcc_cache::TreeFile<'_>> = job
        .files
        .iter()
        .map(|f| gridcc_cache::TreeFile {
            path: &f.path,
            digest: &f.digest,
            size: f.size,
            executable: f.executable,
        })
        .collect();
    let dir_refs: Vec<&str> = job.dirs.iter().map(String::as_str).collect();
    let digest = gridcc_cache::tree_digest(&tree_files, &dir_refs, &job.object);
    if digest[..] != *header_digest {
        return Err(TreeError::DigestMismatch);
    }
    Ok(Tree {
        files,
        dirs,
        argv: job.argv.clone(),
        object,
        cwd,
        digest,
        size,
    })
}

/// The digests a store lacks, each once, in the tree's order.
pub fn missing(tree: &Tree, store: &Store) -> Vec<(Digest, u64)> {
    let mut asked = HashSet::new();
    tree.files
        .iter()
        .filter(|f| !store.has(&f.digest, f.size) && asked.insert(f.digest))
        .map(|f| (f.digest, f.size))
        .collect()
}

/// What a stage's tree holds now.
#[derive(Debug, Default)]
pub struct Laid {
    files: HashMap<PathBuf, LaidFile>,
    dirs: HashSet<PathBuf>,
    /// Counts [`Laid::sync`]s: a file whose `seen` is not the current
    /// one was not named by the last tree.
    generation: u64,
}

#[derive(Debug)]
struct LaidFile {
    digest: Digest,
    executable: bool,
    /// Holds `__DATE__`-like macros.
    dated: bool,
    seen: u64,
}

/// Why a tree could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum LayError {
    /// The store lost a blob since the job was accepted (evicted, or found
    /// corrupt and dropped).
    #[error("input blob {0} is no longer held")]
    Lost(String),
    #[error("cannot lay out the input tree: {0}")]
    Io(#[from] std::io::Error),
}

/// Where `inside` (an absolute client path) is under `root`.
pub fn host_path(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

impl Laid {
    /// Makes `root` hold `tree`'s files and directories and no file of an
    /// earlier tree. Returns whether any file holds `__DATE__`,
    /// `__TIME__` or `__TIMESTAMP__` (its object must not be cached).
    /// Blocking.
    pub fn sync(&mut self, root: &Path, tree: &Tree, store: &Store) -> Result<bool, LayError> {
        self.generation += 1;
        let generation = self.generation;
        // Files of the last tree that this one holds as they are; the
        // rest of this tree's files are still to be linked.
        let mut to_link = Vec::new();
        for f in &tree.files {
            match self.files.get_mut(&f.path) {
                Some(laid) if laid.digest == f.digest && laid.executable == f.executable => {
                    laid.seen = generation;
                }
                _ => to_link.push(f),
            }
        }
        let mut failed = None;
        self.files.retain(|path, laid| {
            if laid.seen == generation {
                return true;
            }
            match std::fs::remove_file(host_path(root, path)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && failed.is_none() => {
                    failed = Some(e);
                }
                _ => {}
            }
            false
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        // The directories this tree needs: its own, the cwd, every file's
        // parents and the object's. A parent already counted has its own
        // parents counted too.
        fn add_with_parents<'a>(dirs: &mut HashSet<&'a Path>, dir: Option<&'a Path>) {
            let mut at = dir;
            while let Some(d) = at.filter(|d| *d != Path::new("/")) {
                if !dirs.insert(d) {
                    break;
                }
                at = d.parent();
            }
        }
        let mut dirs: HashSet<&Path> = tree.dirs.iter().map(PathBuf::as_path).collect();
        for f in &tree.files {
            add_with_parents(&mut dirs, f.path.parent());
        }
        add_with_parents(&mut dirs, Some(tree.cwd.as_path()));
        add_with_parents(&mut dirs, tree.object.parent());
        for d in &tree.dirs {
            add_with_parents(&mut dirs, d.parent());
        }
        // Directories of the last tree this one does not need, deepest
        // first; one that still holds a sandbox mount point stays.
        let mut unneeded: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|d| !dirs.contains(d.as_path()))
            .cloned()
            .collect();
        unneeded.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for old in unneeded {
            let _ = std::fs::remove_dir(host_path(root, &old));
            self.dirs.remove(&old);
        }
        for dir in dirs {
            if !self.dirs.contains(dir) {
                std::fs::create_dir_all(host_path(root, dir))?;
                self.dirs.insert(dir.to_owned());
            }
        }
        for f in to_link {
            let dest = host_path(root, &f.path);
            let dated = store
                .link(&f.digest, &dest, f.executable)?
                .ok_or_else(|| LayError::Lost(blake3::Hash::from(f.digest).to_hex().to_string()))?;
            self.files.insert(
                f.path.clone(),
                LaidFile {
                    digest: f.digest,
                    executable: f.executable,
                    dated,
                    seen: generation,
                },
            );
        }
        Ok(self.files.values().any(|laid| laid.dated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, bytes: &[u8]) -> v1::InputFile {
        v1::InputFile {
            path: path.into(),
            digest: blake3::hash(bytes).as_bytes().to_vec(),
            size: bytes.len() as u64,
            executable: false,
        }
    }

    fn job(files: Vec<v1::InputFile>, dirs: &[&str]) -> v1::HermeticJob {
        v1::HermeticJob {
            files,
            dirs: dirs.iter().map(|d| (*d).to_owned()).collect(),
            argv: vec!["-c".into(), "a.c".into(), "-o".into(), "a.o".into()],
            object: "/p/a.o".into(),
        }
    }

    fn digest_of(j: &v1::HermeticJob) -> [u8; 32] {
        let files: Vec<gridcc_cache::TreeFile<'_>> = j
            .files
            .iter()
            .map(|f| gridcc_cache::TreeFile {
                path: &f.path,
                digest: &f.digest,
                size: f.size,
                executable: f.executable,
            })
            .collect();
        let dirs: Vec<&str> = j.dirs.iter().map(String::as_str).collect();
        gridcc_cache::tree_digest(&files, &dirs, &j.object)
    }

    #[test]
    fn bad_trees_are_refused_with_their_reason() {
        let good = job(vec![file("/p/a.c", b"int x;\n")], &["/p/inc"]);
        assert!(check(&good, "/p", &digest_of(&good)).is_ok());
        let refuse = |j: v1::HermeticJob| check(&j, "/p", &digest_of(&j)).unwrap_err();
        for bad in [
            "p/a.c",
            "/p/../etc/passwd",
            "/p/./a.c",
            "/p//a.c",
            "/p/a.c/",
        ] {
            assert!(
                matches!(
                    refuse(job(vec![file(bad, b"")], &[])),
                    TreeError::NotNormal(_)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            refuse(job(vec![file("/dev/null", b"")], &[])),
            TreeError::Reserved(_)
        ));
        assert!(matches!(
            refuse(job(vec![file("/p/a.c", b""), file("/p/a.c", b"x")], &[])),
            TreeError::Conflict(_)
        ));
        assert!(matches!(
            refuse(job(vec![file("/p/a.c", b""), file("/p/a.c/b.h", b"")], &[])),
            TreeError::Conflict(_)
        ));
        assert!(matches!(
            refuse(job(vec![file("/p/a.o", b"")], &[])),
            TreeError::ObjectIsInput(_)
        ));
        assert_eq!(
            check(&good, "/p", &[0; 32]).unwrap_err(),
            TreeError::DigestMismatch
        );
    }

    #[test]
    fn a_stage_holds_exactly_the_last_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 1 << 20).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let put = |bytes: &[u8]| store.put(blake3::hash(bytes).as_bytes(), bytes).unwrap();
        put(b"int a;\n");
        put(b"int b;\n");
        put(b"const char *d = __DATE__;\n");
        let mut laid = Laid::default();
        let first = job(
            vec![file("/p/a.c", b"int a;\n"), file("/p/inc/b.h", b"int b;\n")],
            &["/p/empty"],
        );
        let tree = check(&first, "/p", &digest_of(&first)).unwrap();
        assert!(!laid.sync(&root, &tree, &store).unwrap());
        assert_eq!(std::fs::read(root.join("p/inc/b.h")).unwrap(), b"int b;\n");
        assert!(root.join("p/empty").is_dir());
        let second = job(vec![file("/p/a.c", b"const char *d = __DATE__;\n")], &[]);
        let tree = check(&second, "/p", &digest_of(&second)).unwrap();
        assert!(laid.sync(&root, &tree, &store).unwrap(), "dated");
        assert!(
            !root.join("p/inc").exists(),
            "the last tree's files are gone"
        );
        assert!(!root.join("p/empty").exists());
        assert_eq!(
            std::fs::read(root.join("p/a.c")).unwrap(),
            b"const char *d = __DATE__;\n"
        );
        // A blob the store lost is said so, not laid out empty.
        let lost = job(vec![file("/p/a.c", b"never stored")], &[]);
        let tree = check(&lost, "/p", &digest_of(&lost)).unwrap();
        assert!(matches!(
            laid.sync(&root, &tree, &store),
            Err(LayError::Lost(_))
        ));
    }
}
