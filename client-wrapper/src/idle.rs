//! How much CPU the client has idle right now, sent with each `Assign` so
//! the coordinator can tell a client with a free core to compile locally
//! instead of queueing when every worker slot is busy.
//!
//! Usable CPUs are `std::thread::available_parallelism()` (affinity mask and
//! cgroup quota, rounded down); processes running now are the fourth field
//! of `/proc/loadavg` (`running/total`), an instant count rather than the
//! load averages, which lag a burst of local compiles by up to a minute.
//! The count is host-wide, so in a container it also counts neighbours'
//! processes: that errs towards "busy", i.e. towards queueing on the grid.

/// Idle CPUs: usable CPUs minus the processes running besides this one, at
/// least 0; 0 also when `/proc/loadavg` cannot be read (unknown).
pub fn idle_cpus() -> f64 {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(text) => idle_from(cpus, &text).unwrap_or(0.0),
        Err(_) => 0.0,
    }
}

/// `cpus` minus the running processes in a `/proc/loadavg` line, not
/// counting the reader itself (it is running while it reads).
fn idle_from(cpus: usize, loadavg: &str) -> Option<f64> {
    let field = loadavg.split_whitespace().nth(3)?;
    let running: usize = field.split_once('/')?.0.parse().ok()?;
    Some(cpus.saturating_sub(running.saturating_sub(1)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_running_count() {
        let cases = [
            (4, "0.50 0.40 0.30 1/345 6789\n", Some(4.0)),
            (4, "3.10 2.00 1.00 3/345 6789", Some(2.0)),
            (2, "9.00 9.00 9.00 17/400 1", Some(0.0)),
            (2, "0.1 0.1 0.1", None),
            (2, "0.1 0.1 0.1 x/12 1", None),
            (2, "", None),
        ];
        for (cpus, text, want) in cases {
            assert_eq!(idle_from(cpus, text), want, "{text:?}");
        }
        assert!(idle_cpus() >= 0.0);
    }
}
