//! A discrete-event simulator of one build on a grid, driven by the same
//! [`Policy`] code as the coordinator, so that policies can be compared on
//! worker shapes nobody has to set up.
//!
//! # Model
//!
//! - **Client.** The build is a list of jobs in trace order, run like
//!   `make -jJ`: at most `J` jobs are outstanding (released and not
//!   finished); a new one is released, in trace order, as soon as an earlier
//!   one finishes. Dependencies between jobs (a link waiting for its
//!   objects) are not modelled: compile jobs of one build rarely depend on
//!   each other.
//! - **Queue.** Released jobs wait in a FIFO queue until the policy places
//!   them, as in the coordinator. Whenever something changes (a release or a
//!   finish), the queue is offered to the policy in order: a job placed
//!   leaves the queue; a job the policy wants to hold back
//!   ([`Decision::Wait`]) stays and the next job is offered; the round stops
//!   at the first [`Decision::NoFreeSlot`].
//! - **Workers.** A worker of speed `s` (CPU quota, 1.0 = one core) runs at
//!   most `slots` jobs and shares its CPU among them (processor sharing):
//!   with `n` jobs running, each progresses at `min(1, s / n)` CPU-seconds
//!   per second. The `min(1, …)` is there because a compile is one thread:
//!   a lone job on a 4-CPU worker runs no faster than on a 1-CPU one. The
//!   `s / n` is how a CFS quota divides among busy processes. Network and
//!   coordinator overheads are zero.
//! - **Knowledge.** The policy sees each job's estimate (`estimate_s` when
//!   the trace gives one, else its true `cost_s`) and, per worker, the
//!   estimated work left: the sum over its running jobs of
//!   `estimate × fraction not yet done`, which a coordinator can compute from
//!   the estimates and the elapsed time. Costs are otherwise exact, so cost
//!   aware policies look as good as their estimates allow.
//! - **Time.** Event-driven, not stepped: between two events every rate is
//!   constant, so the next event is the running job with the least
//!   `remaining / rate`, and time jumps straight to it. The only error is
//!   floating-point rounding.
//!
//! A worker with no slots, or a NaN, infinite, zero or negative speed, is
//! shown to the policy as unhealthy and never runs anything.
//!
//! # Lower bound
//!
//! [`lower_bound_s`] is what no policy can beat:
//! `max(total work / throughput, largest job / fastest single-job rate)`,
//! where throughput is `min(Σ min(speed, slots), J)` (a worker delivers at
//! most one core per slot, and at most `J` jobs run at once) and the fastest
//! single-job rate is the largest `min(1, speed)`. The efficiency of a run is
//! `bound / makespan`, at most 1.

use std::collections::VecDeque;

use crate::splitmix::SplitMix64;
use crate::{Decision, JobView, Policy, WorkerView};

/// One job of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct SimJob {
    /// True cost: seconds on a 1.0-CPU worker.
    pub cost_s: f64,
    /// What the policy is told the cost is; `None` means the true cost.
    pub estimate_s: Option<f64>,
}

impl SimJob {
    /// A job whose cost is known exactly.
    pub fn new(cost_s: f64) -> Self {
        Self {
            cost_s,
            estimate_s: None,
        }
    }

    fn estimate(&self) -> f64 {
        self.estimate_s.unwrap_or(self.cost_s)
    }
}

/// One simulated worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimWorker {
    /// CPU quota; 1.0 is one full core.
    pub speed: f64,
    /// Jobs it runs at once.
    pub slots: u32,
}

impl SimWorker {
    /// A worker with `slots = ceil(speed)`, as `gridcc-worker` defaults to
    /// for a CPU quota (at least one slot).
    pub fn with_quota(speed: f64) -> Self {
        let slots = if speed.is_finite() && speed > 1.0 {
            // Saturating float-to-int cast: a huge quota gets u32::MAX.
            speed.ceil() as u32
        } else {
            1
        };
        Self { speed, slots }
    }

    fn usable(&self) -> bool {
        self.slots > 0 && self.speed.is_finite() && self.speed > 0.0
    }
}

