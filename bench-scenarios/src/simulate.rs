//! `gridcc-bench simulate`: replays a job trace as `make -jJ` would release
//! it, on simulated workers of the given speeds, with one or every placement
//! policy of `gridcc-scheduler`, and reports each policy's makespan against
//! the lower bound no policy can beat. The model (processor-sharing workers,
//! a FIFO queue, exact costs) is `gridcc_scheduler::sim`'s; this module only
//! reads the inputs and shapes the report.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::{PossibleValuesParser, RangedU64ValueParser};
use gridcc_scheduler::sim::{self, SimWorker};
use gridcc_scheduler::{by_name, POLICY_NAMES};
use serde::Serialize;

use crate::UsageError;

/// The arguments of `gridcc-bench simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Job trace: JSON lines, each with `cost_s` (seconds on a 1.0-CPU
    /// worker) and optionally `estimate_s` (what the policy is told); other
    /// fields are ignored, so a coordinator's --trace-out file works as is.
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,

    /// Worker speeds in CPUs, comma-separated (1.0 = one full core).
    #[arg(
        long,
        value_name = "CPUS",
        value_delimiter = ',',
        required = true,
        // So that `--workers -1` is a bad speed, not an unknown flag.
        allow_negative_numbers = true,
        value_parser = parse_speed
    )]
    pub workers: Vec<f64>,

    /// Jobs each worker runs at once, comma-separated, one per worker
    /// [default: each speed rounded up, at least 1].
    #[arg(
        long,
        value_name = "N",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub slots: Vec<u32>,

    /// Parallelism of the simulated `make -jJ`: jobs released and not yet
    /// finished at any time.
    #[arg(
        short = 'j',
        long,
        value_name = "J",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub jobs: usize,

    /// Placement policy to simulate, or `all` for every one.
    #[arg(long, value_name = "NAME", value_parser = policy_names())]
    pub policy: String,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn policy_names() -> PossibleValuesParser {
    PossibleValuesParser::new(POLICY_NAMES.iter().copied().chain(["all"]))
}

/// A worker speed: a positive, finite number of CPUs. The simulator would
/// treat any other value as a dead worker; on the command line it is a typo.
pub(crate) fn parse_speed(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a positive number of CPUs")),
    }
}

impl Args {
    /// The simulated workers: one per `--workers` speed, with its `--slots`
    /// count or, without `--slots`, `ceil(speed)` slots (at least one), as
    /// `gridcc-worker` defaults to for a CPU quota.
    pub fn sim_workers(&self) -> Result<Vec<SimWorker>, UsageError> {
        workers_with_slots(&self.workers, &self.slots)
    }

    /// The policies to run, in `POLICY_NAMES` order for `all`.
    fn policies(&self) -> Vec<&str> {
        if self.policy == "all" {
            POLICY_NAMES.to_vec()
        } else {
            vec![self.policy.as_str()]
        }
    }
}

/// Workers of the given speeds, with `slots` (one per worker) or
/// `ceil(speed)` slots each.
pub(crate) fn workers_with_slots(
    speeds: &[f64],
    slots: &[u32],
) -> Result<Vec<SimWorker>, UsageError> {
    if slots.is_empty() {
        return Ok(speeds.iter().map(|&s| SimWorker::with_quota(s)).collect());
    }
    if slots.len() != speeds.len() {
        return Err(UsageError::SlotsMismatch {
            workers: speeds.len(),
            slots: slots.len(),
        });
    }
    Ok(speeds
        .iter()
        .zip(slots)
        .map(|(&speed, &slots)| SimWorker { speed, slots })
        .collect())
}

/// Everything `simulate` found: the trace, and one entry per policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The trace file, as given.
    pub trace: String,
    /// Jobs in the trace.
    pub jobs: usize,
    /// Their summed cost, in seconds on a 1.0-CPU worker.
    pub total_cost_s: f64,
    /// The simulated `make -j` value.
    pub parallelism: usize,
    pub policies: Vec<PolicyReport>,
}

