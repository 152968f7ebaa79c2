//! The jobs this worker holds and what it tells the coordinator about them.
//!
//! A job holds its lease from its checked header until it ends, whichever
//! way it ends: a result, a refusal, or its client going away (then the
//! job's future is dropped, and with it its hold, in `service`). Each lease is used once:
//! a second `Compile` with it is refused, while it runs and after.
//!
//! Every change is reported in order through one channel, under one lock:
//! a job's `JobFinished` always comes before the first load update that no
//! longer lists its lease. So the coordinator, which frees a lease that a
//! load update stops listing, never takes a finished job for a lost one, and
//! a lost `JobFinished` (a full channel) costs a slot only until the next
//! update, at the latest the next keep-alive.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use gridcc_proto::lease::KEY_LEN;
use gridcc_proto::v1::{self, worker_message, WorkerMessage};
use tokio::sync::mpsc;

use crate::session::SharedRegistration;

/// Identifies a lease across coordinator sessions: ids restart with a new
/// coordinator, the key is new each session.
type LeaseKey = ([u8; KEY_LEN], u64);

/// The worker's jobs: counters, held leases, used leases.
pub(crate) struct Jobs {
    events: mpsc::Sender<WorkerMessage>,
    registration: SharedRegistration,
    /// Jobs waiting for a slot.
    pub(crate) waiting: AtomicU32,
    /// Jobs holding a slot.
    pub(crate) running: AtomicU32,
    leases: Mutex<Leases>,
}

#[derive(Default)]
struct Leases {
    /// Leases of the jobs held now.
    held: BTreeMap<LeaseKey, ()>,
    /// Every lease a job came with, until it expires: each is good for one
    /// job only.
    used: HashMap<LeaseKey, u64>,
}

/// Why a lease cannot be held.
#[derive(Debug, thiserror::Error)]
#[error("lease {0} was used already: each lease is good for one job")]
pub(crate) struct LeaseUsed(pub(crate) u64);

impl Jobs {
    pub(crate) fn new(
        events: mpsc::Sender<WorkerMessage>,
        registration: SharedRegistration,
    ) -> Self {
        Self {
            events,
            registration,
            waiting: AtomicU32::new(0),
            running: AtomicU32::new(0),
            leases: Mutex::default(),
        }
    }

    fn leases(&self) -> MutexGuard<'_, Leases> {
        // The sets stay consistent whatever panicked: keep going.
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a job event to the coordinator.
    pub(crate) fn event(&self, msg: worker_message::Msg) {
        // Dropped only when the session is down or far behind; then the
        // coordinator has written this worker's leases off, or the next
        // load update reconciles them.
        let _ = self.events.try_send(WorkerMessage { msg: Some(msg) });
    }

    fn current_key(&self) -> Option<[u8; KEY_LEN]> {
        self.registration
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|r| r.lease_key)
    }

    /// The load update: counters and the leases held under the current
    /// session (a new coordinator knows nothing of older ones).
    fn load(&self, leases: &Leases) -> v1::LoadUpdate {
        let key = self.current_key();
        v1::LoadUpdate {
            running: self.running.load(Ordering::SeqCst),
            queued: self.waiting.load(Ordering::SeqCst),
            leases: leases
                .held
                .keys()
                .filter(|(k, _)| Some(*k) == key)
                .map(|(_, id)| *id)
                .collect(),
        }
    }

    /// Sends the current load to the coordinator.
    pub(crate) fn report_load(&self) {
        let leases = self.leases();
        self.event(worker_message::Msg::Load(self.load(&leases)));
    }

    /// Takes a lease for a job (already verified, expiring at
    /// `expires_ms`); refused when any job used it before.
    pub(crate) fn hold(
        &self,
        key: [u8; KEY_LEN],
        lease_id: u64,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<(), LeaseUsed> {
        let mut leases = self.leases();
        // An expired lease is refused by its signature; forget it.
        leases.used.retain(|_, expires| *expires > now_ms);
        if leases.used.insert((key, lease_id), expires_ms).is_some() {
            return Err(LeaseUsed(lease_id));
        }
        leases.held.insert((key, lease_id), ());
        self.event(worker_message::Msg::Load(self.load(&leases)));
        Ok(())
    }

    /// A held job ended: reports `finished`, then the load without it.
    pub(crate) fn end(&self, key: [u8; KEY_LEN], finished: v1::JobFinished) {
        let mut leases = self.leases();
        leases.held.remove(&(key, finished.lease_id));
        self.event(worker_message::Msg::Finished(finished));
        self.event(worker_message::Msg::Load(self.load(&leases)));
    }

    /// Leases held now, under any session.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.leases().held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, RwLock};

    fn jobs(key: [u8; KEY_LEN]) -> (Jobs, mpsc::Receiver<WorkerMessage>) {
        let (tx, rx) = mpsc::channel(64);
        let registration = Arc::new(RwLock::new(Some(crate::session::Registration {
            worker_id: 1,
            lease_key: key,
        })));
        (Jobs::new(tx, registration), rx)
    }

    fn next(rx: &mut mpsc::Receiver<WorkerMessage>) -> worker_message::Msg {
        rx.try_recv().unwrap().msg.unwrap()
    }

    #[test]
    fn a_lease_is_good_for_one_job_and_its_end_comes_before_the_load_without_it() {
        let key = [7; KEY_LEN];
        let (jobs, mut rx) = jobs(key);
        jobs.hold(key, 5, 1000, 0).unwrap();
        assert!(matches!(next(&mut rx), worker_message::Msg::Load(l) if l.leases == [5]));
        assert!(jobs.hold(key, 5, 1000, 0).is_err(), "held: refused");
        jobs.end(
            key,
            v1::JobFinished {
                lease_id: 5,
                ..Default::default()
            },
        );
        assert!(matches!(next(&mut rx), worker_message::Msg::Finished(f) if f.lease_id == 5));
        assert!(matches!(next(&mut rx), worker_message::Msg::Load(l) if l.leases.is_empty()));
        assert!(jobs.hold(key, 5, 1000, 10).is_err(), "used: refused");
        // The same id under another session's key is another lease.
        jobs.hold([8; KEY_LEN], 5, 1000, 10).unwrap();
        assert!(
            matches!(next(&mut rx), worker_message::Msg::Load(l) if l.leases.is_empty()),
            "a lease of an older session is not reported to this one"
        );
        assert_eq!(jobs.held(), 1);
        // Past its expiry the entry is forgotten (its signature refuses it).
        jobs.hold(key, 6, 2000, 1500).unwrap();
        assert_eq!(jobs.leases().used.len(), 1);
    }
}
