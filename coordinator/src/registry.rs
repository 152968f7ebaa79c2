//! The coordinator's state: connected workers, outstanding leases, counters.
//!
//! Synchronous and clock-free (every method takes `now_ms`), so placement,
//! lease expiry and worker timeouts are tested without sleeping. The service
//! keeps it behind a `std::sync::Mutex` and never holds the lock across an
//! `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use gridcc_proto::lease::{self, KEY_LEN};
use gridcc_proto::v1;
use gridcc_scheduler::{Decision, JobView, Policy, WorkerView};

/// Why a worker left the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Its session stream ended or failed.
    SessionEnded,
    /// Nothing heard from it within the timeout.
    Silent,
}

#[derive(Debug)]
struct Worker {
    hello: v1::WorkerHello,
    key: [u8; KEY_LEN],
    connected_at_ms: u64,
    last_seen_ms: u64,
    draining: bool,
    /// Jobs queued on the worker itself, from its last load update.
    queued: u32,
    /// Jobs the worker said it holds a slot for or queues (running +
    /// queued), from its last load update. The worker is the truth: a
    /// worker busy with jobs this coordinator holds no lease for (from
    /// before a coordinator restart) is not given more.
    reported_busy: u32,
    jobs_done: u64,
    jobs_failed: u64,
    /// How fast this worker's cores turned out to be, relative to what its
    /// hello claims (1.0 until a finished job says otherwise); see
    /// [`Worker::observe_rate`].
    speed_factor: f64,
}

impl Worker {
    /// The speed the policies see: the advertised capacity (CPU quota, or
    /// the `--calibrate` result) times what finished jobs measured.
    fn speed(&self) -> f64 {
        speed_of(&self.hello) * self.speed_factor
    }

    /// Folds one finished job into the speed estimate. `work_s` is the job's
    /// cost on a 1.0-CPU worker as learned elsewhere, `compile_s` its wall
    /// time here, and `share` the part of a reference core it was due here
    /// (`min(1, capacity / running)`). A worker as fast as it claims does
    /// `work_s` in `compile_s = work_s / share`; the ratio of the two is how
    /// much faster (or slower, e.g. an older CPU, or a noisy neighbour under
    /// the same quota) its cores really are.
    ///
    /// An exponentially weighted mean with weight [`SPEED_EWMA_WEIGHT`]
    /// follows a worker that slows down within a handful of jobs, while one
    /// odd job (a cold page cache, a neighbour's burst) moves the estimate
    /// by a fifth at most; samples are clamped to
    /// [`SPEED_FACTOR_RANGE`] so a job whose learned cost was wrong cannot
    /// make a worker look dead or infinitely fast.
    fn observe_rate(&mut self, work_s: f64, compile_s: f64, share: f64) {
        if !(work_s.is_finite() && compile_s >= MIN_SAMPLE_S && share > 0.0) {
            return;
        }
        let (lo, hi) = SPEED_FACTOR_RANGE;
        let sample = (work_s / (compile_s * share)).clamp(lo, hi);
        self.speed_factor += SPEED_EWMA_WEIGHT * (sample - self.speed_factor);
    }
}

/// Weight of the newest sample in a worker's speed estimate.
const SPEED_EWMA_WEIGHT: f64 = 0.2;

/// Bounds of one speed sample, relative to the advertised capacity.
const SPEED_FACTOR_RANGE: (f64, f64) = (0.1, 10.0);

/// Jobs shorter than this (wall time) teach nothing about speed: process
/// start-up and I/O, not CPU, dominate them.
const MIN_SAMPLE_S: f64 = 0.05;

/// A cost learned for one translation unit.
#[derive(Debug, Clone, Copy)]
struct LearnedCost {
    /// Seconds on a 1.0-CPU worker.
    cost_s: f64,
    /// The worker whose run it was learned from.
    worker_id: u64,
}

#[derive(Debug)]
struct LeaseState {
    worker_id: u64,
    cost_s: f64,
    /// The worker holds the job: it listed the lease in a load update (or,
    /// a worker that lists none, reported the job started). A held lease
    /// ends with the job's end, or when its worker stops listing it.
    held: bool,
    /// Leases not held are freed at this time: the client never brought
    /// it to its worker (it went away, or never got the answer).
    start_deadline_ms: u64,
    assigned_ms: u64,
    source_key: String,
    source_bytes: u64,
    /// Jobs on the worker, this one included, when it was placed.
    running_at_assign: u32,
    /// The worker the cost estimate was learned on, when it was learned
    /// (not a client hint or a size guess).
    cost_learned_on: Option<u64>,
    /// The lease's MAC: only the client it was given to can show it, so
    /// only that client can release the lease.
    mac: Vec<u8>,
}

/// What a client's release of a lease did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The lease was held and is free now.
    Released,
    /// No such lease (it ended already: finished, released, expired).
    Unknown,
    /// The caller does not hold it: the MAC shown is not the lease's.
    NotHolder,
}

/// One finished job, as written to the `--trace-out` file (JSON lines).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TraceRecord {
    /// Stable key of the translation unit.
    pub key: String,
    pub preprocessed_bytes: u64,
    pub worker: u64,
    pub worker_speed: f64,
    /// Time the job waited for a slot on the worker.
    pub queue_s: f64,
    /// Wall time of the compiler on the worker.
    pub compile_s: f64,
    /// Estimated seconds on a 1.0-CPU worker: what the simulator replays.
    pub cost_s: f64,
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    pub exit_code: i32,
    /// Answered from the worker's shared cache: the compiler did not run.
    pub shared_hit: bool,
}

/// Result of asking for a placement.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Placed(v1::Placement),
    /// Some worker has the toolchain but none has a free slot now.
    Busy,
    /// A slot is free, but the policy holds the job for a busy worker that
    /// it expects to finish it sooner.
    Held,
    /// No connected worker can ever take this job.
    NoWorker(String),
}

