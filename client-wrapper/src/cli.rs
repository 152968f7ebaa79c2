//! `gridcc`'s entry: a reserved first word is a subcommand (`status`,
//! `stats`, `explain`, `--help`, `--version`, and the cache options
//! `--max-size`, `--clear`); anything else is a compiler.
//! Invoked through a symlink named like a compiler (masquerade), every
//! argument belongs to that compiler. No clap here: the compile path must
//! start fast.

use std::ffi::OsString;
use std::path::Path;

use crate::args::{self, Classification};

const HELP: &str = "\
gridcc: distributed C/C++ compilation

Usage:
  gridcc COMPILER ARGS...        compile through the grid (e.g. gridcc gcc -c a.c -o a.o)
  gridcc status [--json] [--watch [SECONDS]] [--coordinator URL]
                                 workers, slots, load and jobs of the grid; --watch redraws
                                 it every SECONDS (default 1); see gridcc status --help
  gridcc explain [--json] COMPILER ARGS...
                                 say whether a command would compile remotely, and why not
  gridcc stats [--json] [--zero] compiles (local, remote), cache hits and misses, fallbacks
                                 by reason, bytes sent and received, time saved; --zero resets
  gridcc --max-size SIZE         set the object cache's size bound (e.g. 5G, 500M; default 5G);
                                 GRIDCC_CACHE_SIZE overrides it
  gridcc --clear                 remove every entry of the object cache
  gridcc --help | --version

Object cache: a compile whose result is in GRIDCC_CACHE_DIR/objects (keyed by the
compiler, the compile arguments, the preprocessed text, the source path, and the
working directory under -g) is answered from there: object, stdout, stderr.
Direct mode answers a repeated compile without even preprocessing, from a
manifest of every file the last preprocessing read and every path where a header
could have appeared; anything changed or uncertain falls back to preprocessing.

A refused token (or an unusable token or CA setting) makes every compile run
locally with a one-line warning; gridcc status exits 1 with the reason.

Masquerade: a symlink named gcc, g++, cc, c++, clang or clang++ pointing at
gridcc, placed early in PATH, wraps that compiler.

Environment:
  GRIDCC_COORDINATOR   coordinator URL, e.g. http://127.0.0.1:7700 (unset: compile locally);
                       https://HOST:PORT uses TLS to the coordinator and to its workers
  GRIDCC_TOKEN         the grid's shared token, sent with every call (unset: none)
  GRIDCC_TOKEN_FILE    a file holding the token (contents trimmed), instead of GRIDCC_TOKEN
  GRIDCC_TLS_CA        PEM CA certificate(s) that https:// servers are checked with
  GRIDCC_DISABLE=1     always compile locally, with no cache and no stats
  GRIDCC_CACHE=0       turn the object cache off (the grid is still used)
  GRIDCC_DIRECT=0      turn direct mode off (hits still preprocess)
  GRIDCC_CACHE_DIR     cache directory (default ~/.cache/gridcc)
  GRIDCC_CACHE_SIZE    object cache size bound, e.g. 10G (overrides --max-size)
  GRIDCC_LOG           log filter, e.g. info or debug (logs go to stderr)
  GRIDCC_LOG_FORMAT    json: one JSON object per log line (default: text)
  GRIDCC_JOB_LOG       file to append one JSON line per compile to (wall, preprocess,
                       worker compile and overhead ms; or the reason it ran locally)
";

/// Runs gridcc with its full argv; returns the process exit code.
pub fn main(argv: Vec<OsString>) -> i32 {
    let argv0 = argv.first().cloned().unwrap_or_default();
    let invoked_as = Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("gridcc")
        .to_owned();
    let rest: Vec<OsString> = argv.into_iter().skip(1).collect();
    if !invoked_as.starts_with("gridcc") {
        // Masquerade: `gcc -> gridcc`.
        return crate::compile::run(&invoked_as, rest);
    }
    let Some(first) = rest.first().and_then(|a| a.to_str()).map(str::to_owned) else {
        eprint!("{HELP}");
        return 2;
    };
    let tail: Vec<OsString> = rest[1..].to_vec();
    match first.as_str() {
        "--help" | "-h" | "help" => {
            print!("{HELP}");
            0
        }
        "--version" | "-V" => {
            println!("gridcc {}", gridcc_proto::VERSION);
            0
        }
        "status" => status(&tail),
        "explain" => explain(&tail),
        "stats" => stats(&tail),
        "--max-size" | "-M" => max_size(&tail),
        "--clear" | "-C" if tail.is_empty() => {
            let dir = gridcc_toolchain::cache_dir();
            let removed = crate::cache::Cache::new(&dir).clear();
            let _ = crate::stats::update(&dir, |s| s.cache_bytes = 0);
            println!("removed {removed} cache entries from {}", dir.display());
            0
        }
        _ if first.starts_with('-') => {
            eprintln!("gridcc: unknown option {first:?}; see gridcc --help");
            2
        }
        compiler => crate::compile::run(compiler, tail),
    }
}

