//! A sandbox kept per slot: bwrap started once over the slot's tree, with
//! the launcher ([`super::launcher`]) inside, which then runs one job after
//! another. Starting bwrap (namespaces, a few dozen bind mounts) costs
//! milliseconds per job; asking the launcher costs a pipe round trip.
//!
//! What changes against a sandbox per job, and what holds it safe:
//! - the slot's root is bound writable at `/` (a job's object cannot be
//!   bound per job into a running sandbox), so it is kept only where the
//!   job runs as a user other than the worker's (a root worker's compile
//!   user): every file and directory of the tree is the worker's, and only
//!   the job's object file and the private temp dir are handed over;
//! - `/dev` is read-only, so a job cannot leave files for the next one;
//! - after each job the launcher kills every other process in the
//!   sandbox, so nothing a job starts sees the next job;
//! - a job that ends any other way than cleanly (an error, a limit, its
//!   client gone) takes the sandbox with it: it is dropped, and dropping
//!   it kills bwrap's process group, and with it the PID namespace;
//! - the mount points in the root are checked before each job (the same
//!   inode as when the sandbox started): a tree that replaced one gets a
//!   new sandbox.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::launcher::{self, Reply, Request, INIT_ARG, INIT_PATH, READY};
use super::{Bind, Spec, ToolchainFiles, TMP};
use crate::sandbox::{self, GroupKill, Limits, User};
use crate::tree::host_path;

/// A running sandbox and the launcher in it.
#[derive(Debug)]
pub struct Kept {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    /// The toolchain (identity digest) whose files it holds.
    toolchain: String,
    /// Each mount point in the root, and its identity at start.
    marks: Vec<(PathBuf, Mark)>,
    _group: GroupKill,
}

/// Which file a path is: device and inode, and the inode's change time,
/// since a file removed and made again often gets the same inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark(u64, u64, i64, i64);

impl Mark {
    fn of(m: &std::fs::Metadata) -> Self {
        Self(m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
    }
}

/// What every kept sandbox needs: the launcher and the compile user.
#[derive(Debug)]
pub struct Setup {
    /// The worker's own binary, bound at [`INIT_PATH`].
    pub launcher: PathBuf,
    /// The files the launcher loads (its libraries and the loader).
    pub launcher_files: ToolchainFiles,
    pub run_as: User,
}

impl Setup {
    /// Finds the launcher: this very binary.
    pub fn new(run_as: User) -> Result<Self, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the worker's own binary: {e}"))?;
        Self::with_launcher(&exe, run_as)
    }

    /// With `launcher` (a gridcc-worker binary) as the launcher.
    pub fn with_launcher(launcher: &Path, run_as: User) -> Result<Self, String> {
        let exe = launcher
            .canonicalize()
            .map_err(|e| format!("{}: {e}", launcher.display()))?;
        let mut files = super::toolchain::closure(std::slice::from_ref(&exe), Vec::new())
            .map_err(|e| format!("cannot list the libraries of {}: {e}", exe.display()))?;
        files.files.retain(|f| *f != exe);
        Ok(Self {
            launcher: exe,
            launcher_files: files,
            run_as,
        })
    }

    /// The files of `toolchain` and of the launcher, together.
    pub fn with(&self, toolchain: &ToolchainFiles) -> ToolchainFiles {
        let mut all = toolchain.clone();
        for f in &self.launcher_files.files {
            if !all.files.contains(f) {
                all.files.push(f.clone());
            }
        }
        for l in &self.launcher_files.symlinks {
            if !all.symlinks.iter().any(|(p, _)| *p == l.0) {
                all.symlinks.push(l.clone());
            }
        }
        all.files.sort();
        all.symlinks.sort();
        all
    }
}

