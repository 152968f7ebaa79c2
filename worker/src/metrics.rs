//! The worker's Prometheus metrics (`--metrics-listen`): jobs by outcome,
//! compile and slot-wait times, payload bytes, counted by the `Compile`
//! service as jobs end; slots, queue and temp dirs read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gridcc_proto::metrics::{Exposition, Histogram, Kind, JOB_SECONDS_BUCKETS};

/// How one `Compile` call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobOutcome {
    /// The compiler ran and exited 0.
    Ok,
    /// The compiler ran and exited non-zero: the client's compile error.
    CompileError,
    /// Turned down before running: bad lease, compiler, arguments or input,
    /// queue full, draining.
    Refused,
    /// A CPU, memory or output limit (or a signal) stopped the compiler.
    Resource,
    /// Killed at `--job-wall-s`.
    WallTime,
    /// Anything else: the client's stream broke, the temp dir could not be
    /// written, the compiler could not start.
    Error,
    /// The client went away (interrupted, killed, its connection cut)
    /// while the job waited or ran: its processes were killed.
    Cancelled,
}

impl JobOutcome {
    const ALL: [JobOutcome; 7] = [
        JobOutcome::Ok,
        JobOutcome::CompileError,
        JobOutcome::Refused,
        JobOutcome::Resource,
        JobOutcome::WallTime,
        JobOutcome::Error,
        JobOutcome::Cancelled,
    ];

    fn label(self) -> &'static str {
        match self {
            JobOutcome::Ok => "ok",
            JobOutcome::CompileError => "compile_error",
            JobOutcome::Refused => "refused",
            JobOutcome::Resource => "resource",
            JobOutcome::WallTime => "wall_time",
            JobOutcome::Error => "error",
            JobOutcome::Cancelled => "cancelled",
        }
    }
}

/// What the `Compile` service counts.
#[derive(Debug)]
pub(crate) struct Metrics {
    jobs: [AtomicU64; JobOutcome::ALL.len()],
    compile: Histogram,
    slot_wait: Histogram,
    received_bytes: AtomicU64,
    sent_bytes: AtomicU64,
    cache: [AtomicU64; CacheEvent::ALL.len()],
    inputs_reused: AtomicU64,
    upload_saved_bytes: AtomicU64,
    compiler_cpu_us: AtomicU64,
}

/// What the shared cache did for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheEvent {
    /// Answered from the cache: the compiler did not run.
    Hit,
    /// Not in the cache: compiled.
    Miss,
    /// An entry failed its checksum: removed, the job compiled.
    Corrupt,
    /// A result was stored.
    Stored,
}

impl CacheEvent {
    const ALL: [CacheEvent; 4] = [
        CacheEvent::Hit,
        CacheEvent::Miss,
        CacheEvent::Corrupt,
        CacheEvent::Stored,
    ];

