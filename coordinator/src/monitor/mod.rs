//! What the monitor page and its JSON API show: jobs as the coordinator
//! sees them (placed on a worker slot, finished with an outcome, or
//! answered "compile locally"), the workers, and one sample per second of
//! queue depth, jobs per second and busy slots.
//!
//! Everything is kept in bounded rings, so a coordinator that serves a
//! page for a day holds at most [`history::MAX_JOBS`] finished jobs,
//! [`history::MAX_SAMPLES`] samples and [`history::MAX_GONE_WORKERS`]
//! departed workers.
//!
//! While an event stream is open, changes gather into a batch: every
//! [`stream::EVENT_BATCH`] (or `MAX_BATCH_CHANGES` changes) the jobs that
//! changed since the last batch are serialized, once and each in its
//! latest state, and the batch goes to the live streams through a bounded
//! broadcast channel, so each stream wakes and writes once per batch,
//! whatever the number of jobs in it. A stream that falls behind gets a
//! fresh snapshot instead of the batches it missed.
//!
//! Only names are kept: the source file's name, the client's name and the
//! worker's address. The command line never reaches the coordinator.
//!
//! - [`Monitor`] (here): fed by `service` where leases are placed,
//!   finished, released and swept, and once a second; read by `web`.
//! - [`history`]: the rings (jobs, lanes, workers, samples, clients) and
//!   the records the API shows of them.
//! - [`stream`]: the batches and the event streams they go to.
//! - [`json`]: the JSON of job events and ticks, written by hand.

mod history;
mod json;
mod stream;

use std::sync::{Mutex, MutexGuard};

use gridcc_proto::v1;
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use crate::registry::Registry;
pub(crate) use history::{job_mode, Outcome};
use history::{Job, Sample, State, Worker, MAX_GONE_WORKERS, MAX_SAMPLES};
pub(crate) use stream::Frame;
use stream::{Tick, BATCH_BUFFER};

/// Failed leases remembered so a later retry or release can say what the
/// client did next.
const MAX_FAILED_REMEMBERED: usize = 1024;
/// Longest file or client name kept; longer ones are cut (they come from
/// clients, so they are bounded here).
const MAX_NAME_CHARS: usize = 120;

/// The `GET /api/v1/jobs` answer.
#[derive(Debug, Serialize)]
pub(crate) struct JobsPage {
    /// Pass as `since` to get what changed after this answer.
    pub(crate) next: u64,
    /// Ended jobs with `seq > since`, oldest first, at most `limit`.
    pub(crate) jobs: Vec<Job>,
    /// Jobs on a worker now.
    pub(crate) running: Vec<Job>,
}

