//! A run's [`Recording`]: the wrapper's job log (`jobs.jsonl`: when each
//! job started, its wall time, the client's CPU for it) joined with the
//! coordinator's trace (`trace.jsonl`: its cost, when it was placed, its
//! time on the worker) by the job's key, in the shape
//! `gridcc_scheduler::replay` replays. The report replays every run on its
//! own shape and policy to check the model against the measurement, and
//! `gridcc-bench simulate --run` replays one on any other shape.
//!
//! Per job: `after` is the job that ended last before this one started,
//! `gap_s` the time between (or from the build's start); the client CPU is
//! the wrapper's and its preprocessor's; the slot overhead is the time
//! from the placement to the worker's report less the compile (upload,
//! staging, the object's return: the slot stays taken), and the transfer
//! what remains of the wrapper's time after that report (writing the
//! object). A job the
//! trace does not know (a cache hit, a shared-cache answer) has no cost,
//! and its wall time beyond its CPU is a transfer. Compiles the wrapper ran
//! locally are not in the recording: their log line is written before the
//! compiler runs, so their end is unknown; they are counted instead.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use anyhow::{bail, Context};
use gridcc_scheduler::replay::{Recording, ReplayJob};

use crate::run::RunRecord;
use crate::stats::{self, JobLogLine, TraceLine};

/// A recording and what it had to leave out.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub recording: Recording,
    /// Compiles run on the client (told local, fell back): not replayed.
    pub local: usize,
    /// Remote lines whose key the trace does not hold: replayed with no
    /// cost.
    pub unmatched: usize,
    /// The measured compile span: first placement to last worker end, s.
    pub compile_span_s: Option<f64>,
    /// Per replayed job, in the recording's order: what was measured.
    pub measured: Vec<MeasuredJob>,
}

/// Where and when a job ran in the recorded run (seconds from the build's
/// start), to set beside where the replay puts it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MeasuredJob {
    pub source: String,
    /// The coordinator's worker id (see `runs.jsonl`'s `per_worker`).
    pub worker: Option<u64>,
    pub placed_s: Option<f64>,
    pub end_s: Option<f64>,
}

/// Builds the recording of the run in `run_dir` (which holds `jobs.jsonl`
/// and `trace.jsonl`) described by `record`.
pub fn load(run_dir: &Path, record: &RunRecord) -> anyhow::Result<Recorded> {
    let log = stats::read_job_log(&run_dir.join("jobs.jsonl"))?;
    let trace = stats::read_trace(&run_dir.join("trace.jsonl"))?;
    let Some(build_start) = record.build_started_unix_ms else {
        bail!(
            "{}: the run has no build start time (recorded by an older gridcc-bench); it cannot be replayed",
            run_dir.display()
        );
    };
    recording(&log, &trace, build_start, record)
}

