//! Hermetic jobs (issue 15): the client's command line over its input tree
//! in a worker's bubblewrap sandbox. What the compile prints and writes is
//! what a local compile gives, and no file of the worker's is ever read:
//! the client runs in its own mount namespace where a directory of the
//! worker's is hidden under a tmpfs, so a file there exists for the worker
//! and not for the client.

use super::*;

/// A grid of one `--hermetic` worker, or `None` (said loudly) where this
/// machine cannot run the sandbox.
fn hermetic_grid() -> Option<Grid> {
    if which_opt("bwrap").is_none() || which_opt("unshare").is_none() {
        eprintln!("SKIPPED: bwrap or unshare is not installed (apt-get install bubblewrap)");
        return None;
    }
    let mut grid = Grid::start(0, 2);
    grid.add_worker_with(2, &["--hermetic"], &[]);
    grid.wait_for_workers(1);
    let status = grid.status();
    let worker = &status["workers"][0];
    if worker["job_mode"] != "hermetic" {
        eprintln!(
            "SKIPPED: this machine cannot run the sandbox: {}",
            worker["hermetic_refusal"]
        );
        return None;
    }
    Some(grid)
}

fn which_opt(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Runs `program args` in `dir`, in a mount namespace of its own where
/// `hidden` is an empty tmpfs (when given).
fn run_hidden(
    dir: &Path,
    hidden: Option<&Path>,
    env: &[(&str, &str)],
    program: &Path,
    args: &[&str],
) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.current_dir(dir)
        .arg("-m")
        .arg("sh")
        .arg("-c")
        .arg(r#"if [ -n "$1" ]; then mount -t tmpfs tmpfs "$1" || exit 99; fi; shift; exec "$@""#);
    cmd.arg("sh")
        .arg(hidden.map(Path::as_os_str).unwrap_or_default())
        .arg(program)
        .args(args)
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

/// The job log's lines.
fn job_log(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Compiles `args` (after the compiler) locally and through the grid, each
/// in a namespace where `hidden` is empty; returns (local, grid) outputs
/// and objects, and the grid compile's job-log line.
struct Both {
    local: Output,
    grid: Output,
    local_object: Option<Vec<u8>>,
    grid_object: Option<Vec<u8>>,
    log: serde_json::Value,
}

fn compile_both(
    grid: &Grid,
    dir: &Path,
    hidden: Option<&Path>,
    compiler: &str,
    args: &[&str],
) -> Both {
    let object = dir.join("out.o");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-o", "out.o"]);
    let local = run_hidden(dir, hidden, &[], &which(compiler), &full);
    let local_object = std::fs::read(&object).ok();
    let _ = std::fs::remove_file(&object);
    let cache = tempfile::tempdir().unwrap();
    let log = cache.path().join("jobs.log");
    let url = grid.url();
    let mut grid_args = vec![compiler];
    grid_args.extend(&full);
    let env = [
        ("GRIDCC_COORDINATOR", url.as_str()),
        ("GRIDCC_CACHE_DIR", cache.path().to_str().unwrap()),
        ("GRIDCC_CACHE", "0"),
        ("GRIDCC_JOB_LOG", log.to_str().unwrap()),
    ];
    let out = run_hidden(dir, hidden, &env, &gridcc(), &grid_args);
    let grid_object = std::fs::read(&object).ok();
    let _ = std::fs::remove_file(&object);
    let mut lines = job_log(&log);
    assert_eq!(lines.len(), 1, "one compile, one line: {lines:?}");
    Both {
        local,
        grid: out,
        local_object,
        grid_object,
        log: lines.remove(0),
    }
}

/// `text` with gcc's random temp file names (`/tmp/ccAbC123.s`) made one.
fn without_temp_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("/tmp/cc") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "/tmp/cc".len()..];
        let name = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        out.push_str("/tmp/ccXXXXXX");
        rest = &after[name..];
    }
    out.push_str(rest);
    out
}