/// Counters shown by `gridcc status` and the metrics. Every lease ends in
/// exactly one of the outcome counters (`ok` … `lost`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Leases handed out.
    pub assigned: u64,
    /// Preprocessed bytes of the jobs placed, as the clients announced them.
    pub assigned_source_bytes: u64,
    /// The worker's compiler ran and exited 0.
    pub ok: u64,
    /// The worker's compiler ran and exited non-zero.
    pub compile_error: u64,
    /// The worker could not run the job (refused it, a limit stopped it).
    pub worker_failed: u64,
    /// A client gave the lease back (the worker was unreachable or broke
    /// off), or went away mid-job (the worker cancelled the job).
    pub released: u64,
    /// The client never brought the lease to its worker in time.
    pub expired: u64,
    /// The worker left (or went silent) with the job, or stopped listing
    /// its lease without a word about its end.
    pub lost: u64,
    /// Assign requests answered "compile locally".
    pub local_answers: u64,
    /// Jobs a worker answered from its shared cache (counted in `ok` too).
    pub shared_hits: u64,
    /// Placements on the worker that reported holding the job's key.
    pub cache_placements: u64,
}

impl Totals {
    /// Jobs whose compiler ran on a worker, whatever its exit code.
    pub fn done(&self) -> u64 {
        self.ok + self.compile_error
    }

    /// Leases that ended without the worker's compiler running.
    pub fn failed(&self) -> u64 {
        self.worker_failed + self.released + self.expired + self.lost
    }
}

/// One worker's load, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerLoad {
    pub id: u64,
    pub address: String,
    pub slots: u32,
    pub running: u32,
    pub speed: f64,
    pub draining: bool,
}

/// Costs learned per translation unit are kept for at most this many keys;
/// beyond it the table is cleared (a build's worth is re-learned quickly).
const MAX_LEARNED_COSTS: usize = 100_000;

/// Grid keys remembered with the worker that holds their result; the
/// oldest are forgotten first (about 150 bytes each, so ~30 MB at most).
const MAX_CACHED_KEYS: usize = 200_000;

/// Which worker holds which grid key (shared cache), bounded, oldest first
/// out. Entries may be stale (the worker evicted the entry, or left): a
/// stale one costs one placement that compiles, as it would have anyway.
#[derive(Debug, Default)]
struct Holders {
    by_key: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl Holders {
    fn note(&mut self, key: String, worker_id: u64) {
        if let Some(w) = self.by_key.get_mut(&key) {
            *w = worker_id;
            return;
        }
        while self.by_key.len() >= MAX_CACHED_KEYS {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.by_key.remove(&old);
        }
        self.order.push_back(key.clone());
        self.by_key.insert(key, worker_id);
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.by_key.get(key).copied()
    }
}

/// Workers, leases and the placement policy.
pub struct Registry {
    policy: Box<dyn Policy>,
    workers: BTreeMap<u64, Worker>,
    leases: HashMap<u64, LeaseState>,
    /// Leases freed at their start deadline, kept until their signature
    /// expires: a client that was only slow still compiles (the worker
    /// checks the signature), and when its worker lists the lease or
    /// reports its end, the lease is back, counted as it ends.
    expired: HashMap<u64, LeaseState>,
    /// Cost learned per source key.
    learned_cost_s: HashMap<String, LearnedCost>,
    holders: Holders,
    next_worker_id: u64,
    next_lease_id: u64,
    lease_ttl_ms: u64,
    start_timeout_ms: u64,
    totals: Totals,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("policy", &self.policy.name())
            .field("workers", &self.workers.len())
            .field("leases", &self.leases.len())
            .finish()
    }
}

/// Seconds of work assumed per byte of preprocessed source when the client
/// gives no estimate: about 1 s per MiB at -O2 on one core, the order of
/// magnitude measured for C files. Only the relative size matters to the
/// policies, so the constant's accuracy is secondary.
const COST_S_PER_BYTE: f64 = 1.0 / (1024.0 * 1024.0);

/// A worker's speed as reported in its hello (1.0 when it gave none).
fn speed_of(hello: &v1::WorkerHello) -> f64 {
    if hello.capacity > 0.0 {
        hello.capacity
    } else {
        1.0
    }
}

