//! The placement policies.
//!
//! | name | picks, among workers with a free slot | uses cost / speed |
//! |---|---|---|
//! | `round-robin` | the next one after the previous pick | no / no |
//! | `least-loaded` | the lowest busy fraction `running / slots` | no / no |
//! | `p2c` | the better of two sampled at random, by expected finish | yes / yes |
//! | `weighted` | the earliest expected finish under processor sharing, about `(queued + cost) / speed`, at most one core per job | yes / yes |
//! | `lookahead` | the same, assuming a worker stays full; through `place_or_wait`, a long pole may wait for a busy fast worker | yes / yes |
//!
//! Every policy treats a worker's numbers defensively: a NaN, infinite, zero
//! or negative speed counts as the slowest possible worker, and a NaN or
//! negative cost or queued work counts as zero, so no input makes a policy
//! panic or place on a full or unhealthy worker.

use std::cmp::Ordering;

use crate::splitmix::SplitMix64;
use crate::{Decision, JobView, Policy, UnknownPolicy, WorkerView};

/// Names accepted by [`by_name`].
pub const POLICY_NAMES: &[&str] = &[
    "round-robin",
    "least-loaded",
    "p2c",
    "weighted",
    "lookahead",
];

/// The seed `by_name("p2c")` uses, so two runs of the same build (or of the
/// simulator) make the same choices. Any value works; this one is splitmix64's
/// golden-ratio increment.
pub const P2C_DEFAULT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Builds a policy from its command-line name.
pub fn by_name(name: &str) -> Result<Box<dyn Policy>, UnknownPolicy> {
    match name {
        "round-robin" => Ok(Box::new(RoundRobin::default())),
        "least-loaded" => Ok(Box::new(LeastLoaded)),
        "p2c" => Ok(Box::new(PowerOfTwo::new(P2C_DEFAULT_SEED))),
        "weighted" => Ok(Box::new(Weighted)),
        "lookahead" => Ok(Box::new(Lookahead::default())),
        _ => Err(UnknownPolicy {
            name: name.to_owned(),
            known: POLICY_NAMES.join(", "),
        }),
    }
}

/// The slowest speed a policy assumes. A worker reporting a NaN, infinite,
/// zero or negative speed has not been measured or is broken; dividing by
/// this keeps every score finite and ranks such a worker last, yet still
/// lets it take a job when it is the only one with a free slot (a policy
/// answers "no" only when no slot is free).
const MIN_SPEED: f64 = 1e-6;

/// The largest amount of work, in seconds, a policy believes in. Clamping
/// keeps sums of queued work and cost finite (no inf - inf = NaN).
const MAX_WORK_S: f64 = 1e12;

fn speed_of(w: &WorkerView) -> f64 {
    if w.speed.is_finite() && w.speed > 0.0 {
        w.speed
    } else {
        MIN_SPEED
    }
}

fn work_s(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        0.0
    } else {
        x.min(MAX_WORK_S)
    }
}

/// Expected finish of `job` if placed on `w` now, under the processor
/// sharing a worker really does (the simulator's model: with `n` jobs
/// running, each progresses at `min(1, speed / n)` CPU-seconds per second).
/// The larger of two bounds:
///
/// - `cost / min(1, speed)`: a compile is one thread, so no worker runs it
///   faster than one core, and a worker below one core runs even a lone job
///   slower;
/// - `(cost + min(queued, running · cost)) / speed`: while the worker is
///   shared, this job finishes once the worker has done its cost plus the
///   other jobs' work done alongside it, which is at most `cost` per other
///   job (they progress no faster than this one) and at most all the
///   queued work.
///
/// Dividing by speed is what sends heavy jobs to strong workers: a 20 s job
/// finishes at 20 s on an idle 2.0-CPU worker but at 40 s on an idle 0.5-CPU
/// one, while a 1 s job barely cares.
///
/// The textbook `(queued + cost) / speed` is the finish on a worker that runs
/// its jobs one after another at its full speed. A gridcc worker does
/// neither: a job placed beside a long one does not wait for it, and a lone
/// job on a 2.0-CPU worker runs at one core. With that formula an idle
/// 2.0-CPU worker looks twice as fast as an idle 1.0-CPU one, so the first
/// jobs of a build piled onto the strongest worker while weaker ones idled;
/// with `make -j4` on 0.8+1.2+2.0 CPU the CPython trace took 42.8 s that way
/// and takes 39.4 s with this estimate (bound 35.7 s).
fn expected_finish_s(job: &JobView, w: &WorkerView) -> f64 {
    let speed = speed_of(w);
    let cost = work_s(job.cost_s);
    let alongside = work_s(w.queued_work_s).min(f64::from(w.running) * cost);
    (cost / speed.min(1.0)).max((cost + alongside) / speed)
}

