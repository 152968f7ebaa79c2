//! What the monitor page and its JSON API show: jobs as the coordinator
//! sees them (placed on a worker slot, finished with an outcome, or
//! answered "compile locally"), the workers, and one sample per second of
//! queue depth, jobs per second and busy slots.
//!
//! Everything is kept in bounded rings, so a coordinator that serves a
//! page for a day holds at most [`MAX_JOBS`] finished jobs,
//! [`MAX_SAMPLES`] samples and [`MAX_GONE_WORKERS`] departed workers.
//!
//! While an event stream is open, changes gather into a batch: every
//! [`EVENT_BATCH`] (or [`MAX_BATCH_CHANGES`] changes) the jobs that
//! changed since the last batch are serialized, once and each in its
//! latest state, and the batch goes to the live streams through a bounded
//! broadcast channel, so each stream wakes and writes once per batch,
//! whatever the number of jobs in it. A stream that falls behind gets a
//! fresh snapshot instead of the batches it missed.
//!
//! Only names are kept: the source file's name, the client's name and the
//! worker's address. The command line never reaches the coordinator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gridcc_proto::v1;
use serde::Serialize;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

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
/// Batches buffered per stream before it counts as lagging: 25.6 s of
/// changes, or 64 × [`MAX_BATCH_CHANGES`] changes if that is fewer.
const BATCH_BUFFER: usize = 64;
/// How long changes gather before they go to the streams as one batch:
/// one wake-up and one write per open page per batch, not per job, so a
/// page costs the coordinator little however busy the grid is (and that
/// wake-up and write are most of what a page costs). A job that starts
/// and ends within one batch is sent once. Batches come this far apart or
/// more (but for a full one), more than the page's 200 ms between
/// redraws, so the page mostly redraws as a batch arrives: a change shows
/// within 400 to 600 ms (the browser test wants a finished job on the
/// page within a second).
pub(crate) const EVENT_BATCH: Duration = Duration::from_millis(400);
/// Changes (job updates and ticks) in one batch at most; a fuller one goes
/// out early, which bounds what a batch (and so the channel) holds.
const MAX_BATCH_CHANGES: u64 = 256;
/// Failed leases remembered so a later retry or release can say what the
/// client did next.
const MAX_FAILED_REMEMBERED: usize = 1024;
/// Longest file or client name kept; longer ones are cut (they come from
/// clients, so they are bounded here).
const MAX_NAME_CHARS: usize = 120;
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
    fn name(self) -> &'static str {
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

    fn of(finished: &v1::JobFinished) -> Self {
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

impl Job {
    /// Appends the job's JSON object: a batch writes one per job changed,
    /// so this is the monitor's one cost per job while a page is open.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.u64("seq", self.seq);
        o.u64("id", self.id);
        o.opt_u64("worker", self.worker);
        o.opt_u64("lane", self.lane.map(u64::from));
        o.str("file", &self.file);
        o.str("client", &self.client);
        o.u64("start_ms", self.start_ms);
        o.opt_u64("end_ms", self.end_ms);
        o.str("outcome", self.outcome.name());
        o.end();
    }
}

/// Writes a JSON object by hand, the same bytes `serde_json` writes for
/// the derived `Serialize` (the tests hold them equal) in a fraction of
/// its instructions: the events a page gets are written this way, so an
/// open page costs the coordinator little. Keys are our own field names
/// and need no escaping.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// `{` before the first key, `,` after.
    next: u8,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, next: b'{' }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        self.out.push(self.next);
        self.next = b',';
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn u64(&mut self, key: &str, value: u64) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        match value {
            Some(v) => self.u64(key, v),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    fn f64(&mut self, key: &str, value: f64) {
        // Floats as serde_json formats them; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(self.key(key), &value);
    }

    fn str(&mut self, key: &str, value: &str) {
        write_json_str(self.key(key), value);
    }

    /// The value written by `write` (an object or array of them).
    fn raw(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        write(self.key(key));
    }

    fn end(self) {
        if self.next == b'{' {
            self.out.push(b'{');
        }
        self.out.push(b'}');
    }
}

