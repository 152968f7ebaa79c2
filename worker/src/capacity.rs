//! How much CPU this process may use: the cgroup CPU quota (v2 `cpu.max`,
//! v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`) when one is set, else the CPUs
//! in its affinity mask. The quota is kept fractional (a container limited to
//! 0.5 CPU reports 0.5) because the scheduler weighs workers by it; slots are
//! the quota rounded up.

use std::path::{Path, PathBuf};

/// CPUs this process may use, possibly fractional; at least 0.01.
pub fn cpu_quota() -> f64 {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let quota = cgroup_quota(Path::new("/proc/self/cgroup"), Path::new("/sys/fs/cgroup"));
    quota.map_or(cpus, |q| q.min(cpus)).max(0.01)
}

/// Default number of slots: the quota rounded up.
pub fn default_slots() -> u32 {
    cpu_quota().ceil().max(1.0) as u32
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
    fn live_quota_is_positive() {
        assert!(cpu_quota() > 0.0);
        assert!(default_slots() >= 1);
    }
}
