//! Real sandboxed compiles with the real gcc and bwrap, compared with the
//! same compile run locally. As root they run as `nobody`, as a root
//! worker runs its jobs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;
use crate::sandbox::{is_root, lookup_user, GroupKill};

const GCC: &str = "/usr/bin/gcc";

fn bwrap() -> Option<PathBuf> {
    let found = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        eprintln!("SKIPPED: bwrap is not installed (apt-get install bubblewrap)");
    }
    found
}

fn compile_user() -> Option<User> {
    is_root().then(|| lookup_user("nobody").unwrap())
}

fn gcc_toolchain() -> &'static ToolchainFiles {
    static T: OnceLock<ToolchainFiles> = OnceLock::new();
    T.get_or_init(|| toolchain_files(Path::new(GCC)).unwrap())
}

/// A client's project dir at a fresh absolute path (not under /tmp, where
/// the sandbox's private /tmp goes).
fn client_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gridcc-client-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// The compile run locally, as the client would.
fn local(cwd: &Path, args: &[&str]) -> Output {
    std::process::Command::new(GCC)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

/// Every file `gcc -M` says `source` reads, as absolute paths.
fn inputs_of(cwd: &Path, source: &str) -> Vec<PathBuf> {
    let out = local(cwd, &["-M", source]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap().replace("\\\n", " ");
    let mut words = text.split_whitespace();
    words.next(); // "a.o:"
    words.map(|w| cwd.join(w)).collect()
}

/// A worker's job dir: the tree, the private tmp, the output files.
struct JobDir {
    dir: tempfile::TempDir,
    outputs: Vec<(PathBuf, PathBuf)>,
}

impl JobDir {
    /// A tree holding `files` (host paths, copied to the same paths) and
    /// host files for `outputs` (client paths).
    fn new(files: &[PathBuf], outputs: &[PathBuf]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("gridcc-job-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("root");
        for f in files {
            let to = root.join(f.strip_prefix("/").unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(f, &to).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let mut owned = vec![tmp];
        let outputs: Vec<(PathBuf, PathBuf)> = outputs
            .iter()
            .enumerate()
            .map(|(i, inside)| {
                let host = dir.path().join(format!("out{i}"));
                std::fs::File::create(&host).unwrap();
                owned.push(host.clone());
                (host, inside.clone())
            })
            .collect();
        if let Some(u) = compile_user() {
            for p in owned {
                std::os::unix::fs::chown(p, Some(u.uid), Some(u.gid)).unwrap();
            }
        }
        Self { dir, outputs }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    fn command(&self, bwrap: &Path, cwd: &Path, args: &[&str]) -> tokio::process::Command {
        let (root, tmp) = (self.root(), self.tmp());
        let spec = Spec {
            root: &root,
            toolchain: gcc_toolchain(),
            outputs: &self.outputs,
            tmp: &tmp,
            cwd,
            extra: &[],
            kept: false,
        };
        let argv: Vec<OsString> = std::iter::once(GCC)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let mut cmd = command(bwrap, &spec, &argv, &[]).unwrap();
        let limits = Limits {
            run_as: compile_user(),
            ..Limits::output_only(0)
        };
        sandbox::confine(&mut cmd, &limits);
        cmd
    }

    /// Runs gcc `args` in the sandbox; its output and the outputs' bytes.
    async fn run(&self, bwrap: &Path, cwd: &Path, args: &[&str]) -> (Output, Vec<Vec<u8>>) {
        let out = self.command(bwrap, cwd, args).output().await.unwrap();
        let files = self
            .outputs
            .iter()
            .map(|(host, _)| std::fs::read(host).unwrap())
            .collect();
        (out, files)
    }
}

/// What a job's tree holds besides the source.
#[derive(Clone, Copy)]
enum Tree {
    /// Every file `gcc -M` lists, as a client sends them.
    Deps,
    /// Only what an empty file reads (`stdc-predef.h`): the tree of a
    /// client that lacks the files the source names.
    Minimal,
}

/// Compiles `source` (named `name` in a fresh client dir) locally and in
/// the sandbox with `args`, outputs `outs` (relative to the client dir).
async fn both(
    bwrap: &Path,
    (name, source): (&str, &str),
    tree: Tree,
    args: &[&str],
    outs: &[&str],
) -> (Output, Vec<Option<Vec<u8>>>, Output, Vec<Vec<u8>>) {
    let client = client_dir();
    let cwd = client.path();
    std::fs::write(cwd.join(name), source).unwrap();
    let tree = match tree {
        Tree::Deps => inputs_of(cwd, name),
        Tree::Minimal => {
            std::fs::write(cwd.join("empty.c"), "").unwrap();
            let mut files = inputs_of(cwd, "empty.c");
            files.retain(|f| !f.ends_with("empty.c"));
            files.push(cwd.join(name));
            files
        }
    };
    let here = local(cwd, args);
    let here_files = outs
        .iter()
        .map(|o| std::fs::read(cwd.join(o)).ok())
        .collect();
    let outputs: Vec<PathBuf> = outs.iter().map(|o| cwd.join(o)).collect();
    let job = JobDir::new(&tree, &outputs);
    let (there, there_files) = job.run(bwrap, cwd, args).await;
    (here, here_files, there, there_files)
}

#[tokio::test]
async fn a_sandboxed_compile_is_byte_identical_to_a_local_one() {
    let Some(bwrap) = bwrap() else { return };
    let source = "#include <stdio.h>\nint main(void)\n{\n    puts(\"hi\");\n    return 0;\n}\n";
    let args = ["-g", "-MD", "-c", "a.c", "-o", "a.o"];
    let (here, here_files, there, there_files) =
        both(&bwrap, ("a.c", source), Tree::Deps, &args, &["a.o", "a.d"]).await;
    assert!(here.status.success(), "{here:?}");
    assert!(
        there.status.success(),
        "{}",
        String::from_utf8_lossy(&there.stderr)
    );
    assert_eq!(there.stderr, here.stderr);
    let object = here_files[0].as_ref().unwrap();
    let deps = here_files[1].as_ref().unwrap();
    assert!(String::from_utf8_lossy(deps).contains("/usr/include/stdio.h"));
    assert!(there_files[0] == *object, "the objects differ");
    assert_eq!(
        String::from_utf8_lossy(&there_files[1]),
        String::from_utf8_lossy(deps)
    );
}

#[tokio::test]
async fn a_compile_error_reads_as_it_does_locally() {
    let Some(bwrap) = bwrap() else { return };
    let source = "int main(void)\n{\n    return no_such_thing;\n}\n";
    let args = ["-c", "bad.c", "-o", "bad.o"];
    let (here, _, there, _) =
        both(&bwrap, ("bad.c", source), Tree::Minimal, &args, &["bad.o"]).await;
    assert_eq!(here.status.code(), Some(1));
    assert_eq!(there.status.code(), Some(1));
    let text = String::from_utf8_lossy(&there.stderr);
    assert!(
        text.contains("no_such_thing;\n      |            ^~~~~~~~~~~~~"),
        "{text}"
    );
    assert_eq!(text, String::from_utf8_lossy(&here.stderr));
}

#[tokio::test]
async fn the_workers_etc_passwd_is_not_there() {
    let Some(bwrap) = bwrap() else { return };
    // A client without the file: the same name length, so the caret line
    // under it is the same too.
    let absent = "/etc/pa55wd";
    assert!(!Path::new(absent).exists());
    let include = |p: &str| format!("#include \"{p}\"\nint x;\n");
    let args = ["-c", "p.c", "-o", "p.o"];
    let (here, _, _, _) = both(
        &bwrap,
        ("p.c", &include(absent)),
        Tree::Minimal,
        &args,
        &["p.o"],
    )
    .await;
    let (worker, _, there, _) = both(
        &bwrap,
        ("p.c", &include("/etc/passwd")),
        Tree::Minimal,
        &args,
        &["p.o"],
    )
    .await;
    let worker_errors = String::from_utf8_lossy(&worker.stderr);
    assert!(
        worker_errors.contains("root:x:0:0"),
        "the worker has /etc/passwd: {worker_errors}"
    );
    assert_eq!(there.status.code(), Some(1));
    let want = String::from_utf8_lossy(&here.stderr).replace(absent, "/etc/passwd");
    assert!(want.contains("fatal error: /etc/passwd: No such file or directory"));
    assert_eq!(String::from_utf8_lossy(&there.stderr), want);
}

#[tokio::test]
async fn no_worker_file_is_there_to_find() {
    let Some(bwrap) = bwrap() else { return };
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = [
        "/etc/shadow".to_owned(),
        "/etc/hostname".to_owned(),
        "/proc/self/status".to_owned(),
        format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR")),
        std::env::current_dir()
            .unwrap()
            .join("Cargo.toml")
            .display()
            .to_string(),
        format!("{home}/.bashrc"),
        "/home/cloudsdk/.profile".to_owned(),
    ];
    let mut present: Vec<&String> = candidates
        .iter()
        .filter(|p| Path::new(p).is_file())
        .collect();
    present.dedup();
    assert!(present.len() >= 3, "{present:?}");
    let mut source = String::new();
    for p in &present {
        source += &format!("#if __has_include(\"{p}\")\n#error {p} is visible\n#endif\n");
    }
    source += "int x;\n";
    let args = ["-c", "h.c", "-o", "h.o"];
    let (here, _, there, files) =
        both(&bwrap, ("h.c", &source), Tree::Minimal, &args, &["h.o"]).await;
    // The check can fail: locally every one is found.
    let local_errors = String::from_utf8_lossy(&here.stderr);
    assert_eq!(
        local_errors.matches("error: #error").count(),
        present.len(),
        "{local_errors}"
    );
    assert!(
        there.status.success(),
        "{}",
        String::from_utf8_lossy(&there.stderr)
    );
    assert!(!files[0].is_empty());
}

#[tokio::test]
async fn the_assembler_cannot_read_worker_files_either() {
    let Some(bwrap) = bwrap() else { return };
    let source = "__asm__(\".incbin \\\"/etc/passwd\\\"\");\n";
    let args = ["-c", "i.c", "-o", "i.o"];
    let (here, _, there, _) = both(&bwrap, ("i.c", source), Tree::Minimal, &args, &["i.o"]).await;
    assert!(here.status.success(), "{here:?}");
    assert_eq!(there.status.code(), Some(1));
    let text = String::from_utf8_lossy(&there.stderr);
    assert!(
        text.contains("Assembler messages") && text.contains("/etc/passwd"),
        "{text}"
    );
}

/// `(pid, comm, state, ppid)` of every process.
fn processes() -> Vec<(u32, String, char, u32)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        all.push((pid, comm, state, ppid));
    }
    all
}

fn descendants(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, comm, _, ppid) in &all {
            if *ppid == p {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    processes()
        .iter()
        .any(|(p, _, state, _)| *p == pid && *state != 'Z')
}

/// Starts gcc reading its source from a stdin kept open, so cc1 waits
/// forever; returns once cc1 runs, with the child and its processes.
async fn a_waiting_compile(
    bwrap: &Path,
    job: &JobDir,
    cwd: &Path,
) -> (tokio::process::Child, Vec<(u32, String)>) {
    let mut cmd = job.command(bwrap, cwd, &["-x", "c", "-c", "-", "-o", "k.o"]);
    cmd.stdin(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let started = Instant::now();
    loop {
        let procs = descendants(pid);
        if procs.iter().any(|(_, comm)| comm == "cc1") {
            return (child, procs);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no cc1 under bwrap: {procs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_gone(procs: &[(u32, String)]) {
    let started = Instant::now();
    while let Some(p) = procs.iter().find(|(pid, _)| alive(*pid)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{p:?} outlived its sandbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dropped_job_leaves_no_process_behind() {
    let Some(bwrap) = bwrap() else { return };
    let client = client_dir();
    let job = JobDir::new(&[], &[client.path().join("k.o")]);
    let (child, procs) = a_waiting_compile(&bwrap, &job, client.path()).await;
    // As job.rs does when its future is dropped: the group guard and
    // kill_on_drop.
    let group = GroupKill::new(child.id());
    drop(group);
    drop(child);
    all_gone(&procs).await;
}

#[tokio::test]
async fn a_killed_bwrap_takes_its_job_along() {
    let Some(bwrap) = bwrap() else { return };
    let client = client_dir();
    let job = JobDir::new(&[], &[client.path().join("k.o")]);
    let (mut child, procs) = a_waiting_compile(&bwrap, &job, client.path()).await;
    // Only bwrap itself: --die-with-parent and the PID namespace must do
    // the rest (bwrap's --new-session put the job outside its group).
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on our own child's pid; no memory effects.
    unsafe {
        libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGKILL);
    }
    child.wait().await.unwrap();
    all_gone(&procs).await;
}

#[tokio::test]
async fn the_probe_starts_a_sandbox() {
    let Some(bwrap) = bwrap() else { return };
    let work = tempfile::tempdir().unwrap();
    probe(&bwrap, work.path(), compile_user()).await.unwrap();
    if compile_user().is_some() {
        probe(&bwrap, work.path(), None).await.unwrap();
    }
    let missing = probe(Path::new("/nonexistent/bwrap"), work.path(), None)
        .await
        .unwrap_err();
    assert!(missing.contains("install bubblewrap"), "{missing}");
}

#[test]
fn symlinks_in_the_tree_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("home/u")).unwrap();
    // A tree symlink on an output's way: bwrap would resolve it before the
    // old root is gone.
    std::os::unix::fs::symlink("../../../..", root.join("home/u/p")).unwrap();
    let toolchain = ToolchainFiles {
        files: vec![],
        symlinks: vec![],
        path: vec![],
        data_dirs: vec![],
    };
    let outputs = [(dir.path().join("out"), PathBuf::from("/home/u/p/a.o"))];
    let spec = Spec {
        root: &root,
        toolchain: &toolchain,
        outputs: &outputs,
        tmp: dir.path(),
        cwd: Path::new("/home/u"),
        extra: &[],
        kept: false,
    };
    let err = prepare(&spec).unwrap_err();
    assert!(
        matches!(&err, HermeticError::Conflict { path, found: "symlink", .. } if path == Path::new("/home/u/p")),
        "{err}"
    );
    let in_tmp = Spec {
        cwd: Path::new("/.gridcc-tmp/build"),
        outputs: &[],
        ..spec
    };
    assert!(matches!(prepare(&in_tmp), Err(HermeticError::TreeInTmp(_))));
}

/// The cost of the sandbox: `cargo nextest run -p gridcc-worker
/// --run-ignored ignored-only sandbox_cost --no-capture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn sandbox_cost() {
    let Some(bwrap) = bwrap() else { return };
    const RUNS: usize = 50;
    let client = client_dir();
    let cwd = client.path();
    std::fs::write(cwd.join("e.c"), "").unwrap();
    let args = ["-c", "e.c", "-o", "e.o"];
    let job = JobDir::new(&inputs_of(cwd, "e.c"), &[cwd.join("e.o")]);
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut direct = Vec::new();
    let mut sandboxed = Vec::new();
    let mut kept = Vec::new();
    // A kept sandbox over a tree of its own (no output mount points).
    let kept_job = JobDir::new(&inputs_of(cwd, "e.c"), &[]);
    let mut in_kept = match (launcher(), compile_user()) {
        (Some(launcher), Some(user)) => {
            let setup = kept::Setup::with_launcher(&launcher, user).unwrap();
            let files = setup.with(gcc_toolchain());
            let (root, tmp) = (kept_job.root(), kept_job.tmp());
            std::fs::create_dir_all(root.join(cwd.strip_prefix("/").unwrap())).unwrap();
            let sandbox = kept::Kept::start(&bwrap, &setup, &root, &tmp, &files, "gcc")
                .await
                .unwrap();
            Some((sandbox, user))
        }
        _ => None,
    };
    // Interleaved, so other load on the machine hits all alike.
    for _ in 0..RUNS {
        if let Some((sandbox, user)) = &mut in_kept {
            let object = kept_job
                .root()
                .join(cwd.strip_prefix("/").unwrap())
                .join("e.o");
            let t = Instant::now();
            std::fs::File::create_new(&object).unwrap();
            std::os::unix::fs::chown(&object, Some(user.uid), Some(user.gid)).unwrap();
            let request = launcher::Request {
                cwd: cwd.into(),
                stdout: format!("{TMP}/o").into(),
                stderr: format!("{TMP}/e").into(),
                cpu_s: Some(60),
                memory_bytes: None,
                file_bytes: Some(1 << 30),
                env: vec!["PATH=/usr/bin".into(), format!("TMPDIR={TMP}").into()],
                argv: std::iter::once(GCC)
                    .chain(args)
                    .map(OsString::from)
                    .collect(),
            };
            let (status, cpu) = sandbox.run(&request).await.unwrap();
            assert!(status.success(), "{status}");
            assert!(cpu > Duration::ZERO, "a compile's CPU time is measured");
            assert!(std::fs::metadata(&object).unwrap().len() > 0);
            std::fs::remove_file(&object).unwrap();
            kept.push(t.elapsed());
        }
        let t = Instant::now();
        let mut cmd = tokio::process::Command::new(GCC);
        cmd.args(args).current_dir(cwd);
        sandbox::confine(
            &mut cmd,
            &Limits {
                run_as: None,
                ..Limits::output_only(0)
            },
        );
        assert!(cmd.output().await.unwrap().status.success());
        direct.push(t.elapsed());
        let t = Instant::now();
        let out = job.command(&bwrap, cwd, &args).output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        sandboxed.push(t.elapsed());
    }
    let kept = match kept.is_empty() {
        true => "not measured (needs root and the worker binary)".to_owned(),
        false => format!("{:?}", median(kept)),
    };
    eprintln!(
        "gcc -c on an empty file, median of {RUNS}: direct {:?}, a sandbox per job {:?}, a kept sandbox {kept}",
        median(direct),
        median(sandboxed)
    );
}

/// The launcher of kept sandboxes: the worker binary beside this test's
/// (`cargo build --workspace --bins`, which scripts/test.sh runs first).
fn launcher() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("gridcc-worker");
    if !bin.is_file() {
        eprintln!("SKIPPED: {} is not built", bin.display());
        return None;
    }
    Some(bin)
}

/// A kept sandbox holding `/bin/sh` (and ls, cat, mkdir), over a fresh root and temp dir; only
/// where the worker runs as root with a compile user, as kept ones are.
async fn kept_sh() -> Option<(tempfile::TempDir, kept::Kept)> {
    let (Some(bwrap), Some(launcher), Some(user)) = (bwrap(), launcher(), compile_user()) else {
        eprintln!("SKIPPED: kept sandboxes need bwrap, the worker binary and root");
        return None;
    };
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (root, tmp) = (dir.path().join("root"), dir.path().join("tmp"));
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid)).unwrap();
    let setup = kept::Setup::with_launcher(&launcher, user).unwrap();
    let programs: Vec<PathBuf> = ["sh", "ls", "cat", "mkdir"]
        .iter()
        .map(|p| Path::new("/bin").join(p))
        .collect();
    let sh = toolchain::closure(&programs, vec![]).unwrap();
    let files = setup.with(&sh);
    let sandbox = kept::Kept::start(&bwrap, &setup, &root, &tmp, &files, "sh")
        .await
        .unwrap();
    Some((dir, sandbox))
}

/// Runs `script` with /bin/sh in `sandbox`: its exit status and stdout.
async fn sh_in(sandbox: &mut kept::Kept, dir: &Path, script: &str) -> (i32, String, String) {
    let request = launcher::Request {
        cwd: "/".into(),
        stdout: format!("{TMP}/o").into(),
        stderr: format!("{TMP}/e").into(),
        cpu_s: Some(10),
        memory_bytes: None,
        file_bytes: Some(1 << 20),
        env: vec![],
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
    };
    let (status, _) = sandbox.run(&request).await.unwrap();
    let read =
        |n: &str| String::from_utf8(std::fs::read(dir.join("tmp").join(n)).unwrap()).unwrap();
    (status.code().unwrap_or(-1), read("o"), read("e"))
}

#[tokio::test]
async fn a_kept_sandbox_runs_job_after_job_and_nothing_outlives_a_job() {
    let Some((dir, mut sandbox)) = kept_sh().await else {
        return;
    };
    let bwrap_pid = sandbox.pid().unwrap();
    // Two background loops that would run forever, and a job that exits.
    let script = "(while :; do :; done) & (while :; do :; done) & echo started";
    assert_eq!(sh_in(&mut sandbox, dir.path(), script).await.0, 0);
    let left: Vec<_> = descendants(bwrap_pid)
        .into_iter()
        .filter(|(pid, comm)| comm == "sh" && alive(*pid))
        .collect();
    assert!(left.is_empty(), "outlived its job: {left:?}");
    let (code, out, _) = sh_in(&mut sandbox, dir.path(), "echo second").await;
    assert_eq!((code, out.as_str()), (0, "second\n"));
    assert_eq!(sandbox.pid(), Some(bwrap_pid), "the same sandbox");
}

#[tokio::test]
async fn a_job_in_a_kept_sandbox_writes_only_what_was_handed_over() {
    let Some((dir, mut sandbox)) = kept_sh().await else {
        return;
    };
    let user = compile_user().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(root.join("p")).unwrap();
    std::fs::write(root.join("p/input.h"), "kept\n").unwrap();
    std::fs::File::create(root.join("p/a.o")).unwrap();
    std::os::unix::fs::chown(root.join("p/a.o"), Some(user.uid), Some(user.gid)).unwrap();
    let script = "echo evil > /p/input.h; echo evil > /p/new; echo x > /dev/planted; \
                  mkdir /dev/d; echo tmp > /.gridcc-tmp/t && echo object > /p/a.o";
    let (code, _, err) = sh_in(&mut sandbox, dir.path(), script).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(root.join("p/input.h")).unwrap(),
        "kept\n"
    );
    assert!(!root.join("p/new").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("p/a.o")).unwrap(),
        "object\n"
    );
    let (code, out, _) = sh_in(&mut sandbox, dir.path(), "ls /dev; cat /.gridcc-tmp/t").await;
    assert_eq!(code, 0);
    assert!(!out.contains("planted") && !out.contains("\nd\n"), "{out}");
    assert!(out.ends_with("tmp\n"), "{out}");
    // Files the tree changed under it are seen at once.
    std::fs::write(root.join("p/later.h"), "later\n").unwrap();
    let (_, out, _) = sh_in(&mut sandbox, dir.path(), "cat /p/later.h").await;
    assert_eq!(out, "later\n");
}

#[tokio::test]
async fn a_kept_sandbox_whose_mount_point_was_replaced_no_longer_fits() {
    let Some((dir, mut sandbox)) = kept_sh().await else {
        return;
    };
    assert!(sandbox.fits("sh"));
    assert!(!sandbox.fits("another toolchain"));
    let mark = dir.path().join("root").join(&launcher::INIT_PATH[1..]);
    std::fs::remove_file(&mark).unwrap();
    std::fs::File::create(&mark).unwrap();
    assert!(!sandbox.fits("sh"));
}

#[tokio::test]
async fn a_job_cannot_take_over_or_stop_the_launcher() {
    let Some((dir, mut sandbox)) = kept_sh().await else {
        return;
    };
    // A program that tries to trace pid 1 (the launcher) and says how it
    // went, built here and put in the tree.
    let src = dir.path().join("probe.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <errno.h>\n#include <sys/ptrace.h>\n\
         int main(void) { long r = ptrace(PTRACE_ATTACH, 1, 0, 0);\n\
         printf(\"%ld %d\\n\", r, r ? errno : 0); return 0; }\n",
    )
    .unwrap();
    let probe = dir.path().join("root/probe");
    let built = std::process::Command::new(GCC)
        .arg(&src)
        .arg("-o")
        .arg(&probe)
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let script = "/probe; kill -9 1; kill -STOP 1; echo sent";
    // A launcher taken over (stopped by the trace) would never answer.
    let (code, out, err) = tokio::time::timeout(
        Duration::from_secs(20),
        sh_in(&mut sandbox, dir.path(), script),
    )
    .await
    .expect("the launcher stopped answering: the job took it over");
    assert_eq!(code, 0, "{err}");
    let eperm = format!("-1 {}\nsent\n", libc::EPERM);
    assert_eq!(out, eperm, "the launcher must not be traceable: {err}");
    let (code, out, _) = sh_in(&mut sandbox, dir.path(), "echo still").await;
    assert_eq!(
        (code, out.as_str()),
        (0, "still\n"),
        "the launcher survived"
    );
}
