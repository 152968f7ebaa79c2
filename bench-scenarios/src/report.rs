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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::run::{Machine, RunRecord};
use crate::scenario::{Cell, Scenario, LOCAL_MAKE};
use crate::stats::{self, bootstrap_median_ci, difference, median, Difference, Interval};

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
            if run.policy.is_empty() {
                "—"
            } else {
                &run.policy
            },
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

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), fmt_ratio)
}

fn fmt_ci(ci: Option<&Interval>) -> String {
    ci.map_or_else(|| "—".to_owned(), Interval::to_string)
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

fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "n/a".to_owned()
    }
}

fn markdown(s: &Scenario, m: Option<&Machine>, sum: &Summary, runs: &[RunRecord]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {}\n", s.name);
    if !s.description.is_empty() {
        let _ = writeln!(o, "{}\n", s.description);
    }
    if let Some(m) = m {
        let _ = writeln!(
            o,
            "Machine: {} CPUs ({}), {:.1} GiB, Linux {}, {}; backend `{}`.",
            m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.gcc, m.backend
        );
        for n in &m.notes {
            let _ = writeln!(o, "- **Note:** {n}");
        }
    }
    let _ = writeln!(
        o,
        "\nScale: {}. Client CPU limit: {}. `make -j{}`. Baseline: `{}`. Repetitions: {}, interleaved.\n",
        if s.scale.is_empty() { "as written" } else { &s.scale },
        s.client_cpus.map_or_else(|| "none".to_owned(), |c| format!("{c} CPU")),
        s.make_jobs,
        s.baseline,
        runs.iter().map(|r| r.repetition).max().unwrap_or(0)
    );
    let _ = writeln!(
        o,
        "| configuration | policy or peer | worker CPU | wall s (every run) | ok | median s [95% CI] | mean ± sd s | speedup [95% CI] | ideal | efficiency (naive) | trace-aware bound s | efficiency vs bound | predicted wall s (replay) | measured / predicted | compile span s: measured / replay / make -jJ model | CPU cost ratio | fell back |"
    );
    let _ = writeln!(
        o,
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in &sum.cells {
        let walls: Vec<String> = c.wall_s.iter().map(|w| format!("{w:.2}")).collect();
        let _ = writeln!(
            o,
            "| {} | {} | {:.3} | {} | {}/{} | {} {} | {} ± {} | {} {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} | {} |",
            c.configuration,
            if c.policy.is_empty() {
                "—"
            } else {
                &c.policy
            },
            c.total_cpus,
            walls.join(", "),
            c.ok_runs,
            c.runs,
            fmt_ratio(c.median_s),
            fmt_ci(c.wall_ci.as_ref()),
            fmt_ratio(c.mean_s),
            fmt_ratio(c.sd_s),
            fmt_ratio(c.speedup),
            fmt_ci(c.speedup_ci.as_ref()),
            fmt_ratio(c.ideal),
            fmt_ratio(c.efficiency),
            fmt_opt(c.trace_bound_s),
            fmt_opt(c.bound_efficiency),
            fmt_opt(c.predicted_s),
            fmt_opt(c.measured_vs_predicted),
            fmt_opt(c.compile_span_s),
            fmt_opt(c.predicted_span_s),
            fmt_opt(c.simulated_s),
            fmt_ratio(c.cost_ratio),
            c.fell_back
        );
    }
    let _ = writeln!(o, "\n## The replay against the measurement\n");
    let mut misses = 0;
    let replayed = |c: &&CellSummary| {
        c.configuration != LOCAL_MAKE && crate::peers::Peer::of(&c.policy).is_none()
    };
    let mut checked = 0;
    for c in sum.cells.iter().filter(replayed) {
        checked += usize::from(c.measured_vs_predicted.is_some());
        match (c.measured_vs_predicted, &c.replay_note) {
            (Some(x), _) if (x - 1.0).abs() > 0.10 => {
                misses += 1;
                let _ = writeln!(
                    o,
                    "- **{}**: measured wall is {:.2}× the replay's prediction (outside ±10 %).",
                    cell_name(c),
                    x
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(o, "- {}: not replayed: {why}", cell_name(c));
            }
            _ => {}
        }
    }
    if checked == 0 {
        let _ = writeln!(o, "No cell could be replayed.");
    } else if misses == 0 {
        let _ = writeln!(
            o,
            "Every replayed cell's measured wall clock is within ±10 % of the replay of its own runs (peers have no trace and are not replayed)."
        );
    }
    let _ = writeln!(o, "\n## Differences between policies and peers\n");
    if sum.comparisons.is_empty() {
        let _ = writeln!(o, "No configuration has more than one cell.");
    }
    for c in &sum.comparisons {
        let _ = writeln!(o, "- {}", c.sentence());
    }
    let _ = writeln!(
        o,
        "\nA cell is called faster only where the bootstrap 95 % intervals of the median paired speedup do not overlap."
    );
    let noted: Vec<&RunRecord> = runs.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        let _ = writeln!(o, "\n## Notes on runs\n");
        for r in noted {
            let cell = Cell {
                configuration: r.configuration.clone(),
                policy: r.policy.clone(),
            };
            let _ = writeln!(o, "- run {} ({cell}): {}", r.index, r.notes.join("; "));
        }
    }
    let _ = writeln!(o, "\n## Verdicts\n");
    if sum.verdicts.is_empty() {
        let _ = writeln!(o, "No thresholds in the scenario.");
    }
    for v in &sum.verdicts {
        let _ = writeln!(
            o,
            "- **{}** {} / {}: {} {} ≥ {} required",
            if v.pass { "PASS" } else { "FAIL" },
            v.configuration,
            if v.policy.is_empty() {
                "—"
            } else {
                &v.policy
            },
            v.what,
            fmt_ratio(v.measured),
            v.required
        );
    }
    let _ = writeln!(o, "\n## Every run\n");
    let _ = writeln!(
        o,
        "| # | rep | cell | wall s | ok | remote | local compiles | CPU client / coord / workers s | compile p50/p95/max s | queue p95 s | wrapper overhead p50/p95 ms | jobs per worker (utilization) | objects identical | failure |"
    );
    let _ = writeln!(
        o,
        "|---:|---:|---|---:|---|---:|---|---|---|---:|---|---|---|---|"
    );
    for r in runs {
        let per: Vec<String> = r
            .jobs
            .per_worker
            .iter()
            .map(|w| {
                format!(
                    "{}×{:.3}: {} ({:.0}%)",
                    w.slots,
                    w.cpus,
                    w.jobs,
                    w.utilization * 100.0
                )
            })
            .collect();
        let cell = Cell {
            configuration: r.configuration.clone(),
            policy: r.policy.clone(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {:.2} | {} | {} | {} | {:.1} / {:.1} / {:.1} | {:.2}/{:.2}/{:.2} | {:.2} | {:.0}/{:.0} | {} | {}/{} | {} |",
            r.index,
            r.repetition,
            cell,
            r.wall_s,
            if r.ok { "yes" } else { "**no**" },
            r.jobs.remote,
            local_compiles(r),
            r.cpu.client_s,
            r.cpu.coordinator_s,
            0.0 + r.cpu.workers_s.iter().sum::<f64>(),
            r.compile_s.p50,
            r.compile_s.p95,
            r.compile_s.max,
            r.queue_s.p95,
            r.overhead_ms.p50,
            r.overhead_ms.p95,
            per.join("; "),
            r.objects.identical,
            r.objects.found,
            r.failure.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(
        o,
        "\nSpeedup = baseline median / median; ideal = worker CPU / baseline CPU; efficiency = speedup / ideal; \
         CPU cost ratio = CPU seconds of client + coordinator + workers / the plain local build's. \
         Speedup is the median over repetitions of (baseline wall / this wall) in the same repetition; \
         its interval is a percentile bootstrap (4000 resamples, fixed seed) of that median, and the wall interval likewise. \
         Medians are over successful runs only; every run is listed above. \
         Efficiency vs bound = the trace-aware lower bound (the run's own job releases, critical path and client CPU, on its shape, whatever the policy) / wall, median over runs; \
         the predicted wall is `gridcc_scheduler::replay` on each run's own recording (docs/experiments.md). \
         'compile span' is the first remote job's start to the last one's end, measured (median) and as `gridcc-bench simulate` replays the first successful run's own trace on the same shape and policy; the wall time also holds the link steps and everything else make runs."
    );
    o
}

/// "N (reason: n, …)" of a run's local compiles; the told-local count from
/// the coordinator is part of it.
fn local_compiles(r: &RunRecord) -> String {
    let n: u64 = r.local_compiles.values().sum();
    if n == 0 {
        return format!("0 (told local {})", r.jobs.told_local);
    }
    let parts: Vec<String> = r
        .local_compiles
        .iter()
        .map(|(why, k)| format!("{why}: {k}"))
        .collect();
    format!("{n} ({})", parts.join("; "))
}

fn csv(runs: &[RunRecord]) -> String {
    let mut o = String::from(
        "index,repetition,configuration,policy,backend,make_jobs,worker_cpus,wall_s,ok,remote,told_local,fell_back,client_cpu_s,coordinator_cpu_s,workers_cpu_s,total_cpu_s,compile_p50_s,compile_p95_s,compile_max_s,queue_p50_s,queue_p95_s,queue_max_s,overhead_p50_ms,overhead_p95_ms,overhead_max_ms,objects,identical,failure\n",
    );
    for r in runs {
        let cpus: f64 = 0.0 + r.workers.iter().map(|w| w.cpus).sum::<f64>();
        let failure = r.failure.as_deref().unwrap_or("").replace('"', "'");
        let _ = writeln!(
            o,
            "{},{},{},{},{:?},{},{},{:.3},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.1},{:.1},{:.1},{},{},\"{}\"",
            r.index,
            r.repetition,
            r.configuration,
            r.policy,
            r.backend,
            r.make_jobs,
            cpus,
            r.wall_s,
            r.ok,
            r.jobs.remote,
            r.jobs.told_local,
            r.jobs.fell_back,
            r.cpu.client_s,
            r.cpu.coordinator_s,
            0.0 + r.cpu.workers_s.iter().sum::<f64>(),
            r.cpu.total_s,
            r.compile_s.p50,
            r.compile_s.p95,
            r.compile_s.max,
            r.queue_s.p50,
            r.queue_s.p95,
            r.queue_s.max,
            r.overhead_ms.p50,
            r.overhead_ms.p95,
            r.overhead_ms.max,
            r.objects.found,
            r.objects.identical,
            failure
        );
    }
    o
}

/// An SVG document's opening tag and white background.
fn svg_open(w: f64, h: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bars of measured speedup per cell, each run as a dot, and the ideal as a
/// tick: how far each configuration is from what its CPUs allow.
fn speedup_svg(s: &Scenario, sum: &Summary) -> String {
    let cells: Vec<&CellSummary> = sum.cells.iter().collect();
    let n = cells.len().max(1);
    let (w, h, left, bottom, top) = (120.0 * n as f64 + 120.0, 420.0, 70.0, 110.0, 40.0);
    let baseline = sum
        .cells
        .iter()
        .find(|c| c.configuration == s.baseline)
        .map_or(f64::NAN, |c| c.median_s);
    let max = cells
        .iter()
        .flat_map(|c| {
            let dots = c.wall_s.iter().map(|x| baseline / x);
            dots.chain([c.ideal, c.speedup])
        })
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let plot_h = h - bottom - top;
    let y = |v: f64| top + plot_h * (1.0 - v / max);
    let mut o = svg_open(w, h);
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="20" font-size="14">{}: speedup vs {} (bar = median, dots = runs, red tick = ideal)</text>"#,
        esc(&s.name),
        esc(&s.baseline)
    );
    // Axis and grid.
    let mut v = 0.0;
    let step = if max > 6.0 { 1.0 } else { 0.5 };
    while v <= max {
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            w - 20.0,
            left - 6.0,
            yy + 4.0
        );
        v += step;
    }
    let one = y(1.0);
    let _ = writeln!(
        o,
        r##"<line x1="{left}" x2="{}" y1="{one:.1}" y2="{one:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
        w - 20.0
    );
    for (i, c) in cells.iter().enumerate() {
        let x = left + 20.0 + 120.0 * i as f64;
        if c.speedup.is_finite() {
            let top_y = y(c.speedup);
            let _ = writeln!(
                o,
                r##"<rect x="{x:.1}" y="{top_y:.1}" width="60" height="{:.1}" fill="#4a7fb5"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{:.2}</text>"##,
                y(0.0) - top_y,
                x + 30.0,
                top_y - 4.0,
                c.speedup
            );
        } else {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#b00">no successful run</text>"##,
                x + 30.0,
                y(0.5)
            );
        }
        for (k, wall) in c.wall_s.iter().enumerate() {
            let sp = baseline / wall;
            if sp.is_finite() {
                let _ = writeln!(
                    o,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#222"/>"##,
                    x + 15.0 + 15.0 * k as f64,
                    y(sp)
                );
            }
        }
        if c.ideal.is_finite() {
            let iy = y(c.ideal);
            let _ = writeln!(
                o,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{iy:.1}" y2="{iy:.1}" stroke="#c00" stroke-width="3"/>"##,
                x - 6.0,
                x + 66.0
            );
        }
        // Long shapes ("0.125+0.15+…") would run into the next bar's label,
        // so the configuration is broken at '+' into lines that fit a bar.
        let mut label_y = h - bottom + 18.0;
        for line in wrap_label(&c.configuration, 16) {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{label_y:.1}" text-anchor="middle">{}</text>"##,
                x + 30.0,
                esc(&line)
            );
            label_y += 14.0;
        }
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{:.3} CPU</text>"##,
            x + 30.0,
            label_y + 2.0,
            esc(if c.policy.is_empty() {
                "plain make"
            } else {
                &c.policy
            }),
            x + 30.0,
            label_y + 18.0,
            c.total_cpus
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Per cell, two bars: efficiency against the naive ideal (worker CPU) and
/// against the trace-aware bound, with the speedup and its interval and the
/// replay's measured / predicted written above: how much of what was
/// achievable the run achieved, beside what the CPU count alone suggests.
fn efficiency_svg(s: &Scenario, sum: &Summary) -> String {
    let cells: Vec<&CellSummary> = sum
        .cells
        .iter()
        .filter(|c| c.configuration != LOCAL_MAKE)
        .collect();
    let n = cells.len().max(1);
    let (w, h, left, bottom, top) = (140.0 * n as f64 + 120.0, 440.0, 70.0, 110.0, 60.0);
    let max = cells
        .iter()
        .flat_map(|c| [c.efficiency, c.bound_efficiency.unwrap_or(0.0)])
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max)
        * 1.1;
    let plot_h = h - bottom - top;
    let y = |v: f64| top + plot_h * (1.0 - v / max);
    let mut o = svg_open(w, h);
    let _ = writeln!(
        o,
        r##"<text x="{left}" y="20" font-size="14">{}: efficiency per cell (grey = naive: speedup / worker-CPU ideal; blue = trace-aware bound / wall)</text>"##,
        esc(&s.name)
    );
    let _ = writeln!(
        o,
        r##"<text x="{left}" y="38" fill="#555">above each cell: speedup [95% CI]; measured / replay-predicted wall</text>"##
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            w - 20.0,
            left - 6.0,
            yy + 4.0
        );
    }
    for (i, c) in cells.iter().enumerate() {
        let x = left + 20.0 + 140.0 * i as f64;
        for (k, (v, color)) in [
            (c.efficiency, "#999"),
            (c.bound_efficiency.unwrap_or(f64::NAN), "#4a7fb5"),
        ]
        .into_iter()
        .enumerate()
        {
            let bx = x + 36.0 * k as f64;
            if v.is_finite() {
                let _ = writeln!(
                    o,
                    r##"<rect x="{bx:.1}" y="{:.1}" width="32" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{v:.2}</text>"##,
                    y(v),
                    y(0.0) - y(v),
                    bx + 16.0,
                    y(v) - 4.0
                );
            } else {
                let _ = writeln!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#b00">n/a</text>"##,
                    bx + 16.0,
                    y(0.0) - 4.0
                );
            }
        }
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{} {}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#555">m/p {}</text>"##,
            x + 34.0,
            top - 4.0,
            fmt_ratio(c.speedup),
            fmt_ci(c.speedup_ci.as_ref()),
            x + 34.0,
            top + 10.0,
            fmt_opt(c.measured_vs_predicted)
        );
        let mut label_y = h - bottom + 18.0;
        for line in wrap_label(&c.configuration, 18) {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{label_y:.1}" text-anchor="middle">{}</text>"##,
                x + 34.0,
                esc(&line)
            );
            label_y += 14.0;
        }
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            x + 34.0,
            label_y + 2.0,
            esc(&c.policy)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Splits a configuration name after '+' signs into lines of at most `max`