impl Registry {
    /// A registry whose leases are signed valid for `lease_ttl_ms`, and
    /// freed when their worker does not hold them within `start_timeout_ms`
    /// (or the TTL, if shorter).
    pub fn new(policy: Box<dyn Policy>, lease_ttl_ms: u64, start_timeout_ms: u64) -> Self {
        Self {
            policy,
            workers: BTreeMap::new(),
            leases: HashMap::new(),
            expired: HashMap::new(),
            learned_cost_s: HashMap::new(),
            holders: Holders::default(),
            next_worker_id: 1,
            next_lease_id: 1,
            lease_ttl_ms,
            start_timeout_ms: start_timeout_ms.min(lease_ttl_ms),
            totals: Totals::default(),
        }
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Registers a worker from its hello; returns its id and lease key.
    pub fn add_worker(
        &mut self,
        mut hello: v1::WorkerHello,
        key: [u8; KEY_LEN],
        now_ms: u64,
    ) -> u64 {
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        // Oldest first, so the most recently used stay longest.
        for cached in std::mem::take(&mut hello.cached_keys).into_iter().rev() {
            self.holders.note(cached, id);
        }
        self.workers.insert(
            id,
            Worker {
                hello,
                key,
                connected_at_ms: now_ms,
                last_seen_ms: now_ms,
                draining: false,
                queued: 0,
                reported_busy: 0,
                jobs_done: 0,
                jobs_failed: 0,
                speed_factor: 1.0,
            },
        );
        id
    }

    /// Removes a worker; its leases fail. Returns false if it was not there.
    pub fn remove_worker(&mut self, id: u64) -> bool {
        if self.workers.remove(&id).is_none() {
            return false;
        }
        let before = self.leases.len();
        self.leases.retain(|_, l| l.worker_id != id);
        self.totals.lost += (before - self.leases.len()) as u64;
        true
    }

    /// Whether a lease is still outstanding (placed, neither finished,
    /// released, expired nor lost); the monitor closes the jobs it shows
    /// by this.
    pub fn has_lease(&self, lease_id: u64) -> bool {
        self.leases.contains_key(&lease_id)
    }

    pub fn has_worker(&self, id: u64) -> bool {
        self.workers.contains_key(&id)
    }

    /// Records that a worker was heard from.
    pub fn touch(&mut self, id: u64, now_ms: u64) {
        if let Some(w) = self.workers.get_mut(&id) {
            w.last_seen_ms = now_ms;
        }
    }

    /// A worker's own account of its jobs. Its leases not listed any more
    /// although listed before ended without a word (the `JobFinished` of a
    /// lease always comes before the first update without it): freed.
    /// Returns whether a slot may have been freed.
    pub fn on_load(&mut self, id: u64, load: &v1::LoadUpdate) -> bool {
        let Some(w) = self.workers.get_mut(&id) else {
            return false;
        };
        w.queued = load.queued;
        let busy = load.running.saturating_add(load.queued);
        let less_busy = busy < w.reported_busy;
        w.reported_busy = busy;
        if !w.hello.reports_leases {
            return less_busy;
        }
        let listed: std::collections::HashSet<u64> = load.leases.iter().copied().collect();
        // Freed at its start deadline, yet its worker holds it: its
        // client was only slow. Busy again, and not expired after all.
        for lease_id in &listed {
            if self
                .expired
                .get(lease_id)
                .is_some_and(|l| l.worker_id == id)
            {
                if let Some(l) = self.expired.remove(lease_id) {
                    self.leases.insert(*lease_id, l);
                    self.totals.expired -= 1;
                }
            }
        }
        let mut vanished = 0;
        self.leases.retain(|lease_id, l| {
            if l.worker_id != id {
                return true;
            }
            if listed.contains(lease_id) {
                l.held = true;
                return true;
            }
            // Not listed yet: its client may still be on its way.
            let keep = !l.held;
            vanished += u64::from(!keep);
            keep
        });
        self.totals.lost += vanished;
        w.jobs_failed += vanished;
        less_busy || vanished > 0
    }

    /// Slots busy on a worker: its leases, or what it says it runs and
    /// queues, whichever is more.
    fn busy(&self, id: u64, worker: &Worker) -> u32 {
        let leases = self.leases.values().filter(|l| l.worker_id == id).count() as u32;
        leases.max(worker.reported_busy)
    }

    pub fn on_going_away(&mut self, id: u64) {
        if let Some(w) = self.workers.get_mut(&id) {
            w.draining = true;
        }
    }

    /// A worker started a lease's job: it no longer expires.
    pub fn on_started(&mut self, worker_id: u64, lease_id: u64) {
        if let Some(l) = self.leases.get_mut(&lease_id) {
            if l.worker_id == worker_id {
                l.held = true;
            }
        }
    }

    /// Costs learned before this process started (`--costs`), as if earlier
    /// jobs had taught them. They came from no worker of this grid
    /// (worker id 0), so every worker's first job of such a file also
    /// teaches that worker its speed. Returns how many were loaded.
    pub fn preload_costs(&mut self, costs: impl IntoIterator<Item = (String, f64)>) -> usize {
        let mut n = 0;
        for (key, cost_s) in costs {
            if self.learned_cost_s.len() >= MAX_LEARNED_COSTS {
                break;
            }
            self.learned_cost_s.insert(
                key,
                LearnedCost {
                    cost_s,
                    worker_id: 0,
                },
            );
            n += 1;
        }
        n
    }

    /// A worker finished a lease's job. Returns whether it freed a slot, and
    /// the job's trace record when the lease was known.
    pub fn on_finished(
        &mut self,
        worker_id: u64,
        finished: &v1::JobFinished,
        now_ms: u64,
    ) -> (bool, Option<TraceRecord>) {
        let lease = match self.leases.get(&finished.lease_id) {
            Some(l) if l.worker_id == worker_id => self.leases.remove(&finished.lease_id),
            Some(_) => None,
            // Freed at its start deadline, its client only slow: the job
            // ended all the same, and is counted as it ended.
            None => match self.expired.get(&finished.lease_id) {
                Some(l) if l.worker_id == worker_id => {
                    self.totals.expired -= 1;
                    self.expired.remove(&finished.lease_id)
                }
                _ => None,
            },
        };
        if !finished.cache_key.is_empty() {
            self.holders.note(finished.cache_key.clone(), worker_id);
        }
        // A lease that ended already (its client released it, or its
        // worker stopped listing it) is counted already: each lease ends
        // in one outcome counter.
        let Some(lease) = lease else {
            return (false, None);
        };
        // A hit ran no compiler: it teaches nothing about costs or speeds.
        let hit = finished.cache_hit;
        if hit {
            self.totals.shared_hits += 1;
        }
        let compile_s = if hit {
            0.0
        } else {
            finished.compile_ms as f64 / 1000.0
        };
        // A job shares its worker's CPU with the others running there: it
        // gets min(1, capacity / running) of a core (the simulator's model),
        // at the rate the worker's cores turned out to have.
        let running = lease.running_at_assign.max(1);
        let mut speed = 1.0;
        let mut factor = 1.0;
        if let Some(w) = self.workers.get_mut(&worker_id) {
            let share = (speed_of(&w.hello) / f64::from(running)).min(1.0);
            // A cost learned on this very worker says nothing new about it.
            if finished.ran
                && !hit
                && finished.exit_code == 0
                && lease.cost_learned_on.is_some_and(|id| id != worker_id)
            {
                w.observe_rate(lease.cost_s, compile_s, share);
            }
            if finished.ran {
                w.jobs_done += 1;
            } else if !finished.cancelled {
                w.jobs_failed += 1;
            }
            speed = w.speed();
            factor = w.speed_factor * share;
        }
        match (finished.ran, finished.exit_code) {
            (true, 0) => self.totals.ok += 1,
            (true, _) => self.totals.compile_error += 1,
            // Its client went away: not the worker's failure.
            (false, _) if finished.cancelled => self.totals.released += 1,
            (false, _) => self.totals.worker_failed += 1,
        }
        // Its cost on one reference core: wall time times the part of a
        // core it got, times how fast this worker's cores are.
        let cost_s = compile_s * factor;
        if finished.ran && !hit && finished.exit_code == 0 && !lease.source_key.is_empty() {
            if self.learned_cost_s.len() >= MAX_LEARNED_COSTS {
                self.learned_cost_s.clear();
            }
            self.learned_cost_s
                .insert(lease.source_key.clone(), LearnedCost { cost_s, worker_id });
        }
        let record = TraceRecord {
            key: lease.source_key,
            preprocessed_bytes: lease.source_bytes,
            worker: worker_id,
            worker_speed: speed,
            queue_s: finished.queue_ms as f64 / 1000.0,
            compile_s,
            cost_s,
            start_unix_ms: lease.assigned_ms,
            end_unix_ms: now_ms,
            exit_code: finished.exit_code,
            shared_hit: hit,
        };
        (true, Some(record))
    }

    /// A client gives a lease back: its job failed before the worker
    /// finished it (connection refused, stream broken), or the client was
    /// interrupted. Only the lease's holder, who shows its `mac`, can.
    pub fn release_failed(&mut self, lease_id: u64, mac: &[u8]) -> Release {
        let Some(l) = self.leases.get(&lease_id) else {
            return Release::Unknown;
        };
        if !lease::same_mac(&l.mac, mac) {
            return Release::NotHolder;
        }
        let worker_id = l.worker_id;
        self.leases.remove(&lease_id);
        self.totals.released += 1;
        if let Some(w) = self.workers.get_mut(&worker_id) {
            w.jobs_failed += 1;
        }
        Release::Released
    }

    /// Frees leases whose client never brought them to their worker, and removes
    /// workers silent since before `silent_before_ms`. Returns the removed
    /// worker ids and whether any slot was freed.
    pub fn sweep(&mut self, now_ms: u64, silent_before_ms: u64) -> (Vec<u64>, bool) {
        let late: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| !l.held && l.start_deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &late {
            if let Some(l) = self.leases.remove(id) {
                self.expired.insert(*id, l);
            }
        }
        // A client that never brought its lease to the worker failed.
        self.totals.expired += late.len() as u64;
        let ttl = self.lease_ttl_ms;
        self.expired
            .retain(|_, l| l.assigned_ms.saturating_add(ttl) >= now_ms);
        let mut freed = !late.is_empty();
        let silent: Vec<u64> = self
            .workers
            .iter()
            .filter(|(_, w)| w.last_seen_ms < silent_before_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &silent {
            freed |= self.remove_worker(*id);
        }
        (silent, freed)
    }

    /// Asks the policy for a worker for this job and, if one is chosen,
    /// reserves a slot on it with a signed lease.
    pub fn assign(&mut self, req: &v1::AssignRequest, now_ms: u64) -> Placement {
        if req.failed_lease != 0 {
            self.release_failed(req.failed_lease, &req.failed_lease_mac);
        }
        let candidates: Vec<(u64, &Worker)> = self
            .workers
            .iter()
            .filter(|(id, w)| {
                !req.exclude_workers.contains(id)
                    && w.hello
                        .toolchains
                        .iter()
                        .any(|t| t.identity == req.toolchain)
            })
            .map(|(id, w)| (*id, w))
            .collect();
        if candidates.is_empty() {
            self.totals.local_answers += 1;
            let reason = if self.workers.is_empty() {
                "no workers connected"
            } else {
                "no worker has this compiler"
            };
            return Placement::NoWorker(reason.to_owned());
        }
        if candidates.iter().all(|(_, w)| w.draining) {
            self.totals.local_answers += 1;
            return Placement::NoWorker("every capable worker is draining".to_owned());
        }

        let views: Vec<WorkerView> = candidates
            .iter()
            .map(|(id, w)| {
                let queued_work_s: f64 = self
                    .leases
                    .values()
                    .filter(|l| l.worker_id == *id)
                    .map(|l| l.cost_s)
                    .sum();
                WorkerView {
                    id: *id,
                    slots: w.hello.slots.max(1),
                    running: self.busy(*id, w),
                    queued_work_s,
                    speed: w.speed(),
                    healthy: !w.draining,
                }
            })
            .collect();
        // The client's estimate, else what this file cost last time, else
        // a guess from its preprocessed size.
        let learned = self.learned_cost_s.get(&req.source_key).copied();
        let (cost_s, cost_learned_on) = if req.cost_hint > 0.0 {
            (req.cost_hint, None)
        } else if let Some(l) = learned {
            (l.cost_s.max(0.001), Some(l.worker_id))
        } else {
            ((req.source_bytes as f64 * COST_S_PER_BYTE).max(0.001), None)
        };
        let job = JobView { cost_s };
        // A policy may hold a job back for a faster worker that is busy; the
        // caller then waits for the next finished job, exactly as when every
        // slot is taken. The scheduler only answers Wait while some job runs,
        // so a finishing job always re-triggers the decision.
        // A worker that holds this job's result answers it without
        // compiling: prefer it while it is healthy and has a free slot;
        // otherwise the policy decides (and that worker compiles it).
        let holder = [req.cache_key.as_str(), req.hermetic_cache_key.as_str()]
            .into_iter()
            .filter(|k| !k.is_empty())
            .filter_map(|k| self.holders.get(k))
            .filter_map(|id| views.iter().position(|v| v.id == id))
            .find(|&i| views[i].healthy && views[i].has_free_slot());
        let index = match holder {
            Some(index) => {
                self.totals.cache_placements += 1;
                index
            }
            None => match self.policy.place_or_wait(&job, &views) {
                Decision::Place(index) => index,
                Decision::Wait => return Placement::Held,
                Decision::NoFreeSlot => return Placement::Busy,
            },
        };
        let Some((worker_id, worker)) = candidates.get(index) else {
            return Placement::Busy;
        };
        // A policy must never pick a full worker; re-check so a buggy policy
        // cannot overload one.
        if !views[index].has_free_slot() {
            return Placement::Busy;
        }
        let lease_id = self.next_lease_id;
        self.next_lease_id += 1;
        let expires = now_ms + self.lease_ttl_ms;
        let signed = lease::sign(&worker.key, lease_id, *worker_id, expires);
        let mac = signed.mac.clone();
        let placement = v1::Placement {
            worker_id: *worker_id,
            worker_addr: worker.hello.advertise_addr.clone(),
            lease: Some(signed),
            takes_input_offer: worker.hello.takes_input_offers,
            hermetic: worker.hello.hermetic,
        };
        self.leases.insert(
            lease_id,
            LeaseState {
                worker_id: *worker_id,
                cost_s,
                held: false,
                start_deadline_ms: now_ms + self.start_timeout_ms,
                assigned_ms: now_ms,
                source_key: req.source_key.clone(),
                source_bytes: req.source_bytes,
                running_at_assign: views[index].running + 1,
                cost_learned_on,
                mac,
            },
        );
        self.totals.assigned += 1;
        self.totals.assigned_source_bytes += req.source_bytes;
        Placement::Placed(placement)
    }

    /// Counts an Assign answered "compile locally" after waiting.
    pub fn count_local_answer(&mut self) {
        self.totals.local_answers += 1;
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Per connected worker: id, address, slots, slots busy ([`Self::busy`]),
    /// speed as the policies see it, and whether it is draining.
    pub fn worker_loads(&self) -> Vec<WorkerLoad> {
        self.workers
            .iter()
            .map(|(id, w)| WorkerLoad {
                id: *id,
                address: w.hello.advertise_addr.clone(),
                slots: w.hello.slots,
                running: self.busy(*id, w),
                speed: w.speed(),
                draining: w.draining,
            })
            .collect()
    }

    /// The `Status` RPC's answer.
    pub fn status(&self, now_ms: u64, started_ms: u64) -> v1::StatusReply {
        let workers = self
            .workers
            .iter()
            .map(|(id, w)| v1::WorkerStatus {
                id: *id,
                address: w.hello.advertise_addr.clone(),
                slots: w.hello.slots,
                running: self.busy(*id, w),
                queued: w.queued,
                capacity: w.speed(),
                jobs_done: w.jobs_done,
                jobs_failed: w.jobs_failed,
                toolchains: w
                    .hello
                    .toolchains
                    .iter()
                    .map(|t| {
                        t.names
                            .first()
                            .cloned()
                            .unwrap_or_else(|| t.identity.clone())
                    })
                    .collect(),
                connected_ms: now_ms.saturating_sub(w.connected_at_ms),
                job_mode: crate::monitor::job_mode(&w.hello).to_owned(),
                hermetic_refusal: w.hello.hermetic_refusal.clone(),
                hostname: w.hello.hostname.clone(),
                draining: w.draining,
            })
            .collect();
        v1::StatusReply {
            workers,
            policy: self.policy.name().to_owned(),
            jobs_assigned: self.totals.assigned,
            jobs_done: self.totals.done(),
            jobs_failed: self.totals.failed(),
            local_answers: self.totals.local_answers,
            uptime_ms: now_ms.saturating_sub(started_ms),
            version: gridcc_proto::VERSION.to_owned(),
            shared_hits: self.totals.shared_hits,
            cache_placements: self.totals.cache_placements,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = [3; KEY_LEN];

    fn hello(addr: &str, slots: u32, toolchain: &str) -> v1::WorkerHello {
        v1::WorkerHello {
            advertise_addr: addr.to_owned(),
            slots,
            capacity: 1.0,
            toolchains: vec![v1::Toolchain {
                identity: toolchain.to_owned(),
                names: vec!["gcc".to_owned()],
                version: String::new(),
            }],
            hostname: "h".to_owned(),
            version: String::new(),
            cached_keys: Vec::new(),
            takes_input_offers: false,
            reports_leases: false,
            hermetic: false,
            hermetic_refusal: String::new(),
            unsandboxed: false,
        }
    }

    fn request(toolchain: &str) -> v1::AssignRequest {
        v1::AssignRequest {
            toolchain: toolchain.to_owned(),
            source_bytes: 1000,
            ..Default::default()
        }
    }

    fn registry() -> Registry {
        Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            1000,
            1000,
        )
    }

    fn placed(p: Placement) -> v1::Placement {
        match p {
            Placement::Placed(p) => p,
            other => panic!("expected a placement, got {other:?}"),
        }
    }

    #[test]
    fn places_only_where_the_toolchain_is() {
        let mut r = registry();
        assert_eq!(
            r.assign(&request("gcc12"), 0),
            Placement::NoWorker("no workers connected".into())
        );
        let a = r.add_worker(hello("a:1", 1, "gcc12"), KEY, 0);
        r.add_worker(hello("b:1", 4, "clang14"), KEY, 0);
        let p = placed(r.assign(&request("gcc12"), 0));
        assert_eq!((p.worker_id, p.worker_addr.as_str()), (a, "a:1"));
        let lease = p.lease.unwrap();
        assert!(gridcc_proto::lease::verify(&KEY, a, &lease, 500).is_ok());
        // Its one slot is taken: busy, not local, since it will free up.
        assert_eq!(r.assign(&request("gcc12"), 0), Placement::Busy);
        assert_eq!(
            r.assign(&request("icc"), 0),
            Placement::NoWorker("no worker has this compiler".into())
        );
    }

    #[test]
    fn a_key_goes_to_its_holder_while_it_has_a_free_slot() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 1, "t"), KEY, 0);
        let mut h = hello("b:1", 1, "t");
        h.cached_keys = vec!["old".into()];
        let b = r.add_worker(h, KEY, 0);
        let keyed = |key: &str| v1::AssignRequest {
            cache_key: key.into(),
            ..request("t")
        };
        // least-loaded would take `a` (first of two idle workers).
        let p = placed(r.assign(&keyed("old"), 0));
        assert_eq!(p.worker_id, b);
        assert!(!p.takes_input_offer, "b did not say it takes offers");
        // Its holder full: the policy places it elsewhere, to compile.
        assert_eq!(placed(r.assign(&keyed("old"), 0)).worker_id, a);
        let mut r = registry();
        let mut h = hello("a:1", 2, "t");
        h.takes_input_offers = true;
        let a = r.add_worker(h, KEY, 0);
        let b = r.add_worker(hello("b:1", 2, "t"), KEY, 0);
        let p = placed(r.assign(&keyed("k"), 0));
        assert!(p.takes_input_offer);
        let lease = p.lease.unwrap();
        assert_eq!(lease.worker_id, a);
        r.on_started(a, lease.id);
        let stored = v1::JobFinished {
            lease_id: lease.id,
            ran: true,
            compile_ms: 800,
            cache_key: "k".into(),
            ..Default::default()
        };
        r.on_finished(a, &stored, 1000);
        // Busy a little, but with a free slot: still the holder.
        placed(r.assign(&request("t"), 0));
        let lease = placed(r.assign(&keyed("k"), 0)).lease.unwrap();
        assert_eq!(lease.worker_id, a, "b is idler, but a holds k");
        r.on_started(a, lease.id);
        let hit = v1::JobFinished {
            lease_id: lease.id,
            ran: true,
            cache_hit: true,
            cache_key: "k".into(),
            compile_ms: 800,
            ..Default::default()
        };
        let (_, record) = r.on_finished(a, &hit, 1100);
        let record = record.unwrap();
        assert!(record.shared_hit);
        assert_eq!(record.compile_s, 0.0, "a hit ran no compiler");
        let status = r.status(2000, 0);
        assert_eq!((status.shared_hits, status.cache_placements), (1, 1));
        // The key of a job's hermetic form finds its holder too.
        let hermetic = v1::AssignRequest {
            cache_key: "text-form".into(),
            hermetic_cache_key: "k".into(),
            ..keyed("")
        };
        let lease = placed(r.assign(&hermetic, 0)).lease.unwrap();
        assert_eq!(lease.worker_id, a, "a holds the hermetic key k");
        r.on_started(a, lease.id);
        // A draining holder gets nothing.
        r.on_going_away(a);
        assert_eq!(placed(r.assign(&keyed("k"), 0)).worker_id, b);
    }

    #[test]
    fn finishing_frees_the_slot_and_counts_the_job() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 1, "t"), KEY, 0);
        let lease = placed(r.assign(&request("t"), 0)).lease.unwrap();
        r.on_started(a, lease.id);
        let finished = v1::JobFinished {
            lease_id: lease.id,
            ran: true,
            ..Default::default()
        };
        let (freed, record) = r.on_finished(a, &finished, 2500);
        assert!(freed);
        let record = record.unwrap();
        assert_eq!(
            (record.worker, record.start_unix_ms, record.end_unix_ms),
            (a, 0, 2500)
        );
        let status = r.status(10, 0);
        assert_eq!(status.workers[0].jobs_done, 1);
        assert_eq!(status.workers[0].running, 0);
        assert_eq!(status.jobs_done, 1);
        placed(r.assign(&request("t"), 0));
    }

    #[test]
    fn preloaded_costs_price_the_first_job_and_teach_speeds() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 2, "t"), KEY, 0);
        assert_eq!(r.preload_costs([("heavy".to_owned(), 30.0)]), 1);
        let req = v1::AssignRequest {
            source_key: "heavy".into(),
            ..request("t")
        };
        let lease = placed(r.assign(&req, 0)).lease.unwrap();
        let state = &r.leases[&lease.id];
        assert_eq!(state.cost_s, 30.0);
        // Learned on no worker of this grid: the job also teaches `a`.
        assert_eq!(state.cost_learned_on, Some(0));
        assert_ne!(a, 0);
        // A file not in the costs file is still priced by its size.
        let lease = placed(r.assign(&request("t"), 0)).lease.unwrap();
        assert_ne!(r.leases[&lease.id].cost_s, 30.0);
        assert_eq!(r.leases[&lease.id].cost_learned_on, None);
    }

    #[test]
    fn finished_jobs_teach_the_cost_of_their_file() {
        let mut r = registry();
        // Speed 2, one slot: a job gets a full core, so cost == wall time.
        let mut h = hello("a:1", 1, "t");
        h.capacity = 2.0;
        let a = r.add_worker(h, KEY, 0);
        let req = v1::AssignRequest {
            source_key: "k1".into(),
            ..request("t")
        };
        let lease = placed(r.assign(&req, 0)).lease.unwrap();
        let finished = v1::JobFinished {
            lease_id: lease.id,
            ran: true,
            compile_ms: 3000,
            ..Default::default()
        };
        let (_, record) = r.on_finished(a, &finished, 3100);
        let record = record.unwrap();
        assert_eq!(record.key, "k1");
        assert!((record.cost_s - 3.0).abs() < 1e-9);
        assert_eq!(r.learned_cost_s.get("k1").map(|l| l.cost_s), Some(3.0));
        // A failed compile teaches nothing.
        let lease = placed(r.assign(
            &v1::AssignRequest {
                source_key: "k2".into(),
                ..request("t")
            },
            0,
        ))
        .lease
        .unwrap();
        let failed = v1::JobFinished {
            lease_id: lease.id,
            ran: true,
            exit_code: 1,
            compile_ms: 10,
            ..Default::default()
        };
        r.on_finished(a, &failed, 10);
        assert!(!r.learned_cost_s.contains_key("k2"));
    }

    #[test]
    fn finished_jobs_refine_a_workers_speed() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 1, "t"), KEY, 0);
        let b = r.add_worker(hello("b:1", 1, "t"), KEY, 0);
        let capacity = |r: &Registry, id: u64| {
            let status = r.status(0, 0);
            status.workers.iter().find(|w| w.id == id).unwrap().capacity
        };
        // Runs `key` on `on` (the other worker excluded) in `compile_ms`.
        let run = |r: &mut Registry, key: &str, on: u64, compile_ms: u64| {
            let req = v1::AssignRequest {
                source_key: key.into(),
                exclude_workers: vec![if on == a { b } else { a }],
                ..request("t")
            };
            let p = placed(r.assign(&req, 0));
            assert_eq!(p.worker_id, on);
            let finished = v1::JobFinished {
                lease_id: p.lease.unwrap().id,
                ran: true,
                compile_ms,
                ..Default::default()
            };
            r.on_finished(on, &finished, 0);
        };
        // Both claim 1.0 CPU, but b takes twice as long for the same files.
        for i in 0..5 {
            let key = format!("k{i}");
            run(&mut r, &key, a, 2000);
            run(&mut r, &key, b, 4000);
        }
        // Five samples of 0.5 from 1.0 at weight 0.2: 0.5 + 0.5 * 0.8^5.
        let expected = 0.5 + 0.5 * 0.8f64.powi(5);
        assert!(
            (capacity(&r, b) - expected).abs() < 1e-9,
            "{}",
            capacity(&r, b)
        );
        assert_eq!(capacity(&r, a), 1.0);
        // b's own runs taught the cost in reference seconds: 4 s at b's
        // factor at the time.
        let learned = r.learned_cost_s["k4"];
        assert_eq!(learned.worker_id, b);
        assert!(learned.cost_s > 2.0 && learned.cost_s < 4.0 * 0.75);
        // A cost learned on b itself, or a job too short to time, teaches
        // b nothing.
        let before = capacity(&r, b);
        run(&mut r, "k4", b, 8000);
        run(&mut r, "k0", b, 10);
        assert_eq!(capacity(&r, b), before);
    }

    #[test]
    fn unstarted_leases_expire_and_started_ones_do_not() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 2, "t"), KEY, 0);
        let first = placed(r.assign(&request("t"), 0)).lease.unwrap();
        placed(r.assign(&request("t"), 0));
        r.on_started(a, first.id);
        r.touch(a, 1500);
        let (gone, freed) = r.sweep(1500, 0);
        assert!(gone.is_empty());
        assert!(freed);
        assert_eq!(r.status(1500, 0).workers[0].running, 1);
    }

    fn load(running: u32, leases: &[u64]) -> v1::LoadUpdate {
        v1::LoadUpdate {
            running,
            queued: 0,
            leases: leases.to_vec(),
        }
    }

    #[test]
    fn the_workers_own_account_frees_leases_it_stopped_listing() {
        let mut r = registry();
        let mut h = hello("a:1", 2, "t");
        h.reports_leases = true;
        let a = r.add_worker(h, KEY, 0);
        let first = placed(r.assign(&request("t"), 0)).lease.unwrap();
        let second = placed(r.assign(&request("t"), 0)).lease.unwrap();
        // `second`'s client has not reached the worker yet: kept.
        assert!(!r.on_load(a, &load(1, &[first.id])));
        assert_eq!(r.status(0, 0).workers[0].running, 2);
        // `first` ended and its JobFinished was lost: the next update frees it.
        assert!(r.on_load(a, &load(0, &[])));
        assert_eq!(r.status(0, 0).workers[0].running, 1);
        assert_eq!(r.totals().lost, 1);
        // Held, `second` no longer expires at its start deadline.
        r.on_load(a, &load(1, &[second.id]));
        r.touch(a, 5000);
        r.sweep(5000, 0);
        assert_eq!(r.status(5000, 0).workers[0].running, 1);
        // A worker busy with jobs this coordinator holds no lease for
        // (from before a restart) gets no more than its slots.
        r.on_load(a, &load(2, &[second.id]));
        assert_eq!(r.assign(&request("t"), 5000), Placement::Busy);
        // An old worker, listing no leases, keeps its started leases.
        let b = r.add_worker(hello("b:1", 1, "t"), KEY, 0);
        let on_b = v1::AssignRequest {
            exclude_workers: vec![a],
            ..request("t")
        };
        let old = placed(r.assign(&on_b, 0)).lease.unwrap();
        r.on_started(b, old.id);
        r.on_load(b, &load(1, &[]));
        assert_eq!(r.status(0, 0).workers[1].running, 1);
    }

    #[test]
    fn a_lease_freed_at_its_start_deadline_comes_back_when_its_worker_has_it() {
        // Valid for 60 s, freed when not taken up within 1 s.
        let mut r = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            60_000,
            1000,
        );
        let mut h = hello("a:1", 2, "t");
        h.reports_leases = true;
        let a = r.add_worker(h, KEY, 0);
        let slow = placed(r.assign(&request("t"), 0)).lease.unwrap();
        let gone = placed(r.assign(&request("t"), 0)).lease.unwrap();
        r.touch(a, 1500);
        let (_, freed) = r.sweep(1500, 0);
        assert!(freed);
        assert_eq!(r.status(1500, 0).workers[0].running, 0);
        assert_eq!(r.totals().expired, 2);
        // `slow`'s client arrives after all: busy again, not expired.
        r.on_load(a, &load(1, &[slow.id]));
        assert_eq!(r.status(1500, 0).workers[0].running, 1);
        assert_eq!(r.totals().expired, 1);
        let done = v1::JobFinished {
            lease_id: slow.id,
            ran: true,
            ..Default::default()
        };
        assert!(r.on_finished(a, &done, 1600).1.is_some());
        // `gone`'s job ends without ever being listed (refused, say):
        // counted as it ended, not as expired.
        let refused = v1::JobFinished {
            lease_id: gone.id,
            ran: false,
            exit_code: -1,
            ..Default::default()
        };
        r.on_finished(a, &refused, 1600);
        let t = r.totals().clone();
        assert_eq!((t.ok, t.worker_failed, t.expired), (1, 1, 0));
        assert_eq!(t.done() + t.failed(), t.assigned);
        // Past its signature's expiry a lease is forgotten for good.
        let late = placed(r.assign(&request("t"), 2000)).lease.unwrap();
        r.touch(a, 100_000);
        r.sweep(100_000, 0);
        r.on_load(a, &load(1, &[late.id]));
        assert_eq!(r.status(100_000, 0).workers[0].running, 1, "its report");
        assert_eq!(r.totals().expired, 1);
    }

    #[test]
    fn a_cancelled_job_is_a_released_lease_and_no_lease_is_counted_twice() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 2, "t"), KEY, 0);
        let cancelled = |lease_id| v1::JobFinished {
            lease_id,
            ran: false,
            exit_code: -1,
            cancelled: true,
            ..Default::default()
        };
        let lease = placed(r.assign(&request("t"), 0)).lease.unwrap();
        let (freed, _) = r.on_finished(a, &cancelled(lease.id), 10);
        assert!(freed);
        // Released by its client first, then cancelled on the worker.
        let lease = placed(r.assign(&request("t"), 0)).lease.unwrap();
        assert_eq!(r.release_failed(lease.id, &lease.mac), Release::Released);
        let (freed, record) = r.on_finished(a, &cancelled(lease.id), 10);
        assert!(!freed && record.is_none());
        let t = r.totals().clone();
        assert_eq!((t.released, t.worker_failed, t.assigned), (2, 0, 2));
        assert_eq!(t.done() + t.failed(), t.assigned);
        assert_eq!(r.status(0, 0).workers[0].jobs_failed, 1, "the release only");
    }

    #[test]
    fn silent_and_departed_workers_are_removed_and_their_leases_fail() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 1, "t"), KEY, 0);
        let b = r.add_worker(hello("b:1", 1, "t"), KEY, 0);
        placed(r.assign(&request("t"), 0));
        r.touch(b, 5000);
        let (gone, _) = r.sweep(5000, 4000);
        assert_eq!(gone, vec![a]);
        assert_eq!(r.status(5000, 0).jobs_failed, 1);
        assert!(r.remove_worker(b));
        assert!(!r.remove_worker(b));
    }

    #[test]
    fn excluded_and_failed_workers_are_avoided_on_retry() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 1, "t"), KEY, 0);
        let b = r.add_worker(hello("b:1", 1, "t"), KEY, 0);
        let first = placed(r.assign(&request("t"), 0));
        let first_lease = first.lease.unwrap();
        let retry = v1::AssignRequest {
            exclude_workers: vec![first.worker_id],
            failed_lease: first_lease.id,
            failed_lease_mac: first_lease.mac,
            ..request("t")
        };
        let second = placed(r.assign(&retry, 0));
        assert_ne!(second.worker_id, first.worker_id);
        assert!([a, b].contains(&second.worker_id));
        // The failed lease was released: the first worker is free again.
        assert_eq!(
            r.status(0, 0)
                .workers
                .iter()
                .map(|w| w.running)
                .sum::<u32>(),
            1
        );
    }

    #[test]
    fn every_lease_ends_in_one_outcome_counter() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 8, "t"), KEY, 0);
        let b = r.add_worker(hello("b:1", 8, "t"), KEY, 0);
        let lease_on = |r: &mut Registry, w: u64| {
            let other = if w == a { b } else { a };
            let req = v1::AssignRequest {
                exclude_workers: vec![other],
                ..request("t")
            };
            placed(r.assign(&req, 0)).lease.unwrap().id
        };
        let finish = |r: &mut Registry, lease_id, ran, exit_code| {
            let f = v1::JobFinished {
                lease_id,
                ran,
                exit_code,
                ..Default::default()
            };
            r.on_finished(a, &f, 0);
        };
        let ok = lease_on(&mut r, a);
        finish(&mut r, ok, true, 0);
        let error = lease_on(&mut r, a);
        finish(&mut r, error, true, 1);
        let refused = lease_on(&mut r, a);
        finish(&mut r, refused, false, -1);
        let on_a = v1::AssignRequest {
            exclude_workers: vec![b],
            ..request("t")
        };
        let released = placed(r.assign(&on_a, 0)).lease.unwrap();
        // Only its holder, who knows its MAC, can give it back.
        assert_eq!(r.release_failed(released.id, &[0; 32]), Release::NotHolder);
        assert_eq!(r.release_failed(released.id, &[]), Release::NotHolder);
        assert_eq!(
            r.release_failed(released.id, &released.mac),
            Release::Released
        );
        assert_eq!(
            r.release_failed(released.id, &released.mac),
            Release::Unknown
        );
        let _expires = lease_on(&mut r, a);
        // Started, so it does not expire: it is lost with its worker.
        let lost = lease_on(&mut r, b);
        r.on_started(b, lost);
        assert_eq!(
            r.worker_loads()
                .iter()
                .map(|w| (w.id, w.running))
                .collect::<Vec<_>>(),
            vec![(a, 1), (b, 1)]
        );
        r.touch(a, 5000);
        r.sweep(5000, 4000);
        let t = r.totals().clone();
        assert_eq!(
            (t.ok, t.compile_error, t.worker_failed, t.released),
            (1, 1, 1, 1)
        );
        assert_eq!((t.expired, t.lost), (1, 1));
        assert_eq!((t.assigned, t.assigned_source_bytes), (6, 6000));
        assert_eq!(t.done() + t.failed(), t.assigned);
        let status = r.status(0, 0);
        assert_eq!((status.jobs_done, status.jobs_failed), (2, 4));
    }

    #[test]
    fn draining_workers_get_no_jobs() {
        let mut r = registry();
        let a = r.add_worker(hello("a:1", 4, "t"), KEY, 0);
        r.on_going_away(a);
        assert!(matches!(r.assign(&request("t"), 0), Placement::NoWorker(_)));
    }
}
