//! `summary.md` and `results.csv`: the tables, notes and verdicts of a
//! results directory as text, and the number formats the charts and
//! `compare` share.

use std::fmt::Write as _;

use crate::run::{Machine, RunRecord};
use crate::scenario::{Cell, Scenario, LOCAL_MAKE};
use crate::stats::Interval;

use super::{cell_name, policy_cell, CellSummary, Summary};

pub(super) fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), fmt_ratio)
}

pub(super) fn fmt_ci(ci: Option<&Interval>) -> String {
    ci.map_or_else(|| "—".to_owned(), Interval::to_string)
}

pub(super) fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "n/a".to_owned()
    }
}

pub(super) fn markdown(
    s: &Scenario,
    m: Option<&Machine>,
    sum: &Summary,
    runs: &[RunRecord],
) -> String {
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
            policy_cell(&c.policy),
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
            policy_cell(&v.policy),
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
pub(super) fn local_compiles(r: &RunRecord) -> String {
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

pub(super) fn csv(runs: &[RunRecord]) -> String {
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