/// Of two workers with the same expected finish, the one with more spare
/// CPU (`speed - running`) first, so the next job also finds a core free:
/// two idle workers of 1.2 and 2.0 CPU finish a lone job equally fast, but
/// only the 2.0-CPU one can take a second at full speed.
fn cmp_spare_cpu(a: &WorkerView, b: &WorkerView) -> Ordering {
    let spare = |w: &WorkerView| speed_of(w) - f64::from(w.running);
    spare(b).total_cmp(&spare(a))
}

/// Busy fraction `running / slots` compared exactly by cross-multiplying, so
/// no float rounding makes a tie; then the worker with more free slots wins.
fn cmp_busy_fraction(a: &WorkerView, b: &WorkerView) -> Ordering {
    let lhs = u64::from(a.running) * u64::from(b.slots);
    let rhs = u64::from(b.running) * u64::from(a.slots);
    lhs.cmp(&rhs).then_with(|| {
        let free_a = a.slots.saturating_sub(a.running);
        let free_b = b.slots.saturating_sub(b.running);
        free_b.cmp(&free_a)
    })
}

/// Hands jobs to workers in turn, skipping those without a free slot. The
/// cursor is an index into `workers`, so it assumes the caller passes the
/// workers in a stable order (the coordinator sorts by id); when the list
/// shrinks the cursor wraps around.
#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    next: usize,
}

impl Policy for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn place(&mut self, _job: &JobView, workers: &[WorkerView]) -> Option<usize> {
        let n = workers.len();
        if n == 0 {
            return None;
        }
        let start = self.next % n;
        let i = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| workers[i].has_free_slot())?;
        self.next = (i + 1) % n;
        Some(i)
    }
}

/// Picks the worker with the lowest fraction of busy slots (running / slots);
/// ties go to the worker with more free slots, then the lower index. This is
/// what distcc and icecream approximate; it ignores job cost and worker speed.
#[derive(Debug, Default, Clone)]
pub struct LeastLoaded;

impl Policy for LeastLoaded {
    fn name(&self) -> &'static str {
        "least-loaded"
    }

    fn place(&mut self, _job: &JobView, workers: &[WorkerView]) -> Option<usize> {
        workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.has_free_slot())
            .min_by(|(_, a), (_, b)| cmp_busy_fraction(a, b))
            .map(|(i, _)| i)
    }
}

/// Power of two choices: samples two distinct workers with a free slot and
/// keeps the one with the earlier expected finish (the [`Weighted`] score).
/// Two random candidates already avoid the worst of random placement
/// (Mitzenmacher: the maximum load drops from log n / log log n to
/// log log n), and a choice that reads only two workers stays cheap and
/// tolerates a stale view of a large fleet, where always picking the global
/// best sends every client to the same worker. Deterministic: the sampler is
/// splitmix64 seeded by the constructor.
#[derive(Debug, Clone)]
pub struct PowerOfTwo {
    rng: SplitMix64,
}

impl PowerOfTwo {
    /// A sampler whose choices are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }
}

impl Default for PowerOfTwo {
    fn default() -> Self {
        Self::new(P2C_DEFAULT_SEED)
    }
}

impl Policy for PowerOfTwo {
    fn name(&self) -> &'static str {
        "p2c"
    }

    fn place(&mut self, job: &JobView, workers: &[WorkerView]) -> Option<usize> {
        // Sampling among free workers only (not all workers, then
        // rejecting) keeps the choice uniform and always terminates, at the
        // price of one counting pass.
        let free = workers.iter().filter(|w| w.has_free_slot()).count();
        match free {
            0 => return None,
            1 => return workers.iter().position(WorkerView::has_free_slot),
            _ => {}
        }
        let a = self.rng.below(free);
        // Draw the second from the remaining free - 1 ranks so a != b.
        let mut b = self.rng.below(free - 1);
        if b >= a {
            b += 1;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let mut picked = [0usize; 2];
        for (rank, (i, _)) in workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.has_free_slot())
            .enumerate()
        {
            if rank == lo {
                picked[0] = i;
            } else if rank == hi {
                picked[1] = i;
                break;
            }
        }
        let [x, y] = picked;
        let order = expected_finish_s(job, &workers[x])
            .total_cmp(&expected_finish_s(job, &workers[y]))
            .then_with(|| cmp_busy_fraction(&workers[x], &workers[y]));
        Some(if order == Ordering::Greater { y } else { x })
    }
}

