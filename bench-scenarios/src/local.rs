//! The `local` backend: the coordinator and each worker as processes on
//! 127.0.0.1, each worker in its own cgroup CPU quota (see `cgroup.rs`)
//! where the machine allows, so that a 0.25-CPU worker really gets a
//! quarter of a core. Where it does not, the report carries a loud note.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::backend::{Backend, Grid, GridSpec, ServerCpu};
use crate::cgroup::{self, Cgroups};
use crate::peers::launch::LocalLauncher;
use crate::peers::{Peer, PeerGrid, PeerSpec};

/// How long a server may take to print its `listening on` line, and the
/// workers to register.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Processes under cgroup limits.
#[derive(Debug)]
pub struct LocalBackend {
    cgroups: Cgroups,
}

impl LocalBackend {
    pub fn new() -> Self {
        Self {
            cgroups: Cgroups::detect(),
        }
    }
}

impl Default for LocalBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "local backend: servers are processes on 127.0.0.1; limits by {}",
            self.cgroups.describe()
        )];
        notes.extend(self.cgroups.note().map(str::to_owned));
        notes
    }

    fn start(&mut self, spec: &GridSpec<'_>) -> anyhow::Result<Box<dyn Grid>> {
        let mut grid = LocalGrid {
            url: String::new(),
            servers: Vec::new(),
            addresses: Vec::new(),
        };
        let trace = spec.trace_path();
        let coordinator = spawn_server(
            None,
            &spec.bin_dir.join("gridcc-coordinator"),
            &[
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--policy".into(),
                spec.policy.into(),
                "--trace-out".into(),
                trace.display().to_string(),
                // The benchmark measures the grid: a busy grid queues
                // rather than sending work back to the limited client.
                "--when-busy".into(),
                "queue".into(),
                "--queue-timeout-ms".into(),
                crate::backend::QUEUE_TIMEOUT_MS.to_string(),
            ]
            .into_iter()
            .chain(spec.costs_args())
            .collect::<Vec<_>>(),
            &spec.run_dir.join("coordinator.log"),
        )?;
        grid.url = format!("http://{}", coordinator.address);
        grid.servers.push(coordinator);
        for (i, w) in spec.workers.iter().enumerate() {
            let name = format!("worker{}", i + 1);
            let limit = self.cgroups.create(
                &format!("{name}-{}", std::process::id()),
                w.cpus,
                w.memory_mb,
            )?;
            let mut args = vec![
                "--coordinator".to_owned(),
                grid.url.clone(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--slots".into(),
                w.slots().to_string(),
                // The runs measure compiles: repetitions must not be
                // shared-cache hits (as the wrapper runs with GRIDCC_CACHE=0).
                "--cache-size".into(),
                "0".into(),
            ];
            if limit.is_none() {
                // No quota to read: tell the worker its shape, so the
                // policies still see the configured speeds.
                args.extend(["--speed".to_owned(), w.cpus.to_string()]);
            }
            let server = spawn_server(
                limit.as_ref(),
                &spec.bin_dir.join("gridcc-worker"),
                &args,
                &spec.run_dir.join(format!("{name}.log")),
            )?;
            grid.addresses.push(server.address.clone());
            grid.servers.push(server);
        }
        wait_registered(&spec.bin_dir.join("gridcc"), &grid.url, spec.workers.len())?;
        Ok(Box::new(grid))
    }

    fn start_peer(&mut self, peer: Peer, spec: &PeerSpec<'_>) -> anyhow::Result<PeerGrid> {
        crate::peers::start(
            peer,
            spec,
            &mut LocalLauncher {
                cgroups: &mut self.cgroups,
            },
        )
    }
}

/// A started local server.
#[derive(Debug)]
struct Server {
    child: Child,
    address: String,
    log: PathBuf,
}

#[derive(Debug)]
struct LocalGrid {
    url: String,
    /// The coordinator first, then the workers in order.
    servers: Vec<Server>,
    addresses: Vec<String>,
}

