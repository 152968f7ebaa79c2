//! What a run leaves in `runs.jsonl` ([`RunRecord`] and its parts) and
//! the machine stated beside every absolute number ([`Machine`], in
//! `machine.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::BackendKind;
use crate::backend::WorkerSpec;
use crate::stats::Spread;

/// One run, as stored in `runs.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Position in the session (0, 1, …): the interleaving is visible.
    pub index: usize,
    pub repetition: u32,
    pub configuration: String,
    /// Empty for the plain local build.
    pub policy: String,
    pub backend: BackendKind,
    pub make_jobs: u32,
    pub client_cpus: Option<f64>,
    pub workers: Vec<WorkerSpec>,
    pub started_unix_ms: u64,
    /// When the build command started (after cleaning and the grid's
    /// start): time zero of the replay.
    #[serde(default)]
    pub build_started_unix_ms: Option<u64>,
    /// Wall clock of the build command alone.
    pub wall_s: f64,
    /// The build, its check and every server survived, and every object is
    /// identical to the local build's.
    pub ok: bool,
    /// Why not, when not.
    pub failure: Option<String>,
    pub cpu: CpuRecord,
    pub jobs: JobsRecord,
    /// Per remote job, from the coordinator's trace.
    pub compile_s: Spread,
    pub queue_s: Spread,
    /// Per remote job, from the wrapper's `GRIDCC_JOB_LOG`: its wall time
    /// minus the worker's compile time (preprocessing, transfer, waiting
    /// for a slot, writing the object).
    #[serde(default)]
    pub overhead_ms: Spread,
    /// Compiles the wrapper ran on the client, by reason (from the job log;
    /// link steps and other non-compiles included).
    #[serde(default)]
    pub local_compiles: BTreeMap<String, u64>,
    pub objects: ObjectsRecord,
    /// What the report must state beside this run's numbers (a peer's
    /// objects that differ from the local build's).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Relative path of this run's directory (logs, trace).
    pub dir: String,
}

/// CPU seconds (user + system). A figure that could not be measured is
/// NaN here and `null` in runs.jsonl.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuRecord {
    /// make, the wrapper, preprocessing, linking: the client's side.
    #[serde(deserialize_with = "null_as_nan")]
    pub client_s: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub coordinator_s: f64,
    #[serde(deserialize_with = "nulls_as_nan")]
    pub workers_s: Vec<f64>,
    #[serde(deserialize_with = "null_as_nan")]
    pub total_s: f64,
}

/// serde_json writes a NaN as `null`; read it back as NaN.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nulls_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsRecord {
    /// Compiled on a worker (the coordinator's count).
    pub remote: u64,
    /// Assign requests the coordinator answered "compile locally".
    pub told_local: u64,
    pub failed: u64,
    /// Jobs silently compiled on the client although a grid was there: the
    /// grid did less than it seems. Never true for `local-make`.
    pub fell_back: bool,
    pub per_worker: Vec<WorkerRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The coordinator's id for it (the `worker` field of trace lines).
    pub id: u64,
    pub address: String,
    pub cpus: f64,
    pub slots: u32,
    pub jobs: u64,
    /// Time with at least one job running.
    pub busy_s: f64,
    /// busy_s / wall_s.
    pub utilization: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectsRecord {
    pub found: usize,
    pub identical: usize,
    /// Up to 20 differing paths.
    pub different: Vec<String>,
    pub missing: usize,
}

/// The machine, stated beside every absolute number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub backend: String,
    pub notes: Vec<String>,
    pub gcc: String,
}

impl Machine {
    pub(super) fn describe(backend: &str, notes: &[String]) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let gcc = std::process::Command::new("gcc")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.lines().next().map(str::to_owned))
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib,
            kernel,
            backend: backend.to_owned(),
            notes: notes.to_vec(),
            gcc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_cpu_is_written_as_null_and_read_back_as_nan() {
        let cpu = CpuRecord {
            client_s: f64::NAN,
            coordinator_s: 0.5,
            workers_s: vec![1.0, f64::NAN],
            total_s: f64::NAN,
        };
        let text = serde_json::to_string(&cpu).unwrap();
        assert!(text.contains(r#""client_s":null"#), "{text}");
        let back: CpuRecord = serde_json::from_str(&text).unwrap();
        assert!(back.client_s.is_nan() && back.total_s.is_nan());
        assert_eq!(back.coordinator_s, 0.5);
        assert_eq!(back.workers_s[0], 1.0);
        assert!(back.workers_s[1].is_nan());
    }
}