/// Earliest expected finish: the free-slot worker on which this job is
/// expected to finish first under processor sharing (see
/// `expected_finish_s`: roughly `(queued work + this job's cost) / speed`,
/// where only the work that runs alongside this job counts and no job runs
/// faster than one core); ties to the worker with more spare CPU, then the
/// lower index. Heavy jobs go to strong workers, and a strong worker is
/// given more jobs in proportion to its speed, because it runs more of them
/// at full rate. It only chooses among workers with a free slot, so when
/// exactly one slot is free it has no choice; see [`Lookahead`] for a policy
/// that may wait instead.
#[derive(Debug, Default, Clone)]
pub struct Weighted;

impl Policy for Weighted {
    fn name(&self) -> &'static str {
        "weighted"
    }

    fn place(&mut self, job: &JobView, workers: &[WorkerView]) -> Option<usize> {
        workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.has_free_slot())
            .map(|(i, w)| (i, expected_finish_s(job, w)))
            .min_by(|(i, a), (j, b)| {
                a.total_cmp(b)
                    .then_with(|| cmp_spare_cpu(&workers[*i], &workers[*j]))
            })
            .map(|(i, _)| i)
    }
}

/// Earliest finish under processor sharing, willing to wait for a busy fast
/// worker.
///
/// Two things [`Weighted`] leaves out on heterogeneous grids:
///
/// 1. While the client has more jobs than free slots, a freed slot is taken
///    again at once, so a job spends most of its life on a full worker:
///    this policy's estimate ([`Lookahead::finish_if_placed_s`]) also counts
///    the rate of a full worker, `min(1, speed / slots)`, which keeps a
///    2-slot 1.1-CPU worker from looking better than an idle 1-slot 1.0-CPU
///    one for a big job.
/// 2. When the only free slot is on a slow worker, a big job placed there
///    becomes the build's long pole (the CPython report's `ceval.c` on a
///    0.5-CPU worker). [`Policy::place_or_wait`] answers [`Decision::Wait`]
///    when both
///    - the job's finish on the best free worker exceeds
///      [`Lookahead::long_pole_factor`] times the grid's drain time,
///      `(Σ queued + cost) / Σ min(speed, slots)` (the time a perfectly
///      balanced grid needs for all the work it knows of): only then does
///      placing it now risk making it the last job; and
///    - waiting for the best busy worker (time to its first free slot, then
///      the job at that worker's full-load rate) finishes it sooner by more
///      than [`Lookahead::wait_margin`].
///
///    Small jobs never wait, so they fill the slow slots meanwhile.
///    [`Policy::place`] never waits.
///
/// On the reference report's heterogeneous shapes the simulator shows it
/// ahead of `weighted` by a few points of efficiency with CPython-like
/// poles, and level on equal shapes, where it never waits (see the table
/// test in [`crate::sim`]).
#[derive(Debug, Clone)]
pub struct Lookahead {
    /// Wait only when the busy worker's estimated finish is below the free
    /// worker's by this fraction. The estimates are rough (they assume the
    /// busy worker's jobs are all equally far along); a margin keeps a
    /// near-tie from idling a slot.
    pub wait_margin: f64,
    /// Only a job whose finish on the best free worker exceeds this many
    /// times the grid's drain time (see [`Policy::place_or_wait`]) may
    /// wait. Mid-build, the slot a waiting job declines may find no taker,
    /// and lost capacity is never made up, so only a job that threatens to
    /// be the build's last one is worth holding back. 3 was the best of
    /// 1.5 / 2 / 3 / 4 in the simulator on the reference report's shapes.
    pub long_pole_factor: f64,
}

impl Default for Lookahead {
    fn default() -> Self {
        Self {
            wait_margin: 0.1,
            long_pole_factor: 3.0,
        }
    }
}

