//! `gridcc-bench report DIR`: everything in a results directory computed
//! from its raw `runs.jsonl` (and the per-run traces), so it can be redone at
//! any time: `summary.md`, `results.csv`, `speedup.svg` (speedup per
//! configuration beside the ideal line), `efficiency.svg` (naive
//! efficiency beside efficiency against the trace-aware bound, with each
//! cell's speedup interval and the replay's measured / predicted) and one
//! `utilization-*.svg` per
//! cell (each worker's busy fraction over time in the first successful
//! repetition), one `gantt-<cell>-<rep>.svg` per run through the grid
//! (its jobs per worker slot, from the job log; `summary.md` links each
//! cell's fastest and slowest). The verdicts (PASS/FAIL per threshold of the scenario file
//! copied into DIR) are printed, stored in `verdicts.json`, and decide the
//! exit status.
//!
//! Here: reading the results and computing each cell's [`CellSummary`]
//! (medians, intervals, bounds, replay); `markdown` writes `summary.md`
//! and `results.csv`, `charts` the SVGs, `compare` `gridcc-bench compare`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::run::{Machine, RunRecord};
use crate::scenario::{Cell, Scenario, LOCAL_MAKE};
use crate::stats::{self, bootstrap_median_ci, difference, median, Difference, Interval};

mod charts;
mod compare;
mod markdown;

use charts::{efficiency_svg, speedup_svg, utilization_svg};
pub use compare::compare;
use markdown::{csv, markdown};

/// The arguments of `gridcc-bench report`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A results directory written by `gridcc-bench run`.
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

/// One cell's summary over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    pub configuration: String,
    pub policy: String,
    pub total_cpus: f64,
    /// Every run's wall clock, in run order; failed runs included.
    pub wall_s: Vec<f64>,
    pub ok_runs: usize,
    pub runs: usize,
    /// Median wall clock of the successful runs.
    pub median_s: f64,
    /// Mean and sample standard deviation of the successful runs.
    pub mean_s: f64,
    pub sd_s: f64,
    /// Median of the paired speedups (`speedup_runs`); baseline median /
    /// this median when no repetition has both.
    pub speedup: f64,
    /// Per repetition in which both succeeded: the baseline's wall clock in
    /// that repetition / this cell's. Pairing within a repetition cancels
    /// the drift that interleaving spreads over all cells.
    #[serde(default)]
    pub speedup_runs: Vec<f64>,
    /// Bootstrap 95 % interval of the median paired speedup (none with
    /// fewer than two pairs).
    #[serde(default)]
    pub speedup_ci: Option<Interval>,
    /// Bootstrap 95 % interval of the median wall clock.
    #[serde(default)]
    pub wall_ci: Option<Interval>,
    /// Total worker CPU / the baseline's (client CPU for `local-make`).
    pub ideal: f64,
    pub efficiency: f64,
    /// Median total CPU seconds / the local build's.
    pub cost_ratio: f64,
    /// Runs in which jobs fell back to the client.
    pub fell_back: usize,
    /// Median over the successful runs of the measured compile span: from
    /// the first remote job's start to the last one's end (the coordinator's
    /// trace), the part of the build the simulator models.
    pub compile_span_s: Option<f64>,
    /// The simulator's makespan for this shape and policy on the first
    /// successful run's own trace (compile jobs only, no link steps).
    pub simulated_s: Option<f64>,
    /// The replay (`gridcc_scheduler::replay`) of each successful run's own
    /// recording on its shape and policy: median predicted wall clock.
    #[serde(default)]
    pub predicted_s: Option<f64>,
    /// Median over runs of measured wall / predicted wall.
    #[serde(default)]
    pub measured_vs_predicted: Option<f64>,
    /// Median over runs of the replay's compile span (first placement to
    /// last worker end), to set beside `compile_span_s`.
    #[serde(default)]
    pub predicted_span_s: Option<f64>,
    /// Median trace-aware lower bound (release chain, client CPU, grid
    /// work) of the runs' own recordings.
    #[serde(default)]
    pub trace_bound_s: Option<f64>,
    /// Median over runs of trace-aware bound / wall: how close the run came
    /// to what any scheduler could do with this build's own structure.
    #[serde(default)]
    pub bound_efficiency: Option<f64>,
    /// Why no run could be replayed, when none could.
    #[serde(default)]
    pub replay_note: Option<String>,
}

