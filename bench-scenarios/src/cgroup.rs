//! CPU (and memory) limits for local processes through cgroups, v1 or v2,
//! where the machine lets this process create them; otherwise a note that
//! says so, which the report prints.
//!
//! A limited command runs as `sh -c 'echo $$ > PROCS && exec "$@"'`: the
//! shell moves itself into the cgroup before it becomes the program, so the
//! program (a worker reading its own quota, or `make` and every compiler it
//! starts) lives under the limit from its first instruction.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cgroup CPU period used for every quota (100 ms, the kernel default).
const PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// cgroup v1: the `cpu` hierarchy's root, and `memory`'s when mounted.
    V1 {
        cpu: PathBuf,
        memory: Option<PathBuf>,
    },
    /// cgroup v2: the unified root with the cpu controller enabled.
    V2 { root: PathBuf },
}

/// Creates and removes this run's cgroups.
#[derive(Debug)]
pub struct Cgroups {
    kind: Option<Kind>,
    /// Why limits are not enforced, when they are not.
    note: Option<String>,
    prefix: String,
    created: Vec<PathBuf>,
}

/// A cgroup this process made: the `cgroup.procs` file to join it.
#[derive(Debug, Clone)]
pub struct Limited {
    pub procs: PathBuf,
}

impl Cgroups {
    /// Finds a cgroup hierarchy this process may create groups in.
    pub fn detect() -> Self {
        let prefix = format!("gridcc-bench-{}", std::process::id());
        let (kind, note) = match find_kind(Path::new("/sys/fs/cgroup")) {
            Ok(kind) => (Some(kind), None),
            Err(why) => (
                None,
                Some(format!(
                    "CPU limits NOT enforced: {why}; every process shared the machine's {} CPUs freely, so the numbers do not reflect the configured shapes",
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                )),
            ),
        };
        Self {
            kind,
            note,
            prefix,
            created: Vec::new(),
        }
    }

    /// "cgroup v1", "cgroup v2" or "none".
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Some(Kind::V1 { .. }) => "cgroup v1 cpu.cfs_quota_us",
            Some(Kind::V2 { .. }) => "cgroup v2 cpu.max",
            None => "none",
        }
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// A new cgroup limited to `cpus` cores (and `memory_mb` MiB when
    /// given); `None` where limits cannot be set (see [`Cgroups::note`]).
    pub fn create(
        &mut self,
        name: &str,
        cpus: f64,
        memory_mb: Option<u64>,
    ) -> anyhow::Result<Option<Limited>> {
        let quota_us = ((cpus * PERIOD_US as f64).round() as u64).max(1000);
        let leaf = format!("{}-{name}", self.prefix);
        let procs = match &self.kind {
            None => return Ok(None),
            Some(Kind::V1 { cpu, memory }) => {
                let dir = cpu.join(&leaf);
                make_dir(&dir)?;
                self.created.push(dir.clone());
                write(&dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
                if let (Some(mem), Some(mb)) = (memory, memory_mb) {
                    let mdir = mem.join(&leaf);
                    make_dir(&mdir)?;
                    self.created.push(mdir.clone());
                    write(&mdir.join("memory.limit_in_bytes"), &(mb << 20).to_string())?;
                }
                dir.join("cgroup.procs")
            }
            Some(Kind::V2 { root }) => {
                let dir = root.join(&leaf);
                make_dir(&dir)?;
                self.created.push(dir.clone());
                write(&dir.join("cpu.max"), &format!("{quota_us} {PERIOD_US}"))?;
                if let Some(mb) = memory_mb {
                    write(&dir.join("memory.max"), &(mb << 20).to_string())?;
                }
                dir.join("cgroup.procs")
            }
        };
        Ok(Some(Limited { procs }))
    }

    /// Removes every cgroup made so far (their processes must have ended).
    pub fn remove_all(&mut self) {
        for dir in self.created.drain(..).rev() {
            // A cgroup whose last process just exited may still be busy
            // for a moment.
            for _ in 0..50 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// `program args…`, run inside `limit` when there is one.
pub fn command(limit: Option<&Limited>, program: &Path, args: &[String]) -> Command {
    match limit {
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        Some(l) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(r#"echo $$ > "$0" && exec "$@""#)
                .arg(&l.procs)
                .arg(program)
                .args(args);
            c
        }
    }
}

fn find_kind(root: &Path) -> Result<Kind, String> {
    let controllers = root.join("cgroup.controllers");
    if controllers.exists() {
        let text = std::fs::read_to_string(&controllers).map_err(|e| e.to_string())?;
        if !text.split_whitespace().any(|c| c == "cpu") {
            return Err("cgroup v2 without the cpu controller".to_owned());
        }
        // Children get the cpu controller only when the parent hands it
        // down; the root cgroup may have processes and still do so.
        let subtree = root.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&subtree).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "cpu") {
            std::fs::write(&subtree, "+cpu").map_err(|e| {
                format!(
                    "cannot enable the cpu controller in {}: {e}",
                    subtree.display()
                )
            })?;
        }
        let _ = std::fs::write(&subtree, "+memory");
        probe(root)?;
        return Ok(Kind::V2 {
            root: root.to_path_buf(),
        });
    }
    let cpu = root.join("cpu");
    if cpu.join("cpu.cfs_quota_us").exists() || cpu.join("cgroup.procs").exists() {
        probe(&cpu)?;
        let memory = root.join("memory");
        let memory = memory
            .join("memory.limit_in_bytes")
            .exists()
            .then_some(memory);
        return Ok(Kind::V1 { cpu, memory });
    }
    Err(format!("no cgroup cpu controller under {}", root.display()))
}

/// Whether a cgroup can be made under `dir`.
fn probe(dir: &Path) -> Result<(), String> {
    let test = dir.join(format!("gridcc-bench-probe-{}", std::process::id()));
    std::fs::create_dir(&test)
        .map_err(|e| format!("cannot create a cgroup under {}: {e}", dir.display()))?;
    let _ = std::fs::remove_dir(&test);
    Ok(())
}

fn make_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(anyhow::anyhow!("creating cgroup {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| anyhow::anyhow!("writing {value} to {}: {e}", path.display()))
}
