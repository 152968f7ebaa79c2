//! Replaying a recorded build on other worker shapes and policies: the
//! build as it happened, not as `make -jJ` would run a list of jobs.
//!
//! # Why not the `make -jJ` model
//!
//! [`crate::sim`] releases jobs in trace order whenever fewer than `J` are
//! outstanding. Real builds release less: CPython's `setup.py` compiles its
//! extensions two at a time, links and `configure`-like steps run alone,
//! and the client preprocesses every job on its own (CPU-limited) cores
//! before asking for a worker. A bound and a simulator that ignore this
//! promise a makespan no scheduler can reach.
//!
//! # Model
//!
//! A [`Recording`] holds, per job in the order the client started them:
//!
//! - **Release.** `after`: the job whose end last preceded this job's start
//!   in the recording (none for the jobs that started before any ended),
//!   and `gap_s`, the time from that end (or from the build's start) to
//!   this job's start. The replay releases the job `gap_s` after `after`
//!   ends *in the replay*, and only while fewer than `parallelism` jobs are
//!   outstanding (make's `-j`). Whatever the client did between (make's
//!   own work, a link, `setup.py` waiting for its pair) is in the gap: a
//!   faster grid moves what waited on a job, not the serial work itself.
//!   The assumption is that each job waited for the last one to end before
//!   it, which holds for make with a full window (a freed slot releases the
//!   next job) and for `setup.py`'s pairs; a job that was released by
//!   something else entirely is tied to an unrelated job, which costs
//!   accuracy on shapes far from the recorded one.
//! - **Client.** `client_cpu_s`: the wrapper's own CPU and its
//!   preprocessor's, run first, on a processor-sharing client of
//!   `client_cpus` cores (each job at most one core).
//! - **Grid.** `cost_s` (seconds on one reference core; `None` for a job
//!   that never reached a worker, such as a cache hit) queues FIFO at the
//!   policy and runs on processor-sharing workers exactly as in
//!   [`crate::sim`].
//! - **Slot overhead.** `slot_s`: the time the job held its worker slot
//!   beyond the compile (upload, the worker's staging, sending the object
//!   back), a fixed delay after the compile during which the slot stays
//!   taken but the worker's CPU is not shared. A worker's slot is free only
//!   once the coordinator hears the job finished, so on a one-slot worker
//!   this time adds up job after job.
//! - **Transfer.** `transfer_s`: the rest of the recorded job that no
//!   resource models (receiving and writing the object), a fixed delay
//!   after the slot is freed.
//!
//! The build ends `tail_s` after the last job (the final links).
//!
//! # Trace-aware lower bound
//!
//! [`trace_bound`] is what no policy can beat under this model: the longest
//! of the release chain (gaps, client CPU at the client's best rate, each
//! cost on the fastest worker alone, transfers), the client's CPU over its
//! cores, and the grid's work over its throughput, each plus the time
//! before the first release and the tail.

use std::collections::VecDeque;

use crate::sim::SimWorker;
use crate::{Decision, JobView, Policy, WorkerView};

/// One job of a recorded build; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayJob {
    /// Index of the job whose end released this one; always smaller than
    /// this job's own index.
    pub after: Option<usize>,
    pub gap_s: f64,
    pub client_cpu_s: f64,
    /// Seconds on one reference core; `None` when no worker ran it.
    pub cost_s: Option<f64>,
    /// What the policy is told; `None` means `cost_s`.
    pub estimate_s: Option<f64>,
    /// Time the slot stays taken after the compile.
    pub slot_s: f64,
    pub transfer_s: f64,
}