fn stats(args: &[OsString]) -> i32 {
    let (mut json, mut zero) = (false, false);
    for arg in args {
        match arg.to_str() {
            Some("--json") => json = true,
            Some("--zero") | Some("-z") => zero = true,
            _ => {
                eprintln!(
                    "gridcc stats: unknown argument {arg:?}; usage: gridcc stats [--json] [--zero]"
                );
                return 2;
            }
        }
    }
    let dir = gridcc_toolchain::cache_dir();
    let max = crate::cache::max_size(&dir);
    if zero {
        let (bytes, _) = crate::cache::Cache::new(&dir).measure();
        if let Err(e) = crate::stats::zero(&dir, bytes) {
            eprintln!("gridcc stats: cannot reset {}: {e}", dir.display());
            return 1;
        }
        if !json {
            println!("statistics zeroed");
            return 0;
        }
    }
    let s = crate::stats::load(&dir);
    if json {
        let mut value = match serde_json::to_value(&s) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("gridcc stats: {e}");
                return 1;
            }
        };
        value["max_size_bytes"] = max.into();
        value["cache_dir"] = dir.display().to_string().into();
        println!("{value:#}");
    } else {
        print!("{}", crate::stats::render(&s, max, &dir));
    }
    0
}

fn max_size(args: &[OsString]) -> i32 {
    let Some(size) = (match args {
        [one] => one.to_str().and_then(crate::cache::parse_size),
        _ => None,
    }) else {
        eprintln!(
            "gridcc --max-size: usage: gridcc --max-size SIZE (bytes, or with K, M, G, T: 5G)"
        );
        return 2;
    };
    let dir = gridcc_toolchain::cache_dir();
    if let Err(e) = crate::cache::save_max_size(&dir, size) {
        eprintln!("gridcc --max-size: cannot write {}: {e}", dir.display());
        return 1;
    }
    let cache = crate::cache::Cache::new(&dir);
    if let Some((removed, left)) = cache.evict(size) {
        let _ = crate::stats::update(&dir, |s| {
            s.evictions += removed;
            s.cache_bytes = left;
        });
    }
    println!("cache size bound set to {size} bytes");
    0
}

const STATUS_HELP: &str = "\
Usage: gridcc status [--json] [--watch [SECONDS]] [--coordinator URL]

The grid as the coordinator sees it: per worker its id, address, slots busy and
total, jobs queued on it, speed (1.0 = one reference core), jobs done and failed,
health (up, draining; while watching also failing: failed jobs and finished none
since the last frame) and compilers; then the grid's totals.

Options:
  --coordinator URL  coordinator to ask (default: GRIDCC_COORDINATOR)
  --json             JSON instead of the table (with --watch: one JSON line per frame)
  --watch [SECONDS]  redraw every SECONDS (default 1) until Ctrl-C or SIGTERM, with the
                     jobs per second compiled remotely since the previous frame. On a
                     terminal the screen is redrawn in place; otherwise frames follow
                     each other, separated by a blank line. When the coordinator stops
                     answering, the frame says \"coordinator unreachable\" and gridcc
                     keeps trying.
  -h, --help         this help

Exit status: 0; 1 with a one-line error when the coordinator does not answer (with
--watch: the first time); 2 for bad arguments.
";

fn status(args: &[OsString]) -> i32 {
    let mut json = false;
    let mut watch: Option<f64> = None;
    let mut url = std::env::var("GRIDCC_COORDINATOR")
        .ok()
        .filter(|u| !u.is_empty());
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut it = args.iter().peekable();
    let seconds = |text: &str| -> Option<f64> {
        text.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.1 && *s <= 86_400.0)
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{STATUS_HELP}");
                return 0;
            }
            "--json" => json = true,
            "--watch" | "-w" => {
                // An optional value: a number right after it.
                let value = it.peek().filter(|v| !v.starts_with('-')).cloned();
                watch = Some(match value {
                    Some(v) => {
                        it.next();
                        match seconds(v) {
                            Some(s) => s,
                            None => {
                                eprintln!("gridcc status: --watch takes seconds between 0.1 and 86400, got {v:?}");
                                return 2;
                            }
                        }
                    }
                    None => 1.0,
                });
            }
            a if a.starts_with("--watch=") => match seconds(&a["--watch=".len()..]) {
                Some(s) => watch = Some(s),
                None => {
                    eprintln!(
                        "gridcc status: --watch takes seconds between 0.1 and 86400, got {a:?}"
                    );
                    return 2;
                }
            },
            "--coordinator" => match it.next() {
                Some(u) => url = Some(u.clone()),
                None => {
                    eprintln!("gridcc status: --coordinator needs a URL");
                    return 2;
                }
            },
            a if a.starts_with("--coordinator=") => {
                url = Some(a["--coordinator=".len()..].to_owned())
            }
            other => {
                eprintln!("gridcc status: unknown argument {other:?}; see gridcc status --help");
                return 2;
            }
        }
    }
    let Some(url) = url else {
        eprintln!(
            "gridcc status: no coordinator: set GRIDCC_COORDINATOR or pass --coordinator URL"
        );
        return 2;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gridcc status: {e}");
            return 1;
        }
    };
    let access = match crate::remote::Access::from_env() {
        Ok(access) => access,
        Err(e) => {
            eprintln!("gridcc status: {e}");
            return 1;
        }
    };
    if let Some(seconds) = watch {
        let interval = std::time::Duration::from_secs_f64(seconds);
        return runtime.block_on(crate::status::watch(&url, &access, interval, json));
    }
    match runtime.block_on(crate::status::fetch(&url, &access)) {
        Ok(status) if json => match serde_json::to_string_pretty(&status) {
            Ok(text) => {
                println!("{text}");
                0
            }
            Err(e) => {
                eprintln!("gridcc status: {e}");
                1
            }
        },
        Ok(status) => {
            print!("{}", crate::status::render(&status));
            0
        }
        Err(e) => {
            eprintln!("gridcc status: {e}");
            1
        }
    }
}

