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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

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

/// `path` as a normal absolute path: `/`, then plain components only.
fn normal(path: &str) -> Result<PathBuf, TreeError> {
    let p = Path::new(path);
    let ok = path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && !path.contains('\0')
        && path
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && p.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if !ok || path == "/" {
        return Err(TreeError::NotNormal(path.to_owned()));
    }
    if RESERVED
        .iter()
        .any(|r| p.starts_with(r) || Path::new(r).starts_with(p))
    {
        return Err(TreeError::Reserved(path.to_owned()));
    }
    Ok(p.to_owned())
}

/// Checks a hermetic job's tree; `header_digest` is what the client says
/// the tree's digest is (the grid key the coordinator placed it by).
pub fn check(job: &v1::HermeticJob, cwd: &str, header_digest: &[u8]) -> Result<Tree, TreeError> {
    if job.files.len() > MAX_FILES {
        return Err(TreeError::TooLarge);
    }
    let mut files = Vec::with_capacity(job.files.len());
    let mut seen = HashSet::new();
    let mut size = 0u64;
    for f in &job.files {
        let path = normal(&f.path)?;
        let digest: Digest = f
            .digest
            .as_slice()
            .try_into()
            .map_err(|_| TreeError::BadDigest(f.path.clone()))?;
        size = size.saturating_add(f.size);
        if !seen.insert(path.clone()) {
            return Err(TreeError::Conflict(f.path.clone()));
        }
        files.push(Entry {
            path,
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
        let dir = normal(d)?;
        if seen.contains(&dir) {
            return Err(TreeError::Conflict(d.clone()));
        }
        dirs.push(dir);
    }
    // No file may sit where another file needs a directory.
    for f in &files {
        for parent in f.path.ancestors().skip(1) {
            if seen.contains(parent) {
                return Err(TreeError::Conflict(parent.display().to_string()));
            }
        }
    }
    let object = normal(&job.object)?;
    if seen.contains(&object) || dirs.contains(&object) {
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
    /// Client path → (digest, executable, holds `__DATE__`-like macros).
    files: HashMap<PathBuf, (Digest, bool, bool)>,
    dirs: BTreeSet<PathBuf>,
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
        let wanted: HashMap<&Path, &Entry> =
            tree.files.iter().map(|f| (f.path.as_path(), f)).collect();
        // Files of the last tree this one does not hold as they are.
        let stale: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(p, (d, x, _))| {
                wanted
                    .get(p.as_path())
                    .is_none_or(|e| e.digest != *d || e.executable != *x)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for path in stale {
            self.files.remove(&path);
            match std::fs::remove_file(host_path(root, &path)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut dirs: BTreeSet<PathBuf> = tree.dirs.iter().cloned().collect();
        dirs.insert(tree.cwd.clone());
        for f in &tree.files {
            dirs.extend(
                f.path
                    .ancestors()
                    .skip(1)
                    .filter(|a| *a != Path::new("/"))
                    .map(Path::to_owned),
            );
        }
        if let Some(parent) = tree.object.parent().filter(|p| *p != Path::new("/")) {
            dirs.extend(
                parent
                    .ancestors()
                    .filter(|a| *a != Path::new("/"))
                    .map(Path::to_owned),
            );
        }
        // Directories of the last tree this one does not need, deepest
        // first; one that still holds a sandbox mount point stays.
        let unneeded: Vec<&PathBuf> = self.dirs.difference(&dirs).collect();
        for old in unneeded.into_iter().rev() {
            let _ = std::fs::remove_dir(host_path(root, old));
        }
        for dir in &dirs {
            if !self.dirs.contains(dir) {
                std::fs::create_dir_all(host_path(root, dir))?;
            }
        }
        self.dirs = dirs;
        for f in &tree.files {
            if self.files.contains_key(&f.path) {
                continue;
            }
            let dest = host_path(root, &f.path);
            let dated = store
                .link(&f.digest, &dest, f.executable)?
                .ok_or_else(|| LayError::Lost(blake3::Hash::from(f.digest).to_hex().to_string()))?;
            self.files
                .insert(f.path.clone(), (f.digest, f.executable, dated));
        }
        Ok(tree
            .files
            .iter()
            .any(|f| self.files.get(&f.path).is_some_and(|(_, _, dated)| *dated)))
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
