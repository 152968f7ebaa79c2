//! Running one hermetic job: its input tree laid out in a stage, the
//! client's command line run over it in the sandbox ([`crate::hermetic`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::hermetic::{Spec, ToolchainFiles};
use crate::job::{JobError, Outcome};
use crate::sandbox::{self, Limits};
use crate::stage::Stages;
use crate::store::Store;
use crate::tree::{host_path, LayError, Tree};

/// What a worker that runs hermetic jobs needs: bubblewrap, and the files
/// of each of its compilers by identity digest.
#[derive(Debug)]
pub struct Hermetic {
    pub bwrap: PathBuf,
    pub toolchains: HashMap<String, Arc<ToolchainFiles>>,
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
    bwrap: &Path,
    toolchain: &ToolchainFiles,
    compiler: &Path,
    tree: Tree,
    env: &[(String, String)],
    limits: &Limits,
) -> Result<(Outcome, bool), JobError> {
    let max_output = limits.max_output;
    let (stages, store) = (Arc::clone(stages), Arc::clone(store));
    let (mut stage, tree, (root, object, tmp), dated) = tokio::task::spawn_blocking(move || {
        let mut stage = stages.take()?;
        let places = stage.hermetic_places()?;
        let dated = stage.tree.sync(&places.0, &tree, &store)?;
        Ok::<_, JobError>((stage, tree, places, dated))
    })
    .await
    .map_err(|e| JobError::Io(std::io::Error::other(e)))??;

    let outputs = [(object.clone(), tree.object.clone())];
    let spec = Spec {
        root: &root,
        toolchain,
        outputs: &outputs,
        tmp: &tmp,
        cwd: &tree.cwd,
        extra: &[],
    };
    // -pipe, as for a text job: cc1's assembly streams into as instead of
    // a temp file (a driver-only flag: the object is unchanged).
    let mut argv: Vec<OsString> = vec![compiler.as_os_str().to_owned(), "-pipe".into()];
    argv.extend(tree.argv.iter().map(OsString::from));
    let mut cmd = crate::hermetic::command(bwrap, &spec, &argv, env)
        .map_err(|e| JobError::Io(std::io::Error::other(e.to_string())))?;
    sandbox::confine(&mut cmd, limits);
    let started = Instant::now();
    let child = cmd.spawn().map_err(|source| JobError::Spawn {
        compiler: bwrap.to_owned(),
        source,
    })?;
    // bwrap is the job's pid 1 (`--die-with-parent`, its own PID
    // namespace): killing its group ends every process of the job.
    let group = sandbox::GroupKill::new(child.id());
    let output = match limits.wall {
        Some(wall) => match tokio::time::timeout(wall, child.wait_with_output()).await {
            Ok(output) => output?,
            Err(_) => return Err(JobError::WallTime(wall)),
        },
        None => child.wait_with_output().await?,
    };
    group.disarm();
    let elapsed = started.elapsed();
    if output.status.code().is_some_and(|c| c != 0) {
        if let Some(why) = crate::job::resource_failure(&output.stderr) {
            return Err(JobError::Resource(why));
        }
    }
    let exit_code = match output.status.code() {
        Some(code) => code,
        None => {
            use std::os::unix::process::ExitStatusExt;
            return Err(JobError::Signal(output.status.signal().unwrap_or(0)));
        }
    };
    if (output.stdout.len() + output.stderr.len()) as u64 > max_output {
        return Err(JobError::OutputTooLarge(max_output));
    }
    let result = if exit_code == 0 {
        let meta = tokio::fs::metadata(&object)
            .await
            .map_err(|_| JobError::NoObject)?;
        if meta.len() == 0 {
            return Err(JobError::NoObject);
        }
        if meta.len() > max_output {
            return Err(JobError::OutputTooLarge(max_output));
        }
        Some(tokio::fs::read(&object).await?)
    } else {
        None
    };
    // The object's mount point is this job's, not the next one's tree.
    let _ = std::fs::remove_file(host_path(&root, &tree.object));
    stage.clean();
    Ok((
        Outcome {
            exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
            object: result,
            elapsed,
        },
        dated,
    ))
}
