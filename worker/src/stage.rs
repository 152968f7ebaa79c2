//! Job roots that outlive their jobs: one per slot, reused, so a job's
//! files are written only where they differ from the last job's.
//!
//! Creating and deleting a job's files is most of what a worker costs per
//! job: a header-heavy source-mode job lays out dozens of header files, and
//! on ext4 every new inode is a walk of the inode bitmap that grows with the
//! inodes deleted in the last minutes (`recently_deleted`). So a job takes a
//! [`Stage`] from the pool, the files it needs are written only when the
//! stage does not hold them already (same path, same digest), and nothing is
//! deleted afterwards. A build compiles the same headers over and over, so
//! in a steady state a job writes its main file and nothing else.
//!
//! Safety between jobs rests on three things:
//! - the files a stage holds are the worker's and never the compile user's:
//!   only `out/` (object, dependency list, temp files) and the working
//!   directories are handed over, so a compile cannot change what the next
//!   job reads;
//! - a job reads only its own files: every include is by absolute path to
//!   one of its own places, and source mode checks the dependency list, so
//!   a file left by an earlier job is never read (and if it were, the job's
//!   output is withheld);
//! - a stage whose job did not end cleanly (cancelled, killed, an error
//!   mid-write) is discarded, not reused: a compiler that outlived its job
//!   must never write into the next job's output.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sandbox::User;

/// Files a stage may hold before it is discarded and started afresh: keeps
/// the disk and the index bounded when paths keep changing (a client's
/// source paths, header versions). 20,000 is a few builds' worth.
const MAX_FILES: usize = 20_000;

/// Stages that exist now and are not idle in the pool: in use by a job, or
/// being removed (the `gridcc_worker_temp_dirs` gauge).
static LIVE: AtomicU64 = AtomicU64::new(0);

/// Job roots in use or being removed now.
pub fn live() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// The pool of stages of one worker, under its work dir.
#[derive(Debug)]
pub struct Stages {
    base: PathBuf,
    run_as: Option<User>,
    idle: Mutex<Vec<Stage>>,
}

