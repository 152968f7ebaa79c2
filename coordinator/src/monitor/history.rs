//! The monitor's history, in bounded rings: the jobs (running, and
//! ended), the workers (gone ones too), the lanes jobs take on a worker's
//! slots, one sample a second, and each client's jobs of the last minute;
//! and the records the API and the page show of them.

use std::collections::{BTreeMap, HashMap, VecDeque};

use gridcc_proto::v1;
use serde::Serialize;

/// Finished jobs kept for the API and new pages (about 200 bytes each).
pub(crate) const MAX_JOBS: usize = 20_000;
/// One sample a second: an hour of history.
pub(crate) const MAX_SAMPLES: usize = 3_600;
/// Departed workers still listed (as gone).
pub(crate) const MAX_GONE_WORKERS: usize = 32;
/// How far back a new page's snapshot reaches, and how many jobs at most.
pub(crate) const SNAPSHOT_WINDOW_MS: u64 = 10 * 60 * 1000;
const SNAPSHOT_MAX_JOBS: usize = 5_000;
/// Samples in a snapshot: the same ten minutes.
const SNAPSHOT_SAMPLES: usize = 600;
/// Window over which the clients' shares are counted.
const CLIENT_WINDOW_MS: u64 = 60_000;

/// How a job ended, as the page colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Placed and not finished yet.
    Running,
    /// The worker's compiler ran and exited 0.
    Ok,
    /// The worker's compiler ran and reported a compile error.
    CompileError,
    /// The worker answered from its shared cache.
    SharedHit,
    /// The lease failed and the client tried another worker.
    Retried,
    /// The lease failed (worker could not run it, left, or the client never
    /// arrived) and nothing more is known.
    Failed,
    /// Compiled on the client: the coordinator said so, or the client gave
    /// its lease back after a failure.
    Local,
}

impl Outcome {
    /// Its name in the API, as `serde` writes it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::CompileError => "compile_error",
            Outcome::SharedHit => "shared_hit",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Local => "local",
        }
    }

    pub(super) fn of(finished: &v1::JobFinished) -> Self {
        match (finished.ran, finished.cache_hit, finished.exit_code) {
            (_, true, _) => Outcome::SharedHit,
            (true, false, 0) => Outcome::Ok,
            (true, false, _) => Outcome::CompileError,
            (false, false, _) => Outcome::Failed,
        }
    }
}

/// One job as the API and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Job {
    /// Changes with every update of the job; `jobs?since=` pages by it.
    pub(crate) seq: u64,
    /// The job's id on this page (not the lease's).
    pub(crate) id: u64,
    /// `None` for a job answered "compile locally".
    pub(crate) worker: Option<u64>,
    /// Which of the worker's slots (0-based) it occupied, as a Gantt row.
    pub(crate) lane: Option<u32>,
    pub(crate) file: String,
    pub(crate) client: String,
    pub(crate) start_ms: u64,
    pub(crate) end_ms: Option<u64>,
    pub(crate) outcome: Outcome,
}

/// One worker as the API and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Worker {
    pub(crate) id: u64,
    pub(crate) address: String,
    pub(crate) hostname: String,
    pub(crate) slots: u32,
    /// Jobs placed on it and not finished.
    pub(crate) running: u32,
    /// Jobs waiting on the worker itself, from its last load report.
    pub(crate) queued: u32,
    /// CPUs it may use (its cgroup quota or `--calibrate`), from its hello.
    pub(crate) cpu_quota: f64,
    /// The speed placement uses (quota times what its jobs measured).
    pub(crate) speed: f64,
    /// `serving`, `draining` or `gone`.
    pub(crate) state: &'static str,
    /// How it runs jobs: `text` (preprocessed text) is the only mode yet.
    pub(crate) job_mode: &'static str,
    pub(crate) jobs_done: u64,
    pub(crate) jobs_failed: u64,
    pub(crate) joined_ms: u64,
    pub(crate) gone_ms: Option<u64>,
}

/// One second of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Sample {
    pub(crate) t_ms: u64,
    /// Assign requests waiting for a slot.
    pub(crate) queue: usize,
    /// Jobs that ended on a worker in this second.
    pub(crate) jobs_per_s: u32,
    pub(crate) busy_slots: u32,
    pub(crate) slots: u32,
}

/// A client building now: its jobs running and ended in the last minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Client {
    pub(crate) client: String,
    pub(crate) running: u32,
    pub(crate) jobs_last_minute: u32,
    /// Its part of the jobs running now plus those of the last minute.
    pub(crate) share: f64,
}

