//! Running one hermetic job: its input tree laid out in a stage, the
//! client's command line run over it in the sandbox ([`crate::hermetic`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::hermetic::kept::{Kept, Setup};
use crate::hermetic::launcher::Request;
use crate::hermetic::{Spec, ToolchainFiles, TMP};
use crate::job::{JobError, Outcome, Ran};
use crate::sandbox::{self, Limits, User};
use crate::stage::Stages;
use crate::store::Store;
use crate::tree::{host_path, LayError, Tree};

/// What a worker that runs hermetic jobs needs: bubblewrap, and the files
/// of each of its compilers by identity digest.
#[derive(Debug)]
pub struct Hermetic {
    pub bwrap: PathBuf,
    pub toolchains: HashMap<String, Arc<ToolchainFiles>>,
    /// Sandboxes kept per slot, where this worker can keep them (a root
    /// worker with a compile user whose kept sandbox started): the
    /// launcher, and each toolchain's files with the launcher's.
    pub kept: Option<(Setup, HashMap<String, Arc<ToolchainFiles>>)>,
}

impl Hermetic {
    /// Turns on kept sandboxes when one starts and runs a command here;
    /// otherwise says why not (each job then starts its own sandbox).
    pub async fn keep_sandboxes(&mut self, work_dir: &Path, run_as: User) -> Result<(), String> {
        let setup = Setup::new(run_as)?;
        crate::hermetic::kept::probe(&self.bwrap, &setup, work_dir).await?;
        let files = self
            .toolchains
            .iter()
            .map(|(id, t)| (id.clone(), Arc::new(setup.with(t))))
            .collect();
        self.kept = Some((setup, files));
        Ok(())
    }
}

impl From<LayError> for JobError {
    fn from(e: LayError) -> Self {
        match e {
            LayError::Io(e) => JobError::Io(e),
            lost => JobError::Io(std::io::Error::other(lost.to_string())),
        }
    }
}

/// Runs `tree`'s command line with `compiler` (a driver of `toolchain`)
/// in a stage taken from `stages`. Also returns whether an input holds
/// `__DATE__`-like macros (the result must not be cached).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    stages: &Arc<Stages>,
    store: &Arc<Store>,
    hermetic: &Hermetic,
    toolchain: &str,
    compiler: &Path,
    tree: Tree,
    env: &[(String, String)],
    limits: &Limits,
) -> Result<(Outcome, bool), JobError> {
    let bwrap = &hermetic.bwrap;
    let files = hermetic
        .toolchains
        .get(toolchain)
        .ok_or_else(|| JobError::Io(std::io::Error::other("no files of this toolchain")))?;
    let max_output = limits.max_output;
    // On this thread, not the blocking pool: a stage's tree differs from
    // its last job's in a few files (hard links, each checked blob read
    // nothing), which costs less than the hop there and back. A first
    // tree, or blobs not checked since a restart, take longer once.
    let mut stage = stages.take()?;
    let (root, object, tmp) = stage.hermetic_places()?;
    let dated = stage.tree.sync(&root, &tree, store)?;
    // -pipe, as for a text job: cc1's assembly streams into as instead of
    // a temp file (a driver-only flag: the object is unchanged).
    let mut argv: Vec<OsString> = vec![compiler.as_os_str().to_owned(), "-pipe".into()];
    argv.extend(tree.argv.iter().map(OsString::from));

    let at = host_path(&root, &tree.object);
    // An object path the tree already holds (a file, a mount point)
    // cannot become the job's own file: that job gets a sandbox of its
    // own, below.
    let free = matches!(std::fs::symlink_metadata(&at), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if let (true, Some((setup, kept_files))) = (free, &hermetic.kept) {
        if let Some(files) = kept_files.get(toolchain) {
            let mut reused = stage.sandbox.take();
            if reused.as_mut().is_some_and(|s| !s.fits(toolchain)) {
                // Dropped, which kills it.
                reused = None;
            }
            let sandbox = match reused {
                Some(s) => s,
                None => Kept::start(bwrap, setup, &root, &tmp, files, toolchain)
                    .await
                    .map_err(|e| JobError::Io(std::io::Error::other(e)))?,
            };
            let job = KeptJob {
                argv: &argv,
                env,
                cwd: &tree.cwd,
                tmp: &tmp,
                object: &at,
                slot_object: &object,
                path: &files.path,
            };
            let (outcome, sandbox) = in_kept(sandbox, job, limits).await?;
            stage.sandbox = Some(sandbox);
            stage.clean();
            return Ok((outcome, dated));
        }
    }

    let outputs = [(object.clone(), tree.object.clone())];
    let spec = Spec {
        root: &root,
        toolchain: files,
        outputs: &outputs,
        tmp: &tmp,
        cwd: &tree.cwd,
        extra: &[],
        kept: false,
    };
    let mut cmd = crate::hermetic::command(bwrap, &spec, &argv, env)
        .map_err(|e| JobError::Io(std::io::Error::other(e.to_string())))?;
    sandbox::confine(&mut cmd, limits);
    // bwrap is the job's pid 1 (`--die-with-parent`, its own PID
    // namespace): killing its group ends every process of the job.
    let Ran {
        exit_code,
        output,
        elapsed,
    } = crate::job::run_to_end(cmd, bwrap, limits).await?;
    let result = crate::job::collect_object(exit_code, &output, &object, max_output).await?;
    // The object's mount point is this job's, not the next one's tree.
    let _ = std::fs::remove_file(&at);
    stage.clean();
    Ok((
        Outcome {
            exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
            object: result,
            elapsed,
            cpu: None,
        },
        dated,
    ))
}

/// One job in a kept sandbox.
struct KeptJob<'a> {
    argv: &'a [OsString],
    env: &'a [(String, String)],
    cwd: &'a Path,
    /// The job's temp dir on the host (`TMP` inside).
    tmp: &'a Path,
    /// The object's file on the host, at the client's path in the root.
    object: &'a Path,
    /// The slot's object file (empty, the compile user's), which `object`
    /// becomes a link to for the job.
    slot_object: &'a Path,
    /// The toolchain's `PATH`.
    path: &'a [PathBuf],
}

