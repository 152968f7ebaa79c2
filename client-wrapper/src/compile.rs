//! The compile path: classify the command line, preprocess locally, send the
//! job to the grid, write the object atomically and replay the compiler's
//! output. Anything that is not a proven-safe plain compile, and every grid
//! failure, ends in the real compiler running locally with the original
//! arguments (`exec`, so its exit status and output are its own).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use gridcc_proto::{payload, v1};

use crate::args::{self, Classification, Language, RemoteCompile};
use crate::compiler::{self, Resolved};
use crate::joblog;
use crate::remote::{self, RemoteError};

/// Wrapper settings from the environment (no flags on the compile path).
#[derive(Debug, Clone)]
pub struct Settings {
    pub coordinator: Option<String>,
    pub disabled: bool,
    pub cache_dir: PathBuf,
    pub timeouts: remote::Timeouts,
}

/// After a failed connection, how long other invocations skip the
/// coordinator (they compile locally at once) before trying it again.
const COORDINATOR_DOWN_BACKOFF: Duration = Duration::from_secs(5);

impl Settings {
    pub fn from_env() -> Self {
        let coordinator = std::env::var("GRIDCC_COORDINATOR")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let disabled = std::env::var("GRIDCC_DISABLE").is_ok_and(|v| !v.is_empty() && v != "0");
        Self {
            coordinator,
            disabled,
            cache_dir: gridcc_toolchain::cache_dir(),
            timeouts: remote::Timeouts::default(),
        }
    }

    fn down_marker(&self) -> PathBuf {
        let key = blake3::hash(self.coordinator.as_deref().unwrap_or_default().as_bytes());
        self.cache_dir
            .join(format!("coordinator-down-{}", &key.to_hex()[..16]))
    }

    fn coordinator_recently_down(&self) -> bool {
        std::fs::metadata(self.down_marker())
            .and_then(|m| m.modified())
            .is_ok_and(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .is_ok_and(|age| age < COORDINATOR_DOWN_BACKOFF)
            })
    }

    fn mark_coordinator_down(&self) {
        let _ = std::fs::create_dir_all(&self.cache_dir)
            .and_then(|()| std::fs::write(self.down_marker(), b""));
    }
}