impl Both {
    /// The grid's compile printed, exited and wrote what the local one did.
    fn assert_same(&self, what: &str) {
        let text = |o: &Output| without_temp_names(&String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            text(&self.grid),
            text(&self.local),
            "{what}: stderr differs"
        );
        assert_eq!(
            self.grid.status.code(),
            self.local.status.code(),
            "{what}: exit code differs; grid stderr {}",
            text(&self.grid)
        );
        assert_eq!(
            self.grid_object, self.local_object,
            "{what}: object differs"
        );
    }

    fn assert_hermetic(&self, what: &str) {
        assert_eq!(self.log["mode"], "remote", "{what}: {}", self.log);
        assert_eq!(self.log["hermetic"], true, "{what}: {}", self.log);
    }
}

#[test]
fn hermetic_warnings_and_errors_print_what_local_gcc_prints() {
    let Some(grid) = hermetic_grid() else { return };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "inc.h", "#define TWO 2\n");
    write(
        dir.path(),
        "warn.c",
        "#include <stdio.h>\n#include \"inc.h\"\nint f(int x) {\n  return x + \"a\";\n}\nint main(void) { printf(\"%d\\n\", TWO); return f(1); }\n",
    );
    write(
        dir.path(),
        "bad.cc",
        "#include <vector>\nint g() {\n  std::vector<int> v;\n  return v.size() + missing;\n}\n",
    );
    let warn = compile_both(
        &grid,
        dir.path(),
        None,
        "gcc",
        &["-g", "-O2", "-Wall", "-c", "warn.c"],
    );
    warn.assert_same("C warning");
    warn.assert_hermetic("C warning");
    let stderr = String::from_utf8_lossy(&warn.grid.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("|   return x + \"a\";"),
        "{stderr}"
    );
    let error = compile_both(&grid, dir.path(), None, "g++", &["-c", "bad.cc"]);
    error.assert_same("C++ error");
    error.assert_hermetic("C++ error");
    assert!(error.grid_object.is_none());
    let stderr = String::from_utf8_lossy(&error.grid.stderr);
    assert!(
        stderr.contains("error:") && stderr.contains('^'),
        "{stderr}"
    );
}

#[test]
fn hermetic_jobs_never_read_a_worker_file() {
    let Some(grid) = hermetic_grid() else { return };
    // A directory the worker has and the client does not (hidden under a
    // tmpfs in the client's namespace).
    let worker_only = tempfile::tempdir().unwrap();
    let secret = "S3CRET-of-the-worker";
    write(
        worker_only.path(),
        "secret.h",
        &format!("#define LEAK \"{secret}\"\n"),
    );
    let hidden = worker_only.path();
    let w = hidden.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "#include of a worker file",
            format!("#include \"{w}/secret.h\"\nconst char *s = LEAK;\n"),
            vec![],
        ),
        (
            "__has_include of a worker file",
            format!(
                "#if __has_include(\"{w}/secret.h\")\nint found = 1;\n#else\nint found = 0;\n#endif\n"
            ),
            vec![],
        ),
        (
            "-I a worker dir",
            "#if __has_include(\"secret.h\")\n#include \"secret.h\"\nconst char *s = LEAK;\n#else\nint none;\n#endif\n".to_owned(),
            vec![format!("-I{w}")],
        ),
        (
            "a symlink in the tree pointing out of it",
            "#include \"link.h\"\nconst char *s = LEAK;\n".to_owned(),
            vec![],
        ),
        (
            "a symlink in the tree to a file out of the project",
            "#include \"out.h\"\nint y = OUT;\n".to_owned(),
            vec![],
        ),
        (
            ".incbin of a worker file",
            format!(
                "__asm__(\".section .rodata\\n.incbin \\\"{w}/secret.h\\\"\\n.previous\");\nint x;\n"
            ),
            vec![],
        ),
    ];
    std::os::unix::fs::symlink(format!("{w}/secret.h"), dir.path().join("link.h")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    write(elsewhere.path(), "o.h", "#define OUT 7\n");
    std::os::unix::fs::symlink(elsewhere.path().join("o.h"), dir.path().join("out.h")).unwrap();
    for (what, source, extra) in &cases {
        write(dir.path(), "probe.c", source);
        let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
        args.extend(["-c", "probe.c"]);
        let both = compile_both(&grid, dir.path(), Some(hidden), "gcc", &args);
        eprintln!("{what}: {}", both.log);
        both.assert_same(what);
        let leaked = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!leaked(&both.grid.stderr), "{what}: {:?}", both.grid.stderr);
        assert!(
            !both.grid_object.as_deref().is_some_and(leaked),
            "{what}: the object holds the worker's file"
        );
        // Each ran in the sandbox, or locally with the reason said.
        if both.log["mode"] == "local" {
            assert!(
                both.log["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(".incbin") || r.contains("preprocessing failed")),
                "{what}: {}",
                both.log
            );
        } else {
            both.assert_hermetic(what);
        }
    }
}

