//! Running one hermetic compile in a bubblewrap sandbox: the job's input
//! tree (at the client's paths) as a read-only root, the compiler's own
//! files bound read-only at their paths, a private `/tmp`, a minimal
//! `/dev`, the declared outputs as the only writable files, and nothing
//! else: no worker file, no network, no other process, no capability.
//!
//! - [`toolchain_files`]: what one compiler needs inside (once per
//!   compiler, at worker start).
//! - [`prepare`]: the mount points and the toolchain's symlinks, made in
//!   the job's root before bwrap runs.
//! - [`bwrap_args`]: the sandbox as a pure function of a [`Spec`].
//! - [`command`]: the whole `tokio::process::Command` of one job; the
//!   caller still applies [`crate::sandbox::confine`] (compile user,
//!   rlimits, process group) to it, which then binds bwrap and all it
//!   starts.
//! - [`probe`]: whether this worker can start such a sandbox at all.
//! - [`kept`]: a sandbox kept per slot, started once and given job after
//!   job (on a root worker with a compile user), its probe, and reading a
//!   job's output files back safely.
//! - [`launcher`]: the process inside a kept sandbox that starts each
//!   compile (the worker's own binary, `--sandbox-init`), and the frames
//!   it and the worker exchange.
//!
//! Why mount points are made in the root rather than by bwrap: bwrap runs
//! as the compile user (`nobody` under a root worker), who cannot write
//! the tree the worker wrote, and bubblewrap 0.8 has no overlay, so the
//! root is bound read-only first (`--ro-bind root /`) and everything bound
//! over it needs an existing mount point. The alternative, `--bind root /`
//! then `--remount-ro /`, would have bwrap create them in the same host
//! directory, which the compile user would then have to own.

mod bwrap;
pub mod kept;
pub mod launcher;
mod toolchain;

#[cfg(test)]
mod tests;

/// Where the job's private temp dir is inside (`TMPDIR`): not `/tmp`,
/// which a client's project may live under and the tree then holds.
pub const TMP: &str = "/.gridcc-tmp";

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use bwrap::{bwrap_args, SANDBOX_ID};
pub use toolchain::{toolchain_files, ToolchainFiles};

use crate::sandbox::{self, Limits, User};

#[derive(Debug, thiserror::Error)]
pub enum HermeticError {
    #[error("{0} is not an absolute path")]
    NotAbsolute(PathBuf),
    #[error("cannot run {program}: {source}")]
    Run {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} needs {lib}, which ldd does not find")]
    MissingLibrary { program: PathBuf, lib: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("too many symlinks resolving {0}")]
    SymlinkLoop(PathBuf),
    #[error("{} in the job's tree is a {found}, the sandbox needs a {wanted} there", path.display())]
    Conflict {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    #[error(
        "the job's tree has files under {TMP} ({0}), where the sandbox's private temp dir goes"
    )]
    TreeInTmp(PathBuf),
    #[error("the job's command must start with a driver of its toolchain, not {0:?}")]
    NotTheDriver(OsString),
}

/// What one sandboxed compile sees.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// A worker dir holding the job's input tree at the client's absolute
    /// paths (`root/home/u/p/a.c` is `/home/u/p/a.c` inside); read-only
    /// inside. The compile user must be able to read it.
    pub root: &'a Path,
    pub toolchain: &'a ToolchainFiles,
    /// `(host file, absolute client path inside)`: the only writable
    /// files. The host files exist (empty) and the compile user may write
    /// them.
    pub outputs: &'a [(PathBuf, PathBuf)],
    /// Host dir bound writable at `/tmp` inside (`TMPDIR=/tmp`), writable
    /// by the compile user.
    pub tmp: &'a Path,
    /// The client's working directory (absolute).
    pub cwd: &'a Path,
    /// More worker files or directories bound in: a text job's stage, at
    /// its own path (read-only, but for its output directory).
    pub extra: &'a [Bind],
    /// A sandbox kept for many jobs ([`kept`]): `root` is bound writable
    /// (its files are the worker's, not the compile user's) and `/dev`
    /// read-only.
    pub kept: bool,
}

/// A worker file or directory bound into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    pub inside: PathBuf,
    pub writable: bool,
}