/// A threshold's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub configuration: String,
    pub policy: String,
    pub what: String,
    pub required: f64,
    pub measured: f64,
    pub pass: bool,
}

/// Two cells of one configuration (policies, peers) set side by side by
/// their speedup intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub configuration: String,
    pub a: String,
    pub b: String,
    /// `higher`: `a`'s interval lies wholly above `b`'s (a is faster);
    /// `lower`: wholly below; `not-shown`: they overlap or one is missing.
    pub a_vs_b: Difference,
}

impl Comparison {
    /// The sentence the summary prints.
    pub fn sentence(&self) -> String {
        match self.a_vs_b {
            Difference::Higher => format!(
                "{}: **{} faster than {}** (speedup intervals apart)",
                self.configuration, self.a, self.b
            ),
            Difference::Lower => format!(
                "{}: **{} faster than {}** (speedup intervals apart)",
                self.configuration, self.b, self.a
            ),
            Difference::NotShown => format!(
                "{}: {} vs {}: no difference shown (intervals overlap or too few runs)",
                self.configuration, self.a, self.b
            ),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub baseline: String,
    pub cells: Vec<CellSummary>,
    pub verdicts: Vec<Verdict>,
    /// Every pair of cells on the same configuration.
    #[serde(default)]
    pub comparisons: Vec<Comparison>,
}

impl Summary {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass)
    }
}

