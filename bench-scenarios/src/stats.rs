//! What a run's numbers are computed from: the coordinator's status (`gridcc
//! status --json`) and its job trace (`--trace-out`, one JSON line per
//! remote job), and the small statistics over them (percentiles, busy time
//! as a union of intervals, utilization over time).

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The part of `gridcc status --json` the benchmark reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub policy: String,
    pub workers: Vec<StatusWorker>,
    pub jobs_remote: u64,
    pub jobs_failed: u64,
    /// Assign requests answered "compile locally".
    pub local_answers: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusWorker {
    pub id: u64,
    pub address: String,
    pub slots: u32,
    pub capacity: f64,
    pub jobs_done: u64,
}

/// Asks the coordinator at `url` for its status through the `gridcc` binary.
pub fn status(gridcc: &Path, url: &str) -> anyhow::Result<Status> {
    let out = Command::new(gridcc)
        .args(["status", "--json", "--coordinator", url])
        .output()
        .with_context(|| format!("running {}", gridcc.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "gridcc status: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing gridcc status --json")
}

/// One line of the coordinator's trace (fields the report uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceLine {
    pub worker: u64,
    #[serde(default)]
    pub queue_s: f64,
    pub compile_s: f64,
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    #[serde(default)]
    pub exit_code: i32,
    /// The job's `source_key`, which the wrapper's job log names too.
    #[serde(default)]
    pub key: String,
    /// Seconds on one reference core, as the coordinator learned it.
    #[serde(default)]
    pub cost_s: Option<f64>,
    #[serde(default)]
    pub shared_hit: bool,
}

/// Reads a trace file; a missing file is an empty trace (no remote job).
pub fn read_trace(path: &Path) -> anyhow::Result<Vec<TraceLine>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a trace record", path.display(), i + 1))
        })
        .collect()
}

/// One line of the wrapper's `GRIDCC_JOB_LOG`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobLogLine {
    /// `remote` or `local`.
    pub mode: String,
    #[serde(default)]
    pub overhead_ms: Option<f64>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The source file as the build named it (none for a link step).
    #[serde(default)]
    pub source: Option<String>,
    /// The trace key of a remote job.
    #[serde(default)]
    pub key: Option<String>,
    /// The worker's address, for a remote compile.
    #[serde(default)]
    pub worker: Option<String>,
    /// When the wrapper started (absent in older wrappers' logs).
    #[serde(default)]
    pub start_unix_ms: Option<u64>,
    /// The wrapper's wall time, for a remote compile or a hit.
    #[serde(default)]
    pub wall_ms: Option<f64>,
    /// When a local compile started, from the wrapper's start.
    #[serde(default)]
    pub wall_ms_before_local: Option<f64>,
    /// CPU of the wrapper and its preprocessor.
    #[serde(default)]
    pub cpu_ms: Option<f64>,
    #[serde(default)]
    pub preprocess_ms: Option<f64>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub shared_hit: bool,
    /// The first worker failed it and a second one compiled it.
    #[serde(default)]
    pub retried: bool,
}

/// Reads a job log; missing means no line was written. Lines that do not
/// parse (a wrapper killed mid-write) are skipped, not fatal: the log is a
/// measurement aid, and the run's success is judged elsewhere.
pub fn read_job_log(path: &Path) -> anyhow::Result<Vec<JobLogLine>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// p50, p95 and max of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        Self {
            n: v.len(),
            p50: percentile(&v, 0.50),
            p95: percentile(&v, 0.95),
            max: v[v.len() - 1],
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a sample (mean of the middle two for even sizes).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// How many resamples the bootstrap draws, and its fixed seed: the same
/// runs give the same interval on every machine and every recomputation.
pub const BOOTSTRAP_RESAMPLES: usize = 4000;
pub const BOOTSTRAP_SEED: u64 = 0x6772_6964_6363; // "gridcc"

/// A 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// True when the two intervals share no point: the only case in which
    /// the report calls one cell faster than another.
    pub fn apart(&self, other: &Interval) -> bool {
        self.lo > other.hi || other.lo > self.hi
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:.2}, {:.2}]", self.lo, self.hi)
    }
}

/// Percentile bootstrap 95 % interval of the median of `values` (finite
/// ones only): resample with replacement, take each resample's median, and
/// keep the 2.5th and 97.5th percentiles of those medians. `None` with
/// fewer than two values, where no spread is known and nothing may be
/// claimed. With three values the interval is close to [min, max]: three
/// runs separate two cells only when their ranges do not meet, which is the
/// honest answer for so few.
pub fn bootstrap_median_ci(values: &[f64]) -> Option<Interval> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return None;
    }
    let mut rng = SplitMix64(BOOTSTRAP_SEED);
    let mut sample = vec![0.0; v.len()];
    let mut medians: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            for s in sample.iter_mut() {
                *s = v[rng.below(v.len())];
            }
            median(&sample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Some(Interval {
        lo: percentile(&medians, 0.025),
        hi: percentile(&medians, 0.975),
    })
}

/// How two cells' intervals compare, in the words the report uses.
pub fn difference(a: Option<&Interval>, b: Option<&Interval>) -> Difference {
    match (a, b) {
        (Some(a), Some(b)) if a.lo > b.hi => Difference::Higher,
        (Some(a), Some(b)) if b.lo > a.hi => Difference::Lower,
        _ => Difference::NotShown,
    }
}

