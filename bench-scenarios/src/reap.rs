//! What an interrupted run must not leave behind. The runner starts the
//! build and every local server in a process group of its own, registers
//! the group here, and unregisters it once the process has been waited
//! for; on Ctrl-C (or SIGTERM) [`kill_all`] signals every group still
//! registered, so no worker, coordinator, make or compiler outlives the
//! run. (A terminal's Ctrl-C would not reach them: they are not in its
//! foreground group.)

use std::collections::BTreeSet;
use std::sync::Mutex;

static GROUPS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Remembers the process group led by `pid`.
pub(crate) fn register(pid: u32) {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
}

/// Forgets a group whose leader has been waited for.
pub(crate) fn unregister(pid: u32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

/// Sends SIGKILL to every registered group; returns how many there were.
pub(crate) fn kill_all() -> usize {
    let groups: Vec<u32> = std::mem::take(&mut *GROUPS.lock().unwrap_or_else(|e| e.into_inner()))
        .into_iter()
        .collect();
    if groups.is_empty() {
        return 0;
    }
    // `kill -KILL -- -PGID …`: the kill(1) utility, since this crate has no
    // unsafe code to call kill(2) with.
    let mut cmd = std::process::Command::new("kill");
    cmd.arg("-KILL").arg("--");
    for g in &groups {
        cmd.arg(format!("-{g}"));
    }
    // A group that ended meanwhile is no error worth printing.
    let _ = cmd.stderr(std::process::Stdio::null()).status();
    groups.len()
}