/// Cuts a name from a client to [`MAX_NAME_CHARS`] characters, control
/// characters replaced.
fn clean_name(name: &str) -> String {
    name.chars()
        .take(MAX_NAME_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The monitor's state and its event channel.
#[derive(Debug)]
pub(crate) struct Monitor {
    state: Mutex<State>,
    events: broadcast::Sender<Frame>,
    /// Woken when a batch starts, so the flusher sleeps while none does.
    batch_started: Notify,
}

impl Monitor {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::default(),
            events: broadcast::channel(BATCH_BUFFER).0,
            batch_started: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Stale counters at worst: keep serving after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker joined: listed as serving until the next tick fills in its
    /// load.
    pub(crate) fn worker_joined(&self, id: u64, hello: &v1::WorkerHello, now_ms: u64) {
        let worker = Worker {
            id,
            address: clean_name(&hello.advertise_addr),
            hostname: clean_name(&hello.hostname),
            slots: hello.slots,
            running: 0,
            queued: 0,
            cpu_quota: hello.capacity,
            speed: hello.capacity,
            state: "serving",
            job_mode: job_mode(hello),
            jobs_done: 0,
            jobs_failed: 0,
            joined_ms: now_ms,
            gone_ms: None,
        };
        self.state().workers.insert(id, worker);
    }

    /// A worker left: kept as gone (the oldest gone ones are forgotten).
    pub(crate) fn worker_left(&self, id: u64, now_ms: u64) {
        let mut state = self.state();
        if let Some(w) = state.workers.get_mut(&id) {
            w.state = "gone";
            w.gone_ms.get_or_insert(now_ms);
            w.running = 0;
        }
        state.lanes.remove(&id);
        let mut gone: Vec<(u64, u64)> = state
            .workers
            .values()
            .filter_map(|w| w.gone_ms.map(|t| (t, w.id)))
            .collect();
        if gone.len() > MAX_GONE_WORKERS {
            gone.sort_unstable();
            for (_, id) in &gone[..gone.len() - MAX_GONE_WORKERS] {
                state.workers.remove(id);
            }
        }
    }

    /// A lease was handed out for `req`.
    pub(crate) fn placed(
        &self,
        lease_id: u64,
        worker: u64,
        req: &v1::AssignRequest,
        client: &str,
        now_ms: u64,
    ) {
        let mut state = self.state();
        let seq = state.seq();
        state.next_id += 1;
        let lane = state.take_lane(worker);
        let job = Job {
            seq,
            id: state.next_id,
            worker: Some(worker),
            lane: Some(lane),
            file: clean_name(&req.source_name),
            client: clean_name(client),
            start_ms: now_ms,
            end_ms: None,
            outcome: Outcome::Running,
        };
        state.running.insert(lease_id, job);
        self.changed(&mut state);
    }

    /// An `Assign` was answered "compile locally".
    pub(crate) fn local(&self, req: &v1::AssignRequest, client: &str, now_ms: u64) {
        let mut state = self.state();
        let seq = state.seq();
        state.next_id += 1;
        let job = Job {
            seq,
            id: state.next_id,
            worker: None,
            lane: None,
            file: clean_name(&req.source_name),
            client: clean_name(client),
            start_ms: now_ms,
            end_ms: Some(now_ms),
            outcome: Outcome::Local,
        };
        state.count_ended(&job.client, now_ms);
        state.push_ended(job);
        self.changed(&mut state);
    }

    /// A worker reported a lease's job finished (ignored unless the lease
    /// was placed on that worker, as the registry does).
    pub(crate) fn finished(&self, worker: u64, finished: &v1::JobFinished, now_ms: u64) {
        let placed_there = self
            .state()
            .running
            .get(&finished.lease_id)
            .is_some_and(|j| j.worker == Some(worker));
        if placed_there {
            self.end(finished.lease_id, Outcome::of(finished), now_ms);
        }
    }

    /// Ends a running job; a failed one is remembered for [`Self::after_failure`].
    fn end(&self, lease_id: u64, outcome: Outcome, now_ms: u64) {
        let mut state = self.state();
        let Some(mut job) = state.running.remove(&lease_id) else {
            return;
        };
        state.free_lane(&job);
        job.seq = state.seq();
        job.end_ms = Some(now_ms);
        job.outcome = outcome;
        if outcome == Outcome::Failed {
            if state.failed.len() >= MAX_FAILED_REMEMBERED {
                state.failed.pop_front();
            }
            state.failed.push_back((lease_id, job.id));
        } else {
            state.ended_since_sample += 1;
        }
        state.count_ended(&job.client, now_ms);
        state.push_ended(job);
        self.changed(&mut state);
    }

    /// The client says what became of a failed lease: it tried another
    /// worker (`Retried`) or gave the lease back to compile locally
    /// (`Local`). The lease may still be running here (the client saw the
    /// failure before the worker reported) or have ended as failed.
    pub(crate) fn after_failure(&self, lease_id: u64, outcome: Outcome, now_ms: u64) {
        let running = self.state().running.contains_key(&lease_id);
        if running {
            self.end(lease_id, outcome, now_ms);
            return;
        }
        let mut state = self.state();
        let Some(at) = state.failed.iter().position(|(l, _)| *l == lease_id) else {
            return;
        };
        let (_, id) = state.failed.remove(at).unwrap_or_default();
        let Some(at) = state.ended.iter().rposition(|j| j.id == id) else {
            return;
        };
        let Some(mut job) = state.ended.remove(at) else {
            return;
        };
        job.seq = state.seq();
        job.outcome = outcome;
        state.push_ended(job);
        self.changed(&mut state);
    }

    /// Ends, as failed, every job whose lease the registry no longer has
    /// (expired, or lost with its worker). Called under the registry's lock.
    pub(crate) fn reconcile(&self, registry: &Registry, now_ms: u64) {
        let gone: Vec<u64> = self
            .state()
            .running
            .keys()
            .copied()
            .filter(|l| !registry.has_lease(*l))
            .collect();
        for lease in gone {
            self.end(lease, Outcome::Failed, now_ms);
        }
    }

    /// Takes this second's sample from the registry and sends a tick.
    /// Called under the registry's lock.
    pub(crate) fn sample(&self, registry: &Registry, waiting: usize, now_ms: u64) {
        let status = registry.status(now_ms, now_ms);
        let mut state = self.state();
        let (mut busy, mut slots) = (0, 0);
        for w in &status.workers {
            busy += w.running;
            slots += w.slots;
            if let Some(seen) = state.workers.get_mut(&w.id) {
                seen.running = w.running;
                seen.queued = w.queued;
                seen.speed = w.capacity;
                seen.state = if w.draining { "draining" } else { "serving" };
                seen.jobs_done = w.jobs_done;
                seen.jobs_failed = w.jobs_failed;
            }
        }
        let sample = Sample {
            t_ms: now_ms,
            queue: waiting,
            jobs_per_s: std::mem::take(&mut state.ended_since_sample),
            busy_slots: busy,
            slots,
        };
        while state.samples.len() >= MAX_SAMPLES {
            state.samples.pop_front();
        }
        state.samples.push_back(sample);
        state.forget_ended_before(now_ms);
        if self.events.receiver_count() == 0 {
            return;
        }
        // Taken out while the tick borrows the state.
        let mut batch = std::mem::take(&mut state.batch);
        let tick = Tick {
            sample: &sample,
            workers: state.workers.values().collect(),
            clients: state.clients(now_ms),
        };
        batch.extend_from_slice(b"event: tick\ndata: ");
        tick.write_json(&mut batch);
        batch.extend_from_slice(b"\n\n");
        state.batch = batch;
        state.batch_ticks += 1;
        self.changed(&mut state);
    }

    /// `GET /api/v1/state`.
    pub(crate) fn snapshot_json(&self, now_ms: u64) -> String {
        serde_json::to_string(&self.state().snapshot(now_ms)).unwrap_or_default()
    }

    /// `GET /api/v1/workers`.
    pub(crate) fn workers_json(&self) -> String {
        let state = self.state();
        #[derive(Serialize)]
        struct Workers<'a> {
            workers: Vec<&'a Worker>,
        }
        let workers = Workers {
            workers: state.workers.values().collect(),
        };
        serde_json::to_string(&workers).unwrap_or_default()
    }

    /// `GET /api/v1/jobs?since=SEQ&limit=N`: ended jobs updated after
    /// `since`, oldest first.
    pub(crate) fn jobs(&self, since: u64, limit: usize) -> JobsPage {
        let state = self.state();
        // `ended` is in seq order: find the first newer than `since`.
        let start = state.ended.partition_point(|j| j.seq <= since);
        let jobs: Vec<Job> = state.ended.range(start..).take(limit).cloned().collect();
        let next = jobs.last().map_or(since, |j| j.seq);
        let mut running: Vec<Job> = state.running.values().cloned().collect();
        running.sort_by_key(|j| j.id);
        JobsPage {
            next,
            jobs,
            running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::history::MAX_JOBS;
    use super::*;

    pub(super) fn req(file: &str) -> v1::AssignRequest {
        v1::AssignRequest {
            source_name: file.into(),
            ..Default::default()
        }
    }

    pub(super) fn lease_done(lease_id: u64) -> v1::JobFinished {
        lease(lease_id, true, false, 0)
    }

    pub(super) fn lease(lease_id: u64, ran: bool, hit: bool, exit_code: i32) -> v1::JobFinished {
        v1::JobFinished {
            lease_id,
            ran,
            cache_hit: hit,
            exit_code,
            ..Default::default()
        }
    }

    /// The text of a frame or batch.
    pub(super) fn text(frame: &[u8]) -> &str {
        std::str::from_utf8(frame).unwrap()
    }

    #[test]
    fn jobs_take_the_lowest_free_lane_and_end_with_their_outcome() {
        let m = Monitor::new();
        m.placed(1, 7, &req("a.c"), "dev", 10);
        m.placed(2, 7, &req("b.c"), "dev", 11);
        m.finished(7, &lease(1, true, false, 0), 20);
        m.placed(3, 7, &req("c.c"), "ci", 21);
        let page = m.jobs(0, 100);
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.jobs[0].file, "a.c");
        assert_eq!(page.jobs[0].outcome, Outcome::Ok);
        assert_eq!(page.jobs[0].end_ms, Some(20));
        let lanes: Vec<_> = page
            .running
            .iter()
            .map(|j| (j.file.as_str(), j.lane))
            .collect();
        assert_eq!(lanes, [("b.c", Some(1)), ("c.c", Some(0))]);
        m.finished(7, &lease(2, true, true, 0), 30);
        m.finished(7, &lease(3, true, false, 1), 30);
        let outcomes: Vec<_> = m
            .jobs(page.next, 100)
            .jobs
            .iter()
            .map(|j| j.outcome)
            .collect();
        assert_eq!(outcomes, [Outcome::SharedHit, Outcome::CompileError]);
        // An unknown lease changes nothing.
        m.finished(7, &lease(99, true, false, 0), 31);
        assert_eq!(m.jobs(0, 100).jobs.len(), 3);
    }

    #[test]
    fn a_failed_lease_learns_whether_the_client_retried_or_went_local() {
        let m = Monitor::new();
        m.placed(1, 7, &req("a.c"), "dev", 10);
        m.placed(2, 7, &req("b.c"), "dev", 10);
        m.finished(7, &lease(1, false, false, 0), 20);
        let failed = m.jobs(0, 100);
        assert_eq!(failed.jobs[0].outcome, Outcome::Failed);
        m.after_failure(1, Outcome::Retried, 25);
        // Still running when the client released it: ends as local.
        m.after_failure(2, Outcome::Local, 26);
        let later = m.jobs(failed.next, 100);
        let got: Vec<_> = later
            .jobs
            .iter()
            .map(|j| (j.file.as_str(), j.outcome))
            .collect();
        assert_eq!(got, [("a.c", Outcome::Retried), ("b.c", Outcome::Local)]);
        assert!(later.running.is_empty());
        // Each job appears once, at its latest state.
        assert_eq!(m.jobs(0, 100).jobs.len(), 2);
    }

    #[test]
    fn a_job_whose_lease_the_registry_dropped_ends_as_failed() {
        let mut registry = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            1000,
            1000,
        );
        let hello = v1::WorkerHello {
            advertise_addr: "127.0.0.1:1".into(),
            slots: 2,
            toolchains: vec![v1::Toolchain {
                identity: "t".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let worker = registry.add_worker(hello.clone(), [1; gridcc_proto::lease::KEY_LEN], 0);
        let m = Monitor::new();
        m.worker_joined(worker, &hello, 0);
        let req = v1::AssignRequest {
            toolchain: "t".into(),
            ..req("a.c")
        };
        let crate::registry::Placement::Placed(p) = registry.assign(&req, 0) else {
            panic!("not placed");
        };
        m.placed(p.lease.unwrap().id, worker, &req, "dev", 0);
        m.reconcile(&registry, 10);
        assert_eq!(m.jobs(0, 10).running.len(), 1, "the lease is still out");
        // The worker leaves with it: the registry counts it lost.
        registry.remove_worker(worker);
        m.worker_left(worker, 20);
        m.reconcile(&registry, 30);
        let page = m.jobs(0, 10);
        assert!(page.running.is_empty());
        assert_eq!(page.jobs[0].outcome, Outcome::Failed);
        assert_eq!(page.jobs[0].end_ms, Some(30));
        let workers = m.workers_json();
        assert!(workers.contains("\"state\":\"gone\""), "{workers}");
    }

    #[test]
    fn history_is_bounded() {
        let m = Monitor::new();
        for i in 0..(MAX_JOBS as u64 + 500) {
            m.placed(i, 1, &req("x.c"), "dev", i);
            m.finished(1, &lease(i, true, false, 0), i + 1);
        }
        assert_eq!(m.state().lanes.get(&1).map(Vec::len), Some(1));
        let registry = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            1000,
            1000,
        );
        // An hour and more later, one sample a second.
        for t in 0..(MAX_SAMPLES as u64 + 10) {
            m.sample(&registry, 0, 10_000_000 + t * 1000);
        }
        for id in 0..(MAX_GONE_WORKERS as u64 + 5) {
            m.worker_joined(id, &v1::WorkerHello::default(), 0);
            m.worker_left(id, id);
        }
        let state = m.state();
        assert_eq!(state.ended.len(), MAX_JOBS);
        assert_eq!(state.samples.len(), MAX_SAMPLES);
        assert_eq!(state.workers.len(), MAX_GONE_WORKERS);
        assert!(state.ended_by_client.len() <= 61, "a minute of seconds");
        assert!(state.running.is_empty());
    }

    #[test]
    fn names_from_clients_are_cut_and_cleaned() {
        assert_eq!(clean_name("a\nb.c"), "a?b.c");
        assert_eq!(clean_name(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }
}
