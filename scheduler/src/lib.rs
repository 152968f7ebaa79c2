//! gridcc's placement policies and the simulator that compares them. Pure and
//! synchronous: no I/O, no clocks, no async, so the coordinator and the
//! simulator run exactly the same code.
//!
//! - [`Policy`]: the trait every policy implements; [`Decision`] is what
//!   [`Policy::place_or_wait`] answers when a policy may choose to wait.
//! - [`WorkerView`] / [`JobView`]: the snapshot a decision is made from.
//! - [`policies`]: the policies (`round-robin`, `least-loaded`, `p2c`,
//!   `weighted`, `lookahead`), and [`by_name`] to pick one from a flag.
//! - [`sim`]: a discrete-event simulator of a `make -jJ` build on a grid of
//!   processor-sharing workers ([`sim::simulate`]), its JSON-lines trace
//!   parser ([`sim::parse_trace`]), synthetic CPython-like traces
//!   ([`sim::synthetic_trace`]), and the makespan lower bound
//!   ([`sim::lower_bound_s`]) its reports are measured against.
//! - [`replay`]: the build as it was recorded (releases after the jobs
//!   they waited for, the client's CPU, transfers) replayed on other shapes
//!   and policies ([`replay::replay`]), and the trace-aware lower bound
//!   ([`replay::trace_bound`]) no policy can beat.
//! - `splitmix` (private): the seeded PRNG behind `p2c` and the traces.
//!
//! `benches/decisions.rs` measures decisions per second per policy.

pub mod policies;
pub mod replay;
pub mod sim;
mod splitmix;

pub use policies::{
    by_name, LeastLoaded, Lookahead, PowerOfTwo, RoundRobin, Weighted, POLICY_NAMES,
};

/// What a policy sees of one worker at decision time.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// Coordinator-assigned worker id.
    pub id: u64,
    /// Jobs the worker runs at once.
    pub slots: u32,
    /// Jobs placed on it and not yet finished.
    pub running: u32,
    /// Estimated seconds of work (at 1.0 CPU) placed on it and not finished.
    pub queued_work_s: f64,
    /// Relative speed; 1.0 is one full core.
    pub speed: f64,
    /// False when the worker is draining or suspected dead.
    pub healthy: bool,
}

impl WorkerView {
    /// A worker can take a job when it is healthy and has a free slot.
    pub fn has_free_slot(&self) -> bool {
        self.healthy && self.running < self.slots
    }
}

/// What a policy knows of the job to place.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// Estimated cost in seconds on a 1.0-CPU worker.
    pub cost_s: f64,
}

/// The answer of [`Policy::place_or_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the job on `workers[i]` now; `workers[i]` has a free slot.
    Place(usize),
    /// Some worker has a free slot, but the policy expects the job to finish
    /// sooner if it waits for a busy worker. The caller keeps the job queued,
    /// may place later jobs meanwhile, and asks again when a slot frees.
    Wait,
    /// No healthy worker has a free slot.
    NoFreeSlot,
}

/// A placement policy. `place` returns the index (into `workers`) of the
/// worker to run the job on, or `None` when no worker has a free slot.
/// Callers pass only workers that have the job's toolchain.
pub trait Policy: Send {
    /// The name used on the command line.
    fn name(&self) -> &'static str;

    /// Chooses a worker; never one without a free slot, and never `None`
    /// while one has a free slot.
    fn place(&mut self, job: &JobView, workers: &[WorkerView]) -> Option<usize>;

    /// Like [`Policy::place`], but the policy may also answer
    /// [`Decision::Wait`]: keep the job queued although a slot is free.
    ///
    /// Contract: `Wait` is only answered while some healthy worker has a
    /// running job, because only a job finishing re-triggers the decision; a
    /// caller that sees `Wait` with nothing running anywhere should call
    /// [`Policy::place`] instead (the simulator does). The default never
    /// waits, so callers that only know `place` lose nothing.
    fn place_or_wait(&mut self, job: &JobView, workers: &[WorkerView]) -> Decision {
        match self.place(job, workers) {
            Some(i) => Decision::Place(i),
            None => Decision::NoFreeSlot,
        }
    }
}

/// A policy name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {name:?} (known: {known})")]
pub struct UnknownPolicy {
    pub name: String,
    pub known: String,
}