/// All the monitor keeps, behind the [`Monitor`](super::Monitor)'s one
/// lock: the history, then the batch gathering for the streams (see
/// [`super::stream`]).
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) next_seq: u64,
    pub(super) next_id: u64,
    /// Jobs on a worker now, by lease id.
    pub(super) running: HashMap<u64, Job>,
    /// Ended jobs in `seq` order, oldest first.
    pub(super) ended: VecDeque<Job>,
    /// Lease id → job id of recently failed leases, oldest first.
    pub(super) failed: VecDeque<(u64, u64)>,
    /// Slots taken per worker, by lane.
    pub(super) lanes: HashMap<u64, Vec<bool>>,
    pub(super) workers: BTreeMap<u64, Worker>,
    pub(super) samples: VecDeque<Sample>,
    pub(super) ended_since_sample: u32,
    /// Jobs ended per client in each second of the last minute, oldest
    /// second first, and their sums per client: counted as jobs end and
    /// seconds pass, so the clients' shares (once a second) need not walk
    /// the last minute's jobs.
    pub(super) ended_by_client: VecDeque<(u64, Vec<(String, u32)>)>,
    pub(super) ended_last_minute: Vec<(String, u32)>,
    /// Every job change up to this `seq` has gone to the streams (or was
    /// made while none was open); the jobs with a later `seq` are the
    /// batch's, written when it is sent.
    pub(super) sent_seq: u64,
    /// Ticks not yet sent, as SSE frames, and how many. Jobs are written
    /// after them when the batch goes out; the buffer is reused.
    pub(super) batch: Vec<u8>,
    pub(super) batch_ticks: u64,
    /// Whether the sender was woken for the batch gathering now.
    pub(super) batch_open: bool,
}

impl State {
    pub(super) fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(super) fn take_lane(&mut self, worker: u64) -> u32 {
        let lanes = self.lanes.entry(worker).or_default();
        let lane = lanes.iter().position(|taken| !taken).unwrap_or(lanes.len());
        if lane == lanes.len() {
            lanes.push(true);
        } else {
            lanes[lane] = true;
        }
        lane as u32
    }

    pub(super) fn free_lane(&mut self, job: &Job) {
        if let (Some(worker), Some(lane)) = (job.worker, job.lane) {
            if let Some(slot) = self
                .lanes
                .get_mut(&worker)
                .and_then(|l| l.get_mut(lane as usize))
            {
                *slot = false;
            }
        }
    }

    /// Counts a job that just ended toward its client's share.
    pub(super) fn count_ended(&mut self, client: &str, end_ms: u64) {
        let second = end_ms / 1000;
        match self.ended_by_client.back() {
            // A clock that went back counts in the newest second.
            Some((newest, _)) if *newest >= second => {}
            _ => {
                self.forget_ended_before(end_ms);
                self.ended_by_client.push_back((second, Vec::new()));
            }
        }
        let Some((_, counts)) = self.ended_by_client.back_mut() else {
            return;
        };
        for counts in [counts, &mut self.ended_last_minute] {
            match counts.iter_mut().find(|(c, _)| c == client) {
                Some((_, n)) => *n += 1,
                None => counts.push((client.to_owned(), 1)),
            }
        }
    }

    /// Forgets the seconds that left the clients' window by `now_ms`.
    pub(super) fn forget_ended_before(&mut self, now_ms: u64) {
        let since = client_window_start(now_ms);
        while self
            .ended_by_client
            .front()
            .is_some_and(|(s, _)| *s < since)
        {
            let Some((_, gone)) = self.ended_by_client.pop_front() else {
                break;
            };
            for (client, n) in gone {
                if let Some(sum) = self
                    .ended_last_minute
                    .iter_mut()
                    .find(|(c, _)| *c == client)
                {
                    sum.1 -= n;
                }
            }
            self.ended_last_minute.retain(|(_, n)| *n > 0);
        }
    }

    pub(super) fn push_ended(&mut self, job: Job) {
        while self.ended.len() >= MAX_JOBS {
            self.ended.pop_front();
        }
        self.ended.push_back(job);
    }