#[test]
fn a_hermetic_job_stopped_by_its_wall_limit_leaves_no_process_and_no_stage() {
    if hermetic_grid().is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // The compile user must be able to enter the stages.
    std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let work_dir = work.path().to_str().unwrap().to_owned();
    let mut grid = Grid::start(0, 1);
    grid.add_worker_with(
        1,
        &["--hermetic", "--job-wall-s", "1", "--work-dir", &work_dir],
        &[],
    );
    grid.wait_for_workers(1);
    let dir = tempfile::tempdir().unwrap();
    // Several seconds of cc1 at -O2: well past the one-second limit.
    let slow: String = (0..3000)
        .map(|i| {
            format!(
                "int f{i}(int *a, int n) {{ int s = {i}; for (int k = 0; k < n; k++) \
                 {{ s += a[k] * {i} ^ (s >> 3); if (s & 1) s = s * 7 + k; }} return s; }}\n"
            )
        })
        .collect();
    write(dir.path(), "slow.c", &slow);
    let cache = tempfile::tempdir().unwrap();
    let log = cache.path().join("jobs.log");
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir.path())
        .args(["gcc", "-O2", "-c", "slow.c", "-o", "slow.o"])
        .env("GRIDCC_JOB_LOG", &log);
    gridcc_env(&mut cmd, &grid.url(), cache.path());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "the build goes on locally: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = job_log(&log);
    assert_eq!(lines[0]["mode"], "local", "{lines:?}");
    let status = grid.status();
    assert_eq!(status["workers"][0]["jobs_failed"], 1, "{status}");
    // Within 5 s: no process of the job (they ran with the client's
    // directory as their cwd, inside the sandbox), and its stage removed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = super::cancel::processes_in(dir.path());
        let stages: Vec<_> = std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gridcc-stage-"))
            .map(|e| e.path())
            .collect();
        if procs.is_empty() && stages.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: processes {procs:?}, stages {stages:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hermetic_inputs_are_uploaded_once_and_results_shared_between_developers() {
    if hermetic_grid().is_none() {
        return;
    }
    let mut grid = Grid::start(0, 1);
    grid.add_worker_with(1, &["--hermetic", "--cache-size", "100M"], &[]);
    grid.wait_for_workers(1);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "h.h", "#include <stdio.h>\n#define N 5\n");
    write(
        dir.path(),
        "s.c",
        "#include \"h.h\"\nint s(void) { printf(\"%d\", N); return N; }\n",
    );
    let local = Command::new("gcc")
        .current_dir(dir.path())
        .args(["-g", "-O2", "-c", "s.c", "-o", "local.o"])
        .output()
        .unwrap();
    assert!(local.status.success());
    let local = std::fs::read(dir.path().join("local.o")).unwrap();
    // Three developers, each with their own (empty) object cache.
    let compile = |flags: &[&str]| {
        let cache = tempfile::tempdir().unwrap();
        let log = cache.path().join("jobs.log");
        let mut cmd = Command::new(gridcc());
        cmd.current_dir(dir.path())
            .arg("gcc")
            .args(flags)
            .args(["-c", "s.c", "-o", "s.o"])
            .env("GRIDCC_JOB_LOG", &log);
        gridcc_env(&mut cmd, &grid.url(), cache.path());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stats = {
            let mut cmd = Command::new(gridcc());
            cmd.args(["stats", "--json"]);
            gridcc_env(&mut cmd, &grid.url(), cache.path());
            serde_json::from_slice::<serde_json::Value>(&cmd.output().unwrap().stdout).unwrap()
        };
        let line = job_log(&log).remove(0);
        let object = std::fs::read(dir.path().join("s.o")).unwrap();
        (line, stats, object)
    };
    let (first, stats, object) = compile(&["-g", "-O2"]);
    assert_eq!(first["hermetic"], true, "{first}");
    assert_eq!(object, local, "identical to a local compile");
    assert!(stats["bytes_sent"].as_u64().unwrap() > 0, "{stats}");
    // The same job again: the worker's shared cache answers it, and
    // nothing is uploaded.
    let (second, stats, object) = compile(&["-g", "-O2"]);
    assert_eq!(second["shared_hit"], true, "{second}");
    assert_eq!(stats["bytes_sent"], 0, "{stats}");
    assert_eq!(object, local);
    // Other flags: compiled again, from the blobs the worker holds.
    let (third, stats, _) = compile(&["-g", "-O1"]);
    assert_eq!(third["hermetic"], true, "{third}");
    assert_eq!(third["shared_hit"], false, "{third}");
    assert_eq!(stats["bytes_sent"], 0, "no input uploaded twice: {stats}");
    assert_eq!(stats["jobs_hermetic"], 1, "{stats}");
}