impl Kept {
    /// Starts a sandbox over `root` (the slot's tree) with `files` (a
    /// toolchain's and the launcher's, [`Setup::with`]) and `tmp` as its
    /// private temp dir, and waits until the launcher runs.
    pub async fn start(
        bwrap: &Path,
        setup: &Setup,
        root: &Path,
        tmp: &Path,
        files: &ToolchainFiles,
        toolchain: &str,
    ) -> Result<Self, String> {
        let extra = [Bind {
            host: setup.launcher.clone(),
            inside: INIT_PATH.into(),
            writable: false,
        }];
        let spec = Spec {
            root,
            toolchain: files,
            outputs: &[],
            tmp,
            cwd: Path::new("/"),
            extra: &extra,
            kept: true,
        };
        let argv = [INIT_PATH.into(), INIT_ARG.into()];
        let mut cmd = super::command(bwrap, &spec, &argv, &[]).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::piped());
        // The launcher's own limits are none but the user: each job gets
        // its own from the launcher, and CPU time would add up over jobs.
        sandbox::confine(
            &mut cmd,
            &Limits {
                run_as: Some(setup.run_as),
                ..Limits::output_only(0)
            },
        );
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bwrap.display()))?;
        let group = GroupKill::new(child.id());
        let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("bwrap's pipes are missing".into());
        };
        let mut ready = [0u8; 1];
        let up = tokio::time::timeout(Duration::from_secs(20), stdout.read_exact(&mut ready)).await;
        if !matches!(up, Ok(Ok(_))) || ready[0] != READY {
            let mut why = String::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut why)).await;
            let first = why.lines().next().unwrap_or("no answer").trim().to_owned();
            return Err(format!("the kept sandbox did not start: {first}"));
        }
        // bwrap itself prints nothing more once the launcher runs; jobs
        // write their stderr to files.
        drop(stderr);
        let marks = mount_points(&spec)
            .into_iter()
            .filter_map(|inside| {
                let host = host_path(root, &inside);
                let m = std::fs::symlink_metadata(&host).ok()?;
                Some((host, Mark::of(&m)))
            })
            .collect();
        Ok(Self {
            child,
            stdin,
            stdout,
            toolchain: toolchain.to_owned(),
            marks,
            _group: group,
        })
    }

    /// bwrap's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether this sandbox holds `toolchain` and every mount point in its
    /// root is still the one it was started with.
    pub fn fits(&mut self, toolchain: &str) -> bool {
        self.toolchain == toolchain
            && matches!(self.child.try_wait(), Ok(None))
            && self.marks.iter().all(|(host, id)| {
                std::fs::symlink_metadata(host).is_ok_and(|m| Mark::of(&m) == *id)
            })
    }

    /// Runs one compile and returns how it ended and the CPU time it
    /// used. An `Err` leaves the sandbox unusable: drop it.
    pub async fn run(&mut self, request: &Request) -> Result<(ExitStatus, Duration), String> {
        let lost = |e: std::io::Error| format!("the kept sandbox went away: {e}");
        self.stdin.write_all(&request.frame()).await.map_err(lost)?;
        self.stdin.flush().await.map_err(lost)?;
        let mut head = [0u8; 4];
        self.stdout.read_exact(&mut head).await.map_err(lost)?;
        let len = launcher::frame_len(head).ok_or("the launcher's reply is too long")?;
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).await.map_err(lost)?;
        match Reply::parse(&body).ok_or("the launcher's reply is malformed")? {
            Reply::Status(raw, cpu_us) => {
                Ok((ExitStatus::from_raw(raw), Duration::from_micros(cpu_us)))
            }
            Reply::Failed(why) => Err(why),
        }
    }
}

/// Whether a kept sandbox starts here and runs a command (`/bin/sh`, in a
/// scratch dir under `work_dir`); `Err` is one line saying why not. Run
/// once at worker start.
pub async fn probe(bwrap: &Path, setup: &Setup, work_dir: &Path) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("kept sandbox probe: {what}: {e}");
    let scratch =
        super::ProbeDir::new(work_dir, Some(setup.run_as)).map_err(|e| fail("temp dir", &e))?;
    let (root, tmp) = (&scratch.root, &scratch.tmp);
    let (sh, files) = super::sh_files().await.map_err(|e| fail("/bin/sh", &e))?;
    let files = setup.with(&files);
    let mut kept = Kept::start(bwrap, setup, root, tmp, &files, "probe").await?;
    let request = Request {
        cwd: "/".into(),
        stdout: format!("{TMP}/out").into(),
        stderr: format!("{TMP}/err").into(),
        cpu_s: Some(10),
        memory_bytes: None,
        file_bytes: Some(1 << 20),
        env: Vec::new(),
        argv: vec![sh.into(), "-c".into(), "echo ok".into()],
    };
    let ran = tokio::time::timeout(Duration::from_secs(20), kept.run(&request))
        .await
        .map_err(|_| fail("launcher", &"no answer in 20 s"))?
        .map_err(|e| fail("launcher", &e))?;
    let out = read_job_file(&tmp.join("out"), 64).unwrap_or_default();
    if ran.0.success() && out == b"ok\n" {
        return Ok(());
    }
    let err = read_job_file(&tmp.join("err"), 4096).unwrap_or_default();
    let err = String::from_utf8_lossy(&err);
    Err(fail(
        "launcher",
        &format!("{}: {}", ran.0, err.lines().next().unwrap_or("no output")),
    ))
}

/// Every path in the root that the sandbox mounts over or made for it.
fn mount_points(spec: &Spec) -> Vec<PathBuf> {
    let t = spec.toolchain;
    [PathBuf::from(TMP), PathBuf::from("/dev")]
        .into_iter()
        .chain(t.data_dirs.iter().cloned())
        .chain(t.files.iter().cloned())
        .chain(t.symlinks.iter().map(|(link, _)| link.clone()))
        .chain(spec.extra.iter().map(|b| b.inside.clone()))
        .collect()
}

/// Reads a file the job wrote into its temp dir, at most `max` bytes,
/// never through a symlink (the job owns that directory and could have put
/// one there, pointing at a worker file).
pub fn read_job_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}