fn explain(args: &[OsString]) -> i32 {
    let mut json = false;
    let mut rest = args;
    if rest.first().is_some_and(|a| a == "--json") {
        json = true;
        rest = &rest[1..];
    }
    let Some((compiler, compiler_args)) = rest.split_first() else {
        eprintln!("gridcc explain: usage: gridcc explain [--json] COMPILER ARGS...");
        return 2;
    };
    let Some(compiler_args) = compiler_args
        .iter()
        .map(|a| a.to_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
    else {
        return print_decision(json, Some("argument is not valid UTF-8".to_owned()));
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let job = match args::classify(&compiler_args, &cwd, &|k| std::env::var(k).ok()) {
        Ok(Classification::Remote(job)) => job,
        Ok(Classification::Local(reason)) => return print_decision(json, Some(reason.to_string())),
        Err(e) => {
            return print_decision(json, Some(format!("cannot parse the command line: {e}")));
        }
    };
    match hermetic_mode(compiler, &job, &cwd) {
        Err(why @ (crate::hermetic::INCBIN | crate::compile::CLANG_LOCAL)) => {
            print_decision(json, Some(why.into()))
        }
        mode => print_remote(json, mode.err()),
    }
}

/// Whether `job` would go as a hermetic job (`Ok`) or as text, and why:
/// its input tree from a preprocessing run that writes nothing (the
/// compile's search arguments, `-E` to a pipe).
fn hermetic_mode(
    compiler: &OsString,
    job: &args::RemoteCompile,
    cwd: &std::path::Path,
) -> Result<(), &'static str> {
    let own = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let name = compiler
        .to_str()
        .ok_or("the compiler's name is not UTF-8")?;
    let resolved = crate::compiler::resolve(name, std::env::var_os("PATH").as_ref(), &own)
        .map_err(|_| "the compiler is not found")?;
    let settings = crate::compile::Settings::from_env();
    let identity = gridcc_toolchain::IdentityCache::new(settings.cache_dir.join("toolchains"))
        .identify(&resolved.path)
        .map_err(|_| "cannot identify the compiler")?;
    if let Some(why) = crate::compile::stays_local(&identity) {
        return Err(why);
    }
    if job.preprocessed_input {
        return Err("the input is preprocessed already");
    }
    let mut cmd = std::process::Command::new(&resolved.path);
    cmd.args(&job.search_args)
        .args(["-E", &job.source])
        .current_dir(cwd)
        .env_remove("DEPENDENCIES_OUTPUT")
        .env_remove("SUNPRO_DEPENDENCIES")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(path) = &resolved.child_path {
        cmd.env("PATH", path);
    }
    let out = cmd.output().map_err(|_| "cannot run the preprocessor")?;
    if !out.status.success() {
        return Err("the preprocessing fails here");
    }
    let cwd = cwd.to_str().ok_or("the working directory is not UTF-8")?;
    crate::hermetic::plan(&resolved, job, cwd, &out.stdout, None).map(|_| ())
}

fn print_remote(json: bool, text_reason: Option<&str>) -> i32 {
    if json {
        let value = serde_json::json!({
            "decision": "remote",
            "reason": null,
            "mode": if text_reason.is_some() { "text" } else { "hermetic" },
            "text_reason": text_reason,
        });
        println!("{value}");
    } else {
        match text_reason {
            None => println!("remote (hermetic where the worker runs hermetic jobs)"),
            Some(r) => println!("remote (as text: {r})"),
        }
    }
    0
}

fn print_decision(json: bool, reason: Option<String>) -> i32 {
    if json {
        let value = serde_json::json!({
            "decision": if reason.is_some() { "local" } else { "remote" },
            "reason": reason,
        });
        println!("{value}");
    } else {
        match reason {
            None => println!("remote"),
            Some(r) => println!("local: {r}"),
        }
    }
    0
}