impl Stages {
    /// Stages are made under `base` as they are first needed; their
    /// writable parts belong to `run_as` when the worker runs as root.
    pub fn new(base: &Path, run_as: Option<User>) -> Arc<Self> {
        Arc::new(Self {
            base: base.to_owned(),
            run_as,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A stage for one job: an idle one, or a new one. Blocking (it may
    /// create a directory).
    pub fn take(self: &Arc<Self>) -> std::io::Result<Taken> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let stage = match reused {
            Some(stage) if stage.files.len() <= MAX_FILES => stage,
            other => {
                if let Some(old) = other {
                    discard(old);
                }
                Stage::new(&self.base, self.run_as)?
            }
        };
        LIVE.fetch_add(1, Ordering::Relaxed);
        Ok(Taken {
            stage: Some(stage),
            stages: Arc::clone(self),
            clean: false,
        })
    }
}

/// Removes a stage's files off the job's path.
fn discard(stage: Stage) {
    LIVE.fetch_add(1, Ordering::Relaxed);
    std::thread::spawn(move || {
        drop(stage);
        LIVE.fetch_sub(1, Ordering::Relaxed);
    });
}

/// A stage taken by a job. Dropped, it goes back to the pool if the job
/// marked it [`Taken::clean`], and is discarded otherwise.
#[derive(Debug)]
pub struct Taken {
    stage: Option<Stage>,
    stages: Arc<Stages>,
    clean: bool,
}

impl Taken {
    /// The job ended and every process it started has exited: the stage
    /// may serve the next job.
    pub fn clean(&mut self) {
        self.clean = true;
    }
}

impl std::ops::Deref for Taken {
    type Target = Stage;
    fn deref(&self) -> &Stage {
        // Some until dropped.
        self.stage
            .as_ref()
            .expect("a taken stage is held until drop")
    }
}

impl std::ops::DerefMut for Taken {
    fn deref_mut(&mut self) -> &mut Stage {
        self.stage
            .as_mut()
            .expect("a taken stage is held until drop")
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let Some(stage) = self.stage.take() else {
            return;
        };
        if self.clean {
            self.stages
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(stage);
        } else {
            discard(stage);
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One job root and what it holds.
#[derive(Debug)]
pub struct Stage {
    dir: tempfile::TempDir,
    run_as: Option<User>,
    /// Files written, by path, with the digest of what they hold.
    files: HashMap<PathBuf, blake3::Hash>,
    /// Directories that exist.
    dirs: HashSet<PathBuf>,
    /// What the last job laid out, by a key of its input and layout: the
    /// next job with the same key finds every file in place. Any write
    /// forgets it.
    last: Option<(blake3::Hash, Box<dyn std::any::Any + Send>)>,
    /// A hermetic job's input tree under `tree/` (see [`crate::tree`]).
    pub tree: crate::tree::Laid,
    /// The sandbox kept running over `tree/` (see
    /// [`crate::hermetic::kept`]); dropped (killed) with the stage.
    pub sandbox: Option<crate::hermetic::kept::Kept>,
}

impl Stage {
    fn new(base: &Path, run_as: Option<User>) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gridcc-stage-")
            .tempdir_in(base)?;
        let stage = Self {
            dir,
            run_as,
            files: HashMap::new(),
            dirs: HashSet::new(),
            last: None,
            tree: crate::tree::Laid::default(),
            sandbox: None,
        };
        if let Some(user) = run_as {
            // The compile user's group may enter the stage and read; only
            // `out/` and the working directories are its to write.
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(stage.root(), None, Some(user.gid))?;
            std::fs::set_permissions(stage.root(), std::fs::Permissions::from_mode(0o750))?;
        }
        std::fs::create_dir(stage.out())?;
        stage.hand_over(&stage.out())?;
        Ok(stage)
    }

    /// The stage's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The compile's own writable directory: object, dependency list and
    /// temp files go there.
    pub fn out(&self) -> PathBuf {
        self.root().join("out")
    }

    /// What the last job laid out, if its key was `key`.
    pub fn last<T: 'static>(&self, key: &blake3::Hash) -> Option<&T> {
        self.last
            .as_ref()
            .filter(|(k, _)| k == key)
            .and_then(|(_, laid_out)| laid_out.downcast_ref())
    }

    /// Remembers what a job laid out under `key`, for [`Stage::last`].
    pub fn remember_last<T: Send + 'static>(&mut self, key: blake3::Hash, laid_out: T) {
        self.last = Some((key, Box::new(laid_out)));
    }

    /// Makes `dir` and its parents inside the stage, the worker's.
    pub fn dir(&mut self, dir: &Path) -> std::io::Result<()> {
        self.last = None;
        if self.dirs.contains(dir) || dir == self.root() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        let mut at = Some(dir);
        while let Some(d) = at.filter(|d| *d != self.root()) {
            if !self.dirs.insert(d.to_owned()) {
                break;
            }
            at = d.parent();
        }
        Ok(())
    }

    /// Makes the working directory `dir`, the compile user's (a compile
    /// writes nothing there, but gcc may check it).
    pub fn workdir(&mut self, dir: &Path) -> std::io::Result<()> {
        let new = !self.dirs.contains(dir);
        self.dir(dir)?;
        if new {
            self.hand_over(dir)?;
        }
        Ok(())
    }

    /// Puts `bytes` at `path` (inside the stage, its directory made),
    /// writing only when the stage does not hold them there already. An
    /// existing file is overwritten in place: no new inode.
    pub fn file(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.last = None;
        let digest = blake3::hash(bytes);
        if self.files.get(path) == Some(&digest) {
            return Ok(());
        }
        // Forgotten first: a write that fails half-way leaves no claim.
        self.files.remove(path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        f.write_all(bytes)?;
        self.files.insert(path.to_owned(), digest);
        Ok(())
    }

    /// Empties an output file of the last job, keeping its inode: GNU as
    /// deletes and recreates a non-empty output but reuses an empty one,
    /// and an empty object is never taken for a compile's result.
    pub fn clear_output(&self, path: &Path) -> std::io::Result<()> {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(f) => f.set_len(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A hermetic job's places: the root its sandbox sees as `/` (the
    /// worker's, read-only inside), and in `out/` the object's file (empty)
    /// and a private temp dir (empty), both the compile user's.
    pub fn hermetic_places(&self) -> std::io::Result<(PathBuf, PathBuf, PathBuf)> {
        let root = self.root().join("tree");
        let object = self.out().join("object");
        let tmp = self.out().join("tmp");
        std::fs::create_dir_all(&root)?;
        // Whatever the last job left in its temp dir goes; the directory
        // itself stays (a kept sandbox has it bound).
        match std::fs::read_dir(&tmp) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    let path = entry.path();
                    // Never followed: a symlink is removed, not its target.
                    let meta = std::fs::symlink_metadata(&path)?;
                    // A kept sandbox's stdout and stderr files stay (the
                    // launcher truncates them): no new inodes per job.
                    let name = entry.file_name();
                    if meta.is_file()
                        && (name == crate::sandboxed::STDOUT || name == crate::sandboxed::STDERR)
                    {
                        continue;
                    }
                    match meta.is_dir() {
                        true => std::fs::remove_dir_all(&path)?,
                        false => std::fs::remove_file(&path)?,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&tmp)?;
                self.hand_over(&tmp)?;
            }
            Err(e) => return Err(e),
        }
        std::fs::File::create(&object)?;
        self.hand_over(&object)?;
        Ok((root, object, tmp))
    }

    fn hand_over(&self, dir: &Path) -> std::io::Result<()> {
        match self.run_as {
            Some(user) => std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_clean_stage_is_reused_and_unchanged_files_keep_their_inode() {
        let base = tempfile::tempdir().unwrap();
        let stages = Stages::new(base.path(), None);
        let (root, inode) = {
            let mut s = stages.take().unwrap();
            let dir = s.root().join("ha/usr/include");
            s.dir(&dir).unwrap();
            s.file(&dir.join("x.h"), b"int x;\n").unwrap();
            s.clean();
            let inode = std::fs::metadata(dir.join("x.h")).unwrap().ino();
            (s.root().to_owned(), inode)
        };
        let mut s = stages.take().unwrap();
        assert_eq!(s.root(), root);
        let file = root.join("ha/usr/include/x.h");
        let before = std::fs::metadata(&file).unwrap().modified().unwrap();
        s.file(&file, b"int x;\n").unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            before
        );
        s.file(&file, b"long x;\n").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"long x;\n");
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
    }

    #[test]
    fn a_stage_not_marked_clean_is_discarded() {
        let base = tempfile::tempdir().unwrap();
        let stages = Stages::new(base.path(), None);
        let root = {
            let s = stages.take().unwrap();
            s.root().to_owned()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while root.exists() {
            assert!(std::time::Instant::now() < deadline, "stage not removed");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let s = stages.take().unwrap();
        assert_ne!(s.root(), root);
    }

    #[test]
    fn an_output_is_emptied_in_place() {
        let base = tempfile::tempdir().unwrap();
        let stages = Stages::new(base.path(), None);
        let s = stages.take().unwrap();
        let obj = s.out().join("o.o");
        s.clear_output(&obj).unwrap();
        std::fs::write(&obj, b"old object").unwrap();
        let inode = std::fs::metadata(&obj).unwrap().ino();
        s.clear_output(&obj).unwrap();
        let meta = std::fs::metadata(&obj).unwrap();
        assert_eq!((meta.len(), meta.ino()), (0, inode));
    }
}