impl Lookahead {
    /// Estimated seconds until `job` finishes if placed on `w` now (which
    /// must have a free slot). Under processor sharing each of the `n`
    /// running jobs progresses at `min(1, speed / n)`, so the largest of:
    ///
    /// - `cost / min(1, speed)`: one job uses at most one core;
    /// - `(cost + min(queued, running · cost)) / speed`: while the worker is
    ///   shared, the job finishes when the worker has done its own cost plus,
    ///   for each other job, the part done alongside it, which is at most
    ///   that job's own cost or the queued work in all;
    /// - `cost / min(1, speed / slots)`: while the client has jobs queued
    ///   (make -jJ with J above the free slots), a freed slot is taken again
    ///   at once, so the job spends most of its life on a full worker. This
    ///   is what keeps a 2-slot 1.1-CPU worker (0.55 per job) from looking
    ///   better than an idle 1-slot 1.0-CPU one for a big job.
    ///
    /// The first two are exact for one worker with no arrivals when the
    /// other jobs outlast this one; the third is a pessimism that the
    /// simulator showed to pay on the reference shapes.
    pub fn finish_if_placed_s(job: &JobView, w: &WorkerView) -> f64 {
        let speed = speed_of(w);
        let cost = work_s(job.cost_s);
        let queued = work_s(w.queued_work_s);
        let alone = cost / speed.min(1.0);
        let others = f64::from(w.running) * cost;
        let shared = (cost + queued.min(others)) / speed;
        let full = cost / (speed / f64::from(w.slots.max(1))).min(1.0);
        alone.max(shared).max(full)
    }

    /// Estimated seconds until `job` finishes on the busy `w` (no free
    /// slot) if it waits for `w`'s first slot. The view holds only the total
    /// queued work, so assume the `n` running jobs are equally far along:
    /// each has `queued / n` left at rate `min(1, speed / n)`, and the first
    /// slot frees after `(queued / n) / min(1, speed / n)`. Then the job
    /// runs at the rate of a full worker, `min(1, speed / slots)`, because a
    /// worker that was full stays full while the client has jobs queued.
    /// Assuming equal progress overestimates the wait (the least-done job
    /// finishes first), which errs towards not waiting.
    pub fn finish_if_waiting_s(job: &JobView, w: &WorkerView) -> f64 {
        let speed = speed_of(w);
        let n = f64::from(w.running.max(1));
        let slots = f64::from(w.slots.max(1));
        let queued = work_s(w.queued_work_s);
        let first_free = (queued / n) / (speed / n).min(1.0);
        first_free + work_s(job.cost_s) / (speed / slots).min(1.0)
    }
}