/// characters (a single longer part stays whole).
fn wrap_label(label: &str, max: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for (i, part) in label.split('+').enumerate() {
        let piece = if i == 0 {
            part.to_string()
        } else {
            format!("+{part}")
        };
        let last = lines.last_mut().expect("lines starts non-empty");
        if !last.is_empty() && last.len() + piece.len() > max {
            lines.push(piece);
        } else {
            last.push_str(&piece);
        }
    }
    lines
}

/// Each worker's busy fraction (running jobs / slots) over the build, in
/// 60 time slices, one line per worker.
fn utilization_svg(run: &RunRecord, trace_path: &Path) -> anyhow::Result<String> {
    let trace = stats::read_trace(trace_path)?;
    let from = run.started_unix_ms;
    let to = from + (run.wall_s * 1000.0) as u64;
    let bins = 60;
    let (w, h, left, top, plot_w, plot_h) = (1000.0, 360.0, 60.0, 40.0, 560.0, 260.0);
    let colors = [
        "#4a7fb5", "#d9822b", "#3a9d5d", "#c23b3b", "#8a5fb5", "#777", "#b5a04a",
    ];
    let mut o = svg_open(w, h);
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="20" font-size="14">{} / {} (rep {}): worker utilization over {:.1} s</text>"#,
        esc(&run.configuration),
        esc(&run.policy),
        run.repetition,
        run.wall_s
    );
    for k in 0..=4 {
        let v = f64::from(k) / 4.0;
        let yy = top + plot_h * (1.0 - v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}%</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            v * 100.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">time (s)</text><text x="{left}" y="{}">0</text><text x="{}" y="{}" text-anchor="end">{:.1}</text>"#,
        left + plot_w / 2.0,
        top + plot_h + 32.0,
        top + plot_h + 16.0,
        left + plot_w,
        top + plot_h + 16.0,
        run.wall_s
    );
    for k in 1..5 {
        let x = left + plot_w * f64::from(k) / 5.0;
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{:.1}</text>"##,
            top + plot_h,
            top + plot_h + 16.0,
            run.wall_s * f64::from(k) / 5.0
        );
    }
    let mut by_id: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for t in &trace {
        by_id
            .entry(t.worker)
            .or_default()
            .push((t.start_unix_ms, t.end_unix_ms));
    }
    for (i, wr) in run.jobs.per_worker.iter().enumerate() {
        let jobs = by_id.get(&wr.id).map_or(&[][..], Vec::as_slice);
        let u = stats::utilization_bins(jobs, wr.slots, from, to, bins);
        let color = colors[i % colors.len()];
        let points: Vec<String> = u
            .iter()
            .enumerate()
            .map(|(b, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + plot_w * (b as f64 + 0.5) / bins as f64,
                    top + plot_h * (1.0 - v)
                )
            })
            .collect();
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" fill="{color}">worker {}: {:.3} CPU, {} slot(s), {} jobs, busy {:.0}%</text>"#,
            left + plot_w + 10.0,
            top + 16.0 * i as f64 + 10.0,
            i + 1,
            wr.cpus,
            wr.slots,
            jobs.len(),
            wr.utilization * 100.0
        );
    }
    o.push_str("</svg>\n");
    Ok(o)
}