#[test]
fn text_jobs_on_a_sandboxing_worker_run_in_the_sandbox_too() {
    let Some(grid) = hermetic_grid() else { return };
    // A preprocessed input goes as text (there is no tree to build), slow
    // enough to be seen running.
    let dir = tempfile::tempdir().unwrap();
    let slow: String = (0..1200)
        .map(|i| {
            format!(
                "int f{i}(int *a, int n) {{ int s = {i}; for (int k = 0; k < n; k++) \
                 {{ s += a[k] * {i} ^ (s >> 3); if (s & 1) s = s * 7 + k; }} return s; }}\n"
            )
        })
        .collect();
    write(dir.path(), "slowtext.i", &slow);
    let cache = tempfile::tempdir().unwrap();
    let log = cache.path().join("jobs.log");
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir.path())
        .args(["gcc", "-O2", "-c", "slowtext.i", "-o", "slowtext.o"])
        .env("GRIDCC_JOB_LOG", &log);
    gridcc_env(&mut cmd, &grid.url(), cache.path());
    let running = std::thread::spawn(move || cmd.output().unwrap());
    // The job's cc1, found by its input's name: in a mount namespace of
    // its own, not the worker's (which is this test's).
    let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let mut seen = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.is_none() && !running.is_finished() && Instant::now() < deadline {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            // By its name: bwrap's own command line names cc1 and the
            // input too, and its outer process stays in the worker's
            // namespace.
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if comm.trim() == "cc1"
                && cmdline.contains("gridcc-stage-")
                && cmdline.contains("slowtext.i")
            {
                if let Ok(ns) = std::fs::read_link(entry.path().join("ns/mnt")) {
                    seen = Some(ns);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = running.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = job_log(&log).remove(0);
    assert_eq!(line["mode"], "remote", "{line}");
    assert_eq!(line["hermetic"], false, "a text job: {line}");
    let ns = seen.expect("the job's cc1 was never seen running");
    assert_ne!(
        ns, ours,
        "the text job's cc1 ran in the worker's own mount namespace"
    );
}