    pub(super) fn clients(&self, now_ms: u64) -> Vec<Client> {
        // (client, running, ended in the last minute); a grid has few
        // clients, and one run of jobs mostly one, so a list beats a map.
        fn count<'a>(by: &mut Vec<(&'a str, u32, u32)>, client: &'a str, running: u32, ended: u32) {
            let at = match by.iter().rposition(|(c, _, _)| *c == client) {
                Some(at) => at,
                None => {
                    by.push((client, 0, 0));
                    by.len() - 1
                }
            };
            by[at].1 += running;
            by[at].2 += ended;
        }
        let mut by = Vec::new();
        for job in self.running.values() {
            count(&mut by, &job.client, 1, 0);
        }
        for (client, n) in &self.ended_last_minute {
            count(&mut by, client, 0, *n);
        }
        // Seconds that left the window since they were last forgotten (at
        // the last tick, or the last job's end).
        let since = client_window_start(now_ms);
        for (_, gone) in self.ended_by_client.iter().take_while(|(s, _)| *s < since) {
            for (client, n) in gone {
                if let Some(c) = by.iter_mut().find(|(c, _, _)| c == client) {
                    c.2 -= n;
                }
            }
        }
        by.retain(|(_, running, ended)| running + ended > 0);
        by.sort_unstable_by_key(|(c, _, _)| *c);
        let total: u32 = by.iter().map(|(_, r, e)| r + e).sum();
        by.into_iter()
            .map(|(client, running, ended)| Client {
                client: client.to_owned(),
                running,
                jobs_last_minute: ended,
                share: f64::from(running + ended) / f64::from(total.max(1)),
            })
            .collect()
    }

    pub(super) fn snapshot(&self, now_ms: u64) -> Snapshot<'_> {
        let since = now_ms.saturating_sub(SNAPSHOT_WINDOW_MS);
        let recent = self
            .ended
            .iter()
            .rev()
            .take_while(|j| j.end_ms.unwrap_or(0) >= since)
            .take(SNAPSHOT_MAX_JOBS)
            .count();
        let mut jobs: Vec<&Job> = self.running.values().collect();
        jobs.sort_by_key(|j| j.id);
        Snapshot {
            now_ms,
            seq: self.next_seq,
            window_ms: SNAPSHOT_WINDOW_MS,
            workers: self.workers.values().collect(),
            running: jobs,
            jobs: self.ended.range(self.ended.len() - recent..).collect(),
            samples: self
                .samples
                .range(self.samples.len().saturating_sub(SNAPSHOT_SAMPLES)..)
                .collect(),
            clients: self.clients(now_ms),
        }
    }
}

/// What a new page gets first (`event: snapshot`, and `GET /api/v1/state`).
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot<'a> {
    pub(crate) now_ms: u64,
    /// The last `seq` it covers.
    pub(crate) seq: u64,
    pub(crate) window_ms: u64,
    pub(crate) workers: Vec<&'a Worker>,
    pub(crate) running: Vec<&'a Job>,
    pub(crate) jobs: Vec<&'a Job>,
    pub(crate) samples: Vec<&'a Sample>,
    pub(crate) clients: Vec<Client>,
}

/// How a worker runs its jobs, as `gridcc status` and the page show it:
/// `hermetic` (in the sandbox, hermetic jobs taken), `text` (in the
/// sandbox, text jobs only; or an older worker), `unsandboxed` (started
/// with --no-sandbox).
pub(crate) fn job_mode(hello: &v1::WorkerHello) -> &'static str {
    if hello.unsandboxed {
        "unsandboxed"
    } else if hello.hermetic {
        "hermetic"
    } else {
        "text"
    }
}

/// The first second (since the epoch) of the clients' window at `now_ms`:
/// the last minute, to the second.
fn client_window_start(now_ms: u64) -> u64 {
    now_ms.saturating_sub(CLIENT_WINDOW_MS) / 1000
}

#[cfg(test)]
mod tests {
    use crate::monitor::tests::{lease_done, req};
    use crate::monitor::Monitor;
    use crate::registry::Registry;

    #[test]
    fn clients_share_the_jobs_of_the_last_minute() {
        let m = Monitor::new();
        m.local(&req("old.c"), "gone", 1_000);
        for (lease, client, at) in [(1, "ci", 50_000), (2, "dev", 70_000), (3, "ci", 90_000)] {
            m.placed(lease, 7, &req("x.c"), client, at);
            m.finished(7, &lease_done(lease), at + 500);
        }
        m.placed(4, 7, &req("y.c"), "dev", 95_000);
        let clients = m.state().clients(100_000);
        let got: Vec<_> = clients
            .iter()
            .map(|c| (c.client.as_str(), c.running, c.jobs_last_minute))
            .collect();
        // "gone" ended 99 s ago; the first "ci" job 49.5 s ago.
        assert_eq!(got, [("ci", 0, 2), ("dev", 1, 1)]);
        assert_eq!(clients[0].share, 0.5);
        // A minute on, only what is still running.
        let later = m.state().clients(170_000);
        assert_eq!(later.len(), 1);
        assert_eq!((later[0].running, later[0].jobs_last_minute), (1, 0));
        // Seconds older than the window are forgotten as new ones come,
        // and at each tick.
        m.local(&req("z.c"), "dev", 200_000);
        assert_eq!(m.state().ended_by_client.len(), 1);
        assert_eq!(m.state().ended_last_minute, [("dev".to_owned(), 1)]);
        let registry = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            1000,
            1000,
        );
        m.sample(&registry, 0, 261_000);
        assert!(m.state().ended_by_client.is_empty());
        assert!(m.state().ended_last_minute.is_empty());
    }
}
