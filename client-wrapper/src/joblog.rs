//! `GRIDCC_JOB_LOG=FILE`: one JSON line per compile the wrapper handled,
//! appended to FILE, for measuring the wrapper itself (the benchmark mode
//! reads it for the per-job overhead). A remote compile's line holds the
//! wrapper's own wall time from entering `main`, the time spent
//! preprocessing, and the worker's compile time; their difference is what
//! the grid cost this job beyond compiling, how it ran (`job_mode`:
//! `hermetic` or `text`, with `text_reason` saying why not hermetic), and
//! the size of the job's header (`header_bytes`: for a hermetic job mostly
//! its input tree's listing, sent with every job). A
//! local compile's line holds the reason. Every line also holds when the wrapper started (Unix ms)
//! and the CPU it and its children (the preprocessor) had used so far, so
//! that `gridcc-bench` can replay the build as it happened: when make asked
//! for each job, what else was in flight, and the client's own work per
//! job. Writing is best effort: a log that cannot be written never changes
//! a compile's result.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// When the wrapper started, for the wall times in the log.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    /// The same moment on the wall clock, to line the wrapper's lines up
    /// with the coordinator's trace (both read this host's clock, or the
    /// same kernel's in a host-network container).
    start_unix_ms: u64,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            start_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
}

/// CPU ms (user + system) of this process and of its reaped children
/// (`gcc -E` and its `cc1`), from `/proc/self/stat`; `None` where that is
/// unreadable. The kernel reports these in USER_HZ ticks, which Linux fixes
/// at 100 per second for every user-space interface whatever the kernel's
/// own HZ, so a tick is 10 ms.
fn cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_ms_of(&stat)
}

fn cpu_ms_of(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. utime, stime, cutime, cstime are fields 14–17, that is
    // 12–15 counting from the state (field 3) as 1.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(ticks * 10)
}

/// Which job a remote line is about: the source file and the key the
/// coordinator's trace names it by (`source_key`), so the two join.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub source: &'a str,
    pub key: &'a str,
}

/// A remote compile that finished (whatever the compiler's exit code);
/// `text_reason` is why it has no hermetic form, if it has none.
pub fn remote(
    clock: Clock,
    Job { source, key }: Job<'_>,
    preprocess_ms: f64,
    output: &crate::remote::Output,
    text_reason: Option<&str>,
) {
    append(&remote_line(
        clock,
        Job { source, key },
        preprocess_ms,
        output,
        text_reason,
    ));
}

fn remote_line(
    clock: Clock,
    Job { source, key }: Job<'_>,
    preprocess_ms: f64,
    output: &crate::remote::Output,
    text_reason: Option<&str>,
) -> serde_json::Value {
    let shared_hit = output.shared_hit;
    // A shared-cache hit ran no compiler: its whole time is overhead.
    let compile_ms = if shared_hit { 0 } else { output.compile_ms };
    let wall_ms = clock.elapsed_ms();
    // How the job ran: in a worker's sandbox over its input tree, or as
    // preprocessed text, and then why not hermetic (the job had no input
    // tree, or the worker does not run hermetic jobs).
    let (job_mode, text_reason) = if output.hermetic {
        ("hermetic", None)
    } else {
        (
            "text",
            Some(text_reason.unwrap_or("the worker does not run hermetic jobs")),
        )
    };
    serde_json::json!({
        "mode": "remote",
        "source": source,
        "key": key,
        "start_unix_ms": clock.start_unix_ms,
        "cpu_ms": cpu_ms(),
        "worker": output.worker_addr,
        "wall_ms": round(wall_ms),
        "preprocess_ms": round(preprocess_ms),
        "compile_ms": compile_ms,
        "overhead_ms": round(wall_ms - compile_ms as f64),
        "exit_code": output.exit_code,
        "shared_hit": shared_hit,
        "retried": output.retried,
        "hermetic": output.hermetic,
        "job_mode": job_mode,
        "text_reason": text_reason,
        "header_bytes": output.header_bytes,
    })
}

/// A compile answered from the object cache.
pub fn hit(clock: Clock, source: &str) {
    append(&serde_json::json!({
        "mode": "hit",
        "source": source,
        "start_unix_ms": clock.start_unix_ms,
        "cpu_ms": cpu_ms(),
        "wall_ms": round(clock.elapsed_ms()),
    }));
}

/// A compile the wrapper ran locally, and why.
pub fn local(clock: Clock, source: Option<&str>, reason: &str) {
    append(&serde_json::json!({
        "mode": "local",
        "source": source,
        "reason": reason,
        "start_unix_ms": clock.start_unix_ms,
        "wall_ms_before_local": round(clock.elapsed_ms()),
    }));
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

fn append(value: &serde_json::Value) {
    let Some(path) = std::env::var_os("GRIDCC_JOB_LOG").filter(|p| !p.is_empty()) else {
        return;
    };
    let mut line = value.to_string();
    line.push('\n');
    // One write of a short line to an O_APPEND file: concurrent wrappers'
    // lines do not interleave.
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = result {
        tracing::debug!(error = %e, "cannot write GRIDCC_JOB_LOG");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounding_keeps_microseconds() {
        assert_eq!(super::round(1.234_567_8), 1.235);
    }

    #[test]
    fn a_remote_line_says_how_the_job_ran_and_why_not_hermetic() {
        let mut output = crate::remote::Output {
            exit_code: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            object: Vec::new(),
            worker_addr: "w:1".into(),
            compile_ms: 5,
            received_bytes: 0,
            sent_bytes: 0,
            shared_hit: false,
            retried: false,
            hermetic: true,
            header_bytes: 100,
        };
        let job = super::Job {
            source: "a.c",
            key: "k",
        };
        let clock = super::Clock::start();
        let line = super::remote_line(clock, job, 1.0, &output, None);
        assert_eq!(line["job_mode"], "hermetic");
        assert_eq!(line["header_bytes"], 100);
        assert!(line["text_reason"].is_null());
        output.hermetic = false;
        let line = super::remote_line(clock, job, 1.0, &output, Some("#embed"));
        assert_eq!(line["job_mode"], "text");
        assert_eq!(line["text_reason"], "#embed");
        let line = super::remote_line(clock, job, 1.0, &output, None);
        assert_eq!(line["text_reason"], "the worker does not run hermetic jobs");
    }

    #[test]
    fn cpu_is_read_after_the_command_name() {
        // pid (comm with ") (" in it) state ppid … utime stime cutime cstime
        let stat = "42 (a) (b c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 20 10 20 0 1 0";
        assert_eq!(super::cpu_ms_of(stat), Some(400));
        assert_eq!(super::cpu_ms_of("42 (x) S 1"), None);
        assert!(super::cpu_ms().is_some());
    }
}