/// Where and when one job ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobRecord {
    /// Index of the worker it ran on.
    pub worker: usize,
    /// When the client released it.
    pub released_s: f64,
    /// When it was placed and started.
    pub start_s: f64,
    /// When it finished.
    pub finish_s: f64,
}

/// What one worker did.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerReport {
    pub speed: f64,
    pub slots: u32,
    /// Jobs it ran.
    pub jobs: usize,
    /// Seconds during which it ran at least one job.
    pub busy_s: f64,
    /// CPU-seconds of work it did; over all workers this sums to the
    /// trace's total cost.
    pub work_s: f64,
    /// `busy_s / makespan`, as BENCHMARKING.md defines utilization.
    pub utilization: f64,
    /// `work_s / (min(speed, slots) × makespan)`: the share of the CPU it
    /// could have delivered that it did deliver.
    pub cpu_share: f64,
}

/// The outcome of one simulated build.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    pub policy: &'static str,
    /// Seconds from the first release to the last finish.
    pub makespan_s: f64,
    /// [`lower_bound_s`] for the same input.
    pub lower_bound_s: f64,
    /// `lower_bound_s / makespan_s` (1 when both are zero).
    pub efficiency: f64,
    /// How often the policy answered [`Decision::Wait`].
    pub waits: u64,
    /// Per worker, in input order.
    pub workers: Vec<WorkerReport>,
    /// Per job, in trace order.
    pub jobs: Vec<JobRecord>,
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("parallelism (make -j) must be at least 1")]
    NoParallelism,
    #[error("job {index}: cost {cost_s} s is not a finite non-negative number")]
    BadCost { index: usize, cost_s: f64 },
    #[error("no worker can run jobs (every worker has zero slots or a non-positive speed)")]
    NoCapacity,
    #[error("policy {policy} placed job {job} on worker {worker}, which has no free slot")]
    BadPlacement {
        policy: &'static str,
        job: usize,
        worker: usize,
    },
    #[error("policy {policy} left job {job} unplaced while a slot was free")]
    Refused { policy: &'static str, job: usize },
}

/// A trace line that is not a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trace line {line}: {reason}")]
pub struct TraceError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// Parses a JSON-lines trace: one object per line with a number `cost_s`
/// (seconds on a 1.0-CPU worker, finite and non-negative) and optionally
/// `estimate_s` (what the policy is told instead). Other fields are
/// ignored, so a gridcc-bench job log can be fed back as is. Blank lines
/// are skipped.
pub fn parse_trace(text: &str) -> Result<Vec<SimJob>, TraceError> {
    let mut jobs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| TraceError {
            line: i + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| err("expected a JSON object".to_owned()))?;
        let seconds = |key: &str| -> Result<Option<f64>, TraceError> {
            match object.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => match v.as_f64() {
                    Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                    _ => Err(err(format!(
                        "`{key}` must be a non-negative number of seconds, got {v}"
                    ))),
                },
            }
        };
        let cost_s = seconds("cost_s")?.ok_or_else(|| err("missing `cost_s`".to_owned()))?;
        let estimate_s = seconds("estimate_s")?;
        jobs.push(SimJob { cost_s, estimate_s });
    }
    Ok(jobs)
}

/// The shape of a synthetic trace: a lognormal body plus rare long poles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceShape {
    /// Median cost of an ordinary job, in seconds at 1.0 CPU.
    pub median_s: f64,
    /// Standard deviation of the cost's logarithm; 0.8 puts 90% of the
    /// ordinary jobs within 0.27–3.7× the median.
    pub sigma: f64,
    /// One job in this many is a long pole (0: none).
    pub pole_every: usize,
    /// A long pole costs between these two multiples of the median.
    pub pole_x: (f64, f64),
}

impl TraceShape {
    /// Ordinary files around 1 s, one in fifty 10–20× that.
    pub const MODERATE: Self = Self {
        median_s: 1.0,
        sigma: 0.8,
        pole_every: 50,
        pole_x: (10.0, 20.0),
    };