/// The pure part of [`load`].
pub fn recording(
    log: &[JobLogLine],
    trace: &[TraceLine],
    build_start_ms: u64,
    record: &RunRecord,
) -> anyhow::Result<Recorded> {
    let mut by_key: BTreeMap<&str, VecDeque<&TraceLine>> = BTreeMap::new();
    for t in trace {
        by_key.entry(t.key.as_str()).or_default().push_back(t);
    }
    struct Job {
        meta: MeasuredJob,
        start_ms: f64,
        end_ms: f64,
        client_cpu_s: f64,
        cost_s: Option<f64>,
        slot_s: f64,
        transfer_s: f64,
    }
    let mut jobs: Vec<Job> = Vec::new();
    let (mut local, mut unmatched) = (0, 0);
    for line in log {
        if line.mode == "local" {
            local += 1;
            continue;
        }
        let (Some(start), Some(wall_ms)) = (line.start_unix_ms, line.wall_ms) else {
            bail!(
                "job log line of mode {:?} has no start time or wall time (written by an older gridcc); the run cannot be replayed",
                line.mode
            );
        };
        let cpu_s = line.cpu_ms.or(line.preprocess_ms).unwrap_or(0.0) / 1000.0;
        let start_ms = start as f64;
        let end_ms = start_ms + wall_ms;
        let placed = match (&line.key, line.mode.as_str()) {
            (Some(k), "remote") => by_key.get_mut(k.as_str()).and_then(VecDeque::pop_front),
            _ => None,
        };
        if line.mode == "remote" && placed.is_none() {
            unmatched += 1;
        }
        let (cost_s, slot_s, transfer_s) = match placed {
            Some(t) if !t.shared_hit && !line.shared_hit => {
                let on_slot = t.end_unix_ms.saturating_sub(t.start_unix_ms) as f64 / 1000.0;
                (
                    Some(t.cost_s.unwrap_or(t.compile_s)),
                    on_slot - t.compile_s,
                    (end_ms - t.end_unix_ms as f64) / 1000.0,
                )
            }
            _ => (None, 0.0, wall_ms / 1000.0 - cpu_s),
        };
        let since = |ms: u64| (ms as f64 - build_start_ms as f64) / 1000.0;
        jobs.push(Job {
            meta: MeasuredJob {
                source: line.source.clone().unwrap_or_default(),
                worker: placed.map(|t| t.worker),
                placed_s: placed.map(|t| since(t.start_unix_ms)),
                end_s: placed.map(|t| since(t.end_unix_ms)),
            },
            start_ms,
            end_ms,
            client_cpu_s: cpu_s,
            cost_s,
            slot_s: slot_s.max(0.0),
            transfer_s: transfer_s.max(0.0),
        });
    }
    jobs.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    let build_start = build_start_ms as f64;
    let build_end = build_start + record.wall_s * 1000.0;
    let replay_jobs: Vec<ReplayJob> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            // The job that ended last before this one started.
            let after = jobs[..i]
                .iter()
                .enumerate()
                .filter(|(_, p)| p.end_ms <= j.start_ms)
                .max_by(|a, b| a.1.end_ms.total_cmp(&b.1.end_ms))
                .map(|(k, _)| k);
            let from = after.map_or(build_start, |k| jobs[k].end_ms);
            ReplayJob {
                after,
                gap_s: ((j.start_ms - from) / 1000.0).max(0.0),
                client_cpu_s: j.client_cpu_s,
                cost_s: j.cost_s,
                estimate_s: None,
                slot_s: j.slot_s,
                transfer_s: j.transfer_s,
            }
        })
        .collect();
    let last_end = jobs.iter().map(|j| j.end_ms).fold(build_start, f64::max);
    let compile_span_s = {
        let first = trace.iter().map(|t| t.start_unix_ms).min();
        let last = trace.iter().map(|t| t.end_unix_ms).max();
        first
            .zip(last)
            .map(|(a, b)| b.saturating_sub(a) as f64 / 1000.0)
    };
    Ok(Recorded {
        recording: Recording {
            jobs: replay_jobs,
            tail_s: ((build_end - last_end) / 1000.0).max(0.0),
            parallelism: record.make_jobs.max(1) as usize,
            client_cpus: record.client_cpus,
        },
        local,
        unmatched,
        compile_span_s,
        measured: jobs.into_iter().map(|j| j.meta).collect(),
    })
}

/// The replay's own compile span: first placement to last worker end.
pub fn replayed_compile_span_s(
    rec: &Recording,
    rep: &gridcc_scheduler::replay::ReplayReport,
) -> Option<f64> {
    let placed = rep.jobs.iter().filter_map(|j| j.placed.map(|(_, t)| t));
    let first = placed.fold(f64::INFINITY, f64::min);
    let last = rep
        .jobs
        .iter()
        .zip(&rec.jobs)
        .filter(|(j, _)| j.placed.is_some())
        .map(|(j, r)| j.finish_s - r.transfer_s)
        .fold(f64::NEG_INFINITY, f64::max);
    (first.is_finite() && last.is_finite()).then_some(last - first)
}

