//! The coordinator's Prometheus metrics (`--metrics-listen`): what the
//! `Assign` path counts as it answers (answers by result, time waited), and,
//! read from the registry on each scrape, job outcomes, workers and slots.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gridcc_proto::metrics::{Exposition, Histogram, Kind};

use crate::registry::{Totals, WorkerLoad};

/// How an `Assign` request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssignResult {
    /// A worker and a lease.
    Placed,
    /// Compile locally: every slot busy and the client has an idle CPU.
    BusyLocal,
    /// Compile locally: no slot freed within `--queue-timeout-ms`.
    QueueTimeout,
    /// Compile locally: `--max-waiting` requests were already waiting.
    Saturated,
    /// Compile locally: no connected, non-draining worker has the compiler.
    NoWorker,
    /// Compile locally: the coordinator is shutting down.
    ShuttingDown,
}

impl AssignResult {
    const ALL: [AssignResult; 6] = [
        AssignResult::Placed,
        AssignResult::BusyLocal,
        AssignResult::QueueTimeout,
        AssignResult::Saturated,
        AssignResult::NoWorker,
        AssignResult::ShuttingDown,
    ];

    fn label(self) -> &'static str {
        match self {
            AssignResult::Placed => "placed",
            AssignResult::BusyLocal => "busy_local",
            AssignResult::QueueTimeout => "queue_timeout",
            AssignResult::Saturated => "saturated",
            AssignResult::NoWorker => "no_worker",
            AssignResult::ShuttingDown => "shutting_down",
        }
    }
}

/// Waits range from nothing (a free slot) to the 30 s default queue timeout.
const WAIT_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Counters only the `Assign` path sees; the rest comes from the registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    answers: [AtomicU64; AssignResult::ALL.len()],
    queued: AtomicU64,
    wait: Histogram,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            answers: Default::default(),
            queued: AtomicU64::new(0),
            wait: Histogram::new(WAIT_SECONDS_BUCKETS),
        }
    }

    /// Counts one answered `Assign`: its result, whether it had to wait for
    /// a slot, and how long it took to answer.
    pub(crate) fn answered(&self, result: AssignResult, queued: bool, took: Duration) {
        self.answers[result as usize].fetch_add(1, Ordering::Relaxed);
        if queued {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        self.wait.observe_duration(took);
    }
}

/// What the registry knows at scrape time.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) totals: Totals,
    pub(crate) workers: Vec<WorkerLoad>,
    /// `Assign` requests waiting for a slot right now.
    pub(crate) waiting: usize,
    /// Monitor event streams open now (`None`: no HTTP port, no monitor).
    pub(crate) monitor_streams: Option<usize>,
}

