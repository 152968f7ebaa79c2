//! What confines a compile job: the user it runs as, its CPU-time,
//! address-space and file-size limits, its wall-clock limit and the largest
//! output it may return. A root worker never runs a client's compile as root unless told
//! to: it drops to an unprivileged user (`nobody` by default).
//!
//! The limits are set in the child between fork and exec (`setrlimit`), so
//! they bind the compiler driver and everything it starts (cc1, as), and the
//! job runs in its own process group, so a wall-clock kill reaches them all.

use std::time::Duration;

/// Limits of one job.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest stdout + stderr, and largest object, in bytes.
    pub max_output: u64,
    /// CPU seconds per process (RLIMIT_CPU); `None` = unlimited.
    pub cpu_s: Option<u64>,
    /// Address space per process, bytes (RLIMIT_AS); `None` = unlimited.
    pub memory_bytes: Option<u64>,
    /// Wall-clock time of the whole job; `None` = unlimited.
    pub wall: Option<Duration>,
    /// Run the compiler as this uid/gid (the worker must be root).
    pub run_as: Option<User>,
}

impl Limits {
    /// No limits beyond the output size, the current user.
    pub fn output_only(max_output: u64) -> Self {
        Self {
            max_output,
            cpu_s: None,
            memory_bytes: None,
            wall: None,
            run_as: None,
        }
    }
}

impl Limits {
    /// The CPU seconds, address space and file size each of the job's
    /// processes gets (`setrlimit`). No file the job writes may be larger
    /// than the output it may return: the object is the largest, and one
    /// past the bound would be refused after the fact anyway. So a job
    /// that would write gigabytes (`.skip 3000000000`) is stopped by
    /// SIGXFSZ at the bound, fast and with a clear reason, instead of
    /// filling the worker's disk first.
    pub(crate) fn rlimits(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        let file = (self.max_output > 0).then_some(self.max_output);
        (self.cpu_s, self.memory_bytes, file)
    }
}

/// An account from /etc/passwd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot read /etc/passwd: {0}")]
    Passwd(#[source] std::io::Error),
    #[error("no user {0:?} in /etc/passwd")]
    Unknown(String),
    #[error(
        "user {0:?} is root; compiles must not run as root (use --compile-as-root to allow it)"
    )]
    Root(String),
}

/// Looks `name` (or a numeric uid) up in /etc/passwd.
pub fn lookup_user(name: &str) -> Result<User, UserError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(UserError::Passwd)?;
    let user = find_user(&passwd, name).ok_or_else(|| UserError::Unknown(name.to_owned()))?;
    if user.uid == 0 {
        return Err(UserError::Root(name.to_owned()));
    }
    Ok(user)
}

fn find_user(passwd: &str, name: &str) -> Option<User> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (uid, gid) = (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        (f[0] == name || f[2] == name).then_some(User { uid, gid })
    })
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // /proc/self/status "Uid:" holds real, effective, saved, fs uids.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Applies `limits` to the compiler command: user, process group and
/// resource limits.
pub(crate) fn confine(cmd: &mut tokio::process::Command, limits: &Limits) {
    if let Some(user) = limits.run_as {
        // std drops the supplementary groups too when root sets a uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd.process_group(0);
    let (cpu, memory, file) = limits.rlimits();
    if cpu.is_some() || memory.is_some() || file.is_some() {
        set_rlimits_in_child(cmd, cpu, memory, file);
    }
}

#[allow(unsafe_code)]
fn set_rlimits_in_child(
    cmd: &mut tokio::process::Command,
    cpu: Option<u64>,
    memory: Option<u64>,
    file: Option<u64>,
) {
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setrlimit(2) (`set_rlimits`), which is async-signal-safe; it
    // allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || set_rlimits(cpu, memory, file));
    }
}

/// Sets this process's CPU-time, address-space and file-size limits; for
/// the child between fork and exec (async-signal-safe: setrlimit only).
#[allow(unsafe_code)]
pub(crate) fn set_rlimits(
    cpu: Option<u64>,
    memory: Option<u64>,
    file: Option<u64>,
) -> std::io::Result<()> {
    let set = |resource, soft: u64, hard: u64| {
        let lim = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct it is given and nothing else.
        if unsafe { libc::setrlimit(resource, &lim) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SIGXCPU at the soft limit names the cause; SIGKILL at the hard one,
    // a few seconds later, stops a process ignoring it.
    if let Some(s) = cpu {
        set(libc::RLIMIT_CPU, s, s.saturating_add(5))?;
    }
    if let Some(b) = memory {
        set(libc::RLIMIT_AS, b, b)?;
    }
    if let Some(b) = file {
        set(libc::RLIMIT_FSIZE, b, b)?;
    }
    Ok(())
}

/// Kills a job's process group when dropped, until disarmed. A job's
/// future is dropped when its client goes away (Ctrl-C, a killed or cut
/// connection); `kill_on_drop` then reaches only the driver, and cc1 or as,
/// reparented, would run on to the end. Disarm it once the driver has been
/// reaped: its id, which names the group, may then be reused.
#[derive(Debug)]
pub(crate) struct GroupKill(Option<u32>);

impl GroupKill {
    /// Arms the guard for the group led by `pid` (`process_group(0)`).
    pub(crate) fn new(pid: Option<u32>) -> Self {
        Self(pid)
    }

    /// The driver was reaped: nothing to kill any more.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            kill_group(pid);
        }
    }
}

/// Kills the job's whole process group (driver, cc1, as).
#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group and
    // has no memory effects; the group is the job's own (process_group(0)).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_name_or_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      broken:x:notanumber:1::/:\n";
        let nobody = User {
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(find_user(passwd, "nobody"), Some(nobody));
        assert_eq!(find_user(passwd, "65534"), Some(nobody));
        assert_eq!(find_user(passwd, "broken"), None);
        assert_eq!(find_user(passwd, "ghost"), None);
    }

    #[test]
    fn root_is_refused_as_the_compile_user() {
        assert!(matches!(lookup_user("root"), Err(UserError::Root(_))));
        assert!(matches!(
            lookup_user("no-such-user-x"),
            Err(UserError::Unknown(_))
        ));
    }

    async fn confined(limits: &Limits, script: &str) -> std::process::Output {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", script]);
        confine(&mut cmd, limits);
        cmd.output().await.unwrap()
    }

    #[tokio::test]
    async fn the_cpu_limit_stops_a_spinning_process() {
        let limits = Limits {
            cpu_s: Some(1),
            ..Limits::output_only(0)
        };
        let started = std::time::Instant::now();
        let out = confined(&limits, "while :; do :; done").await;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGXCPU), "{:?}", out.status);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn no_file_may_grow_past_the_output_bound() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        let limits = Limits::output_only(1 << 20);
        let script = format!("head -c 3000000 /dev/zero > {}", file.display());
        let out = confined(&limits, &script).await;
        assert!(!out.status.success(), "{:?}", out.status);
        let written = std::fs::metadata(&file).unwrap().len();
        assert_eq!(written, 1 << 20, "stopped at the bound");
    }

    #[tokio::test]
    async fn a_dropped_compile_runs_as_that_user() {
        if !is_root() {
            eprintln!("not root: nothing to drop");
            return;
        }
        let nobody = lookup_user("nobody").unwrap();
        let limits = Limits {
            run_as: Some(nobody),
            ..Limits::output_only(0)
        };
        let out = confined(&limits, "id -u; id -G").await;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(nobody.uid.to_string().as_str()));
        assert_eq!(
            lines.next(),
            Some(nobody.gid.to_string().as_str()),
            "no root groups kept"
        );
    }
}