/// Where the launcher puts a job's stdout and stderr, in its temp dir.
/// Kept from job to job (truncated, the same inodes; see
/// [`crate::stage::Stage::hermetic_places`]).
pub(crate) const STDOUT: &str = ".gridcc-stdout";
pub(crate) const STDERR: &str = ".gridcc-stderr";

/// Runs `job` in `sandbox` and gives the sandbox back when the job ended
/// cleanly; on any error it is dropped, which kills it.
async fn in_kept(
    mut sandbox: Kept,
    job: KeptJob<'_>,
    limits: &Limits,
) -> Result<(Outcome, Kept), JobError> {
    let io = |e: String| JobError::Io(std::io::Error::other(e));
    // The only file of the tree the job may write, empty and its own: the
    // slot's object file, linked in at the client's path (a new name, not
    // a new inode: on ext4 every new inode costs more the more were
    // deleted lately).
    std::fs::hard_link(job.slot_object, job.object)?;
    let mut env: Vec<OsString> = job
        .env
        .iter()
        .filter(|(name, _)| !crate::hermetic::SANDBOX_ENV.contains(&name.as_str()))
        .map(|(k, v)| format!("{k}={v}").into())
        .collect();
    let path = std::env::join_paths(job.path).unwrap_or_default();
    let mut entry = OsString::from("PATH=");
    entry.push(path);
    env.push(entry);
    env.push(format!("TMPDIR={TMP}").into());
    let (cpu_s, memory_bytes, file_bytes) = limits.rlimits();
    let request = Request {
        cwd: job.cwd.into(),
        stdout: format!("{TMP}/{STDOUT}").into(),
        stderr: format!("{TMP}/{STDERR}").into(),
        cpu_s,
        memory_bytes,
        file_bytes,
        env,
        argv: job.argv.to_vec(),
    };
    let started = std::time::Instant::now();
    let (status, cpu) = match limits.wall {
        Some(wall) => tokio::time::timeout(wall, sandbox.run(&request))
            .await
            .map_err(|_| JobError::WallTime(wall))?,
        None => sandbox.run(&request).await,
    }
    .map_err(io)?;
    let elapsed = started.elapsed();
    // One byte past the bound is enough to refuse it.
    let max = limits.max_output.saturating_add(1);
    let read = |name: &str| crate::hermetic::kept::read_job_file(&job.tmp.join(name), max);
    let output = std::process::Output {
        status,
        stdout: read(STDOUT)?,
        stderr: read(STDERR)?,
    };
    let Ran {
        exit_code,
        output,
        elapsed,
    } = crate::job::judge(output, elapsed)?;
    let object =
        crate::job::collect_object(exit_code, &output, job.object, limits.max_output).await?;
    std::fs::remove_file(job.object)?;
    Ok((
        Outcome {
            exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
            object,
            elapsed,
            cpu: Some(cpu),
        },
        sandbox,
    ))
}
