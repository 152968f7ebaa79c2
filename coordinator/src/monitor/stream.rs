//! The live event streams: while one is open, changes gather into a
//! batch, and every [`EVENT_BATCH`] (or [`MAX_BATCH_CHANGES`] changes)
//! the jobs that changed since the last batch are serialized, once and
//! each in its latest state, and the batch goes to the live streams
//! through a bounded broadcast channel, so each stream wakes and writes
//! once per batch, whatever the number of jobs in it. A new stream starts
//! from a snapshot.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::history::{Client, Job, Sample, State, Worker};
use super::Monitor;

/// Batches buffered per stream before it counts as lagging: 25.6 s of
/// changes, or 64 × [`MAX_BATCH_CHANGES`] changes if that is fewer.
pub(super) const BATCH_BUFFER: usize = 64;
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

/// SSE frames (each `event: NAME` and one `data:` line), shared by every
/// stream that sends them.
pub(crate) type Frame = Arc<[u8]>;

/// Once a second (`event: tick`): the new sample, the workers and clients.
#[derive(Debug, Serialize)]
pub(super) struct Tick<'a> {
    pub(super) sample: &'a Sample,
    pub(super) workers: Vec<&'a Worker>,
    pub(super) clients: Vec<Client>,
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

impl Monitor {
    /// Event streams open now: each holds one receiver (a lagging one
    /// swaps its receiver for a fresh one, so it still counts once).
    pub(crate) fn streams(&self) -> usize {
        self.events.receiver_count()
    }

    /// Counts a change (a job's new `seq`, or a tick) into the batch for
    /// the open streams; with none open, nobody needs it (a new stream
    /// starts from a snapshot, and the batch is dropped then).
    pub(super) fn changed(&self, state: &mut State) {
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
}

impl State {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::history::Outcome;
    use crate::monitor::tests::{lease, req, text};
    use crate::registry::Registry;

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
}
