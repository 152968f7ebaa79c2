//! The `--trace-out` file: one JSON line per finished job, appended and
//! flushed as each job ends, so a crash loses at most the line being
//! written. `gridcc-bench simulate --trace` replays it.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::registry::TraceRecord;

/// An open trace file.
#[derive(Debug)]
pub struct TraceFile {
    file: Mutex<std::fs::File>,
}

impl TraceFile {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends one record. A failed write is logged, not fatal: the trace
    /// is an observation, and placement must go on without it.
    pub fn write(&self, record: &TraceRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&line) {
            tracing::warn!(error = %e, "cannot write to the trace file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        let trace = TraceFile::open(&path).unwrap();
        let record = TraceRecord {
            key: "k".into(),
            preprocessed_bytes: 10,
            worker: 1,
            worker_speed: 0.5,
            queue_s: 0.0,
            compile_s: 2.0,
            cost_s: 1.0,
            start_unix_ms: 1,
            end_unix_ms: 2001,
            exit_code: 0,
            shared_hit: false,
        };
        trace.write(&record);
        trace.write(&record);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["cost_s"], 1.0);
        assert_eq!(v["key"], "k");
    }
}