/// Finds the record of the run whose directory is `run_dir`
/// (`RESULTS/runs/NNN-…`) in `RESULTS/runs.jsonl`.
pub fn record_of(run_dir: &Path) -> anyhow::Result<RunRecord> {
    let abs = std::fs::canonicalize(run_dir).with_context(|| format!("{}", run_dir.display()))?;
    let results = abs
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{}: not a run directory", run_dir.display()))?;
    let name = abs.file_name().map(|n| n.to_string_lossy().into_owned());
    let runs = crate::report::read_runs(&results.join("runs.jsonl"))?;
    runs.into_iter()
        .find(|r| Some(r.dir.trim_start_matches("runs/")) == name.as_deref())
        .with_context(|| {
            format!(
                "{}: no run of {} has this directory",
                run_dir.display(),
                results.join("runs.jsonl").display()
            )
        })
}

/// The arguments of `gridcc-bench replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A run's directory inside a results directory
    /// (`RESULTS/runs/NNN-CONFIGURATION-POLICY`), holding `jobs.jsonl` and
    /// `trace.jsonl`.
    #[arg(value_name = "RUN_DIR")]
    pub run: std::path::PathBuf,
    /// Worker speeds in CPUs, comma-separated [default: the run's shape].
    #[arg(
        long,
        value_name = "CPUS",
        value_delimiter = ',',
        allow_negative_numbers = true,
        value_parser = crate::simulate::parse_speed
    )]
    pub workers: Vec<f64>,
    /// Jobs each worker runs at once, one per worker [default: each speed
    /// rounded up, at least 1; the run's slots with the run's shape].
    #[arg(long, value_name = "N", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: Vec<u32>,
    /// Placement policy, or `all` [default: the run's].
    #[arg(long, value_name = "NAME", value_parser = crate::simulate::policy_names())]
    pub policy: Option<String>,
    /// `recorded`: each job released after the job it waited for, with the
    /// client's CPU and transfers (the build as it happened); `make`: the
    /// old model, jobs released in order whenever fewer than `-j` are out,
    /// compile costs only.
    #[arg(long, value_enum, default_value_t = Release::Recorded)]
    pub release: Release,
    /// Also list the N costliest jobs: where and when they ran in the
    /// recorded run, and where and when each policy's replay runs them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub heavy: usize,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How the replay releases jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    Recorded,
    Make,
}

/// What `gridcc-bench replay` found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub run: String,
    pub release: Release,
    /// The run as measured.
    pub measured_wall_s: f64,
    pub measured_compile_span_s: Option<f64>,
    pub measured_policy: String,
    pub measured_workers: Vec<f64>,
    pub workers: Vec<f64>,
    pub jobs: usize,
    /// Client compiles (links, fallbacks) left out of the replay.
    pub local_jobs: usize,
    pub unmatched_jobs: usize,
    pub policies: Vec<PolicyReplay>,
    /// The `--heavy` costliest jobs, costliest first.
    pub heavy: Vec<HeavyJob>,
}

/// One of the costliest jobs, measured and replayed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeavyJob {
    pub cost_s: f64,
    pub measured: MeasuredJob,
    /// Per policy (in `policies` order): worker index, placed, finished.
    pub replayed: Vec<Option<(usize, f64, f64)>>,
}

/// One policy's replay.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicyReplay {
    pub policy: String,
    /// Whole build (`recorded`) or compile jobs only (`make`).
    pub makespan_s: f64,
    /// `max(work / throughput, largest job / fastest worker)`.
    pub naive_bound_s: f64,
    /// Release chain, client CPU, grid work (`recorded` only).
    pub trace_bound_s: Option<f64>,
    pub path_s: Option<f64>,
    pub client_s: Option<f64>,
    pub work_s: Option<f64>,
}