/// The verdict of [`difference`]: whether `a`'s interval lies wholly above
/// or below `b`'s, or the data do not separate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Difference {
    Higher,
    Lower,
    NotShown,
}

/// splitmix64 (as in `gridcc-scheduler`, whose copy is private): a seeded
/// stream for the bootstrap, so no `rand` dependency is needed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform below `n > 0` by multiply-shift (bias below 2^-32).
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Total length of the union of `[start, end)` intervals, in the intervals'
/// unit: the time a worker had at least one job.
pub fn union_length(intervals: &[(u64, u64)]) -> u64 {
    let mut v: Vec<(u64, u64)> = intervals.iter().copied().filter(|(s, e)| e > s).collect();
    v.sort_unstable();
    let mut total = 0;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in v {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

/// Mean running jobs per slot in each of `bins` equal slices of
/// `[from_ms, to_ms)`, for one worker's jobs: its utilization over time.
pub fn utilization_bins(
    jobs: &[(u64, u64)],
    slots: u32,
    from_ms: u64,
    to_ms: u64,
    bins: usize,
) -> Vec<f64> {
    if bins == 0 || to_ms <= from_ms {
        return Vec::new();
    }
    let width = (to_ms - from_ms) as f64 / bins as f64;
    let mut busy = vec![0.0; bins];
    for &(s, e) in jobs {
        let (s, e) = (s.max(from_ms) as f64, e.min(to_ms) as f64);
        if e <= s {
            continue;
        }
        let first = (((s - from_ms as f64) / width) as usize).min(bins - 1);
        let last = (((e - from_ms as f64) / width) as usize).min(bins - 1);
        for (b, slot) in busy.iter_mut().enumerate().take(last + 1).skip(first) {
            let lo = from_ms as f64 + b as f64 * width;
            let hi = lo + width;
            *slot += (e.min(hi) - s.max(lo)).max(0.0);
        }
    }
    busy.iter()
        .map(|b| (b / (width * f64::from(slots.max(1)))).min(1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_medians() {
        let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.n, s.p50, s.p95, s.max), (5, 3.0, 5.0, 5.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(Spread::of(&[]).n, 0);
    }

    #[test]
    fn union_merges_overlaps() {
        assert_eq!(union_length(&[(0, 10), (5, 15), (20, 25), (30, 30)]), 20);
        assert_eq!(union_length(&[]), 0);
    }

    #[test]
    fn utilization_per_bin() {
        // One slot busy for the first half of a 10 ms window, 2 bins.
        let u = utilization_bins(&[(0, 5)], 1, 0, 10, 2);
        assert_eq!(u, [1.0, 0.0]);
        // Two slots, one job across the whole window.
        let u = utilization_bins(&[(0, 10)], 2, 0, 10, 2);
        assert_eq!(u, [0.5, 0.5]);
    }

    #[test]
    fn trace_lines_parse_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, "{\"worker\":1,\"compile_s\":0.5,\"start_unix_ms\":1,\"end_unix_ms\":501,\"key\":\"k\"}\n").unwrap();
        assert_eq!(read_trace(&p).unwrap().len(), 1);
        std::fs::write(&p, "{}\nnot json\n").unwrap();
        let err = format!("{:#}", read_trace(&p).unwrap_err());
        assert!(err.contains("line 1"), "{err}");
        assert!(read_trace(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn bootstrap_interval_is_deterministic_and_holds_the_median() {
        let v = [2.0, 2.1, 1.9, 2.05, 1.95, 2.2, 1.8];
        let a = bootstrap_median_ci(&v).unwrap();
        assert_eq!(Some(a), bootstrap_median_ci(&v));
        assert!(a.lo <= median(&v) && median(&v) <= a.hi, "{a}");
        assert!(a.lo >= 1.8 && a.hi <= 2.2, "{a}");
        assert!(a.hi - a.lo < 0.4, "{a}");
        // Too few values: no interval, so nothing can be claimed.
        assert_eq!(bootstrap_median_ci(&[1.0]), None);
        assert_eq!(bootstrap_median_ci(&[1.0, f64::NAN]), None);
        // Three runs: the interval spans the middle of the range at least.
        let three = bootstrap_median_ci(&[1.0, 2.0, 3.0]).unwrap();
        assert!(three.lo <= 1.0 + 1e-9 && three.hi >= 3.0 - 1e-9, "{three}");
    }

    #[test]
    fn differences_only_where_intervals_are_apart() {
        let fast = bootstrap_median_ci(&[3.0, 3.1, 2.9]).unwrap();
        let slow = bootstrap_median_ci(&[2.0, 2.1, 1.9]).unwrap();
        let wide = bootstrap_median_ci(&[1.5, 2.5, 3.5]).unwrap();
        assert_eq!(difference(Some(&fast), Some(&slow)), Difference::Higher);
        assert_eq!(difference(Some(&slow), Some(&fast)), Difference::Lower);
        assert_eq!(difference(Some(&fast), Some(&wide)), Difference::NotShown);
        assert_eq!(difference(None, Some(&slow)), Difference::NotShown);
        assert!(fast.apart(&slow) && !fast.apart(&wide));
    }
}
