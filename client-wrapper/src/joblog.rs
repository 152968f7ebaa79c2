//! `GRIDCC_JOB_LOG=FILE`: one JSON line per compile the wrapper handled,
//! appended to FILE, for measuring the wrapper itself (the benchmark mode
//! reads it for the per-job overhead). A remote compile's line holds the
//! wrapper's own wall time from entering `main`, the time spent
//! preprocessing, and the worker's compile time; their difference is what
//! the grid cost this job beyond compiling. A local compile's line holds
//! the reason. Every line holds `start_unix_ms`, when the wrapper started
//! (the benchmark's Gantt charts place the job by it, and by its wall
//! time). Writing is best effort: a log that cannot be written never
//! changes a compile's result.

use std::io::Write;
use std::time::Instant;

/// When the wrapper started, for the wall times in the log.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant, std::time::SystemTime);

impl Clock {
    pub fn start() -> Self {
        Self(Instant::now(), std::time::SystemTime::now())
    }

    /// The start as milliseconds since the Unix epoch.
    fn start_unix_ms(&self) -> u64 {
        self.1
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

/// A remote compile that finished (whatever the compiler's exit code).
pub fn remote(clock: Clock, source: &str, preprocess_ms: f64, output: &crate::remote::Output) {
    let shared_hit = output.shared_hit;
    // A shared-cache hit ran no compiler: its whole time is overhead.
    let compile_ms = if shared_hit { 0 } else { output.compile_ms };
    let wall_ms = clock.elapsed_ms();
    append(&serde_json::json!({
        "mode": "remote",
        "source": source,
        "worker": output.worker_addr,
        "wall_ms": round(wall_ms),
        "preprocess_ms": round(preprocess_ms),
        "compile_ms": compile_ms,
        "overhead_ms": round(wall_ms - compile_ms as f64),
        "exit_code": output.exit_code,
        "shared_hit": shared_hit,
        "retried": output.retried,
        "start_unix_ms": clock.start_unix_ms(),
    }));
}

/// A compile answered from the object cache.
pub fn hit(clock: Clock, source: &str) {
    append(&serde_json::json!({
        "mode": "hit",
        "source": source,
        "wall_ms": round(clock.elapsed_ms()),
        "start_unix_ms": clock.start_unix_ms(),
    }));
}

/// A compile the wrapper ran locally, and why.
pub fn local(clock: Clock, source: Option<&str>, reason: &str) {
    append(&serde_json::json!({
        "mode": "local",
        "source": source,
        "reason": reason,
        "wall_ms_before_local": round(clock.elapsed_ms()),
        "start_unix_ms": clock.start_unix_ms(),
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
}