/// Runs `gridcc-bench replay`.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    let record = record_of(&args.run)?;
    let recorded = load(&args.run, &record)?;
    let workers: Vec<gridcc_scheduler::sim::SimWorker> = if args.workers.is_empty() {
        if !args.slots.is_empty() {
            bail!("--slots needs --workers");
        }
        crate::report::sim_workers(&record)
    } else {
        crate::simulate::workers_with_slots(&args.workers, &args.slots)?
    };
    let names: Vec<String> = match args.policy.as_deref() {
        Some("all") => gridcc_scheduler::POLICY_NAMES
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        Some(p) => vec![p.to_owned()],
        None => vec![record.policy.clone()],
    };
    let rec = &recorded.recording;
    let sim_jobs: Vec<gridcc_scheduler::sim::SimJob> = rec
        .jobs
        .iter()
        .filter_map(|j| j.cost_s.map(gridcc_scheduler::sim::SimJob::new))
        .collect();
    let naive = gridcc_scheduler::sim::lower_bound_s(&sim_jobs, &workers, rec.parallelism);
    let mut placements: Vec<Vec<Option<(usize, f64, f64)>>> = Vec::new();
    let policies = names
        .iter()
        .map(|name| -> anyhow::Result<PolicyReplay> {
            let mut policy = gridcc_scheduler::by_name(name)?;
            Ok(match args.release {
                Release::Recorded => {
                    let r = gridcc_scheduler::replay::replay(rec, &workers, policy.as_mut())
                        .with_context(|| format!("replaying with {name}"))?;
                    placements.push(
                        r.jobs
                            .iter()
                            .map(|j| j.placed.map(|(w, t)| (w, t, j.finish_s)))
                            .collect(),
                    );
                    PolicyReplay {
                        policy: name.clone(),
                        makespan_s: r.makespan_s,
                        naive_bound_s: naive,
                        trace_bound_s: Some(r.bound.bound_s),
                        path_s: Some(r.bound.path_s),
                        client_s: Some(r.bound.client_s),
                        work_s: Some(r.bound.work_s),
                    }
                }
                Release::Make => {
                    let r = gridcc_scheduler::sim::simulate(
                        &sim_jobs,
                        &workers,
                        rec.parallelism,
                        policy.as_mut(),
                    )
                    .with_context(|| format!("simulating {name}"))?;
                    PolicyReplay {
                        policy: name.clone(),
                        makespan_s: r.makespan_s,
                        naive_bound_s: naive,
                        trace_bound_s: None,
                        path_s: None,
                        client_s: None,
                        work_s: None,
                    }
                }
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut order: Vec<usize> = (0..rec.jobs.len())
        .filter(|&i| rec.jobs[i].cost_s.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        let c = |i: usize| rec.jobs[i].cost_s.unwrap_or(0.0);
        c(b).total_cmp(&c(a))
    });
    let heavy = order
        .into_iter()
        .take(args.heavy)
        .map(|i| HeavyJob {
            cost_s: rec.jobs[i].cost_s.unwrap_or(0.0),
            measured: recorded.measured[i].clone(),
            replayed: placements.iter().map(|p| p[i]).collect(),
        })
        .collect();
    Ok(Report {
        heavy,
        run: args.run.display().to_string(),
        release: args.release,
        measured_wall_s: record.wall_s,
        measured_compile_span_s: recorded.compile_span_s,
        measured_policy: record.policy.clone(),
        measured_workers: record.workers.iter().map(|w| w.cpus).collect(),
        workers: workers.iter().map(|w| w.speed).collect(),
        jobs: rec.jobs.len(),
        local_jobs: recorded.local,
        unmatched_jobs: recorded.unmatched,
        policies,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x}"))
                .collect::<Vec<_>>()
                .join("+")
        };
        writeln!(
            f,
            "run {}: measured {:.2} s wall, compile span {}, policy {}, workers {}",
            self.run,
            self.measured_wall_s,
            self.measured_compile_span_s
                .map_or_else(|| "—".to_owned(), |x| format!("{x:.2} s")),
            self.measured_policy,
            list(&self.measured_workers)
        )?;
        writeln!(
            f,
            "replay ({} release) of {} jobs ({} client compiles such as links left in the gaps, {} without a trace line) on workers {}",
            match self.release {
                Release::Recorded => "recorded",
                Release::Make => "make -jJ",
            },
            self.jobs,
            self.local_jobs,
            self.unmatched_jobs,
            list(&self.workers)
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<14} {:>11} {:>13} {:>13} {:>8} {:>9} {:>8} {:>10} {:>10}",
            "policy",
            "makespan_s",
            "naive_bound_s",
            "trace_bound_s",
            "path_s",
            "client_s",
            "work_s",
            "eff_naive",
            "eff_trace"
        )?;
        let opt = |x: Option<f64>| x.map_or_else(|| "—".to_owned(), |x| format!("{x:.3}"));
        for p in &self.policies {
            writeln!(
                f,
                "{:<14} {:>11.3} {:>13.3} {:>13} {:>8} {:>9} {:>8} {:>10.3} {:>10}",
                p.policy,
                p.makespan_s,
                p.naive_bound_s,
                opt(p.trace_bound_s),
                opt(p.path_s),
                opt(p.client_s),
                opt(p.work_s),
                p.naive_bound_s / p.makespan_s,
                opt(p.trace_bound_s.map(|b| b / p.makespan_s))
            )?;
        }
        if !self.heavy.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "costliest jobs (s from the build's start; measured worker is the coordinator's id, replayed the index in --workers):"
            )?;
            for h in &self.heavy {
                let m = &h.measured;
                write!(
                    f,
                    "  {:<28} cost {:>7.3}  measured: worker {} {}–{}",
                    m.source,
                    h.cost_s,
                    m.worker.map_or_else(|| "?".to_owned(), |w| w.to_string()),
                    opt(m.placed_s),
                    opt(m.end_s)
                )?;
                for (p, r) in self.policies.iter().zip(&h.replayed) {
                    if let Some((w, a, b)) = r {
                        write!(f, "  {}: worker {w} {a:.3}–{b:.3}", p.policy)?;
                    }
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/recorded/calc-smoke/runs/002-2x0.5-least-loaded")
    }

    #[test]
    fn a_recorded_run_replays_close_to_its_measured_wall() {
        let record = record_of(&fixture()).unwrap();
        let recorded = load(&fixture(), &record).unwrap();
        let rec = &recorded.recording;
        // 13 compiles; the link went through the wrapper as a local job.
        assert_eq!(
            (rec.jobs.len(), recorded.local, recorded.unmatched),
            (13, 1, 0)
        );
        assert!(rec.jobs[0].after.is_none());
        assert!(rec.jobs.iter().all(|j| j.cost_s.is_some()));
        let workers = crate::report::sim_workers(&record);
        let mut p = gridcc_scheduler::by_name(&record.policy).unwrap();
        let rep = gridcc_scheduler::replay::replay(rec, &workers, p.as_mut()).unwrap();
        let ratio = record.wall_s / rep.makespan_s;
        assert!((0.9..=1.1).contains(&ratio), "measured / replay = {ratio}");
        assert!(rep.bound.bound_s <= rep.makespan_s);
        // On twice the grid the replay is faster, but not twice as fast:
        // the client's preprocessing and make's serial steps stay.
        let double = [gridcc_scheduler::sim::SimWorker::with_quota(1.0); 2];
        let mut p = gridcc_scheduler::by_name(&record.policy).unwrap();
        let faster = gridcc_scheduler::replay::replay(rec, &double, p.as_mut()).unwrap();
        assert!(faster.makespan_s < rep.makespan_s);
        assert!(faster.makespan_s > rep.makespan_s / 2.0);
    }

    #[test]
    fn old_job_logs_are_refused_with_one_line() {
        let log = [JobLogLine {
            mode: "remote".into(),
            overhead_ms: Some(1.0),
            reason: None,
            source: None,
            key: Some("k".into()),
            start_unix_ms: None,
            wall_ms: None,
            cpu_ms: None,
            preprocess_ms: None,
            shared_hit: false,
            worker: None,
            wall_ms_before_local: None,
            exit_code: None,
            retried: false,
        }];
        let record = record_of(&fixture()).unwrap();
        let err = recording(&log, &[], 0, &record).unwrap_err().to_string();
        assert!(err.contains("older gridcc") && !err.contains('\n'), "{err}");
    }
}