    fn label(self) -> &'static str {
        match self {
            CacheEvent::Hit => "hit",
            CacheEvent::Miss => "miss",
            CacheEvent::Corrupt => "corrupt",
            CacheEvent::Stored => "stored",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            jobs: Default::default(),
            compile: Histogram::new(JOB_SECONDS_BUCKETS),
            slot_wait: Histogram::new(JOB_SECONDS_BUCKETS),
            received_bytes: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            cache: Default::default(),
            inputs_reused: AtomicU64::new(0),
            upload_saved_bytes: AtomicU64::new(0),
            compiler_cpu_us: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub(crate) fn job(&self, outcome: JobOutcome) {
        self.jobs[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A compile that ran: its wall time and how long it waited for a slot.
    pub(crate) fn ran(&self, compile: Duration, slot_wait: Duration) {
        self.compile.observe_duration(compile);
        self.slot_wait.observe_duration(slot_wait);
    }

    /// CPU time a compiler used, measured apart from the worker's own.
    pub(crate) fn compiler_cpu(&self, cpu: Duration) {
        self.compiler_cpu_us
            .fetch_add(cpu.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn cache(&self, event: CacheEvent) {
        self.cache[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A job whose input was not uploaded: `reused` when this worker had
    /// it already (a shared-cache hit needs none), `bytes` compressed.
    pub(crate) fn upload_saved(&self, reused: bool, bytes: u64) {
        if reused {
            self.inputs_reused.fetch_add(1, Ordering::Relaxed);
        }
        self.upload_saved_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The worker's state at scrape time.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) slots: u32,
    pub(crate) running: u32,
    pub(crate) waiting: u32,
    pub(crate) temp_dirs: u64,
    pub(crate) draining: bool,
    pub(crate) registered: bool,
    pub(crate) cache_bytes: u64,
}

/// The text exposition of one scrape.
pub(crate) fn render(m: &Metrics, s: &Snapshot) -> String {
    let mut e = Exposition::new();
    e.family(
        "gridcc_build_info",
        "Version of this gridcc server (always 1).",
        Kind::Gauge,
        [(
            &[("role", "worker"), ("version", gridcc_proto::VERSION)][..],
            1.0,
        )],
    );
    e.by_label(
        "gridcc_worker_jobs_total",
        "Compile requests that ended, by outcome: ok, compile_error (the compiler exited \
         non-zero), refused (bad lease, compiler, arguments or input; queue full; \
         draining), resource (a CPU, memory or output limit or a signal stopped it), \
         wall_time (killed at --job-wall-s), error (anything else), cancelled (the \
         client went away; the job's processes were killed).",
        Kind::Counter,
        "outcome",
        JobOutcome::ALL.map(|o| (o.label(), m.jobs[o as usize].load(Ordering::Relaxed) as f64)),
    );
    e.histogram(
        "gridcc_worker_compile_seconds",
        "Wall time of the compiler for jobs that ran (ok or compile_error).",
        &m.compile,
    );
    e.histogram(
        "gridcc_worker_slot_wait_seconds",
        "Time a job that ran waited for a free slot after its input arrived.",
        &m.slot_wait,
    );
    e.single(
        "gridcc_worker_sandboxed_compiler_cpu_seconds_total",
        "CPU time (user + system) of the compilers run in kept sandboxes, as their \
         launcher measured it (other compilers are the worker's reaped children: its \
         cutime and cstime).",
        Kind::Counter,
        m.compiler_cpu_us.load(Ordering::Relaxed) as f64 / 1e6,
    );
    e.single(
        "gridcc_worker_received_bytes_total",
        "zstd-compressed source bytes received from clients.",
        Kind::Counter,
        m.received_bytes.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "gridcc_worker_sent_bytes_total",
        "zstd-compressed object bytes sent back to clients.",
        Kind::Counter,
        m.sent_bytes.load(Ordering::Relaxed) as f64,
    );
    e.by_label(
        "gridcc_worker_cache_total",
        "Shared-cache events: hit (answered without compiling), miss (compiled), corrupt \
         (an entry failed its checksum, was removed and the job compiled), stored.",
        Kind::Counter,
        "result",
        CacheEvent::ALL.map(|c| {
            (
                c.label(),
                m.cache[c as usize].load(Ordering::Relaxed) as f64,
            )
        }),
    );
    e.single(
        "gridcc_worker_cache_bytes",
        "Bytes of the shared cache on disk (approximate between evictions).",
        Kind::Gauge,
        s.cache_bytes as f64,
    );
    e.single(
        "gridcc_worker_inputs_reused_total",
        "Jobs whose input this worker already held by digest, so the client did not upload it.",
        Kind::Counter,
        m.inputs_reused.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "gridcc_worker_upload_saved_bytes_total",
        "zstd-compressed input bytes clients offered and did not have to upload (input \
         held or shared-cache hit).",
        Kind::Counter,
        m.upload_saved_bytes.load(Ordering::Relaxed) as f64,
    );
    e.single(
        "gridcc_worker_slots",
        "Jobs this worker runs at once (--slots).",
        Kind::Gauge,
        f64::from(s.slots),
    );
    e.single(
        "gridcc_worker_slots_busy",
        "Jobs running now.",
        Kind::Gauge,
        f64::from(s.running),
    );
    e.single(
        "gridcc_worker_queued",
        "Jobs whose input arrived, waiting for a free slot.",
        Kind::Gauge,
        f64::from(s.waiting),
    );
    e.single(
        "gridcc_worker_temp_dirs",
        "Job stages in use by a job or being removed now (idle stages kept for the next job are not counted).",
        Kind::Gauge,
        s.temp_dirs as f64,
    );
    e.single(
        "gridcc_worker_draining",
        "1 while the worker drains (refuses new jobs, finishes running ones).",
        Kind::Gauge,
        f64::from(u8::from(s.draining)),
    );
    e.single(
        "gridcc_worker_coordinator_connected",
        "1 while the worker holds a session with the coordinator (it can take jobs).",
        Kind::Gauge,
        f64::from(u8::from(s.registered)),
    );
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_outcomes_times_and_state() {
        let m = Metrics::default();
        m.job(JobOutcome::Ok);
        m.job(JobOutcome::Ok);
        m.job(JobOutcome::WallTime);
        m.ran(Duration::from_millis(40), Duration::ZERO);
        m.received(100);
        m.sent(7);
        let text = render(
            &m,
            &Snapshot {
                slots: 4,
                running: 1,
                waiting: 0,
                temp_dirs: 1,
                draining: false,
                registered: true,
                cache_bytes: 0,
            },
        );
        for line in [
            "gridcc_worker_jobs_total{outcome=\"ok\"} 2",
            "gridcc_worker_jobs_total{outcome=\"wall_time\"} 1",
            "gridcc_worker_jobs_total{outcome=\"refused\"} 0",
            "gridcc_worker_compile_seconds_bucket{le=\"0.025\"} 0",
            "gridcc_worker_compile_seconds_bucket{le=\"0.05\"} 1",
            "gridcc_worker_compile_seconds_count 1",
            "gridcc_worker_received_bytes_total 100",
            "gridcc_worker_sent_bytes_total 7",
            "gridcc_worker_slots 4",
            "gridcc_worker_slots_busy 1",
            "gridcc_worker_temp_dirs 1",
            "gridcc_worker_coordinator_connected 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