/// Appends a JSON array of the items `write` writes.
fn write_json_array<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(b']');
}

/// Appends `s` as a JSON string. Names are cleaned of control characters,
/// so one rarely needs escaping; one that does goes through `serde_json`.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
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

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    next_id: u64,
    /// Jobs on a worker now, by lease id.
    running: HashMap<u64, Job>,
    /// Ended jobs in `seq` order, oldest first.
    ended: VecDeque<Job>,
    /// Lease id → job id of recently failed leases, oldest first.
    failed: VecDeque<(u64, u64)>,
    /// Slots taken per worker, by lane.
    lanes: HashMap<u64, Vec<bool>>,
    workers: BTreeMap<u64, Worker>,
    samples: VecDeque<Sample>,
    ended_since_sample: u32,
    /// Jobs ended per client in each second of the last minute, oldest
    /// second first, and their sums per client: counted as jobs end and
    /// seconds pass, so the clients' shares (once a second) need not walk
    /// the last minute's jobs.
    ended_by_client: VecDeque<(u64, Vec<(String, u32)>)>,
    ended_last_minute: Vec<(String, u32)>,
    /// Every job change up to this `seq` has gone to the streams (or was
    /// made while none was open); the jobs with a later `seq` are the
    /// batch's, written when it is sent.
    sent_seq: u64,
    /// Ticks not yet sent, as SSE frames, and how many. Jobs are written
    /// after them when the batch goes out; the buffer is reused.
    batch: Vec<u8>,
    batch_ticks: u64,
    /// Whether the sender was woken for the batch gathering now.
    batch_open: bool,
}

impl State {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn take_lane(&mut self, worker: u64) -> u32 {
        let lanes = self.lanes.entry(worker).or_default();
        let lane = lanes.iter().position(|taken| !taken).unwrap_or(lanes.len());
        if lane == lanes.len() {
            lanes.push(true);
        } else {
            lanes[lane] = true;
        }
        lane as u32
    }

