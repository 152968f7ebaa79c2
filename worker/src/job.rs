//! Running one compile job: a stage taken from the pool ([`crate::stage`]),
//! the input laid out there, the advertised compiler run on it with the
//! client's (already checked) arguments, the object read back. The stage
//! goes back to the pool when the job ends cleanly and is discarded
//! otherwise; the compiler is killed if the client goes away or the job
//! outlives its wall-clock limit. The limits and the user it runs as are in
//! [`crate::sandbox`].

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::headers;
use crate::layout::{self, Layout};
use crate::sandbox::{self, Limits};
use crate::stage::{Stage, Stages};

/// A job ready to run.
#[derive(Debug)]
pub struct Job {
    pub compiler: PathBuf,
    /// blake3 of `input`, checked by the caller.
    pub input_digest: [u8; 32],
    pub args: Vec<String>,
    pub language: String,
    pub layout: Layout,
    pub input: Vec<u8>,
    /// Locale variables from the client, so diagnostics read the same.
    pub env: Vec<(String, String)>,
}

/// What the compiler did.
#[derive(Debug)]
pub struct Outcome {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The object, when the compile succeeded.
    pub object: Option<Vec<u8>>,
    pub elapsed: Duration,
    /// CPU time of the compiler (driver, cc1, as), where it was measured
    /// apart from the worker's (a kept sandbox's launcher measures it).
    pub cpu: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot prepare the job directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error("cannot start {compiler}: {source}")]
    Spawn {
        compiler: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("compiler killed by signal {0}")]
    Signal(i32),
    #[error("job exceeded its wall-clock limit of {0:?}")]
    WallTime(Duration),
    #[error("compiler stopped by a resource limit: {0}")]
    Resource(String),
    #[error("compiler exited 0 but wrote no object")]
    NoObject,
    #[error("compiler output exceeds {0} bytes")]
    OutputTooLarge(u64),
    #[error(transparent)]
    FileAccess(#[from] crate::directives::FileAccess),
}

/// Locale and diagnostics variables a client may pass to the compiler.
pub const PASSED_ENV: &[&str] = &[
    "LANG",
    "LC_ALL",
    "LC_MESSAGES",
    "LC_CTYPE",
    "GCC_COLORS",
    "TERM",
];

/// The sandbox a text job runs in, where the worker has one: bwrap and the
/// job's compiler's files.
#[derive(Debug, Clone, Copy)]
pub struct TextSandbox<'a> {
    pub bwrap: &'a std::path::Path,
    pub toolchain: &'a crate::hermetic::ToolchainFiles,
}