impl Policy for Lookahead {
    fn name(&self) -> &'static str {
        "lookahead"
    }

    fn place(&mut self, job: &JobView, workers: &[WorkerView]) -> Option<usize> {
        // Ties (e.g. several idle workers of at least one core) go to the
        // worker with more spare capacity, so the next job finds room too.
        workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.has_free_slot())
            .map(|(i, w)| (i, Self::finish_if_placed_s(job, w)))
            .min_by(|(i, a), (j, b)| {
                a.total_cmp(b)
                    .then_with(|| cmp_busy_fraction(&workers[*i], &workers[*j]))
            })
            .map(|(i, _)| i)
    }

    fn place_or_wait(&mut self, job: &JobView, workers: &[WorkerView]) -> Decision {
        let Some(best) = self.place(job, workers) else {
            return Decision::NoFreeSlot;
        };
        let free_finish = Self::finish_if_placed_s(job, &workers[best]);
        let margin = if self.wait_margin.is_finite() {
            self.wait_margin.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Waiting idles a slot unless a later job fills it, so it only pays
        // for a job that would otherwise be the long pole: one that finishes
        // after the grid, perfectly balanced, would have drained all the
        // work it knows of. Capacity counts one core per slot at most.
        let (queued, capacity) =
            workers
                .iter()
                .filter(|w| w.healthy && w.slots > 0)
                .fold((0.0, 0.0), |(q, c), w| {
                    (
                        q + work_s(w.queued_work_s),
                        c + speed_of(w).min(f64::from(w.slots)),
                    )
                });
        let drain = (queued + work_s(job.cost_s)) / capacity.max(MIN_SPEED);
        if free_finish <= drain * self.long_pole_factor {
            return Decision::Place(best);
        }
        // Only a healthy worker that is busy will free a slot: the contract
        // of `Wait` is that some running job re-triggers the decision.
        let busy_finish = workers
            .iter()
            .filter(|w| w.healthy && w.slots > 0 && w.running >= w.slots)
            .map(|w| Self::finish_if_waiting_s(job, w))
            .min_by(f64::total_cmp);
        match busy_finish {
            Some(t) if t < free_finish * (1.0 - margin) => Decision::Wait,
            _ => Decision::Place(best),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn worker(id: u64, slots: u32, running: u32) -> WorkerView {
        WorkerView {
            id,
            slots,
            running,
            queued_work_s: 0.0,
            speed: 1.0,
            healthy: true,
        }
    }

    fn fast(id: u64, slots: u32, running: u32, speed: f64, queued: f64) -> WorkerView {
        WorkerView {
            speed,
            queued_work_s: queued,
            ..worker(id, slots, running)
        }
    }

    #[test]
    fn least_loaded_prefers_lowest_busy_fraction() {
        let mut p = LeastLoaded;
        let job = JobView { cost_s: 1.0 };
        let ws = [worker(1, 2, 1), worker(2, 4, 1), worker(3, 1, 0)];
        // 3 is idle (0/1) and wins over 2 (1/4).
        assert_eq!(p.place(&job, &ws), Some(2));
        let ws = [worker(1, 2, 1), worker(2, 4, 1)];
        assert_eq!(p.place(&job, &ws), Some(1));
    }

    #[test]
    fn never_places_on_full_or_unhealthy_workers() {
        let job = JobView { cost_s: 1.0 };
        let mut sick = worker(2, 4, 0);
        sick.healthy = false;
        for name in POLICY_NAMES {
            let mut p = by_name(name).unwrap();
            assert_eq!(p.place(&job, &[worker(1, 2, 2), sick.clone()]), None);
            assert_eq!(p.place(&job, &[]), None, "{name}");
            assert_eq!(p.place_or_wait(&job, &[]), Decision::NoFreeSlot, "{name}");
        }
    }

    #[test]
    fn unknown_policy_is_an_error_naming_the_known_ones() {
        let err = by_name("fastest").err().unwrap();
        for name in POLICY_NAMES {
            assert!(err.to_string().contains(name));
            assert_eq!(by_name(name).unwrap().name(), *name);
        }
    }

    #[test]
    fn round_robin_cycles_and_skips_full_workers() {
        let mut p = RoundRobin::default();
        let job = JobView { cost_s: 1.0 };
        let ws = [worker(1, 1, 0), worker(2, 1, 1), worker(3, 1, 0)];
        let picks: Vec<_> = (0..4).map(|_| p.place(&job, &ws).unwrap()).collect();
        assert_eq!(picks, [0, 2, 0, 2]);
    }

    #[test]
    fn weighted_sends_heavy_jobs_to_strong_workers() {
        let mut p = Weighted;
        // An idle 0.8-CPU worker and a 2.0-CPU one running three jobs with
        // 2 s left each. A 20 s job: 25 s on the weak one; on the strong
        // one at least 20 s (one core), and (20 + 6) / 2 = 13 s of shared
        // work, so 20 s. A 0.1 s job: 0.125 s on the weak one, while on the
        // strong one it shares 2 CPUs four ways: (0.1 + 0.3) / 2 = 0.2 s.
        let ws = [fast(1, 1, 0, 0.8, 0.0), fast(2, 4, 3, 2.0, 6.0)];
        assert_eq!(p.place(&JobView { cost_s: 20.0 }, &ws), Some(1));
        assert_eq!(p.place(&JobView { cost_s: 0.1 }, &ws), Some(0));
    }

    #[test]
    fn weighted_shares_instead_of_queueing() {
        let mut p = Weighted;
        // A 2.0-CPU worker runs one 10 s job; beside it, a 1 s job gets a
        // full core and is done in 1 s. Queued one after the other it would
        // finish at (10 + 1) / 2 = 5.5 s, and the idle 0.8-CPU worker
        // (1.25 s) would look better.
        let ws = [fast(1, 1, 0, 0.8, 0.0), fast(2, 2, 1, 2.0, 10.0)];
        let job = JobView { cost_s: 1.0 };
        assert!((expected_finish_s(&job, &ws[1]) - 1.0).abs() < 1e-12);
        assert_eq!(p.place(&job, &ws), Some(1));
        // Equal finishes go to the worker with more spare CPU: idle 1.2
        // and 2.0 CPU both run a lone job at one core.
        let ws = [fast(1, 2, 0, 1.2, 0.0), fast(2, 2, 0, 2.0, 0.0)];
        assert_eq!(p.place(&job, &ws), Some(1));
        // With one job on the 2.0-CPU worker it has 1.0 spare, the idle
        // 1.2-CPU one 1.2: the next job spreads out.
        let ws = [fast(1, 2, 0, 1.2, 0.0), fast(2, 2, 1, 2.0, 1.0)];
        assert_eq!(p.place(&job, &ws), Some(0));
    }

    #[test]
    fn p2c_is_deterministic_per_seed_and_uses_both_candidates() {
        let job = JobView { cost_s: 1.0 };
        let ws: Vec<_> = (0..10).map(|i| worker(i, 4, 0)).collect();
        let run = |seed| {
            let mut p = PowerOfTwo::new(seed);
            (0..50)
                .map(|_| p.place(&job, &ws).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // With equal scores the lower index of the pair wins, so every
        // worker but the last can be picked.
        let picks = run(1);
        assert!(picks.iter().all(|&i| i < 9));
        assert!(picks.iter().collect::<std::collections::HashSet<_>>().len() > 5);
    }

    #[test]
    fn lookahead_waits_for_a_fast_worker_only_with_a_big_job() {
        let mut p = Lookahead::default();
        // A 0.5-CPU worker is idle; a 2.0-CPU worker is full with 1 s left
        // on each of its two jobs.
        let ws = [fast(1, 1, 0, 0.5, 0.0), fast(2, 2, 2, 2.0, 2.0)];
        // 20 s of work: 40 s on the slow one, about 1 + 20 s on the fast one.
        assert_eq!(
            p.place_or_wait(&JobView { cost_s: 20.0 }, &ws),
            Decision::Wait
        );
        // 0.5 s of work: 1 s on the slow one beats 1.5 s waiting.
        assert_eq!(
            p.place_or_wait(&JobView { cost_s: 0.5 }, &ws),
            Decision::Place(0)
        );
        // `place` alone never waits.
        assert_eq!(p.place(&JobView { cost_s: 20.0 }, &ws), Some(0));
    }

    #[test]
    fn lookahead_knows_one_job_uses_at_most_one_core() {
        let p = &mut Lookahead::default();
        // A 4.0-CPU worker with a slot free vs an idle 1.0-CPU worker:
        // both run the job at one core; the tie goes to more room.
        let ws = [fast(1, 4, 3, 4.0, 0.0), fast(2, 1, 0, 1.0, 0.0)];
        assert_eq!(p.place(&JobView { cost_s: 10.0 }, &ws), Some(1));
        // Weighted's estimate agrees: 10 s on either.
        let job = JobView { cost_s: 10.0 };
        assert_eq!(expected_finish_s(&job, &ws[0]), 10.0);
        assert_eq!(expected_finish_s(&job, &ws[1]), 10.0);
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 0.0..50.0f64,
            1 => Just(0.0),
            1 => Just(-1.0),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::MAX),
        ]
    }

    fn any_worker() -> impl Strategy<Value = WorkerView> {
        (
            0u32..5,
            0u32..7,
            any_f64(),
            any_f64(),
            proptest::bool::weighted(0.8),
        )
            .prop_map(
                |(slots, running, queued_work_s, speed, healthy)| WorkerView {
                    id: 0,
                    slots,
                    running,
                    queued_work_s,
                    speed,
                    healthy,
                },
            )
    }

    proptest! {
        #[test]
        fn no_policy_places_on_a_full_or_unhealthy_worker(
            workers in proptest::collection::vec(any_worker(), 0..12),
            cost_s in any_f64(),
            seed in any::<u64>(),
            rounds in 1usize..4,
        ) {
            let job = JobView { cost_s };
            let any_free = workers.iter().any(WorkerView::has_free_slot);
            let any_running = workers.iter().any(|w| w.healthy && w.running > 0);
            let mut all: Vec<Box<dyn Policy>> =
                POLICY_NAMES.iter().map(|n| by_name(n).unwrap()).collect();
            all.push(Box::new(PowerOfTwo::new(seed)));
            for p in &mut all {
                // Several rounds so stateful policies move their cursor.
                for _ in 0..rounds {
                    match p.place(&job, &workers) {
                        Some(i) => prop_assert!(workers[i].has_free_slot(), "{}", p.name()),
                        None => prop_assert!(!any_free, "{} refused a free slot", p.name()),
                    }
                    match p.place_or_wait(&job, &workers) {
                        Decision::Place(i) => prop_assert!(workers[i].has_free_slot()),
                        Decision::Wait => prop_assert!(any_free && any_running),
                        Decision::NoFreeSlot => prop_assert!(!any_free),
                    }
                }
            }
        }
    }
}