/// A recorded build, ready to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// In the order the client started them.
    pub jobs: Vec<ReplayJob>,
    /// From the last job's end to the build's end.
    pub tail_s: f64,
    /// make's `-j`: at most this many jobs outstanding.
    pub parallelism: usize,
    /// The client's CPU limit; `None` is unlimited.
    pub client_cpus: Option<f64>,
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error("parallelism (make -j) must be at least 1")]
    NoParallelism,
    #[error("client_cpus must be a positive number, not {0}")]
    BadClient(f64),
    #[error("job {index}: {what} is not a finite non-negative number of seconds")]
    BadTime { index: usize, what: &'static str },
    #[error("job {index} is released by job {after}, which does not start before it")]
    BadOrder { index: usize, after: usize },
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

/// The trace-aware lower bound and its three parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceBound {
    /// The longest release chain.
    pub path_s: f64,
    /// The client's CPU over its cores.
    pub client_s: f64,
    /// The grid's work over its throughput.
    pub work_s: f64,
    /// The largest of the three.
    pub bound_s: f64,
}

/// When one job went through its phases in the replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayedJob {
    pub released_s: f64,
    /// The worker and when the policy placed it there; `None` for a job
    /// with no cost.
    pub placed: Option<(usize, f64)>,
    pub finish_s: f64,
}

/// The outcome of one replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    pub policy: &'static str,
    /// From the build's start to its end (the tail included).
    pub makespan_s: f64,
    pub bound: TraceBound,
    /// How often the policy answered [`Decision::Wait`].
    pub waits: u64,
    /// Per job, in recording order.
    pub jobs: Vec<ReplayedJob>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Waiting,
    Client { left_s: f64 },
    Queued,
    Remote { worker: usize, left_s: f64 },
    Hold { worker: usize, until_s: f64 },
    Transfer { until_s: f64 },
    Done,
}

fn check(rec: &Recording) -> Result<(), ReplayError> {
    if rec.parallelism == 0 {
        return Err(ReplayError::NoParallelism);
    }
    if let Some(c) = rec.client_cpus.filter(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(ReplayError::BadClient(c));
    }
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    if !ok(rec.tail_s) {
        return Err(ReplayError::BadTime {
            index: rec.jobs.len(),
            what: "tail_s",
        });
    }
    for (index, j) in rec.jobs.iter().enumerate() {
        let bad = |what| Err(ReplayError::BadTime { index, what });
        if !ok(j.gap_s) {
            return bad("gap_s");
        }
        if !ok(j.client_cpu_s) {
            return bad("client_cpu_s");
        }
        if !ok(j.transfer_s) {
            return bad("transfer_s");
        }
        if !ok(j.slot_s) {
            return bad("slot_s");
        }
        if j.cost_s.is_some_and(|c| !ok(c)) {
            return bad("cost_s");
        }
        if j.estimate_s.is_some_and(|c| !ok(c)) {
            return bad("estimate_s");
        }
        if let Some(after) = j.after.filter(|a| *a >= index) {
            return Err(ReplayError::BadOrder { index, after });
        }
    }
    Ok(())
}

/// The bound no policy can beat on `workers`; see the module documentation.
pub fn trace_bound(rec: &Recording, workers: &[SimWorker]) -> Result<TraceBound, ReplayError> {
    check(rec)?;
    let usable = || {
        workers
            .iter()
            .filter(|w| w.slots > 0 && w.speed.is_finite() && w.speed > 0.0)
    };
    let fastest = usable().map(|w| w.speed.min(1.0)).fold(0.0, f64::max);
    let capacity: f64 = usable().map(|w| w.speed.min(f64::from(w.slots))).sum();
    let throughput = capacity.min(rec.parallelism as f64);
    let grid_jobs = rec.jobs.iter().any(|j| j.cost_s.is_some_and(|c| c > 0.0));
    if grid_jobs && fastest <= 0.0 {
        return Err(ReplayError::NoCapacity);
    }
    // One job gets at most one core of the client.
    let client_rate = rec.client_cpus.map_or(1.0, |c| c.min(1.0));
    let client_cores = rec
        .client_cpus
        .unwrap_or(f64::INFINITY)
        .min(rec.parallelism as f64);
    let mut chain = vec![0.0f64; rec.jobs.len()];
    for (i, j) in rec.jobs.iter().enumerate() {
        let before = j.after.map_or(0.0, |a| chain[a]);
        let remote = j
            .cost_s
            .map_or(0.0, |c| if c > 0.0 { c / fastest } else { 0.0 });
        chain[i] = before + j.gap_s + j.client_cpu_s / client_rate + remote + j.transfer_s;
    }
    let path_s = chain.iter().copied().fold(0.0, f64::max) + rec.tail_s;
    // Nothing runs before the earliest release.
    let first_s = rec
        .jobs
        .iter()
        .filter(|j| j.after.is_none())
        .map(|j| j.gap_s)
        .fold(f64::INFINITY, f64::min);
    let first_s = if first_s.is_finite() { first_s } else { 0.0 };
    let client_cpu: f64 = rec.jobs.iter().map(|j| j.client_cpu_s).sum();
    let client_s = first_s + client_cpu / client_cores + rec.tail_s;
    let work: f64 = rec.jobs.iter().filter_map(|j| j.cost_s).sum();
    let work_s = first_s + if work > 0.0 { work / throughput } else { 0.0 } + rec.tail_s;
    Ok(TraceBound {
        path_s,
        client_s,
        work_s,
        bound_s: path_s.max(client_s).max(work_s),
    })
}