    fn free_lane(&mut self, job: &Job) {
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
    fn count_ended(&mut self, client: &str, end_ms: u64) {
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
    fn forget_ended_before(&mut self, now_ms: u64) {
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

    fn push_ended(&mut self, job: Job) {
        while self.ended.len() >= MAX_JOBS {
            self.ended.pop_front();
        }
        self.ended.push_back(job);
    }

    fn clients(&self, now_ms: u64) -> Vec<Client> {
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

    /// Job changes and ticks gathered for the next batch.
    fn pending(&self) -> u64 {
        self.next_seq - self.sent_seq + self.batch_ticks
    }

    /// Appends a `job` frame for each job changed after `since`, oldest
    /// change first: each once, in its latest state (a job placed and
    /// ended since is one ended job).
    fn write_jobs_since(&self, since: u64, out: &mut Vec<u8>) {
        // A job is in `running` or in `ended`, never both, and `ended` is
        // in `seq` order; `running` holds one job per busy slot.
        let mut running: Vec<&Job> = self.running.values().filter(|j| j.seq > since).collect();
        running.sort_unstable_by_key(|j| j.seq);
        let start = self.ended.partition_point(|j| j.seq <= since);
        let mut ended = self.ended.range(start..).peekable();
        let mut running = running.into_iter().peekable();
        loop {
            let job = match (ended.peek(), running.peek()) {
                (Some(e), Some(r)) if r.seq < e.seq => running.next(),
                (Some(_), _) => ended.next(),
                (None, _) => running.next(),
            };
            let Some(job) = job else { break };
            out.extend_from_slice(b"event: job\ndata: ");
            job.write_json(out);
            out.extend_from_slice(b"\n\n");
        }
    }

    fn snapshot(&self, now_ms: u64) -> Snapshot<'_> {
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

/// Once a second (`event: tick`): the new sample, the workers and clients.
#[derive(Debug, Serialize)]
struct Tick<'a> {
    sample: &'a Sample,
    workers: Vec<&'a Worker>,
    clients: Vec<Client>,
}

impl Tick<'_> {
    /// Appends the tick's JSON object (see [`Object`]).
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.raw("sample", |out| {
            let s = self.sample;
            let mut o = Object::new(out);
            o.u64("t_ms", s.t_ms);
            o.u64("queue", s.queue as u64);
            o.u64("jobs_per_s", s.jobs_per_s.into());
            o.u64("busy_slots", s.busy_slots.into());
            o.u64("slots", s.slots.into());
            o.end();
        });
        o.raw("workers", |out| {
            write_json_array(out, &self.workers, |w, out| {
                let mut o = Object::new(out);
                o.u64("id", w.id);
                o.str("address", &w.address);
                o.str("hostname", &w.hostname);
                o.u64("slots", w.slots.into());
                o.u64("running", w.running.into());
                o.u64("queued", w.queued.into());
                o.f64("cpu_quota", w.cpu_quota);
                o.f64("speed", w.speed);
                o.str("state", w.state);
                o.str("job_mode", w.job_mode);
                o.u64("jobs_done", w.jobs_done);
                o.u64("jobs_failed", w.jobs_failed);
                o.u64("joined_ms", w.joined_ms);
                o.opt_u64("gone_ms", w.gone_ms);
                o.end();
            });
        });
        o.raw("clients", |out| {
            write_json_array(out, &self.clients, |c, out| {
                let mut o = Object::new(out);
                o.str("client", &c.client);
                o.u64("running", c.running.into());
                o.u64("jobs_last_minute", c.jobs_last_minute.into());
                o.f64("share", c.share);
                o.end();
            });
        });
        o.end();
    }
}

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

/// SSE frames (each `event: NAME` and one `data:` line), shared by every
/// stream that sends them.
pub(crate) type Frame = Arc<[u8]>;

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

/// Appends one SSE frame to `out`, serialized in place.
fn frame_into(out: &mut Vec<u8>, event: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let json_at = out.len();
    if serde_json::to_writer(&mut *out, data).is_err() {
        // Our own types always serialize; "{}" keeps a stream well-formed
        // should one ever not.
        out.truncate(json_at);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

fn frame(event: &str, data: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    frame_into(&mut out, event, data);
    out
}

/// The first second (since the epoch) of the clients' window at `now_ms`:
/// the last minute, to the second.
fn client_window_start(now_ms: u64) -> u64 {
    now_ms.saturating_sub(CLIENT_WINDOW_MS) / 1000
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

    /// Event streams open now: each holds one receiver (a lagging one
    /// swaps its receiver for a fresh one, so it still counts once).
    pub(crate) fn streams(&self) -> usize {
        self.events.receiver_count()
    }

    /// Counts a change (a job's new `seq`, or a tick) into the batch for
    /// the open streams; with none open, nobody needs it (a new stream
    /// starts from a snapshot, and the batch is dropped then).
    fn changed(&self, state: &mut State) {
        if self.events.receiver_count() == 0 {
            return;
        }
        if !state.batch_open {
            state.batch_open = true;
            self.batch_started.notify_one();
        }
        if state.pending() >= MAX_BATCH_CHANGES {
            self.send_batch(state);
        }
    }

    /// Sends the batch gathered so far to every open stream: the ticks,
    /// then each job changed since the last batch, serialized now.
    fn send_batch(&self, state: &mut State) {
        let since = std::mem::replace(&mut state.sent_seq, state.next_seq);
        state.batch_open = false;
        state.batch_ticks = 0;
        if self.events.receiver_count() == 0 {
            state.batch.clear();
            return;
        }
        let mut out = std::mem::take(&mut state.batch);
        state.write_jobs_since(since, &mut out);
        if !out.is_empty() {
            // Fails only when the last stream closed meanwhile: nobody to tell.
            let _ = self.events.send(Frame::from(&out[..]));
        }
        out.clear();
        state.batch = out;
    }

    /// Sends each batch [`EVENT_BATCH`] after its first change, until
    /// `shutdown`; sleeps while no change comes.
    pub(crate) async fn send_batches_forever(&self, shutdown: CancellationToken) {
        // One wait for shutdown and one timer, reused for every batch.
        let stop = shutdown.cancelled();
        let wait = tokio::time::sleep(EVENT_BATCH);
        tokio::pin!(stop, wait);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => return,
                () = self.batch_started.notified() => {}
            }
            wait.as_mut()
                .reset(tokio::time::Instant::now() + EVENT_BATCH);
            tokio::select! {
                biased;
                () = &mut stop => return,
                () = &mut wait => {}
            }
            self.send_batch(&mut self.state());
        }
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

    /// The snapshot as an SSE frame, and a receiver for every batch after
    /// it: taken under one lock, and the batch gathered so far (already in
    /// the snapshot) goes to the other streams first, so a stream neither
    /// misses nor repeats a change.
    pub(crate) fn subscribe(&self, now_ms: u64) -> (Vec<u8>, broadcast::Receiver<Frame>) {
        let mut state = self.state();
        self.send_batch(&mut state);
        let rx = self.events.subscribe();
        (frame("snapshot", &state.snapshot(now_ms)), rx)
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
    use super::*;

    fn req(file: &str) -> v1::AssignRequest {
        v1::AssignRequest {
            source_name: file.into(),
            ..Default::default()
        }
    }

    fn lease_done(lease_id: u64) -> v1::JobFinished {
        lease(lease_id, true, false, 0)
    }

    fn lease(lease_id: u64, ran: bool, hit: bool, exit_code: i32) -> v1::JobFinished {
        v1::JobFinished {
            lease_id,
            ran,
            cache_hit: hit,
            exit_code,
            ..Default::default()
        }
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

    /// The text of a frame or batch.
    fn text(frame: &[u8]) -> &str {
        std::str::from_utf8(frame).unwrap()
    }

    #[test]
    fn a_stream_gets_the_snapshot_then_every_later_change_in_batches() {
        let m = Monitor::new();
        m.placed(1, 7, &req("a.c"), "dev", 10);
        assert!(m.state().batch.is_empty(), "no stream: nothing serialized");
        assert_eq!(m.streams(), 0);
        let (first, mut rx) = m.subscribe(15);
        let first = text(&first);
        assert_eq!(m.streams(), 1);
        assert_eq!(m.state().pending(), 0, "in the snapshot, not in a batch");
        assert!(first.starts_with("event: snapshot\ndata: {"), "{first}");
        assert!(first.contains("\"file\":\"a.c\""), "{first}");
        m.finished(7, &lease(1, true, false, 0), 20);
        m.placed(2, 7, &req("b.c"), "dev", 21);
        assert!(rx.try_recv().is_err(), "gathered until the batch is sent");
        m.send_batch(&mut m.state());
        let batch = rx.try_recv().unwrap();
        let batch = text(&batch);
        assert!(batch.starts_with("event: job\ndata: {"), "{batch}");
        assert_eq!(batch.matches("event: job\n").count(), 2, "{batch}");
        assert!(batch.contains("\"outcome\":\"ok\""), "{batch}");
        assert!(batch.contains("\"file\":\"b.c\""), "{batch}");
        assert!(rx.try_recv().is_err());

        // A second stream: the batch gathered so far is in its snapshot and
        // goes to the first stream only.
        m.finished(7, &lease(2, true, false, 0), 30);
        let (second, mut rx2) = m.subscribe(31);
        assert!(text(&second).contains("\"file\":\"b.c\""));
        assert!(text(&rx.try_recv().unwrap()).contains("\"outcome\":\"ok\""));
        assert!(
            rx2.try_recv().is_err(),
            "nothing repeated after the snapshot"
        );
        drop((rx, rx2));
        assert_eq!(m.streams(), 0, "a closed stream no longer counts");
        m.placed(3, 7, &req("c.c"), "dev", 40);
        let registry = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            1000,
            1000,
        );
        m.sample(&registry, 0, 41);
        assert!(m.state().batch.is_empty(), "no stream: nothing serialized");
    }

    #[test]
    fn a_batch_sends_each_changed_job_once_in_its_latest_state() {
        let m = Monitor::new();
        let (_, mut rx) = m.subscribe(0);
        m.placed(1, 7, &req("long.c"), "dev", 1);
        m.send_batch(&mut m.state());
        let batch = rx.try_recv().unwrap();
        assert!(text(&batch).contains("\"outcome\":\"running\""));

        // Placed and ended in one batch: sent once, ended. A failed lease
        // whose client then retried: once, as retried. One still running:
        // once, running. The long job, ended now: once, ended.
        m.placed(2, 7, &req("quick.c"), "dev", 2);
        m.finished(7, &lease(2, true, true, 0), 3);
        m.placed(3, 7, &req("failing.c"), "dev", 4);
        m.finished(7, &lease(3, false, false, 0), 5);
        m.after_failure(3, Outcome::Retried, 6);
        m.placed(4, 7, &req("running.c"), "dev", 7);
        m.finished(7, &lease(1, true, false, 0), 8);
        let registry = Registry::new(
            gridcc_scheduler::by_name("least-loaded").unwrap(),
            1000,
            1000,
        );
        m.sample(&registry, 0, 9);
        m.send_batch(&mut m.state());
        let batch = rx.try_recv().unwrap();
        let batch = text(&batch);
        assert!(batch.starts_with("event: tick\ndata: {"), "{batch}");
        assert_eq!(batch.matches("event: tick\n").count(), 1, "{batch}");
        let jobs: Vec<serde_json::Value> = batch
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("event: job\ndata: "))
            .map(|json| serde_json::from_str(json).unwrap())
            .collect();
        let got: Vec<_> = jobs
            .iter()
            .map(|j| (j["file"].as_str().unwrap(), j["outcome"].as_str().unwrap()))
            .collect();
        // In the order of their last change, as `jobs?since=` has them.
        assert_eq!(
            got,
            [
                ("quick.c", "shared_hit"),
                ("failing.c", "retried"),
                ("running.c", "running"),
                ("long.c", "ok")
            ]
        );
        let seqs: Vec<_> = jobs.iter().map(|j| j["seq"].as_u64().unwrap()).collect();
        let page = m.jobs(0, 100);
        let mut want: Vec<_> = page
            .jobs
            .iter()
            .chain(&page.running)
            .map(|j| j.seq)
            .collect();
        want.sort_unstable();
        assert_eq!(seqs, want, "each job at its latest seq");
        assert!(rx.try_recv().is_err());
        // Nothing changed: no batch.
        m.send_batch(&mut m.state());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_full_batch_goes_out_early() {
        let m = Monitor::new();
        let (_, mut rx) = m.subscribe(0);
        for lease in 0..MAX_BATCH_CHANGES {
            m.placed(lease, 1, &req("a.c"), "dev", 1);
        }
        let batch = rx.try_recv().unwrap();
        assert_eq!(
            text(&batch).matches("event: job\n").count(),
            MAX_BATCH_CHANGES as usize
        );
        assert_eq!(m.state().pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn batches_go_out_one_interval_after_their_first_change() {
        let m = Arc::new(Monitor::new());
        let stop = CancellationToken::new();
        let sender = tokio::spawn({
            let (m, stop) = (Arc::clone(&m), stop.clone());
            async move { m.send_batches_forever(stop).await }
        });
        let (_, mut rx) = m.subscribe(0);
        m.placed(1, 1, &req("a.c"), "dev", 1);
        tokio::time::sleep(EVENT_BATCH / 2).await;
        assert!(rx.try_recv().is_err());
        m.placed(2, 1, &req("b.c"), "dev", 2);
        tokio::time::sleep(EVENT_BATCH).await;
        let batch = rx.try_recv().unwrap();
        assert_eq!(text(&batch).matches("event: job\n").count(), 2);
        stop.cancel();
        sender.await.unwrap();
    }

    #[test]
    fn job_json_by_hand_is_what_serde_writes() {
        let outcomes = [
            Outcome::Running,
            Outcome::Ok,
            Outcome::CompileError,
            Outcome::SharedHit,
            Outcome::Retried,
            Outcome::Failed,
            Outcome::Local,
        ];
        let names = [
            "a.c",
            "",
            "q\"uote\\d.c",
            "ünïcødé/ж.c",
            "tab\there",
            "\u{7f}\u{1}",
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            for (k, name) in names.iter().enumerate() {
                let job = Job {
                    seq: [0, 1, u64::MAX][k % 3],
                    id: i as u64 * 1_000_003,
                    worker: (k % 2 == 0).then_some(7),
                    lane: (i % 2 == 0).then_some(u32::MAX),
                    file: (*name).to_owned(),
                    client: names[(k + 1) % names.len()].to_owned(),
                    start_ms: 1_796_671_482_450,
                    end_ms: (k % 2 == 1).then_some(1_796_671_482_999),
                    outcome,
                };
                let mut by_hand = Vec::new();
                job.write_json(&mut by_hand);
                assert_eq!(text(&by_hand), serde_json::to_string(&job).unwrap());
            }
        }
    }

    #[test]
    fn tick_json_by_hand_is_what_serde_writes() {
        let sample = Sample {
            t_ms: 1_796_671_483_520,
            queue: 3,
            jobs_per_s: 17,
            busy_slots: 4,
            slots: 6,
        };
        let workers = [
            Worker {
                id: 1,
                address: "127.0.0.1:44293".into(),
                hostname: "v\"m".into(),
                slots: 2,
                running: 1,
                queued: 0,
                cpu_quota: 2.0,
                speed: 1.375_000_1,
                state: "serving",
                job_mode: "text",
                jobs_done: 4,
                jobs_failed: 0,
                joined_ms: 1_796_671_724_760,
                gone_ms: None,
            },
            Worker {
                id: u64::MAX,
                address: String::new(),
                hostname: "ж".into(),
                slots: 0,
                running: 0,
                queued: u32::MAX,
                cpu_quota: 0.1,
                speed: f64::NAN,
                state: "gone",
                job_mode: "hermetic",
                jobs_done: 0,
                jobs_failed: 9,
                joined_ms: 0,
                gone_ms: Some(5),
            },
        ];
        let clients = vec![
            Client {
                client: "ci".into(),
                running: 1,
                jobs_last_minute: 2,
                share: 1.0 / 3.0,
            },
            Client {
                client: "dev".into(),
                running: 0,
                jobs_last_minute: 0,
                share: 1e-7,
            },
        ];
        for (workers, clients) in [(&workers[..], clients.clone()), (&[][..], Vec::new())] {
            let tick = Tick {
                sample: &sample,
                workers: workers.iter().collect(),
                clients,
            };
            let mut by_hand = Vec::new();
            tick.write_json(&mut by_hand);
            assert_eq!(text(&by_hand), serde_json::to_string(&tick).unwrap());
        }
    }

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

    #[test]
    fn names_from_clients_are_cut_and_cleaned() {
        assert_eq!(clean_name("a\nb.c"), "a?b.c");
        assert_eq!(clean_name(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }
}