/// Recomputes every derived file of `dir`; returns the summary.
pub fn report(dir: &Path) -> anyhow::Result<Summary> {
    let (scenario, runs) = load_results(dir)?;
    let machine: Option<Machine> = std::fs::read(dir.join("machine.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let summary = summarize(&scenario, &runs, dir);
    let mut md = markdown(&scenario, machine.as_ref(), &summary, &runs);
    md.push_str(&gantt_charts(dir, &summary, &runs)?);
    std::fs::write(dir.join("summary.md"), md)?;
    std::fs::write(dir.join("results.csv"), csv(&runs))?;
    std::fs::write(dir.join("speedup.svg"), speedup_svg(&scenario, &summary))?;
    std::fs::write(
        dir.join("efficiency.svg"),
        efficiency_svg(&scenario, &summary),
    )?;
    for cell in &summary.cells {
        let first_ok = runs
            .iter()
            .find(|r| r.ok && r.configuration == cell.configuration && r.policy == cell.policy);
        if let Some(run) = first_ok {
            if run.configuration == LOCAL_MAKE {
                continue;
            }
            let svg = utilization_svg(run, &dir.join(&run.dir).join("trace.jsonl"))?;
            let name = format!("utilization-{}.svg", crate::run::sanitize(&cell_name(cell)));
            std::fs::write(dir.join(name), svg)?;
        }
    }
    std::fs::write(
        dir.join("verdicts.json"),
        serde_json::to_vec_pretty(&summary.verdicts)?,
    )?;
    Ok(summary)
}

/// `gridcc-bench matrix`'s report: each scenario's directory reported as by
/// `report`, and `out/summary.md` holding them all, one section each, in
/// the order given. Returns the summaries.
pub fn matrix_report(out: &Path, dirs: &[std::path::PathBuf]) -> anyhow::Result<Vec<Summary>> {
    let mut md = String::from("# Matrix\n\nOne session: every repetition ran each scenario's cells in turn. Each section is that scenario's own `summary.md` (also in its directory), recomputable with `gridcc-bench report DIR`.\n\n");
    let mut summaries = Vec::new();
    for dir in dirs {
        if !dir.join("runs.jsonl").is_file()
            || std::fs::metadata(dir.join("runs.jsonl")).is_ok_and(|m| m.len() == 0)
        {
            let _ = writeln!(md, "- {}: no run finished\n", dir.display());
            continue;
        }
        let summary = report(dir)?;
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let _ = writeln!(
            md,
            "- [{}](#{}) ({}/summary.md): {}",
            summary.scenario,
            summary.scenario.to_lowercase(),
            name,
            if summary.passed() {
                "thresholds passed"
            } else {
                "**a threshold failed**"
            }
        );
        summaries.push((summary, std::fs::read_to_string(dir.join("summary.md"))?));
    }
    for (_, text) in &summaries {
        md.push('\n');
        for line in text.lines() {
            // One level down: each scenario's title becomes a section.
            if line.starts_with('#') {
                md.push('#');
            }
            md.push_str(line);
            md.push('\n');
        }
    }
    std::fs::write(out.join("summary.md"), md)?;
    Ok(summaries.into_iter().map(|(s, _)| s).collect())
}

/// The scenario copy and the runs of a results directory.
fn load_results(dir: &Path) -> anyhow::Result<(Scenario, Vec<RunRecord>)> {
    let text = std::fs::read_to_string(dir.join("scenario.toml")).with_context(|| {
        format!(
            "{}: not a results directory (no scenario.toml)",
            dir.display()
        )
    })?;
    let scenario: Scenario = toml::from_str(&text).context("scenario.toml")?;
    let runs = read_runs(&dir.join("runs.jsonl"))?;
    Ok((scenario, runs))
}

/// Reads `runs.jsonl`; a malformed line is an error naming it.
pub fn read_runs(path: &Path) -> anyhow::Result<Vec<RunRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// The file name of a run's Gantt chart.
fn gantt_name(run: &RunRecord) -> String {
    let cell = Cell {
        configuration: run.configuration.clone(),
        policy: run.policy.clone(),
    };
    format!(
        "gantt-{}-{}.svg",
        crate::run::sanitize(&cell.to_string()),
        run.repetition
    )
}

/// Writes a Gantt chart per run through the grid that has a job log, and
/// returns the summary's section linking each cell's fastest and slowest.
fn gantt_charts(dir: &Path, summary: &Summary, runs: &[RunRecord]) -> anyhow::Result<String> {
    let mut drawn = Vec::new();
    for run in runs.iter().filter(|r| r.configuration != LOCAL_MAKE) {
        let log = stats::read_job_log(&dir.join(&run.dir).join("jobs.jsonl"))?;
        if !log.iter().any(|l| l.start_unix_ms.is_some()) {
            continue;
        }
        let title = format!(
            "{} / {} (rep {})",
            run.configuration,
            policy_cell(&run.policy),
            run.repetition
        );
        let svg = crate::gantt::svg(&title, run.started_unix_ms, run.wall_s, &log);
        std::fs::write(dir.join(gantt_name(run)), svg)?;
        drawn.push(run);
    }
    if drawn.is_empty() {
        return Ok(String::new());
    }
    let mut o = String::from(
        "\n## Jobs per worker slot\n\nEach run's jobs as a Gantt chart \
         (`gantt-<cell>-<rep>.svg`, colours as on the coordinator's monitor page); \
         per cell, its fastest and slowest run:\n\n",
    );
    for cell in &summary.cells {
        let mut of_cell: Vec<&&RunRecord> = drawn
            .iter()
            .filter(|r| r.configuration == cell.configuration && r.policy == cell.policy)
            .collect();
        of_cell.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
        let (Some(fast), Some(slow)) = (of_cell.first(), of_cell.last()) else {
            continue;
        };
        let _ = writeln!(
            o,
            "- {}: fastest [rep {} ({:.2} s)]({}), slowest [rep {} ({:.2} s)]({})",
            cell_name(cell),
            fast.repetition,
            fast.wall_s,
            gantt_name(fast),
            slow.repetition,
            slow.wall_s,
            gantt_name(slow)
        );
    }
    Ok(o)
}

/// A policy as the tables show it: plain make (no policy) is "—".
fn policy_cell(policy: &str) -> &str {
    if policy.is_empty() {
        "—"
    } else {
        policy
    }
}

fn cell_name(c: &CellSummary) -> String {
    Cell {
        configuration: c.configuration.clone(),
        policy: c.policy.clone(),
    }
    .to_string()
}

/// Per-cell medians, ratios and the threshold verdicts.
pub fn summarize(s: &Scenario, runs: &[RunRecord], dir: &Path) -> Summary {
    let cpus_of = |name: &str| -> f64 {
        if name == LOCAL_MAKE {
            s.client_cpus.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
            })
        } else {
            s.configuration(name).map_or(f64::NAN, |c| c.total_cpus())
        }
    };
    let ok_walls = |cfg: &str, pol: Option<&str>| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.ok && r.configuration == cfg && pol.is_none_or(|p| r.policy == p))
            .map(|r| r.wall_s)
            .collect()
    };
    let baseline_s = median(&ok_walls(&s.baseline, None));
    // The baseline's wall clock per repetition, for paired ratios. A
    // baseline configuration with several policies pairs with its first.
    let baseline_policy = runs
        .iter()
        .find(|r| r.configuration == s.baseline)
        .map(|r| r.policy.clone());
    let baseline_by_rep: BTreeMap<u32, f64> = runs
        .iter()
        .filter(|r| {
            r.ok && r.configuration == s.baseline && Some(&r.policy) == baseline_policy.as_ref()
        })
        .map(|r| (r.repetition, r.wall_s))
        .collect();
    let local_cpu = median(
        &runs
            .iter()
            .filter(|r| r.ok && r.configuration == LOCAL_MAKE)
            .map(|r| r.cpu.total_s)
            .collect::<Vec<_>>(),
    );
    let baseline_cpus = cpus_of(&s.baseline);
    let mut order: Vec<Cell> = Vec::new();
    for r in runs {
        let c = Cell {
            configuration: r.configuration.clone(),
            policy: r.policy.clone(),
        };
        if !order.contains(&c) {
            order.push(c);
        }
    }
    let cells: Vec<CellSummary> = order
        .iter()
        .map(|c| {
            let mine: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.configuration == c.configuration && r.policy == c.policy)
                .collect();
            let ok: Vec<&&RunRecord> = mine.iter().filter(|r| r.ok).collect();
            let ok_walls: Vec<f64> = ok.iter().map(|r| r.wall_s).collect();
            let median_s = median(&ok_walls);
            let (mean_s, sd_s) = mean_sd(&ok_walls);
            let speedup_runs: Vec<f64> = ok
                .iter()
                .filter_map(|r| baseline_by_rep.get(&r.repetition).map(|b| b / r.wall_s))
                .filter(|x| x.is_finite())
                .collect();
            let speedup = if speedup_runs.is_empty() {
                baseline_s / median_s
            } else {
                median(&speedup_runs)
            };
            let total_cpus = cpus_of(&c.configuration);
            let ideal = total_cpus / baseline_cpus;
            let cpu = median(&ok.iter().map(|r| r.cpu.total_s).collect::<Vec<_>>());
            let simulated_s = ok.first().and_then(|r| simulate_run(r, &dir.join(&r.dir)));
            let spans: Vec<f64> = ok
                .iter()
                .filter_map(|r| compile_span_s(&dir.join(&r.dir).join("trace.jsonl")))
                .collect();
            let compile_span_s = (!spans.is_empty()).then(|| median(&spans));
            let is_peer = crate::peers::Peer::of(&c.policy).is_some();
            let replays: Vec<anyhow::Result<RunReplay>> =
                if c.configuration == LOCAL_MAKE || is_peer {
                    Vec::new()
                } else {
                    ok.iter()
                        .map(|r| replay_run(r, &dir.join(&r.dir)))
                        .collect()
                };
            let good: Vec<&RunReplay> = replays.iter().filter_map(|r| r.as_ref().ok()).collect();
            let med = |f: &dyn Fn(&RunReplay) -> Option<f64>| -> Option<f64> {
                let v: Vec<f64> = good.iter().filter_map(|r| f(r)).collect();
                (!v.is_empty()).then(|| median(&v))
            };
            let replay_note = if good.is_empty() {
                replays
                    .iter()
                    .find_map(|r| r.as_ref().err())
                    .map(|e| format!("{e:#}"))
            } else {
                None
            };
            CellSummary {
                predicted_s: med(&|r| Some(r.predicted_s)),
                measured_vs_predicted: med(&|r| Some(r.wall_s / r.predicted_s)),
                predicted_span_s: med(&|r| r.predicted_span_s),
                trace_bound_s: med(&|r| Some(r.bound_s)),
                bound_efficiency: med(&|r| Some(r.bound_s / r.wall_s)),
                replay_note,
                configuration: c.configuration.clone(),
                policy: c.policy.clone(),
                total_cpus,
                wall_s: mine.iter().map(|r| r.wall_s).collect(),
                ok_runs: ok.len(),
                runs: mine.len(),
                median_s,
                mean_s,
                sd_s,
                speedup,
                speedup_ci: bootstrap_median_ci(&speedup_runs),
                speedup_runs,
                wall_ci: bootstrap_median_ci(&ok_walls),
                ideal,
                efficiency: speedup / ideal,
                cost_ratio: cpu / local_cpu,
                fell_back: mine.iter().filter(|r| r.jobs.fell_back).count(),
                compile_span_s,
                simulated_s,
            }
        })
        .collect();
    let mut verdicts = Vec::new();
    for (name, t) in &s.thresholds {
        // Thresholds are claims about gridcc: peers are measured beside
        // it, never judged.
        for c in cells
            .iter()
            .filter(|c| &c.configuration == name && crate::peers::Peer::of(&c.policy).is_none())
        {
            let mut push = |what: &str, required: f64, measured: f64| {
                verdicts.push(Verdict {
                    configuration: c.configuration.clone(),
                    policy: c.policy.clone(),
                    what: what.to_owned(),
                    required,
                    measured,
                    // NaN (no successful run) fails.
                    pass: measured >= required,
                });
            };
            if let Some(min) = t.min_speedup {
                push("speedup", min, c.speedup);
            }
            if let Some(min) = t.min_efficiency {
                push("efficiency", min, c.efficiency);
            }
            if let Some(min) = t.min_bound_efficiency {
                // No replay (an old run, no trace): NaN, which fails.
                push(
                    "efficiency against the trace-aware bound",
                    min,
                    c.bound_efficiency.unwrap_or(f64::NAN),
                );
            }
        }
    }
    Summary {
        scenario: s.name.clone(),
        baseline: s.baseline.clone(),
        comparisons: comparisons(&cells),
        cells,
        verdicts,
    }
}