/// Why a job ran locally after all. Logged, never printed on the compile
/// path unless `GRIDCC_LOG` asks.
#[derive(Debug, thiserror::Error)]
enum Fallback {
    #[error("{0}")]
    Remote(#[from] RemoteError),
    #[error("coordinator failed recently; skipping it for a few seconds")]
    CoordinatorRecentlyDown,
    #[error("cannot identify the compiler: {0}")]
    Identity(#[from] gridcc_toolchain::ToolchainError),
    #[error("local preprocessing failed (exit {0}); the local compile reports why")]
    Preprocess(i32),
    #[error("cannot run the preprocessor: {0}")]
    PreprocessSpawn(std::io::Error),
    #[error("cannot read {path}: {source}")]
    ReadSource {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot compress the source: {0}")]
    Compress(#[from] payload::PayloadError),
    #[error("cannot write the object {path}: {source}")]
    WriteObject {
        path: String,
        source: std::io::Error,
    },
    #[error("remote compiler exited with {0}, which is not a plain success or compile error")]
    OddExit(i32),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    NotExact(&'static str),
}

/// How the source travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `-E -fdirectives-only` text (headers inlined, macros unexpanded),
    /// compiled on the worker as ordinary source under the client's names:
    /// macro expansion happens where it would locally, so debug info
    /// (columns included) and diagnostics match a local compile.
    Source,
    /// Fully preprocessed text (`-E`), compiled as `cpp-output`. Columns in
    /// debug info can shift where macros expand, so only used without `-g`.
    Preprocessed,
    /// The input is already preprocessed (`.i`, `.ii`): sent as it is.
    AsIs,
}

/// Whether a `-g…` option leaves debug info on (the last one decides).
fn debug_info_on(args: &[String]) -> bool {
    args.iter().fold(false, |on, a| match a.as_str() {
        "-g0" => false,
        a if a.starts_with("-gno-") || a.starts_with("-gz") || a == "-gsplit-dwarf" => on,
        a if a.starts_with("-g") => true,
        _ => on,
    })
}

/// Flags under which directives-only output compiled as source would not
/// behave exactly as the original compile: pedantic line-marker warnings,
/// preprocessor switches the worker's compile does not repeat, user prefix
/// maps with relative paths.
fn blocks_source_mode(arg: &str) -> bool {
    const EXACT: &[&str] = &[
        "-pedantic",
        "-Wpedantic",
        "-pedantic-errors",
        "-undef",
        "-traditional",
        "-traditional-cpp",
        "-Xpreprocessor",
        "-fdirectives-only",
        "-fpreprocessed",
        "-C",
        "-CC",
        "-fworking-directory",
        "-fno-working-directory",
        "-trigraphs",
    ];
    if EXACT.contains(&arg) {
        return true;
    }
    if let Some(list) = arg.strip_prefix("-Wp,") {
        return !(list.starts_with("-MD,") || list.starts_with("-MMD,"));
    }
    [
        "-ffile-prefix-map=",
        "-fdebug-prefix-map=",
        "-fmacro-prefix-map=",
    ]
    .iter()
    .any(|p| arg.strip_prefix(p).is_some_and(|v| !v.starts_with('/')))
}

fn choose_mode(original_args: &[String], job: &RemoteCompile) -> Result<Mode, Fallback> {
    if job.preprocessed_input {
        return Ok(Mode::AsIs);
    }
    if !original_args.iter().any(|a| blocks_source_mode(a)) {
        return Ok(Mode::Source);
    }
    if debug_info_on(original_args) {
        return Err(Fallback::NotExact(
            "flags rule out directives-only preprocessing, and with -g a fully preprocessed remote compile could shift debug columns",
        ));
    }
    Ok(Mode::Preprocessed)
}

/// The `-x` language of directives-only source.
fn source_language(language: &Language) -> Option<&'static str> {
    match language {
        Language::C => Some("c"),
        Language::Cxx => Some("c++"),
        Language::ObjC => Some("objective-c"),
        Language::ObjCxx => Some("objective-c++"),
        _ => None,
    }
}

/// Removes the compiler's predefined macros (`# 0 "<built-in>"` followed by
/// a `#define`) from directives-only output: the worker's compiler, the same
/// install with the same flags, predefines them itself, and redefining them
/// would warn. Command-line `-D`/`-U` definitions stay: the worker gets no
/// preprocessor flags.
fn strip_builtin_defines(text: &[u8]) -> Vec<u8> {
    const MARKER: &[u8] = b"# 0 \"<built-in>\"";
    let mut out = Vec::with_capacity(text.len());
    let mut lines = text.split_inclusive(|c| *c == b'\n').peekable();
    while let Some(line) = lines.next() {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        if bare == MARKER
            && lines
                .peek()
                .is_some_and(|next| next.starts_with(b"#define "))
        {
            lines.next();
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// Runs the compiler `name` with `args` through the grid; returns the exit
/// code to exit with (local compiles `exec` and never return).
pub fn run(name: &str, args: Vec<OsString>) -> i32 {
    let clock = joblog::Clock::start();
    let own = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let path_var = std::env::var_os("PATH");
    let resolved = match compiler::resolve(name, path_var.as_ref(), &own) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gridcc: {e}");
            return 127;
        }
    };
    let settings = Settings::from_env();
    if settings.disabled || settings.coordinator.is_none() {
        return exec_local(&resolved, &args);
    }
    let Some(utf8_args) = args
        .iter()
        .map(|a| a.to_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
    else {
        tracing::debug!("non-UTF-8 argument; compiling locally");
        return exec_local(&resolved, &args);
    };
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(_) => return exec_local(&resolved, &args),
    };
    let classification = args::classify(&utf8_args, &cwd, &|k| std::env::var(k).ok());
    let job = match classification {
        Ok(Classification::Remote(job)) => job,
        Ok(Classification::Local(reason)) => {
            tracing::info!(%reason, args = ?utf8_args, "compiling locally");
            joblog::local(clock, None, &reason.to_string());
            return exec_local(&resolved, &args);
        }
        Err(e) => {
            tracing::info!(error = %e, "cannot parse the command line; compiling locally");
            return exec_local(&resolved, &args);
        }
    };
    match compile_remote(&resolved, &utf8_args, &job, &settings, &cwd, clock) {
        Ok(code) => code,
        Err(e) => {
            tracing::info!(reason = %e, source = %job.source, "compiling locally");
            joblog::local(clock, Some(&job.source), &e.to_string());
            exec_local(&resolved, &args)
        }
    }
}

/// Replaces this process with the real compiler.
fn exec_local(resolved: &Resolved, args: &[OsString]) -> i32 {
    let mut cmd = Command::new(&resolved.path);
    cmd.args(args);
    if let Some(path) = &resolved.child_path {
        cmd.env("PATH", path);
    }
    let err = cmd.exec();
    eprintln!("gridcc: cannot run {}: {err}", resolved.path.display());
    127
}

/// The `-x` name and file suffix the worker uses for preprocessed input.
fn preprocessed_suffix(language: &Language) -> &'static str {
    match language {
        Language::Cxx | Language::PreprocessedCxx => "ii",
        Language::ObjC | Language::PreprocessedObjC => "mi",
        Language::ObjCxx | Language::PreprocessedObjCxx => "mii",
        _ => "i",
    }
}

/// A plain file name for the input on the worker: the source's stem, so
/// nothing path-like reaches the worker.
fn input_name(job: &RemoteCompile) -> String {
    let stem = Path::new(&job.source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("input");
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}.{}",
        if clean.is_empty() { "input" } else { &clean },
        preprocessed_suffix(&job.language)
    )
}

/// Locale variables the remote compiler needs so messages read the same.
fn locale_env() -> Vec<v1::EnvVar> {
    ["LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE"]
        .iter()
        .filter_map(|name| {
            std::env::var(name).ok().map(|value| v1::EnvVar {
                name: (*name).to_owned(),
                value,
            })
        })
        .collect()
}

fn compile_remote(
    resolved: &Resolved,
    original_args: &[String],
    job: &RemoteCompile,
    settings: &Settings,
    cwd: &Path,
    clock: joblog::Clock,
) -> Result<i32, Fallback> {
    if settings.coordinator_recently_down() {
        return Err(Fallback::CoordinatorRecentlyDown);
    }
    let mode = choose_mode(original_args, job)?;
    let source_language = match mode {
        Mode::Source => {
            Some(source_language(&job.language).ok_or(Fallback::NotExact("no source language"))?)
        }
        _ => None,
    };
    let cwd = cwd
        .to_str()
        .ok_or(Fallback::NotExact("working directory is not UTF-8"))?;
    tracing::debug!(preprocess = ?job.preprocess_args, compile = ?job.compile_args, language = job.remote_language, "distributing");
    let identity = gridcc_toolchain::IdentityCache::new(settings.cache_dir.join("toolchains"))
        .identify(&resolved.path)?;
    if identity.version.contains("clang") {
        // Not yet verified byte for byte against local clang builds.
        return Err(Fallback::NotExact(
            "clang compiles stay local until verified",
        ));
    }

    let preprocess_start = std::time::Instant::now();
    // Preprocess locally: headers stay here, dependency files are written
    // here exactly as the local compile would write them.
    let (source, pp_stderr) = if job.preprocessed_input {
        let text = std::fs::read(&job.source).map_err(|source| Fallback::ReadSource {
            path: job.source.clone(),
            source,
        })?;
        (text, Vec::new())
    } else {
        let mut cmd = Command::new(&resolved.path);
        cmd.args(&job.preprocess_args).stdin(Stdio::null());
        if mode == Mode::Source {
            cmd.arg("-fdirectives-only");
        }
        if let Some(path) = &resolved.child_path {
            cmd.env("PATH", path);
        }
        let out = cmd.output().map_err(Fallback::PreprocessSpawn)?;
        if !out.status.success() {
            return Err(Fallback::Preprocess(out.status.code().unwrap_or(-1)));
        }
        let text = if mode == Mode::Source {
            strip_builtin_defines(&out.stdout)
        } else {
            out.stdout
        };
        (text, out.stderr)
    };
    let preprocess_ms = preprocess_start.elapsed().as_secs_f64() * 1000.0;
    let compressed = payload::compress(&source)?;
    let (language, input_name, source_path) = match source_language {
        Some(lang) => (lang.to_owned(), String::new(), job.source.clone()),
        None => (
            job.remote_language.to_owned(),
            input_name(job),
            String::new(),
        ),
    };
    let remote_job = remote::Job {
        toolchain: identity.digest,
        args: job.compile_args.clone(),
        language,
        input_name,
        source_path,
        source_key: blake3::hash(format!("{cwd}\0{}", job.source).as_bytes()).to_hex()[..32]
            .to_owned(),
        cwd: cwd.to_owned(),
        input_size: source.len() as u64,
        digest: payload::digest(&source),
        compressed,
        env: locale_env(),
    };
    drop(source);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Fallback::Runtime)?;
    let url = settings.coordinator.clone().unwrap_or_default();
    let output = runtime.block_on(async {
        let mut coordinator = remote::connect_coordinator(&url, &settings.timeouts).await?;
        remote::compile(&mut coordinator, &remote_job, &settings.timeouts).await
    });
    let output = match output {
        Ok(out) => out,
        Err(e @ RemoteError::CoordinatorUnavailable(_)) => {
            settings.mark_coordinator_down();
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    tracing::debug!(worker = %output.worker_addr, compile_ms = output.compile_ms, "compiled remotely");

    match output.exit_code {
        0 => write_atomically(Path::new(&job.output), &output.object).map_err(|source| {
            Fallback::WriteObject {
                path: job.output.clone(),
                source,
            }
        })?,
        // A compile error: gcc leaves no output file behind.
        1 => {
            let _ = std::fs::remove_file(&job.output);
        }
        // Exit codes like 4 (internal compiler error) or a crash may be the
        // worker's trouble; the local compiler gives the real answer.
        code => return Err(Fallback::OddExit(code)),
    }
    // Ignore write errors: a closed stdout/stderr must not change the
    // compile's result, exactly as for the compiler itself.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&pp_stderr);
    let _ = std::io::stdout().lock().write_all(&output.stdout);
    let _ = stderr.write_all(&without_repeats(&output.stderr, &pp_stderr));
    joblog::remote(
        clock,
        &job.source,
        &output.worker_addr,
        preprocess_ms,
        output.compile_ms,
        output.exit_code,
    );
    Ok(output.exit_code)
}

/// The remote compile's stderr without the location-less diagnostics
/// (`cc1: warning: command-line option …`) the local preprocessing already
/// printed: both runs check the options, a local compile prints them once.
fn without_repeats(remote: &[u8], preprocessing: &[u8]) -> Vec<u8> {
    const PROGRAMS: [&[u8]; 4] = [b"cc1: ", b"cc1plus: ", b"cc1obj: ", b"cc1objplus: "];
    let mut printed: Vec<&[u8]> = preprocessing
        .split_inclusive(|c| *c == b'\n')
        .filter(|l| PROGRAMS.iter().any(|p| l.starts_with(p)))
        .collect();
    let mut out = Vec::with_capacity(remote.len());
    for line in remote.split_inclusive(|c| *c == b'\n') {
        if let Some(at) = printed.iter().position(|p| *p == line) {
            printed.remove(at);
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// Writes `data` to `path` through a temp file in the same directory and a
/// rename, so no reader ever sees a partial object.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gridcc-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    // Objects are normally 0644 after umask, like the compiler's own.
    let mode = 0o666 & !current_umask();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The process umask, read from /proc (reading it with umask(2) would
/// briefly change it).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn debug_info_follows_the_last_g_option() {
        assert!(debug_info_on(&strings(&["-O2", "-g"])));
        assert!(debug_info_on(&strings(&["-ggdb3"])));
        assert!(!debug_info_on(&strings(&["-g", "-g0"])));
        assert!(!debug_info_on(&strings(&["-gno-column-info", "-O2"])));
        assert!(!debug_info_on(&strings(&["-O2"])));
    }

    #[test]
    fn pedantic_and_preprocessor_switches_block_source_mode() {
        for arg in [
            "-pedantic",
            "-Wpedantic",
            "-undef",
            "-Wp,-DX",
            "-C",
            "-ffile-prefix-map=.=x",
        ] {
            assert!(blocks_source_mode(arg), "{arg}");
        }
        for arg in [
            "-O2",
            "-Wall",
            "-Wp,-MD,a.d",
            "-ffile-prefix-map=/b=.",
            "-DX",
        ] {
            assert!(!blocks_source_mode(arg), "{arg}");
        }
    }

    #[test]
    fn option_warnings_already_printed_are_not_repeated() {
        let pp = b"cc1: warning: command-line option '-std=c++17' is valid for C++\n";
        let remote = b"cc1: warning: command-line option '-std=c++17' is valid for C++\na.c:1:5: warning: x\ncc1: some warnings being treated as errors\n";
        assert_eq!(
            without_repeats(remote, pp),
            b"a.c:1:5: warning: x\ncc1: some warnings being treated as errors\n"
        );
        assert_eq!(without_repeats(remote, b""), remote);
        // A location line is never dropped, even if it repeats.
        assert_eq!(without_repeats(b"a.c:1: w\n", b"a.c:1: w\n"), b"a.c:1: w\n");
    }

    #[test]
    fn builtin_defines_are_stripped_and_command_line_ones_kept() {
        let text = b"# 0 \"a.c\"\n# 0 \"<built-in>\"\n#define __STDC__ 1\n# 0 \"<built-in>\"\n#define __GNUC__ 12\n# 0 \"<command-line>\"\n#define FOO 1\nint x;\n";
        let out = strip_builtin_defines(text);
        assert_eq!(
            out,
            b"# 0 \"a.c\"\n# 0 \"<command-line>\"\n#define FOO 1\nint x;\n"
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let obj = dir.path().join("a.o");
        std::fs::write(&obj, b"old").unwrap();
        write_atomically(&obj, b"new object").unwrap();
        assert_eq!(std::fs::read(&obj).unwrap(), b"new object");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&obj).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o666 & !current_umask());
    }

    #[test]
    fn atomic_write_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomically(&dir.path().join("no/such/a.o"), b"x").is_err());
    }
}