    /// Closer to the CPython report: most files 0.5–2 s, a few "huge"
    /// ones (`ceval.c`, `unicodeobject.c`) of 10–30 s, that is 20–60× the
    /// median, so that a pole is a large part of the build.
    pub const CPYTHON_LIKE: Self = Self {
        median_s: 0.5,
        sigma: 0.8,
        pole_every: 60,
        pole_x: (20.0, 60.0),
    };
}

/// A synthetic build trace of `jobs` jobs shaped by `shape`, long poles at
/// random places in the trace (make meets them wherever the Makefile lists
/// them). Deterministic for a given seed.
pub fn synthetic_trace(jobs: usize, shape: TraceShape, seed: u64) -> Vec<SimJob> {
    let mut rng = SplitMix64::new(seed);
    (0..jobs)
        .map(|_| {
            // Box–Muller: a standard normal from two uniforms; 1 - u keeps
            // the logarithm's argument in (0, 1].
            let u1 = 1.0 - rng.unit_f64();
            let u2 = rng.unit_f64();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let pole = shape.pole_every > 0 && rng.below(shape.pole_every) == 0;
            let (lo, hi) = shape.pole_x;
            let factor = if pole {
                lo + (hi - lo) * rng.unit_f64()
            } else {
                (shape.sigma * z).exp()
            };
            let cost = shape.median_s * factor;
            // Garbage shapes (NaN, negative) give zero-cost jobs, not NaN.
            SimJob::new(if cost.is_finite() && cost > 0.0 {
                cost
            } else {
                0.0
            })
        })
        .collect()
}

/// The makespan no policy can beat; see the module documentation.
pub fn lower_bound_s(jobs: &[SimJob], workers: &[SimWorker], parallelism: usize) -> f64 {
    let usable = || workers.iter().filter(|w| w.usable());
    let capacity: f64 = usable().map(|w| w.speed.min(f64::from(w.slots))).sum();
    let throughput = capacity.min(parallelism as f64);
    let fastest = usable().map(|w| w.speed.min(1.0)).fold(0.0, f64::max);
    let total: f64 = jobs.iter().map(|j| j.cost_s).sum();
    let largest = jobs.iter().map(|j| j.cost_s).fold(0.0, f64::max);
    if total <= 0.0 {
        return 0.0;
    }
    if throughput <= 0.0 || fastest <= 0.0 {
        return f64::INFINITY;
    }
    (total / throughput).max(largest / fastest)
}

/// What the policy is shown as a worker's `queued_work_s`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueuedWork {
    /// Estimated work left: `estimate × fraction not yet done`, summed
    /// over the running jobs (a coordinator that tracks elapsed time).
    #[default]
    Remaining,
    /// The full estimates of the running jobs, however far along: what a
    /// coordinator that sums its open leases' cost hints reports.
    Placed,
}

/// A job running on a worker.
#[derive(Debug, Clone, Copy)]
struct Running {
    job: usize,
    remaining_s: f64,
}

/// Simulates the build of `jobs` (in trace order) with at most `parallelism`
/// jobs outstanding, on `workers`, placing with `policy`; the policy sees
/// [`QueuedWork::Remaining`].
pub fn simulate(
    jobs: &[SimJob],
    workers: &[SimWorker],
    parallelism: usize,
    policy: &mut dyn Policy,
) -> Result<SimReport, SimError> {
    simulate_with(jobs, workers, parallelism, policy, QueuedWork::Remaining)
}