/// Every pair of cells sharing a configuration, in cell order, judged by
/// their speedup intervals only.
fn comparisons(cells: &[CellSummary]) -> Vec<Comparison> {
    let mut out = Vec::new();
    for (i, a) in cells.iter().enumerate() {
        for b in cells[i + 1..]
            .iter()
            .filter(|b| b.configuration == a.configuration)
        {
            out.push(Comparison {
                configuration: a.configuration.clone(),
                a: a.policy.clone(),
                b: b.policy.clone(),
                a_vs_b: difference(a.speedup_ci.as_ref(), b.speedup_ci.as_ref()),
            });
        }
    }
    out
}

/// Mean and sample standard deviation (NaN where undefined).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// First remote start to last remote end in a trace, in seconds.
fn compile_span_s(trace: &Path) -> Option<f64> {
    let t = stats::read_trace(trace).ok()?;
    let start = t.iter().map(|l| l.start_unix_ms).min()?;
    let end = t.iter().map(|l| l.end_unix_ms).max()?;
    Some(end.saturating_sub(start) as f64 / 1000.0)
}

/// One run replayed on its own shape and policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunReplay {
    pub wall_s: f64,
    pub predicted_s: f64,
    pub predicted_span_s: Option<f64>,
    pub bound_s: f64,
}

