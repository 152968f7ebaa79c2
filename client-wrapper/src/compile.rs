//! The compile path: classify the command line, preprocess locally, look the
//! result up in the object cache, else send the job to the grid, write the
//! object atomically and replay the compiler's output. Anything that is not
//! a proven-safe plain compile ends in the real compiler running locally
//! with the original arguments (`exec`, so its exit status and output are
//! its own). A cacheable compile that cannot go remote (no grid, a grid
//! failure) runs the local compiler as a child, so its object and output can
//! be stored.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use gridcc_proto::{payload, v1};

use crate::args::{self, Classification, Language, RemoteCompile};
use crate::cache::{self, debug_info_on, Cache};
use crate::compiler::{self, Resolved};
use crate::direct;
use crate::joblog;
use crate::remote::{self, RemoteError};
use crate::stats::{self, Event};

/// Wrapper settings from the environment (no flags on the compile path).
#[derive(Debug, Clone)]
pub struct Settings {
    pub coordinator: Option<String>,
    pub disabled: bool,
    /// The object cache is on (`GRIDCC_CACHE=0` turns it off).
    pub cache: bool,
    /// Direct mode is on (with the cache; `GRIDCC_DIRECT=0` turns it off).
    pub direct: bool,
    pub cache_dir: PathBuf,
    pub timeouts: remote::Timeouts,
    /// Token and TLS CA for grid calls, or why they are unusable (then
    /// every compile runs locally, with a warning).
    pub access: Result<remote::Access, String>,
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
        let on = |name: &str| {
            std::env::var(name).map_or(true, |v| !matches!(v.trim(), "0" | "off" | "false" | "no"))
        };
        let cache = on("GRIDCC_CACHE");
        Self {
            coordinator,
            disabled,
            cache,
            direct: cache && on("GRIDCC_DIRECT"),
            cache_dir: gridcc_toolchain::cache_dir(),
            timeouts: remote::Timeouts::default(),
            access: remote::Access::from_env().map_err(|e| e.to_string()),
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

    /// Adds this wrapper's event to `gridcc stats`.
    fn record(&self, event: &Event) {
        stats::record(&self.cache_dir, event);
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
    #[error("no coordinator configured (GRIDCC_COORDINATOR is unset)")]
    NoCoordinator,
}

impl Fallback {
    /// A short, bounded name for `gridcc stats` (the message itself names
    /// addresses and paths).
    fn kind(&self) -> String {
        match self {
            Fallback::Remote(e) => match e {
                RemoteError::Config(_) => "bad token or TLS settings",
                RemoteError::TokenRefused { .. } => "token refused",
                RemoteError::CoordinatorUnavailable(_) => "coordinator unreachable",
                RemoteError::Coordinator(_) => "coordinator error",
                RemoteError::CompileLocally(_) => "coordinator said compile locally",
                RemoteError::WorkerUnavailable { .. } => "worker unreachable",
                RemoteError::WorkerFailed { .. } => "worker failed the job",
                RemoteError::Timeout { .. } => "worker timed out",
                RemoteError::Protocol { .. } => "worker protocol error",
                RemoteError::Interrupted(_) => "interrupted",
            }
            .to_owned(),
            Fallback::CoordinatorRecentlyDown => "coordinator recently down".to_owned(),
            Fallback::Identity(_) => "cannot identify the compiler".to_owned(),
            Fallback::Preprocess(_) => "local preprocessing failed".to_owned(),
            Fallback::PreprocessSpawn(_) => "cannot run the preprocessor".to_owned(),
            Fallback::ReadSource { .. } => "cannot read the source".to_owned(),
            Fallback::Compress(_) => "cannot compress the source".to_owned(),
            Fallback::WriteObject { .. } => "cannot write the object".to_owned(),
            Fallback::OddExit(code) => format!("remote compiler exit {code}"),
            Fallback::Runtime(_) => "cannot start the async runtime".to_owned(),
            Fallback::NotExact(why) => (*why).to_owned(),
            Fallback::NoCoordinator => "no coordinator".to_owned(),
        }
    }
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

/// Runs the compiler `name` with `args`: from the object cache, through the
/// grid, or locally; returns the exit code to exit with (local compiles that
/// cannot be cached `exec` and never return).
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
    // GRIDCC_DISABLE means the plain compiler: no grid, no cache, no stats.
    if settings.disabled || (settings.coordinator.is_none() && !settings.cache) {
        return exec_local(&resolved, &args);
    }
    let Some(utf8_args) = args
        .iter()
        .map(|a| a.to_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
    else {
        tracing::debug!("non-UTF-8 argument; compiling locally");
        settings.record(&Event {
            not_distributable: Some("non-UTF-8 argument".to_owned()),
            ..Event::default()
        });
        return exec_local(&resolved, &args);
    };
    let cwd = match working_dir() {
        Ok(cwd) => cwd,
        Err(_) => return exec_local(&resolved, &args),
    };
    let classification = args::classify(&utf8_args, &cwd, &|k| std::env::var(k).ok());
    let job = match classification {
        Ok(Classification::Remote(job)) => job,
        Ok(Classification::Local(reason)) => {
            tracing::info!(%reason, args = ?utf8_args, "compiling locally");
            joblog::local(clock, None, &reason.to_string());
            settings.record(&Event {
                not_distributable: Some(reason_kind(&reason)),
                ..Event::default()
            });
            return exec_local(&resolved, &args);
        }
        Err(e) => {
            tracing::info!(error = %e, "cannot parse the command line; compiling locally");
            settings.record(&Event {
                not_distributable: Some("unreadable command line".to_owned()),
                ..Event::default()
            });
            return exec_local(&resolved, &args);
        }
    };
    let mut event = Event::default();
    let outcome = compile(
        &resolved, &args, &utf8_args, &job, &settings, &cwd, clock, &mut event,
    );
    if matches!(outcome, Outcome::ExecLocal) {
        event.local = true;
    }
    settings.record(&event);
    match outcome {
        Outcome::Exit(code) => code,
        Outcome::ExecLocal => exec_local(&resolved, &args),
    }
}

/// A short, bounded name for a local reason (its variant), for the stats.
fn reason_kind(reason: &args::LocalReason) -> String {
    let debug = format!("{reason:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("Other")
        .to_owned()
}

/// How a distributable compile ends.
enum Outcome {
    /// Done here (hit, remote, or a local child compile): exit with this.
    Exit(i32),
    /// Hand over to the real compiler with the original arguments.
    ExecLocal,
}

/// One distributable compile: preprocess, look the key up, then compile
/// remotely or locally and store the result.
#[allow(clippy::too_many_arguments)]
fn compile(
    resolved: &Resolved,
    args: &[OsString],
    original_args: &[String],
    job: &RemoteCompile,
    settings: &Settings,
    cwd: &Path,
    clock: joblog::Clock,
    event: &mut Event,
) -> Outcome {
    if !settings.cache && settings.coordinator_recently_down() {
        // Without a cache the preprocessing would serve nothing.
        note_fallback(event, job, clock, &Fallback::CoordinatorRecentlyDown);
        return Outcome::ExecLocal;
    }
    let cache = Cache::new(&settings.cache_dir);
    let plan = if settings.direct {
        direct_plan(resolved, original_args, job, settings, cwd, event)
    } else {
        None
    };
    if let Some(plan) = &plan {
        if let Some(outcome) = direct_lookup(plan, &cache, job, settings, clock, event) {
            return outcome;
        }
    }
    let prepared = match prepare(resolved, original_args, job, settings, cwd) {
        Ok(p) => p,
        Err(e) => {
            // No text, so no key: the local compiler runs unchanged (and
            // reports a preprocessing error itself).
            note_fallback(event, job, clock, &e);
            return Outcome::ExecLocal;
        }
    };
    let key = if settings.cache {
        match prepared.cache_key(original_args, job) {
            Ok(key) => Some(key),
            Err(why) => {
                event.not_cached = Some(why.to_owned());
                None
            }
        }
    } else {
        None
    };
    let record = match (&plan, &key) {
        (Some(plan), Some(object)) => Some(direct::Record {
            plan,
            compiler: resolved,
            identity: &prepared.toolchain,
            cwd: &prepared.cwd,
            job,
            text: &prepared.text,
            object,
        }),
        (Some(_), None) => {
            event.direct_not_recorded = Some("the object is not cacheable".to_owned());
            None
        }
        (None, _) => None,
    };
    let record = record.as_ref();
    if let Some(key) = &key {
        match cache.lookup(key) {
            cache::Lookup::Hit(entry) => {
                match write_atomically(Path::new(&job.output), &entry.object) {
                    Ok(()) => {
                        replay(&entry.stdout, &entry.stderr);
                        event.hit_local = true;
                        let wall = clock.elapsed_ms() as u64;
                        event.time_saved_ms = entry.compile_ms.saturating_sub(wall);
                        joblog::hit(clock, &job.source);
                        write_manifest(settings, record, event);
                        return Outcome::Exit(entry.exit_code);
                    }
                    Err(source) => {
                        // The local compiler says why the object cannot be
                        // written.
                        let e = Fallback::WriteObject {
                            path: job.output.clone(),
                            source,
                        };
                        note_fallback(event, job, clock, &e);
                        return Outcome::ExecLocal;
                    }
                }
            }
            cache::Lookup::Corrupt(why) => {
                eprintln!("gridcc: cache entry {key} is corrupt; recompiling");
                tracing::debug!(%why, "corrupt cache entry removed");
                event.corrupt = true;
            }
            cache::Lookup::Miss => {}
        }
        event.miss = true;
    }
    let fallback = match &settings.coordinator {
        None => Fallback::NoCoordinator,
        Some(_) if settings.coordinator_recently_down() => Fallback::CoordinatorRecentlyDown,
        Some(url) => match compile_remote(resolved, job, settings, &prepared, url, clock, event) {
            Ok(done) => {
                if let Some(key) = &key {
                    if done.exit_code == 0 {
                        let entry = cache::Entry {
                            exit_code: 0,
                            object: done.object,
                            stdout: done.stdout,
                            stderr: done.stderr,
                            compile_ms: clock.elapsed_ms() as u64,
                        };
                        if store(settings, &cache, key, &entry, event) {
                            write_manifest(settings, record, event);
                        }
                    } else {
                        event.not_cached = Some(format!("compiler exit {}", done.exit_code));
                    }
                }
                return Outcome::Exit(done.exit_code);
            }
            Err(e) => e,
        },
    };
    note_fallback(event, job, clock, &fallback);
    match &key {
        Some(key) => compile_local_child(
            resolved, args, job, settings, &cache, key, record, clock, event,
        ),
        None => Outcome::ExecLocal,
    }
}

fn note_fallback(event: &mut Event, job: &RemoteCompile, clock: joblog::Clock, e: &Fallback) {
    tracing::info!(reason = %e, source = %job.source, "compiling locally");
    // A grid failure is otherwise quiet (the build goes on locally), but a
    // refused token or unusable TLS settings will not heal by themselves:
    // the user must hear of them.
    if let Fallback::Remote(RemoteError::TokenRefused { .. } | RemoteError::Config(_)) = e {
        eprintln!("gridcc: {e}; compiling locally");
    }
    joblog::local(clock, Some(&job.source), &e.to_string());
    event.fallback = Some(e.kind());
}

/// Prints a compile's output. Write errors are ignored: a closed
/// stdout/stderr must not change the compile's result, exactly as for the
/// compiler itself.
fn replay(stdout: &[u8], stderr: &[u8]) {
    let _ = std::io::stdout().lock().write_all(stdout);
    let _ = std::io::stderr().lock().write_all(stderr);
}

/// Stores an entry; returns whether it was written.
fn store(
    settings: &Settings,
    cache: &Cache,
    key: &cache::Key,
    entry: &cache::Entry,
    event: &mut Event,
) -> bool {
    match cache.store(key, entry) {
        Ok((written, replaced)) => {
            event.cache_added = written as i64 - replaced as i64;
            let max = cache::max_size(&settings.cache_dir);
            let approx = stats::load(&settings.cache_dir)
                .cache_bytes
                .saturating_add(written);
            if approx > max {
                event.evicted = cache.evict(max);
            }
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot store the cache entry");
            event.cache_write_error = true;
            false
        }
    }
}

/// The working directory as gcc names it (libiberty's `getpwd`): `$PWD`
/// when it is absolute and is the same directory as `.`, else `getcwd`.
/// gcc writes that name into debug info (`DW_AT_comp_dir`), so keys and
/// remote compiles must use it too: from `getcwd` alone, a build through a
/// symlinked path and one through the real path would share cache entries
/// whose objects differ.
fn working_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dot = std::fs::metadata(".")?;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from) {
        if pwd.is_absolute()
            && std::fs::metadata(&pwd).is_ok_and(|m| (m.dev(), m.ino()) == (dot.dev(), dot.ino()))
        {
            return Ok(pwd);
        }
    }
    std::env::current_dir()
}

/// The direct-mode plan of this compile, or `None` (the reason goes to the
/// stats).
fn direct_plan(
    resolved: &Resolved,
    original_args: &[String],
    job: &RemoteCompile,
    settings: &Settings,
    cwd: &Path,
    event: &mut Event,
) -> Option<direct::Plan> {
    // Before the source is read: whatever changes after this may not have
    // been seen by the preprocessing.
    let start = SystemTime::now();
    let planned = (|| {
        let cwd = cwd.to_str().ok_or("working directory is not UTF-8")?;
        let identity = gridcc_toolchain::IdentityCache::new(settings.cache_dir.join("toolchains"))
            .identify(&resolved.path)
            .map_err(|_| "cannot identify the compiler")?;
        if let Some(why) = stays_local(&identity) {
            return Err(why);
        }
        let expanded = args::expand_response_files(original_args, Path::new(cwd))
            .map_err(|_| "unreadable response file")?;
        direct::plan(&direct::PlanInputs {
            compiler: &resolved.path,
            identity: &identity.digest,
            args: original_args,
            expanded: &expanded,
            job,
            cwd,
            env: &|name| std::env::var(name).ok(),
            start,
        })
    })();
    match planned {
        Ok(plan) => Some(plan),
        Err(why) => {
            event.direct_not_recorded = Some(why.to_owned());
            None
        }
    }
}

/// Answers the compile from its manifest and the object cache, without
/// preprocessing: `Some(outcome)` on a hit, `None` (with the reason in the
/// event) to go on with the preprocessed key.
fn direct_lookup(
    plan: &direct::Plan,
    cache: &Cache,
    job: &RemoteCompile,
    settings: &Settings,
    clock: joblog::Clock,
    event: &mut Event,
) -> Option<Outcome> {
    let (object, dep_file) = match plan.lookup(&settings.cache_dir) {
        direct::Found::Hit { object, dep_file } => (object, dep_file),
        direct::Found::Miss(why) => {
            event.direct_miss = Some(why.to_owned());
            return None;
        }
        direct::Found::Corrupt(why) => {
            eprintln!(
                "gridcc: direct-mode manifest {} is corrupt; preprocessing",
                plan.key()
            );
            tracing::debug!(%why, "corrupt manifest removed");
            event.corrupt = true;
            event.direct_miss = Some("manifest corrupt".to_owned());
            return None;
        }
    };
    let entry = match cache.lookup(&object) {
        cache::Lookup::Hit(entry) => entry,
        cache::Lookup::Miss => {
            event.direct_miss = Some("object entry evicted".to_owned());
            return None;
        }
        cache::Lookup::Corrupt(why) => {
            eprintln!("gridcc: cache entry {object} is corrupt; recompiling");
            tracing::debug!(%why, "corrupt cache entry removed");
            event.corrupt = true;
            event.direct_miss = Some("object entry corrupt".to_owned());
            return None;
        }
    };
    // The dependency file first, as the preprocessing writes it before the
    // object exists.
    let written = dep_file
        .map_or(Ok(()), |(path, bytes)| {
            write_atomically(Path::new(&path), &bytes)
                .map_err(|source| Fallback::WriteObject { path, source })
        })
        .and_then(|()| {
            write_atomically(Path::new(&job.output), &entry.object).map_err(|source| {
                Fallback::WriteObject {
                    path: job.output.clone(),
                    source,
                }
            })
        });
    if let Err(e) = written {
        // The local compiler says why the file cannot be written.
        note_fallback(event, job, clock, &e);
        return Some(Outcome::ExecLocal);
    }
    replay(&entry.stdout, &entry.stderr);
    event.hit_direct = true;
    let wall = clock.elapsed_ms() as u64;
    event.time_saved_ms = entry.compile_ms.saturating_sub(wall);
    joblog::hit(clock, &job.source);
    Some(Outcome::Exit(entry.exit_code))
}

/// Writes the direct-mode manifest of a compile whose object entry is in
/// the cache; failures and refusals only go to the stats.
fn write_manifest(settings: &Settings, record: Option<&direct::Record<'_>>, event: &mut Event) {
    let Some(record) = record else { return };
    match record.write(&settings.cache_dir) {
        Ok(added) => event.cache_added += added,
        Err(why) => {
            tracing::debug!(%why, "no direct-mode manifest");
            event.direct_not_recorded = Some(why.to_owned());
        }
    }
}

/// The local compiler as a child (not `exec`), so that its object and
/// output can be stored: the same arguments, environment and stdin; its
/// stdout and stderr are captured, then printed unchanged.
#[allow(clippy::too_many_arguments)]
fn compile_local_child(
    resolved: &Resolved,
    args: &[OsString],
    job: &RemoteCompile,
    settings: &Settings,
    cache: &Cache,
    key: &cache::Key,
    record: Option<&direct::Record<'_>>,
    clock: joblog::Clock,
    event: &mut Event,
) -> Outcome {
    let mut cmd = Command::new(&resolved.path);
    cmd.args(args).stdin(Stdio::inherit());
    if let Some(path) = &resolved.child_path {
        cmd.env("PATH", path);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("gridcc: cannot run {}: {e}", resolved.path.display());
            return Outcome::Exit(127);
        }
    };
    event.local = true;
    replay(&out.stdout, &out.stderr);
    let code = match (out.status.code(), out.status.signal()) {
        (Some(code), _) => code,
        // Killed: the shell's convention, so make reports a failure.
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    if code != 0 {
        event.not_cached = Some(format!("compiler exit {code}"));
        return Outcome::Exit(code);
    }
    match std::fs::read(&job.output) {
        Ok(object) => {
            let entry = cache::Entry {
                exit_code: 0,
                object,
                stdout: out.stdout,
                stderr: out.stderr,
                compile_ms: clock.elapsed_ms() as u64,
            };
            if store(settings, cache, key, &entry, event) {
                write_manifest(settings, record, event);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, output = %job.output, "cannot read the object back");
            event.not_cached = Some("object unreadable after the compile".to_owned());
        }
    }
    Outcome::Exit(0)
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

/// A job's text, preprocessed locally, with what the key and the remote
/// compile need.
struct Prepared {
    mode: Mode,
    /// `-x` language of the text as sent.
    language: String,
    toolchain: String,
    cwd: String,
    text: Vec<u8>,
    /// What the local preprocessing printed (warnings, `#warning`).
    pp_stderr: Vec<u8>,
    preprocess_ms: f64,
}

impl Prepared {
    /// The cache key, or why this compile must not be cached.
    fn cache_key(
        &self,
        original_args: &[String],
        job: &RemoteCompile,
    ) -> Result<cache::Key, &'static str> {
        if self.mode != Mode::AsIs {
            if let Some(why) = cache::uncacheable(self.mode == Mode::Source, &self.text) {
                return Err(why);
            }
        }
        let env = cache::key_env();
        let inputs = cache::KeyInputs {
            compiler: &self.toolchain,
            mode: match self.mode {
                Mode::Source => "source",
                Mode::Preprocessed => "preprocessed",
                Mode::AsIs => "as-is",
            },
            language: &self.language,
            args: &job.compile_args,
            source: &job.source,
            // With debug info the object records the working directory
            // (DW_AT_comp_dir). Prefix maps could make it irrelevant, but
            // only for some layouts; the key keeps it whenever -g is on.
            cwd: debug_info_on(original_args).then_some(self.cwd.as_str()),
            env: &env,
            text: &self.text,
        };
        Ok(inputs.key())
    }
}

/// Chooses the mode, identifies the compiler and preprocesses locally.
fn prepare(
    resolved: &Resolved,
    original_args: &[String],
    job: &RemoteCompile,
    settings: &Settings,
    cwd: &Path,
) -> Result<Prepared, Fallback> {
    let mode = choose_mode(original_args, job)?;
    let language = match mode {
        Mode::Source => source_language(&job.language)
            .ok_or(Fallback::NotExact("no source language"))?
            .to_owned(),
        _ => job.remote_language.to_owned(),
    };
    let cwd = cwd
        .to_str()
        .ok_or(Fallback::NotExact("working directory is not UTF-8"))?
        .to_owned();
    tracing::debug!(preprocess = ?job.preprocess_args, compile = ?job.compile_args, language = job.remote_language, "preprocessing");
    let identity = gridcc_toolchain::IdentityCache::new(settings.cache_dir.join("toolchains"))
        .identify(&resolved.path)?;
    if let Some(why) = stays_local(&identity) {
        return Err(Fallback::NotExact(why));
    }

    let preprocess_start = std::time::Instant::now();
    // Preprocess locally: headers stay here, dependency files are written
    // here exactly as the local compile would write them.
    let (text, pp_stderr) = if job.preprocessed_input {
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
    Ok(Prepared {
        mode,
        language,
        toolchain: identity.digest,
        cwd,
        text,
        pp_stderr,
        preprocess_ms: preprocess_start.elapsed().as_secs_f64() * 1000.0,
    })
}

/// A remote compile that finished: the object is written and the output
/// printed; these are the bytes, for the cache.
struct RemoteDone {
    exit_code: i32,
    object: Vec<u8>,
    stdout: Vec<u8>,
    /// Exactly what was printed on stderr (preprocessing's and the
    /// compile's, without repeats).
    stderr: Vec<u8>,
}

fn compile_remote(
    resolved: &Resolved,
    job: &RemoteCompile,
    settings: &Settings,
    prepared: &Prepared,
    url: &str,
    clock: joblog::Clock,
    event: &mut Event,
) -> Result<RemoteDone, Fallback> {
    let compressed = payload::compress(&prepared.text)?;
    // The input tree for a worker that runs hermetic jobs (the text stays
    // for one that does not).
    let (hermetic, text_reason) = match prepared.mode {
        Mode::AsIs => (None, Some("the input is preprocessed already")),
        _ => match crate::hermetic::plan(
            resolved,
            job,
            &prepared.cwd,
            &prepared.text,
            Some(direct::ListCache {
                dir: &settings.cache_dir,
                identity: &prepared.toolchain,
                cwd: &prepared.cwd,
            }),
        ) {
            Ok(tree) => (Some(tree), None),
            Err(crate::hermetic::INCBIN) => {
                return Err(Fallback::NotExact(crate::hermetic::INCBIN))
            }
            Err(why) => (None, Some(why)),
        },
    };
    let (input_name, source_path) = match prepared.mode {
        Mode::Source => (String::new(), job.source.clone()),
        _ => (input_name(job), String::new()),
    };
    let cwd = &prepared.cwd;
    let mut remote_job = remote::Job {
        toolchain: prepared.toolchain.clone(),
        args: job.compile_args.clone(),
        language: prepared.language.clone(),
        input_name,
        source_path,
        source_key: blake3::hash(format!("{cwd}\0{}", job.source).as_bytes()).to_hex()[..32]
            .to_owned(),
        cwd: cwd.clone(),
        input_size: prepared.text.len() as u64,
        digest: payload::digest(&prepared.text),
        compressed,
        env: locale_env(),
        cache_key: String::new(),
        source_name: std::path::Path::new(&job.source)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        hermetic,
        text_reason,
    };
    remote_job.cache_key = remote_job.grid_key();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Fallback::Runtime)?;
    let access = settings.access.clone().map_err(RemoteError::Config)?;
    let output = runtime.block_on(async {
        // Ctrl-C or SIGTERM from here on cancels the grid calls (see
        // `interrupt`); should catching fail, they kill the wrapper as before.
        let catch = crate::interrupt::Catch::start().ok();
        let interrupted = async {
            match &catch {
                Some(catch) => catch.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(interrupted);
        let connect = remote::connect_coordinator(url, &access, &settings.timeouts);
        let mut coordinator = tokio::select! {
            coordinator = connect => coordinator?,
            sig = interrupted.as_mut() => return Err(RemoteError::Interrupted(sig)),
        };
        remote::compile(
            &mut coordinator,
            &remote_job,
            &settings.timeouts,
            interrupted,
        )
        .await
    });
    // A signal caught after the calls ended, before the handler was gone,
    // interrupts the compile all the same.
    if let Some(sig) = crate::interrupt::caught() {
        end_interrupted(job, sig);
    }
    let output = match output {
        Ok(out) => out,
        Err(e @ RemoteError::CoordinatorUnavailable(_)) => {
            settings.mark_coordinator_down();
            return Err(e.into());
        }
        Err(e) => {
            // How far a failed upload got is unknown; count it as sent.
            event.bytes_sent += remote_job.compressed.len() as u64;
            return Err(e.into());
        }
    };
    event.bytes_sent += output.sent_bytes;
    event.bytes_received += output.received_bytes;
    // Printed, and cached, without the controls a worker must not send to
    // the user's terminal (see `terminal`).
    let mut output = output;
    output.stdout = crate::terminal::sanitize(&output.stdout);
    output.stderr = crate::terminal::sanitize(&output.stderr);
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
    if output.shared_hit {
        // Answered from a worker's cache: a hit, not a compile (and not a
        // miss, though this machine's cache did not have it).
        event.hit_shared = true;
        event.miss = false;
        event.time_saved_ms = output.compile_ms.saturating_sub(clock.elapsed_ms() as u64);
    } else {
        event.remote = true;
    }
    // A hermetic job preprocessed on the worker too: its stderr is the
    // whole compile's. A text job's adds to what preprocessing here said.
    event.hermetic = Some(output.hermetic);
    event.text_reason = remote_job.text_reason.map(str::to_owned);
    let stderr = if output.hermetic {
        output.stderr.clone()
    } else {
        let mut stderr = prepared.pp_stderr.clone();
        stderr.extend_from_slice(&without_repeats(&output.stderr, &prepared.pp_stderr));
        stderr
    };
    replay(&output.stdout, &stderr);
    joblog::remote(
        clock,
        joblog::Job {
            source: &job.source,
            key: &remote_job.source_key,
        },
        prepared.preprocess_ms,
        &output,
        remote_job.text_reason,
    );
    Ok(RemoteDone {
        exit_code: output.exit_code,
        object: output.object,
        stdout: output.stdout,
        stderr,
    })
}
/// Ends the wrapper interrupted by `sig`, as gcc's driver ends: the output
/// file is removed (a stale object must not look up to date), then the
/// wrapper dies of the signal. Only a regular file is removed (never
/// `-o /dev/null`).
fn end_interrupted(job: &RemoteCompile, sig: i32) -> ! {
    let output = Path::new(&job.output);
    if std::fs::symlink_metadata(output).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(output);
    }
    crate::interrupt::die(sig)
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

/// Why clang's jobs stay local whatever their arguments.
pub(crate) const CLANG_LOCAL: &str = "clang compiles stay local until verified";

/// Why a compiler's jobs stay local whatever their arguments: clang's are
/// not yet verified byte for byte against local clang builds.
pub(crate) fn stays_local(identity: &gridcc_toolchain::Identity) -> Option<&'static str> {
    identity.version.contains("clang").then_some(CLANG_LOCAL)
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