/// One policy's simulated build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub makespan_s: f64,
    /// The same for every policy: it depends on trace, workers and `-j` only.
    pub lower_bound_s: f64,
    /// `lower_bound_s / makespan_s`, at most 1 (1 for an empty trace).
    pub efficiency: f64,
    /// How often the policy held a job back although a slot was free.
    pub waits: u64,
    /// Per worker, in `--workers` order.
    pub workers: Vec<WorkerReport>,
}

/// What one worker did under one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerReport {
    pub speed: f64,
    pub slots: u32,
    pub jobs: usize,
    /// Seconds during which it ran at least one job.
    pub busy_s: f64,
    /// `busy_s / makespan_s`.
    pub utilization: f64,
}

/// Runs `gridcc-bench simulate`.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    let workers = args.sim_workers()?;
    let path = args.trace.display();
    let text =
        std::fs::read_to_string(&args.trace).with_context(|| format!("reading trace {path}"))?;
    // The parser's error already says "trace line N: …".
    let jobs = sim::parse_trace(&text).with_context(|| path.to_string())?;
    let policies = args
        .policies()
        .into_iter()
        .map(|name| {
            let mut policy = by_name(name)?;
            let r = sim::simulate(&jobs, &workers, args.jobs, policy.as_mut())
                .with_context(|| format!("simulating policy {name}"))?;
            Ok(PolicyReport {
                policy: r.policy.to_owned(),
                makespan_s: r.makespan_s,
                lower_bound_s: r.lower_bound_s,
                efficiency: r.efficiency,
                waits: r.waits,
                workers: r
                    .workers
                    .iter()
                    .map(|w| WorkerReport {
                        speed: w.speed,
                        slots: w.slots,
                        jobs: w.jobs,
                        busy_s: w.busy_s,
                        utilization: w.utilization,
                    })
                    .collect(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Report {
        trace: path.to_string(),
        jobs: jobs.len(),
        total_cost_s: jobs.iter().map(|j| j.cost_s).sum(),
        parallelism: args.jobs,
        policies,
    })
}

impl Report {
    /// Writes the report as text or, with `json`, as one pretty-printed JSON
    /// document followed by a newline.
    pub fn write_to(&self, out: &mut impl std::io::Write, json: bool) -> std::io::Result<()> {
        if json {
            serde_json::to_writer_pretty(&mut *out, self)?;
            writeln!(out)?;
        } else {
            write!(out, "{self}")?;
        }
        out.flush()
    }
}

/// The text report: a summary line per policy, then each policy's workers.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let workers = self.policies.first().map_or(0, |p| p.workers.len());
        writeln!(
            f,
            "trace {}: {} jobs, {:.3} s of work at 1.0 CPU; make -j{} on {} workers",
            self.trace, self.jobs, self.total_cost_s, self.parallelism, workers
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<14} {:>12} {:>14} {:>11} {:>6}",
            "policy", "makespan_s", "lower_bound_s", "efficiency", "waits"
        )?;
        for p in &self.policies {
            writeln!(
                f,
                "{:<14} {:>12.3} {:>14.3} {:>11.3} {:>6}",
                p.policy, p.makespan_s, p.lower_bound_s, p.efficiency, p.waits
            )?;
        }
        for p in &self.policies {
            writeln!(f)?;
            writeln!(f, "{} per worker:", p.policy)?;
            writeln!(
                f,
                "  {:>6} {:>7} {:>5} {:>5} {:>10} {:>11}",
                "worker", "speed", "slots", "jobs", "busy_s", "utilization"
            )?;
            for (i, w) in p.workers.iter().enumerate() {
                writeln!(
                    f,
                    "  {:>6} {:>7.3} {:>5} {:>5} {:>10.3} {:>11.3}",
                    i, w.speed, w.slots, w.jobs, w.busy_s, w.utilization
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = ["gridcc-bench", "simulate", "--trace", "t.jsonl"];
        let cli = Cli::try_parse_from(base.iter().chain(extra))?;
        match cli.command {
            Command::Simulate(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn args(trace: PathBuf, workers: &[f64], slots: &[u32], jobs: usize, policy: &str) -> Args {
        Args {
            trace,
            workers: workers.to_vec(),
            slots: slots.to_vec(),
            jobs,
            policy: policy.to_owned(),
            json: false,
        }
    }

    #[test]
    fn argument_validation() {
        let ok = |extra: &[&str]| parse(extra).map(|_| ()).map_err(|e| e.kind());
        let base = ["--workers", "1", "-j", "2", "--policy", "weighted"];
        assert_eq!(ok(&base), Ok(()));
        // Table: a bad argument and clap's verdict on it.
        use clap::error::ErrorKind::*;
        let cases: &[(&[&str], _)] = &[
            (
                &["--workers", "0", "-j", "2", "--policy", "p2c"],
                ValueValidation,
            ),
            (
                &["--workers", "-1", "-j", "2", "--policy", "p2c"],
                ValueValidation,
            ),
            (
                &["--workers", "nan", "-j", "2", "--policy", "p2c"],
                ValueValidation,
            ),
            (
                &["--workers", "1,x", "-j", "2", "--policy", "p2c"],
                ValueValidation,
            ),
            (
                &["--workers", "1", "-j", "0", "--policy", "p2c"],
                ValueValidation,
            ),
            (
                &["--workers", "1", "-j", "2", "--policy", "best"],
                InvalidValue,
            ),
            (
                &[
                    "--workers",
                    "1",
                    "--slots",
                    "0",
                    "-j",
                    "2",
                    "--policy",
                    "p2c",
                ],
                ValueValidation,
            ),
            (&["-j", "2", "--policy", "p2c"], MissingRequiredArgument),
            (
                &["--workers", "1", "--policy", "p2c"],
                MissingRequiredArgument,
            ),
            (&["--workers", "1", "-j", "2"], MissingRequiredArgument),
        ];
        for (extra, kind) in cases {
            assert_eq!(ok(extra), Err(*kind), "{extra:?}");
        }
        for name in POLICY_NAMES.iter().chain(&["all"]) {
            assert_eq!(ok(&["--workers", "1", "-j", "1", "--policy", name]), Ok(()));
        }
    }

    #[test]
    fn slots_default_to_ceil_speed_and_must_match_workers() {
        let a = parse(&["--workers", "0.5,1.0,1.1,2.5", "-j", "4", "--policy", "all"]).unwrap();
        let slots: Vec<u32> = a.sim_workers().unwrap().iter().map(|w| w.slots).collect();
        assert_eq!(slots, [1, 1, 2, 3]);

        let a = parse(&[
            "--workers",
            "0.5,2",
            "--slots",
            "3,1",
            "-j",
            "4",
            "--policy",
            "all",
        ])
        .unwrap();
        let w = a.sim_workers().unwrap();
        assert_eq!((w[0].slots, w[1].slots), (3, 1));

        let a = parse(&[
            "--workers",
            "1,1,1",
            "--slots",
            "1,2",
            "-j",
            "4",
            "--policy",
            "all",
        ])
        .unwrap();
        let err = a.sim_workers().unwrap_err();
        assert_eq!(
            err,
            UsageError::SlotsMismatch {
                workers: 3,
                slots: 2
            }
        );
        // And `run` reports it as a usage error (exit 2) before reading
        // the trace, which does not exist here.
        let err = run(&a).unwrap_err();
        assert_eq!(crate::exit_code(&err), 2);
        assert!(!err.to_string().contains('\n'));
    }

    fn trace_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn four_unit_jobs_on_two_cores_take_two_seconds() {
        let f = trace_file(&"{\"cost_s\": 1.0}\n".repeat(4));
        let r = run(&args(f.path().into(), &[1.0, 1.0], &[], 4, "all")).unwrap();
        assert_eq!((r.jobs, r.total_cost_s, r.parallelism), (4, 4.0, 4));
        assert_eq!(r.policies.len(), POLICY_NAMES.len());
        for p in &r.policies {
            assert_eq!(p.makespan_s, 2.0, "{}", p.policy);
            assert_eq!(p.lower_bound_s, 2.0);
            assert_eq!(p.efficiency, 1.0);
            assert_eq!(p.workers.iter().map(|w| w.jobs).sum::<usize>(), 4);
            for w in &p.workers {
                assert_eq!((w.speed, w.slots, w.jobs), (1.0, 1, 2), "{}", p.policy);
                assert_eq!((w.busy_s, w.utilization), (2.0, 1.0));
            }
        }
    }

    #[test]
    fn one_policy_and_a_shared_worker() {
        // Two jobs share one 1.0-CPU worker with 2 slots: each runs at half
        // speed until the short one ends at t = 2, then the long one has 1 s
        // left alone: makespan 3 = total work / one core, so efficiency 1.
        let f = trace_file("{\"cost_s\": 1}\n\n{\"cost_s\": 2, \"file\": \"b.c\"}\n");
        let r = run(&args(f.path().into(), &[1.0], &[2], 2, "weighted")).unwrap();
        assert_eq!(r.policies.len(), 1);
        let p = &r.policies[0];
        assert_eq!(p.policy, "weighted");
        assert!((p.makespan_s - 3.0).abs() < 1e-9);
        assert!((p.efficiency - 1.0).abs() < 1e-9);
        assert_eq!(p.workers[0].slots, 2);
    }

    #[test]
    fn json_shape() {
        let f = trace_file("{\"cost_s\": 1.0}\n{\"cost_s\": 3.0}\n");
        let r = run(&args(f.path().into(), &[1.0, 0.5], &[], 2, "all")).unwrap();
        let mut printed = Vec::new();
        r.write_to(&mut printed, true).unwrap();
        assert!(printed.ends_with(b"}\n"));
        let v: serde_json::Value = serde_json::from_slice(&printed).unwrap();
        assert_eq!(v["jobs"], 2);
        assert_eq!(v["total_cost_s"], 4.0);
        assert_eq!(v["parallelism"], 2);
        assert!(v["trace"].is_string());
        let policies = v["policies"].as_array().unwrap();
        let names: Vec<&str> = policies
            .iter()
            .map(|p| p["policy"].as_str().unwrap())
            .collect();
        assert_eq!(names, POLICY_NAMES);
        for p in policies {
            for key in ["makespan_s", "lower_bound_s", "efficiency"] {
                assert!(p[key].is_f64(), "{key} in {p}");
            }
            let workers = p["workers"].as_array().unwrap();
            assert_eq!(workers.len(), 2);
            assert_eq!(workers[1]["speed"], 0.5);
            assert_eq!(workers[1]["slots"], 1);
            for w in workers {
                let mut keys: Vec<&str> =
                    w.as_object().unwrap().keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(keys, ["busy_s", "jobs", "slots", "speed", "utilization"]);
            }
        }
    }

    #[test]
    fn bad_traces_are_one_line_errors() {
        let f = trace_file("{\"cost_s\": 1}\n{\"cost_s\": \"x\"}\n");
        let err = run(&args(f.path().into(), &[1.0], &[], 1, "p2c")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("trace line 2: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert_eq!(crate::exit_code(&err), 1);

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.jsonl");
        let err = run(&args(missing, &[1.0], &[], 1, "p2c")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("reading trace ") && msg.contains("nope.jsonl"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
        assert_eq!(crate::exit_code(&err), 1);
    }

    #[test]
    fn text_report_lists_every_policy_and_worker() {
        let f = trace_file(&"{\"cost_s\": 1.0}\n".repeat(4));
        let r = run(&args(f.path().into(), &[1.0, 1.0], &[], 4, "all")).unwrap();
        let text = r.to_string();
        assert!(text.contains("4 jobs, 4.000 s of work"), "{text}");
        for name in POLICY_NAMES {
            let row = text
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("no row for {name} in\n{text}"));
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells[1..4], ["2.000", "2.000", "1.000"], "{row}");
            assert!(text.contains(&format!("{name} per worker:")));
        }
    }
}
