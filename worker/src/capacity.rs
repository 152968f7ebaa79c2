//! How much CPU this process may use: the cgroup CPU quota (v2 `cpu.max`,
//! v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`) when one is set, else the CPUs
//! in its affinity mask. The quota is kept fractional (a container limited to
//! 0.5 CPU reports 0.5) because the scheduler weighs workers by it; slots are
//! the quota rounded up. [`calibrate`] measures how much a short CPU
//! benchmark gets done, for `gridcc-worker --calibrate`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// CPUs this process may use, possibly fractional; at least 0.01.
pub fn cpu_quota() -> f64 {
    // Not `available_parallelism`: it already applies the cgroup quota and
    // rounds it down, so a 1.5-CPU container would read as 1.0.
    let cpus = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| allowed_cpus(&s))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        as f64;
    let quota = cgroup_quota(Path::new("/proc/self/cgroup"), Path::new("/sys/fs/cgroup"));
    quota.map_or(cpus, |q| q.min(cpus)).max(0.01)
}

/// The number of CPUs in the affinity mask, from `/proc/self/status`'s
/// `Cpus_allowed_list:` line (e.g. `0-3,8`).
fn allowed_cpus(status: &str) -> Option<usize> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut n = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                b.checked_sub(a)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

/// Default number of slots: the quota rounded up.
pub fn default_slots() -> u32 {
    cpu_quota().ceil().max(1.0) as u32
}

/// Benchmark rounds per second that one core of the reference machine does:
/// what 1.0 CPU means for `--calibrate`. Measured on the machine gridcc is
/// developed on (a 2-core x86-64 VM, one thread, no quota, release build,
/// median of 5 runs of `calibrate_rate(1, 300 ms)`: 201,900 to 219,361,
/// median 207,842). A worker whose cores are half as fast calibrates to 0.5
/// per core. The constant holds for release builds only: a debug build of
/// the worker does about an eighth of the rounds and would undersell itself.
pub const REFERENCE_ROUNDS_PER_S: f64 = 208_000.0;

/// How long [`calibrate`] runs: three periods of the usual 100 ms CFS quota
/// period, so a throttled worker is throttled during the run as it will be
/// while compiling.
pub const CALIBRATION_TIME: Duration = Duration::from_millis(300);

/// Measures this process's CPU speed in reference cores: runs the benchmark
/// on `ceil(quota)` threads at once for [`CALIBRATION_TIME`] and divides the
/// rounds done per second by [`REFERENCE_ROUNDS_PER_S`]. Capped by the CPU
/// quota: a worker never advertises more cores than it may use, and a
/// faster-than-reference result on a short run is more often turbo boost
/// than a lasting truth. At least 0.01.
pub fn calibrate(quota: f64) -> f64 {
    let threads = quota.ceil().clamp(1.0, 1024.0) as usize;
    let rate = calibrate_rate(threads, CALIBRATION_TIME);
    (rate / REFERENCE_ROUNDS_PER_S).min(quota).max(0.01)
}

/// Benchmark rounds per second of wall time done by `threads` threads
/// running for `time`.
pub fn calibrate_rate(threads: usize, time: Duration) -> f64 {
    let start = Instant::now();
    let deadline = start + time;
    let rounds: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|seed| scope.spawn(move || rounds_until(deadline, seed as u64)))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    rounds as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Rounds of a compiler-like integer workload (hashing, a data-dependent
/// branch, table stores) until `deadline`. One round is small (microseconds)
/// so the count is fine-grained, and the table (64 KiB) stays in L2 cache,
/// as a compiler's hot data mostly does.
fn rounds_until(deadline: Instant, seed: u64) -> u64 {
    let mut table = vec![0u64; 8192];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            // xorshift64*, then a store whose address depends on the value.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let i = (v >> 51) as usize;
            table[i] = if v & 1 == 0 {
                table[i].wrapping_add(v)
            } else {
                v
            };
        }
        rounds += 1;
    }
    // Keep the work observable so the optimizer cannot drop it.
    std::hint::black_box(&table);
    rounds
}

/// Reads the tightest CPU quota on this process's cgroup path (a parent's
/// limit applies to its children too).
fn cgroup_quota(proc_cgroup: &Path, root: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(proc_cgroup).ok()?;
    let mut best: Option<f64> = None;
    let mut keep = |q: Option<f64>| {
        if let Some(q) = q {
            best = Some(best.map_or(q, |b: f64| b.min(q)));
        }
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            // cgroup v2: every ancestor may carry a cpu.max.
            for dir in ancestors(&root.join(rel), root) {
                keep(parse_cpu_max(
                    &std::fs::read_to_string(dir.join("cpu.max")).unwrap_or_default(),
                ));
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for base in [root.join("cpu,cpuacct"), root.join("cpu")] {
                for dir in ancestors(&base.join(rel), &base) {
                    let quota = std::fs::read_to_string(dir.join("cpu.cfs_quota_us"));
                    let period = std::fs::read_to_string(dir.join("cpu.cfs_period_us"));
                    if let (Ok(q), Ok(p)) = (quota, period) {
                        keep(parse_v1(&q, &p));
                    }
                }
            }
        }
    }
    best
}

fn ancestors(dir: &Path, root: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| d.starts_with(root))
        .map(Path::to_owned)
        .collect()
}

/// `cpu.max` holds "QUOTA PERIOD" or "max PERIOD".
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota: f64 = it.next()?.parse().ok()?;
    let period: f64 = it.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn parse_v1(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.trim().parse().ok()?;
    let period: f64 = period.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

#[cfg(test)]
mod tests {

    #[test]
    fn affinity_list_counts_ranges_and_singles() {
        let status = "Name:\tx\nCpus_allowed:\tff\nCpus_allowed_list:\t0-3,8,10-11\n";
        assert_eq!(super::allowed_cpus(status), Some(7));
        assert_eq!(super::allowed_cpus("Cpus_allowed_list:\t0\n"), Some(1));
        assert_eq!(super::allowed_cpus("Cpus_allowed_list:\t3-1\n"), None);
        assert_eq!(super::allowed_cpus("nothing"), None);
    }

    use super::*;

    #[test]
    fn parses_quota_formats() {
        assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_v1("150000\n", "100000\n"), Some(1.5));
        assert_eq!(parse_v1("-1\n", "100000\n"), None);
    }

    #[test]
    fn finds_the_tightest_v2_quota_on_the_path() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.path().join("a/cpu.max"), "25000 100000\n").unwrap();
        std::fs::write(leaf.join("cpu.max"), "max 100000\n").unwrap();
        let proc = root.path().join("proc-cgroup");
        std::fs::write(&proc, "0::/a/b\n").unwrap();
        assert_eq!(cgroup_quota(&proc, root.path()), Some(0.25));
    }

    #[test]
    fn finds_a_v1_quota() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cpu,cpuacct/grp");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cpu.cfs_quota_us"), "50000\n").unwrap();
        std::fs::write(dir.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let proc = root.path().join("proc-cgroup");
        std::fs::write(&proc, "4:cpu,cpuacct:/grp\n").unwrap();
        assert_eq!(cgroup_quota(&proc, root.path()), Some(0.5));
    }

    #[test]
    fn calibration_is_positive_and_capped_by_the_quota() {
        let rate = calibrate_rate(1, Duration::from_millis(50));
        assert!(rate > 0.0);
        let c = calibrate(0.25);
        assert!(c > 0.0 && c <= 0.25, "{c}");
    }

    #[test]
    fn live_quota_is_positive() {
        assert!(cpu_quota() > 0.0);
        assert!(default_slots() >= 1);
    }
}