/// Runs the job in a stage taken from `stages` (see [`crate::stage`]); in
/// `sandbox` when given (see [`sandboxed_command`]).
pub async fn run(
    job: Job,
    stages: &Arc<Stages>,
    limits: &Limits,
    sandbox: Option<TextSandbox<'_>>,
) -> Result<Outcome, JobError> {
    let max_output = limits.max_output;
    let stages = Arc::clone(stages);
    let (job, stage, staged) = tokio::task::spawn_blocking(move || {
        let mut stage = stages.take()?;
        let staged = lay_out(&mut stage, &job)?;
        Ok::<_, JobError>((job, stage, staged))
    })
    .await
    .map_err(|e| JobError::Io(std::io::Error::other(e)))??;
    let mut stage = stage;
    let Staged {
        plan,
        extra_args,
        inputs,
        worker_prefixes,
        object,
    } = staged;
    // -pipe streams cc1's assembly straight into as: 3-5 ms less per job
    // than a temp file, and a driver-only flag, so the object is unchanged.
    let mut argv: Vec<std::ffi::OsString> = vec![job.compiler.clone().into(), "-pipe".into()];
    argv.extend(job.args.iter().chain(&extra_args).map(Into::into));
    argv.extend(["-x".into(), job.language.clone().into(), "-c".into()]);
    argv.extend([
        plan.input_arg.clone().into(),
        "-o".into(),
        object.clone().into(),
    ]);
    let env: Vec<(String, String)> = job
        .env
        .iter()
        .filter(|(name, _)| PASSED_ENV.contains(&name.as_str()))
        .cloned()
        .collect();
    let mut cmd = match sandbox {
        Some(sandbox) => sandboxed_command(&stage, &plan.workdir, sandbox, &argv, &env)?,
        None => {
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .current_dir(&plan.workdir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            for name in PASSED_ENV {
                cmd.env_remove(name);
            }
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            // gcc puts its temporary files in TMPDIR; keep them inside the job.
            cmd.env("TMPDIR", stage.out());
            cmd
        }
    };
    sandbox::confine(&mut cmd, limits);

    let Ran {
        exit_code,
        output,
        elapsed,
    } = run_to_end(cmd, &job.compiler, limits).await?;
    if let Some(deps_file) = &plan.deps_file {
        let deps = tokio::fs::read_to_string(deps_file).await.ok();
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        crate::directives::check_deps(deps.as_deref(), &object.to_string_lossy(), &inputs)?;
    }
    // Emptied before the run (`Stage::clear_output`): empty is unwritten.
    let object = collect_object(exit_code, &output, &object, max_output).await?;
    // Every process of the job has exited (its group was waited for by
    // the driver), so the stage can serve the next job. Error paths drop it
    // unmarked, and it is discarded.
    stage.clean();
    Ok(Outcome {
        exit_code,
        stdout: client_paths(output.stdout, &worker_prefixes),
        stderr: client_paths(output.stderr, &worker_prefixes),
        object,
        elapsed,
        cpu: None,
    })
}

/// A compile that ran to its end.
pub(crate) struct Ran {
    pub exit_code: i32,
    pub output: std::process::Output,
    pub elapsed: std::time::Duration,
}

/// Spawns `cmd` (already confined) and waits for it within the wall-clock
/// limit. Whatever ends the wait early (the limit, or the job's future
/// dropped because its client went away) kills the job's whole process
/// group: cc1 and as, or a sandbox's bwrap, which takes its PID namespace
/// along. A limit or a crash is the worker's failure, not a compile error.
pub(crate) async fn run_to_end(
    mut cmd: tokio::process::Command,
    program: &std::path::Path,
    limits: &Limits,
) -> Result<Ran, JobError> {
    let started = Instant::now();
    let child = cmd.spawn().map_err(|source| JobError::Spawn {
        compiler: program.to_owned(),
        source,
    })?;
    let group = sandbox::GroupKill::new(child.id());
    let output = match limits.wall {
        Some(wall) => match tokio::time::timeout(wall, child.wait_with_output()).await {
            Ok(output) => output?,
            Err(_) => return Err(JobError::WallTime(wall)),
        },
        None => child.wait_with_output().await?,
    };
    group.disarm();
    judge(output, started.elapsed())
}

/// How a compile that ran to its end ended: its exit code, or the
/// worker's failure when a limit or a crash stopped it.
pub(crate) fn judge(output: std::process::Output, elapsed: Duration) -> Result<Ran, JobError> {
    if output.status.code().is_some_and(|c| c != 0) {
        if let Some(why) = resource_failure(&output.stderr) {
            // Not the client's error: the same compile may well succeed on
            // another worker or locally, so it must not reach the user as a
            // compile error.
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
    Ok(Ran {
        exit_code,
        output,
        elapsed,
    })
}

/// The object a successful compile wrote to `object` (an empty file is an
/// unwritten one: outputs are emptied before each run), within the output
/// bound with what it printed; `None` after a compile error.
pub(crate) async fn collect_object(
    exit_code: i32,
    output: &std::process::Output,
    object: &std::path::Path,
    max_output: u64,
) -> Result<Option<Vec<u8>>, JobError> {
    if (output.stdout.len() + output.stderr.len()) as u64 > max_output {
        return Err(JobError::OutputTooLarge(max_output));
    }
    if exit_code != 0 {
        return Ok(None);
    }
    // Read here, not through `tokio::fs`: an object just written is in
    // the page cache, and reading it costs less than the two hops to the
    // blocking pool and back that `tokio::fs` takes for each call.
    let meta = std::fs::metadata(object).map_err(|_| JobError::NoObject)?;
    if meta.len() == 0 {
        return Err(JobError::NoObject);
    }
    if meta.len() > max_output {
        return Err(JobError::OutputTooLarge(max_output));
    }
    Ok(Some(std::fs::read(object)?))
}

/// A text job's command in the sandbox: an empty root holding only the
/// compiler's files and the job's own stage, bound at its own path (so
/// every path the layout wrote into the arguments holds) read-only, but
/// for `out/` (object, dependency list, temp files). No other file of the
/// worker exists there: a line marker or `__has_include` naming one finds
/// nothing, as on a client without it. A hermetic job's tree under the
/// same stage is not bound.
fn sandboxed_command(
    stage: &Stage,
    workdir: &std::path::Path,
    sandbox: TextSandbox<'_>,
    argv: &[std::ffi::OsString],
    env: &[(String, String)],
) -> Result<tokio::process::Command, JobError> {
    let root = stage.root().join(".sandbox-root");
    let tmp = stage.out().join("tmp");
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&tmp)?;
    let mut extra = Vec::new();
    for entry in std::fs::read_dir(stage.root())? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".sandbox-root" || name == "tree" {
            continue;
        }
        extra.push(crate::hermetic::Bind {
            host: entry.path(),
            inside: entry.path(),
            writable: name == "out",
        });
    }
    let spec = crate::hermetic::Spec {
        root: &root,
        toolchain: sandbox.toolchain,
        outputs: &[],
        tmp: &tmp,
        cwd: workdir,
        extra: &extra,
        kept: false,
    };
    crate::hermetic::command(sandbox.bwrap, &spec, argv, env)
        .map_err(|e| JobError::Io(std::io::Error::other(e.to_string())))
}

/// gcc's words when a limit (or a crash) stopped cc1 or as, rather than the
/// source being wrong.
pub(crate) fn resource_failure(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    const MARKS: &[&str] = &[
        "out of memory allocating",
        "virtual memory exhausted",
        "signal terminated program",
        "CPU time limit exceeded",
        // `as` (or cc1) killed by SIGXFSZ: a file past RLIMIT_FSIZE.
        "File size limit exceeded",
    ];
    text.lines()
        .find(|l| MARKS.iter().any(|m| l.contains(m)))
        .map(|l| l.trim().to_owned())
}

/// Where a job's files went, and what the compile needs to know of them.
#[derive(Debug, Clone)]
struct Staged {
    plan: layout::Plan,
    /// Arguments after the client's: prefix maps and the like.
    extra_args: Vec<String>,
    /// The files the compile may read (source mode's dependency check).
    inputs: Vec<String>,
    /// Worker paths to take out of the compiler's output.
    worker_prefixes: Vec<String>,
    /// Where the object goes, emptied.
    object: PathBuf,
}

/// Blocking: writes `job`'s input into `stage` (only what differs from
/// what it holds) and empties the outputs of the last job there.
fn lay_out(stage: &mut Stage, job: &Job) -> Result<Staged, JobError> {
    // The same input laid out the same way as the stage's last job: its
    // files are all there already (a stage is only ever written by jobs).
    let key = layout_key(job);
    if let Some(staged) = stage.last::<Staged>(&key) {
        let staged = staged.clone();
        clear_outputs(stage, &staged)?;
        return Ok(staged);
    }
    let staged = lay_out_anew(stage, job)?;
    clear_outputs(stage, &staged)?;
    stage.remember_last(key, staged.clone());
    Ok(staged)
}

/// What decides how a job is laid out: its input and everything
/// `layout::plan` and `headers::split` read.
fn layout_key(job: &Job) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(&job.input_digest);
    let (kind, a, b) = match &job.layout {
        Layout::Preprocessed { input_name } => (0u8, input_name.as_str(), ""),
        Layout::Source { source_path, cwd } => (1u8, source_path.as_str(), cwd.as_str()),
    };
    h.update(&[kind]);
    for part in std::iter::once(a)
        .chain([b])
        .chain(job.args.iter().map(String::as_str))
    {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()
}

/// Empties the outputs the last job left.
fn clear_outputs(stage: &Stage, staged: &Staged) -> Result<(), JobError> {
    stage.clear_output(&staged.object)?;
    if let Some(deps) = &staged.plan.deps_file {
        stage.clear_output(deps)?;
    }
    Ok(())
}

fn lay_out_anew(stage: &mut Stage, job: &Job) -> Result<Staged, JobError> {
    let root = stage.root().to_owned();
    let plan = layout::plan(&root, &job.layout, &job.args)?;
    for d in &plan.dirs {
        stage.dir(d)?;
    }
    stage.workdir(&plan.workdir)?;
    let mut staged = Staged {
        extra_args: plan.extra_args.clone(),
        inputs: vec![plan.input_arg.clone()],
        worker_prefixes: Vec::new(),
        object: stage.out().join("gridcc-out.o"),
        plan,
    };
    // Source mode: one file per header, as on the client (see `headers`).
    let split = match job.layout {
        Layout::Source { .. } => split_headers(&root, &job.input, &job.args)?,
        Layout::Preprocessed { .. } => None,
    };
    match split {
        Some((headers, split)) => {
            stage.file(&staged.plan.input_file, &split.main)?;
            for d in &headers.dirs {
                stage.dir(d)?;
            }
            for (path, text) in headers.files.iter().zip(&split.files) {
                stage.file(path, text)?;
            }
            staged
                .inputs
                .extend(headers.places.values().map(|p| p.include_path.clone()));
            staged.extra_args.extend(headers.extra_args.iter().cloned());
            // Diagnostics name headers by their worker path (prefix maps do
            // not apply to them); `client_paths` rewrites it.
            staged.worker_prefixes = vec![headers.relative_root, headers.absolute_root];
        }
        None => stage.file(&staged.plan.input_file, &job.input)?,
    }
    // No source excerpts, whatever the layout, and after the client's
    // arguments so none of theirs turns them back on. gcc prints an
    // excerpt by opening the file a line marker names, and the client
    // writes the markers: a `.i` (or a `#line`) naming a worker file would
    // print that file line by line in its error excerpts. The split
    // headers' lines need not match the client's anyway.
    staged
        .extra_args
        .push("-fno-diagnostics-show-caret".to_owned());
    Ok(staged)
}

/// Splits source-mode `input` into a main text and header files laid out in
/// `root`; `None` where the text is compiled whole: its markers do not
/// split cleanly, or the debug info records macros (`-g3`), which would show
/// the version macro `headers::split` adds.
fn split_headers(
    root: &std::path::Path,
    input: &[u8],
    args: &[String],
) -> Result<Option<(layout::HeaderPlan, headers::Split)>, JobError> {
    if headers::records_macros(args) {
        return Ok(None);
    }
    let Some(names) = headers::names(input) else {
        return Ok(None);
    };
    let plan = layout::headers(root, &names, args)?;
    let split = headers::split(
        input,
        &|name| plan.places.get(name).cloned(),
        plan.files.len(),
    );
    Ok(split.map(|split| (plan, split)))
}

/// Removes each worker path prefix from compiler output, which leaves the
/// client's own names (the prefixes are unique temp paths).
fn client_paths(output: Vec<u8>, prefixes: &[String]) -> Vec<u8> {
    prefixes.iter().fold(output, |output, prefix| {
        let finder = memchr::memmem::Finder::new(prefix.as_bytes());
        let mut out = Vec::with_capacity(output.len());
        let mut kept = 0;
        for at in finder.find_iter(&output) {
            out.extend_from_slice(&output[kept..at]);
            kept = at + prefix.len();
        }
        if kept == 0 {
            return output;
        }
        out.extend_from_slice(&output[kept..]);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job run without the sandbox (its tests are in `hermetic`).
    async fn run(job: Job, stages: &Arc<Stages>, limits: &Limits) -> Result<Outcome, JobError> {
        super::run(job, stages, limits, None).await
    }

    fn stages(work: &tempfile::TempDir, limits: &Limits) -> Arc<Stages> {
        Stages::new(work.path(), limits.run_as)
    }

    /// The stages under `work`: one after clean jobs, as they reuse it.
    fn stage_count(work: &std::path::Path) -> usize {
        std::fs::read_dir(work).unwrap().count()
    }

    /// Waits (bounded) for the background removal of discarded stages.
    async fn assert_removed(work: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(work).unwrap().count() > 0 {
            assert!(Instant::now() < deadline, "stage left behind in {work:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn job(source: &str) -> Job {
        Job {
            compiler: PathBuf::from("/usr/bin/gcc"),
            input_digest: *blake3::hash(source.as_bytes()).as_bytes(),
            args: vec!["-O2".into(), "-Wall".into()],
            language: "cpp-output".into(),
            layout: Layout::Preprocessed {
                input_name: "t.i".into(),
            },
            input: source.as_bytes().to_vec(),
            env: vec![("LC_ALL".into(), "C".into())],
        }
    }

    #[test]
    fn worker_prefixes_are_removed_from_output() {
        let prefixes = ["/j/hr/_/".to_owned(), "/j/ha".to_owned()];
        let out = client_paths(
            b"In file included from /j/ha/usr/x.h:3,\n/j/hr/_/../a.h:1: w /j/ha/b\n".to_vec(),
            &prefixes,
        );
        assert_eq!(out, b"In file included from /usr/x.h:3,\n../a.h:1: w /b\n");
        assert_eq!(client_paths(b"plain".to_vec(), &prefixes), b"plain");
    }

    #[tokio::test]
    async fn compiles_and_keeps_its_stage_for_the_next_job() {
        let work = tempfile::tempdir().unwrap();
        let limits = Limits::output_only(1 << 20);
        let stages = stages(&work, &limits);
        let out = run(
            job("int f(void) { int unused; return 1; }\n"),
            &stages,
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, 0);
        assert!(String::from_utf8_lossy(&out.stderr).contains("unused"));
        let first = out.object.unwrap();
        assert!(first.starts_with(b"\x7fELF"));
        assert_eq!(stage_count(work.path()), 1);
        // The same input again (laid out already), then another one: each
        // gets its own object from the one stage.
        let again = run(
            job("int f(void) { int unused; return 1; }\n"),
            &stages,
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(again.object.as_deref(), Some(&first[..]));
        let other = run(job("int g(void) { return 2; }\n"), &stages, &limits)
            .await
            .unwrap();
        let other = other.object.unwrap();
        assert!(other.windows(2).any(|w| w == b"g\0") && !other.windows(2).any(|w| w == b"f\0"));
        assert_eq!(stage_count(work.path()), 1);
        // A compile error leaves no object for the next job to find.
        let failed = run(job("int f(void) { return }\n"), &stages, &limits)
            .await
            .unwrap();
        assert!(failed.object.is_none());
        assert_eq!(stage_count(work.path()), 1);
    }

    #[tokio::test]
    async fn source_mode_records_the_client_paths() {
        let work = tempfile::tempdir().unwrap();
        let mut j = job("# 0 \"src/a.c\"\nint f(void) { return 1; }\n");
        j.language = "c".into();
        j.args.push("-g".into());
        j.layout = Layout::Source {
            source_path: "src/a.c".into(),
            cwd: "/home/someone/project".into(),
        };
        let out = run(
            j,
            &stages(&work, &Limits::output_only(1 << 20)),
            &Limits::output_only(1 << 20),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
        let object = out.object.unwrap();
        let contains = |needle: &[u8]| object.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"/home/someone/project"));
        assert!(contains(b"src/a.c"));
        assert!(
            !contains(work.path().to_str().unwrap().as_bytes()),
            "no worker path leaks"
        );
    }

    #[tokio::test]
    async fn source_mode_withholds_output_of_an_input_that_reads_worker_files() {
        let work = tempfile::tempdir().unwrap();
        let secret = work.path().join("secret");
        std::fs::write(&secret, "s3cr3t\n").unwrap();
        let mut j = job(&format!("#include \"{}\"\nint x;\n", secret.display()));
        j.language = "c".into();
        j.layout = Layout::Source {
            source_path: "a.c".into(),
            cwd: "/p".into(),
        };
        let err = run(
            j,
            &stages(&work, &Limits::output_only(1 << 20)),
            &Limits::output_only(1 << 20),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, JobError::FileAccess(_)), "{err}");
    }

    #[tokio::test]
    async fn reports_compile_errors_without_object() {
        let work = tempfile::tempdir().unwrap();
        let out = run(
            job("int f(void) { return }\n"),
            &stages(&work, &Limits::output_only(1 << 20)),
            &Limits::output_only(1 << 20),
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, 1);
        assert!(out.object.is_none());
        assert!(!out.stderr.is_empty());
    }

    #[tokio::test]
    async fn refuses_oversized_output() {
        let work = tempfile::tempdir().unwrap();
        // A small object, and 500 warnings (unused variables) of stderr.
        let vars: String = (0..500).map(|i| format!("int v{i}; ")).collect();
        let noisy = format!("int f(void) {{ {vars}return 1; }}\n");
        let err = run(
            job(&noisy),
            &stages(&work, &Limits::output_only(8192)),
            &Limits::output_only(8192),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, JobError::OutputTooLarge(8192)), "{err}");
    }

    #[tokio::test]
    async fn an_object_past_the_output_bound_is_stopped_as_it_is_written() {
        let work = tempfile::tempdir().unwrap();
        // 3 GB of object, were nothing to stop it.
        let big = "__asm__(\".data\\n.skip 3000000000\");\n";
        let limits = Limits::output_only(1 << 20);
        let err = run(job(big), &stages(&work, &limits), &limits)
            .await
            .unwrap_err();
        match err {
            JobError::Resource(why) => assert!(why.contains("File size limit exceeded"), "{why}"),
            other => panic!("expected a resource failure, got {other}"),
        }
    }

    #[tokio::test]
    async fn a_job_past_its_wall_clock_limit_is_killed_and_cleaned_up() {
        let work = tempfile::tempdir().unwrap();
        let limits = Limits {
            wall: Some(Duration::from_millis(1)),
            ..Limits::output_only(1 << 20)
        };
        let err = run(
            job("int f(void) { return 1; }\n"),
            &stages(&work, &limits),
            &limits,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, JobError::WallTime(_)), "{err}");
        assert_removed(work.path()).await;
    }

    /// Live processes (not zombies) whose working directory is under `dir`.
    fn processes_in(dir: &std::path::Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let proc_dir = entry.path();
            let Ok(cwd) = std::fs::read_link(proc_dir.join("cwd")) else {
                continue;
            };
            let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            if cwd.starts_with(dir) && !zombie {
                found.push(stat);
            }
        }
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_job_kills_its_whole_process_group_and_discards_its_stage() {
        let work = tempfile::tempdir().unwrap();
        // Long enough at -O2 that cc1 is still running when dropped.
        let slow: String = (0..4000)
            .map(|i| {
                format!(
                    "int f{i}(int *a, int n) {{ int s = {i}; for (int k = 0; k < n; k++) \
                     {{ s += a[k] * {i} ^ (s >> 3); if (s & 1) s = s * 7 + k; }} return s; }}\n"
                )
            })
            .collect();
        let limits = Limits::output_only(1 << 30);
        let stages = stages(&work, &limits);
        let running = tokio::spawn(async move { run(job(&slow), &stages, &limits).await });
        let deadline = Instant::now() + Duration::from_secs(30);
        // Both started: killed before `as` exists, cc1 would die of
        // SIGPIPE on its own and prove nothing.
        let started = |names: &[String]| {
            ["(cc1)", "(as)"]
                .iter()
                .all(|n| names.iter().any(|p| p.contains(n)))
        };
        while !started(&processes_in(work.path())) {
            assert!(Instant::now() < deadline, "cc1 never started");
            assert!(
                !running.is_finished(),
                "the job ended before it was dropped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        running.abort();
        assert!(running.await.unwrap_err().is_cancelled());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_in(work.path());
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "still running: {left:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_removed(work.path()).await;
    }

    #[tokio::test]
    async fn a_memory_limited_compile_fails_as_a_resource_error_not_a_compile_error() {
        let work = tempfile::tempdir().unwrap();
        let limits = Limits {
            memory_bytes: Some(48 << 20),
            ..Limits::output_only(1 << 20)
        };
        // Enough code that cc1 needs more than 48 MiB of address space.
        let big: String = (0..3000)
            .map(|i| format!("int f{i}(int x) {{ return x * {i} + (x >> 3); }}\n"))
            .collect();
        let err = run(job(&big), &stages(&work, &limits), &limits)
            .await
            .unwrap_err();
        assert!(
            matches!(err, JobError::Resource(_) | JobError::Signal(_)),
            "{err}"
        );
        assert_removed(work.path()).await;
    }

    #[tokio::test]
    async fn a_root_worker_compiles_as_the_unprivileged_user() {
        if !sandbox::is_root() {
            eprintln!("not root: nothing to drop");
            return;
        }
        let nobody = sandbox::lookup_user("nobody").unwrap();
        let work = tempfile::tempdir().unwrap();
        let limits = Limits {
            run_as: Some(nobody),
            cpu_s: Some(60),
            memory_bytes: Some(2 << 30),
            wall: Some(Duration::from_secs(60)),
            ..Limits::output_only(1 << 20)
        };
        let out = run(
            job("int f(void) { return 1; }\n"),
            &stages(&work, &limits),
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.object.unwrap().starts_with(b"\x7fELF"));
    }
}