/// Replays `rec` on `workers`, placing with `policy`.
pub fn replay(
    rec: &Recording,
    workers: &[SimWorker],
    policy: &mut dyn Policy,
) -> Result<ReplayReport, ReplayError> {
    let bound = trace_bound(rec, workers)?;
    let jobs = &rec.jobs;
    let n = jobs.len();
    let estimate = |i: usize| jobs[i].estimate_s.or(jobs[i].cost_s).unwrap_or(0.0);
    let mut views: Vec<WorkerView> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| WorkerView {
            id: i as u64,
            slots: w.slots,
            running: 0,
            queued_work_s: 0.0,
            speed: w.speed,
            healthy: w.slots > 0 && w.speed.is_finite() && w.speed > 0.0,
        })
        .collect();
    let mut on: Vec<Vec<usize>> = vec![Vec::new(); workers.len()];
    let mut phase = vec![Phase::Waiting; n];
    let mut out = vec![
        ReplayedJob {
            released_s: f64::NAN,
            placed: None,
            finish_s: f64::NAN,
        };
        n
    ];
    // Jobs not yet released, in recording order.
    let mut waiting: Vec<usize> = (0..n).collect();
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut outstanding = 0usize;
    let mut done = 0usize;
    let mut waits = 0u64;
    let mut now = 0.0f64;
    // Events closer than this are the same instant: rounding never leaves
    // a sliver of work or a release a hair in the future.
    const EPS: f64 = 1e-9;
    let ready_at = |i: usize, out: &[ReplayedJob]| -> Option<f64> {
        match jobs[i].after {
            None => Some(jobs[i].gap_s),
            Some(a) => {
                let f = out[a].finish_s;
                (!f.is_nan()).then_some(f + jobs[i].gap_s)
            }
        }
    };

    while done < n {
        // Release every ready job the window has room for, oldest first.
        let mut k = 0;
        while k < waiting.len() && outstanding < rec.parallelism {
            let i = waiting[k];
            match ready_at(i, &out) {
                Some(t) if t <= now + EPS => {
                    waiting.remove(k);
                    outstanding += 1;
                    out[i].released_s = now;
                    phase[i] = Phase::Client {
                        left_s: jobs[i].client_cpu_s,
                    };
                }
                _ => k += 1,
            }
        }
        // Zero-length phases pass at once.
        let mut moved = true;
        while moved {
            moved = false;
            for i in 0..n {
                let next = match phase[i] {
                    Phase::Client { left_s } if left_s <= EPS => {
                        if jobs[i].cost_s.is_some() {
                            queue.push_back(i);
                            Some(Phase::Queued)
                        } else {
                            Some(Phase::Transfer {
                                until_s: now + jobs[i].transfer_s,
                            })
                        }
                    }
                    Phase::Hold { worker, until_s } if until_s <= now + EPS => {
                        views[worker].running -= 1;
                        Some(Phase::Transfer {
                            until_s: now + jobs[i].transfer_s,
                        })
                    }
                    Phase::Transfer { until_s } if until_s <= now + EPS => {
                        out[i].finish_s = now;
                        outstanding -= 1;
                        done += 1;
                        Some(Phase::Done)
                    }
                    _ => None,
                };
                if let Some(p) = next {
                    phase[i] = p;
                    moved = true;
                }
            }
        }
        // Offer the queue to the policy, oldest first (as sim.rs does).
        let running_total: usize = on.iter().map(Vec::len).sum();
        let mut running_now = running_total;
        let mut k = 0;
        while k < queue.len() {
            let job = queue[k];
            let view = JobView {
                cost_s: estimate(job),
            };
            let mut decision = policy.place_or_wait(&view, &views);
            if decision == Decision::Wait && running_now == 0 {
                decision = match policy.place(&view, &views) {
                    Some(i) => Decision::Place(i),
                    None => Decision::NoFreeSlot,
                };
            }
            match decision {
                Decision::Place(w) => {
                    if !views.get(w).is_some_and(WorkerView::has_free_slot) {
                        return Err(ReplayError::BadPlacement {
                            policy: policy.name(),
                            job,
                            worker: w,
                        });
                    }
                    queue.remove(k);
                    on[w].push(job);
                    views[w].running += 1;
                    views[w].queued_work_s += view.cost_s;
                    running_now += 1;
                    out[job].placed = Some((w, now));
                    phase[job] = Phase::Remote {
                        worker: w,
                        left_s: jobs[job].cost_s.unwrap_or(0.0),
                    };
                }
                Decision::Wait => {
                    waits += 1;
                    k += 1;
                }
                Decision::NoFreeSlot => {
                    if views.iter().any(WorkerView::has_free_slot) {
                        return Err(ReplayError::Refused {
                            policy: policy.name(),
                            job,
                        });
                    }
                    break;
                }
            }
        }

        // The next event at the current rates.
        let clients = phase
            .iter()
            .filter(|p| matches!(p, Phase::Client { .. }))
            .count();
        let client_rate = match rec.client_cpus {
            Some(c) if clients > 0 => (c / clients as f64).min(1.0),
            _ => 1.0,
        };
        let rate = |w: usize| (workers[w].speed / on[w].len().max(1) as f64).min(1.0);
        let mut step = f64::INFINITY;
        for (i, p) in phase.iter().enumerate() {
            let t = match *p {
                Phase::Client { left_s } => left_s / client_rate,
                Phase::Remote { worker, left_s } => left_s / rate(worker),
                Phase::Transfer { until_s } | Phase::Hold { until_s, .. } => until_s - now,
                Phase::Waiting if outstanding < rec.parallelism => {
                    ready_at(i, &out).map_or(f64::INFINITY, |t| t - now)
                }
                _ => f64::INFINITY,
            };
            step = step.min(t.max(0.0));
        }
        if !step.is_finite() {
            if done == n {
                break;
            }
            // Nothing will ever happen again, yet jobs are left: only a
            // policy that keeps a queued job off a free slot can do that.
            let job = queue.front().copied().unwrap_or(0);
            return Err(ReplayError::Refused {
                policy: policy.name(),
                job,
            });
        }
        now += step;
        let rates: Vec<f64> = (0..workers.len()).map(rate).collect();
        for i in 0..n {
            match phase[i] {
                Phase::Client { left_s } => {
                    phase[i] = Phase::Client {
                        left_s: left_s - client_rate * step,
                    };
                }
                Phase::Remote { worker, left_s } => {
                    let left_s = left_s - rates[worker] * step;
                    let scale = jobs[i].cost_s.unwrap_or(0.0).max(1e-3);
                    phase[i] = if left_s <= EPS * scale {
                        // Off the CPU, still on the slot until the hold
                        // ends (which frees it, possibly at once).
                        on[worker].retain(|&j| j != i);
                        Phase::Hold {
                            worker,
                            until_s: now + jobs[i].slot_s,
                        }
                    } else {
                        Phase::Remote { worker, left_s }
                    };
                }
                _ => {}
            }
        }
        for (w, list) in on.iter().enumerate() {
            views[w].queued_work_s = list
                .iter()
                .map(|&j| match (phase[j], jobs[j].cost_s) {
                    (Phase::Remote { left_s, .. }, Some(c)) if c > 0.0 => {
                        estimate(j) * (left_s / c)
                    }
                    _ => 0.0,
                })
                .sum();
        }
    }
    let last = out.iter().map(|j| j.finish_s).fold(0.0, f64::max);
    Ok(ReplayReport {
        policy: policy.name(),
        makespan_s: last + rec.tail_s,
        bound,
        waits,
        jobs: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::by_name;

    fn job(after: Option<usize>, gap: f64, client: f64, cost: f64, transfer: f64) -> ReplayJob {
        ReplayJob {
            after,
            gap_s: gap,
            client_cpu_s: client,
            cost_s: Some(cost),
            estimate_s: None,
            slot_s: 0.0,
            transfer_s: transfer,
        }
    }

    fn rec(jobs: Vec<ReplayJob>, j: usize, client: Option<f64>, tail: f64) -> Recording {
        Recording {
            jobs,
            tail_s: tail,
            parallelism: j,
            client_cpus: client,
        }
    }

    fn run(r: &Recording, workers: &[SimWorker], policy: &str) -> ReplayReport {
        let mut p = by_name(policy).unwrap();
        replay(r, workers, p.as_mut()).unwrap()
    }

    #[test]
    fn a_serial_chain_takes_its_whole_length_whatever_the_grid() {
        // setup.py-like: each job waits for the one before, 0.5 s of
        // client work between. Five fast workers cannot help.
        let jobs = (0usize..4)
            .map(|i| job(i.checked_sub(1), 0.5, 0.1, 2.0, 0.05))
            .collect();
        let r = rec(jobs, 8, Some(1.0), 1.0);
        let five = [SimWorker::with_quota(1.0); 5];
        let rep = run(&r, &five, "least-loaded");
        let expect = 4.0 * (0.5 + 0.1 + 2.0 + 0.05) + 1.0;
        assert!((rep.makespan_s - expect).abs() < 1e-6, "{rep:?}");
        assert!((rep.bound.path_s - expect).abs() < 1e-6);
        assert!((rep.bound.bound_s - expect).abs() < 1e-6);
        // The naive bound would promise a fifth of the work.
        assert!(rep.bound.work_s < expect / 2.0);
    }

    #[test]
    fn independent_jobs_share_the_grid_and_the_client() {
        // Four jobs released at once, one worker of one core with two
        // slots: 8 s of work at one core is 8 s, plus the client's 4 × 0.5
        // CPU-s on 0.5 cores = 4 s of client time before the first can go
        // out (processor sharing: all four finish preprocessing together).
        let jobs = (0..4).map(|_| job(None, 0.0, 0.5, 2.0, 0.0)).collect();
        let r = rec(jobs, 8, Some(0.5), 0.0);
        let w = [SimWorker {
            speed: 1.0,
            slots: 2,
        }];
        let rep = run(&r, &w, "least-loaded");
        assert!((rep.makespan_s - 12.0).abs() < 1e-6, "{rep:?}");
        assert!(rep.bound.bound_s <= rep.makespan_s + 1e-9);
        assert!((rep.bound.work_s - 8.0).abs() < 1e-9);
        assert!((rep.bound.client_s - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_window_holds_releases_back() {
        // -j1: two independent jobs run one after the other.
        let jobs = vec![job(None, 0.0, 0.0, 1.0, 0.0), job(None, 0.0, 0.0, 1.0, 0.0)];
        let w = [SimWorker::with_quota(2.0)];
        assert!(
            (run(&rec(jobs.clone(), 1, None, 0.0), &w, "least-loaded").makespan_s - 2.0).abs()
                < 1e-9
        );
        assert!((run(&rec(jobs, 2, None, 0.0), &w, "least-loaded").makespan_s - 1.0).abs() < 1e-9);
    }

    #[test]
    fn slot_overhead_keeps_the_slot_but_not_the_cpu() {
        // One one-slot worker: each job holds it 1 s compiling and 0.5 s
        // after; the second waits for both.
        let mut a = job(None, 0.0, 0.0, 1.0, 0.25);
        a.slot_s = 0.5;
        let r = rec(vec![a.clone(), a], 4, None, 0.0);
        let rep = run(&r, &[SimWorker::with_quota(1.0)], "least-loaded");
        assert!((rep.makespan_s - 3.25).abs() < 1e-9, "{rep:?}");
        // Two slots on one core: the compiles share the core (2 s), the
        // holds overlap.
        let w = [SimWorker {
            speed: 1.0,
            slots: 2,
        }];
        let rep = run(&r, &w, "least-loaded");
        assert!((rep.makespan_s - 2.75).abs() < 1e-9, "{rep:?}");
    }

    #[test]
    fn jobs_without_a_worker_take_client_and_transfer_time_only() {
        let mut hit = job(None, 1.0, 0.2, 0.0, 0.3);
        hit.cost_s = None;
        let r = rec(vec![hit], 4, Some(1.0), 0.5);
        let rep = run(&r, &[SimWorker::with_quota(1.0)], "weighted");
        assert!((rep.makespan_s - 2.0).abs() < 1e-9, "{rep:?}");
        assert_eq!(rep.jobs[0].placed, None);
    }

    #[test]
    fn bad_recordings_are_refused_with_a_reason() {
        let w = [SimWorker::with_quota(1.0)];
        let mut p = by_name("least-loaded").unwrap();
        let forward = rec(vec![job(Some(0), 0.0, 0.0, 1.0, 0.0)], 1, None, 0.0);
        assert_eq!(
            replay(&forward, &w, p.as_mut()).unwrap_err(),
            ReplayError::BadOrder { index: 0, after: 0 }
        );
        let nan = rec(vec![job(None, f64::NAN, 0.0, 1.0, 0.0)], 1, None, 0.0);
        assert!(replay(&nan, &w, p.as_mut()).is_err());
        let none = rec(vec![job(None, 0.0, 0.0, 1.0, 0.0)], 0, None, 0.0);
        assert_eq!(
            replay(&none, &w, p.as_mut()).unwrap_err(),
            ReplayError::NoParallelism
        );
        let dead = [SimWorker {
            speed: 0.0,
            slots: 1,
        }];
        let one = rec(vec![job(None, 0.0, 0.0, 1.0, 0.0)], 1, None, 0.0);
        assert_eq!(
            replay(&one, &dead, p.as_mut()).unwrap_err(),
            ReplayError::NoCapacity
        );
    }

    proptest::proptest! {
        /// Whatever the recording, shape and policy: every job finishes,
        /// after its release and its predecessor's end plus the gap, and
        /// no replay beats the trace-aware bound.
        #[test]
        fn replays_respect_the_structure_and_the_bound(
            raw in proptest::collection::vec((0usize..4, 0.0f64..1.0, 0.0f64..0.5, 0.0f64..3.0, 0.0f64..0.2), 1..25),
            speeds in proptest::collection::vec(0.1f64..2.0, 1..5),
            j in 1usize..9,
            client in proptest::option::of(0.2f64..2.0),
            policy in proptest::sample::select(crate::POLICY_NAMES.to_vec()),
        ) {
            let jobs: Vec<ReplayJob> = raw
                .iter()
                .enumerate()
                .map(|(i, &(back, gap, c, cost, t))| {
                    job(i.checked_sub(back).filter(|_| back > 0), gap, c, cost, t)
                })
                .collect();
            let r = rec(jobs, j, client, 0.25);
            let workers: Vec<SimWorker> = speeds.iter().map(|&s| SimWorker::with_quota(s)).collect();
            let rep = run(&r, &workers, policy);
            proptest::prop_assert!(rep.makespan_s + 1e-6 >= rep.bound.bound_s, "{rep:?}");
            for (i, out) in rep.jobs.iter().enumerate() {
                proptest::prop_assert!(out.finish_s >= out.released_s);
                if let Some(a) = r.jobs[i].after {
                    proptest::prop_assert!(out.released_s + 1e-6 >= rep.jobs[a].finish_s + r.jobs[i].gap_s);
                }
            }
        }
    }
}