impl Grid for LocalGrid {
    fn coordinator_url(&self) -> &str {
        &self.url
    }

    fn worker_addresses(&self) -> Vec<String> {
        self.addresses.clone()
    }

    fn check_alive(&mut self) -> Result<(), String> {
        for (i, s) in self.servers.iter_mut().enumerate() {
            let name = if i == 0 {
                "coordinator".to_owned()
            } else {
                format!("worker {i}")
            };
            match s.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    return Err(format!("{name} exited ({status}); log {}", s.log.display()))
                }
                Err(e) => return Err(format!("{name}: cannot query: {e}")),
            }
        }
        Ok(())
    }

    fn cpu_seconds(&mut self) -> anyhow::Result<ServerCpu> {
        let mut all = self
            .servers
            .iter()
            .map(|s| process_cpu_s(s.child.id()))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        let coordinator_s = all.remove(0);
        Ok(ServerCpu {
            coordinator_s,
            workers_s: all,
        })
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        self.kill_all();
        Ok(())
    }
}

impl LocalGrid {
    fn kill_all(&mut self) {
        // Workers first, so none reconnects to a fresh coordinator.
        for s in self.servers.iter_mut().rev() {
            let _ = s.child.kill();
            let _ = s.child.wait();
            crate::reap::unregister(s.child.id());
        }
        self.servers.clear();
    }
}

impl Drop for LocalGrid {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Starts a server and waits for its `listening on IP:PORT` line.
fn spawn_server(
    limit: Option<&cgroup::Limited>,
    program: &Path,
    args: &[String],
    log: &Path,
) -> anyhow::Result<Server> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = cgroup::command(limit, program, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    crate::reap::register(child.id());
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep reading so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => line,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            crate::reap::unregister(child.id());
            bail!(
                "{} did not print its address: {}",
                program.display(),
                last_line(log)
            );
        }
    };
    let Some(address) = line.strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        crate::reap::unregister(child.id());
        bail!("{}: unexpected first line {line:?}", program.display());
    };
    Ok(Server {
        address: address.trim().to_owned(),
        child,
        log: log.to_path_buf(),
    })
}

/// The last non-empty line of a log, for error messages.
pub(crate) fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(empty log)".to_owned())
}

/// Polls `gridcc status --json` until `n` workers have registered.
pub(crate) fn wait_registered(gridcc: &Path, url: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let seen = crate::stats::status(gridcc, url)
            .map(|s| s.workers.len())
            .unwrap_or(0);
        if seen >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {seen} of {n} workers registered with {url} within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU seconds (user + system, with waited-for children) of a live process,
/// from `/proc/PID/stat`.
pub(crate) fn process_cpu_s(pid: u32) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    stat_cpu_s(&text).with_context(|| format!("parsing /proc/{pid}/stat"))
}

/// utime + stime + cutime + cstime of a `/proc/PID/stat` line, in seconds.
pub(crate) fn stat_cpu_s(text: &str) -> anyhow::Result<f64> {
    // The command name is in parentheses and may hold spaces: fields are
    // counted from the last ')'.
    let rest = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .context("no ')' in the stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11.
    let ticks: u64 = fields
        .get(11..15)
        .context("short stat line")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()
        .context("non-numeric CPU field")?;
    Ok(ticks as f64 / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` once (no `unsafe` here).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name() {
        let line = "42 (my prog) S 1 42 42 0 -1 4194304 100 0 0 0 150 50 30 20 20 0 1 0 100 0 0";
        let s = stat_cpu_s(line).unwrap();
        assert!((s - 250.0 / clock_ticks()).abs() < 1e-9, "{s}");
        assert!(stat_cpu_s("garbage").is_err());
    }

    #[test]
    fn own_process_cpu_is_readable() {
        assert!(process_cpu_s(std::process::id()).unwrap() >= 0.0);
    }
}
