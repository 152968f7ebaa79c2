//! Running one hermetic job: its input tree laid out in a stage, the
//! client's command line run over it in the sandbox ([`crate::hermetic`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::hermetic::{Spec, ToolchainFiles};
use crate::job::{JobError, Outcome, Ran};
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
    // bwrap is the job's pid 1 (`--die-with-parent`, its own PID
    // namespace): killing its group ends every process of the job.
    let Ran {
        exit_code,
        output,
        elapsed,
    } = crate::job::run_to_end(cmd, bwrap, limits).await?;
    let result = crate::job::collect_object(exit_code, &output, &object, max_output).await?;
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