/// Replays the run `r` (directory `dir`) on its own shape and policy.
pub fn replay_run(r: &RunRecord, dir: &Path) -> anyhow::Result<RunReplay> {
    let recorded = crate::replay::load(dir, r)?;
    let workers = sim_workers(r);
    let mut policy = gridcc_scheduler::by_name(&r.policy)?;
    let rep = gridcc_scheduler::replay::replay(&recorded.recording, &workers, policy.as_mut())
        .with_context(|| format!("replaying {}", dir.display()))?;
    Ok(RunReplay {
        wall_s: r.wall_s,
        predicted_s: rep.makespan_s,
        predicted_span_s: crate::replay::replayed_compile_span_s(&recorded.recording, &rep),
        bound_s: rep.bound.bound_s,
    })
}

/// The simulated workers of a run's shape.
pub fn sim_workers(r: &RunRecord) -> Vec<gridcc_scheduler::sim::SimWorker> {
    r.workers
        .iter()
        .map(|w| gridcc_scheduler::sim::SimWorker {
            speed: w.cpus,
            slots: w.slots(),
        })
        .collect()
}

/// The simulator on a run's own trace, shape and policy.
fn simulate_run(r: &RunRecord, dir: &Path) -> Option<f64> {
    if r.configuration == LOCAL_MAKE {
        return None;
    }
    let text = std::fs::read_to_string(dir.join("trace.jsonl")).ok()?;
    let jobs = gridcc_scheduler::sim::parse_trace(&text).ok()?;
    if jobs.is_empty() {
        return None;
    }
    let workers = sim_workers(r);
    let mut policy = gridcc_scheduler::by_name(&r.policy).ok()?;
    gridcc_scheduler::sim::simulate(&jobs, &workers, r.make_jobs as usize, policy.as_mut())
        .ok()
        .map(|rep| rep.makespan_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn cell(policy: &str, walls: &[f64], speedups: &[f64]) -> CellSummary {
        CellSummary {
            configuration: "3w".into(),
            policy: policy.into(),
            total_cpus: 1.0,
            wall_s: walls.to_vec(),
            ok_runs: walls.len(),
            runs: walls.len(),
            median_s: median(walls),
            mean_s: f64::NAN,
            sd_s: f64::NAN,
            speedup: median(speedups),
            speedup_ci: bootstrap_median_ci(speedups),
            speedup_runs: speedups.to_vec(),
            wall_ci: bootstrap_median_ci(walls),
            ideal: 1.0,
            efficiency: median(speedups),
            cost_ratio: f64::NAN,
            fell_back: 0,
            compile_span_s: None,
            simulated_s: None,
            predicted_s: None,
            measured_vs_predicted: None,
            predicted_span_s: None,
            trace_bound_s: None,
            bound_efficiency: None,
            replay_note: None,
        }
    }

    #[test]
    fn policies_are_ranked_only_where_intervals_are_apart() {
        let cells = [
            cell("least-loaded", &[10.0, 10.2, 9.9], &[2.0, 1.98, 2.02]),
            cell("weighted", &[8.0, 8.1, 7.9], &[2.5, 2.45, 2.55]),
            cell("lookahead", &[8.0, 11.0, 9.5], &[2.5, 1.8, 2.1]),
        ];
        let c = comparisons(&cells);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].a_vs_b, Difference::Lower);
        assert!(
            c[0].sentence()
                .contains("weighted faster than least-loaded"),
            "{}",
            c[0].sentence()
        );
        assert_eq!(c[1].a_vs_b, Difference::NotShown);
        assert!(c[1].sentence().contains("no difference shown"));
        assert_eq!(c[2].a_vs_b, Difference::NotShown);
    }
}