/// `gridcc-bench compare OLD NEW`: each cell's median wall clock and
/// speedup in both result sets, with their intervals, and the same rule as
/// the summary: "faster" or "slower" only where the intervals are apart,
/// else "no difference shown". The wall-clock verdict sees everything that
/// changed between the sessions (machine load included); the speedup
/// verdict, each against its own session's baseline, cancels what moved
/// the baseline too.
pub fn compare(old: &Path, new: &Path) -> anyhow::Result<String> {
    let load = |d: &Path| -> anyhow::Result<Summary> {
        let (s, runs) = load_results(d)?;
        Ok(summarize(&s, &runs, d))
    };
    let (a, b) = (load(old)?, load(new)?);
    Ok(compare_summaries(&a, &b))
}

/// One word for a difference of `new` against `old` where higher is better
/// (`higher_better`) or worse.
fn verdict(new: Option<&Interval>, old: Option<&Interval>, higher_better: bool) -> &'static str {
    match (difference(new, old), higher_better) {
        (Difference::NotShown, _) => "no difference shown",
        (Difference::Higher, true) | (Difference::Lower, false) => "**new faster**",
        _ => "**new slower**",
    }
}

fn compare_summaries(a: &Summary, b: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| cell | old median s [95% CI] | new median s [95% CI] | new / old | wall clock | old speedup [95% CI] | new speedup [95% CI] | speedup | old ok | new ok |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---|---:|---:|---|---:|---:|");
    for c in &b.cells {
        let before = a
            .cells
            .iter()
            .find(|x| x.configuration == c.configuration && x.policy == c.policy);
        let with_ci = |m: f64, ci: Option<&Interval>| format!("{} {}", fmt_ratio(m), fmt_ci(ci));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
            cell_name(c),
            before.map_or("—".into(), |x| with_ci(x.median_s, x.wall_ci.as_ref())),
            with_ci(c.median_s, c.wall_ci.as_ref()),
            before.map_or("—".into(), |x| fmt_ratio(c.median_s / x.median_s)),
            before.map_or("—", |x| verdict(
                c.wall_ci.as_ref(),
                x.wall_ci.as_ref(),
                false
            )),
            before.map_or("—".into(), |x| with_ci(x.speedup, x.speedup_ci.as_ref())),
            with_ci(c.speedup, c.speedup_ci.as_ref()),
            before.map_or("—", |x| verdict(
                c.speedup_ci.as_ref(),
                x.speedup_ci.as_ref(),
                true
            )),
            before.map_or("—".into(), |x| format!("{}/{}", x.ok_runs, x.runs)),
            c.ok_runs,
            c.runs
        );
    }
    for c in a.cells.iter().filter(|x| {
        !b.cells
            .iter()
            .any(|y| y.configuration == x.configuration && y.policy == x.policy)
    }) {
        let _ = writeln!(
            o,
            "| {} | {} | — (not in NEW) | | | | | | | |",
            cell_name(c),
            fmt_ratio(c.median_s)
        );
    }
    let _ = writeln!(
        o,
        "\n\"faster\"/\"slower\" only where the bootstrap 95 % intervals do not overlap; otherwise \"no difference shown\"."
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(policy: &str, walls: &[f64], speedups: &[f64]) -> CellSummary {
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

    #[test]
    fn compare_uses_the_same_rule() {
        let summary = |cells: Vec<CellSummary>| Summary {
            scenario: "s".into(),
            baseline: "1w".into(),
            cells,
            verdicts: Vec::new(),
            comparisons: Vec::new(),
        };
        let old = summary(vec![
            cell("least-loaded", &[10.0, 10.2, 9.9], &[2.0, 1.98, 2.02]),
            cell("weighted", &[8.0, 8.1, 7.9], &[2.5, 2.45, 2.55]),
        ]);
        let new = summary(vec![
            cell("least-loaded", &[8.0, 8.1, 7.9], &[2.5, 2.45, 2.55]),
            cell("weighted", &[7.5, 8.5, 9.0], &[2.6, 2.3, 2.2]),
        ]);
        let table = compare_summaries(&old, &new);
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 3w")).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[0].contains("**new faster**"), "{}", rows[0]);
        assert!(!rows[1].contains("**new"), "{}", rows[1]);
        assert!(rows[1].contains("no difference shown"), "{}", rows[1]);
    }

    #[test]
    fn long_shapes_break_at_plus_signs() {
        assert_eq!(wrap_label("1x1.0", 16), vec!["1x1.0"]);
        assert_eq!(
            wrap_label("0.125+0.15+0.2+0.25+0.275", 16),
            vec!["0.125+0.15+0.2", "+0.25+0.275"]
        );
        assert_eq!(
            wrap_label("averyveryverylongpart+x", 5),
            vec!["averyveryverylongpart", "+x"]
        );
    }
}