/// The text exposition of one scrape.
pub(crate) fn render(m: &Metrics, s: &Snapshot) -> String {
    let mut e = Exposition::new();
    e.family(
        "gridcc_build_info",
        "Version of this gridcc server (always 1).",
        Kind::Gauge,
        [(
            &[("role", "coordinator"), ("version", gridcc_proto::VERSION)][..],
            1.0,
        )],
    );
    let t = &s.totals;
    e.by_label(
        "gridcc_coordinator_jobs_total",
        "Leases that ended, by outcome: ok and compile_error (the worker's compiler ran \
         and exited 0 / non-zero), worker_failed (the worker could not run it), released \
         (the client gave it back, worker unreachable), expired (never brought to the \
         worker), lost (the worker left with it).",
        Kind::Counter,
        "outcome",
        [
            ("ok", t.ok),
            ("compile_error", t.compile_error),
            ("worker_failed", t.worker_failed),
            ("released", t.released),
            ("expired", t.expired),
            ("lost", t.lost),
        ]
        .map(|(outcome, n)| (outcome, n as f64)),
    );
    e.by_label(
        "gridcc_coordinator_assign_total",
        "Assign requests answered, by result: placed, or compile locally because \
         busy_local (every slot busy, client has an idle CPU), queue_timeout, saturated \
         (too many waiting), no_worker (none has the compiler), shutting_down.",
        Kind::Counter,
        "result",
        AssignResult::ALL.map(|r| {
            (
                r.label(),
                m.answers[r as usize].load(Ordering::Relaxed) as f64,
            )
        }),
    );
    e.single(
        "gridcc_coordinator_assign_queued_total",
        "Assign requests that waited for a free slot before their answer.",
        Kind::Counter,
        m.queued.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "gridcc_coordinator_assign_waiting",
        "Assign requests waiting for a free slot now.",
        Kind::Gauge,
        s.waiting as f64,
    );
    if let Some(streams) = s.monitor_streams {
        e.single(
            "gridcc_coordinator_monitor_streams",
            "Monitor event streams open now (open monitor pages and other stream readers).",
            Kind::Gauge,
            streams as f64,
        );
    }
    e.histogram(
        "gridcc_coordinator_assign_wait_seconds",
        "Time from an Assign request's arrival to its answer (near 0 when a slot was free).",
        &m.wait,
    );
    e.single(
        "gridcc_coordinator_assigned_source_bytes_total",
        "Preprocessed source bytes of the jobs placed, as the clients announced them \
         (the bytes themselves go client to worker).",
        Kind::Counter,
        t.assigned_source_bytes as f64,
    );
    e.single(
        "gridcc_coordinator_shared_hits_total",
        "Jobs a worker answered from its shared cache without compiling (also counted as ok).",
        Kind::Counter,
        t.shared_hits as f64,
    );
    e.single(
        "gridcc_coordinator_cache_placements_total",
        "Placements on the worker that reported holding the job's key.",
        Kind::Counter,
        t.cache_placements as f64,
    );
    e.single(
        "gridcc_coordinator_workers",
        "Workers connected.",
        Kind::Gauge,
        s.workers.len() as f64,
    );
    e.single(
        "gridcc_coordinator_workers_draining",
        "Connected workers that are draining (get no new jobs).",
        Kind::Gauge,
        s.workers.iter().filter(|w| w.draining).count() as f64,
    );
    e.single(
        "gridcc_coordinator_slots",
        "Job slots of the connected workers.",
        Kind::Gauge,
        s.workers.iter().map(|w| f64::from(w.slots)).sum(),
    );
    e.single(
        "gridcc_coordinator_slots_busy",
        "Job slots held by a lease (placed, not yet finished).",
        Kind::Gauge,
        s.workers.iter().map(|w| f64::from(w.running)).sum(),
    );
    let per_worker = |value: fn(&WorkerLoad) -> f64| {
        s.workers
            .iter()
            .map(move |w| (w.address.as_str(), value(w)))
    };
    e.by_label(
        "gridcc_coordinator_worker_running",
        "Jobs placed on a worker and not yet finished, by worker address.",
        Kind::Gauge,
        "worker",
        per_worker(|w| f64::from(w.running)),
    );
    e.by_label(
        "gridcc_coordinator_worker_slots",
        "Job slots of a worker, by worker address.",
        Kind::Gauge,
        "worker",
        per_worker(|w| f64::from(w.slots)),
    );
    e.by_label(
        "gridcc_coordinator_worker_speed",
        "Speed the placement policies use for a worker (1.0 = one reference core), \
         by worker address.",
        Kind::Gauge,
        "worker",
        per_worker(|w| w.speed),
    );
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_answers_outcomes_and_per_worker_series() {
        let m = Metrics::new();
        m.answered(AssignResult::Placed, false, Duration::ZERO);
        m.answered(AssignResult::Placed, true, Duration::from_millis(300));
        m.answered(AssignResult::QueueTimeout, true, Duration::from_secs(30));
        let snapshot = Snapshot {
            totals: Totals {
                assigned: 2,
                ok: 1,
                compile_error: 1,
                ..Totals::default()
            },
            workers: vec![WorkerLoad {
                id: 1,
                address: "127.0.0.1:4000".into(),
                slots: 2,
                running: 1,
                speed: 1.5,
                draining: false,
            }],
            waiting: 0,
            monitor_streams: Some(5),
        };
        let text = render(&m, &snapshot);
        for line in [
            "gridcc_coordinator_jobs_total{outcome=\"ok\"} 1",
            "gridcc_coordinator_jobs_total{outcome=\"lost\"} 0",
            "gridcc_coordinator_assign_total{result=\"placed\"} 2",
            "gridcc_coordinator_assign_total{result=\"queue_timeout\"} 1",
            "gridcc_coordinator_assign_total{result=\"no_worker\"} 0",
            "gridcc_coordinator_assign_queued_total 2",
            "gridcc_coordinator_assign_wait_seconds_bucket{le=\"0.25\"} 1",
            "gridcc_coordinator_assign_wait_seconds_bucket{le=\"0.5\"} 2",
            "gridcc_coordinator_assign_wait_seconds_count 3",
            "gridcc_coordinator_monitor_streams 5",
            "gridcc_coordinator_slots 2",
            "gridcc_coordinator_slots_busy 1",
            "gridcc_coordinator_worker_running{worker=\"127.0.0.1:4000\"} 1",
            "gridcc_coordinator_worker_speed{worker=\"127.0.0.1:4000\"} 1.5",
            "# TYPE gridcc_coordinator_assign_wait_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