/// Makes, in `spec.root`, what the sandbox needs there before bwrap runs:
/// the directories `/tmp`, `/dev` and the cwd, an empty file at each
/// toolchain file's and each output's path (mount points), and the
/// toolchain's symlinks. Idempotent, so a root kept across jobs keeps them;
/// a stage that prunes files not in a job's tree must spare them, or call
/// this again (it only stats what already exists).
///
/// Refuses a symlink or a file of the wrong type anywhere on those paths:
/// bwrap resolves mount points in the new root before the old one is gone,
/// so a symlink there could make it mount over (or create) a worker file.
pub fn prepare(spec: &Spec) -> Result<(), HermeticError> {
    let root = spec.root;
    // The private /tmp would hide them, and bwrap would make the outputs'
    // mount points in the host's tmp dir.
    let outputs = spec.outputs.iter().map(|(_, inside)| inside.as_path());
    if let Some(p) = std::iter::once(spec.cwd)
        .chain(outputs)
        .find(|p| p.starts_with(TMP))
    {
        return Err(HermeticError::TreeInTmp(p.to_owned()));
    }
    if let Some(Ok(entry)) = std::fs::read_dir(root.join(&TMP[1..]))
        .ok()
        .and_then(|mut d| d.next())
    {
        return Err(HermeticError::TreeInTmp(
            Path::new(TMP).join(entry.file_name()),
        ));
    }
    dir_in(root, Path::new(TMP))?;
    dir_in(root, Path::new("/dev"))?;
    for dir in &spec.toolchain.data_dirs {
        dir_in(root, dir)?;
    }
    dir_in(root, spec.cwd)?;
    for (link, target) in &spec.toolchain.symlinks {
        let path = entry_in(root, link)?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let stored = std::fs::read_link(&path).map_err(io(&path))?;
                if &stored != target {
                    return Err(conflict(link, "symlink elsewhere", "symlink"));
                }
            }
            Ok(m) => return Err(conflict(link, kind(&m), "symlink")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(target, &path).map_err(io(&path))?;
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    for bind in spec.extra {
        let is_dir = std::fs::symlink_metadata(&bind.host)
            .map_err(io(&bind.host))?
            .is_dir();
        if is_dir {
            dir_in(root, &bind.inside)?;
        }
    }
    let files = spec.toolchain.files.iter();
    let extra_files = spec
        .extra
        .iter()
        .filter(|b| !b.host.is_dir())
        .map(|b| &b.inside);
    for inside in files
        .chain(spec.outputs.iter().map(|(_, inside)| inside))
        .chain(extra_files)
    {
        let path = entry_in(root, inside)?;
        match std::fs::symlink_metadata(&path) {
            // A tree file at a toolchain path is hidden by the bind.
            Ok(m) if m.file_type().is_file() => {}
            Ok(m) => return Err(conflict(inside, kind(&m), "file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::File::create_new(&path).map_err(io(&path))?;
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(())
}

/// `root` + `inside`'s parent made as real directories (never through a
/// symlink), + `inside`'s last component.
fn entry_in(root: &Path, inside: &Path) -> Result<PathBuf, HermeticError> {
    let parent = inside
        .parent()
        .ok_or_else(|| HermeticError::NotAbsolute(inside.to_owned()))?;
    let name = inside
        .file_name()
        .ok_or_else(|| HermeticError::NotAbsolute(inside.to_owned()))?;
    Ok(dir_in(root, parent)?.join(name))
}

/// `mkdir -p root/inside` that refuses to pass through anything but a
/// directory.
fn dir_in(root: &Path, inside: &Path) -> Result<PathBuf, HermeticError> {
    if !inside.is_absolute() {
        return Err(HermeticError::NotAbsolute(inside.to_owned()));
    }
    let mut host = root.to_owned();
    let mut walked = PathBuf::from("/");
    for c in inside.components() {
        let std::path::Component::Normal(c) = c else {
            if c == std::path::Component::ParentDir {
                return Err(HermeticError::NotAbsolute(inside.to_owned()));
            }
            continue;
        };
        host.push(c);
        walked.push(c);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) => return Err(conflict(&walked, kind(&m), "directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&host).map_err(io(&host))?;
            }
            Err(e) => return Err(io(&host)(e)),
        }
    }
    Ok(host)
}

fn kind(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "file"
    } else {
        "special file"
    }
}

fn conflict(path: &Path, found: &'static str, wanted: &'static str) -> HermeticError {
    HermeticError::Conflict {
        path: path.to_owned(),
        found,
        wanted,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HermeticError + '_ {
    move |source| HermeticError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Variables the sandbox sets itself; a job cannot override them.
pub(crate) const SANDBOX_ENV: &[&str] = &["PATH", "TMPDIR"];

/// The command of one sandboxed compile: `bwrap [bwrap_args] [--setenv of
/// env] -- argv`, after [`prepare`]. `argv[0]` is the driver's absolute
/// path, one of `spec.toolchain`'s files or symlinks (or a file bound in
/// by `spec.extra`: the launcher of a kept sandbox). stdin is empty,
/// stdout and stderr piped, and dropping the child kills bwrap, which
/// takes the whole job with it (`--die-with-parent`, PID namespace). Apply
/// [`crate::sandbox::confine`] to it before spawning.
pub fn command(
    bwrap: &Path,
    spec: &Spec,
    argv: &[OsString],
    env: &[(String, String)],
) -> Result<tokio::process::Command, HermeticError> {
    let driver = argv.first().map(PathBuf::from).unwrap_or_default();
    let bound = spec.extra.iter().any(|b| b.inside == driver);
    if spec.toolchain.resolve_inside(&driver).is_none() && !bound {
        return Err(HermeticError::NotTheDriver(driver.into_os_string()));
    }
    prepare(spec)?;
    let mut cmd = tokio::process::Command::new(bwrap);
    // bwrap needs none of the worker's environment either.
    cmd.env_clear().args(bwrap_args(spec));
    for (name, value) in env {
        if !SANDBOX_ENV.contains(&name.as_str()) {
            cmd.arg("--setenv").arg(name).arg(value);
        }
    }
    cmd.arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(cmd)
}

/// Whether this worker can start bwrap with new user, mount, PID, network
/// and IPC namespaces, as `run_as` when given (a root worker's compile
/// user): runs `/bin/sh` in the very sandbox [`bwrap_args`] describes,
/// under `work_dir`, and checks it wrote its one output. `Err` is one line
/// naming the likely cause. Run once at worker start.
pub async fn probe(bwrap: &Path, work_dir: &Path, run_as: Option<User>) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("sandbox probe: {what}: {e}");
    let scratch = ProbeDir::new(work_dir, run_as).map_err(|e| fail("temp dir", &e))?;
    let (root, tmp) = (&scratch.root, &scratch.tmp);
    let out = scratch.dir.path().join("out");
    let made = std::fs::File::create(&out).and_then(|_| match run_as {
        Some(u) => std::os::unix::fs::chown(&out, Some(u.uid), Some(u.gid)),
        None => Ok(()),
    });
    made.map_err(|e| fail("temp dir", &e))?;
    let (sh, toolchain) = sh_files().await.map_err(|e| fail("/bin/sh", &e))?;
    let outputs = [(out.clone(), PathBuf::from("/probe.out"))];
    let spec = Spec {
        root,
        toolchain: &toolchain,
        outputs: &outputs,
        tmp,
        cwd: Path::new("/"),
        extra: &[],
        kept: false,
    };
    let argv: Vec<OsString> = vec![sh.into(), "-c".into(), "echo ok >/probe.out".into()];
    let mut cmd = command(bwrap, &spec, &argv, &[]).map_err(|e| fail("prepare", &e))?;
    sandbox::confine(
        &mut cmd,
        &Limits {
            run_as,
            ..Limits::output_only(0)
        },
    );
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{} not found: install bubblewrap (Debian: apt-get install bubblewrap)",
            bwrap.display()
        ),
        _ => fail(&bwrap.display().to_string(), &e),
    })?;
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .map_err(|_| fail("bwrap", &"no answer in 20 s"))?
        .map_err(|e| fail("bwrap", &e))?;
    let wrote = std::fs::read(&out).unwrap_or_default();
    if output.status.success() && wrote == b"ok\n" {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or("").trim();
    let hint = if first.contains("Permission denied") {
        "; the compile user must be able to enter every directory above --work-dir"
    } else {
        ""
    };
    Err(format!(
        "bwrap cannot start the sandbox ({}): {} (see docs/security.md, \"The sandbox\")",
        output.status,
        if first.is_empty() {
            "the probe wrote no output"
        } else {
            first
        }
    ) + hint)
}

/// A start-up probe's scratch job dir under the work dir (so the probe
/// meets the work dir's permissions, as jobs will): an empty root, and a
/// private temp dir that is the compile user's. Removed when dropped.
pub(crate) struct ProbeDir {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub tmp: PathBuf,
}

impl ProbeDir {
    pub(crate) fn new(work_dir: &Path, run_as: Option<User>) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("gridcc-probe-")
            .tempdir_in(work_dir)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let (root, tmp) = (dir.path().join("root"), dir.path().join("tmp"));
        std::fs::create_dir(&root)?;
        std::fs::create_dir(&tmp)?;
        if let Some(u) = run_as {
            std::os::unix::fs::chown(&tmp, Some(u.uid), Some(u.gid))?;
        }
        Ok(Self { dir, root, tmp })
    }
}

/// `/bin/sh` and the files it needs inside a sandbox: what the probes run.
pub(crate) async fn sh_files() -> Result<(PathBuf, ToolchainFiles), String> {
    let sh = PathBuf::from("/bin/sh");
    let program = sh.clone();
    let files = tokio::task::spawn_blocking(move || toolchain::closure(&[program], Vec::new()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok((sh, files))
}