/// [`simulate`], choosing what the policy sees as queued work.
pub fn simulate_with(
    jobs: &[SimJob],
    workers: &[SimWorker],
    parallelism: usize,
    policy: &mut dyn Policy,
    queued: QueuedWork,
) -> Result<SimReport, SimError> {
    if parallelism == 0 {
        return Err(SimError::NoParallelism);
    }
    if let Some((index, job)) = jobs
        .iter()
        .enumerate()
        .find(|(_, j)| !(j.cost_s.is_finite() && j.cost_s >= 0.0))
    {
        return Err(SimError::BadCost {
            index,
            cost_s: job.cost_s,
        });
    }
    if !jobs.is_empty() && !workers.iter().any(SimWorker::usable) {
        return Err(SimError::NoCapacity);
    }

    let mut views: Vec<WorkerView> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| WorkerView {
            id: i as u64,
            slots: w.slots,
            running: 0,
            queued_work_s: 0.0,
            speed: w.speed,
            healthy: w.usable(),
        })
        .collect();
    let mut on: Vec<Vec<Running>> = vec![Vec::new(); workers.len()];
    let mut reports: Vec<WorkerReport> = workers
        .iter()
        .map(|w| WorkerReport {
            speed: w.speed,
            slots: w.slots,
            jobs: 0,
            busy_s: 0.0,
            work_s: 0.0,
            utilization: 0.0,
            cpu_share: 0.0,
        })
        .collect();
    let mut records: Vec<Option<JobRecord>> = vec![None; jobs.len()];
    let mut released_s = vec![0.0; jobs.len()];
    let mut pending: VecDeque<usize> = VecDeque::new();
    let mut next_release = 0;
    let mut outstanding = 0;
    let mut running_total = 0usize;
    let mut waits = 0u64;
    let mut now = 0.0f64;

    loop {
        // make -jJ: top the client's window up, in trace order.
        while outstanding < parallelism && next_release < jobs.len() {
            released_s[next_release] = now;
            pending.push_back(next_release);
            next_release += 1;
            outstanding += 1;
        }

        // Offer the queue to the policy, oldest first.
        let mut k = 0;
        while k < pending.len() {
            let job = pending[k];
            let view = JobView {
                cost_s: jobs[job].estimate(),
            };
            let mut decision = policy.place_or_wait(&view, &views);
            if decision == Decision::Wait && running_total == 0 {
                // Nothing running means nothing will re-trigger the
                // decision: the `Wait` contract is broken, so fall back.
                decision = match policy.place(&view, &views) {
                    Some(i) => Decision::Place(i),
                    None => Decision::NoFreeSlot,
                };
            }
            match decision {
                Decision::Place(w) => {
                    if !views.get(w).is_some_and(WorkerView::has_free_slot) {
                        return Err(SimError::BadPlacement {
                            policy: policy.name(),
                            job,
                            worker: w,
                        });
                    }
                    pending.remove(k);
                    on[w].push(Running {
                        job,
                        remaining_s: jobs[job].cost_s,
                    });
                    views[w].running += 1;
                    views[w].queued_work_s += view.cost_s;
                    running_total += 1;
                    reports[w].jobs += 1;
                    records[job] = Some(JobRecord {
                        worker: w,
                        released_s: released_s[job],
                        start_s: now,
                        finish_s: now,
                    });
                }
                Decision::Wait => {
                    waits += 1;
                    k += 1;
                }
                Decision::NoFreeSlot => {
                    if views.iter().any(WorkerView::has_free_slot) {
                        return Err(SimError::Refused {
                            policy: policy.name(),
                            job,
                        });
                    }
                    break;
                }
            }
        }

        if running_total == 0 {
            if pending.is_empty() && next_release == jobs.len() {
                break;
            }
            // Usable workers exist and all are idle, so the policy had a
            // free slot for the head of the queue and must have taken it.
            let job = pending.front().copied().unwrap_or(next_release);
            return Err(SimError::Refused {
                policy: policy.name(),
                job,
            });
        }

        // The next event: the running job that needs the least time at the
        // current rates. Rates only change at events, so this is exact.
        let rate = |w: usize| (workers[w].speed / on[w].len() as f64).min(1.0);
        let mut step = f64::INFINITY;
        let mut first = (0, 0);
        for (w, list) in on.iter().enumerate() {
            for (k, r) in list.iter().enumerate() {
                let t = r.remaining_s / rate(w);
                if t < step {
                    step = t;
                    first = (w, k);
                }
            }
        }
        now += step;

        for (w, list) in on.iter_mut().enumerate() {
            if list.is_empty() {
                continue;
            }
            let rate = (workers[w].speed / list.len() as f64).min(1.0);
            reports[w].busy_s += step;
            let mut k = 0;
            while k < list.len() {
                let r = &mut list[k];
                let done = (rate * step).min(r.remaining_s);
                // The job defining the step finishes by construction; others
                // finishing in the same instant are caught by a relative
                // tolerance, so rounding never leaves a sliver of work.
                let tolerance = 1e-9 * jobs[r.job].cost_s.max(1e-3);
                if (w, k) == first || r.remaining_s - done <= tolerance {
                    reports[w].work_s += r.remaining_s;
                    if let Some(rec) = records[r.job].as_mut() {
                        rec.finish_s = now;
                    }
                    list.swap_remove(k);
                    views[w].running -= 1;
                    running_total -= 1;
                    outstanding -= 1;
                    // swap_remove moved the last job into slot k, and the
                    // job `first` pointed at may have moved: only the first
                    // match matters, so clear it.
                    first = (usize::MAX, usize::MAX);
                    continue;
                }
                r.remaining_s -= done;
                reports[w].work_s += done;
                k += 1;
            }
            // The estimated work left: estimate × fraction not yet done.
            views[w].queued_work_s = list
                .iter()
                .map(|r| {
                    let job = &jobs[r.job];
                    if queued == QueuedWork::Placed {
                        job.estimate()
                    } else if job.cost_s > 0.0 {
                        job.estimate() * (r.remaining_s / job.cost_s)
                    } else {
                        0.0
                    }
                })
                .sum();
        }
    }

    let makespan_s = now;
    let lower = lower_bound_s(jobs, workers, parallelism);
    for (r, w) in reports.iter_mut().zip(workers) {
        if makespan_s > 0.0 {
            r.utilization = r.busy_s / makespan_s;
            let capacity = w.speed.min(f64::from(w.slots));
            if capacity > 0.0 && capacity.is_finite() {
                r.cpu_share = r.work_s / (capacity * makespan_s);
            }
        }
    }
    Ok(SimReport {
        policy: policy.name(),
        makespan_s,
        lower_bound_s: lower,
        efficiency: if makespan_s > 0.0 {
            lower / makespan_s
        } else {
            1.0
        },
        waits,
        workers: reports,
        // Every released job was placed (the loop ends only when nothing is
        // pending or running), so every record is set.
        jobs: records.into_iter().flatten().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{by_name, POLICY_NAMES};
    use proptest::prelude::*;

    fn run(name: &str, jobs: &[SimJob], workers: &[SimWorker], j: usize) -> SimReport {
        simulate(jobs, workers, j, by_name(name).unwrap().as_mut()).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn processor_sharing_by_hand() {
        // Two jobs share one 1.0-CPU worker: both at 0.5 until the 1 s job
        // is done at t = 2, then the 2 s job alone has 1 s left at rate 1.
        let jobs = [SimJob::new(1.0), SimJob::new(2.0)];
        let r = run(
            "weighted",
            &jobs,
            &[SimWorker {
                speed: 1.0,
                slots: 2,
            }],
            2,
        );
        assert!(close(r.jobs[0].finish_s, 2.0), "{:?}", r.jobs);
        assert!(close(r.jobs[1].finish_s, 3.0));
        assert!(close(r.makespan_s, 3.0) && close(r.efficiency, 1.0));
        // One job on a 4-CPU worker still uses one core.
        let r = run(
            "weighted",
            &[SimJob::new(2.0)],
            &[SimWorker::with_quota(4.0)],
            1,
        );
        assert!(close(r.makespan_s, 2.0));
        // make -j1 serializes even on a wide grid.
        let ws = [SimWorker::with_quota(1.0), SimWorker::with_quota(1.0)];
        let r = run("round-robin", &jobs, &ws, 1);
        assert!(close(r.makespan_s, 3.0));
        assert!(close(r.jobs[1].released_s, 1.0));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let w = [SimWorker::with_quota(1.0)];
        let mut p = by_name("weighted").unwrap();
        let jobs = [SimJob::new(1.0)];
        assert_eq!(
            simulate(&jobs, &w, 0, p.as_mut()),
            Err(SimError::NoParallelism)
        );
        let nan = [SimJob::new(f64::NAN)];
        assert!(matches!(
            simulate(&nan, &w, 1, p.as_mut()),
            Err(SimError::BadCost { index: 0, .. })
        ));
        let dead = [
            SimWorker {
                speed: 0.0,
                slots: 2,
            },
            SimWorker {
                speed: f64::NAN,
                slots: 1,
            },
            SimWorker {
                speed: 2.0,
                slots: 0,
            },
        ];
        assert_eq!(
            simulate(&jobs, &dead, 1, p.as_mut()),
            Err(SimError::NoCapacity)
        );
        // A dead worker beside a live one is simply never used.
        let mixed = [dead[0], w[0]];
        let r = simulate(&jobs, &mixed, 4, p.as_mut()).unwrap();
        assert_eq!(r.workers[0].jobs, 0);
        assert!(simulate(&[], &[], 1, p.as_mut()).unwrap().makespan_s == 0.0);
    }

    #[test]
    fn trace_parser_reports_line_numbers() {
        let text = "{\"cost_s\": 1.5, \"file\": \"a.c\"}\n\n{\"cost_s\": 2, \"estimate_s\": 3}\n";
        let jobs = parse_trace(text).unwrap();
        assert_eq!(
            jobs,
            [
                SimJob::new(1.5),
                SimJob {
                    cost_s: 2.0,
                    estimate_s: Some(3.0)
                }
            ]
        );
        let cases = [
            ("{\"cost_s\": 1}\n{cost_s: 1}", 2, "not JSON"),
            ("\n\n[1, 2]", 3, "object"),
            ("{\"file\": \"a.c\"}", 1, "missing `cost_s`"),
            ("{\"cost_s\": -1}", 1, "non-negative"),
            ("{\"cost_s\": \"1\"}", 1, "non-negative"),
            ("{\"cost_s\": 1, \"estimate_s\": true}", 1, "estimate_s"),
            ("{\"cost_s\": 1e999}", 1, "not JSON"),
        ];
        for (text, line, needle) in cases {
            let err = parse_trace(text).unwrap_err();
            assert_eq!(err.line, line, "{text}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().starts_with(&format!("trace line {line}: ")));
        }
    }

    #[test]
    fn weighted_gives_a_twice_as_fast_worker_twice_the_jobs() {
        let jobs = vec![SimJob::new(1.0); 2000];
        let ws = [
            SimWorker {
                speed: 1.0,
                slots: 4,
            },
            SimWorker {
                speed: 2.0,
                slots: 4,
            },
        ];
        for j in [8, 32] {
            let r = run("weighted", &jobs, &ws, j);
            let ratio = r.workers[1].jobs as f64 / r.workers[0].jobs as f64;
            assert!((1.6..=2.4).contains(&ratio), "-j{j}: ratio {ratio}");
        }
    }

    /// The reference report's shapes (seeds/: the CPython benchmark), with
    /// `slots = ceil(speed)`, on a CPython-like heavy-tailed trace.
    fn reference_shapes() -> Vec<(&'static str, Vec<SimWorker>)> {
        let shape = |speeds: &[f64]| speeds.iter().map(|&s| SimWorker::with_quota(s)).collect();
        vec![
            ("het 1x4.0", shape(&[4.0])),
            ("het 0.8+1.2+2.0", shape(&[0.8, 1.2, 2.0])),
            ("het 0.5+0.6+0.8+1.0+1.1", shape(&[0.5, 0.6, 0.8, 1.0, 1.1])),
            ("eq 1x2.5", shape(&[2.5])),
            ("eq 3x0.83", shape(&[0.83; 3])),
            ("eq 4x0.625", shape(&[0.625; 4])),
            ("eq 5x0.5", shape(&[0.5; 5])),
        ]
    }

    /// Prints (with `--nocapture`) each policy's efficiency on the
    /// reference shapes, and holds the claims the docs make about them.
    #[test]
    fn reference_shapes_table() {
        let j = 8;
        let seeds = 1..=10u64;
        let at = |name: &str| POLICY_NAMES.iter().position(|n| *n == name).unwrap();
        for (trace, shape) in [
            ("moderate", TraceShape::MODERATE),
            ("cpython-like", TraceShape::CPYTHON_LIKE),
        ] {
            println!(
                "\n{trace} trace, 500 jobs, make -j{j}, seeds {seeds:?}: \
                 efficiency = bound / makespan, mean [min]"
            );
            print!("{:<26}{:>8}", "shape", "bound_s");
            for name in POLICY_NAMES {
                print!("{name:>16}");
            }
            println!();
            for (label, ws) in reference_shapes() {
                let mut eff = vec![Vec::new(); POLICY_NAMES.len()];
                let mut bound = 0.0;
                for seed in seeds.clone() {
                    let jobs = synthetic_trace(500, shape, seed);
                    bound += lower_bound_s(&jobs, &ws, j) / seeds.clone().count() as f64;
                    for (p, name) in POLICY_NAMES.iter().enumerate() {
                        eff[p].push(run(name, &jobs, &ws, j).efficiency);
                    }
                }
                let mean = |p: usize| eff[p].iter().sum::<f64>() / eff[p].len() as f64;
                print!("{label:<26}{bound:>8.1}");
                for (p, e) in eff.iter().enumerate() {
                    let min = e.iter().copied().fold(f64::INFINITY, f64::min);
                    print!("{:>9.3} [{min:.3}]", mean(p));
                }
                println!();
                if label.starts_with("het") && ws.len() > 1 {
                    print!("{:<34}", "  (queued = placed costs)");
                    for name in POLICY_NAMES {
                        let e: f64 = seeds
                            .clone()
                            .map(|seed| {
                                let jobs = synthetic_trace(500, shape, seed);
                                let mut p = by_name(name).unwrap();
                                simulate_with(&jobs, &ws, j, p.as_mut(), QueuedWork::Placed)
                                    .unwrap()
                                    .efficiency
                            })
                            .sum::<f64>()
                            / seeds.clone().count() as f64;
                        print!("{e:>9.3}{:>7}", "");
                    }
                    println!();
                }
                assert!(mean(at("weighted")) >= 0.9, "{trace} {label}");
                assert!(
                    mean(at("lookahead")) >= mean(at("weighted")) - 1e-9,
                    "{trace} {label}"
                );
            }
        }
    }

    /// Where the policies have a choice, weighted beats least-loaded. With
    /// `make -j4` on the heterogeneous shapes some slot is free at every
    /// decision, so where a job goes decides the makespan. (With J at or
    /// above the grid's slots, every job after the first few takes the one
    /// slot that just freed, whatever the policy, and the two differ only by
    /// the first few placements: then either may be ahead by a fraction of
    /// a percent.)
    #[test]
    fn weighted_beats_least_loaded_when_slots_are_free() {
        for shape in [TraceShape::MODERATE, TraceShape::CPYTHON_LIKE] {
            for (label, ws) in reference_shapes() {
                if !label.starts_with("het") || ws.len() < 2 {
                    continue;
                }
                for seed in 1..=5u64 {
                    let jobs = synthetic_trace(300, shape, seed);
                    let weighted = run("weighted", &jobs, &ws, 4).makespan_s;
                    let least = run("least-loaded", &jobs, &ws, 4).makespan_s;
                    assert!(
                        weighted < least,
                        "{label} seed {seed}: weighted {weighted} vs least-loaded {least}"
                    );
                }
            }
        }
    }

    fn any_workers() -> impl Strategy<Value = Vec<SimWorker>> {
        proptest::collection::vec(
            (0.05..4.0f64, 1u32..5).prop_map(|(speed, slots)| SimWorker { speed, slots }),
            1..6,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn simulation_invariants(
            costs in proptest::collection::vec(
                prop_oneof![8 => 0.01..5.0f64, 1 => Just(0.0), 1 => 5.0..60.0f64], 0..80),
            noise in proptest::collection::vec(0.25..4.0f64, 80),
            workers in any_workers(),
            j in 1usize..12,
        ) {
            // Half the jobs carry a wrong estimate, as real ones do.
            let jobs: Vec<SimJob> = costs.iter().zip(&noise).enumerate().map(|(i, (&c, &f))| SimJob {
                cost_s: c,
                estimate_s: (i % 2 == 0).then_some(c * f),
            }).collect();
            let total: f64 = costs.iter().sum();
            for name in POLICY_NAMES {
                let r = run(name, &jobs, &workers, j);
                prop_assert!(r.makespan_s >= r.lower_bound_s * (1.0 - 1e-9),
                    "{name}: makespan {} < bound {}", r.makespan_s, r.lower_bound_s);
                prop_assert!(r.efficiency <= 1.0 + 1e-9);
                // Every job ran exactly once, on a real worker, and took at
                // least its cost at one core.
                prop_assert_eq!(r.jobs.len(), jobs.len());
                prop_assert_eq!(r.workers.iter().map(|w| w.jobs).sum::<usize>(), jobs.len());
                for (rec, job) in r.jobs.iter().zip(&jobs) {
                    prop_assert!(rec.worker < workers.len());
                    prop_assert!(rec.released_s <= rec.start_s);
                    let fastest = workers[rec.worker].speed.min(1.0);
                    prop_assert!(rec.finish_s - rec.start_s >= job.cost_s / fastest * (1.0 - 1e-9) - 1e-9);
                }
                let work: f64 = r.workers.iter().map(|w| w.work_s).sum();
                prop_assert!(close(work, total), "{name}: work {work} != cost {total}");
                for w in &r.workers {
                    prop_assert!(w.busy_s <= r.makespan_s * (1.0 + 1e-9) + 1e-12);
                    prop_assert!(w.cpu_share <= 1.0 + 1e-9);
                }
            }
        }
    }
}

/// Properties of the trace reader over arbitrary text and over traces
/// with extreme costs: a trace or a line-numbered error, and a trace that
/// parses simulates to a report or an error under every policy.
#[cfg(test)]
mod trace_properties {
    use super::*;
    use crate::{by_name, POLICY_NAMES};
    use proptest::prelude::*;

    fn seconds() -> impl Strategy<Value = String> {
        prop_oneof![
            (0.0..100.0f64).prop_map(|x| x.to_string()),
            proptest::sample::select(
                &[
                    "0",
                    "-1",
                    "1e308",
                    "1.7976931348623157e308",
                    "5e-324",
                    "1e-300",
                    "null",
                    "\"1\"",
                    "true",
                    "[]",
                    "1e999",
                    "NaN",
                ][..]
            )
            .prop_map(str::to_owned),
        ]
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (seconds(), proptest::option::of(seconds()))
                .prop_map(|(c, e)| match e {
                    Some(e) => format!("{{\"cost_s\":{c},\"estimate_s\":{e},\"key\":\"k\"}}"),
                    None => format!("{{\"cost_s\":{c}}}"),
                }),
            1 => ".{0,20}",
            1 => Just(String::new()),
            1 => "[\\[\\]{}\":,0-9a-z ]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_traces_parse_or_name_their_line(
            lines in proptest::collection::vec(line(), 0..8),
            workers in proptest::collection::vec((0.0..4.0f64, 0..3u32), 1..4),
            parallelism in 1..6usize,
        ) {
            let text = lines.join("\n");
            let jobs = match parse_trace(&text) {
                Ok(jobs) => jobs,
                Err(e) => {
                    prop_assert!(e.line >= 1 && e.line <= lines.len().max(1), "{e}");
                    return Ok(());
                }
            };
            for job in &jobs {
                prop_assert!(job.cost_s.is_finite() && job.cost_s >= 0.0);
            }
            let workers: Vec<SimWorker> = workers
                .into_iter()
                .map(|(speed, slots)| SimWorker { speed, slots })
                .collect();
            for name in POLICY_NAMES {
                let mut policy = by_name(name).unwrap();
                if let Ok(report) = simulate(&jobs, &workers, parallelism, policy.as_mut()) {
                    prop_assert_eq!(report.jobs.len(), jobs.len());
                }
            }
        }
    }
}
